"""FLOPs and parameters, summed over the model's layers as the swap pass binds them: instant, the first tier."""

from __future__ import annotations

from ...ir.graph import Operator
from ...lower.order import plan
from ..context import EvalContext
from .evaluator import Evaluator


class FlopsEvaluator(Evaluator):
    """``flops`` (the staged plan's multiply-adds x 2, as the lowering computes them) and ``params`` summed over the
    model, ``flops_layer{i}`` of one layer of each layer use (as ``latency_ms_layer{i}``: what the per-layer phase
    compares); relative: ``flops_ratio`` and ``params_ratio`` against the reference operator at the same layers."""

    name, version, tier, ratio = "flops", "2", 0, "flops_ratio"

    def measure(self, ctx: EvalContext, op: Operator, label: str, reference: bool) -> dict[str, float]:
        spec = ctx.spec
        flops = params = 0
        out = {}
        for i, use in enumerate(ctx.layers):
            b = spec.variables.binding(use.values)
            if reference:
                b = spec.reference_binding(b)
            layer = plan(op, b).flops
            out[f"flops_layer{i}"] = float(layer)
            flops += use.count * layer
            params += use.count * op.params(b)
        return {"flops": float(flops), "params": float(params), **out}

    def relative(self, metrics: dict[str, float], ref: dict[str, float]) -> dict[str, float]:
        return {"flops_ratio": metrics["flops"] / ref["flops"], "params_ratio": metrics["params"] / ref["params"]}
