"""Atomic file writes: every file the project writes goes through a temporary file beside it and one rename, so a
crash or a kill never leaves half a file (a checkpoint, a model, a tuning ledger, an operator JSON).

Must not import anything of the project but :mod:`syno_tvm.errors`: every layer writes files.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from .errors import SynoError


def write_atomically(path: str | Path, write: Callable[[str], None], suffix: str = "") -> None:
    """Call ``write(tmp)`` on a temporary path in ``path``'s directory, then rename it over ``path``.

    ``suffix`` is the temporary file's ending, for writers that insist on one (``np.savez`` appends ``.npz``
    otherwise).  The directory must exist: a writer that creates it says so where the directory comes from."""
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        raise SynoError(f"cannot write '{path}': directory '{parent}' does not exist")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes the file owner-only (0600); the user's files get the permissions the umask gives a new
        # file, keeping any execute bits the writer set (a linked library)
        os.chmod(tmp, os.stat(tmp).st_mode & 0o7777 | (0o666 & ~_umask()))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> None:
    """``text`` written atomically to ``path``."""
    write_atomically(path, lambda tmp: Path(tmp).write_text(text))
