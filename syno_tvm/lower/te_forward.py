"""Forward lowering: one TVM tensor expression per operator, staged by :mod:`syno_tvm.lower.order`.

Index maps come from the primitive rules evaluated on TVM ``PrimExpr`` (``//`` is floordiv, ``%`` floormod, Shift a
select).  Unfold's zero padding is a range guard; where the guarded index is directly a tensor's index (a convolution's
window over the input) the guard moves into a zero-padded copy of that tensor, a separate stage as in TVM's own
conv2d, because a guard inside the reduction tunes about 2.5x slower (``benchmarks/padding_check.py``); any other
guard stays an ``if_then_else``.  The same definition runs in training (via Relax) and deployment.  The builder
takes TE placeholders and returns the output tensor, which is the calling convention of
``relax.BlockBuilder.call_te``.
"""

from __future__ import annotations

from typing import Mapping

import tvm
import tvm_ffi
from tvm import te

from ..ir.graph import Operator
from ..ir.indexing import Propagation, propagate
from ..ir.primitives import cyclic
from .normalize import fuse_shifts
from .order import Stage, plan as make_plan


@cyclic.register(tvm.ir.expr.ExprWithOp)
def _cyclic_select(i: tvm.ir.expr.ExprWithOp, shift: int, n: int) -> tvm.ir.expr.ExprWithOp:
    """Shift's wrap as one add and two selects instead of ``floormod`` (see :func:`syno_tvm.ir.primitives.cyclic`).

    ``n`` is a bound size (an int).  The shift is first reduced into ``[0, n)``, so for ``i`` in ``[-n, n)`` (a tensor
    index, or an Unfold index just outside its range, which a guard masks) the result equals ``(i + shift) mod n``.
    """
    q = shift % n
    if q == 0:
        return i
    y = i + q
    return tvm.tirx.Select(y >= n, y - n, tvm.tirx.Select(y < 0, y + n, y))


def tvm_guard(g: tuple) -> list:
    """A guard from the rule table as TVM boolean expressions."""
    if g[0] == "range":
        return [g[1] >= 0, g[1] < g[2]]
    if g[0] == "divides":
        return [tvm.tirx.EQ(tvm.tirx.floormod(g[1], g[2]), 0)]
    return [tvm.tirx.EQ(g[1], g[2])]


def guarded_product(terms: list, guards: list[tuple], dtype: str):
    """``prod(terms)``, zero where a guard fails (``if_then_else`` never reads out of bounds)."""
    prod = terms[0]
    for t in terms[1:]:
        prod = prod * t
    conds = [c for g in guards for c in tvm_guard(g)]
    if conds:
        prod = te.if_then_else(tvm.tirx.all(*conds), prod, tvm.tirx.const(0, dtype))
    return prod


def zero_padded(t: te.Tensor, pads: Mapping[int, tuple[int, int]]) -> te.Tensor:
    """``t`` extended along axis ``a`` to the index range ``pads[a] = (lo, hi)`` (lo <= 0), zero outside ``t``."""
    shape = [pads[a][1] - pads[a][0] + 1 if a in pads else int(n) for a, n in enumerate(t.shape)]

    def body(*p):
        src = tuple(p[a] + pads[a][0] if a in pads else p[a] for a in range(len(p)))
        conds = [c for a in pads for c in (src[a] >= 0, src[a] < int(t.shape[a]))]
        return te.if_then_else(tvm.tirx.all(*conds), t[src], tvm.tirx.const(0, t.dtype))

    return te.compute(tuple(shape), body, name=f"{t.op.name}_pad")


def plan_padding(reads: list[tuple[te.Tensor, tuple]], guards: list[tuple], extents: Mapping):
    """Which read axes to zero-pad, to what index range, and the guards that padding does not replace.

    Returns ``(pads, rest)`` with ``pads[r] = {axis: (lo, hi)}`` per read, or None when every guard must stay as an
    ``if_then_else`` (see :func:`padded_product`)."""
    ana = tvm.sym.Analyzer()
    for var, n in extents.items():
        ana.bind(var, tvm.ir.Range(0, n))

    def bounds(e) -> tuple[int, int]:
        if isinstance(e, int):
            return e, e
        b = ana.const_int_bound(e)
        return b.min_value, b.max_value

    def inside(e, n) -> bool:
        lo, hi = bounds(e)
        return 0 <= lo and hi < int(n)

    pads: list[dict[int, tuple[int, int]]] = [{} for _ in reads]
    rest = []
    for g in guards:
        if g[0] != "range" or not isinstance(g[1], tvm.ir.expr.ExprWithOp):
            rest.append(g)
            continue
        if inside(g[1], g[2]):
            continue
        lo, hi = bounds(g[1])
        spots = [(r, a) for r, (t, idx) in enumerate(reads) for a, e in enumerate(idx)
                 if int(t.shape[a]) == g[2] and isinstance(e, tvm.ir.expr.ExprWithOp)
                 and tvm_ffi.structural_equal(e, g[1])]
        if not spots or lo < -g[2] or hi >= 2 * g[2]:     # nothing to pad, or an index no padding covers
            rest.append(g)
            continue
        for r, a in spots:
            pads[r][a] = (min(lo, 0), max(hi, g[2] - 1))
    if not all(a in pad or inside(e, t.shape[a]) for (t, idx), pad in zip(reads, pads) for a, e in enumerate(idx)):
        return None
    return pads, rest


def padded_terms(reads: list[tuple[te.Tensor, tuple]], pads: list[dict[int, tuple[int, int]]]) -> list:
    """The reads as loads, those with ``pads`` from zero-padded copies (shifted indices)."""
    terms = []
    for (t, idx), pad in zip(reads, pads):
        if pad:
            t, idx = zero_padded(t, pad), tuple(e - pad[a][0] if a in pad else e for a, e in enumerate(idx))
        terms.append(t[idx])
    return terms


def padded_product(reads: list[tuple[te.Tensor, tuple]], guards: list[tuple], extents: Mapping, dtype: str):
    """``prod(t[idx] for t, idx in reads)`` under ``guards``, with range guards on tensor indices turned into padding.

    ``extents`` maps each free variable of the indices to its extent, to bound the padded range.  A range guard
    ``0 <= e < n`` where ``e`` is axis ``a`` of a read of an ``n``-long axis is exactly "read zero outside the tensor",
    so every read indexed by ``e`` goes to a zero-padded copy and the guard is dropped; a guard the bounds prove
    always true is dropped too.  ``if_then_else`` is lazy, so a guard also keeps *other* reads (``W[e // 2]``) in
    bounds: unless every remaining read is provably in bounds without the dropped guards, all guards stay.
    """
    padding = plan_padding(reads, guards, extents)
    if padding is None:
        return guarded_product([t[idx] for t, idx in reads], guards, dtype)
    pads, rest = padding
    return guarded_product(padded_terms(reads, pads), rest, dtype)


def _stage_tensor(op: Operator, binding: Mapping[str, int], stage: Stage, dims_of,
                  tensors: Mapping[int, te.Tensor], name: str) -> te.Tensor:
    sz = op.bind(binding)
    full = op.binding(binding)
    prims = {i: op.prims[i] for i in stage.prims}
    dtype = tensors[stage.factors[0]].dtype

    def body(*ivs):
        axes = [te.reduce_axis((0, sz[d]), name=f"r{d}") for d in stage.reduce]
        state = Propagation(dict(zip(stage.dims, ivs)))
        state.values.update({d: ax.var for d, ax in zip(stage.reduce, axes)})
        propagate(prims, op.sizes, state, lambda s: s.value(full), set())
        reads = [(tensors[f], tuple(state.values[d] for d in dims_of(f))) for f in stage.factors]
        extents = dict(zip(ivs, (sz[d] for d in stage.dims))) | {ax.var: sz[d] for d, ax in zip(stage.reduce, axes)}
        value = padded_product(reads, state.guards, extents, dtype)
        return te.sum(value, axis=axes) if axes else value

    return te.compute(tuple(sz[d] for d in stage.dims), body, name=name)


def forward(op: Operator, binding: Mapping[str, int] | None = None):
    """A function ``(X, W1, ...) -> Y`` over TE tensors (every stage in one TE graph), and the staging plan it uses."""
    stages, order = forward_stages(op, binding)
    return chained(stages), order


def chained(stages: list):
    """The stages of :func:`forward_stages` as one function ``(X, W1, ...) -> Y``: each stage reads its factors."""
    def build(*tensors: te.Tensor) -> te.Tensor:
        values = list(tensors)
        for factors, stage_build in stages:
            values.append(stage_build(*[values[f] for f in factors]))
        return values[-1]

    return build


def forward_stages(op: Operator, binding: Mapping[str, int] | None = None):
    """The staged forward as one TE function per stage, and the plan: ``[(factor ids, build)]`` in order, where
    ``build(*tensors)`` takes the tensors of those factor ids (the operator's X, W1, ... then earlier stages'
    results, numbered as in :class:`~syno_tvm.lower.order.Stage`) and returns that stage's result.

    Deployment calls each stage as its own PrimFunc, so MetaSchedule tunes each as its own task: a conv-like stage
    alone is a workload its multi-level tiling handles as it does conv2d, and the search space of a task is one
    stage's instead of the product of all of them."""
    op = fuse_shifts(op)
    order = make_plan(op, binding)
    n = len(order.stages)

    def stage_build(k: int, stage: Stage):
        def build(*tensors: te.Tensor) -> te.Tensor:
            return _stage_tensor(op, binding or {}, stage, lambda f: order.factor_dims(op, f),
                                 dict(zip(stage.factors, tensors)), "Y" if k == n - 1 else f"Z{k}")
        return build

    return [(stage.factors, stage_build(k, stage)) for k, stage in enumerate(order.stages)], order


def placeholders(op: Operator, binding: Mapping[str, int] | None = None, dtype: str = "float32") -> list[te.Tensor]:
    """TE placeholders X, W1, ... with the operator's shapes under ``binding``."""
    shapes = op.shapes(binding)
    return [te.placeholder(shape, dtype=dtype, name=name) for name, shape in shapes.items() if name != "Y"]


def forward_primfunc(op: Operator, binding: Mapping[str, int] | None = None, dtype: str = "float32"):
    """``PrimFunc(X, W1, ..., Y)`` of the staged forward."""
    build, _ = forward(op, binding)
    args = placeholders(op, binding, dtype)
    return te.create_prim_func(args + [build(*args)])
