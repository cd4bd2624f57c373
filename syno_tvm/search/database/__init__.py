"""The results store of a search (see :mod:`.database`)."""

from .database import Database, create

__all__ = ["Database", "create"]
