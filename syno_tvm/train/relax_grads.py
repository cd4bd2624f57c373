"""Relax gradients that apache-tvm 0.27 lacks and that real models need, registered once at import.

``relax.strided_slice`` (ONNX ``Slice``: a transformer's Q/K/V split) has no ``FPrimalGradient`` in 0.27, so
``relax.transform.Gradient`` fails on any model that slices an activation.  Registration is skipped for an op that
already has a gradient, so a TVM that adds its own keeps it.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.op.base import register_gradient
from tvm.relax.op.grad import no_grad

from ..errors import SynoError


def _ints(expr) -> list[int]:
    try:
        return [int(v.value if hasattr(v, "value") else v) for v in expr]
    except (TypeError, ValueError):
        raise SynoError("training needs Slice starts/ends/steps that are constants") from None


def strided_slice_grad(orig_var: relax.Var, orig_call: relax.Call, output_grad: relax.Var,
                       ctx: relax.BlockBuilder) -> list:
    """``y = x[begin:end]`` along ``axes`` (step 1): ``dx`` is ``dy`` zero-padded back to ``x``'s shape.  Other steps
    are refused (they would need a scatter; no model here uses them)."""
    x, axes, begin, end = orig_call.args[:4]
    if len(orig_call.args) > 4 and any(s != 1 for s in _ints(orig_call.args[4])):
        raise SynoError("training through a Slice with a step other than 1 is not supported")
    shape = [int(d) for d in x.ty.shape]
    pads = [0] * (2 * len(shape))
    for axis, b, e in zip(_ints(axes), _ints(begin), _ints(end)):
        axis %= len(shape)
        start, stop, _ = slice(b, e).indices(shape[axis])
        pads[2 * axis], pads[2 * axis + 1] = start, shape[axis] - max(stop, start)
    return [relax.op.nn.pad(output_grad, pads)] + [no_grad(a) for a in orig_call.args[1:]]


def _register() -> None:
    op = tvm.ir.Op.get("relax.strided_slice")
    if op.get_attr("FPrimalGradient") is None:
        register_gradient("relax.strided_slice", strided_slice_grad)


_register()
