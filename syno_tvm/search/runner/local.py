"""Evaluation on this machine: in this process (one worker) or in a pool of fresh processes (spawned, not forked:
TVM's thread pools do not survive a fork)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator

from ...errors import SynoError
from ..candidate import FAILED, Candidate, Result
from ..context import EvalContext
from ..evaluator.evaluator import Evaluator, cascade
from .runner import Runner


class LocalRunner(Runner):
    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise SynoError(f"--workers must be at least 1 (got {workers})")
        self.parallelism = workers
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.parallelism, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def run(self, ctx: EvalContext, evaluators: list[Evaluator], candidates: list[Candidate]) -> Iterator[Result]:
        if self.parallelism == 1:
            for c in candidates:
                yield cascade(ctx, evaluators, c)
            return
        pool = self._executor()
        futures = {pool.submit(cascade, ctx, evaluators, c): c for c in candidates}
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for f in done:
                c = futures.pop(f)
                try:
                    yield f.result()
                except BrokenProcessPool as e:
                    self._pool = None  # a fresh pool for what is left
                    yield Result(c, FAILED, error=f"worker process died: {e}")
                    for g, rest in list(futures.items()):
                        futures.pop(g)
                        futures[self._executor().submit(cascade, ctx, evaluators, rest)] = rest
                    break

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
