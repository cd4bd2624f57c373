"""Forward lowering: one TVM tensor expression per operator, staged by :mod:`syno_tvm.lower.order`.

Index maps come from the primitive rules evaluated on TVM ``PrimExpr`` (``//`` is floordiv, ``%`` floormod, Shift a select), and
Unfold's zero padding is an ``if_then_else`` guard, so the same definition runs in training (via Relax) and
deployment.  The builder takes TE placeholders and returns the output tensor, which is the calling convention of
``relax.BlockBuilder.call_te``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import tvm
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


def _stage_tensor(op: Operator, binding: Mapping[str, int], stage: Stage, dims_of, tensors: list[te.Tensor],
                  name: str) -> te.Tensor:
    sz = op.bind(binding)
    full = op.binding(binding)
    prims = {i: op.prims[i] for i in stage.prims}
    dtype = tensors[0].dtype

    def body(*ivs):
        axes = [te.reduce_axis((0, sz[d]), name=f"r{d}") for d in stage.reduce]
        state = Propagation(dict(zip(stage.dims, ivs)))
        state.values.update({d: ax.var for d, ax in zip(stage.reduce, axes)})
        propagate(prims, op.sizes, state, lambda s: s.value(full), set())
        terms = [tensors[f][tuple(state.values[d] for d in dims_of(f))] for f in stage.factors]
        value = guarded_product(terms, state.guards, dtype)
        return te.sum(value, axis=axes) if axes else value

    return te.compute(tuple(sz[d] for d in stage.dims), body, name=name)


def forward(op: Operator, binding: Mapping[str, int] | None = None):
    """A function ``(X, W1, ...) -> Y`` over TE tensors, and the staging plan it uses."""
    op = fuse_shifts(op)
    order = make_plan(op, binding)

    def build(*tensors: te.Tensor) -> te.Tensor:
        all_tensors = list(tensors)
        for k, stage in enumerate(order.stages):
            last = k == len(order.stages) - 1
            all_tensors.append(_stage_tensor(op, binding or {}, stage, lambda f: order.factor_dims(op, f), all_tensors,
                                             "Y" if last else f"Z{k}"))
        return all_tensors[-1]

    return build, order


def placeholders(op: Operator, binding: Mapping[str, int] | None = None, dtype: str = "float32") -> list[te.Tensor]:
    """TE placeholders X, W1, ... with the operator's shapes under ``binding``."""
    shapes = op.shapes(binding)
    return [te.placeholder(shape, dtype=dtype, name=name) for name, shape in shapes.items() if name != "Y"]


def forward_primfunc(op: Operator, binding: Mapping[str, int] | None = None, dtype: str = "float32"):
    """``PrimFunc(X, W1, ..., Y)`` of the staged forward."""
    build, _ = forward(op, binding)
    args = placeholders(op, binding, dtype)
    return te.create_prim_func(args + [build(*args)])
