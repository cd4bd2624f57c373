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


def test_written_files_get_the_umask_permissions_not_mkstemp_ones(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "report.md", "x")
        assert stat.S_IMODE((tmp_path / "report.md").stat().st_mode) == 0o644

        def executable(tmp: str) -> None:
            with open(tmp, "w") as f:
                f.write("#!/bin/sh\n")
            os.chmod(tmp, 0o700)
        write_atomically(tmp_path / "run.sh", executable)
        assert stat.S_IMODE((tmp_path / "run.sh").stat().st_mode) == 0o744
    finally:
        os.umask(old)
