"""What to synthesize: input/output shapes over symbolic sizes, the layers the operator must serve, and the limits.

A :class:`Spec` is plain data; the search space (:mod:`syno_tvm.synth.space`) is built from it.  Two specs are
built in, following Syno's experiments (its ``KAS/Sampler.py`` specs): ``vision`` (the 3x3 convs of ResNet-18 for
CIFAR) and ``transformer`` (GPT-2's QKV projection, ``H_in -> t*H_in``).  Others come from a JSON file with the
same keys as :meth:`Spec.to_json` (see :func:`load_spec`), and their layers from an ONNX model
(:func:`layers_from_model`).

The **probe** binding is one more layer-like binding with small primaries and coefficient values that are distinct
small numbers (g=5 rather than 32): every size must be an integer there too, so that each final operator can be
lowered, run and fingerprinted cheaply (the numpy reference materializes the whole iteration space).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

from ..errors import SynoError
from ..ir.sizes import COEFFICIENT, PRIMARY, DimSpec, Size, VarSpace, parse_shape

# Coefficient powers in one enumerated size are bounded by the coefficient's max_occurrences (or this default);
# at most this many distinct coefficients and one primary appear in one enumerated size (Syno: <= 3 variables).
DEFAULT_COEFFICIENT_POWER = 1
MAX_COEFFICIENTS_IN_SIZE = 2


@dataclass(frozen=True)
class Spec:
    """Shapes, variables, layer bindings and limits of one synthesis problem.

    ``layers`` maps a layer name to its primary values (coefficients come from ``variables``).  ``fixed`` names the
    sizes whose input and output dims are one and the same iterator (the batch N: Syno's fixed I/O pair), so the
    search never touches them.  ``flops``/``params`` bound the operator's FLOPs and parameter count relative to the
    ``reference`` library operator, in every layer.  ``windows`` and ``strides`` name the coefficients that may be
    Unfold windows and Stride factors."""

    name: str
    input: tuple[DimSpec, ...]
    output: tuple[DimSpec, ...]
    variables: VarSpace
    layers: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]
    probe: tuple[tuple[str, int], ...]
    fixed: tuple[str, ...] = ()
    max_depth: int = 10
    max_weights: int = 2
    max_reductions: int = 5
    max_shares: int = 6
    reference: str = "conv2d"
    flops: tuple[float, float] = (0.0, 1.5)
    params: tuple[float, float] = (0.0, 1.5)
    windows: tuple[str, ...] = ()
    strides: tuple[str, ...] = ()
    layer_kind: str = "conv2d"
    kernel: int | None = None
    skip_layers: tuple[str, ...] = ()
    reference_bind: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        self.check()

    # ---- derived ------------------------------------------------------------------------------------------------
    @cached_property
    def bindings(self) -> tuple[dict[str, int], ...]:
        """Full bindings (coefficients included) of every layer, then the probe."""
        return tuple(self.variables.binding(dict(v)) for _, v in self.layers) + (self.probe_binding,)

    @cached_property
    def probe_binding(self) -> dict[str, int]:
        return self.variables.binding(dict(self.probe))

    @cached_property
    def layer_bindings(self) -> dict[str, dict[str, int]]:
        return {name: self.variables.binding(dict(v)) for name, v in self.layers}

    @cached_property
    def fixed_pairs(self) -> tuple[tuple[int, int], ...]:
        """(input position, output position) of each fixed I/O pair."""
        out = []
        for name in self.fixed:
            size = Size.var(name)
            ins = [i for i, d in enumerate(self.input) if d.size == size]
            outs = [i for i, d in enumerate(self.output) if d.size == size]
            out.append((ins[0], outs[0]))
        return tuple(out)

    @cached_property
    def search_input(self) -> tuple[DimSpec, ...]:
        """The input dims the search must produce (fixed pairs removed)."""
        fixed = {i for i, _ in self.fixed_pairs}
        return tuple(d for i, d in enumerate(self.input) if i not in fixed)

    def reference_binding(self, binding: Mapping[str, int]) -> dict[str, int]:
        """``binding`` plus the reference operator's own variables, given as sizes over the spec's (``reference_bind``:
        e.g. the transformer's reference ``linear`` needs ``H_out = t*H_in``)."""
        out = dict(binding)
        out.update({n: Size.parse(t).value(binding, where=f"reference size {n}") for n, t in self.reference_bind})
        return out

    def valid(self, size: Size) -> bool:
        """Whether ``size`` may be a dim: no primary in a denominator, a positive integer in every binding (layers and
        probe), and larger than 1 in the probe (a dim of size 1 there would be invisible to the fingerprint, which
        would then merge operators that differ in it)."""
        if any(p < 0 and self.is_primary(n) for n, p in size.powers):
            return False
        for b in self.bindings:
            v = size.evaluate(b)
            if v.denominator != 1 or v < 1:
                return False
        return size.evaluate(self.probe_binding) > 1

    def is_primary(self, name: str) -> bool:
        return self.variables[name].kind == PRIMARY

    @cached_property
    def block_sizes(self) -> tuple[Size, ...]:
        """Enumerated sizes for Merge blocks and Reduce iterators, valid everywhere: a primary divided by at most
        ``MAX_COEFFICIENTS_IN_SIZE`` coefficients (powers bounded by their max_occurrences), or a product of at most
        that many distinct coefficients (k, g*s).  Larger sizes such as C_in*g are products the search can still
        build with Split; enumerating them as blocks would only widen every node."""
        coeffs = [v for v in self.variables.variables if v.kind == COEFFICIENT]
        prims = [v.name for v in self.variables.variables if v.kind == PRIMARY and v.name not in self.fixed]
        out: list[Size] = []
        for primary in [None] + prims:
            ranges = [range(-(v.max_occurrences or DEFAULT_COEFFICIENT_POWER), 1) if primary else range(0, 2)
                      for v in coeffs]
            for powers in itertools.product(*ranges):
                if sum(1 for p in powers if p) > MAX_COEFFICIENTS_IN_SIZE:
                    continue
                size = Size.var(primary) if primary else Size.const(1)
                for v, p in zip(coeffs, powers):
                    size = size * Size.var(v.name) ** p if p else size
                if self.valid(size) and size not in out:
                    out.append(size)
        return tuple(sorted(out, key=size_key))

    @cached_property
    def reduce_sizes(self) -> tuple[Size, ...]:
        """Block sizes whose primaries may be introduced by a Reduce (max_occurrences > 0)."""
        return tuple(s for s in self.block_sizes if all(self.allowance(n) > 0 for n in s.variables()
                                                          if self.is_primary(n)))

    def allowance(self, name: str) -> int:
        """How often primary ``name`` may appear in Reduce and weight-only (outer) dims; unlimited if not given."""
        occ = self.variables[name].max_occurrences
        return 99 if occ is None else occ

    @cached_property
    def window_sizes(self) -> tuple[Size, ...]:
        return tuple(Size.var(n) for n in self.windows)

    @cached_property
    def stride_sizes(self) -> tuple[Size, ...]:
        return tuple(Size.var(n) for n in self.strides)

    # ---- checks and JSON ----------------------------------------------------------------------------------------
    def check(self) -> None:
        """Every input/output size must be an integer in every layer and the probe; fixed sizes must pair up."""
        if not self.layers:
            raise SynoError(f"spec '{self.name}' has no layers: give at least one layer binding (or --model)")
        for d in self.input + self.output:
            self.variables.check(d.size)
        for name in self.fixed:
            size = Size.var(name)
            if sum(d.size == size for d in self.input) != 1 or sum(d.size == size for d in self.output) != 1:
                raise SynoError(f"fixed size '{name}' must be exactly one input dim and one output dim")
        for d in self.search_input:
            if sum(1 for n in d.size.variables() if self.is_primary(n)) != 1:
                raise SynoError(f"input dim {d} must contain exactly one primary variable (as in Syno): "
                                f"rewrite the input shape")
        names = [*(n for n, _ in self.layers), "probe"]
        for where, b in zip(names, self.bindings):
            for d in self.input + self.output:
                d.size.value(b, where=f"spec '{self.name}' layer '{where}'")
        for n in self.windows + self.strides:
            if self.variables[n].kind != COEFFICIENT:
                raise SynoError(f"window/stride '{n}' must be a coefficient variable such as k=3")
        if self.max_depth < 1 or self.max_weights < 0 or self.max_reductions < 0:
            raise SynoError("depth must be >= 1, weights and reductions >= 0")

    def to_json(self) -> dict[str, Any]:
        prim = [_var_text(v) for v in self.variables.variables if v.kind == PRIMARY]
        coef = [_var_text(v) for v in self.variables.variables if v.kind == COEFFICIENT]
        return {
            "name": self.name,
            "input": "[" + ", ".join(map(str, self.input)) + "]",
            "output": "[" + ", ".join(map(str, self.output)) + "]",
            "primary": prim, "coefficient": coef, "fixed": list(self.fixed),
            "layers": {n: dict(v) for n, v in self.layers}, "probe": dict(self.probe),
            "depth": self.max_depth, "weights": self.max_weights, "reductions": self.max_reductions,
            "shares": self.max_shares, "reference": self.reference, "flops": list(self.flops),
            "params": list(self.params), "windows": list(self.windows), "strides": list(self.strides),
            "layer_kind": self.layer_kind, "kernel": self.kernel, "skip_layers": list(self.skip_layers),
            "reference_bind": dict(self.reference_bind),
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "Spec":
        """Build from a dict with the keys of :meth:`to_json`; a missing or malformed key is one SynoError line."""
        if not isinstance(data, Mapping):
            raise SynoError("a spec file must hold a JSON object with input, output, primary, coefficient and layers")
        known = set(Spec.example_keys())
        unknown = sorted(set(data) - known)
        if unknown:
            raise SynoError(f"unknown spec key(s) {unknown}: the keys are {sorted(known)}")
        try:
            variables = VarSpace.from_specs(data.get("primary", ()), data.get("coefficient", ()))
            return Spec(
                name=str(data.get("name", "spec")),
                input=parse_shape(data["input"]), output=parse_shape(data["output"]), variables=variables,
                layers=tuple((str(n), _int_items(v)) for n, v in dict(data["layers"]).items()),
                probe=_int_items(data["probe"]), fixed=tuple(data.get("fixed", ())),
                max_depth=int(data.get("depth", 10)), max_weights=int(data.get("weights", 2)),
                max_reductions=int(data.get("reductions", 5)), max_shares=int(data.get("shares", 6)),
                reference=str(data.get("reference", "conv2d")),
                flops=_pair(data.get("flops", (0.0, 1.5))), params=_pair(data.get("params", (0.0, 1.5))),
                windows=tuple(data.get("windows", ())), strides=tuple(data.get("strides", ())),
                layer_kind=str(data.get("layer_kind", "conv2d")), kernel=data.get("kernel"),
                skip_layers=tuple(data.get("skip_layers", ())),
                reference_bind=tuple(sorted((str(k), str(v)) for k, v in dict(data.get("reference_bind", {})).items())),
            )
        except KeyError as e:
            raise SynoError(f"spec is missing key {e}: a spec needs input, output, layers and probe") from None
        except (TypeError, ValueError, AttributeError) as e:
            raise SynoError(f"malformed spec: {e}; see `syno-tvm synthesize --help` for the keys") from None

    @staticmethod
    def example_keys() -> tuple[str, ...]:
        return ("name", "input", "output", "primary", "coefficient", "fixed", "layers", "probe", "depth", "weights",
                "reductions", "shares", "reference", "flops", "params", "windows", "strides", "layer_kind",
                "kernel", "skip_layers", "reference_bind")

    def with_layers(self, layers: Mapping[str, Mapping[str, int]]) -> "Spec":
        data = self.to_json()
        data["layers"] = {n: dict(v) for n, v in layers.items()}
        return Spec.from_json(data)

    def with_limits(self, **limits: Any) -> "Spec":
        """A copy with some of the JSON keys (depth, weights, reductions, ...) replaced."""
        data = self.to_json()
        data.update(limits)
        return Spec.from_json(data)


def size_key(size: Size) -> tuple:
    """A total order on sizes (by text), used wherever a canonical order among sizes is needed."""
    return (len(size.powers), str(size))


def _var_text(v) -> str:
    text = v.name + (f"={v.value}" if v.value is not None else "")
    return text + (f": {v.max_occurrences}" if v.max_occurrences is not None else "")


def _int_items(m: Any) -> tuple[tuple[str, int], ...]:
    items = dict(m).items()
    for k, v in items:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"value of '{k}' must be a positive integer, got {v!r}")
    return tuple(sorted((str(k), int(v)) for k, v in items))


def _pair(x: Any) -> tuple[float, float]:
    lo, hi = (float(v) for v in x)
    if not 0 <= lo <= hi:
        raise ValueError(f"range {list(x)} must be [low, high] with 0 <= low <= high")
    return lo, hi


# ---- built-in specs ---------------------------------------------------------------------------------------------

# The 3x3 convs of ResNet-18 for CIFAR (syno_tvm.relax.models.resnet18_cifar), as layers_from_model derives them:
# strided convs run at the reduced resolution (Syno: AvgPool, then the operator), the stem (reads the RGB image,
# C_in = 3) is kept as in Syno, 1x1 shortcut convs are not 3x3 layers.  Identical bindings are listed once.
RESNET18_CIFAR_LAYERS: dict[str, dict[str, int]] = {
    "conv2d_1": {"N": 1, "C_in": 64, "C_out": 64, "H": 32, "W": 32},
    "conv2d_5": {"N": 1, "C_in": 64, "C_out": 128, "H": 16, "W": 16},
    "conv2d_6": {"N": 1, "C_in": 128, "C_out": 128, "H": 16, "W": 16},
    "conv2d_10": {"N": 1, "C_in": 128, "C_out": 256, "H": 8, "W": 8},
    "conv2d_11": {"N": 1, "C_in": 256, "C_out": 256, "H": 8, "W": 8},
    "conv2d_15": {"N": 1, "C_in": 256, "C_out": 512, "H": 4, "W": 4},
    "conv2d_16": {"N": 1, "C_in": 512, "C_out": 512, "H": 4, "W": 4},
}

VISION: dict[str, Any] = {
    "name": "vision",
    "input": "[N, C_in: unordered, H, W]", "output": "[N, C_out: unordered, H, W]",
    "primary": ["N: 0", "C_in: 2", "C_out: 4", "H: 0", "W: 0"], "coefficient": ["k=3: 2", "s=2: 2", "g=32: 3"],
    "fixed": ["N"], "layers": RESNET18_CIFAR_LAYERS,
    # g=5 (not 32) keeps the probe small; coefficients differ so no two sizes coincide.  C_in/(g*s) is 1 here, so
    # it is not a size of this space (every size must be > 1 at the probe).
    "probe": {"N": 1, "C_in": 10, "C_out": 20, "H": 6, "W": 8, "g": 5},
    "depth": 10, "weights": 2, "reductions": 5, "shares": 6, "reference": "conv2d",
    # No Strides: Syno disabled them in all its experiments (--kas-max-strides 0); a spec file can name "s".
    "flops": [0.0, 1.5], "params": [0.0, 1.5], "windows": ["k"], "strides": [],
    "layer_kind": "conv2d", "kernel": 3, "skip_layers": ["conv2d_0"],
}

# GPT-2's QKV (H_in -> 3*H_in): the built-in transformer block's QKV MatMul and GPT-2 small's (768, seq 1024).
TRANSFORMER: dict[str, Any] = {
    "name": "transformer",
    "input": "[N, seq, H_in: unordered]", "output": "[N, seq, t*H_in]",
    "primary": ["N: 0", "seq: 0", "H_in: 3"], "coefficient": ["k=2: 4", "t=3: 2"],
    "fixed": ["N"],
    "layers": {"matmul_0": {"N": 1, "seq": 16, "H_in": 96}, "gpt2_small_qkv": {"N": 1, "seq": 1024, "H_in": 768}},
    "probe": {"N": 1, "seq": 3, "H_in": 96},
    "depth": 7, "weights": 2, "reductions": 3, "shares": 4, "reference": "linear",
    "flops": [0.0, 1.5], "params": [0.0, 1.5], "windows": [], "strides": [],
    "layer_kind": "matmul", "kernel": None, "skip_layers": [], "reference_bind": {"H_out": "t*H_in"},
}

BUILTIN: dict[str, dict[str, Any]] = {"vision": VISION, "transformer": TRANSFORMER}


def load_spec(source: str) -> Spec:
    """A built-in spec name (``vision``, ``transformer``) or a JSON spec file."""
    if source in BUILTIN:
        return Spec.from_json(BUILTIN[source])
    path = Path(source)
    if not path.is_file():
        raise SynoError(f"spec '{source}' is neither a built-in spec ({', '.join(BUILTIN)}) nor a JSON file")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise SynoError(f"cannot read spec file '{source}': {e}") from None
    except json.JSONDecodeError as e:
        raise SynoError(f"spec file '{source}' is not JSON ({e.msg} at line {e.lineno}): write a JSON object") from None
    return Spec.from_json(data)


def layers_from_model(spec: Spec, model: str) -> dict[str, dict[str, int]]:
    """The layer bindings of an ONNX model (a path or ``builtin:NAME``) that ``spec`` can serve.

    A layer is kept if it has the spec's kind (and kernel size, for convs), is not named in ``skip_layers``, and the
    spec's input and output sizes evaluate to its sizes.  A strided conv runs the operator at the reduced resolution
    (Syno: AvgPool first), so its H and W are divided by the stride.  Identical bindings are listed once."""
    from ..relax.frontend import import_onnx
    from ..relax.swap import find_layers

    names = set(spec.variables.names())
    out: dict[str, dict[str, int]] = {}
    for d in find_layers(import_onnx(model)):
        shape = dict(d.shape)
        if d.kind != spec.layer_kind or d.layer in spec.skip_layers:
            continue
        if spec.kernel is not None and (shape.get("kernel"), shape.get("kernel_w", shape.get("kernel"))) != \
                (spec.kernel, spec.kernel):
            continue
        if "stride_w" in shape or (shape.get("groups", 1) > 1 and "g" not in names):
            continue   # AvgPool takes one factor; a grouped layer needs a group coefficient (relax/layers.py)
        stride = shape.pop("stride", 1)
        for key in ("kernel", "kernel_w", "groups"):
            shape.pop(key, None)
        for k in ("H", "W"):
            if k in shape and stride > 1:
                shape[k] //= stride
        binding = {k: v for k, v in shape.items() if k in names}
        full = spec.variables.binding(binding)
        try:
            fits = [d2.size.evaluate(full) for d2 in spec.output] == [Fraction(_layer_out(shape, i, spec))
                                                                       for i in range(len(spec.output))]
        except SynoError:
            continue
        if fits and binding not in out.values():
            out[d.layer] = binding
    if not out:
        raise SynoError(f"model '{model}' has no {spec.layer_kind} layer that spec '{spec.name}' can serve: "
                        f"check the spec's shapes and kernel")
    return out


def _layer_out(shape: Mapping[str, int], i: int, spec: Spec) -> int:
    """The layer's actual output size at position ``i`` (H_out for matmuls, else the spec's own variable)."""
    size = spec.output[i].size
    if "H_out" in shape and i == len(spec.output) - 1:
        return shape["H_out"]
    return int(size.value(spec.variables.binding({k: v for k, v in shape.items() if k != "H_out"})))
