"""Semantic fingerprint: equal for two operators that compute the same function up to relabeling weight entries.

Why this design.  An operator is multilinear: ``Y[y] = sum c * X[x] * W1[e1] * W2[e2]`` over a finite set of
*terms* (y, x, e1, e2) with integer multiplicities c.  Two operators compute the same function for every weight
value iff their term sets are equal as polynomials, i.e. the same (y, x, {entries}, c) multiset, and "up to a
relabeling of weight entries" means: equal after a bijection of weight entries (and of the weight tensors).  A
numeric probe with random weights cannot see through relabelings, and a canonical form of the index graph misses
equalities that only hold after reshaping a weight; the term set sees both, because it forgets how the weights are
laid out.  Deciding the bijection is graph isomorphism, so the fingerprint uses colour refinement (1-dimensional
Weisfeiler-Lehman) on the hypergraph whose hyperedges are the terms and whose nodes are weight entries; X and Y
indices are fixed labels (they are not relabeled).

Properties: relabeling-invariant by construction (every step is a symmetric function of the entries), so equal
functions always get equal fingerprints; different functions get different ones unless colour refinement cannot
tell them apart (regular structures it is known to confuse) or a 64-bit hash collides.  The terms are enumerated
on the spec's small *probe* binding, which is exact there; operators that agree on the probe but differ on larger
bindings are merged (the probe uses distinct coefficient values and small but non-trivial primaries to make that
rare).  Cost: the operator's iteration space at the probe binding, in numpy.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..ir.graph import Operator
from ..ir.reference import iteration_space

ROUNDS = 3
MAX_POINTS = 20_000_000

_C1, _C2, _C3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer, elementwise on uint64 (wrapping arithmetic)."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x += _C1
        x = (x ^ (x >> np.uint64(30))) * _C2
        x = (x ^ (x >> np.uint64(27))) * _C3
    return x ^ (x >> np.uint64(31))


def _combine(*parts: np.ndarray) -> np.ndarray:
    h = np.zeros(np.broadcast_shapes(*(np.shape(p) for p in parts)), dtype=np.uint64)
    for p in parts:
        h = _mix(h ^ np.asarray(p).astype(np.uint64))
    return h


def terms(op: Operator, binding: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """The term set at ``binding``: rows (y, x, e1, e2, ...) of flat indices, and their multiplicities."""
    shape, mask, idx = iteration_space(op, binding)
    shapes = list(op.shapes(binding).values())
    n_out = len(op.output)
    out_points = int(np.prod(shape[:n_out], dtype=np.int64))
    y = np.broadcast_to(np.arange(out_points).reshape(shape[:n_out] + (1,) * (len(shape) - n_out)), shape)
    cols = [y.ravel()]
    for t, dims_idx in enumerate(idx):
        full = [np.broadcast_to(i, shape) for i in dims_idx]
        cols.append(np.ravel_multi_index(full, shapes[t]).ravel() if full else np.zeros(y.size, np.int64))
    keep = np.broadcast_to(mask, shape).ravel()
    radix = [out_points] + [int(np.prod(s, dtype=np.int64)) for s in shapes[:-1]]
    if float(np.prod(radix, dtype=np.float64)) < 2.0 ** 62:
        # pack each row into one int64 (mixed radix): a 1-D unique is far faster than a row-wise one
        key = np.zeros(int(keep.sum()), dtype=np.int64)
        for c, r in zip(cols, radix):
            key = key * r + c[keep]
        key, counts = np.unique(key, return_counts=True)
        rows = np.empty((len(key), len(cols)), dtype=np.int64)
        for j in range(len(cols) - 1, -1, -1):
            key, rows[:, j] = np.divmod(key, radix[j])
        return rows, counts
    rows, counts = np.unique(np.stack(cols, axis=1)[keep], axis=0, return_counts=True)
    return rows, counts


def fingerprint(op: Operator, binding: Mapping[str, int]) -> str:
    """16 hex digits, equal for operators that are the same function up to relabeling weight entries."""
    shape = op.shapes(binding)
    sz = op.bind(binding)
    points = int(np.prod([sz[d] for d in op.output + op.reduces], dtype=np.float64))
    if points > MAX_POINTS:
        return "struct-" + op.hash  # too large to enumerate: fall back to the structural identity
    rows, counts = terms(op, binding)
    n_w = rows.shape[1] - 2
    sizes = [int(np.prod(shape[f"W{t}"])) for t in range(1, n_w + 1)]
    offsets = np.cumsum([0] + sizes)
    ent = [rows[:, 2 + t].astype(np.int64) + offsets[t] for t in range(n_w)]
    base = _combine(rows[:, 0], rows[:, 1], counts)
    color = np.ones(int(offsets[-1]), dtype=np.uint64)
    for _ in range(ROUNDS):
        mixed = [_mix(color[e]) for e in ent]
        total = np.zeros_like(base)
        with np.errstate(over="ignore"):
            for m in mixed:
                total += m
            new = np.zeros_like(color)
            for e, m in zip(ent, mixed):
                msg = _mix(_combine(base, color[e], total - m))
                np.add.at(new, e, msg)
        color = _combine(color, new)
    with np.errstate(over="ignore"):
        entry_sum = np.zeros_like(base)
        for e in ent:
            entry_sum += _mix(color[e])
        h = _combine(base, entry_sum)
        digest = np.uint64(h.sum(dtype=np.uint64))
    head = _combine(np.array([len(rows), n_w] + sorted(sizes) + list(shape["X"]) + list(shape["Y"]), dtype=np.int64))
    return f"{int(_combine(head.sum(dtype=np.uint64), digest)):016x}"
