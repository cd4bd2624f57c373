"""The per-layer phase (beyond Syno, which puts one operator into every layer): after the single-operator search,
each layer group (the layers the swap pass binds the same way) gets the operator of the Pareto set, or the
original, that scores best *at that group*, by the search's own reward and the metrics already in its store.

Why per group: an operator's cost relative to conv2d differs from layer to layer (a 3x3 replacement may win at
32x32 with 64 channels and lose at 4x4 with 512), so one operator everywhere gives away the layers where it loses.
What is measured per group: the cost (``latency_ms_layer{i}`` from the latency evaluator when it ran, else
``flops_layer{i}``), for every candidate and for the reference through the same evaluator.  What is not: the
accuracy of a mix is not trained again here; the plan carries ``accuracy_estimate``, the lowest accuracy ratio of
the operators it uses (1 for groups that keep the original), and says so.  Train the written map with
``syno-tvm optimize --per-layer per_layer.json --accuracy DATA`` to measure it.

The map it writes is what ``syno-tvm optimize --per-layer`` reads: layer name (as the swap pass names it) ->
operator (inline JSON, so the file stands alone) or null (keep the original layer).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import SynoError
from .candidate import Result
from .results import SearchRecord
from .reward import Reward


@dataclass
class GroupChoice:
    """One layer group: its layers and binding, the chosen operator (``fingerprint`` empty: keep the original),
    its cost there relative to the original's, its accuracy ratio (None: not measured) and its reward there."""

    layers: list[str]
    binding: dict[str, int]
    fingerprint: str
    cost_ratio: float
    accuracy_ratio: float | None
    reward: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PerLayerPlan:
    """The per-group choices; ``cost_ratio`` is the model's cost over the original's (groups weighted by their
    layer counts and the original's per-layer cost), ``metric`` the cost it is measured in."""

    metric: str
    groups: list[GroupChoice]
    cost_ratio: float
    accuracy_estimate: float | None
    note: str = ("accuracy_estimate is the lowest accuracy ratio among the chosen operators, not a trained mix: "
                 "measure it with syno-tvm optimize --per-layer per_layer.json --accuracy DATA")

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "groups": [g.to_json() for g in self.groups], "cost_ratio": self.cost_ratio,
                "accuracy_estimate": self.accuracy_estimate, "note": self.note}

    def choice_map(self, record: SearchRecord) -> dict[str, str | None]:
        """layer -> inline operator JSON or None: the ``--per-layer`` file of ``syno-tvm optimize``."""
        ops = {r.fingerprint: r.candidate.operator for r in record.ok}
        out: dict[str, str | None] = {}
        for g in self.groups:
            text = json.dumps(ops[g.fingerprint].to_json(), separators=(",", ":")) if g.fingerprint else None
            for layer in g.layers:
                out[layer] = text
        return out


def _cost_key(record: SearchRecord) -> tuple[str, str, str]:
    """(evaluator, per-layer metric prefix, ratio name): latency when it was measured, else predicted latency,
    else FLOPs."""
    if "latency" in record.reference:
        return "latency", "latency_ms_layer", "latency_ratio"
    if "predicted" in record.reference:
        return "predicted", "predicted_us_layer", "predicted_ratio"
    if "flops" in record.reference:
        return "flops", "flops_layer", "flops_ratio"
    raise SynoError(f"the search in {record.out} measured neither latency nor FLOPs: no per-layer cost to compare")


def plan_per_layer(record: SearchRecord, candidates: list[Result] | None = None) -> PerLayerPlan:
    """Choose per layer group among ``candidates`` (default: the search's Pareto front) and the original."""
    layers = record.layers
    if not layers:
        raise SynoError(f"the search in {record.out} stored no layer groups: run it again with this version")
    evaluator, prefix, ratio_name = _cost_key(record)
    ref = record.reference[evaluator]
    reward = Reward(**record.config.get("reward", {}))
    pool = candidates if candidates is not None else record.pareto
    groups, total, ref_total, accs = [], 0.0, 0.0, []
    for i, use in enumerate(layers):
        key = f"{prefix}{i}"
        if key not in ref:
            raise SynoError(f"the search in {record.out} has no per-layer {prefix} metrics (an older evaluator "
                            "version): run the search again")
        base = ref[key]
        best = GroupChoice(list(use["layers"]), dict(use["binding"]), "", 1.0, None, reward({ratio_name: 1.0}))
        for r in pool:
            if key not in r.metrics:
                continue
            metrics = {ratio_name: r.metrics[key] / base}
            if "accuracy_ratio" in r.metrics:
                metrics["accuracy_ratio"] = r.metrics["accuracy_ratio"]
            score = reward(metrics)
            if score > best.reward:
                best = GroupChoice(best.layers, best.binding, r.fingerprint, metrics[ratio_name],
                                   metrics.get("accuracy_ratio"), score)
        groups.append(best)
        total += use["count"] * base * best.cost_ratio
        ref_total += use["count"] * base
        accs.append(best.accuracy_ratio if best.fingerprint else 1.0)
    measured = [a for a in accs if a is not None]
    return PerLayerPlan(evaluator, groups, total / ref_total if ref_total else 1.0,
                        min(measured) if measured and "accuracy" in record.reference else None)

