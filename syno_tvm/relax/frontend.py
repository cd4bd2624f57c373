"""ONNX -> Relax import with the standard cleanups (BatchNorm folded into the preceding conv, constants folded)."""

from __future__ import annotations

from pathlib import Path

import onnx
import tvm
from tvm import relax

from ..errors import SynoError
from .models import builtin


def load_onnx(source: "str | Path | onnx.ModelProto") -> onnx.ModelProto:
    """A ModelProto from ``builtin:NAME``, a file path, or a ModelProto; one SynoError line for anything else."""
    if isinstance(source, onnx.ModelProto):
        return source
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
    return model


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
