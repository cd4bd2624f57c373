"""Search over the synthesis space: strategies propose operators, evaluators score them (FLOPs, tuned latency,
proxy accuracy), a reward with latency in it ranks them, and a SQLite database keeps every result and what a
``--resume`` needs.  Laid out like TVM MetaSchedule: one folder per pluggable concept, an abstract class each,
``create(name)`` factories, one file per implementation; :mod:`.driver` runs the loop.

The public entry points: :func:`search` runs or resumes a search described by a :class:`SearchConfig` and returns
a :class:`SearchSummary`; :func:`load` reads a search directory back (:class:`SearchRecord`: results, Pareto front,
best) and :func:`best_operator` returns its best operator, ready for :func:`syno_tvm.optimize.optimize`;
:func:`write_report` writes the report ``syno-tvm report`` writes.
"""

from .driver import SearchConfig, SearchSummary, search
from .report import write_report
from .results import SearchRecord, best_operator, load

__all__ = ["SearchConfig", "SearchSummary", "search", "SearchRecord", "load", "best_operator", "write_report"]
