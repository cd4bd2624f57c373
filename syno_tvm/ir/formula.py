"""Readable formulas: the primitive rules evaluated on symbols instead of numbers.

``Y[n, c_out, h, w] = sum_{r0<C_in, r1<k, r2<k} X[n, r0, h+r1-k//2, w+r2-k//2] * W1[c_out, r0, r1, r2]``
is what :func:`render` prints for conv2d: the same derivations that build the TE, run on :class:`Sym`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from .graph import Operator
from .indexing import Propagation, propagate
from .sizes import Size

_ADD, _MUL, _ATOM = 1, 2, 3


class Sym:
    """An index expression as text, with just enough precedence to print few parentheses."""

    def __init__(self, text: str, prec: int = _ATOM) -> None:
        self.text, self.prec = text, prec

    @staticmethod
    def of(x: "Sym | int") -> "Sym":
        return x if isinstance(x, Sym) else Sym(str(x), _ATOM if x >= 0 else _ADD)

    def _wrap(self, prec: int) -> str:
        return f"({self.text})" if self.prec < prec else self.text

    def _bin(self, other: "Sym | int", op: str, prec: int, right_prec: int) -> "Sym":
        other = Sym.of(other)
        return Sym(f"{self._wrap(prec)}{op}{other._wrap(right_prec)}", prec)

    def __add__(self, other):
        if other == 0:
            return self
        if isinstance(other, int) and other < 0:
            return self - (-other)
        return self._bin(other, "+", _ADD, _ADD)

    def __sub__(self, other):
        return self if other == 0 else self._bin(other, "-", _ADD, _MUL)

    def __mul__(self, other):
        if other == 1 or (isinstance(other, Sym) and other.text == "1"):
            return self
        return self._bin(other, "*", _MUL, _MUL + 1)

    def __floordiv__(self, other):
        return self._bin(other, "//", _MUL, _ATOM)

    def __mod__(self, other):
        return self._bin(other, "%", _MUL, _ATOM)

    def __radd__(self, other):
        return Sym.of(other) + self

    def __rmul__(self, other):
        return Sym.of(other) * self

    def __eq__(self, other):
        return isinstance(other, (Sym, int)) and str(self) == str(other)

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return self.text


def size_sym(size: Size) -> Sym:
    text = str(size)
    return Sym(text, _ATOM if text.replace("_", "").isalnum() else _MUL)


def iterator_names(op: Operator, dims: Sequence[int], prefix: str, taken: set[str]) -> dict[int, str]:
    """Lower-case names from single-variable sizes (n, c_out, h), else ``prefix + index``."""
    names = {}
    for k, d in enumerate(dims):
        s = op.sizes[d]
        single = s.factor == 1 and len(s.powers) == 1 and s.powers[0][1] == 1
        base = s.powers[0][0].lower() if prefix == "i" and single else f"{prefix}{k}"
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}{n}"
        taken.add(name)
        names[d] = name
    return names


def _guard_text(g: tuple) -> str:
    if g[0] == "range":
        return f"0 <= {g[1]} < {g[2]}"
    if g[0] == "divides":
        return f"{g[1]} % {g[2]} == 0"
    return f"{g[1]} == {g[2]}"


def render(op: Operator, result: str, out_dims: Sequence[int], reduce_dims: Sequence[int],
           factors: Sequence[tuple[str, Sequence[int]]], prims: Mapping[int, object] | None = None) -> str:
    """``result[out] = sum_{reduce} prod factors[...]  where guards``, over the primitives ``prims`` (default all).

    Coefficient names (``g``, ``k``, ``s``) are taken from the start: an axis of size ``g`` named ``g`` read as the
    coefficient in ``X[n, r0*g+g, ...]``."""
    taken: set[str] = {name for name, _ in op.coefficients}
    names = iterator_names(op, out_dims, "i", taken)
    names.update(iterator_names(op, reduce_dims, "r", taken))
    state = Propagation({d: Sym(n) for d, n in names.items()})
    propagate(prims if prims is not None else dict(enumerate(op.prims)), op.sizes, state, size_sym, set())
    lhs = f"{result}[{', '.join(names[d] for d in out_dims)}]"
    terms = " * ".join(f"{name}[{', '.join(str(state.values[d]) for d in dims)}]" for name, dims in factors)
    text = lhs + " = "
    if reduce_dims:
        text += "sum_{" + ", ".join(f"{names[d]}<{op.sizes[d]}" for d in reduce_dims) + "} "
    text += terms
    if state.guards:
        text += "   where " + ", ".join(_guard_text(g) for g in state.guards)
    return text


def operator_formula(op: Operator) -> str:
    """The whole operator as one sum of products."""
    factors = [("X", op.input)] + [(f"W{t}", w) for t, w in enumerate(op.weights, start=1)]
    return render(op, "Y", op.output, op.reduces, factors)
