"""Features of an operator at a layer binding, for predicting its tuned latency.

Three groups, each a fixed-length vector so that every model sees the same columns:

- ``graph``: how many primitives of each kind, weights, reductions, dims: what the operator is made of.
- ``analytic``: FLOPs (staged, as lowered, and naive), bytes of every tensor and staged intermediate, arithmetic
  intensity, stages, the largest stage's share of the FLOPs, the output and reduction extents (log2 where a
  quantity spans orders of magnitude, because latency does).
- ``tir``: MetaSchedule's per-store features (``PerStoreFeature``, 164 per store) of the lowered, untuned kernel,
  pooled over stores by mean and max: what TVM's own cost model learns from.

The ``tir`` group needs TVM and one ``TuneContext`` per process (its first construction takes seconds to minutes
here); ``graph`` and ``analytic`` are pure Python and instant.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Mapping

import numpy as np

from ..ir.graph import Operator
from ..ir.primitives import PRIMITIVES
from ..lower.order import plan

PRIM_KINDS = tuple(sorted(PRIMITIVES))
GRAPH = tuple(f"n_{k}" for k in PRIM_KINDS) + ("n_weights", "n_reduces", "n_dims", "n_output_dims")
ANALYTIC = ("log2_flops", "log2_naive_flops", "log2_bytes", "log2_intermediate_bytes", "intensity", "n_stages",
            "max_stage_share", "log2_output", "log2_reduction", "log2_weight_params")
TIR_WIDTH = 164  # PerStoreFeature's per-store vector in apache-tvm 0.27
TIR = tuple(f"tir_mean_{i}" for i in range(TIR_WIDTH)) + tuple(f"tir_max_{i}" for i in range(TIR_WIDTH))
GROUPS = {"graph": GRAPH, "analytic": ANALYTIC, "tir": TIR}


def _log2(x: float) -> float:
    return math.log2(x) if x > 0 else 0.0


def graph_features(op: Operator) -> np.ndarray:
    counts = {k: 0 for k in PRIM_KINDS}
    for p in op.prims:
        counts[p.kind] += 1
    return np.array([counts[k] for k in PRIM_KINDS] +
                    [len(op.weights), len(op.reduces), len(op.sizes), len(op.output)], dtype=float)


def analytic_features(op: Operator, binding: Mapping[str, int]) -> np.ndarray:
    values = op.bind(binding)
    order = plan(op, binding)

    def elems(dims) -> int:
        return math.prod(values[d] for d in dims)

    tensor_bytes = 4 * sum(elems(t) for t in op.tensors) + 4 * elems(op.output)
    intermediate = 4 * sum(elems(s.dims) for s in order.stages[:-1])
    weights = sum(elems(w) for w in op.weights)
    flops = order.flops
    reduction = math.prod(values[d] for d in op.reduces) if op.reduces else 1
    biggest = max((s.flops for s in order.stages), default=0)
    return np.array([
        _log2(flops), _log2(order.naive_flops), _log2(tensor_bytes + intermediate), _log2(intermediate),
        flops / max(1, tensor_bytes + intermediate), len(order.stages), biggest / max(1, flops),
        _log2(elems(op.output)), _log2(reduction), _log2(weights),
    ], dtype=float)


@lru_cache(maxsize=4)
def _context(target_json: str):
    import json

    import tvm
    from tvm.s_tir import meta_schedule as ms

    return ms.TuneContext(target=tvm.target.Target(json.loads(target_json)))


def tir_features(op: Operator, binding: Mapping[str, int], target_json: str) -> np.ndarray:
    """Mean and max over the kernel's stores of MetaSchedule's per-store features (untuned schedule)."""
    import tvm
    import tvm.s_tir
    from tvm.s_tir import meta_schedule as ms

    from ..lower.te_forward import forward_primfunc

    func = forward_primfunc(op, binding)
    cand = ms.MeasureCandidate(tvm.s_tir.Schedule(tvm.IRModule({"main": func})),
                               ms.arg_info.ArgInfo.from_prim_func(func))
    per_store = ms.feature_extractor.PerStoreFeature().extract_from(_context(target_json), [cand])[0].numpy()
    if per_store.size == 0:
        return np.zeros(2 * TIR_WIDTH)
    return np.concatenate([per_store.mean(axis=0), per_store.max(axis=0)])


EXTRACT = {"graph": lambda op, binding, target_json: graph_features(op),
           "analytic": lambda op, binding, target_json: analytic_features(op, binding),
           "tir": tir_features}


def features(op: Operator, binding: Mapping[str, int], groups: tuple[str, ...] = ("graph", "analytic"),
             target_json: str = '{"kind": "llvm"}') -> np.ndarray:
    """The concatenated feature vector of ``groups`` (names: :data:`GROUPS`)."""
    unknown = [g for g in groups if g not in EXTRACT]
    if unknown:
        raise ValueError(f"unknown feature group(s) {unknown}: use {', '.join(EXTRACT)}")
    return np.concatenate([EXTRACT[g](op, binding, target_json) for g in groups])


def names(groups: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for g in groups for n in GROUPS[g])
