"""Index propagation over an operator graph, in any value domain.

Forward (gather): the values of the bottom iterators (output dims and Reduce dims) determine every tensor index.
Backward (inverse): the values of one tensor's dims, plus a few *free* iterators chosen here, determine every
bottom iterator, which turns the gradient's scatter into a gather.  Both are the same fixpoint over the per-primitive
derivations of :mod:`syno_tvm.ir.primitives`; only the starting set differs.

Correctness of the inverse does not depend on which dims are chosen free: each derivation is exact (its guards
included), free dims range over their full extent, and a primitive whose branches all became known without firing
contributes an ``("eq", a, b)`` guard.  The choice only affects speed (a window of size K is a cheaper free
iterator than a spatial dim).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from .graph import Operator, Prim
from .primitives import branch_sizes, primitive
from .sizes import Size

Convert = Callable[[Size], Any]


@dataclass
class Propagation:
    """dim -> value, plus the guards every valid point must satisfy and the free dims (in order of choice)."""

    values: dict[int, Any]
    guards: list[tuple] = field(default_factory=list)
    free: list[int] = field(default_factory=list)


def _branches(p: Prim) -> dict[str, int]:
    out = {f"t{k}": d for k, d in enumerate(p.tops)}
    out.update({f"b{k}": d for k, d in enumerate(p.bottoms)})
    return out


def _sizes(p: Prim, sizes: Sequence[Size], convert: Convert) -> dict[str, Any]:
    return branch_sizes(p.kind, [sizes[d] for d in p.tops], [sizes[d] for d in p.bottoms], convert)


def _fire(p: Prim, sizes: Sequence[Size], state: Propagation, convert: Convert) -> bool:
    br = _branches(p)
    known = {b for b, d in br.items() if d in state.values}
    for der in primitive(p.kind).derivations:
        if der.needs <= known and not (der.gives & known):
            new, guards = der.fn({b: state.values[br[b]] for b in der.needs}, _sizes(p, sizes, convert), p.param)
            for b, v in new.items():
                state.values[br[b]] = v
            state.guards.extend(guards)
            return True
    return False


def propagate(prims: Mapping[int, Prim], sizes: Sequence[Size], state: Propagation, convert: Convert,
              fired: set[int]) -> None:
    """Fire derivations of ``prims`` (index -> Prim) until nothing new is known; ``fired`` records which fired."""
    changed = True
    while changed:
        changed = False
        for i, p in prims.items():
            if i not in fired and _fire(p, sizes, state, convert):
                fired.add(i)
                changed = True


def _consistency(prims: Mapping[int, Prim], sizes: Sequence[Size], state: Propagation, convert: Convert,
                 fired: set[int]) -> None:
    """Primitives whose branches all got values without firing: require their gather relation to hold."""
    for i, p in prims.items():
        g = primitive(p.kind).gather
        if i in fired or g is None or not all(d in state.values for d in p.tops + p.bottoms):
            continue
        tops, guards = g.fn({f"b{k}": state.values[d] for k, d in enumerate(p.bottoms)}, _sizes(p, sizes, convert),
                            p.param)
        state.guards.extend(guards)
        state.guards.extend(("eq", tops[f"t{k}"], state.values[d]) for k, d in enumerate(p.tops))


def gather(op: Operator, bottoms: dict[int, Any], convert: Convert) -> Propagation:
    """Forward index maps: ``bottoms`` gives a value for every output and Reduce dim."""
    state = Propagation(dict(bottoms))
    propagate(dict(enumerate(op.prims)), op.sizes, state, convert, set())
    missing = [d for t in op.tensors for d in t if d not in state.values]
    assert not missing, f"dims {missing} got no index: the operator graph is not connected to its bottom"
    return state


def invert(op: Operator, tensor: int, tops: dict[int, Any], make_free: Callable[[int], Any],
           convert: Convert) -> Propagation:
    """Index maps for the gradient of tensor ``tensor``: its dims are given in ``tops``; ``make_free(dim)`` creates
    a summation iterator for a dim that no derivation determines."""
    state = Propagation(dict(tops))
    fired: set[int] = set()
    prims = dict(enumerate(op.prims))
    bottom_sources = list(op.output) + list(op.reduces)
    needed = set(bottom_sources) | {d for t in op.tensors for d in t}
    while True:
        propagate(prims, op.sizes, state, convert, fired)
        if all(d in state.values for d in needed):
            break
        d = _choose_free(op, state)
        state.values[d] = make_free(d)
        state.free.append(d)
    propagate(prims, op.sizes, state, convert, fired)
    _consistency(prims, op.sizes, state, convert, fired)
    return state


def _choose_free(op: Operator, state: Propagation) -> int:
    """Prefer a small unknown dim next to a partly known primitive (an Unfold window first), else any source."""
    known = state.values
    best: tuple | None = None
    for p in op.prims:
        dims = p.tops + p.bottoms
        if not any(d in known for d in dims):
            continue
        for d in dims:
            if d not in known:
                window = p.kind == "unfold" and d == p.bottoms[1]
                key = (not window, _rough(op, op.sizes[d]), d)
                if best is None or key < best:
                    best = key
    if best is not None:
        return best[2]
    for d in list(op.reduces) + list(op.output) + [p.bottoms[0] for p in op.prims if p.kind == "expand"]:
        if d not in known:
            return d
    raise AssertionError("no free dim left but the inversion is incomplete")


def _rough(op: Operator, size: Size) -> float:
    """A size estimate for choosing cheap free iterators: coefficients count as small, primaries as large."""
    coeff = op.coefficient_values
    return sum(p * (1.0 if n in coeff else 4.0) for n, p in size.powers) + float(size.factor)
