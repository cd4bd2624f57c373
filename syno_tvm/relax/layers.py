"""What a layer is, and whether (and how) an operator serves it: the one home of that knowledge, used by the swap
pass, by ``synth.spec.layers_from_model`` and by the accuracy proxy.  Imports ir only (never train or tune).

A :class:`Layer` is a conv2d or a constant-weight matmul as Relax imports it from ONNX.  :func:`serve` answers
"what does putting ``op`` here mean?" with a :class:`Serving` (the operator actually swapped in, its binding, an
AvgPool factor, and whether the layer keeps its function) or a :class:`Kept` with a reason a person understands.
The rules, in the order they are checked:

* **kind**: an operator over ``[N, C_in, H, W]`` is a convolution and serves conv layers; one over
  ``[N, seq, H_in]`` is a matmul and serves matmul layers.
* **a convolution operator** (``conv2d``, ``pointwise``, ``conv2d_grouped``, ``conv2d_depthwise``, recognized by
  structure) is rebuilt for each layer: its kernel, stride and groups become the layer's (:func:`convolution`), so
  ``--operator conv2d`` computes every layer it takes exactly, with the layer's own weights.  ``pointwise`` serves
  1 x 1 layers only; a dense convolution keeps grouped layers; a grouped one binds ``g`` to the layer's groups.
* **any other operator** keeps its own coefficients, with two bindings from the layer: a window coefficient used
  by nothing but the operator's Unfold windows is bound to the layer's (square, k > 1) kernel, so a 3 x 3
  operator also serves 5 x 5 layers as a 5 x 5 operator; a coefficient ``g`` is bound to a grouped layer's groups.  An operator
  with windows serves layers of its window size; one without windows replaces spatial (k > 1) convolutions.  A
  strided layer runs the operator after ``AvgPool(stride)`` at the reduced resolution (Syno's scheme).
* every conv needs NCHW/OIHW layouts, dilation 1 and "same" padding (``k//2`` on each side, odd k): the
  operators keep the input's resolution, so a "valid" conv's smaller output has no operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import tvm

from ..errors import SynoError
from ..ir.graph import Operator
from ..ir.library import conv2d, conv2d_depthwise, conv2d_grouped, convolution, linear, pointwise
from ..ir.sizes import Size

CONV_INPUT = {"N", "C_in", "H", "W"}
MATMUL_INPUT = {"N", "seq", "H_in"}


@dataclass(frozen=True)
class Layer:
    """One conv2d or constant-weight matmul of a model, in program order (``conv2d_<i>``, ``matmul_<i>``).

    Conv sizes are the input's (``H``, ``W``) and the weight's; matmul sizes flatten the leading dims to
    ``N x seq``.  ``weight`` is the layer's weight array (PyTorch layout: OIHW, ``[H_out, H_in]`` for matmuls)."""

    name: str
    kind: str                                   # "conv2d" | "matmul"
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    sizes: dict[str, int]                       # N, C_in, C_out, H, W | N, seq, H_in, H_out
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, ...] = (0, 0, 0, 0)     # top, left, bottom, right
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    layout: str = "NCHW/OIHW"
    weight: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.sizes["C_in"] == self.sizes["C_out"]

    @property
    def flops(self) -> int:
        """Multiply-adds x 2 of the original layer."""
        if self.kind == "matmul":
            return 2 * int(np.prod(self.y_shape)) * self.sizes["H_in"]
        per_output = self.sizes["C_in"] // self.groups * self.kernel[0] * self.kernel[1]
        return 2 * int(np.prod(self.y_shape)) * per_output

    @property
    def params(self) -> int:
        if self.kind == "matmul":
            return self.sizes["H_in"] * self.sizes["H_out"]
        return self.sizes["C_out"] * self.sizes["C_in"] // self.groups * self.kernel[0] * self.kernel[1]

    def summary(self) -> dict[str, int]:
        """The sizes a report shows: the binding sizes, and for convs ``kernel`` and ``stride`` (along H;
        ``kernel_w``/``stride_w`` when W's differ) and ``groups`` when > 1."""
        out = dict(self.sizes)
        if self.kind == "matmul":
            return out
        out["kernel"], out["stride"] = self.kernel[0], self.stride[0]
        if self.kernel[1] != self.kernel[0]:
            out["kernel_w"] = self.kernel[1]
        if self.stride[1] != self.stride[0]:
            out["stride_w"] = self.stride[1]
        if self.groups > 1:
            out["groups"] = self.groups
        return out


@dataclass(frozen=True)
class Serving:
    """How an operator serves a layer: ``operator`` (the one swapped in: a convolution operator is rebuilt for the
    layer), bound to ``binding``, after ``AvgPool(pool)`` when ``pool`` > 0.  ``exact``: the swapped layer computes
    the original layer's function with the original weights (then a swap must not change the model's output)."""

    operator: Operator
    binding: dict[str, int]
    pool: int = 0
    exact: bool = False
    note: str = ""


@dataclass(frozen=True)
class Kept:
    """The layer stays as it is, and why."""

    reason: str


def operator_kind(op: Operator) -> str | None:
    """``conv2d`` or ``matmul`` from the variables of the operator's input, or None for anything else."""
    names = {v for d in op.input for v in op.sizes[d].variables()} - set(op.coefficient_values)
    if names <= CONV_INPUT and {"C_in", "H", "W"} <= names:
        return "conv2d"
    if names <= MATMUL_INPUT and "H_in" in names:
        return "matmul"
    return None


@lru_cache(maxsize=256)
def _family(op_hash: str, coefficients: tuple[tuple[str, int], ...]) -> str | None:
    c = dict(coefficients)
    k = c.get("k", 3)
    candidates = {
        "conv2d": lambda: conv2d(k),
        "pointwise": pointwise,
        "conv2d_grouped": lambda: conv2d_grouped(k, c.get("g", 32)),
        "conv2d_depthwise": lambda: conv2d_depthwise(k),
        "linear": linear,
    }
    for name, build in candidates.items():
        if build().hash == op_hash:
            return name
    return None


def family(op: Operator) -> str | None:
    """The library convolution/linear operator ``op`` is structurally (by hash), or None: such operators mean
    "the layer's own function" and are rebuilt for each layer."""
    return _family(op.hash, op.coefficients)


def serve(op: Operator, layer: Layer) -> Serving | Kept:
    """Whether and how ``op`` serves ``layer`` (the rules are in the module docstring)."""
    kind = operator_kind(op)
    if kind is None:
        return Kept("the operator's input is neither [N, C_in, H, W] (a convolution) nor [N, seq, H_in] (a matmul)")
    if kind != layer.kind:
        what = {"conv2d": "a convolution", "matmul": "a matmul"}
        return Kept(f"the operator is {what[kind]}; this layer is {what[layer.kind]}")
    if layer.kind == "matmul":
        binding = dict(layer.sizes)
        return Serving(op, binding, exact=family(op) == "linear")
    why = _conv_form(layer)
    if why:
        return Kept(why)
    fam = family(op)
    if fam is not None:
        return _serve_convolution(fam, op, layer)
    return _serve_other(op, layer)


def _conv_form(layer: Layer) -> str:
    """Why no operator can take this conv ('' if one can)."""
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    if layer.layout != "NCHW/OIHW":
        return f"layout {layer.layout} (only NCHW/OIHW)"
    if layer.dilation != (1, 1):
        return f"dilation {list(layer.dilation)} (only 1)"
    if kh % 2 == 0 or kw % 2 == 0:
        return f"a {kh}x{kw} kernel is even: the operators' windows are centred (odd kernels only)"
    if tuple(layer.padding) != (kh // 2, kw // 2, kh // 2, kw // 2):
        return (f"padding {list(layer.padding)} is not 'same' for a {kh}x{kw} kernel (k//2 on each side): the "
                f"operators keep the input's resolution")
    if layer.sizes["H"] % sh or layer.sizes["W"] % sw:
        return f"stride {list(layer.stride)} does not divide the input {layer.sizes['H']}x{layer.sizes['W']}"
    return ""


def _serve_convolution(fam: str, op: Operator, layer: Layer) -> Serving | Kept:
    """A convolution operator rebuilt for the layer: kernel and stride always the layer's; groups the layer's
    where the operator's kind matches (exact, the layer's weights), else the operator's own (a replacement)."""
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    c_in, c_out = layer.sizes["C_in"], layer.sizes["C_out"]
    if fam == "pointwise" and (kh, kw) != (1, 1):
        return Kept(f"the operator is a 1x1 convolution; this layer's kernel is {kh}x{kw}")
    if sh != sw:
        return Kept(f"stride {list(layer.stride)} differs along H and W (the convolution operators take one)")
    grouped = "depthwise" if layer.depthwise else f"grouped (groups={layer.groups})"
    if fam in ("conv2d", "pointwise"):
        if layer.groups > 1:
            return Kept(f"the operator is a dense convolution; this layer is {grouped}: use conv2d_grouped or "
                        f"conv2d_depthwise")
        return Serving(convolution(kh, kw, sh), _conv_binding(layer), exact=True)
    if fam == "conv2d_depthwise":
        if c_in != c_out:
            return Kept(f"the operator is depthwise (C_out = C_in); this layer maps {c_in} -> {c_out} channels")
        exact = layer.depthwise
        return Serving(convolution(kh, kw, sh, depthwise=True), _conv_binding(layer), exact=exact,
                       note="" if exact else "a depthwise convolution replaces this dense one (new weights)")
    if layer.groups == 1:        # conv2d_grouped in a dense layer: a cheaper replacement with the operator's g
        g = op.coefficient_values.get("g", 32)
        return Serving(convolution(kh, kw, sh, g), _conv_binding(layer),
                       note=f"a grouped convolution (g={g}) replaces this dense one (new weights)")
    if layer.depthwise:
        return Serving(convolution(kh, kw, sh, depthwise=True), _conv_binding(layer), exact=True)
    if c_in == layer.groups:
        return Kept(f"groups={layer.groups} with a channel multiplier ({c_in} -> {c_out}) is not supported")
    return Serving(convolution(kh, kw, sh, layer.groups), _conv_binding(layer), exact=True)


def _serve_other(op: Operator, layer: Layer) -> Serving | Kept:
    (kh, kw), s = layer.kernel, layer.stride[0]
    coefficients = op.coefficient_values
    rebound: dict[str, int] = {}
    windows = _windows(op)
    if len(windows) > 1:
        return Kept(f"the operator's windows have different sizes ({', '.join(map(str, windows))}): it serves no "
                    f"single kernel")
    if windows:
        value = int(windows[0].value(coefficients))
        if (kh, kw) != (value, value):
            name = str(windows[0])
            free = name in coefficients and not any(name in op.sizes[d].variables() for d in _non_window_dims(op))
            if kh != kw or kh == 1 or not free:    # a window of 1 is no window: a 1x1 layer is not k x k
                return Kept(f"the operator's window is {value}x{value}; this layer's kernel is {kh}x{kw}")
            rebound[name] = kh
    elif (kh, kw) == (1, 1):
        return Kept("the operator has no window of its own: it replaces spatial (k x k, k > 1) convolutions, and "
                    "this layer is 1x1")
    if layer.stride[0] != layer.stride[1]:
        return Kept(f"stride {list(layer.stride)} differs along H and W (AvgPool takes one factor)")
    if layer.groups > 1:
        if "g" not in coefficients:
            return Kept(f"the operator is dense (no group coefficient g); this layer is "
                        f"{'depthwise' if layer.depthwise else f'grouped (groups={layer.groups})'}")
        rebound["g"] = layer.groups
    binding = _conv_binding(layer)
    binding.update({"H": layer.sizes["H"] // s, "W": layer.sizes["W"] // s}, **rebound)
    notes = [f"{k}={v} from the layer" for k, v in rebound.items()]
    if s > 1:
        notes.append(f"AvgPool({s}) + operator (Syno's scheme for strided convs)")
    return Serving(op, binding, pool=s if s > 1 else 0, note="; ".join(notes))


def _conv_binding(layer: Layer) -> dict[str, int]:
    return {k: layer.sizes[k] for k in ("N", "C_in", "C_out", "H", "W")}


def _windows(op: Operator) -> list[Size]:
    """The distinct sizes of the operator's Unfold windows."""
    out: list[Size] = []
    for p in op.prims:
        if p.kind == "unfold" and op.sizes[p.bottoms[1]] not in out:
            out.append(op.sizes[p.bottoms[1]])
    return out


def _non_window_dims(op: Operator) -> list[int]:
    """Every dim that is not an Unfold window, nor a dim the window flows into unchanged (its Share copies)."""
    window = {p.bottoms[1] for p in op.prims if p.kind == "unfold"}
    grew = True
    while grew:
        grew = False
        for p in op.prims:
            if p.kind == "share" and p.tops[0] in window and not {p.bottoms[0], p.tops[1]} <= window:
                window |= {p.bottoms[0], p.tops[1]}
                grew = True
    return [d for d in range(len(op.sizes)) if d not in window]


# ---- reading layers off a Relax module ----------------------------------------------------------------------------

def static_shape(expr) -> tuple[int, ...] | None:
    """The static shape of a Relax expression, or None if it has none."""
    shape = getattr(getattr(expr, "ty", None), "shape", None)
    try:
        return tuple(int(s) for s in shape) if shape is not None else None
    except (TypeError, ValueError):
        return None


def conv_layer(name: str, call) -> Layer:
    """The Layer of a ``relax.nn.conv2d`` call."""
    x, w, y = static_shape(call.args[0]), static_shape(call.args[1]), static_shape(call)
    if x is None or w is None or y is None:
        raise SynoError(f"{name} has a dynamic shape: syno-tvm swaps layers of models with static shapes only")
    a = call.attrs
    weight = call.args[1].value.numpy() if isinstance(call.args[1], tvm.ir.expr.Constant) else None
    return Layer(name, "conv2d", x, y, {"N": x[0], "C_in": x[1], "C_out": w[0], "H": x[2], "W": x[3]},
                 kernel=(w[2], w[3]), stride=tuple(int(v) for v in a.strides),
                 padding=tuple(int(v) for v in a.padding), dilation=tuple(int(v) for v in a.dilation),
                 groups=int(a.groups), layout=f"{a.data_layout}/{a.kernel_layout}", weight=weight)


def matmul_layer(name: str, x: tuple[int, ...], w: tuple[int, ...], y: tuple[int, ...],
                 weight: np.ndarray | None) -> Layer:
    """The Layer of a ``relax.matmul`` by a constant ``[H_in, H_out]`` weight (``weight`` in PyTorch's
    ``[H_out, H_in]``): leading dims flattened to ``N x seq``."""
    lead = x[:-1]
    n, seq = (lead[0], int(np.prod(lead[1:]))) if len(lead) >= 2 else (1, lead[0])
    return Layer(name, "matmul", (n, seq, w[0]), (n, seq, w[1]), {"N": n, "seq": seq, "H_in": w[0], "H_out": w[1]},
                 weight=weight)
