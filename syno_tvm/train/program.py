"""The training program in Relax: model (original or swapped) + cross-entropy, differentiated by Relax's Gradient
pass, with the optimizer update inside the same compiled step.

From an ONNX model:

1. import with the initializers as named parameters, bind them as constants (so the swap pass sees the conv
   weights it copies), and swap operators in with ``differentiable=True``: each synthesized operator enters as
   ``call_tir_with_grad`` whose TE gradient is the operator's derived backward (:mod:`syno_tvm.train.grad`);
2. lift every float tensor constant back to a function parameter; BatchNorm running statistics become *state*
   inputs, everything else a trainable parameter.  Parameters keep their ONNX initializer names (matched by
   object identity), so trained weights can be written back into the ONNX file;
3. ``loss(x, onehot, *params, *states) -> (loss, logits, *new_states)``: BatchNorm in training mode, written out
   as batch mean/variance arithmetic because apache-tvm 0.27 registers no gradient for ``relax.nn.batch_norm``.
   Running statistics follow ONNX: ``running = momentum * running + (1 - momentum) * batch`` (population
   variance);
4. ``relax.transform.Gradient("loss")`` gives ``loss_adjoint``; ``step`` calls it and applies the optimizer
   (:mod:`syno_tvm.train.optim`); ``infer`` is the model with BatchNorm in inference mode;
5. the ``call_tir_with_grad`` calls left in the forward functions are turned into plain ``call_tir`` (VM codegen
   cannot emit them in TVM 0.27: "CodeGenVM cannot emit this Relax operator directly"), and the module is compiled once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import onnx
import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from ..errors import SynoError
from ..ir.graph import Operator
from ..relax.swap import Decision, OperatorSwap
from . import relax_grads  # noqa: F401 (registers the Relax gradients apache-tvm 0.27 lacks)
from .optim import SGD, Adam

_BN = tvm.ir.Op.get("relax.nn.batch_norm")
_LN = tvm.ir.Op.get("relax.nn.layer_norm")
_WITH_GRAD = tvm.ir.Op.get("relax.call_tir_with_grad")


def _is_tensor_const(e) -> bool:
    return isinstance(getattr(e, "value", None), tvm.runtime.Tensor)


@dataclass
class Slot:
    """One lifted tensor: its Relax parameter, a readable name, its initial value and whether it trains."""

    var: relax.Var
    name: str
    init: np.ndarray
    trainable: bool
    onnx_name: str | None


def _collect(func: relax.Function, onnx_params: Mapping[str, tvm.runtime.Tensor],
             layers: list[str]) -> list[tuple[object, Slot]]:
    """Every float tensor constant of ``func`` in program order, classified and named.

    A swapped layer's weights are named ``<layer>.W<k>`` (``layers``: the swapped layers in program order, which is
    the order of the ``call_tir_with_grad`` calls), not by PrimFunc: layers of equal shape share one deduplicated
    PrimFunc, and names must be unique for checkpoints and the ONNX export."""
    stats: list = []
    owner: list[tuple[object, str]] = []   # operator weights: (constant, "<layer>.W<k>")
    calls = iter(layers)

    def visit(e) -> None:
        if isinstance(e, relax.Call) and e.op.same_as(_BN):
            stats.extend([e.args[3], e.args[4]])
        if isinstance(e, relax.Call) and e.op.same_as(_WITH_GRAD):
            layer = next(calls, None)
            if layer is None:
                raise SynoError("more differentiable operator calls than swapped layers: build the graph from an "
                                "unswapped model")
            owner.extend((w, f"{layer}.W{k}") for k, w in enumerate(list(e.args[1])[1:], start=1))

    relax.analysis.post_order_visit(func.body, visit)
    consts: list = []
    relax.analysis.post_order_visit(func.body, lambda e: consts.append(e) if _is_tensor_const(e) else None)
    out: list[tuple[object, Slot]] = []
    for c in consts:
        if any(c.same_as(o) for o, _ in out) or "float" not in str(c.value.dtype) or len(c.value.shape) == 0:
            continue
        onnx_name = next((n for n, t in onnx_params.items() if c.value.same_as(t)), None)
        name = onnx_name or next((n for w, n in owner if c.same_as(w)), f"const_{len(out)}")
        trainable = not any(c.same_as(s) for s in stats)
        var = relax.Var(name.replace(".", "_"), relax.TensorType(tuple(int(d) for d in c.value.shape), "float32"))
        out.append((c, Slot(var, name, c.value.numpy().astype(np.float32), trainable, onnx_name)))
    return out


@mutator
class _Lift(PyExprMutator):
    """Constants -> parameter vars; BatchNorm -> batch-statistics arithmetic (``train``) or kept (inference)."""

    def __init__(self, mod: tvm.IRModule, slots: list[tuple[object, Slot]], train: bool) -> None:
        super().__init__(mod)
        self.slots, self.train = slots, train
        self.new_states: list[tuple[relax.Var, relax.Expr]] = []

    def visit_generic_const_(self, const):  # noqa: N802 (TVM's visitor naming)
        for c, slot in self.slots:
            if c.same_as(const):
                return slot.var
        return const

    def visit_call_(self, call: relax.Call):  # noqa: N802
        new = self.visit_expr_post_order(call)
        if self.train and call.op.same_as(_LN):
            return self._layer_norm(new)
        if not self.train or not call.op.same_as(_BN):
            return new
        x, gamma, beta, mean_v, var_v = new.args
        a = call.attrs
        axis = int(a.axis) % len(x.ty.shape)
        ndim = len(x.ty.shape)
        axes = [i for i in range(ndim) if i != axis]
        bshape = [int(d) if i == axis else 1 for i, d in enumerate(x.ty.shape)]
        bb = self.builder_
        mean = bb.emit(relax.op.mean(x, axis=axes, keepdims=True))
        var = bb.emit(relax.op.variance(x, axis=axes, keepdims=True))
        inv = bb.emit(relax.op.divide(relax.const(np.float32(1.0)),
                                      relax.op.sqrt(relax.op.add(var, relax.const(np.float32(float(a.epsilon)))))))
        y = bb.emit(relax.op.multiply(relax.op.subtract(x, mean), inv))
        if bool(a.scale):
            y = bb.emit(relax.op.multiply(y, relax.op.reshape(gamma, bshape)))
        if bool(a.center):
            y = bb.emit(relax.op.add(y, relax.op.reshape(beta, bshape)))
        m = float(a.momentum)
        c = int(x.ty.shape[axis])
        running = []
        for old, batch in ((mean_v, mean), (var_v, var)):
            running.append(bb.emit(relax.op.add(relax.op.multiply(relax.const(np.float32(m)), old),
                                                relax.op.multiply(relax.const(np.float32(1 - m)),
                                                                  relax.op.reshape(batch, [c])))))
            self.new_states.append((old, running[-1]))
        return relax.Tuple([y, running[0], running[1]])

    def _layer_norm(self, call: relax.Call) -> relax.Expr:
        """LayerNorm as mean/variance arithmetic: apache-tvm 0.27 registers no gradient for relax.nn.layer_norm."""
        x, gamma, beta = call.args
        a = call.attrs
        ndim = len(x.ty.shape)
        axes = sorted(int(i) % ndim for i in a.axes)
        bb = self.builder_
        mean = bb.emit(relax.op.mean(x, axis=axes, keepdims=True))
        var = bb.emit(relax.op.variance(x, axis=axes, keepdims=True))
        inv = bb.emit(relax.op.divide(relax.const(np.float32(1.0)),
                                      relax.op.sqrt(relax.op.add(var, relax.const(np.float32(float(a.epsilon)))))))
        y = bb.emit(relax.op.multiply(relax.op.subtract(x, mean), inv))
        if bool(a.scale):
            y = bb.emit(relax.op.multiply(y, gamma))
        if bool(a.center):
            y = bb.emit(relax.op.add(y, beta))
        return y

    def lift(self, func: relax.Function) -> tuple[relax.Function, list]:
        return self.visit_expr(func), self.new_states


@mutator
class _StripWithGrad(PyExprMutator):
    """``call_tir_with_grad`` -> ``call_tir`` (same PrimFunc and arguments) once differentiation is done."""

    def visit_call_(self, call: relax.Call):  # noqa: N802
        call = self.visit_expr_post_order(call)
        if call.op.same_as(_WITH_GRAD):
            return relax.call_tir(call.args[0], call.args[1], call.ty_args[0])
        return call


def strip_with_grad(mod: tvm.IRModule) -> tvm.IRModule:
    m = _StripWithGrad(mod)
    for gv, func in mod.functions_items():
        if isinstance(func, relax.Function):
            m.builder_.update_func(gv, m.visit_expr(func))
    return m.builder_.get()


@dataclass
class TrainGraph:
    """The compiled-once training program and everything needed to feed it."""

    module: tvm.IRModule
    params: list[Slot]
    states: list[Slot]
    optimizer: "SGD | Adam"
    batch: int
    num_classes: int
    input_shape: tuple[int, ...]
    swap: OperatorSwap | None = None   # the pass that swapped the operators in (None: the original model)

    @property
    def decisions(self) -> list[Decision]:
        return self.swap.decisions if self.swap is not None else []


def bound_main(model: onnx.ModelProto) -> tuple[tvm.IRModule, dict[str, tvm.runtime.Tensor]]:
    from tvm.relax.frontend.onnx import from_onnx

    try:
        mod = from_onnx(model, keep_params_in_input=True)
    except Exception as e:  # the frontend raises bare errors for unsupported ops/opsets
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SynoError(f"TVM cannot import this ONNX model: {first[:200]}") from None
    main = mod["main"]
    names = [p.name for p in main.params[1:]]
    values = list(main.attrs["params"]) if main.attrs and "params" in main.attrs else []
    if len(main.params) - 1 != len(values):
        raise SynoError("the ONNX model must have exactly one graph input (the images); others are unsupported")
    onnx_params = dict(zip(names, values))
    bound = main.bind_params(onnx_params).without_attr("params").without_attr("num_input")
    return tvm.IRModule({"main": bound}), onnx_params


def build_graph(model: onnx.ModelProto, operator: "Operator | Mapping[str, Operator | None] | None" = None,
                optimizer: "SGD | Adam | None" = None, seed: int = 0) -> TrainGraph:
    """The Relax training module for ``model`` (with ``operator`` swapped in when given)."""
    optimizer = optimizer or SGD()
    mod, onnx_params = bound_main(model)
    swap = None
    if operator is not None:
        swap = OperatorSwap(operator, seed=seed, differentiable=True)
        mod = swap(mod)
    main = mod["main"]
    x = main.params[0]
    shape = tuple(int(d) for d in x.ty.shape)
    out_shape = tuple(int(d) for d in main.ret_ty.shape) if hasattr(main.ret_ty, "shape") else ()
    if len(out_shape) != 2 or out_shape[0] != shape[0]:
        raise SynoError(f"training needs a classifier: output [batch, classes], this model returns {list(out_shape)}")
    batch, num_classes = out_shape
    pairs = _collect(main, onnx_params, [d.layer for d in swap.decisions if d.action == "swap"] if swap else [])
    params = [s for _, s in pairs if s.trainable]
    states = [s for _, s in pairs if not s.trainable]

    bb = relax.BlockBuilder(mod)
    train_func, new_states = _Lift(mod, pairs, train=True).lift(main)
    infer_func, _ = _Lift(mod, pairs, train=False).lift(main)
    onehot = relax.Var("onehot", relax.TensorType(out_shape, "float32"))
    pvars, svars = [p.var for p in params], [s.var for s in states]

    with bb.function("loss", [x, onehot] + pvars + svars):
        with bb.dataflow():
            for block in train_func.body.blocks:
                for binding in block.bindings:
                    bb.emit_normalized(binding)
            logits = train_func.body.body
            logp = bb.emit(relax.op.nn.log_softmax(logits, axis=-1))
            loss = bb.emit(relax.op.divide(relax.op.negative(relax.op.sum(relax.op.multiply(logp, onehot))),
                                           relax.const(np.float32(batch))))
            # match by node identity (same_as): the Python wrappers of one Var differ across the FFI
            outs = [loss, logits] + [next((new for old, new in new_states if old.same_as(s.var)), s.var)
                                     for s in states]
            outs = [bb.emit_output(o) for o in outs]
        bb.emit_func_output(relax.Tuple(outs))  # Gradient needs a literal tuple to pick its target from
    with bb.function("infer", [x] + pvars + svars):
        with bb.dataflow():
            for block in infer_func.body.blocks:
                for binding in block.bindings:
                    bb.emit_normalized(binding)
            gv = bb.emit_output(infer_func.body.body)
        bb.emit_func_output(gv)
    mod = bb.get()
    # "loss" and "infer" were built over the same parameter Vars; one definition site per Var (FuseOps checks it)
    mod["infer"] = relax.utils.copy_with_new_vars(mod["infer"])
    mod = relax.transform.Gradient("loss", require_grads=pvars)(mod)
    mod = _add_step(mod, params, states, optimizer, shape, out_shape)
    mod = strip_with_grad(mod)
    mod = tvm.IRModule({gv: f for gv, f in mod.functions_items() if gv.name_hint != "main"})
    return TrainGraph(mod, params, states, optimizer, batch, num_classes, shape, swap)


def _add_step(mod: tvm.IRModule, params: list[Slot], states: list[Slot], optimizer, x_shape, out_shape):
    """``step(x, onehot, *scalars, *params, *states, *slots) -> (loss, logits, *params', *states', *slots')``."""
    bb = relax.BlockBuilder(mod)
    fresh = lambda name, shape: relax.Var(name, relax.TensorType(shape, "float32"))  # noqa: E731
    x, onehot = fresh("x", x_shape), fresh("onehot", out_shape)
    scalars = [fresh(n, ()) for n in optimizer.scalar_names]
    pv = [fresh(p.var.name, p.init.shape) for p in params]
    sv = [fresh(s.var.name, s.init.shape) for s in states]
    slots = [[fresh(f"{p.var.name}_slot{k}", p.init.shape) for k in range(optimizer.slots)] for p in params]
    with bb.function("step", [x, onehot] + scalars + pv + sv + [v for ss in slots for v in ss]):
        with bb.dataflow():
            res = bb.emit(relax.Call(mod.get_global_var("loss_adjoint"), [x, onehot] + pv + sv))
            fwd = bb.emit(relax.TupleGetItem(res, 0))
            grads_t = bb.emit(relax.TupleGetItem(res, 1))
            grads = [bb.emit(relax.TupleGetItem(grads_t, k)) for k in range(len(pv))]
            new_p, new_slots = optimizer.emit(bb, pv, grads, slots, scalars)
            outs = [bb.emit(relax.TupleGetItem(fwd, k)) for k in range(2 + len(sv))]
            gv = bb.emit_output(relax.Tuple(outs[:2] + new_p + outs[2:] + [v for ss in new_slots for v in ss]))
        bb.emit_func_output(gv)
    return bb.get()
