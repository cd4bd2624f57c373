"""The one atomic writer: a failing writer leaves neither half a file nor a temporary beside it."""

from __future__ import annotations

import pytest

from syno_tvm.atomic import write_atomically, write_text
from syno_tvm.errors import SynoError


def test_write_text_replaces_whole_file(tmp_path):
    path = tmp_path / "a.json"
    write_text(path, "old")
    write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "ckpt.npz"
    write_text(path, "previous")

    def half(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("half")
        raise KeyboardInterrupt  # a kill mid-write

    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, half, suffix=".npz")
    assert path.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]


def test_missing_directory_is_one_line(tmp_path):
    with pytest.raises(SynoError, match="does not exist"):
        write_text(tmp_path / "nope" / "x.txt", "x")
