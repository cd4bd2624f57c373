"""What a strategy proposes (:class:`Candidate`) and what evaluation returns (:class:`Result`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..ir.graph import Operator

OK, FAILED, PRUNED = "ok", "failed", "pruned"
STATUSES = (OK, FAILED, PRUNED)


@dataclass(frozen=True)
class Candidate:
    """One proposed operator.  ``fingerprint`` is its semantic identity (two candidates with the same one compute
    the same function and are evaluated once); ``path`` the steps that reach it (kept as text for the record);
    ``source`` who proposed it (``random``, ``mcts``, ``seed:conv2d``)."""

    operator: Operator
    fingerprint: str
    path: tuple[str, ...] = ()
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"operator": self.operator.to_json(), "fingerprint": self.fingerprint, "path": list(self.path),
                "source": self.source}

    @staticmethod
    def from_json(data: dict[str, Any]) -> "Candidate":
        return Candidate(Operator.from_json(data["operator"]), data["fingerprint"], tuple(data["path"]),
                         data["source"])


@dataclass
class Result:
    """A candidate's evaluation.  ``status`` is ``ok``, ``failed`` (an evaluator raised: ``error`` says what) or
    ``pruned`` (a cheap evaluator's cost was above the cascade's limit, so the expensive ones were not run);
    ``metrics`` are what the evaluators measured, ``timings`` their seconds, ``versions`` name and version of each
    evaluator that ran, ``reward`` the scalar the strategy learns from (:mod:`syno_tvm.search.reward`)."""

    candidate: Candidate
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    reward: float = 0.0

    @property
    def fingerprint(self) -> str:
        return self.candidate.fingerprint

    def to_json(self) -> dict[str, Any]:
        return {"candidate": self.candidate.to_json(), "status": self.status, "metrics": self.metrics,
                "error": self.error, "timings": self.timings, "versions": self.versions, "reward": self.reward}

    @staticmethod
    def from_json(data: dict[str, Any]) -> "Result":
        return Result(Candidate.from_json(data["candidate"]), data["status"], dict(data["metrics"]), data["error"],
                      dict(data["timings"]), dict(data["versions"]), float(data["reward"]))
