"""Evaluation as Ray tasks: ``local`` starts a Ray instance on this machine with ``workers`` CPUs; an address
(``ray://host:10001`` or ``host:6379``) joins a running cluster.  One CPU per task; an evaluator that needs a
device would ask for it here (``num_gpus``) once one does."""

from __future__ import annotations

from typing import Iterator

from ...errors import SynoError
from ..candidate import FAILED, Candidate, Result
from ..context import EvalContext
from ..evaluator.evaluator import Evaluator, cascade
from .runner import Runner


def _evaluate(ctx: EvalContext, evaluators: list[Evaluator], candidate: Candidate) -> Result:
    return cascade(ctx, evaluators, candidate)


class RayRunner(Runner):
    name = "ray"

    def __init__(self, address: str = "local", workers: int = 2) -> None:
        try:
            import ray
        except ImportError:
            raise SynoError("--ray needs the ray package: pip install ray") from None
        self.ray = ray
        self.parallelism = workers
        self._started = not ray.is_initialized()  # shut down at close only the Ray instance this runner started
        if self._started:
            try:
                if address == "local":
                    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
                else:
                    ray.init(address=address, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise SynoError(f"cannot start or reach Ray at '{address}': {str(e).splitlines()[0][:160]}") from None
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_evaluate)

    def run(self, ctx: EvalContext, evaluators: list[Evaluator], candidates: list[Candidate]) -> Iterator[Result]:
        ray = self.ray
        ctx_ref, ev_ref = ray.put(ctx), ray.put(evaluators)
        pending = {self._remote.remote(ctx_ref, ev_ref, c): c for c in candidates}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                c = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as e:  # the worker died or the task could not run
                    yield Result(c, FAILED, error=f"ray task failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")

    def close(self) -> None:
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
