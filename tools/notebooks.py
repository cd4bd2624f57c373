#!/usr/bin/env python3
"""Execute the tutorial notebooks through a Jupyter kernel; with ``--write``, save them with their outputs.

The committed notebooks carry their outputs (text and figures) so they read on a repository page;
``tests/test_tutorials.py`` executes them the same way, so a cell that raises fails the test suite.  After changing a
tutorial, or the code it shows, refresh the committed outputs from the repository root:

    python tools/notebooks.py --write                 # every tutorial
    python tools/notebooks.py --write tutorials/02_swap_pass.ipynb

Each notebook runs in a fresh temporary working directory (files it writes land there, not in the repository), on
the ``python3`` kernel of the current environment, with this checkout first on ``PYTHONPATH`` so the kernel imports
the ``syno_tvm`` beside this script.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
TUTORIALS = REPO / "tutorials"
CELL_TIMEOUT_S = 600


def execute(path: Path, workdir: Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` executed top to bottom in ``workdir``; raises ``nbclient``'s
    ``CellExecutionError`` (naming the cell and its traceback) at the first cell that fails."""
    nb = nbformat.read(path, as_version=4)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([old] if old else []))
    try:
        client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                resources={"metadata": {"path": str(workdir)}})
        client.execute()
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    return nb


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Execute the tutorial notebooks through a Jupyter kernel.",
                                epilog="example: python tools/notebooks.py --write tutorials/01_operators.ipynb")
    p.add_argument("paths", nargs="*", type=Path, help="notebooks (default: every tutorials/*.ipynb)")
    p.add_argument("--write", action="store_true", help="save each executed notebook, outputs included, in place")
    args = p.parse_args(argv)
    for path in args.paths or sorted(TUTORIALS.glob("*.ipynb")):
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            nb = execute(path, Path(tmp))
        if args.write:
            nbformat.write(nb, path)
        print(f"{path.name}: ran in {time.perf_counter() - start:.1f} s" + (", saved with outputs" if args.write
                                                                            else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
