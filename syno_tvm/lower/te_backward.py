"""Backward lowering: the gradient of every tensor as a gather TE, derived from the same graph.

For tensor t, ``dT_t[y] = sum over the points of the iteration space that read T_t[y] of dY[out] * prod_{u != t}
T_u[...]``.  :func:`syno_tvm.ir.indexing.invert` parametrizes those points by ``y`` plus a few free iterators
using the inverse index rules (an Unfold read at ``x`` comes from ``i = x - j + K//2`` for each window offset j,
and so on), so the gradient is a plain reduction with no scatter and no atomics.  apache-tvm 0.27 has no
``te.gradient``; this is the derivation it would otherwise do, and it is checked against the numpy scatter and
against finite differences.  When a free iterator is read by only some factors, the sum is staged (those factors
are reduced over it first, into an intermediate), which makes the gradients of two-weight operators such as
Operator 1 several times cheaper (a training step of the proxy ResNet: 519 -> 190 ms).

The builder's signature ``(dY, X, W1, ...) -> dT_t`` is what ``relax.training.utils.register_te_gradient`` expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Mapping

import tvm
from tvm import te
from tvm.tirx.analysis import undefined_vars

from ..ir.graph import Operator
from ..ir.indexing import Propagation, invert
from .normalize import fuse_shifts
from .order import Early, cheapest_staging
from .te_forward import guarded_product, padded_product, padded_terms, placeholders, plan_padding


Key = tuple  # ("y", k): axis k of the gradient; ("f", d): the free iterator of dim d


@dataclass(frozen=True)
class _Stage:
    """``Z[index] = sum_{elim} prod_{factors}``; factor ids below the number of reads are reads of the gather,
    id ``reads + s`` is the result of stage ``s``."""

    factors: tuple[int, ...]
    index: tuple[Key, ...]
    elim: tuple[Key, ...]


def backward(op: Operator, tensor: int, binding: Mapping[str, int] | None = None):
    """A function ``(dY, X, W1, ...) -> d(tensor)`` over TE tensors (tensor 0 is X, 1.. the weights)."""
    op = fuse_shifts(op)
    sz = op.bind(binding)
    full = op.binding(binding)
    dims_t = op.tensors[tensor]
    name = "dX" if tensor == 0 else f"dW{tensor}"

    def gather(grad_out: te.Tensor, tensors, ys, make_free) -> tuple[Propagation, list]:
        state = invert(op, tensor, dict(zip(dims_t, ys)), make_free, lambda s: s.value(full))
        reads = [(grad_out, tuple(state.values[d] for d in op.output))]
        reads += [(tensors[u], tuple(state.values[d] for d in dims))
                  for u, dims in enumerate(op.tensors) if u != tensor]
        return state, reads

    def build(grad_out: te.Tensor, *tensors: te.Tensor) -> te.Tensor:
        staged = _staged(grad_out, tensors, gather, tuple(sz[d] for d in dims_t), sz, name)
        if staged is not None:
            return staged

        def body(*ys):
            axes: list = []

            def make_free(d: int):
                axes.append(te.reduce_axis((0, sz[d]), name=f"f{d}"))
                return axes[-1].var

            state, reads = gather(grad_out, tensors, ys, make_free)
            extents = dict(zip(ys, (sz[d] for d in dims_t))) | {ax.var: int(ax.dom.extent) for ax in axes}
            value = padded_product(reads, state.guards, extents, grad_out.dtype)
            return te.sum(value, axis=axes) if axes else value

        return te.compute(tuple(sz[d] for d in dims_t), body, name=name)

    return build


def _staged(grad_out: te.Tensor, tensors, gather, shape: tuple[int, ...], sz, name: str) -> te.Tensor | None:
    """The gradient with early reduction, or None when it saves no FLOPs or a guard is not padding.

    The single gather reduction multiplies every factor at every point of (gradient axes x free iterators).  A free
    iterator read by only some factors (W1 and W2 share a channel that dY never sees) can be summed over those
    first, into an intermediate indexed by the other iterators they read, as :mod:`syno_tvm.lower.order` does for
    the forward; here the intermediates are indexed by iterators, which the gather form makes easy.  Each stage
    re-derives its indices with :func:`invert` (deterministic: the same free dims in the same order), its own
    iterators in place of the ones it does not read.  Exact: every range guard must turn into zero padding of a
    read, which zeroes precisely the invalid terms of whatever stage holds that read."""
    names: dict[str, Key] = {}

    def probe_free(d: int):
        names[f"f{d}"] = ("f", d)
        return tvm.tirx.Var(f"f{d}", "int32")

    ys = [tvm.tirx.Var(f"y{k}", "int32") for k in range(len(shape))]
    names.update({f"y{k}": ("y", k) for k in range(len(shape))})
    state, reads = gather(grad_out, tensors, ys, probe_free)
    extent = {("y", k): n for k, n in enumerate(shape)} | {("f", d): sz[d] for d in state.free}
    padding = plan_padding(reads, state.guards, {v: extent[names[v.name]] for v in _vars(reads)})
    if padding is None or padding[1]:
        return None
    pads = padding[0]
    uses = [frozenset(names[v.name] for v in _vars([r])) for r in reads]
    order = [("y", k) for k in range(len(shape))] + [("f", d) for d in state.free]
    stages = _plan(uses, frozenset(("f", d) for d in state.free), order, extent)
    if stages is None:
        return None
    zero = tvm.tirx.const(0, "int32")
    built: list[tuple[te.Tensor, tuple[Key, ...]]] = []

    def stage_body(stage: _Stage):
        def body(*ivs):
            axes = [te.reduce_axis((0, extent[key]), name=f"r{key[1]}") for key in stage.elim]
            val = dict(zip(stage.index, ivs)) | {key: ax.var for key, ax in zip(stage.elim, axes)}
            _, rd = gather(grad_out, tensors, [val.get(("y", j), zero) for j in range(len(shape))],
                           lambda d: val.get(("f", d), zero))
            terms = []
            for f in stage.factors:
                if f < len(reads):
                    terms += padded_terms([rd[f]], [pads[f]])
                else:
                    z, keys = built[f - len(reads)]
                    terms.append(z[tuple(val[key] for key in keys)])
            value = guarded_product(terms, [], grad_out.dtype)  # no guards left: all became padding
            return te.sum(value, axis=axes) if axes else value

        return body

    for k, stage in enumerate(stages):
        label = name if k == len(stages) - 1 else f"{name}_Z{k}"
        built.append((te.compute(tuple(extent[key] for key in stage.index), stage_body(stage), name=label),
                      stage.index))
    return built[-1][0]


def backward_primfunc(op: Operator, tensor: int, binding: Mapping[str, int] | None = None, dtype: str = "float32"):
    """``PrimFunc(dY, X, W1, ..., dT)``."""

    args = placeholders(op, binding, dtype)
    dy = te.placeholder(op.shapes(binding)["Y"], dtype=dtype, name="dY")
    return te.create_prim_func([dy] + args + [backward(op, tensor, binding)(dy, *args)])


def _vars(reads: list) -> list:
    """The distinct iterators in the reads' indices (each probe iterator has its own name)."""
    out: dict[str, tvm.tirx.Var] = {}
    for _, idx in reads:
        for e in idx:
            if isinstance(e, tvm.ir.expr.ExprWithOp):
                out.update((v.name, v) for v in undefined_vars(e))
    return list(out.values())


@dataclass(frozen=True)
class _PlanState:
    factors: tuple[tuple[int, frozenset], ...]   # (factor id, the iterators it is indexed by)
    left: frozenset                              # iterators not yet summed out
    made: int = 0                                # stages made before this state (names the next result)


def _plan(uses: list[frozenset], free: frozenset, order: list[Key], extent: Mapping[Key, int]) -> list[_Stage] | None:
    """The FLOPs-minimal stages (``points x factors`` each, ties to fewer stages) over the factors' iterator sets
    ``uses``, by the forward planner's search (:func:`syno_tvm.lower.order.cheapest_staging`); None when one
    reduction is already the cheapest."""
    n_reads = len(uses)
    out_keys = tuple(k for k in order if k[0] == "y")

    def size(keys) -> int:
        return prod(extent[k] for k in keys)

    def final(st: _PlanState) -> tuple[_Stage, int]:
        stage = _Stage(tuple(f for f, _ in st.factors), out_keys, tuple(k for k in order if k in st.left))
        return stage, size(out_keys + stage.elim) * len(st.factors)

    def early(st: _PlanState, subset: tuple) -> Early[_PlanState, _Stage] | None:
        others = frozenset().union(*(u for f, u in st.factors if (f, u) not in subset))
        mine = frozenset().union(*(u for _, u in subset))
        elim = (mine & st.left) - others
        if not elim:
            return None
        stage = _Stage(tuple(f for f, _ in subset), tuple(x for x in order if x in mine - elim),
                       tuple(x for x in order if x in elim))
        rest = tuple(fu for fu in st.factors if fu not in subset) + ((n_reads + st.made, frozenset(stage.index)),)
        return Early(stage, size(stage.index + stage.elim) * len(subset),
                     _PlanState(rest, st.left - elim, st.made + 1))

    _, stages = cheapest_staging(_PlanState(tuple(enumerate(uses)), free), lambda st: st.factors, early, final)
    return stages if len(stages) > 1 else None
