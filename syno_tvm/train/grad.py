"""Register an operator's derived backward TE as a Relax TE gradient, so ``call_tir_with_grad`` can be differentiated.

apache-tvm 0.27 cannot differentiate a plain ``call_tir`` (no gradient is known for a custom PrimFunc) and has no
``te.gradient``.  Its ``register_te_gradient(name, fn)`` lets ``relax.transform.Gradient`` call ``fn(dY, X, W...)``
for a ``call_tir_with_grad(..., te_grad_name=name)``; here ``fn`` returns the gather-form gradients of
:mod:`syno_tvm.lower.te_backward`: the same graph that produced the forward kernel, so training and deployment
compute one function.
"""

from __future__ import annotations

from typing import Mapping

from tvm.relax.training.utils import register_te_gradient

from ..ir.graph import Operator
from ..lower.te_backward import backward

_REGISTERED: set[str] = set()


def gradient_name(op: Operator, binding: Mapping[str, int]) -> str:
    """A name that is a function of the operator and its binding only, so registering twice is a no-op (TVM's
    global registry refuses a second function under one name)."""
    sizes = "_".join(f"{k}{v}" for k, v in sorted(op.binding(binding).items()))
    return f"syno_grad_{op.hash}_{sizes}"


def register_gradient(op: Operator, binding: Mapping[str, int]) -> str:
    """Register ``(dY, X, W1, ...) -> [dX, dW1, ...]`` for ``op`` at ``binding``; returns the te_grad_name."""
    name = gradient_name(op, binding)
    if name not in _REGISTERED:
        builders = [backward(op, t, binding) for t in range(len(op.tensors))]

        def grad(dy, *tensors):
            return [b(dy, *tensors) for b in builders]

        register_te_gradient(name, grad)
        _REGISTERED.add(name)
    return name
