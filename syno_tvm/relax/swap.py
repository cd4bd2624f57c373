"""The operator-swap pass: replace ``relax.nn.conv2d`` (and weight ``matmul``) calls with synthesized operators.

Usable as a plain ``tvm.transform`` module pass inside a user's ``Sequential``.  The choice is per layer: one
operator for every eligible layer, or a map ``layer name -> operator | None`` (None = keep).  Layer names are
``conv2d_<i>`` / ``matmul_<i>`` in program order.  Each decision, with its reason when a layer is kept, is recorded
in :attr:`OperatorSwap.decisions`.

Which layers an operator serves and how (bound to the layer's sizes, a convolution operator rebuilt for the
layer's kernel, stride and groups, AvgPool before strided layers) is decided by :func:`.layers.serve`; a layer is
swapped only if the operator's input and output shapes then equal the layer's.  Weights: where the swap keeps the
layer's function (``Decision.exact``) it takes the layer's own weights, so ``conv2d`` reproduces any conv model;
otherwise new random weights from a seed, scaled so the layer's output keeps the original's variance
(:func:`init_scale`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping

import numpy as np
import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from ..errors import SynoError
from ..ir.graph import Operator
from ..lower.te_forward import chained, forward_stages
from .layers import Kept, Layer, conv_layer, matmul_layer, serve, static_shape


@dataclass
class Decision:
    """What the pass did with one layer, and why."""

    layer: str
    kind: str
    shape: dict[str, int]
    action: str                    # "swap" | "keep"
    operator: str = ""
    reason: str = ""
    flops_before: int = 0
    flops_after: int = 0
    params_before: int = 0
    params_after: int = 0
    # for a swap: the sizes the operator is bound to and the AvgPool factor before it (0: none); ONNX export
    # (export_onnx.py) rebuilds the layer from these
    binding: dict[str, int] = field(default_factory=dict)
    pool: int = 0
    # the swapped layer computes the original layer's function with its weights (a swap must not change outputs)
    exact: bool = False

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class OperatorSwap:
    """``OperatorSwap(op)`` or ``OperatorSwap({"conv2d_3": op, "conv2d_4": None})``; call ``.as_pass()`` for a
    ``tvm.transform`` pass, or apply it directly to a module."""

    choice: "Operator | Mapping[str, Operator | None] | None"
    seed: int = 0
    # emit call_tir_with_grad (with the operator's derived backward registered) so relax Gradient can train it
    differentiable: bool = False
    decisions: list[Decision] = field(default_factory=list)
    # layer -> the operator swapped in (a convolution operator is rebuilt per layer: relax/layers.py)
    used: dict[str, Operator] = field(default_factory=dict)

    def operator_for(self, layer: str) -> Operator | None:
        """The operator chosen for ``layer`` (before it is fitted to the layer: see :attr:`used`)."""
        if self.choice is None or isinstance(self.choice, Operator):
            return self.choice
        return self.choice.get(layer)

    def label(self, layer: str) -> str:
        op = self.operator_for(layer)
        return (op.name or op.hash) if op is not None else ""

    def __call__(self, mod: tvm.IRModule) -> tvm.IRModule:
        self.decisions, self.used = [], {}
        known = set(self.choice) if isinstance(self.choice, Mapping) else set()
        out = _Swapper(mod, self).transform()
        unknown = known - {d.layer for d in self.decisions}
        if unknown:
            raise SynoError(f"layer(s) {sorted(unknown)} not found: the model's layers are "
                            f"{', '.join(d.layer for d in self.decisions)}")
        return out

    def as_pass(self) -> tvm.transform.Pass:
        swap = self

        @tvm.transform.module_pass(opt_level=0, name="SynoOperatorSwap")
        def _pass(mod: tvm.IRModule, ctx) -> tvm.IRModule:
            return swap(mod)

        return _pass


def check_compiled_swaps(swap: OperatorSwap, target) -> None:
    """Each distinct (operator, binding) the pass swapped in, compiled for ``target`` and checked against the
    numpy reference (:func:`syno_tvm.lower.verify.check_compiled`: the training kernels; :func:`check_deployed`:
    the deployed stages, for a swap that is not the training one): raises ``CompiledMismatch`` on the first that differs.  For CPU targets only (the check
    runs the kernels here)."""
    from ..lower.verify import check_compiled

    if target.kind.name != "llvm":
        return
    seen = set()
    for d in swap.decisions:
        op = swap.used.get(d.layer)
        if d.action != "swap" or op is None:
            continue
        key = (op.hash, tuple(sorted(d.binding.items())))
        if key not in seen:
            seen.add(key)
            check_compiled(op, d.binding, target)
            if not swap.differentiable:   # training runs the fused forward and the backward, never the stages
                check_deployed(op, d.binding, target)


def find_layers(mod: tvm.IRModule) -> list[Decision]:
    """Every conv2d/matmul layer the pass would consider, with its sizes (all decisions are 'keep')."""
    swap = OperatorSwap(None)
    swap(mod)
    return swap.decisions


@mutator
class _Swapper(PyExprMutator):
    def __init__(self, mod: tvm.IRModule, swap: OperatorSwap) -> None:
        super().__init__(mod)
        self.mod_, self.swap = mod, swap
        self.counts = {"conv2d": 0, "matmul": 0}
        self.rng = np.random.default_rng(swap.seed)

    def transform(self) -> tvm.IRModule:
        for gv, func in self.mod_.functions_items():
            if isinstance(func, relax.Function):
                self.builder_.update_func(gv, self.visit_expr(func))
        return self.builder_.get()

    def visit_call_(self, call: relax.Call):  # noqa: N802 (TVM's visitor naming)
        call = self.visit_expr_post_order(call)
        if not isinstance(call.op, tvm.ir.Op):
            return call
        if call.op.name == "relax.nn.conv2d":
            return self._conv(call)
        if call.op.name == "relax.matmul":
            return self._matmul(call)
        return call

    # ---- layers --------------------------------------------------------------------------------------------------
    def _conv(self, call: relax.Call):
        layer = conv_layer(f"conv2d_{self.counts['conv2d']}", call)
        self.counts["conv2d"] += 1
        return self._layer(call, layer, call.args[0], layer.weight)

    def _matmul(self, call: relax.Call):
        x_shape, w_shape, y_shape = static_shape(call.args[0]), static_shape(call.args[1]), static_shape(call)
        if not isinstance(call.args[1], tvm.ir.expr.Constant) or x_shape is None or w_shape is None or len(w_shape) != 2:
            return call  # activations x activations (attention scores) are not layers
        # ONNX stores [H_in, H_out]; the library's linear uses PyTorch's [H_out, H_in]
        weight = np.ascontiguousarray(call.args[1].value.numpy().T)
        layer = matmul_layer(f"matmul_{self.counts['matmul']}", x_shape, w_shape, y_shape, weight)
        self.counts["matmul"] += 1
        x = call.args[0]
        if len(x_shape) != 3:
            x = self.builder_.emit(relax.op.reshape(x, layer.x_shape))
        out = self._layer(call, layer, x, weight)
        if out is call or len(x_shape) == 3:
            return out
        return self.builder_.emit(relax.op.reshape(out, y_shape))

    def _layer(self, call: relax.Call, layer: Layer, x, original: np.ndarray | None):
        d = Decision(layer.name, layer.kind, layer.summary(), "keep", flops_before=layer.flops,
                     params_before=layer.params)
        self.swap.decisions.append(d)
        op = self.swap.operator_for(layer.name)
        if op is None:
            d.reason = "not chosen"
            return call
        serving = serve(op, layer)
        if isinstance(serving, Kept):
            d.reason = serving.reason
            return call
        op, binding, pool = serving.operator, serving.binding, serving.pool
        try:
            shapes = op.shapes(binding, layer=layer.name)
        except SynoError as e:
            d.reason = str(e)
            return call
        x_shape = layer.x_shape[:2] + tuple(n // max(pool, 1) for n in layer.x_shape[2:]) if pool else layer.x_shape
        if shapes["X"] != tuple(x_shape) or shapes["Y"] != tuple(layer.y_shape):
            d.reason = (f"the operator maps {list(shapes['X'])} -> {list(shapes['Y'])}; this layer maps "
                        f"{list(x_shape)} -> {list(layer.y_shape)}")
            return call
        if pool:
            x = self.builder_.emit(relax.op.nn.avg_pool2d(x, pool_size=pool, strides=pool))
        weights = self._weights(op, binding, shapes, original, serving.exact)
        stages, order = forward_stages(op, binding)
        d.action, d.operator, d.exact = "swap", self.swap.label(layer.name), serving.exact
        d.binding, d.pool, d.reason = dict(binding), pool, serving.note
        d.flops_after = order.flops + (int(np.prod(x_shape)) * pool * pool if pool else 0)
        d.params_after = op.params(binding)
        self.swap.used[layer.name] = op
        hint = f"syno_{op.name or 'op'}_{d.layer}"
        if self.swap.differentiable:
            from ..train.grad import register_gradient

            return self.builder_.call_te_with_grad(chained(stages), x, *weights, primfunc_name_hint=hint,
                                                   te_grad_name=register_gradient(op, binding))
        return call_stages(self.builder_, stages, [x, *weights], hint)

    def _weights(self, op: Operator, binding, shapes, original: np.ndarray | None, exact: bool) -> list:
        """The layer's own weights where the swap keeps its function (and the layer's weight is a constant: in a
        training graph it is a parameter); otherwise new random weights whose scale keeps the layer's output of
        the original's order (see :func:`init_scale`)."""
        w_shapes = [s for k, s in shapes.items() if k.startswith("W")]
        if exact and original is not None:
            return [relax.const(np.ascontiguousarray(original).reshape(w_shapes[0]).astype("float32"))]
        std = init_scale(op, binding, original)
        return [relax.const((self.rng.standard_normal(s) * std).astype("float32")) for s in w_shapes]


def call_stages(bb: relax.BlockBuilder, stages: list, inputs: list, hint: str):
    """An operator's ``stages`` (:func:`~syno_tvm.lower.te_forward.forward_stages`) on ``inputs`` (X, W1, ...) for
    deployment: each stage its own PrimFunc, the earlier stages emitted into ``bb``, the last returned as a call for
    the caller to emit.  Each call takes its stage's factors: X, weights, earlier results.

    Why split: Operator 1's conv-like stage tuned as its own task reached 0.52x and 1.01x conv2d's GFLOP/s at 32
    trials (two seeds), inside one PrimFunc with its first stage 0.10x and 0.11x."""
    values = list(inputs)
    for k, (factors, build) in enumerate(stages[:-1]):
        values.append(bb.emit(bb.call_te(build, *[values[f] for f in factors], primfunc_name_hint=f"{hint}_z{k}")))
    factors, build = stages[-1]
    return bb.call_te(build, *[values[f] for f in factors], primfunc_name_hint=hint)


def operator_module(op: Operator, binding: Mapping[str, int]) -> tuple[tvm.IRModule, list[tuple[int, ...]]]:
    """A Relax module ``main(X, W1, ...) -> Y`` of ``op`` at ``binding`` in the form the pass deploys it
    (:func:`call_stages`), so MetaSchedule extracts the same tasks; and the input shapes."""
    shapes = op.shapes(binding)
    bb = relax.BlockBuilder()
    params = [relax.Var(name, relax.TensorType(tuple(shape), "float32")) for name, shape in shapes.items()
              if name != "Y"]
    with bb.function("main", params):
        with bb.dataflow():
            y = bb.emit_output(call_stages(bb, forward_stages(op, binding)[0], params, "syno_layer"))
        bb.emit_func_output(y)
    return bb.get(), [tuple(s) for n, s in shapes.items() if n != "Y"]


def check_deployed(op: Operator, binding: Mapping[str, int], target) -> None:
    """Raise ``CompiledMismatch`` when ``op`` at ``binding`` in its deployed form (one PrimFunc per stage, built
    by Relax for ``target``) differs from the numpy reference: :func:`~syno_tvm.lower.verify.check_compiled`
    checks the fused forward and the backward that training runs, and the split stages are other kernels for LLVM
    to get wrong."""
    from ..ir.reference import evaluate
    from ..lower.verify import TOLERANCE, CompiledMismatch

    mod, in_shapes = operator_module(op, binding)
    vm = relax.VirtualMachine(tvm.compile(mod, target=target), tvm.cpu())
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(-1, 1, s).astype("float32") for s in in_shapes]
    want = evaluate(op, binding, arrays)
    got = vm["main"](*[tvm.runtime.tensor(a) for a in arrays]).numpy()
    err = float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-30))
    if not err <= TOLERANCE:
        sizes = ",".join(f"{k}={v}" for k, v in binding.items())
        raise CompiledMismatch(f"operator {op.name or op.hash} at {sizes}: its deployed kernels compiled for "
                               f"{target.attrs.get('mcpu', '') or target} differ from the numpy reference "
                               f"(relative error {err:.2g}): a TVM/LLVM code-generation fault; use another "
                               "operator for this layer")


def init_scale(op: Operator, binding: Mapping[str, int], original: np.ndarray | None) -> float:
    """The standard deviation for every weight of ``op`` that gives its output the original layer's variance.

    Each output is a sum of R terms ``X[..] * W1[..] * ... * WT[..]`` (R: the product of the Reduce sizes).  With
    independent zero-mean weights, two terms are correlated only if they read the same entry of every weight: a
    Reduce no weight depends on (a weight-free window sum) makes classes of ``R / R_W`` such terms, where ``R_W``
    is the product of the Reduce sizes that reach a weight.  Activations after a ReLU have a mean about as large as
    their spread, so half of ``Var(X)`` adds within a class: ``Var(Y) = prod_t v_t * Var(X) * (R + R^2 / R_W) / 2``.
    The original layer gives ``sum_i W[o, i]^2 * Var(X)`` per output channel (each of its terms has a weight entry
    of its own); matching the mean over channels with one variance ``v`` for every weight gives
    ``v = (2 sum W^2 / C_out / (R + R^2 / R_W))^(1/T)``.  Scaling each weight by its own fan-in instead (the usual
    init) compounds over T weights and 20 layers (outputs of 1e30).  Without the original's values (a training
    graph's parameter) the gain is He's, 2: ``sum W^2 / C_out`` of a He-initialized layer."""
    sizes = op.bind(binding)
    reach = _reaching_weights(op)
    terms = float(np.prod([sizes[d] for d in op.reduces])) if op.reduces else 1.0
    weighted = float(np.prod([sizes[d] for d in op.reduces if d in reach])) if reach else 1.0
    gain = 0.0 if original is None else float(np.square(original, dtype=np.float64).sum()) / max(1, original.shape[0])
    if not gain > 0:
        gain = 2.0
    return float((2.0 * gain / (terms + terms * terms / weighted)) ** (0.5 / max(1, len(op.weights))))


def _reaching_weights(op: Operator) -> set[int]:
    """The Reduce dims whose index reaches a weight, going up through the primitives to the tensors."""
    out = set()
    for r in op.reduces:
        todo = [r]
        while todo:
            i = op.sink.get(todo.pop())
            if i is None:
                continue
            p = op.prims[i]
            if p.kind == "share":
                out.add(r)
                break
            todo.extend(p.tops)
    return out
