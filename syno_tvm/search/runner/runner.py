"""The runner interface: evaluate a batch of candidates through the evaluator cascade, yielding each result as it
completes (so the driver commits it at once).  A worker that dies (a segfault in a compiler, the out-of-memory
killer) fails its candidate, recorded with the reason, and the runner goes on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator

from ..candidate import Candidate, Result
from ..context import EvalContext
from ..evaluator.evaluator import Evaluator


class Runner(ABC):
    name: str = ""
    parallelism: int = 1

    @abstractmethod
    def run(self, ctx: EvalContext, evaluators: list[Evaluator], candidates: list[Candidate]) -> Iterator[Result]:
        """Each candidate's result, in completion order."""

    def close(self) -> None:
        """Stop workers (a no-op where there are none)."""
