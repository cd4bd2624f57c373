"""The operator-swap pass on the built-in models: exactness with conv2d/linear, per-layer choice, skip reasons."""

import numpy as np
import pytest
import tvm
from tvm import relax

from syno_tvm.errors import SynoError
from syno_tvm.ir.library import named
from syno_tvm.relax.frontend import import_onnx, load_onnx
from syno_tvm.relax.models import resnet18_cifar, small_cnn, transformer_block
from syno_tvm.relax.swap import OperatorSwap, find_layers


def _run(mod, x):
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


def _input(model):
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return np.random.default_rng(0).standard_normal(shape).astype("float32")


def _close(a, b):
    return float(np.abs(a - b).max()) / max(1.0, float(np.abs(b).max()))


def _prim_names(mod):
    return [gv.name_hint for gv, f in mod.functions_items() if isinstance(f, tvm.tirx.PrimFunc)]


def test_conv2d_swap_reproduces_small_cnn_inside_user_sequential():
    model = small_cnn()
    mod = import_onnx(model)
    swap = OperatorSwap(named("conv2d"))
    user_pipeline = tvm.transform.Sequential([swap.as_pass(), relax.transform.FoldConstant()])
    swapped = user_pipeline(mod)
    assert [d.action for d in swap.decisions if d.kind == "conv2d"] == ["swap", "swap"]
    assert sum(n.startswith("syno_conv2d") for n in _prim_names(swapped)) == 2
    x = _input(model)
    assert _close(_run(swapped, x), _run(mod, x)) <= 1e-4


@pytest.fixture(scope="module")
def resnet8():
    """ResNet-18 at width 8: (model, its Relax module, an input, the module's output on it); the reference output
    is built once for the tests that compare a swapped ResNet-18 against it (a ResNet-18 build is seconds)."""
    model = resnet18_cifar(width=8)
    mod = import_onnx(model)
    x = _input(model)
    return model, mod, x, _run(mod, x)


def test_resnet18_per_layer_map_is_exact_and_lists_every_layer(resnet8):
    """A per-layer map (conv2d in the stride-1 3x3 convs) swaps exactly those and gives the same output; the
    original's output comes from the shared fixture."""
    model, mod, x, ref = resnet8
    layers = find_layers(mod)
    convs = [d for d in layers if d.kind == "conv2d"]
    assert len(convs) == 20 and [d.kind for d in layers].count("matmul") == 1
    choice = {d.layer: named("conv2d") for d in convs if d.shape["stride"] == 1 and d.shape["kernel"] == 3}
    swap = OperatorSwap(choice)
    swapped = swap(mod)
    assert sum(d.action == "swap" for d in swap.decisions) == len(choice) == 14   # stem + 4 + 3 + 3 + 3
    assert all(d.reason == "not chosen" for d in swap.decisions if d.action == "keep")
    assert _close(_run(swapped, x), ref) <= 1e-4


def test_layers_an_operator_cannot_serve_are_kept_with_the_reason():
    mod = import_onnx(small_cnn())          # C_in = 3 and 16: C_in/g with g=32 is not an integer
    swap = OperatorSwap(named("syno_operator1"))
    swap(mod)
    kept = [d for d in swap.decisions if d.kind == "conv2d"]
    assert all(d.action == "keep" for d in kept)
    assert "not a positive integer" in kept[0].reason and "layer 'conv2d_0'" in kept[0].reason


def test_strided_convs_are_exact_with_conv2d_and_avgpooled_for_other_operators(resnet8):
    """conv2d in the 6 strided convs is exact; another operator there runs at stride 1 behind an AvgPool(2); the
    original's output comes from the shared fixture."""
    model, mod, x, ref = resnet8
    strided = [d.layer for d in find_layers(mod) if d.kind == "conv2d" and d.shape["stride"] == 2]
    swap = OperatorSwap({name: named("conv2d") for name in strided})
    swapped = swap(mod)
    done = [d for d in swap.decisions if d.action == "swap"]
    assert len(done) == len(strided) == 6 and all(d.exact and d.pool == 0 for d in done)
    assert _close(_run(swapped, x), ref) <= 1e-4
    three = [name for name in strided if swap.used[name].coefficient_values.get("k") == 3]
    other = OperatorSwap({name: named("stacked_conv") for name in three})
    out = _run(other(mod), x)
    pooled = [d for d in other.decisions if d.action == "swap"]
    assert len(pooled) == 3 and all(d.pool == 2 and "AvgPool(2)" in d.reason and not d.exact for d in pooled)
    assert out.shape == (1, 10)


def test_linear_swap_reproduces_transformer_block():
    model = transformer_block(seq=8, d=32, heads=2)
    mod = import_onnx(model)
    mats = [d for d in find_layers(mod) if d.kind == "matmul"]
    assert len(mats) == 4                    # QKV, output projection, two MLP layers; attention matmuls are not layers
    swap = OperatorSwap(named("linear"))
    swapped = swap(mod)
    assert all(d.action == "swap" for d in swap.decisions)
    x = _input(model)
    assert _close(_run(swapped, x), _run(mod, x)) <= 1e-4


def test_unknown_layer_in_map_is_one_clear_error():
    mod = import_onnx(small_cnn())
    with pytest.raises(SynoError, match="conv2d_99"):
        OperatorSwap({"conv2d_99": named("conv2d")})(mod)


def test_bad_model_inputs(tmp_path):
    with pytest.raises(SynoError, match="does not exist"):
        load_onnx(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(SynoError, match="not a valid ONNX model"):
        load_onnx(bad)
    with pytest.raises(SynoError, match="unknown built-in model"):
        load_onnx("builtin:vgg")
