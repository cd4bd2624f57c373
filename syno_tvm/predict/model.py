"""A tuned-latency model ready to use: fitted on the measured rows of one target, it predicts the MetaSchedule-tuned
time of an operator at a layer binding from the operator's features and its untuned (default-build) time.

Why untuned time is an input: it is nearly free (a build and a few calls, no tuning) and, held out by operator, it
alone orders operators almost as well as the learned models (``benchmarks/results/predictor.txt``); the model adds
what tuning changes.  Why a regression and not the ranker: the search compares a candidate with the original
layer and sums layers, so it needs times, not only an order.  ``update`` folds in rows measured later (the search's
own tuned measurements), as HELP and MetaSchedule's cost model do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import SynoError
from ..ir.graph import Operator
from .dataset import Dataset, Record
from .features import features
from .predictor import LatencyPredictor, create

# the committed dataset (benchmarks/latency_dataset.py writes it), beside the package in a source checkout
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "latency"
GROUPS = ("graph", "analytic")
MIN_ROWS = 30  # fewer measured rows than this fit nothing useful


def target_json(target: str) -> str:
    """The TVM target a dataset target name stands for (``znver4-1t``: llvm, that ``-mcpu``, one core)."""
    return json.dumps({"kind": "llvm", "mcpu": target.split("-")[0], "num-cores": 1})


def row_features(op: Operator, binding: Mapping[str, int], untuned_us: float, target: str,
                 groups: tuple[str, ...] = GROUPS) -> np.ndarray:
    """The model's input: the feature ``groups`` (graph and analytic), then log2 of the untuned time."""
    return np.append(features(op, binding, groups, target_json(target)), math.log2(max(untuned_us, 1e-3)))


def choose_target(ds: Dataset, preferred: str) -> str:
    """``preferred`` when the dataset has rows of it, else the target with most rows (its name says which)."""
    counts: dict[str, int] = {}
    for r in ds.measured():
        counts[r.target] = counts.get(r.target, 0) + 1
    if not counts:
        raise SynoError(f"the latency dataset in {ds.root} has no measured rows: run benchmarks/latency_dataset.py")
    if counts.get(preferred, 0) >= MIN_ROWS:
        return preferred
    return max(sorted(counts), key=lambda t: counts[t])


@dataclass
class TunedLatencyModel:
    """XGBoost regression of log2 tuned microseconds, for one dataset target; ``rows`` what it was fitted on."""

    target: str
    predictor: LatencyPredictor
    rows: list[Record] = field(default_factory=list)
    X: np.ndarray | None = None

    @staticmethod
    def fit(ds: Dataset, target: str) -> "TunedLatencyModel":
        rows = [r for r in ds.measured(target) if r.untuned_us]
        if len(rows) < MIN_ROWS:
            raise SynoError(f"only {len(rows)} measured rows of target '{target}' in {ds.root} (need {MIN_ROWS}): "
                            "measure more with benchmarks/latency_dataset.py")
        X = np.array([row_features(ds.operators[r.op_hash], r.binding, r.untuned_us, target) for r in rows])
        y = np.log2([r.tuned_us for r in rows])
        group = np.array([r.binding_name for r in rows])
        return TunedLatencyModel(target, create("xgb").fit(X, y, group), rows, X)

    def predict_us(self, op: Operator, binding: Mapping[str, int], untuned_us: float) -> float:
        """Predicted tuned microseconds of ``op`` at ``binding``, given its measured untuned time."""
        x = row_features(op, binding, untuned_us, self.target)[None, :]
        return float(2.0 ** self.predictor.predict(x)[0])

    def update(self, op: Operator, binding: Mapping[str, int], untuned_us: float, tuned_us: float) -> None:
        """Fold in one newly measured (operator, binding): a few more boosting rounds on it."""
        x = row_features(op, binding, untuned_us, self.target)[None, :]
        self.predictor.update(x, np.log2([tuned_us]), np.array(["online"]))

    def neighbours(self, op: Operator, binding: Mapping[str, int], untuned_us: float, k: int = 3) -> list[Record]:
        """The ``k`` measured rows nearest to ``op`` at ``binding`` in standardized feature space: what the
        prediction leans on, for a person to judge it by."""
        assert self.X is not None
        scale = self.X.std(axis=0) + 1e-9
        x = row_features(op, binding, untuned_us, self.target)
        dist = np.linalg.norm((self.X - x) / scale, axis=1)
        return [self.rows[i] for i in np.argsort(dist, kind="stable")[:k]]


def load_model(data: "str | Path | None", preferred_target: str) -> TunedLatencyModel:
    """The model fitted on the dataset at ``data`` (default: the committed one) for the preferred target or the
    best-measured one."""
    root = Path(data) if data else DEFAULT_DATA
    if not (root / "records.jsonl").is_file():
        raise SynoError(f"no latency dataset at {root}: give its directory (benchmarks/latency_dataset.py makes one)")
    ds = Dataset.open(root)
    return TunedLatencyModel.fit(ds, choose_target(ds, preferred_target))


@dataclass
class Prediction:
    """What ``syno-tvm predict`` prints: the operator's untuned time measured here, its predicted tuned time, and
    the measured rows the model finds nearest (each: operator, binding, untuned and tuned microseconds)."""

    target: str
    rows: int
    binding: dict[str, int]
    untuned_us: float
    predicted_us: float
    neighbours: list[Record]

    def lines(self) -> list[str]:
        out = [f"model: XGBoost regression fitted on {self.rows} measured rows of target {self.target}",
               f"binding: {', '.join(f'{k}={v}' for k, v in self.binding.items())}",
               f"untuned (default build, measured here, 1 core): {self.untuned_us:.1f} us",
               f"predicted tuned: {self.predicted_us:.1f} us", "nearest measured rows:"]
        out += [f"  {r.op_hash[:12]} at {r.binding_name}: untuned {r.untuned_us:.1f} us, tuned {r.tuned_us:.1f} us "
                f"({r.trials} trials)" for r in self.neighbours]
        return out

    def to_json(self) -> dict:
        return {"target": self.target, "rows": self.rows, "binding": self.binding, "untuned_us": self.untuned_us,
                "predicted_us": self.predicted_us, "neighbours": [r.to_json() for r in self.neighbours]}


def predict(op: Operator, binding: Mapping[str, int], data: "str | Path | None" = None, k: int = 3) -> Prediction:
    """Time ``op`` untuned at ``binding`` on this CPU (one core) and predict its tuned time."""
    from .collect import host_target, time_untuned

    host = host_target()
    model = load_model(data, host.name)
    untuned = time_untuned(op, dict(binding), host.tvm())
    return Prediction(model.target, len(model.rows), dict(binding), untuned, model.predict_us(op, binding, untuned),
                      model.neighbours(op, binding, untuned, k))
