"""The numpy reference: evaluate any operator straight from the index rules, for small sizes.

It materializes the whole iteration space (output dims x Reduce dims) as broadcast integer index arrays, gathers
every tensor, multiplies and sums.  No staging, no inversion, no TVM: it is the ground truth the TE lowering is
checked against.  Its gradient is the matching *scatter* (``np.add.at`` over the same index arrays), so it also
checks the backward lowering, which instead derives a gather from the inverse rules.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..errors import SynoError
from .graph import Operator
from .indexing import gather


def _space(op: Operator, binding: Mapping[str, int]):
    sz = op.bind(binding)
    bottoms = list(op.output) + list(op.reduces)
    shape = tuple(sz[d] for d in bottoms)
    grids = {d: np.arange(n).reshape([n if i == k else 1 for i in range(len(bottoms))])
             for k, (d, n) in enumerate(zip(bottoms, shape))}
    state = gather(op, grids, lambda s: s.value(op.binding(binding)))
    mask = np.ones(shape, dtype=bool)
    for g in state.guards:
        mask &= guard_mask(g)
    idx = []
    for dims in op.tensors:
        full = np.broadcast_arrays(*[np.broadcast_to(state.values[d], shape) for d in dims]) if dims else []
        idx.append(tuple(np.where(mask, v, 0) for v in full))
    return shape, mask, idx


def iteration_space(op: Operator, binding: Mapping[str, int]):
    """(shape, mask, index arrays per tensor) of the whole iteration space (output dims, then Reduce dims): the
    gather that :func:`evaluate` multiplies, for callers that need the index structure itself (synthesis's
    semantic fingerprint)."""
    return _space(op, binding)


def guard_mask(g: tuple) -> np.ndarray:
    """Where one index guard of the formula holds (``range``: 0 <= i < n; ``divides``: n | i; else i == j), as a
    boolean array: the NumPy reference and the ONNX export mask padded reads by it."""
    kind = g[0]
    if kind == "range":
        return (g[1] >= 0) & (g[1] < g[2])
    if kind == "divides":
        return g[1] % g[2] == 0
    return g[1] == g[2]


def check_arrays(op: Operator, binding: Mapping[str, int], arrays: Sequence[np.ndarray]) -> None:
    """Raise a SynoError if the arrays do not have the operator's shapes (rank included)."""
    shapes = list(op.shapes(binding).items())[:-1]
    if len(arrays) != len(shapes):
        raise SynoError(f"the operator takes {len(shapes)} tensors ({', '.join(k for k, _ in shapes)}), "
                        f"got {len(arrays)}")
    for (name, want), a in zip(shapes, arrays):
        if tuple(a.shape) != want:
            raise SynoError(f"{name} must have shape {list(want)} (rank {len(want)}), got {list(a.shape)}")


def evaluate(op: Operator, binding: Mapping[str, int], arrays: Sequence[np.ndarray]) -> np.ndarray:
    """``Y`` for input and weights ``arrays`` (X, W1, ...), in float64."""
    check_arrays(op, binding, arrays)
    shape, mask, idx = _space(op, binding)
    prod = mask.astype(np.float64)
    for a, ix in zip(arrays, idx):
        prod = prod * np.asarray(a, dtype=np.float64)[ix]
    n_out = len(op.output)
    return prod.sum(axis=tuple(range(n_out, len(shape)))) if len(shape) > n_out else prod


def gradient(op: Operator, binding: Mapping[str, int], arrays: Sequence[np.ndarray], grad_out: np.ndarray,
             tensor: int) -> np.ndarray:
    """d<grad_out, Y>/d arrays[tensor], by scattering over the iteration space."""
    check_arrays(op, binding, arrays)
    shape, mask, idx = _space(op, binding)
    n_out = len(op.output)
    term = mask * np.asarray(grad_out, dtype=np.float64).reshape(grad_out.shape + (1,) * (len(shape) - n_out))
    for u, (a, ix) in enumerate(zip(arrays, idx)):
        if u != tensor:
            term = term * np.asarray(a, dtype=np.float64)[ix]
    out = np.zeros(np.shape(arrays[tensor]), dtype=np.float64)
    np.add.at(out, tuple(np.broadcast_to(i, shape) for i in idx[tensor]), np.broadcast_to(term, shape))
    return out
