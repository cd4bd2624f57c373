"""Backward lowering: the gradient of every tensor as a gather TE, derived from the same graph.

For tensor t, ``dT_t[y] = sum over the points of the iteration space that read T_t[y] of dY[out] * prod_{u != t}
T_u[...]``.  :func:`syno_tvm.ir.indexing.invert` parametrizes those points by ``y`` plus a few free iterators
using the inverse index rules (an Unfold read at ``x`` comes from ``i = x - j + K//2`` for each window offset j,
and so on), so the gradient is a plain reduction with no scatter and no atomics.  apache-tvm 0.27 has no
``te.gradient``; this is the derivation it would otherwise do, and it is checked against the numpy scatter and
against finite differences.

The builder's signature ``(dY, X, W1, ...) -> dT_t`` is what ``relax.training.utils.register_te_gradient`` expects.
"""

from __future__ import annotations

from typing import Mapping

from tvm import te

from ..ir.graph import Operator
from ..ir.indexing import invert
from .normalize import fuse_shifts
from .te_forward import padded_product, placeholders


def backward(op: Operator, tensor: int, binding: Mapping[str, int] | None = None):
    """A function ``(dY, X, W1, ...) -> d(tensor)`` over TE tensors (tensor 0 is X, 1.. the weights)."""
    op = fuse_shifts(op)
    sz = op.bind(binding)
    full = op.binding(binding)
    dims_t = op.tensors[tensor]
    name = "dX" if tensor == 0 else f"dW{tensor}"

    def build(grad_out: te.Tensor, *tensors: te.Tensor) -> te.Tensor:
        def body(*ys):
            axes: list = []

            def make_free(d: int):
                axes.append(te.reduce_axis((0, sz[d]), name=f"f{d}"))
                return axes[-1].var

            state = invert(op, tensor, dict(zip(dims_t, ys)), make_free, lambda s: s.value(full))
            reads = [(grad_out, tuple(state.values[d] for d in op.output))]
            reads += [(tensors[u], tuple(state.values[d] for d in dims))
                      for u, dims in enumerate(op.tensors) if u != tensor]
            extents = dict(zip(ys, (sz[d] for d in dims_t))) | {ax.var: int(ax.dom.extent) for ax in axes}
            value = padded_product(reads, state.guards, extents, grad_out.dtype)
            return te.sum(value, axis=axes) if axes else value

        return te.compute(tuple(sz[d] for d in dims_t), body, name=name)

    return build


def backward_primfunc(op: Operator, tensor: int, binding: Mapping[str, int] | None = None, dtype: str = "float32"):
    """``PrimFunc(dY, X, W1, ..., dT)``."""

    args = placeholders(op, binding, dtype)
    dy = te.placeholder(op.shapes(binding)["Y"], dtype=dtype, name="dY")
    return te.create_prim_func([dy] + args + [backward(op, tensor, binding)(dy, *args)])
