"""Latency predictors: fit on measured records, predict a score that orders operators by tuned latency.

A search needs the order of candidates, not their microseconds, so the models are rankers: ``predict`` returns
predicted log2 microseconds (lower is faster) whose order is what is evaluated (Spearman, Kendall, top-10 % recall).
``create("xgb-rank")`` is XGBoost with the pairwise ranking objective, queries grouped by layer binding (operators
are compared with each other at the same binding, never across bindings, where size alone would order them);
``create("xgb")`` the same trees on squared error, the absolute-latency regressor it is compared with.

``update`` continues boosting from the fitted trees on new samples: the few-shot transfer to a new target
(train on target A, adapt with a handful of target-B measurements) and the search's online updates.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np


class LatencyPredictor(ABC):
    """``X`` rows are :func:`syno_tvm.predict.features.features` vectors; ``y`` log2 tuned microseconds; ``group``
    the binding of each row (rows are ranked against rows of the same group)."""

    name: str

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray, group: np.ndarray) -> "LatencyPredictor": ...

    @abstractmethod
    def update(self, X: np.ndarray, y: np.ndarray, group: np.ndarray) -> "LatencyPredictor": ...

    @abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def save(self, path: "str | Path") -> None: ...


def _sorted_by_group(X: np.ndarray, y: np.ndarray, group: np.ndarray):
    """XGBoost's ranking objectives want each query's rows contiguous, with the query sizes."""
    order = np.argsort(group, kind="stable")
    _, sizes = np.unique(group[order], return_counts=True)
    return X[order], y[order], sizes


class XGBPredictor(LatencyPredictor):
    """XGBoost trees; ``objective`` ``rank:pairwise`` (ranker) or ``reg:squarederror`` (regressor).
    Defaults: a few hundred shallow trees suit a few hundred to a few thousand rows."""

    def __init__(self, objective: str = "rank:pairwise", rounds: int = 300, update_rounds: int = 30,
                 params: dict[str, Any] | None = None) -> None:
        self.objective, self.rounds, self.update_rounds = objective, rounds, update_rounds
        self.name = "xgb-rank" if objective.startswith("rank") else "xgb"
        self.params = {"objective": objective, "max_depth": 5, "eta": 0.1, "subsample": 0.8,
                       "colsample_bytree": 0.8, "min_child_weight": 1, "seed": 0, **(params or {})}
        self.booster = None

    def _matrix(self, X, y, group):
        import xgboost as xgb

        if self.objective.startswith("rank"):
            X, y, sizes = _sorted_by_group(X, y, group)
            # rank objectives want relevance: higher is better, so a faster kernel ranks higher
            d = xgb.DMatrix(X, label=-y)
            d.set_group(sizes)
            return d
        return xgb.DMatrix(X, label=y)

    def fit(self, X, y, group):
        import xgboost as xgb

        self.booster = xgb.train(self.params, self._matrix(X, y, group), num_boost_round=self.rounds)
        return self

    def update(self, X, y, group):
        import xgboost as xgb

        if self.booster is None:
            return self.fit(X, y, group)
        self.booster = xgb.train(self.params, self._matrix(X, y, group), num_boost_round=self.update_rounds,
                                 xgb_model=self.booster)
        return self

    def predict(self, X):
        import xgboost as xgb

        out = self.booster.predict(xgb.DMatrix(X))
        return -out if self.objective.startswith("rank") else out

    def save(self, path):
        path = Path(path)
        self.booster.save_model(str(path))
        path.with_suffix(".meta.json").write_text(json.dumps(
            {"objective": self.objective, "rounds": self.rounds, "update_rounds": self.update_rounds}))

    @classmethod
    def load(cls, path: "str | Path") -> "XGBPredictor":
        import xgboost as xgb

        path = Path(path)
        meta = json.loads(path.with_suffix(".meta.json").read_text())
        p = cls(meta["objective"], meta["rounds"], meta["update_rounds"])
        p.booster = xgb.Booster()
        p.booster.load_model(str(path))
        return p


def create(name: str, **kwargs) -> LatencyPredictor:
    makers = {"xgb-rank": lambda: XGBPredictor("rank:pairwise", **kwargs),
              "xgb": lambda: XGBPredictor("reg:squarederror", **kwargs)}
    if name not in makers:
        raise ValueError(f"unknown predictor '{name}': use one of {', '.join(makers)}")
    return makers[name]()
