"""The strategy interface.  A strategy proposes candidates, is told their results, and can write its whole state
as bytes and restore it: the driver stores the state with every result, so a resumed search proposes exactly
what the killed one would have (the strategies are deterministic functions of their seed and of what they were
told)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from ..candidate import Candidate, Result
from ..space import SearchSpace


@dataclass
class StrategyContext:
    space: SearchSpace
    seed: int = 0


class SearchStrategy(ABC):
    name: str = ""

    @abstractmethod
    def initialize(self, ctx: StrategyContext) -> None:
        """Bind to a space and seed (before :meth:`restore` or the first :meth:`propose`)."""

    @abstractmethod
    def propose(self, n: int) -> list[Candidate] | None:
        """Up to ``n`` candidates with distinct fingerprints; None when the strategy has nothing left."""

    @abstractmethod
    def notify(self, results: list[Result]) -> None:
        """The rewards of proposed candidates (also of candidates the database already held)."""

    @abstractmethod
    def state(self) -> bytes:
        """Everything :meth:`restore` needs to continue exactly here."""

    @abstractmethod
    def restore(self, state: bytes) -> None: ...

    def options(self) -> dict[str, Any]:
        """The settings that decide the proposals (stored with the search, checked on resume)."""
        return {}
