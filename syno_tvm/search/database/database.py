"""The results store: every evaluated candidate by fingerprint, the search's settings, and the strategy state a
``--resume`` restarts from, written in the same transaction as each result so a kill at any moment leaves the two
consistent."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ..candidate import Result

class Database(ABC):
    @abstractmethod
    def get(self, fingerprint: str) -> Result | None:
        """The stored result of this semantic identity, if it was evaluated."""

    @abstractmethod
    def commit(self, result: Result, state: bytes | None) -> None:
        """Store ``result`` and, in the same transaction, the strategy state to resume from."""

    @abstractmethod
    def save_state(self, state: bytes) -> None:
        """Replace the strategy state alone (after a batch's results were all told to the strategy)."""

    @abstractmethod
    def load_state(self) -> bytes | None: ...

    @abstractmethod
    def results(self) -> list[Result]:
        """Every result, in commit order."""

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def get_meta(self, key: str) -> Any: ...

    @abstractmethod
    def set_meta(self, key: str, value: Any) -> None: ...

    def close(self) -> None:
        """Release the store (a no-op where there is nothing to release)."""
