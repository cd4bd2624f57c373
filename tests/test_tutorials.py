"""Every tutorial notebook runs top to bottom through a Jupyter kernel (nbclient + ipykernel, as a reader's
notebook front end would run it), in a temporary working directory; a cell that raises fails the test.  The
committed notebooks must carry their outputs (refreshed with ``python tools/notebooks.py --write``) so they read on
a repository page."""

from __future__ import annotations

import nbformat
import pytest
from repo_tools import REPO, load_tool

TUTORIALS = sorted((REPO / "tutorials").glob("*.ipynb"))


def _runner():
    return load_tool("notebooks")


def test_there_are_tutorials():
    assert TUTORIALS, "tutorials/ has no notebooks"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_in_a_kernel(path, tmp_path):
    nb = _runner().execute(path, tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), "a code cell was not executed"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_is_committed_with_outputs(path):
    """Executed in order, no error output, every cell that prints or plots shows what it printed, and at least one
    figure per tutorial (a notebook saved without outputs, or from a failed run, fails here)."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert all(counts) and counts == sorted(counts), f"cells not executed in order: {counts}"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"], "saved from a run that failed"
    silent = [k for k, c in enumerate(code) if ("print(" in c.source or "plt." in c.source) and not c.outputs]
    assert not silent, f"code cells {silent} print or plot but were saved without outputs"
    figures = [o for o in outputs if "image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {})]
    assert figures, "no figure among the outputs"
