"""Predicted latency: each layer binding built with TVM's default schedule and timed (one core, a second or so),
then the tuned latency predicted from that time and the operator's features by the model fitted on the latency
dataset (:mod:`syno_tvm.predict.model`), summed over the model's layers as the swap pass binds them.  The cheap
stand-in for the measured-latency evaluator: it costs a build per binding instead of a tuning run, and the
reference operator goes through the same path, so ``predicted_ratio`` compares like with like.

The model is fitted once per process (the runner's workers each fit their own, in seconds) on the dataset rows of
this CPU's target (``<mcpu>-1t``) when the dataset has enough of them, else on the best-measured target: the
evaluator's version names the target and row count, so results from different models never mix on resume.
"""

from __future__ import annotations

from typing import Any

from ...ir.graph import Operator
from ..context import EvalContext
from .evaluator import Evaluator

_MODELS: dict[tuple[str, str], Any] = {}  # (data, preferred target) -> fitted model, per process


def _model(data: str, preferred: str):
    from ...predict.model import load_model

    key = (data, preferred)
    if key not in _MODELS:
        _MODELS[key] = load_model(data or None, preferred)
    return _MODELS[key]


class PredictedEvaluator(Evaluator):
    """``predicted_ms``: sum over layer uses of count x predicted tuned time; ``predicted_ratio`` against the
    reference.  ``data``: the latency dataset directory ("" for the committed one)."""

    name, tier, ratio = "predicted", 1, "predicted_ratio"

    def __init__(self, data: str = "") -> None:
        from ...predict.collect import host_target

        self.data = data
        self.host = host_target()
        model = _model(self.data, self.host.name)
        self.version = f"1-{model.target}-{len(model.rows)}rows"

    def options(self) -> dict[str, Any]:
        return {"data": self.data}

    def measure(self, ctx: EvalContext, op: Operator, label: str, reference: bool) -> dict[str, float]:
        from ...predict.collect import time_untuned

        model = _model(self.data, self.host.name)
        target = self.host.tvm()
        spec = ctx.spec
        total, out = 0.0, {}
        for i, use in enumerate(ctx.layers):
            b = spec.variables.binding(use.values)
            if reference:
                b = spec.reference_binding(b)
            untuned = time_untuned(op, b, target)
            predicted = model.predict_us(op, b, untuned)
            out[f"untuned_us_layer{i}"], out[f"predicted_us_layer{i}"] = untuned, predicted
            total += use.count * predicted
        out["predicted_ms"] = total / 1e3
        return out

    def relative(self, metrics: dict[str, float], ref: dict[str, float]) -> dict[str, float]:
        return {"predicted_ratio": metrics["predicted_ms"] / ref["predicted_ms"]}
