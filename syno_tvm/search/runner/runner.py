"""The runner interface: evaluate a batch of candidates through the evaluator cascade, yielding each result as it
completes (so the driver commits it at once).  A worker that dies (a segfault in a compiler, the out-of-memory
killer) fails its candidate, recorded with the reason, and the runner goes on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterator

from ...errors import SynoError
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


def create(name: str, **options: Any) -> Runner:
    """``local`` (``workers``: 1 evaluates in this process, more in a process pool) or ``ray`` (``address``:
    ``local`` starts a local Ray with ``workers`` CPUs; else the address of a running cluster)."""
    from .local import LocalRunner
    from .ray import RayRunner

    kinds = {"local": LocalRunner, "ray": RayRunner}
    if name not in kinds:
        raise SynoError(f"unknown runner '{name}': use {', '.join(kinds)}")
    return kinds[name](**options)
