"""The operator-swap pass: replace ``relax.nn.conv2d`` (and weight ``matmul``) calls with synthesized operators.

Usable as a plain ``tvm.transform`` module pass inside a user's ``Sequential``.  The choice is per layer: one
operator for every eligible layer, or a map ``layer name -> operator | None`` (None = keep).  Layer names are
``conv2d_<i>`` / ``matmul_<i>`` in program order.  Each decision, with its reason when a layer is kept, is recorded
in :attr:`OperatorSwap.decisions`.

Per layer the operator is bound to the layer's sizes by variable name (``N, C_in, C_out, H, W`` for convs,
``N, seq, H_in, H_out`` for matmuls); a layer is swapped only if every size is a positive integer there and the
operator's input and output shapes equal the layer's.  Strided convs follow Syno: ``AvgPool(s)`` then the operator
at the reduced resolution (a different function, reported as such).  Weights: if the operator has one weight with
as many elements as the original, it starts from the original weights (so ``conv2d`` reproduces the model
exactly); otherwise its weights are initialized randomly, scaled by fan-in, from a seed.
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
from ..lower.te_forward import forward


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

    def to_json(self) -> dict:
        return asdict(self)


def _shape(expr) -> tuple[int, ...] | None:
    shape = getattr(getattr(expr, "ty", None), "shape", None)
    try:
        return tuple(int(s) for s in shape) if shape is not None else None
    except (TypeError, ValueError):
        return None


def _ints(xs) -> list[int]:
    return [int(x) for x in xs]


@dataclass
class OperatorSwap:
    """``OperatorSwap(op)`` or ``OperatorSwap({"conv2d_3": op, "conv2d_4": None})``; call ``.as_pass()`` for a
    ``tvm.transform`` pass, or apply it directly to a module."""

    choice: "Operator | Mapping[str, Operator | None] | None"
    seed: int = 0
    # emit call_tir_with_grad (with the operator's derived backward registered) so relax Gradient can train it
    differentiable: bool = False
    decisions: list[Decision] = field(default_factory=list)

    def operator_for(self, layer: str) -> Operator | None:
        if self.choice is None or isinstance(self.choice, Operator):
            return self.choice
        return self.choice.get(layer)

    def __call__(self, mod: tvm.IRModule) -> tvm.IRModule:
        self.decisions = []
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

    # ---- conv2d ---------------------------------------------------------------------------------------------------
    def _conv(self, call: relax.Call):
        name = f"conv2d_{self.counts['conv2d']}"
        self.counts["conv2d"] += 1
        x_shape, w_shape, y_shape = _shape(call.args[0]), _shape(call.args[1]), _shape(call)
        a = call.attrs
        strides, padding, dilation = _ints(a.strides), _ints(a.padding), _ints(a.dilation)
        n, c_in, h, w = x_shape
        c_out, _, kh, kw = w_shape
        shape = {"N": n, "C_in": c_in, "C_out": c_out, "H": h, "W": w, "kernel": kh, "stride": strides[0]}
        flops = 2 * int(np.prod(y_shape)) * int(np.prod(w_shape[1:]))
        d = Decision(name, "conv2d", shape, "keep", flops_before=flops, params_before=int(np.prod(w_shape)))
        self.swap.decisions.append(d)
        op = self.swap.operator_for(name)
        if op is None:
            d.reason = "not chosen"
            return call
        why = None
        if a.data_layout != "NCHW" or a.kernel_layout != "OIHW":
            why = f"layout {a.data_layout}/{a.kernel_layout} (only NCHW/OIHW)"
        elif int(a.groups) != 1:
            why = f"groups={int(a.groups)} (only dense convs are replaced)"
        elif dilation != [1, 1]:
            why = f"dilation {dilation}"
        elif kh != kw or padding != [kh // 2] * 4 or kh % 2 == 0:
            why = f"padding {padding} for a {kh}x{kw} kernel is not 'same'"
        elif strides[0] != strides[1] or h % strides[0] or w % strides[1]:
            why = f"stride {strides} does not divide the input {h}x{w}"
        if why:
            d.reason = why
            return call
        s = strides[0]
        binding = {"N": n, "C_in": c_in, "C_out": c_out, "H": h // s, "W": w // s}
        return self._replace(call, d, op, binding, (n, c_in, h // s, w // s), y_shape,
                             pool=s if s > 1 else 0, original=call.args[1])

    # ---- matmul with a constant weight ------------------------------------------------------------------------------
    def _matmul(self, call: relax.Call):
        x_shape, w_shape, y_shape = _shape(call.args[0]), _shape(call.args[1]), _shape(call)
        if not isinstance(call.args[1], tvm.ir.expr.Constant) or x_shape is None or w_shape is None or len(w_shape) != 2:
            return call  # activations x activations (attention scores) are not layers
        name = f"matmul_{self.counts['matmul']}"
        self.counts["matmul"] += 1
        lead = x_shape[:-1]
        n, seq = (lead[0], int(np.prod(lead[1:]))) if len(lead) >= 2 else (1, lead[0])
        shape = {"N": n, "seq": seq, "H_in": w_shape[0], "H_out": w_shape[1]}
        d = Decision(name, "matmul", shape, "keep", flops_before=2 * int(np.prod(y_shape)) * w_shape[0],
                     params_before=int(np.prod(w_shape)))
        self.swap.decisions.append(d)
        op = self.swap.operator_for(name)
        if op is None:
            d.reason = "not chosen"
            return call
        x = call.args[0]
        if len(lead) != 2:
            x = self.builder_.emit(relax.op.reshape(x, (n, seq, w_shape[0])))
        # ONNX stores [H_in, H_out]; the library's linear uses PyTorch's [H_out, H_in]
        original = relax.const(np.ascontiguousarray(call.args[1].value.numpy().T))
        out = self._replace(None, d, op, shape, (n, seq, w_shape[0]), (n, seq, w_shape[1]), pool=0,
                            original=original, x=x)
        if out is None:
            return call
        return out if len(lead) == 2 else self.builder_.emit(relax.op.reshape(out, y_shape))

    # ---- shared ---------------------------------------------------------------------------------------------------
    def _replace(self, call, d: Decision, op: Operator, binding: dict[str, int], x_shape, y_shape, pool: int,
                 original, x=None):
        try:
            shapes = op.shapes(binding, layer=d.layer)
        except SynoError as e:
            d.reason = str(e)
            return call
        if shapes["X"] != tuple(x_shape) or shapes["Y"] != tuple(y_shape):
            d.reason = f"operator maps {list(shapes['X'])} -> {list(shapes['Y'])}, layer is " \
                       f"{list(x_shape)} -> {list(y_shape)}"
            return call
        x = call.args[0] if x is None else x
        if pool:
            x = self.builder_.emit(relax.op.nn.avg_pool2d(x, pool_size=pool, strides=pool))
        weights = self._weights(op, binding, shapes, original)
        build, order = forward(op, binding)
        d.action, d.operator = "swap", op.name or op.hash
        d.binding, d.pool = dict(binding), pool
        d.reason = f"AvgPool({pool}) + operator (Syno's scheme for strided convs)" if pool else ""
        d.flops_after = order.flops + (int(np.prod(x_shape)) * pool * pool if pool else 0)
        d.params_after = op.params(binding)
        hint = f"syno_{op.name or 'op'}_{d.layer}"
        if self.swap.differentiable:
            from ..train.grad import register_gradient

            return self.builder_.call_te_with_grad(build, x, *weights, primfunc_name_hint=hint,
                                                   te_grad_name=register_gradient(op, binding))
        return self.builder_.call_te(build, x, *weights, primfunc_name_hint=hint)

    def _weights(self, op: Operator, binding, shapes, original) -> list:
        w_shapes = [s for k, s in shapes.items() if k.startswith("W")]
        orig = original.value.numpy() if isinstance(original, tvm.ir.expr.Constant) else None
        if len(w_shapes) == 1 and orig is not None and orig.size == int(np.prod(w_shapes[0])):
            return [relax.const(orig.reshape(w_shapes[0]).astype("float32"))]
        out = []
        for s in w_shapes:
            fan = max(1, int(np.prod(s)) // s[0])
            out.append(relax.const((self.rng.standard_normal(s) * np.sqrt(2.0 / fan)).astype("float32")))
        return out
