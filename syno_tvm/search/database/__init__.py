"""The results store of a search (see :mod:`.database`)."""

from __future__ import annotations

from pathlib import Path

from ...errors import SynoError
from .database import Database

DB_FILE = "search.sqlite"

__all__ = ["DB_FILE", "Database", "create"]


def create(name: str, directory: "str | Path") -> Database:
    """``sqlite`` (the only kind): ``search.sqlite`` in ``directory``."""
    if name != "sqlite":
        raise SynoError(f"unknown database '{name}': use sqlite")
    from .sqlite import SqliteDatabase

    return SqliteDatabase(Path(directory) / DB_FILE)
