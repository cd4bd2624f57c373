"""Confirming a short search's best few operators with the final training recipe before one is swapped in.

Why: the search ranks candidates with a quick accuracy proxy (1 epoch on 1500 images, the stride-1 convs only), and
an operator near the edge of trainability can pass it and then not learn at all under the final recipe (seen on
2026-12-07: quick-proxy accuracy 0.88x, then 10 % after 2 epochs on 3000 images, chance).  So the ``FINALISTS``
highest-reward operators, other than the original's own function, are trained with the recipe the report uses,
on every layer the swap pass gives them, and the one with the highest reward under *that* accuracy is chosen.
The cost stays the search's (its predicted latency ratio): the final recipe decides accuracy only.

The final recipe is the one the report's accuracy section runs anyway, so the chosen finalist's training is that
section's result, not a second run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

from ..ir.formula import operator_formula
from ..ir.graph import Operator
from .candidate import OK, Result
from .reward import Reward, cost_ratio

FINALISTS = 3  # one training of the final recipe each (about 20-40 s at width 4 on 2 cores)


@dataclass(frozen=True)
class Finalist:
    """One confirmed operator: the search's view (cost ratio, quick-proxy accuracy ratio, reward) and the final
    recipe's (``accuracy_ratio``: validation accuracy over the original model's, ``reward`` recomputed with it)."""

    fingerprint: str
    formula: str
    cost_ratio: float | None
    search_accuracy_ratio: float | None
    search_reward: float
    accuracy_ratio: float
    reward: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def finalists(results: list[Result], original: str, count: int = FINALISTS) -> list[Result]:
    """The ``count`` ok results with the highest search reward (the first evaluated among equals), leaving out
    the original operator's own function (fingerprint ``original``)."""
    found = [r for r in results if r.status == OK and r.fingerprint != original]
    return sorted(found, key=lambda r: -r.reward)[:count]


def confirm(results: list[Result], accuracy_ratio: Callable[[Operator], float], reward: Reward
            ) -> list[Finalist]:
    """Each of ``results`` (from :func:`finalists`) with its final-recipe ``accuracy_ratio(operator)``, best
    reward first (the search's order among equals); the first is the one to swap in."""
    out = []
    for r in results:
        ratio = float(accuracy_ratio(r.candidate.operator))
        metrics = {**r.metrics, "accuracy_ratio": ratio}
        out.append(Finalist(r.fingerprint, operator_formula(r.candidate.operator), cost_ratio(r.metrics),
                            r.metrics.get("accuracy_ratio"), r.reward, ratio, reward(metrics)))
    return sorted(out, key=lambda f: -f.reward)   # stable: the search's order among equals
