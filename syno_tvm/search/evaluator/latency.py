"""Measured latency: each distinct layer binding of the model tuned with MetaSchedule at a per-candidate trial
budget, built, timed on this machine, and summed over the model's layers as the swap pass binds them; the
reference operator (the original conv2d) goes through exactly the same path, so ``latency_ratio`` compares like
with like (same target, same trials, same timing).  ``trials=0`` times TVM's untuned default build instead (the
cheap tier the benchmark uses; no tuning)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...ir.graph import Operator
from ...relax.swap import operator_module
from ..context import EvalContext
from .evaluator import Evaluator


class LatencyEvaluator(Evaluator):
    """``latency_ms``: sum over layer uses of count x median batch-1 time; ``latency_ratio`` against the reference.
    ``trials`` MetaSchedule trials per task, ``number`` x ``repeat`` timed calls per layer."""

    name, tier, ratio = "latency", 1, "latency_ratio"

    def __init__(self, trials: int = 16, number: int = 5, repeat: int = 10) -> None:
        self.trials, self.number, self.repeat = trials, number, repeat
        self.version = f"1-trials{trials}"

    def options(self) -> dict[str, Any]:
        return {"trials": self.trials, "number": self.number, "repeat": self.repeat}

    def measure(self, ctx: EvalContext, op: Operator, label: str, reference: bool) -> dict[str, float]:
        import tvm

        from ...tune.compile import build
        from ...tune.measure import measure_local
        from ...tune.metaschedule import compile_tuned, tune
        from ...tune.targets import by_name

        target = by_name(ctx.target) if ctx.target in ("llvm", "host", "cpu") else tvm.target.Target(ctx.target)
        spec = ctx.spec
        rng = np.random.default_rng(ctx.seed)
        total, out = 0.0, {}
        for i, use in enumerate(ctx.layers):
            b = spec.variables.binding(use.values)
            if reference:
                b = spec.reference_binding(b)
            mod, in_shapes = operator_module(op, b)
            if self.trials > 0:
                work = Path(ctx.work_dir) / "tuning" / label / f"layer{i}"
                tune(mod, target, work, self.trials, seed=ctx.seed, progress=False)
                exe = compile_tuned(mod, target, work)
            else:
                exe = build(mod, target)
            inputs = [rng.standard_normal(s).astype("float32") for s in in_shapes]
            ms = measure_local(exe, inputs, number=self.number, repeat=self.repeat).median_ms
            out[f"latency_ms_layer{i}"] = ms
            total += use.count * ms
        out["latency_ms"] = total
        return out

    def relative(self, metrics: dict[str, float], ref: dict[str, float]) -> dict[str, float]:
        return {"latency_ratio": metrics["latency_ms"] / ref["latency_ms"]}
