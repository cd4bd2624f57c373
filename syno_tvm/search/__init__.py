"""Search over the synthesis space: strategies propose operators, evaluators score them (FLOPs, tuned latency,
proxy accuracy), a reward with latency in it ranks them, and a SQLite database keeps every result and what a
``--resume`` needs.  Laid out like TVM MetaSchedule: one folder per pluggable concept, an abstract class each,
``create(name)`` factories, one file per implementation; :mod:`.driver` runs the loop."""
