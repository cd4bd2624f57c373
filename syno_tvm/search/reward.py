"""The reward a strategy learns from: accuracy and latency (or FLOPs) together, both relative to the original
operator on the same model, target and budget.

With ``a`` the candidate's proxy accuracy over the original's (``accuracy_ratio``; 1 when no accuracy evaluator
ran) and ``r`` its cost over the original's (``latency_ratio`` when latency was measured, else the predicted
``predicted_ratio``, else ``flops_ratio``):

    A = (max(a - lb, 0) / (ub - lb)) ** p                     Syno's accuracy shaping (session.py), relative here
    R = A * (r / target) ** w,   w = alpha if r <= target else beta          MnasNet's latency-aware reward

so an operator as accurate and as fast as the original scores 1 (at target 1).  Presets:

- ``soft`` (default): alpha = beta = -0.07 (MnasNet's soft constraint, Tan et al. 2019): every halving of latency
  is worth about 5 % of accuracy reward.
- ``hard``: alpha = 0, beta = -1: accuracy alone while ``r <= target``, penalized in proportion beyond it:
  "accuracy subject to a latency target".
- ``weighted``: alpha = beta = -w for a user weight (``--reward-weight``, default 0.5): latency counts more.

Syno's own constants (p = 4, lb/ub = 0.4/0.7 absolute on CIFAR-100) become lb = 0.5, ub = 1.0 relative: half the
original accuracy scores 0, the original's scores 1; p = 4 as Syno.  Failed and pruned candidates score 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import SynoError
from .candidate import OK, Result

PRESETS = {"soft": (-0.07, -0.07), "hard": (0.0, -1.0)}
MODES = ("soft", "hard", "weighted")


@dataclass(frozen=True)
class Reward:
    mode: str = "soft"
    target: float = 1.0
    weight: float = 0.5
    lb: float = 0.5
    ub: float = 1.0
    power: float = 4.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SynoError(f"unknown reward mode '{self.mode}': use {', '.join(MODES)}")
        if self.target <= 0 or self.ub <= self.lb or self.power <= 0:
            raise SynoError("reward needs target > 0, ub > lb and power > 0")

    @property
    def exponents(self) -> tuple[float, float]:
        return PRESETS[self.mode] if self.mode in PRESETS else (-self.weight, -self.weight)

    def accuracy_term(self, a: float | None) -> float:
        if a is None:
            return 1.0
        return (max(a - self.lb, 0.0) / (self.ub - self.lb)) ** self.power

    def cost_term(self, r: float | None) -> float:
        if r is None:
            return 1.0
        alpha, beta = self.exponents
        return (max(r, 1e-9) / self.target) ** (alpha if r <= self.target else beta)

    def __call__(self, metrics: dict[str, float]) -> float:
        return self.accuracy_term(metrics.get("accuracy_ratio")) * self.cost_term(cost_ratio(metrics))

    def score(self, result: Result) -> float:
        return self(result.metrics) if result.status == OK else 0.0

    def to_json(self) -> dict:
        return asdict(self)


COST_RATIOS = ("latency_ratio", "predicted_ratio", "flops_ratio")  # the best-informed cost first


def cost_ratio(metrics: dict[str, float]) -> float | None:
    """The cost the reward uses and a report plots: measured latency relative to the original, else predicted
    latency, else FLOPs."""
    return next((metrics[k] for k in COST_RATIOS if k in metrics), None)


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, quality) points no other point beats: cost no higher and quality no lower, one of
    them strictly.  Ordered by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front
