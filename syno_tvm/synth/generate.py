"""``syno-tvm synthesize``: draw distinct valid operators from a spec's space and write them as JSON lines.

Each line is written and flushed as soon as its operator is found, so a killed run keeps everything it printed.
"Distinct" is semantic: an operator whose fingerprint (:mod:`syno_tvm.synth.fingerprint`) equals an earlier one's
is skipped, so the file holds no two operators that compute the same function up to relabeling weight entries.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import SynoError
from .fingerprint import fingerprint
from .space import Space
from .spec import Spec


def records(spec: Spec, count: int, seed: int) -> Iterator[dict]:
    """``count`` records of semantically distinct final operators, in the order the sampler finds them."""
    if count < 1:
        raise SynoError(f"--count must be at least 1, got {count}")
    space = Space(spec)
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    while len(seen) < count:
        sample = space.random_final(rng)
        op = sample.final.operator
        fp = fingerprint(op, spec.probe_binding)
        if fp in seen:
            continue
        seen.add(fp)
        names = list(spec.layer_bindings)
        yield {
            "hash": op.hash, "fingerprint": fp, "depth": len(sample.path),
            "steps": [str(s) for s in sample.path],
            "flops": dict(zip(names, sample.final.flops)), "params": dict(zip(names, sample.final.params)),
            "operator": op.to_json(),
        }


def synthesize(spec: Spec, count: int, seed: int, out: str, progress: bool = True) -> int:
    """Write ``count`` operators to ``out`` (JSON lines, flushed one by one); returns how many were written."""
    if count < 1:
        raise SynoError(f"--count must be at least 1, got {count}")
    path = Path(out)
    if not path.parent.exists():
        raise SynoError(f"cannot write '{out}': directory '{path.parent}' does not exist")
    from tqdm import tqdm

    written = 0
    with open(path, "w") as f, tqdm(total=count, desc=f"synthesize {spec.name}", unit="op",
                                     disable=not progress) as bar:
        for rec in records(spec, count, seed):
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
            f.flush()
            written += 1
            bar.update(1)
    return written
