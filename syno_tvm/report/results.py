"""The result of one optimize run as dataclasses: what ``report.json`` holds and ``report.md`` is rendered from.

Why typed: the flow, the Markdown renderer and the CLI's summary all read the same result; with dataclasses a
renamed or missing field fails where it is read, not as a ``KeyError`` in a report, and ``from_json`` reads a
``report.json`` back into the same objects (``to_json(from_json(d)) == d``).  The JSON keeps the shape it had
as nested dicts, so scripts that read ``report.json`` are unaffected.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..relax.swap import Decision
from ..search.model_search import ModelSearch
from ..tune.measure import Latency
from ..tune.metaschedule import TaskStats, TuneResult
from ..tune.plan import TargetPlan


def tune_result_from_json(data: dict[str, Any]) -> TuneResult:
    """A :class:`TuneResult` from its ``to_json`` (the derived counts there are recomputed, not read)."""
    keep = {f.name for f in fields(TuneResult)}
    kw = {k: v for k, v in data.items() if k in keep}
    kw["tasks"] = [TaskStats(**t) for t in data.get("tasks", [])]
    return TuneResult(**kw)


@dataclass
class ModelRun:
    """One model (original or swapped) as the run handled it: its tuning (None when the target's plan tunes
    nothing: ``note`` says why), its latency (None when not measured: ``not_measured`` says why), and the exported
    library's file name (the swapped model only)."""

    name: str
    tuning: TuneResult | None = None
    latency: Latency | None = None
    note: str = ""
    not_measured: str = ""
    library: str = ""

    @property
    def median_ms(self) -> float | None:
        return self.latency.median_ms if self.latency else None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "tuning": self.tuning.to_json() if self.tuning else None,
                             "latency": self.latency.to_json() if self.latency else None}
        for key in ("note", "not_measured", "library"):
            if getattr(self, key):
                d[key] = getattr(self, key)
        return d

    @staticmethod
    def from_json(data: dict[str, Any]) -> "ModelRun":
        return ModelRun(data["name"], tune_result_from_json(data["tuning"]) if data.get("tuning") else None,
                        Latency(**data["latency"]) if data.get("latency") else None, data.get("note", ""),
                        data.get("not_measured", ""), data.get("library", ""))


@dataclass
class TrainedModel:
    """The proxy training of one model: last epoch's validation accuracy and loss, mean training images/s, and how
    many layers the training graph swapped."""

    val_acc: float
    val_loss: float
    images_per_s: float
    swapped_layers: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Accuracy:
    """Proxy accuracy of the original and the swapped model, one recipe (``recipe``: epochs, limit, batch, lr,
    optimizer, seed, width) and one seed for both; ``delta_pp`` swapped minus original, in percentage points."""

    data: str
    recipe: dict[str, Any]
    original: TrainedModel
    swapped: TrainedModel

    @property
    def delta_pp(self) -> float:
        return 100.0 * (self.swapped.val_acc - self.original.val_acc)

    def to_json(self) -> dict[str, Any]:
        return {"data": self.data, "recipe": dict(self.recipe), "original": self.original.to_json(),
                "swapped": self.swapped.to_json(), "delta_pp": self.delta_pp}

    @staticmethod
    def from_json(data: dict[str, Any]) -> "Accuracy":
        return Accuracy(data["data"], dict(data["recipe"]), TrainedModel(**data["original"]),
                        TrainedModel(**data["swapped"]))


@dataclass
class LayerTotals:
    """FLOPs and parameters of the conv/matmul layers before and after the swap (kept layers count as before)."""

    flops_before: int
    flops_after: int
    params_before: int
    params_after: int


@dataclass
class OptimizeReport:
    """Everything one ``syno-tvm optimize`` run did and measured.  ``onnxruntime`` is None off the host CPU;
    ``max_abs_output_diff`` is None unless every swapped layer keeps the layer's function (``output_diff_note``
    says which)."""

    model: str
    target: str
    target_name: str
    choice: str
    trials_per_task: int
    machine: dict[str, Any]
    plan: TargetPlan
    layers: list[Decision]
    original: ModelRun
    swapped: ModelRun
    onnxruntime: Latency | None = None
    max_abs_output_diff: float | None = None
    output_diff_note: str = ""
    search: ModelSearch | None = None
    accuracy: Accuracy | None = None
    seconds: float = 0.0

    @property
    def swapped_layers(self) -> int:
        return sum(d.action == "swap" for d in self.layers)

    @property
    def totals(self) -> LayerTotals:
        swap = [d.action == "swap" for d in self.layers]
        return LayerTotals(
            sum(d.flops_before for d in self.layers),
            sum(d.flops_after if s else d.flops_before for d, s in zip(self.layers, swap)),
            sum(d.params_before for d in self.layers),
            sum(d.params_after if s else d.params_before for d, s in zip(self.layers, swap)))

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "target": self.target, "target_name": self.target_name, "choice": self.choice,
                "trials_per_task": self.trials_per_task, "machine": dict(self.machine), "plan": self.plan.to_json(),
                "layers": [d.to_json() for d in self.layers], "original": self.original.to_json(),
                "swapped": self.swapped.to_json(),
                "onnxruntime": self.onnxruntime.to_json() if self.onnxruntime else None,
                "max_abs_output_diff": self.max_abs_output_diff, "output_diff_note": self.output_diff_note,
                "search": self.search.to_json() if self.search else None,
                "accuracy": self.accuracy.to_json() if self.accuracy else None, "seconds": self.seconds}

    @staticmethod
    def from_json(data: dict[str, Any]) -> "OptimizeReport":
        return OptimizeReport(
            data["model"], data["target"], data["target_name"], data["choice"], data["trials_per_task"],
            dict(data["machine"]), TargetPlan(**data["plan"]), [Decision(**d) for d in data["layers"]],
            ModelRun.from_json(data["original"]), ModelRun.from_json(data["swapped"]),
            Latency(**data["onnxruntime"]) if data.get("onnxruntime") else None, data.get("max_abs_output_diff"),
            data.get("output_diff_note", ""), ModelSearch.from_json(data["search"]) if data.get("search") else None,
            Accuracy.from_json(data["accuracy"]) if data.get("accuracy") else None, data.get("seconds", 0.0))
