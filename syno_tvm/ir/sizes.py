"""Symbolic sizes: monomials over primary and coefficient variables.

One synthesized operator must fit every layer that uses it, so its dimension sizes are not numbers but monomials
such as ``C_in*g^-1`` or ``t*H_in``.  *Primary* variables (N, C_in, C_out, H, W, seq, ...) are large and
layer-specific, and only ever appear with non-negative powers; *coefficient* variables (k=3, s=2, g=32, ...) are
small named constants and may appear in a denominator.  A size is valid for an operator only if it evaluates to a
positive integer for **every** layer binding the operator serves (exact division, as Syno requires).

A :class:`Size` is an immutable value with structural equality, so it can key dicts and feed stable hashes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Mapping

from ..errors import SynoError

PRIMARY = "primary"
COEFFICIENT = "coefficient"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Size:
    """``factor * prod(var ** power)``; ``powers`` is sorted by name and holds no zero powers."""

    factor: Fraction = Fraction(1)
    powers: tuple[tuple[str, int], ...] = ()

    # ---- construction -------------------------------------------------------------------------------------------
    @staticmethod
    def var(name: str) -> "Size":
        return Size(Fraction(1), ((name, 1),))

    @staticmethod
    def const(value: int | Fraction) -> "Size":
        return Size(Fraction(value), ())

    @staticmethod
    def parse(text: "str | int | Size") -> "Size":
        """Parse ``C_in/g``, ``t*H_in``, ``H_in/(k^4*t)``, ``k^2``, ``3`` (``**`` is accepted for ``^``)."""
        if isinstance(text, Size):
            return text
        if isinstance(text, int) and not isinstance(text, bool):
            if text < 1:
                raise SynoError(f"a size must be a positive integer, got {text}")
            return Size.const(text)
        if not isinstance(text, str):
            raise SynoError(f"a size must be a string such as 'C_in/g' or a positive integer, got {text!r}")
        return _Parser(text).parse()

    # ---- algebra --------------------------------------------------------------------------------------------------
    def __mul__(self, other: "Size | int") -> "Size":
        other = _as_size(other)
        powers = dict(self.powers)
        for name, p in other.powers:
            powers[name] = powers.get(name, 0) + p
        return Size(self.factor * other.factor, tuple(sorted((n, p) for n, p in powers.items() if p)))

    __rmul__ = __mul__

    def __truediv__(self, other: "Size | int") -> "Size":
        return self * _as_size(other) ** -1

    def __rtruediv__(self, other: "Size | int") -> "Size":
        return _as_size(other) * self ** -1

    def __pow__(self, exponent: int) -> "Size":
        return Size(self.factor ** exponent, tuple((n, p * exponent) for n, p in self.powers if p * exponent))

    # ---- queries --------------------------------------------------------------------------------------------------
    @property
    def is_one(self) -> bool:
        return self.factor == 1 and not self.powers

    def variables(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.powers)

    def power(self, name: str) -> int:
        return dict(self.powers).get(name, 0)

    def evaluate(self, binding: Mapping[str, int]) -> Fraction:
        """The exact value under ``binding``; raises SynoError naming any unbound variable."""
        return Fraction(*self._ratio(binding))

    def _ratio(self, binding: Mapping[str, int]) -> tuple[int, int]:
        """(numerator, denominator), not reduced: integer products instead of Fraction arithmetic, which made
        binding sizes the main cost of checking a synthesized operator's limits."""
        num, den = self.factor.numerator, self.factor.denominator
        for name, p in self.powers:
            if name not in binding:
                raise SynoError(f"size {self} needs a value for variable '{name}': add it with --bind {name}=VALUE")
            if p > 0:
                num *= binding[name] ** p
            else:
                den *= binding[name] ** -p
        return num, den

    def value(self, binding: Mapping[str, int], where: str = "") -> int:
        """The size as a positive integer under ``binding``, or a SynoError that names size, layer and values."""
        num, den = self._ratio(binding)
        if num % den == 0 and num >= den > 0:
            return num // den
        v = Fraction(num, den)
        if v.denominator != 1 or v < 1:
            used = ", ".join(f"{n}={binding[n]}" for n in self.variables())
            place = f" in {where}" if where else ""
            raise SynoError(
                f"size {self} is {v} (not a positive integer){place} with {used}: "
                f"choose values that divide exactly, or an operator whose sizes fit this layer")
        return int(v)

    def __str__(self) -> str:
        num = [n if p == 1 else f"{n}^{p}" for n, p in self.powers if p > 0]
        den = [n if p == -1 else f"{n}^{-p}" for n, p in self.powers if p < 0]
        if self.factor.numerator != 1 or not num:
            num.insert(0, str(self.factor.numerator))
        if self.factor.denominator != 1:
            den.insert(0, str(self.factor.denominator))
        text = "*".join(num)
        if den:
            text += "/" + (den[0] if len(den) == 1 else "(" + "*".join(den) + ")")
        return text

    def __repr__(self) -> str:
        return f"Size({str(self)!r})"


def _as_size(x: "Size | int | Fraction") -> Size:
    return x if isinstance(x, Size) else Size.const(x)


class _Parser:
    """Recursive descent over ``expr := term (('*'|'/') term)*``, ``term := atom ('^' int)?``.

    Sizes are short monomials, so the text length and exponents are bounded: that keeps hostile input (thousands of
    nested parentheses, ``2^999999999``) a one-line error instead of a RecursionError or a hang."""

    MAX_CHARS = 200
    MAX_EXPONENT = 64

    def __init__(self, text: str) -> None:
        if len(text) > self.MAX_CHARS:
            raise SynoError(f"size text of {len(text)} characters is too long (at most {self.MAX_CHARS}): "
                            f"sizes are short monomials such as C_in/g")
        self.text = text
        self.tokens = re.findall(r"\*\*|[A-Za-z_][A-Za-z0-9_]*|-?\d+|[*/^()]|\S", text)
        self.pos = 0

    def fail(self, why: str) -> SynoError:
        return SynoError(f"cannot parse size '{self.text}': {why} (write sizes like C_in/g, t*H_in or k^2)")

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise self.fail("it ends too early")
        self.pos += 1
        return tok

    def parse(self) -> Size:
        if not self.tokens:
            raise self.fail("it is empty")
        size = self.expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected '{self.peek()}'")
        return size

    def expr(self) -> Size:
        size = self.term()
        while self.peek() in ("*", "/"):
            op = self.take()
            rhs = self.term()
            size = size * rhs if op == "*" else size / rhs
        return size

    def term(self) -> Size:
        base = self.atom()
        if self.peek() in ("^", "**"):
            self.take()
            exp = self.take()
            if not re.fullmatch(r"-?\d+", exp):
                raise self.fail(f"the exponent '{exp}' is not an integer")
            if abs(int(exp)) > self.MAX_EXPONENT:
                raise self.fail(f"the exponent {exp} is larger than {self.MAX_EXPONENT}")
            base = base ** int(exp)
        return base

    def atom(self) -> Size:
        tok = self.take()
        if tok == "(":
            inner = self.expr()
            if self.take() != ")":
                raise self.fail("a parenthesis is not closed")
            return inner
        if re.fullmatch(r"\d+", tok):
            if int(tok) == 0:
                raise self.fail("a size cannot be 0")
            return Size.const(int(tok))
        if _NAME.fullmatch(tok):
            return Size.var(tok)
        raise self.fail(f"unexpected '{tok}'")


# ---- variables and specs ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Variable:
    """A named size variable.  ``max_occurrences`` bounds how often synthesis may introduce it in weights/reductions."""

    name: str
    kind: str
    value: int | None = None
    max_occurrences: int | None = None

    @staticmethod
    def parse(text: str, kind: str) -> "Variable":
        """Parse ``k=3: 2`` (value 3, at most 2 occurrences), ``C_in: 2`` or ``H``."""
        m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:=\s*(\d+))?\s*(?::\s*(\d+))?\s*", text)
        if not m:
            raise SynoError(f"cannot parse variable spec '{text}': write it as NAME, NAME: MAX or NAME=VALUE: MAX")
        name, value, occ = m.group(1), m.group(2), m.group(3)
        if kind == COEFFICIENT and value is None:
            raise SynoError(f"coefficient '{name}' needs a value: write it as {name}=VALUE")
        if value is not None and int(value) < 1:
            raise SynoError(f"variable '{name}' must have a positive value, got {value}")
        return Variable(name, kind, int(value) if value else None, int(occ) if occ else None)


@dataclass(frozen=True)
class DimSpec:
    """One dimension of an input/output shape spec; ``unordered`` marks channel-like, permutation-invariant dims."""

    size: Size
    unordered: bool = False

    def __str__(self) -> str:
        return f"{self.size}: unordered" if self.unordered else str(self.size)


def parse_shape(text: str) -> tuple[DimSpec, ...]:
    """Parse a shape spec such as ``[N, C_in: unordered, H, W]``."""
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise SynoError(f"cannot parse shape '{text}': write it in brackets, e.g. [N, C_in: unordered, H, W]")
    dims = []
    for part in filter(None, (p.strip() for p in body[1:-1].split(","))):
        size_text, _, attr = part.partition(":")
        attr = attr.strip()
        if attr not in ("", "unordered"):
            raise SynoError(f"unknown attribute '{attr}' in shape '{text}': the only attribute is 'unordered'")
        dims.append(DimSpec(Size.parse(size_text.strip()), attr == "unordered"))
    return tuple(dims)


@dataclass(frozen=True)
class VarSpace:
    """The variables an operator's sizes may use, with their kinds and coefficient values."""

    variables: tuple[Variable, ...] = field(default_factory=tuple)

    @staticmethod
    def from_specs(primary: Iterable[str] = (), coefficient: Iterable[str] = ()) -> "VarSpace":
        vs = [Variable.parse(s, PRIMARY) for s in primary] + [Variable.parse(s, COEFFICIENT) for s in coefficient]
        names = [v.name for v in vs]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise SynoError(f"variable(s) {sorted(dup)} declared twice: declare each variable once")
        return VarSpace(tuple(vs))

    def __getitem__(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise SynoError(f"unknown variable '{name}': declare it as a primary or coefficient variable")

    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)

    def coefficients(self) -> dict[str, int]:
        return {v.name: v.value for v in self.variables if v.kind == COEFFICIENT and v.value is not None}

    def check(self, size: Size) -> None:
        """Reject sizes with unknown variables or with a primary variable in a denominator."""
        for name, p in size.powers:
            var = self[name]
            if var.kind == PRIMARY and p < 0:
                raise SynoError(f"size {size} divides by primary variable '{name}': only coefficients may divide")

    def binding(self, primaries: Mapping[str, int]) -> dict[str, int]:
        """Coefficient values plus the given primary (and overriding coefficient) values."""
        full = self.coefficients()
        full.update(primaries)
        return full


def parse_binding(text: str) -> dict[str, int]:
    """Parse ``C_in=8,C_out=16,H=8`` into a dict."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\d+)", part)
        if not m or int(m.group(2)) < 1:
            raise SynoError(f"cannot parse binding '{part}': write NAME=POSITIVE_INT, e.g. C_in=8,H=8")
        out[m.group(1)] = int(m.group(2))
    return out


def check_bindings(sizes: Mapping[str, Size], layers: Mapping[str, Mapping[str, int]]) -> None:
    """Raise a SynoError naming the first size that is not a positive integer in some layer."""
    for layer, binding in layers.items():
        for what, size in sizes.items():
            size.value(binding, where=f"{what} of layer '{layer}'")
