"""``syno-tvm synthesize``: draw distinct valid operators from a spec's space and write them as JSON lines.

Each line is written and flushed as soon as its operator is found, so a killed run keeps everything it printed.
"Distinct" is semantic: an operator whose fingerprint (:mod:`syno_tvm.synth.fingerprint`) equals an earlier one's
is skipped, so the file holds no two operators that compute the same function up to relabeling weight entries.
Two orders: ``random`` descents (:func:`random_samples`: the sampler that :func:`syno_tvm.synth.sampler.create` picks;
diverse; what search uses) or ``dfs``, the exhaustive depth-first enumeration
(:mod:`syno_tvm.synth.depth_first`: neighbours first, many of them semantic duplicates).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import SynoError
from .depth_first import depth_first
from .fingerprint import fingerprint
from .sampler import Sample, create
from .space import Space
from .spec import Spec


def random_samples(space: Space, seed: int, sampler: str = "auto") -> Iterator[Sample]:
    """Random finals, the same ones for the same seed: the native engine is seeded by the first draw of
    ``default_rng(seed)``, the Python descent draws each final's seed from the same generator.  Ends (SynoError)
    when the space is exhausted."""
    rng = np.random.default_rng(seed)
    drawer = create(sampler, space, int(rng.integers(1 << 62)))
    while True:
        yield drawer.random_final(rng)


def _depth_first(space: Space, seed: int) -> Iterator[Sample]:
    return depth_first(space)  # deterministic: the seed plays no part


ORDERS = {"random": random_samples, "dfs": _depth_first}


def records(spec: Spec, count: int, seed: int, order: str = "random") -> Iterator[dict]:
    """``count`` records of semantically distinct final operators, in the order ``order`` finds them (a key of
    ``ORDERS``; :func:`synthesize` checks it before writing anything)."""
    seen: set[str] = set()
    samples = ORDERS[order](Space(spec), seed)
    while len(seen) < count:
        sample = next(samples, None)
        if sample is None:
            raise SynoError(f"the space of spec '{spec.name}' holds only {len(seen)} semantically distinct operators; "
                            "ask for fewer, raise the depth or loosen the limits")
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


def synthesize(spec: Spec, count: int, seed: int, out: str, progress: bool = True, order: str = "random") -> int:
    """Write ``count`` operators to ``out`` (JSON lines, flushed one by one); returns how many were written."""
    if count < 1:
        raise SynoError(f"--count must be at least 1, got {count}")
    if order not in ORDERS:
        raise SynoError(f"unknown order '{order}': use one of {', '.join(ORDERS)}")
    path = Path(out)
    if not path.parent.exists():
        raise SynoError(f"cannot write '{out}': directory '{path.parent}' does not exist")
    from tqdm import tqdm

    written = 0
    with open(path, "w") as f, tqdm(total=count, desc=f"synthesize {spec.name}", unit="op",
                                     disable=not progress) as bar:
        for rec in records(spec, count, seed, order):
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
            f.flush()
            written += 1
            bar.update(1)
    return written
