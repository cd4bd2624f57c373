"""Write operators, and models with swapped layers, as standard ONNX (Gather, Einsum, Reshape, Concat, ...).

An operator is ``Y[o] = sum_r mask(o, r) * prod_t T_t[f_t(o, r)]``.  The index maps ``f_t`` and the mask are
computed here with the same numpy index rules as the reference (:func:`syno_tvm.ir.indexing.gather`), so the ONNX
graph is exact for every operator, not only for convolutions:

* each tensor becomes one Einsum operand.  A tensor whose dims are read straight by output/Reduce iterators
  (a 1x1 conv's weight, a Share'd weight) is used as it is; any other is flattened and read with one ``Gather``
  whose constant index array covers only the iterators its index depends on (im2col, for a conv's input);
* Unfold's zero padding (the mask) points out-of-range positions at an extra zero appended to the flattened
  tensor; a mask no single tensor covers, and iterators that no tensor reads (Expand; a Reduce over nothing),
  become one constant operand of zeros and ones;
* one ``Einsum`` multiplies the operands and sums the Reduce iterators.

:func:`export_swapped` rewrites an ONNX model the way :class:`~syno_tvm.relax.swap.OperatorSwap` rewrites its
Relax module: each swapped Conv (after an AveragePool for a strided one) and each swapped MatMul/Gemm becomes the
operator's subgraph with the swapped module's weights, so onnxruntime computes what the TVM build computes.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import onnx
import tvm
from onnx import TensorProto, helper, numpy_helper
from tvm import relax

from ..errors import SynoError
from ..ir.graph import Operator
from ..ir.indexing import gather
from ..ir.reference import guard_mask
from ..lower.te_forward import forward_stages
from .frontend import import_onnx, load_onnx
from .models import OPSET
from .swap import Decision, OperatorSwap

_LETTERS = string.ascii_lowercase + string.ascii_uppercase


@dataclass
class Subgraph:
    """ONNX nodes and constant initializers that compute one operator from named tensors."""

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, kind: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(kind, inputs, [output], name=output, **attrs))
        return output


def _direct_axes(values: list, grids: dict[int, np.ndarray], axis_of: dict[int, int]) -> list[int] | None:
    """The iterator axes of a tensor whose every dim is read by one distinct bottom iterator, else None."""
    axes = []
    for v in values:
        hit = [axis_of[d] for d, g in grids.items() if v is g]
        if not hit or hit[0] in axes:
            return None
        axes.append(hit[0])
    return axes


def _dependent_axes(array: np.ndarray) -> tuple[int, ...]:
    return tuple(i for i, n in enumerate(array.shape) if n > 1)


def _squeeze_to(array: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    keep = set(axes)
    return array.reshape([n for i, n in enumerate(array.shape) if i in keep])


def operator_subgraph(op: Operator, binding: Mapping[str, int], x: str, weights: Sequence[str], y: str,
                      prefix: str) -> Subgraph:
    """Nodes computing ``y`` = the operator applied to the tensors named ``x`` and ``weights`` (in the operator's
    shapes), for this binding.  Constant names start with ``prefix``."""
    shapes = op.shapes(binding)
    tensor_shapes = list(shapes.values())[:-1]
    if len(weights) != len(op.weights):
        raise SynoError(f"the operator takes {len(op.weights)} weight tensor(s), got {len(weights)}")
    sz = op.bind(binding)
    bottoms = list(op.output) + list(op.reduces)
    if len(bottoms) > len(_LETTERS):
        raise SynoError(f"the operator has {len(bottoms)} iterators; ONNX Einsum names at most {len(_LETTERS)}")
    extents = [sz[d] for d in bottoms]
    axis_of = {d: k for k, d in enumerate(bottoms)}
    grids = {d: np.arange(n).reshape([n if i == k else 1 for i in range(len(bottoms))])
             for k, (d, n) in enumerate(zip(bottoms, extents))}
    state = gather(op, grids, lambda s: s.value(op.binding(binding)))
    mask = np.ones([1] * len(bottoms), dtype=bool)
    for g in state.guards:
        mask = mask & guard_mask(g)
    masked = not mask.all()
    mask_axes = _dependent_axes(mask)

    values = [[state.values[d] for d in dims] for dims in op.tensors]
    deps = [set().union(*(_dependent_axes(np.asarray(v)) for v in vs)) for vs in values]
    # the mask goes to the first tensor whose index already varies over the mask's iterators (else the input)
    fold = next((t for t, dep in enumerate(deps) if set(mask_axes) <= dep), 0) if masked else None

    g = Subgraph()
    operands: list[tuple[str, tuple[int, ...]]] = []
    for t, (name, vs, shape) in enumerate(zip([x, *weights], values, tensor_shapes)):
        axes = _direct_axes(vs, grids, axis_of)
        if axes is not None and t != fold:
            operands.append((name, tuple(axes)))
            continue
        strides = np.cumprod((list(shape[1:]) + [1])[::-1])[::-1]
        flat = sum((np.asarray(v, dtype=np.int64) * int(st) for v, st in zip(vs, strides)),
                   np.zeros([1] * len(bottoms), dtype=np.int64))
        data = g.node("Reshape", [name, g.const(f"{prefix}_flat{t}", np.array([-1], dtype=np.int64))],
                      f"{prefix}_t{t}_flat")
        if t == fold:
            flat = np.where(mask, flat, int(np.prod(shape)))  # out of range -> the zero appended below
            data = g.node("Concat", [data, g.const(f"{prefix}_zero{t}", np.zeros(1, dtype=np.float32))],
                          f"{prefix}_t{t}_padded", axis=0)
        axes_t = _dependent_axes(flat)
        index = g.const(f"{prefix}_index{t}", _squeeze_to(flat, axes_t).astype(np.int64))
        operands.append((g.node("Gather", [data, index], f"{prefix}_t{t}_gathered", axis=0), axes_t))
    # iterators no tensor reads (Expand's output dims, a Reduce over nothing): one constant operand of ones
    covered = {a for _, axes in operands for a in axes}
    extra = tuple(a for a in range(len(bottoms)) if a not in covered)
    if extra:
        operands.append((g.const(f"{prefix}_ones", np.ones([extents[a] for a in extra], np.float32)), extra))
    equation = ",".join("".join(_LETTERS[a] for a in axes) for _, axes in operands)
    equation += "->" + _LETTERS[:len(op.output)]
    g.node("Einsum", [name for name, _ in operands], y, equation=equation)
    return g


def operator_model(op: Operator, binding: Mapping[str, int]) -> onnx.ModelProto:
    """A standalone ONNX model with inputs ``X, W1, ...`` and output ``Y``: the operator for this binding."""
    shapes = op.shapes(binding)
    names = list(shapes)
    g = operator_subgraph(op, binding, names[0], names[1:-1], names[-1], "op")
    inputs = [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(shapes[k])) for k in names[:-1]]
    output = helper.make_tensor_value_info(names[-1], TensorProto.FLOAT, list(shapes[names[-1]]))
    graph = helper.make_graph(g.nodes, op.name or "operator", inputs, [output], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    return model


def layer_weights(swapped: tvm.IRModule, swap: OperatorSwap) -> dict[str, list[np.ndarray]]:
    """The weights of the layers ``swap`` swapped in ``swapped`` (the module it returned): layer name ->
    [W1, W2, ...], read from the constant arguments of the layer's ``call_tir`` calls.

    A layer is one call per planned stage (:func:`~syno_tvm.lower.te_forward.forward_stages`), in program order,
    each taking its stage's factors: the stage plan of the layer's operator and binding says which argument is
    which weight.  Calls are matched by order, not by PrimFunc name: layers of equal shape share one deduplicated
    PrimFunc."""
    calls: list[list] = []

    def visit(expr) -> None:
        if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op) and expr.op.name == "relax.call_tir" \
                and expr.args[0].name_hint.startswith("syno_"):
            calls.append(list(expr.args[1].fields))

    relax.analysis.post_order_visit(swapped["main"], visit)
    swapped_layers = [d for d in swap.decisions if d.action == "swap"]
    plans = [forward_stages(swap.used[d.layer], d.binding)[0] for d in swapped_layers]
    if len(calls) != sum(len(stages) for stages in plans):
        raise SynoError(f"the module has {len(calls)} swapped call(s), expected "
                        f"{sum(len(stages) for stages in plans)} for {len(swapped_layers)} layer(s): pass the module "
                        "OperatorSwap returned for this model and choice, before other passes")
    out: dict[str, list[np.ndarray]] = {}
    for d, stages in zip(swapped_layers, plans):
        found: dict[int, np.ndarray] = {}
        n_weights = len(swap.used[d.layer].weights)
        for factors, _ in stages:
            for f, arg in zip(factors, calls.pop(0)):
                if 1 <= f <= n_weights:
                    found[f] = arg.value.numpy()
        out[d.layer] = [found[f] for f in range(1, n_weights + 1)]
    return out


def _initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    found = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            found[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return found


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def export_swapped(onnx_model: "onnx.ModelProto | str",
                   choice: "OperatorSwap | Operator | Mapping[str, Operator | None]",
                   params: "Mapping[str, Sequence[np.ndarray]] | tvm.IRModule", seed: int = 0,
                   bn_folded: bool = True) -> onnx.ModelProto:
    """The ONNX model with each layer that the swap replaces rewritten as its operator, in standard ONNX ops.

    ``choice`` is what :class:`OperatorSwap` takes (then the model is imported and swapped again, only for its
    decisions: which layers, bound how, pooled how), or the OperatorSwap already applied to this model (its
    decisions are reused, which skips a slow import).  ``params`` holds the new weights: the swapped Relax module
    itself (read with :func:`layer_weights`) or a map layer name -> [W1, ...] (e.g. after training).  Layers are
    matched the way the swap names them: ``conv2d_<i>`` is the i-th Conv node, ``matmul_<i>`` the i-th MatMul/Gemm
    with a constant weight.  With ``bn_folded`` (weights from the inference swap), a Conv without bias followed by
    BatchNormalization keeps only the BN's shift (an Add), as the Relax import for inference folds BN's scale into
    the conv weight the swap starts from; without it (weights from training, where BN stays a layer of its own) the
    BatchNormalization node is kept and reads the model's initializers."""
    model = load_onnx(onnx_model)
    swap = choice if isinstance(choice, OperatorSwap) else OperatorSwap(choice, seed=seed)
    if not swap.decisions:
        swap(import_onnx(model))
    decisions = {d.layer: d for d in swap.decisions if d.action == "swap"}
    weights = layer_weights(params, swap) if isinstance(params, tvm.IRModule) else dict(params)
    missing = sorted(set(decisions) - set(weights))
    if missing:
        raise SynoError(f"no weights given for swapped layer(s) {missing}: pass the swapped module or a map "
                        "layer -> [W1, ...]")

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = _initializers(model)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    new_nodes: list[onnx.NodeProto] = []
    replaced_bn: dict[str, str] = {}   # BN node output -> the Add that replaces it
    counts = {"conv2d": 0, "matmul": 0}
    for node in graph.node:
        if node.output[0] in replaced_bn:
            continue
        layer = None
        if node.op_type == "Conv":
            layer = f"conv2d_{counts['conv2d']}"
            counts["conv2d"] += 1
        elif node.op_type in ("MatMul", "Gemm") and node.input[1] in inits:
            layer = f"matmul_{counts['matmul']}"
            counts["matmul"] += 1
        if layer not in decisions:
            new_nodes.append(node)
            continue
        d, op = decisions[layer], swap.used[layer]
        emit = (_conv_layer if d.kind == "conv2d" else _matmul_layer)
        nodes, new_inits, bn = emit(node, d, op, weights[layer], inits, consumers if bn_folded else {})
        new_nodes.extend(nodes)
        graph.initializer.extend(new_inits)
        if bn is not None:
            replaced_bn[bn] = node.output[0]
    del graph.node[:]
    graph.node.extend(new_nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    out.graph.ClearField("value_info")
    onnx.checker.check_model(out)
    return out


def _weight_inits(layer: str, op: Operator, binding: Mapping[str, int], arrays: Sequence[np.ndarray]):
    shapes = [s for k, s in op.shapes(binding).items() if k.startswith("W")]
    if len(arrays) != len(shapes):
        raise SynoError(f"layer {layer}: the operator takes {len(shapes)} weight tensor(s), got {len(arrays)}")
    names, inits = [], []
    for i, (shape, a) in enumerate(zip(shapes, arrays)):
        a = np.asarray(a, dtype=np.float32)
        if tuple(a.shape) != tuple(shape):
            raise SynoError(f"layer {layer}: weight W{i + 1} must have shape {list(shape)}, got {list(a.shape)}")
        names.append(f"{layer}_W{i + 1}")
        inits.append(numpy_helper.from_array(a, names[-1]))
    return names, inits


def _conv_layer(node, d: Decision, op: Operator, arrays, inits, consumers):
    """AveragePool (strided convs) -> operator -> conv bias; a following BatchNormalization on a bias-free conv
    becomes an Add of its shift (its scale lives in the swapped weights, as after Relax's BN folding) unless
    ``consumers`` is empty (BN kept)."""
    layer, x, y = d.layer, node.input[0], node.output[0]
    w = inits.get(node.input[1])
    s = d.shape
    if w is None or tuple(w.shape) != (s["C_out"], s["C_in"], s["kernel"], s["kernel"]):
        raise SynoError(f"layer {layer}: the ONNX Conv '{node.name}' does not have the weight shape the swap saw "
                        f"({s['C_out']}x{s['C_in']}x{s['kernel']}x{s['kernel']}): export the model that was swapped")
    names, new_inits = _weight_inits(layer, op, d.binding, arrays)
    g = Subgraph(initializers=new_inits)
    if d.pool:
        x = g.node("AveragePool", [x], f"{layer}_pool", kernel_shape=[d.pool, d.pool], strides=[d.pool, d.pool])
    users = consumers.get(y, [])
    bn = users[0] if len(users) == 1 and users[0].op_type == "BatchNormalization" and len(node.input) < 3 else None
    bias = None
    if len(node.input) >= 3 and node.input[2]:
        bias = inits[node.input[2]].astype(np.float64)
    if bn is not None:
        gamma, beta, mean, var = (inits[n].astype(np.float64) for n in bn.input[1:5])
        eps = _attrs(bn).get("epsilon", 1e-5)
        bias = beta - mean * gamma / np.sqrt(var + eps)
        y = bn.output[0]
    op_out = f"{layer}_op" if bias is not None else y
    sub = operator_subgraph(op, d.binding, x, names, op_out, layer)
    g.nodes.extend(sub.nodes)
    g.initializers.extend(sub.initializers)
    if bias is not None:
        b = g.const(f"{layer}_bias", bias.astype(np.float32).reshape(1, -1, 1, 1))
        g.node("Add", [op_out, b], y)
    return g.nodes, g.initializers, bn.output[0] if bn is not None else None


def _matmul_layer(node, d: Decision, op: Operator, arrays, inits, consumers):
    """Reshape to (N, seq, H_in) -> operator -> reshape back; Gemm's alpha/beta/bias as ONNX defines them."""
    layer, x, y = d.layer, node.input[0], node.output[0]
    a = _attrs(node)
    if node.op_type == "Gemm" and (a.get("transA", 0) or a.get("alpha", 1.0) != 1.0):
        raise SynoError(f"layer {layer}: Gemm with transA or alpha != 1 cannot be exported")
    names, new_inits = _weight_inits(layer, op, d.binding, arrays)
    g = Subgraph(initializers=new_inits)
    s = d.shape
    x3 = g.node("Reshape", [x, g.const(f"{layer}_in_shape", np.array([s["N"], s["seq"], s["H_in"]], np.int64))],
                f"{layer}_x3")
    sub = operator_subgraph(op, d.binding, x3, names, f"{layer}_y3", layer)
    g.nodes.extend(sub.nodes)
    g.initializers.extend(sub.initializers)
    y3 = f"{layer}_y3"
    if node.op_type == "MatMul":  # y keeps x's leading dims
        lead = g.node("Shape", [x], f"{layer}_lead", end=-1)
        shape = g.node("Concat", [lead, g.const(f"{layer}_hout", np.array([s["H_out"]], np.int64))],
                       f"{layer}_yshape", axis=0)
        g.node("Reshape", [y3, shape], y)
    elif len(node.input) >= 3 and node.input[2]:
        y2 = g.node("Reshape", [y3, g.const(f"{layer}_out_shape", np.array([-1, s["H_out"]], np.int64))],
                    f"{layer}_y2")
        c = inits[node.input[2]].astype(np.float32) * np.float32(a.get("beta", 1.0))
        g.node("Add", [y2, g.const(f"{layer}_bias", c)], y)
    else:
        g.node("Reshape", [y3, g.const(f"{layer}_out_shape", np.array([-1, s["H_out"]], np.int64))], y)
    return g.nodes, g.initializers, None
