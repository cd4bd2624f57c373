"""Which layers an operator serves (relax/layers.py), checked on an ONNX model that holds every kind of conv a real
model has: 1x1, 3x3, 5x5, 7x7, biased, non-square kernels and inputs, strided, grouped, depthwise, "valid" padding,
and a fully connected layer.  The model runs in onnxruntime too, so "same function" means the peer's output."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper
from tvm import relax

from syno_tvm.ir.library import conv2d_depthwise, conv2d_grouped, convolution, named, syno_operator1
from syno_tvm.ir.reference import evaluate
from syno_tvm.relax.frontend import import_onnx
from syno_tvm.relax.layers import Kept, Layer, Serving, family, operator_kind, serve
from syno_tvm.relax.models import resnet18_cifar
from syno_tvm.relax.swap import OperatorSwap, find_layers

# (name, C_out, kernel (kh, kw), stride, groups, pads, bias): applied in sequence to a [1, 8, 12, 16] input
CONVS = [
    ("c1x1", 16, (1, 1), 1, 1, None, True),
    ("c3x3", 16, (3, 3), 1, 1, None, False),
    ("c5x5", 16, (5, 5), 1, 1, None, True),
    ("c7x7s2", 16, (7, 7), 2, 1, None, False),       # -> 6 x 8
    ("c1x3", 16, (1, 3), 1, 1, None, True),
    ("c3x1", 16, (3, 1), 1, 1, None, False),
    ("grouped", 16, (3, 3), 1, 4, None, True),
    ("depthwise", 16, (3, 3), 1, 16, None, False),
    ("dw_s2", 16, (3, 3), 2, 16, None, True),       # -> 3 x 4
    ("valid", 16, (3, 3), 1, 1, [0, 0, 0, 0], False),   # -> 1 x 2
]


def zoo() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    x, c = "x", 8
    for name, c_out, (kh, kw), s, g, pads, bias in CONVS:
        w = (rng.standard_normal((c_out, c // g, kh, kw)) * np.sqrt(2.0 / (c // g * kh * kw))).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"{name}_w"))
        inputs = [x, f"{name}_w"]
        if bias:
            inits.append(numpy_helper.from_array(rng.standard_normal(c_out).astype(np.float32), f"{name}_b"))
            inputs.append(f"{name}_b")
        nodes.append(helper.make_node("Conv", inputs, [name], kernel_shape=[kh, kw], strides=[s, s], group=g,
                                      pads=pads or [kh // 2, kw // 2, kh // 2, kw // 2]))
        nodes.append(helper.make_node("Relu", [name], [f"{name}_r"]))
        x, c = f"{name}_r", c_out
    nodes.append(helper.make_node("Flatten", [x], ["flat"]))
    inits.append(numpy_helper.from_array((rng.standard_normal((10, 32)) * 0.2).astype(np.float32), "fc_w"))
    inits.append(numpy_helper.from_array(rng.standard_normal(10).astype(np.float32), "fc_b"))
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], transB=1))
    graph = helper.make_graph(nodes, "zoo", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 12, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def model():
    return zoo()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).standard_normal((1, 8, 12, 16)).astype(np.float32)


def _run(mod, x):
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


def _peer(model, x):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _decisions(swap):
    return {d.layer: d for d in swap.decisions}


def test_layers_are_read_with_kernel_stride_groups(model):
    layers = [d for d in find_layers(import_onnx(model)) if d.kind == "conv2d"]
    assert [(d.shape["kernel"], d.shape.get("kernel_w", d.shape["kernel"]), d.shape["stride"],
             d.shape.get("groups", 1)) for d in layers] == [(kh, kw, s, g) for _, _, (kh, kw), s, g, _, _ in CONVS]


def test_conv2d_keeps_the_function_of_every_layer_it_takes(model, x):
    mod = import_onnx(model)
    swap = OperatorSwap(named("conv2d"))
    out = _run(swap(mod), x)
    d = _decisions(swap)
    swapped = {k for k, v in d.items() if v.action == "swap"}
    # dense convs of every kernel, stride and shape are rebuilt exactly; grouped ones, "valid" padding and the
    # matmul are kept, each with its reason
    assert swapped == {"conv2d_0", "conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4", "conv2d_5"}
    assert all(d[k].exact for k in swapped)
    assert "grouped (groups=4)" in d["conv2d_6"].reason and "depthwise" in d["conv2d_7"].reason
    assert "'same'" in d["conv2d_9"].reason
    assert d["matmul_0"].reason == "the operator is a convolution; this layer is a matmul"
    ref = _peer(model, x)
    assert np.abs(out - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


def test_group_and_depthwise_operators_bind_from_the_layer(model, x):
    mod = import_onnx(model)
    choice = {"conv2d_6": named("conv2d_grouped"), "conv2d_7": conv2d_depthwise(), "conv2d_8": conv2d_depthwise(),
              "matmul_0": named("linear")}
    swap = OperatorSwap(choice)
    out = _run(swap(mod), x)
    d = _decisions(swap)
    assert all(d[k].action == "swap" and d[k].exact for k in choice), [d[k].reason for k in choice]
    assert d["conv2d_6"].binding["C_in"] == 16 and swap.used["conv2d_6"].coefficient_values["g"] == 4
    ref = _peer(model, x)
    assert np.abs(out - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


def test_convolution_builder_matches_onnxruntime_for_each_form():
    rng = np.random.default_rng(2)
    for kh, kw, s, g, dw in [(3, 3, 2, 1, False), (1, 5, 1, 1, False), (5, 3, 2, 2, False), (3, 3, 2, 1, True),
                             (1, 1, 2, 1, False)]:
        c_in, c_out = (4, 4) if dw else (4, 6)
        op = convolution(kh, kw, s, g, depthwise=dw)
        b = {"N": 1, "C_in": c_in, "C_out": c_out, "H": 6, "W": 8}
        shapes = op.shapes(b)
        xs = rng.standard_normal(shapes["X"]).astype(np.float32)
        ws = rng.standard_normal(shapes["W1"]).astype(np.float32)
        groups = c_in if dw else g
        w_onnx = ws.reshape(c_out, c_in // groups, kh, kw)
        node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[kh, kw], strides=[s, s], group=groups,
                                pads=[kh // 2, kw // 2, kh // 2, kw // 2])
        graph = helper.make_graph([node], "c", [helper.make_tensor_value_info("x", TensorProto.FLOAT, xs.shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                  [numpy_helper.from_array(w_onnx, "w")])
        peer = _peer(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), xs)
        ours = evaluate(op, b, [xs, ws])
        assert ours.shape == peer.shape and np.abs(ours - peer).max() < 1e-4, (kh, kw, s, g, dw)


def test_other_operators_keep_layers_they_cannot_serve_with_the_reason(model):
    mod = import_onnx(model)
    swap = OperatorSwap(named("syno_operator1"))
    swap(mod)
    d = _decisions(swap)
    assert "not a positive integer" in d["conv2d_1"].reason      # C_out/(g*s) with g=32: 16 channels are too few
    assert d["conv2d_0"].reason == "the operator's window is 3x3; this layer's kernel is 1x1"
    assert d["conv2d_4"].reason == "the operator's window is 3x3; this layer's kernel is 1x3"
    assert d["conv2d_6"].action == "swap" and d["conv2d_6"].binding["g"] == 4 and not d["conv2d_6"].exact
    assert "'same'" in d["conv2d_9"].reason and "matmul" in d["matmul_0"].reason


def test_window_coefficient_binds_to_the_layer_kernel():
    op = syno_operator1(g=2)
    five = Layer("l", "conv2d", (1, 16, 8, 8), (1, 16, 8, 8), {"N": 1, "C_in": 16, "C_out": 16, "H": 8, "W": 8},
                 kernel=(5, 5), padding=(2, 2, 2, 2))
    served = serve(op, five)
    assert isinstance(served, Serving) and served.binding["k"] == 5 and not served.exact
    assert "k=5 from the layer" in served.note
    one = Layer("l", "conv2d", (1, 16, 8, 8), (1, 16, 8, 8), {"N": 1, "C_in": 16, "C_out": 16, "H": 8, "W": 8})
    assert isinstance(serve(op, one), Kept)
    shift = serve(named("shift_conv"), one)
    assert isinstance(shift, Kept) and "no window of its own" in shift.reason


def test_operator_kind_and_family():
    assert operator_kind(named("conv2d")) == "conv2d" and operator_kind(named("gpt2_qkv")) == "matmul"
    assert family(named("conv2d")) == "conv2d" and family(conv2d_grouped(3, 4)) == "conv2d_grouped"
    assert family(named("syno_operator1")) is None and family(named("linear")) == "linear"


def test_untrained_swap_keeps_activations_of_the_original_order():
    model = resnet18_cifar(width=8)
    mod = import_onnx(model)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    ref = np.abs(_run(mod, x)).max()
    for op in (syno_operator1(g=2), named("stacked_conv"), named("pool_conv")):
        out = _run(OperatorSwap(op)(mod), x)
        ratio = np.abs(out).max() / ref
        assert 0.05 < ratio < 20, (op.name, ratio)


def _dynamic(model: onnx.ModelProto, dims: list) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    shape = out.graph.input[0].type.tensor_type.shape
    for k, d in enumerate(dims):
        if isinstance(d, str):
            shape.dim[k].Clear()
            shape.dim[k].dim_param = d
    return out


def test_a_dynamic_batch_is_pinned_to_one_and_the_swap_keeps_the_function(model, x):
    """torch.onnx exports with dynamic_axes leave the batch symbolic: it is served at batch 1."""
    from syno_tvm.relax.frontend import load_onnx
    from syno_tvm.tune.measure import input_arrays

    dynamic = _dynamic(model, ["N", 8, 12, 16])
    assert [a.shape for a in input_arrays(load_onnx(dynamic))] == [(1, 8, 12, 16)]
    assert dynamic.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"   # the caller's model untouched
    static, swap = OperatorSwap(named("conv2d")), OperatorSwap(named("conv2d"))
    static(import_onnx(model))
    mod = swap(import_onnx(dynamic))
    assert [d.to_json() for d in swap.decisions] == [d.to_json() for d in static.decisions]
    assert all(d.exact for d in swap.decisions if d.action == "swap")
    np.testing.assert_allclose(_run(mod, x), _peer(model, x), rtol=1e-4, atol=1e-4)


def test_a_dynamic_spatial_dimension_is_refused_with_the_fix(model):
    from syno_tvm.errors import SynoError
    from syno_tvm.relax.frontend import load_onnx

    with pytest.raises(SynoError, match="dynamic dimension 2 .*make_dynamic_shape_fixed"):
        load_onnx(_dynamic(model, ["N", 8, "H", 16]))
