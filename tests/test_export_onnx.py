"""ONNX export: every named operator as standard ONNX ops equals the numpy reference, and swapped models exported
to ONNX compute in onnxruntime what the swapped TVM build computes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import tvm
from tvm import relax

from syno_tvm.errors import SynoError
from syno_tvm.ir.library import LIBRARY, conv2d_grouped, named, syno_operator1
from syno_tvm.ir.reference import evaluate
from syno_tvm.relax.export_onnx import export_swapped, layer_weights, operator_model
from syno_tvm.relax.frontend import import_onnx
from syno_tvm.relax.models import resnet18_cifar, small_cnn, transformer_block
from syno_tvm.relax.swap import OperatorSwap

ort = pytest.importorskip("onnxruntime")
STANDARD_OPS = {"Reshape", "Concat", "Gather", "Einsum", "Shape", "Add", "AveragePool"}


def _ort(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the unused-initializer warnings of the original model are noise here
    options.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


@pytest.mark.parametrize("name", list(LIBRARY))
def test_every_named_operator_equals_the_reference(name):
    entry = LIBRARY[name]
    op, binding = entry.build(), entry.example
    model = operator_model(op, binding)
    assert {n.op_type for n in model.graph.node} <= STANDARD_OPS
    shapes = op.shapes(binding)
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s).astype(np.float32) for k, s in shapes.items() if k != "Y"]
    (y,) = _ort(model, dict(zip(list(shapes)[:-1], arrays)))
    ref = evaluate(op, binding, arrays)
    assert y.shape == shapes["Y"]
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ref).max())))


def test_padding_is_exact_at_the_border():
    """A conv of an all-ones input with all-ones weights counts the in-range window taps: 4 in a corner."""
    op, binding = named("conv2d"), {"N": 1, "C_in": 1, "C_out": 1, "H": 4, "W": 5}
    (y,) = _ort(operator_model(op, binding), {"X": np.ones((1, 1, 4, 5), np.float32),
                                              "W1": np.ones((1, 1, 3, 3), np.float32)})
    assert y[0, 0, 0, 0] == 4 and y[0, 0, 1, 1] == 9 and y[0, 0, 3, 4] == 4 and y[0, 0, 0, 2] == 6


OPERATORS = {
    "conv2d": named("conv2d"),
    # g = 4 instead of 32 so that the narrow test models' channels (8..64) are divisible by g (times s)
    "syno_operator1": syno_operator1(g=4),
    "conv2d_grouped": conv2d_grouped(g=4),
    "shift_conv": named("shift_conv"),
}


@pytest.fixture(scope="module", params=["small_cnn", "resnet18_cifar_w8"])
def model(request):
    onnx_model = small_cnn() if request.param == "small_cnn" else resnet18_cifar(width=8)
    return onnx_model, import_onnx(onnx_model)


@pytest.mark.parametrize("op_name", list(OPERATORS))
def test_swapped_model_exports_to_onnx_exactly(model, op_name):
    onnx_model, mod = model
    swap = OperatorSwap(OPERATORS[op_name])
    swapped = swap(mod)
    assert any(d.action == "swap" for d in swap.decisions)
    x = np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(np.float32)
    vm = relax.VirtualMachine(tvm.compile(swapped, target="llvm"), tvm.cpu())
    expected = vm["main"](tvm.runtime.tensor(x)).numpy()

    exported = export_swapped(onnx_model, swap, swapped)
    kinds = {n.op_type for n in exported.graph.node}
    assert "Einsum" in kinds
    n_convs = sum(n.op_type == "Conv" for n in exported.graph.node)
    assert n_convs == sum(d.kind == "conv2d" and d.action == "keep" for d in swap.decisions)
    (y,) = _ort(exported, {onnx_model.graph.input[0].name: x})
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_choice_map_and_weight_map_matmul_layers():
    """A choice map (the model is imported again for the decisions) and weights as a dict, on matmul layers."""
    onnx_model = transformer_block()
    choice = {"matmul_0": named("linear"), "matmul_2": named("linear")}
    swap = OperatorSwap(choice)
    swapped = swap(import_onnx(onnx_model))
    layers = [d.layer for d in swap.decisions if d.action == "swap"]
    assert layers == ["matmul_0", "matmul_2"]
    weights = layer_weights(swapped, swap)
    x = np.random.default_rng(3).standard_normal((1, 16, 96)).astype(np.float32)
    vm = relax.VirtualMachine(tvm.compile(swapped, target="llvm"), tvm.cpu())
    expected = vm["main"](tvm.runtime.tensor(x)).numpy()
    (y,) = _ort(export_swapped(onnx_model, choice, weights), {onnx_model.graph.input[0].name: x})
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)

    # other weights give another model: the exported graph really uses the weights it is given
    scaled = {k: [2 * w for w in ws] for k, ws in weights.items()}
    (y2,) = _ort(export_swapped(onnx_model, choice, scaled), {onnx_model.graph.input[0].name: x})
    assert not np.allclose(y2, y, atol=1e-3)


def test_export_errors_are_synoerrors():
    onnx_model = small_cnn()
    choice = {"conv2d_1": named("shift_conv")}
    with pytest.raises(SynoError, match=r"no weights given for swapped layer\(s\) \['conv2d_1'\]"):
        export_swapped(onnx_model, choice, {})
    with pytest.raises(SynoError, match="weight W1 must have shape"):
        export_swapped(onnx_model, choice, {"conv2d_1": [np.zeros((3, 3), np.float32)]})
