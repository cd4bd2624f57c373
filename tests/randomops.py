"""Random valid operators for the fuzz tests (a helper module, not a test file).

:func:`random_operator` assembles an operator *forward* (input -> output) with
:class:`syno_tvm.ir.assembler.Assembler`, by a random sequence of the eight primitives over small symbolic sizes:
primaries A, B, C, D (values drawn from {2, 3, 4, 6}, returned as the binding) and the coefficients k=3, s=2, g=2
(their defaults live in the operator).  Every size it creates is a positive integer under the binding, no primary
variable ever lands in a denominator, and the iteration space (output x reduce) stays at most ``MAX_SPACE`` points,
so the numpy reference stays cheap.

Reproduce a failure with ``random_operator(np.random.default_rng(seed))``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from syno_tvm.ir.assembler import Assembler, DimRef
from syno_tvm.ir.graph import Operator
from syno_tvm.ir.sizes import Size

PRIMARIES = ("A", "B", "C", "D")
VALUES = (2, 3, 4, 6)
COEFFICIENTS = {"k": 3, "s": 2, "g": 2}
MAX_SPACE = 20000

# Input dim sizes: plain primaries, products, and sizes with a coefficient factor (so Split by a coefficient and
# Stride by s are often exact).
INPUT_SIZES = ("A", "B", "C", "D", "A*B", "C*g", "B*s", "A*k", "D*s*k", "A*C")
EXPAND_SIZES = ("A", "B", "C", "D", "k", "g", "A*s")
WINDOWS = ("k", 1, 2, 5)
SHIFTS = (1, -1, 2)
STEPS = ("split", "merge", "shift", "stride", "unfold", "share", "expand_share", "sum")

# Every primitive kind the generator can emit (Prim.kind); a test checks that seeds together cover all of them.
KINDS = ("split", "merge", "shift", "stride", "unfold", "expand", "reduce", "share")


def _value(size: Size, binding: dict[str, int]) -> Fraction:
    return size.evaluate(binding)


def _is_int(v: Fraction) -> bool:
    return v.denominator == 1 and v >= 1


def _no_primary_denominator(size: Size) -> bool:
    return all(p > 0 or name in COEFFICIENTS for name, p in size.powers)


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


class _Builder:
    """One attempt: an Assembler plus the live dims in a list (so choices are reproducible from the rng)."""

    def __init__(self, rng: np.random.Generator, binding: dict[str, int]) -> None:
        self.rng = rng
        self.full = dict(COEFFICIENTS, **binding)
        self.a = Assembler(**COEFFICIENTS)
        self.live: list[DimRef] = []
        self.max_weight = 0

    def val(self, size: Size) -> Fraction:
        return _value(size, self.full)

    def take(self, k: int = 1) -> list[DimRef]:
        idx = self.rng.choice(len(self.live), size=k, replace=False)
        dims = [self.live[int(i)] for i in idx]
        for d in dims:
            self.live.remove(d)
        return dims

    def weight_index(self) -> int:
        w = int(self.rng.integers(1, min(2, self.max_weight + 1) + 1))
        self.max_weight = max(self.max_weight, w)
        return w

    # ---- steps; each returns False when it does not apply to the current state -----------------------------------
    def split(self) -> bool:
        options = []
        for d in self.live:
            blocks = [n for n, p in d.size.powers if p > 0 and n not in COEFFICIENTS] + list(COEFFICIENTS)
            for b in blocks:
                q = d.size / Size.var(b)
                if _no_primary_denominator(q) and _is_int(self.val(q)) and self.val(q) > 1 and self.full[b] > 1:
                    options.append((d, b))
        if not options:
            return False
        d, b = options[int(self.rng.integers(len(options)))]
        self.live.remove(d)
        major, minor = self.a.split(d, b)
        self.live += [major, minor]
        return True

    def merge(self) -> bool:
        if len(self.live) < 2:
            return False
        x, y = self.take(2)
        self.live.append(self.a.merge(x, y))
        return True

    def shift(self) -> bool:
        (d,) = self.take()
        self.live.append(self.a.shift(d, int(_pick(self.rng, SHIFTS))))
        return True

    def stride(self) -> bool:
        options = [(d, st) for d in self.live for st in ("s", "k")
                   if _is_int(self.val(d.size / Size.var(st)))]
        if not options:
            return False
        d, st = options[int(self.rng.integers(len(options)))]
        self.live.remove(d)
        self.live.append(self.a.stride(d, st))
        return True

    def unfold(self) -> bool:
        (d,) = self.take()
        main, window = self.a.unfold(d, _pick(self.rng, WINDOWS))
        self.live += [main, window]
        return True

    def share(self) -> bool:
        (d,) = self.take()
        self.live.append(self.a.share(d, self.weight_index()))
        return True

    def expand_share(self) -> bool:
        e = self.a.expand(_pick(self.rng, EXPAND_SIZES))
        self.live.append(self.a.share(e, self.weight_index()))
        return True

    def sum(self) -> bool:
        if len(self.live) < 2:  # keep at least one dim for the output
            return False
        (d,) = self.take()
        self.a.sum(d)
        return True

    def finish(self) -> Operator:
        order = [self.live[int(i)] for i in self.rng.permutation(len(self.live))]
        n_out = int(self.rng.integers(1, len(order) + 1))
        output, summed = order[:n_out], order[n_out:]
        if summed:
            self.a.sum(*summed)
        return self.a.build(output)


def iteration_space(op: Operator, binding: dict[str, int]) -> int:
    sz = op.bind(binding)
    n = 1
    for d in list(op.output) + list(op.reduces):
        n *= sz[d]
    return n


def random_operator(rng: np.random.Generator) -> tuple[Operator, dict[str, int]]:
    """A random valid operator and a binding of its primary variables (A, B, C, D)."""
    while True:
        binding = {v: int(_pick(rng, VALUES)) for v in PRIMARIES}
        b = _Builder(rng, binding)
        rank = int(rng.integers(1, 4))
        b.live = list(b.a.input(*[_pick(rng, INPUT_SIZES) for _ in range(rank)]))
        for _ in range(int(rng.integers(1, 9))):
            for _attempt in range(10):
                if getattr(b, _pick(rng, STEPS))():
                    break
        op = b.finish()
        if iteration_space(op, binding) > MAX_SPACE:
            continue
        if not op.weights and not op.reduces and rng.random() < 0.5:
            continue  # pure views are allowed, but keep them a minority
        return op, binding


def random_arrays(op: Operator, binding: dict[str, int], rng: np.random.Generator) -> list[np.ndarray]:
    """Input and weights (X, W1, ...) in float32, uniform in [-1, 1]."""
    return [rng.uniform(-1, 1, s).astype(np.float32) for k, s in op.shapes(binding).items() if k != "Y"]
