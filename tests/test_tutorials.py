"""Every tutorial notebook runs top to bottom: its code cells are executed in order in one namespace, in a
temporary working directory (so files a tutorial writes land there).  Notebooks that need a long run mark their
heavy cells with a ``# slow`` first line; those run only under ``-m slow``."""

import json
import os
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).parent.parent / "tutorials").glob("*.ipynb"))


def code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def run_notebook(path: Path, tmp_path: Path, slow: bool) -> None:
    namespace: dict = {"__name__": "__tutorial__"}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for k, src in enumerate(code_cells(path)):
            if src.lstrip().startswith("# slow") and not slow:
                continue
            exec(compile(src, f"{path.name}[cell {k}]", "exec"), namespace)  # noqa: S102 (our own notebooks)
    finally:
        os.chdir(cwd)


def test_there_are_tutorials():
    assert TUTORIALS, "tutorials/ has no notebooks"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, tmp_path):
    run_notebook(path, tmp_path, slow=False)


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_fully(path, tmp_path):
    run_notebook(path, tmp_path, slow=True)
