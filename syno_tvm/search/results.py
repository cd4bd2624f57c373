"""Reading a finished (or running) search back: its settings, the reference metrics, every result, the Pareto
front and the best operator.  The public way in for code that uses a search's outcome (``syno-tvm report``, the
per-layer phase, a script that passes the best operator to :func:`syno_tvm.optimize.optimize`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SynoError
from ..ir.graph import Operator
from .candidate import OK, Result
from .database import DB_FILE
from .database import create as create_database
from .reward import cost_ratio, pareto


ORIGINAL_KEY = "original_fingerprint"  # meta key: the fingerprint of the operator the model already has


def best_result(results: list[Result], original: str = "") -> Result | None:
    """The ok result with the highest reward (the first evaluated among equals) that does not compute the original
    layer's function (``original``: its fingerprint): swapping the original in for itself changes nothing, so the
    MCTS seed conv2d, or a weight-layout twin of it, is a baseline, not a find.  None when there is no such result."""
    found = [r for r in results if r.status == OK and r.fingerprint != original]
    return max(found, key=lambda r: r.reward) if found else None


def pareto_results(results: list[Result]) -> list[Result]:
    """The ok results no other beats in (cost ratio, accuracy ratio), by cost; the reward stands in for the
    accuracy ratio when no accuracy was measured (then the front is the cheapest operator alone)."""
    pts = [r for r in results if r.status == OK and cost_ratio(r.metrics) is not None]
    quality = [quality_of(r) for r in pts]
    return [pts[i] for i in pareto([(cost_ratio(r.metrics), q) for r, q in zip(pts, quality)])]


def quality_of(result: Result) -> float:
    """What the Pareto front and the plot take as quality: the accuracy ratio, else the reward."""
    return result.metrics.get("accuracy_ratio", result.reward)


@dataclass
class SearchRecord:
    """Everything a search directory holds, read at once: ``config`` as stored (what a resume must repeat),
    ``reference`` the original operator's metrics per evaluator, ``layers`` the model's layer groups (binding,
    count, layer names: what ``metric_layer{i}`` metrics are indexed by), ``results`` in evaluation order,
    ``original`` the fingerprint of the original operator ("" in a search stored before it was recorded)."""

    out: str
    config: dict[str, Any]
    reference: dict[str, dict[str, float]]
    layers: list[dict[str, Any]]
    results: list[Result]
    original: str = ""

    @property
    def ok(self) -> list[Result]:
        return [r for r in self.results if r.status == OK]

    @property
    def pareto(self) -> list[Result]:
        return pareto_results(self.results)

    @property
    def best(self) -> Result:
        """The best find (:func:`best_result`): the highest reward among the ok results other than the original."""
        best = best_result(self.results, self.original)
        if best is None:
            what = "operator other than the original" if self.ok else "operator"
            raise SynoError(f"the search in {self.out} has no successfully evaluated {what} yet: "
                            "continue it with a larger budget")
        return best

    def to_json(self) -> dict[str, Any]:
        return {"out": self.out, "config": self.config, "reference": self.reference, "layers": self.layers,
                "results": [r.to_json() for r in self.results], "original": self.original}


def load(out: "str | Path") -> SearchRecord:
    """The search in directory ``out`` (a SynoError when there is none)."""
    path = Path(out) / DB_FILE
    if not path.is_file():
        raise SynoError(f"'{out}' holds no search ({DB_FILE} missing): give a syno-tvm search --out directory")
    db = create_database("sqlite", Path(out))
    try:
        return SearchRecord(str(out), db.get_meta("config") or {}, db.get_meta("reference") or {},
                            db.get_meta("layers") or [], db.results(), db.get_meta(ORIGINAL_KEY) or "")
    finally:
        db.close()


def best_operator(out: "str | Path") -> Operator:
    """The best operator (highest reward) of the search in ``out``, ready for ``optimize(operator=...)``."""
    return load(out).best.candidate.operator
