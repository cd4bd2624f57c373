"""Evaluators: what a candidate costs and how well it learns (see :mod:`.evaluator`)."""

from __future__ import annotations

from typing import Any

from ...errors import SynoError
from .evaluator import Evaluator, cascade

__all__ = ["Evaluator", "cascade", "create"]


def create(name: str, **options: Any) -> Evaluator:
    """``flops``, ``predicted``, ``latency`` or ``accuracy``; ``options`` go to the evaluator's constructor."""
    from .accuracy import AccuracyEvaluator
    from .flops import FlopsEvaluator
    from .latency import LatencyEvaluator
    from .predicted import PredictedEvaluator

    kinds = {"flops": FlopsEvaluator, "predicted": PredictedEvaluator, "latency": LatencyEvaluator,
             "accuracy": AccuracyEvaluator}
    if name not in kinds:
        raise SynoError(f"unknown evaluator '{name}': use {', '.join(kinds)} (a comma list is a cascade)")
    return kinds[name](**options)
