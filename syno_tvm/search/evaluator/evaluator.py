"""The evaluator interface and the cascade that runs a comma list of them, cheapest first.

An evaluator measures one candidate operator and returns named metrics; the same evaluator measures the spec's
reference operator once per search (:meth:`Evaluator.reference`), so every metric can be read relative to the
original layer on the same model, target and budget.  A cost evaluator (FLOPs, latency) names its ratio metric in
``ratio``: the cascade stops a candidate whose ratio exceeds the context's ``max_cost_ratio`` before the more
expensive evaluators run (status ``pruned``).  Any exception an evaluator raises is the candidate's failure, recorded
with its text: failures are data.
"""

from __future__ import annotations

import time
import traceback
from abc import ABC, abstractmethod
from typing import Any

from ...ir.graph import Operator
from ..candidate import FAILED, OK, PRUNED, Candidate, Result
from ..context import EvalContext


class Evaluator(ABC):
    """``name`` and ``version`` go into every result (a changed recipe must not mix with old numbers); ``tier``
    orders a cascade (0: instant, 1: seconds to minutes, 2: minutes and more)."""

    name: str = ""
    version: str = "1"
    tier: int = 0
    ratio: str | None = None

    def reference(self, ctx: EvalContext) -> dict[str, float]:
        """The metrics of the spec's reference operator (the original layer)."""
        from ...ir.library import named

        return self.measure(ctx, named(ctx.spec.reference), "reference", reference=True)

    def evaluate(self, ctx: EvalContext, op: Operator, label: str) -> dict[str, float]:
        """The candidate's metrics, with ``ratio`` filled from the reference's."""
        metrics = self.measure(ctx, op, label, reference=False)
        ref = ctx.reference.get(self.name)
        if ref is not None:
            metrics.update(self.relative(metrics, ref))
        return metrics

    @abstractmethod
    def measure(self, ctx: EvalContext, op: Operator, label: str, reference: bool) -> dict[str, float]:
        """Raw metrics of ``op`` (``label`` names work directories; ``reference``: ``op`` is the reference operator,
        bound with the spec's reference binding)."""

    def relative(self, metrics: dict[str, float], ref: dict[str, float]) -> dict[str, float]:
        """Metrics relative to the reference's (default: none)."""
        return {}

    def options(self) -> dict[str, Any]:
        """The settings that decide the numbers (stored with the search, checked on resume)."""
        return {}


def _error_text(ev: Evaluator, e: BaseException) -> str:
    """One line for the record (the evaluator, the exception type, its message's last line), plus the place it
    was raised: enough to group failures without the whole traceback."""
    msg = str(e).strip().splitlines()
    where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    place = f" at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}" if where else ""
    return f"{ev.name}: {type(e).__name__}: {(msg[-1] if msg else '')[:300]}{place}"


def cascade(ctx: EvalContext, evaluators: list[Evaluator], candidate: Candidate) -> Result:
    """Run ``evaluators`` in tier order on ``candidate``; stop at the first failure or a pruning cost ratio."""
    result = Result(candidate, OK)
    for ev in sorted(evaluators, key=lambda e: e.tier):
        start = time.perf_counter()
        result.versions[ev.name] = ev.version
        try:
            result.metrics.update(ev.evaluate(ctx, candidate.operator, candidate.fingerprint))
        except Exception as e:  # noqa: BLE001 (any failure of lowering, building, tuning or training is data)
            result.status, result.error = FAILED, _error_text(ev, e)
            return result
        finally:
            result.timings[ev.name] = time.perf_counter() - start
        ratio = result.metrics.get(ev.ratio) if ev.ratio else None
        if ctx.max_cost_ratio is not None and ratio is not None and ratio > ctx.max_cost_ratio:
            result.status = PRUNED
            result.error = f"{ev.ratio} {ratio:.3g} > --max-cost-ratio {ctx.max_cost_ratio}: later evaluators skipped"
            return result
    return result
