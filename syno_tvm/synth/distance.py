"""Shape distance: a lower bound on the number of steps still needed to turn a frontier into the input's dims.

Sound by counting what each kind of step can do (bottom-up, syno.md 3.2):

* *closing* a dim takes an Unfold (absorbs a data-discarding Stride dim), an Expand or a Contraction's outer Share;
  a dim that carries a primary variable the input lacks (C_out in vision) can only be closed, a data-discarding
  dim only closed or unfolded.  Splits can first gather several such dims into one, so this costs >= 1 step;
* *new sizes* come only from Merge (two new sizes), Split, Stride and Reduce (one each): an input dim whose size is
  not on the frontier needs half a step at least;
* *more dims* come only from Merge and Reduce; *fewer dims* from Split, Unfold, Expand (one each) and Contraction
  (any number);
* a numel mismatch needs at least one step;
* *availability*: a primary variable of the input (C_in, H) can only come from frontier dims or from Reduces still
  allowed (and only at the root stage under the ``reduce_first`` rule); a frontier that cannot supply the input's
  powers is a dead end (:data:`UNREACHABLE`), and a surplus has to be closed (>= 1 step).

:func:`_shape_steps` minimizes the step count over these counting constraints jointly.
Syno's reshape-group enumeration is tighter; the dead-end ratio the benchmark reports shows what this one misses.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

from ..ir.sizes import Size
from .spec import Spec
from .state import Node


UNREACHABLE = 10**6


def distance(spec: Spec, node: Node, can_reduce: bool = True) -> int:
    """Lower bound on the steps from ``node`` to a frontier that equals the input (0 means: sizes match exactly).
    ``can_reduce`` says whether the space may still add Reduces below this node."""
    want = [d.size for d in spec.search_input]
    have = [d.size for d in node.frontier]
    weights_left = spec.max_weights - len(node.weights)
    input_primaries = _input_primaries(spec)

    surplus = False
    used = dict(node.used)
    for name in input_primaries:
        need = sum(s.power(name) for s in want)
        got = sum(s.power(name) for s in have)
        extra = max(0, spec.allowance(name) - used.get(name, 0)) if can_reduce and node.reductions < spec.max_reductions else 0
        if got + extra < need:
            return UNREACHABLE
        surplus = surplus or got > need
    foreign = sum(1 for s in have if any(n not in input_primaries and spec.is_primary(n) for n in s.variables()))
    discarding = sum(1 for d in node.frontier if d.discarding)
    to_close = foreign + discarding + surplus > 0
    unmatched = sum((Counter(want) - Counter(have)).values())
    numel = 0 if _product(have) == _product(want) else 1
    # a numel change needs a non-reshape step: a Stride or Reduce if allowed, else a closing remover
    special = to_close or (numel and not spec.strides and not (can_reduce and node.reductions < spec.max_reductions))
    best = _shape_steps(len(want) - len(have), unmatched, special, weights_left > 0, bool(spec.strides),
                        spec.max_depth - node.depth)
    no_weight = 0 if node.weights else 1  # an operator needs a weight: at least one Contraction is left
    return max(best, numel, no_weight, _group_steps(spec, node, input_primaries, weights_left > 0,
                                          can_reduce and node.reductions < spec.max_reductions))


def _group_steps(spec: Spec, node: Node, input_primaries: frozenset[str], can_contract: bool,
                 can_reduce: bool) -> int:
    """Syno-style reshape groups.  Each input dim holds one primary; frontier dims that share an input primary form
    a group with those input dims.  A group whose primaries balance must become its input dims through a connected
    tree of Merges and Splits: >= |F| + |D| - 2 steps (3 dims per step, connected), plus one Merge to peel off a
    coefficient surplus.  Coefficient-only dims cost a step each (a Split into a group, an Unfold window, an
    Expand) and dims with a foreign primary a closing step each, unless one Contraction closes them all."""
    parent = {p: p for p in input_primaries}

    def find(p: str) -> str:
        while parent[p] != p:
            p = parent[p]
        return p

    free, groups = 0, []
    for d in node.frontier:
        names = [n for n in d.size.variables() if spec.is_primary(n)]
        if any(n not in input_primaries for n in names) or d.discarding:
            free += 1
        elif not names:
            free += 1
        else:
            groups.append(d)
            for n in names[1:]:
                parent[find(n)] = find(names[0])
    steps = 0
    for root in {find(p) for p in input_primaries}:
        members = {p for p in input_primaries if find(p) == root}
        f = [d.size for d in groups if any(find(n) == root for n in d.size.variables() if n in parent)]
        want = [d.size for d in spec.search_input if any(n in members for n in d.size.variables())]
        have_p = {p: sum(s.power(p) for s in f) for p in members}
        need_p = {p: sum(s.power(p) for s in want) for p in members}
        if any(have_p[p] > need_p[p] for p in members):
            steps += 1
            continue
        if any(have_p[p] < need_p[p] for p in members):
            if can_reduce:
                continue
            return UNREACHABLE
        steps += len(f) + len(want) - 2
        residual = _product(f + [w ** -1 for w in want])
        steps += any(p > 0 for _, p in residual.powers) or residual.factor > 1
    return steps + (min(free, 1) if can_contract else free)


def _shape_steps(delta: int, unmatched: int, to_close: bool, can_contract: bool, can_stride: bool,
                 limit: int) -> int:
    """Fewest steps that change the dim count by ``delta`` and make ``unmatched`` new sizes (and close a dim if
    ``to_close``), counting *adders* X (Merge: +1 dim, <= 2 new sizes; Reduce: +1, 1), *removers* Y (Split: -1,
    1 new size; Unfold, Expand: -1, none), Strides S (1 new size) and at most one Contraction (any number of
    removals, closes dims).  A relaxation of the true step set, so the minimum is a lower bound."""
    best = UNREACHABLE
    for y in range(limit + 1):
        # without a contraction: the count must change by exactly delta, and a closing step is a remover
        x = delta + y
        if x >= 0 and (y >= 1 or not to_close):
            short = unmatched - 2 * x - (y - (1 if to_close else 0))
            if short <= 0 or can_stride:
                best = min(best, x + y + max(0, short))
        if can_contract:
            x = max(0, delta + y, -(-(unmatched - y) // 2))
            best = min(best, x + y + 1)
    return best


def _product(sizes: list[Size]) -> Size:
    """The product, summing exponents directly (``Size.__mul__`` builds a Size per factor: too slow here)."""
    num = den = 1
    powers: dict[str, int] = {}
    for s in sizes:
        num *= s.factor.numerator
        den *= s.factor.denominator
        for n, p in s.powers:
            powers[n] = powers.get(n, 0) + p
    return Size(Fraction(num, den), tuple(sorted((n, p) for n, p in powers.items() if p)))


def _input_primaries(spec: Spec) -> frozenset[str]:
    return frozenset(n for d in spec.search_input for n in d.size.variables() if spec.is_primary(n))
