"""What every evaluator needs, in a form that crosses process and Ray boundaries (plain data, no space, no TVM
objects): the spec as JSON, the model, the target, a work directory, the layers an operator serves and the
reference operator's metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .space import Spec


@dataclass(frozen=True)
class LayerUse:
    """A distinct layer binding of the model and how many of the model's layers the swap pass binds that way."""

    binding: tuple[tuple[str, int], ...]
    count: int
    layers: tuple[str, ...]

    @property
    def values(self) -> dict[str, int]:
        return dict(self.binding)

    def to_json(self) -> dict[str, Any]:
        return {"binding": dict(self.binding), "count": self.count, "layers": list(self.layers)}


@dataclass
class EvalContext:
    """``spec_json`` rather than a Spec so that pickling (process pool, Ray) is plain data; ``reference`` holds
    the original operator's metrics per evaluator name, filled in by the driver before candidates run."""

    spec_json: dict[str, Any]
    model: str | None
    target: str
    work_dir: str
    layers: tuple[LayerUse, ...]
    seed: int = 0
    reference: dict[str, dict[str, float]] = field(default_factory=dict)
    max_cost_ratio: float | None = None

    @cached_property
    def spec(self) -> Spec:
        return Spec.from_json(self.spec_json)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("spec", None)  # rebuilt from spec_json on the other side
        return state
