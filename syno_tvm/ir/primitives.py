"""The eight dimension primitives, each defined once: shape rule, index rules in every direction, constraints.

Vocabulary (as in Syno): an operator is a graph whose edges are *dims* (loop iterators) and whose nodes are
primitives.  "Top" is the input side (input and weight tensors), "bottom" the output side (output iterators and
reduction iterators).  Names follow forward data flow, so ``Split`` turns one top dim into two bottom dims.

Every rule is written once, as plain arithmetic (``+ - * // %``) over an abstract value type.  The same function is
evaluated with numpy integer arrays (the reference evaluator), TVM ``PrimExpr`` (the TE lowering) and
:class:`~syno_tvm.ir.formula.Sym` (the printed formula), so the three cannot disagree on semantics.

A *derivation* computes unknown branches from known ones.  The forward gather (bottom -> top) is one derivation;
the others are the inverse rules that the backward lowering uses to turn a scatter into a gather.  A derivation
may add *guards*, conditions under which the index is valid:

* ``("range", v, n)``  means ``0 <= v < n`` (Unfold's zero padding is this guard: **[0, N)**, not [0, K));
* ``("divides", v, s)`` means ``v % s == 0`` (inverting a Stride).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import singledispatch
from typing import Any, Callable

from ..errors import SynoError
from .sizes import Size

# values: branch name ("t0", "t1", "b0", "b1") -> index value;  sizes: branch name (plus "s" for Stride) -> extent.
DeriveFn = Callable[[dict, dict, int], tuple[dict, list]]


@dataclass(frozen=True)
class Derivation:
    """Given the values of branches ``needs``, compute the branches ``gives`` (and guards)."""

    needs: frozenset[str]
    gives: frozenset[str]
    fn: DeriveFn


@dataclass(frozen=True)
class Primitive:
    """One primitive: arity, the semantics in one line, its shape rule and its derivations (the first = gather)."""

    name: str
    n_tops: int
    n_bottoms: int
    semantics: str
    constraints: str
    shape: Callable[[list[Size], list[Size], int], str | None]
    derivations: tuple[Derivation, ...]
    has_param: bool = False

    @property
    def gather(self) -> Derivation | None:
        """The forward derivation (all bottoms known -> all tops), or None for primitives without tops/bottoms."""
        return self.derivations[0] if self.derivations else None


def _d(needs: str, gives: str, fn: DeriveFn) -> Derivation:
    return Derivation(frozenset(needs.split()), frozenset(gives.split()), fn)


def _same(msg: str, ok: bool) -> str | None:
    return None if ok else msg


@singledispatch
def cyclic(i: Any, shift: int, n: Any) -> Any:
    """``(i + shift) mod n``: Shift's index rule, a function of its own so that a value domain can spell it.

    numpy arrays and printed symbols use ``%``.  The TVM domain registers a select-based form
    (:mod:`syno_tvm.lower.te_forward`) because apache-tvm 0.27's index simplifier drops the offset of nested
    ``floormod`` (``((i + 1) % 3 + 1) % 3`` becomes ``(i + 1) % 3``), which silently miscompiles two stacked Shifts.
    """
    return (i + shift) % n


# ---- the table --------------------------------------------------------------------------------------------------

def _split_shape(t, b, p):
    return _same(f"Split needs top = bottom0 * bottom1, got {t[0]} vs {b[0]} * {b[1]}", t[0] == b[0] * b[1])


def _merge_shape(t, b, p):
    return _same(f"Merge needs bottom = top0 * top1, got {b[0]} vs {t[0]} * {t[1]}", b[0] == t[0] * t[1])


def _shift_shape(t, b, p):
    if p == 0:
        return "Shift by 0 is the identity: give a non-zero shift"
    return _same(f"Shift keeps the size, got {t[0]} -> {b[0]}", t[0] == b[0])


def _stride_shape(t, b, p):
    s = t[0] / b[0]
    # variables are >= 1, so s <= 1 for every binding when its factor is <= 1 and no power is positive
    if s.factor <= 1 and all(power < 0 for _, power in s.powers):
        return f"Stride needs top = s * bottom with s > 1, got {t[0]} -> {b[0]} (s = {s})"
    return None


def _unfold_shape(t, b, p):
    return _same(f"Unfold keeps the main size, got {t[0]} -> {b[0]}", t[0] == b[0])


def _share_shape(t, b, p):
    if p < 1:
        return f"Share must name a weight tensor index >= 1, got {p}"
    return _same(f"Share needs three equal sizes, got {t[0]}, {t[1]} -> {b[0]}", t[0] == t[1] == b[0])


def _none_shape(t, b, p):
    return None


PRIMITIVES: dict[str, Primitive] = {r.name: r for r in (
    Primitive("split", 1, 2, "in[i*B + j] <- out[i, j]   (B = size of the right bottom dim)",
         "top size = product of the bottom sizes", _split_shape, (
             _d("b0 b1", "t0", lambda v, s, p: ({"t0": v["b0"] * s["b1"] + v["b1"]}, [])),
             _d("t0", "b0 b1", lambda v, s, p: ({"b0": v["t0"] // s["b1"], "b1": v["t0"] % s["b1"]}, [])),
             _d("t0 b0", "b1", lambda v, s, p: (
                 {"b1": v["t0"] - v["b0"] * s["b1"]}, [("range", v["t0"] - v["b0"] * s["b1"], s["b1"])])),
             _d("t0 b1", "b0", lambda v, s, p: (
                 {"b0": (v["t0"] - v["b1"]) // s["b1"]}, [("divides", v["t0"] - v["b1"], s["b1"])])),
         )),
    Primitive("merge", 2, 1, "in[k // B, k % B] <- out[k]   (B = size of the right top dim)",
         "bottom size = product of the top sizes", _merge_shape, (
             _d("b0", "t0 t1", lambda v, s, p: ({"t0": v["b0"] // s["t1"], "t1": v["b0"] % s["t1"]}, [])),
             _d("t0 t1", "b0", lambda v, s, p: ({"b0": v["t0"] * s["t1"] + v["t1"]}, [])),
         )),
    Primitive("shift", 1, 1, "in[(i + s) mod N] <- out[i]", "same size; s != 0 (synthesis uses s = 1)", _shift_shape, (
        _d("b0", "t0", lambda v, s, p: ({"t0": cyclic(v["b0"], p, s["t0"])}, [])),
        _d("t0", "b0", lambda v, s, p: ({"b0": cyclic(v["t0"], -p, s["t0"])}, [])),
    ), has_param=True),
    Primitive("stride", 1, 1, "in[i * s] <- out[i]   (s = top size / bottom size; discards data until an Unfold absorbs it)",
         "top = s * bottom with s a size > 1", _stride_shape, (
             _d("b0", "t0", lambda v, s, p: ({"t0": v["b0"] * s["s"]}, [])),
             _d("t0", "b0", lambda v, s, p: ({"b0": v["t0"] // s["s"]}, [("divides", v["t0"], s["s"])])),
         )),
    Primitive("unfold", 1, 2, "in[i + j - K//2] <- out[i, j], zero outside [0, N)   (K = window size)",
         "main size kept; window K is the right bottom dim", _unfold_shape, (
             _d("b0 b1", "t0", lambda v, s, p: (
                 {"t0": v["b0"] + v["b1"] - s["b1"] // 2}, [("range", v["b0"] + v["b1"] - s["b1"] // 2, s["t0"])])),
             _d("t0 b1", "b0", lambda v, s, p: (
                 {"b0": v["t0"] - v["b1"] + s["b1"] // 2}, [("range", v["t0"] - v["b1"] + s["b1"] // 2, s["b0"])])),
             _d("t0 b0", "b1", lambda v, s, p: (
                 {"b1": v["t0"] - v["b0"] + s["b1"] // 2}, [("range", v["t0"] - v["b0"] + s["b1"] // 2, s["b1"])])),
         )),
    Primitive("expand", 0, 1, "broadcast: the bottom coordinate reads nothing", "no top dim", _none_shape, ()),
    Primitive("reduce", 1, 0, "out = sum over a new iterator r", "no bottom dim; only sum reductions", _none_shape, ()),
    Primitive("share", 2, 1, "in[i], w[i] <- out[i]   (input side and weight side carry one coordinate)",
         "three equal sizes; top1 belongs to weight tensor `param` (>= 1); only inside a contraction",
         _share_shape, (
             _d("b0", "t0 t1", lambda v, s, p: ({"t0": v["b0"], "t1": v["b0"]}, [])),
             _d("t0", "b0 t1", lambda v, s, p: ({"b0": v["t0"], "t1": v["t0"]}, [])),
             _d("t1", "b0 t0", lambda v, s, p: ({"b0": v["t1"], "t0": v["t1"]}, [])),
         ), has_param=True),
)}

PRIMITIVE_NAMES = tuple(PRIMITIVES)


def primitive(kind: str) -> Primitive:
    """The primitive ``kind`` (its arity, shape rule, derivations), or a SynoError listing the known ones."""
    try:
        return PRIMITIVES[kind]
    except KeyError:
        raise SynoError(f"unknown primitive '{kind}': use one of {', '.join(PRIMITIVE_NAMES)}") from None


def branch_sizes(kind: str, tops: list[Size], bottoms: list[Size], convert: Callable[[Size], Any]) -> dict[str, Any]:
    """The ``sizes`` dict a derivation expects, converted into the value domain by ``convert``."""
    sizes = {f"t{i}": convert(s) for i, s in enumerate(tops)}
    sizes.update({f"b{i}": convert(s) for i, s in enumerate(bottoms)})
    if kind == "stride":
        sizes["s"] = convert(tops[0] / bottoms[0])
    return sizes
