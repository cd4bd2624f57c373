"""Compile an operator's forward and backward PrimFuncs for a target and call them on numpy arrays."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import tvm

from ..errors import SynoError
from ..ir.graph import Operator
from ..ir.reference import check_arrays
from .te_backward import backward_primfunc
from .te_forward import forward_primfunc

Runner = Callable[..., np.ndarray]


def _runner(lib, out_shape: tuple[int, ...], dtype: str) -> Runner:
    def run(*arrays: np.ndarray) -> np.ndarray:
        out = tvm.runtime.tensor(np.zeros(out_shape, dtype=dtype))
        lib(*[tvm.runtime.tensor(np.ascontiguousarray(a, dtype=dtype)) for a in arrays], out)
        return out.numpy()

    return run


def compile_forward(op: Operator, binding: Mapping[str, int] | None = None, target="llvm",
                    dtype: str = "float32") -> Runner:
    """``run(X, W1, ...) -> Y`` compiled for ``target``."""
    lib = tvm.compile(forward_primfunc(op, binding, dtype), target=target)
    run = _runner(lib, op.shapes(binding)["Y"], dtype)

    def checked(*arrays: np.ndarray) -> np.ndarray:
        check_arrays(op, binding or {}, arrays)
        return run(*arrays)

    return checked


def compile_backward(op: Operator, tensor: int, binding: Mapping[str, int] | None = None, target="llvm",
                     dtype: str = "float32") -> Runner:
    """``run(dY, X, W1, ...) -> d(tensor)`` compiled for ``target``."""
    lib = tvm.compile(backward_primfunc(op, tensor, binding, dtype), target=target)
    shapes: Sequence = list(op.shapes(binding).values())
    run = _runner(lib, shapes[tensor], dtype)

    def checked(grad_out: np.ndarray, *arrays: np.ndarray) -> np.ndarray:
        if tuple(np.shape(grad_out)) != shapes[-1]:
            raise SynoError(f"dY must have shape {list(shapes[-1])} (rank {len(shapes[-1])}), "
                            f"got {list(np.shape(grad_out))}")
        check_arrays(op, binding or {}, arrays)
        return run(grad_out, *arrays)

    return checked
