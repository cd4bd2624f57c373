"""ONNX -> Relax import with the standard cleanups (BatchNorm folded into the preceding conv, constants folded)."""

from __future__ import annotations

from pathlib import Path

import onnx
import tvm
from tvm import relax

from ..errors import SynoError
from .models import builtin


def load_onnx(source: "str | Path | onnx.ModelProto") -> onnx.ModelProto:
    """A ModelProto from ``builtin:NAME``, a file path, or a ModelProto, with a dynamic batch dimension pinned to 1
    (:func:`static_batch`); one SynoError line for anything else."""
    if isinstance(source, onnx.ModelProto):
        return static_batch(source)
    text = str(source)
    if text.startswith("builtin:"):
        return builtin(text)
    path = Path(text)
    if not path.is_file():
        raise SynoError(f"model '{text}' does not exist: give an .onnx file or builtin:resnet18-cifar")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises several unrelated types for a bad file
        raise SynoError(f"'{text}' is not a valid ONNX model ({type(e).__name__}): export it with onnx or torch.onnx")
    return static_batch(model)


def static_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with a symbolic or unknown leading (batch) dimension of each input set to 1.

    Exported models usually leave the batch dynamic (``torch.onnx.export(dynamic_axes=...)``); the swap, the tuning
    and the latency all work on one static shape, and batch 1 is what the latency is reported for.  Any other
    dynamic dimension has no natural value, so it is refused with the fix.  A model without dynamic inputs comes
    back unchanged (the same object); otherwise a copy, the caller's model untouched."""
    init = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init]
    dynamic = [(i, k) for i in inputs for k, d in enumerate(i.type.tensor_type.shape.dim) if d.dim_value <= 0]
    if not dynamic:
        return model
    for inp, k in dynamic:
        if k > 0:
            dims = [d.dim_value or d.dim_param or "?" for d in inp.type.tensor_type.shape.dim]
            raise SynoError(f"input '{inp.name}' has the dynamic dimension {k} in {dims}: fix it with "
                            "python -m onnxruntime.tools.make_dynamic_shape_fixed (only the batch may be dynamic)")
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    names = {inp.name for inp, _ in dynamic}
    for inp in fixed.graph.input:
        if inp.name in names:
            inp.type.tensor_type.shape.dim[0].Clear()
            inp.type.tensor_type.shape.dim[0].dim_value = 1
    return fixed


def import_onnx(source: "str | Path | onnx.ModelProto") -> tvm.IRModule:
    """Relax module with weights as constants, BatchNorm folded into convs, constants folded."""
    from tvm.relax.frontend.onnx import from_onnx

    model = load_onnx(source)
    try:
        mod = from_onnx(model, keep_params_in_input=False)
    except Exception as e:  # the frontend raises bare errors for unsupported ops/opsets
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SynoError(f"TVM cannot import this ONNX model: {first[:200]}") from None
    seq = tvm.transform.Sequential([
        relax.transform.FoldBatchnormToConv2D(),
        relax.transform.DecomposeOpsForInference(),
        relax.transform.FoldConstant(),
    ])
    return seq(mod)
