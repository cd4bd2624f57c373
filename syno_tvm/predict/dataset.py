"""The latency dataset: measured (operator, layer binding, target) records, stored as JSON lines.

Two files in one directory, both append-only so that generation can stop at any moment and resume:

- ``operators.jsonl``: one line per operator, ``{"hash", "source", "operator"}`` (the operator's JSON once, however
  many bindings and targets measure it).
- ``records.jsonl``: one line per measurement, a :class:`Record`.  A record is keyed by (operator hash, binding
  name, target name, trials); a key already present is never measured again.

A half-written last line (a kill during a write) is skipped on reading and overwritten by the next append.
``VERSION`` changes when the meaning of a field changes; records of another version are not mixed in.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..ir.graph import Operator

VERSION = 1
OPERATORS = "operators.jsonl"
RECORDS = "records.jsonl"


@dataclass(frozen=True)
class Record:
    """One operator at one layer binding on one target.  ``tuned_us`` is MetaSchedule's best measured time at
    ``trials`` trials (mean of its runner's repeats); ``untuned_us`` the default schedule's time, nearly free;
    ``error`` says why a measurement is missing (lowering, build or tuning failed)."""

    op_hash: str
    binding_name: str
    binding: dict[str, int]
    target: str
    trials: int
    flops: int
    untuned_us: float | None = None
    tuned_us: float | None = None
    error: str = ""
    seconds: float = 0.0
    version: int = VERSION
    machine: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.op_hash, self.binding_name, self.target, self.trials)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Record":
        return cls(**data)


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        try:
            yield json.loads(line)
        except json.JSONDecodeError:  # the torn last line of an interrupted append
            continue


def _append(path: Path, row: dict[str, Any]) -> None:
    """Append one line, first cutting a torn last line (no trailing newline) so the file stays one row per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(row, sort_keys=True) + "\n"
    with open(path, "a+b") as f:
        size = f.seek(0, 2)
        if size:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                f.seek(0)
                data = f.read()
                f.truncate(data.rfind(b"\n") + 1)
        f.seek(0, 2)
        f.write(text.encode())
        f.flush()


@dataclass
class Dataset:
    """The records and operators of one dataset directory, loaded in memory; ``add_*`` append to the files."""

    root: Path
    operators: dict[str, Operator] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)

    @classmethod
    def open(cls, root: "str | Path") -> "Dataset":
        ds = cls(Path(root))
        for row in _lines(ds.root / OPERATORS):
            ds.operators[row["hash"]] = Operator.from_json(row["operator"])
            ds.sources[row["hash"]] = row["source"]
        ds.records = [Record.from_json(r) for r in _lines(ds.root / RECORDS) if r.get("version") == VERSION]
        return ds

    @property
    def keys(self) -> set[tuple[str, str, str, int]]:
        return {r.key for r in self.records}

    def add_operator(self, op: Operator, source: str) -> None:
        if op.hash in self.operators:
            return
        _append(self.root / OPERATORS, {"hash": op.hash, "source": source, "operator": op.to_json()})
        self.operators[op.hash], self.sources[op.hash] = op, source

    def add_record(self, record: Record) -> None:
        _append(self.root / RECORDS, record.to_json())
        self.records.append(record)

    def measured(self, target: str | None = None) -> list[Record]:
        """Records with a tuned latency (of ``target``, or every target)."""
        return [r for r in self.records if r.tuned_us is not None and (target is None or r.target == target)]
