"""Shape distance: a lower bound on the number of steps still needed to turn a frontier into the input's dims.

Sound by counting what each kind of step can do (bottom-up, as Syno's ``FinalizeOp::Distance``):

* *closing* a dim takes an Unfold (absorbs a data-discarding Stride dim), an Expand or a Contraction's outer Share;
  a dim that carries a primary variable the input lacks (C_out in vision) can only be closed, a data-discarding
  dim only closed or unfolded.  Splits can first gather several such dims into one, so this costs >= 1 step;
* *new sizes* come only from Merge (two new sizes), Split, Stride and Reduce (one each): an input dim whose size is
  not on the frontier needs half a step at least;
* *more dims* come only from Merge and Reduce; *fewer dims* from Split, Unfold, Expand (one each) and Contraction
  (any number);
* a numel mismatch needs at least one step;
* *availability*: a primary variable of the input (C_in, H) can only come from frontier dims or from Reduces still
  allowed (only at the root stage under the ``reduce_first`` rule, and only sizes not below the last Reduce's
  under ``reduce_order``: the caller passes that *floor*); a frontier that cannot supply the input's powers is a
  dead end (:data:`UNREACHABLE`), and a surplus has to be closed (>= 1 step);
* *numel* (Syno's numel check): once no Reduce and no Stride can follow, no step makes the frontier's product
  larger (Merge, Split, Shift and inner Shares keep it; Unfold, Expand and outer Shares divide it by a dim's
  size, a positive integer in every binding), so product / input product must be an integer >= 1 in every
  binding, else the node is a dead end;
* *a weight is owed*: a frontier without a weight still needs a Contraction, a step that changes no size, so it
  adds to the reshape steps unless it can be the step that closes dims.  A Contraction selects two dims or more
  whose primaries fit the allowance left; if no pair of frontier dims fits, some other step must come first (>= 2).

:func:`_shape_steps` minimizes the step count over these counting constraints jointly.
Syno's reshape-group enumeration is tighter; the dead-end ratio the benchmark reports shows what this one misses.
The bound is a pure function of the frontier's sizes (with their discarding marks), the variable allowance used,
the weight and Reduce counts and the Reduce floor (a :class:`_Key`), so it is memoized on exactly those: many
frontiers of the lattice share their sizes, at different depths.  (Not the depth: :func:`_shape_steps` searches up
to the whole depth limit, which changes no verdict, since a plan longer than the depth left is pruned either way.)
Most candidate children fail the bound, so :func:`step_distance` derives a child's key from its parent's and the
step's effect on sizes, without building the child node.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..ir.sizes import Size
from .spec import Spec, size_key
from .state import Dim, Node, Step
from .steps import step_kind

UNREACHABLE = 10**6


# What the bound reads of a node: sorted frontier tokens (4 * size index + 2 * raw + discarding, where *raw* marks
# a Reduce dim no weight reads yet, under the no_expand_of_reduce rule), the allowance used, the
# weight and Reduce counts, whether Reduces may still follow and the floor of their sizes (a size index, -1: any).
_Key = tuple[tuple[int, ...], tuple[tuple[str, int], ...], int, int, bool, int]


@dataclass(frozen=True)
class _Info:
    """What the bound needs to know about one size, computed once per (spec, size): the distance is evaluated for
    every candidate child, and Size arithmetic (Fractions) would dominate the search otherwise."""

    index: int                               # small id: memo keys are built from it
    size: Size
    text: str
    num: int
    den: int
    powers: tuple[tuple[str, int], ...]
    inputs: tuple[tuple[str, int], ...]      # powers of the input's primaries
    primaries: tuple[tuple[str, int], ...]   # powers of all primaries (what a Share of it counts)
    foreign: bool                            # holds a primary the input lacks
    coefficient_only: bool


class _Context:
    """Per-spec constants of the bound and the size-info cache."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.cache: dict[tuple, _Info] = {}
        self.infos: list[_Info] = []           # by index
        self.by_dim: dict[str, _Info] = {}     # dim hash -> info (a dim hash determines the size)
        self.products: dict[tuple[int, int, bool], _Info] = {}   # (index, index, divide?) -> info of the result
        self.memo: dict[_Key, int] = {}
        self.parent: tuple[Node | None, list[int]] = (None, [])  # the last node whose children were keyed
        self.parent_raw = False
        self.input_primaries = frozenset(n for d in spec.search_input for n in d.size.variables()
                                         if spec.is_primary(n))
        want = [self.info(d.size) for d in spec.search_input]
        self.want_texts = Counter(i.text for i in want)
        self.want_n = len(want)
        self.need = {p: sum(dict(i.inputs).get(p, 0) for i in want) for p in self.input_primaries}
        self.want_product = _product(want)
        self.want_by_primary = {p: [i for i in want if any(n == p for n, _ in i.inputs)]
                                for p in self.input_primaries}
        self.reduce_infos = sorted((self.info(s) for s in spec.reduce_sizes), key=lambda i: size_key(i.size))
        self.floors: dict[int, list[_Info]] = {}  # floor size index -> the Reduce sizes allowed above it

    def reduces_from(self, floor: int) -> list[_Info]:
        """The Reduce sizes not below the size with index ``floor`` in :func:`size_key` order (-1: all)."""
        out = self.floors.get(floor)
        if out is None:
            low = size_key(self.infos[floor].size) if floor >= 0 else None
            out = self.floors[floor] = [i for i in self.reduce_infos if low is None or size_key(i.size) >= low]
        return out

    def floor_index(self, floor: Size | None) -> int:
        return -1 if floor is None else self.info(floor).index

    def info(self, size: Size) -> _Info:
        key = (size.factor.numerator, size.factor.denominator, size.powers)  # hashing a Fraction is slow
        i = self.cache.get(key)
        if i is None:
            prim = [(n, p) for n, p in size.powers if self.spec.is_primary(n)]
            i = _Info(len(self.infos), size, str(size), size.factor.numerator, size.factor.denominator,
                      size.powers, tuple((n, p) for n, p in prim if n in self.input_primaries), tuple(prim),
                      any(n not in self.input_primaries for n, _ in prim), not prim)
            self.cache[key] = i
            self.infos.append(i)
        return i

    def combine(self, a: _Info, b: _Info, divide: bool) -> _Info:
        """Info of ``a * b`` or ``a / b``, cached on the indices (Size arithmetic is Fraction arithmetic)."""
        key = (a.index, b.index, divide)
        i = self.products.get(key)
        if i is None:
            i = self.products[key] = self.info(a.size / b.size if divide else a.size * b.size)
        return i

    def count(self, used: dict[str, int], size: Size) -> None:
        """Add a Reduce's or a selected dim's primaries to ``used``, as :meth:`Space.apply` does."""
        for n, p in size.powers:
            if self.spec.is_primary(n):
                used[n] = used.get(n, 0) + p

    def dim_info(self, d: Dim) -> _Info:
        """:meth:`info` of a frontier dim, looked up by its hash (a str hash is cached; a Size's is not)."""
        i = self.by_dim.get(d.hash)
        if i is None:
            i = self.by_dim[d.hash] = self.info(d.size)
        return i


_CONTEXTS: dict[int, _Context] = {}


def _context(spec: Spec) -> _Context:
    ctx = _CONTEXTS.get(id(spec))
    if ctx is None or ctx.spec is not spec:
        ctx = _CONTEXTS[id(spec)] = _Context(spec)
    return ctx


def distance(spec: Spec, node: Node, can_reduce: bool = True, floor: Size | None = None, raw: bool = False) -> int:
    """Lower bound on the steps from ``node`` to a frontier that equals the input (0 means: sizes match exactly).
    ``can_reduce`` says whether the space may still add Reduces below this node, ``floor`` the smallest Reduce size
    (by :func:`size_key`) it may add, None for any; ``raw``: the no_expand_of_reduce rule is on (a Reduce dim no
    weight reads can be neither Expanded nor outer-Shared)."""
    ctx = _context(spec)
    tokens = tuple(sorted(_token(ctx, d, raw) for d in node.frontier))
    return _memo(ctx, (tokens, node.used, len(node.weights), node.reductions, can_reduce, ctx.floor_index(floor)))


def _token(ctx: _Context, d: Dim, raw: bool) -> int:
    return 4 * ctx.dim_info(d).index + 2 * (raw and d.summed == 0) + d.discarding


def step_distance(spec: Spec, node: Node, step: Step, can_reduce: bool = True, floor: Size | None = None,
                  raw: bool = False) -> int:
    """:func:`distance` of the child that ``step`` leads to (``can_reduce``, ``floor`` and ``raw`` for the child),
    computed from the sizes the step creates and consumes alone (:meth:`StepKind.shape
    <syno_tvm.synth.steps.StepKind.shape>`): the same key as the built child's, at a fraction of the cost.  Only a
    Reduce creates a raw dim; every step that consumes one leaves none (an inner Share's top is read by a weight)."""
    ctx = _context(spec)
    if ctx.parent[0] is not node or ctx.parent_raw != raw:
        ctx.parent, ctx.parent_raw = (node, [_token(ctx, d, raw) for d in node.frontier]), raw
    delta = _Delta(ctx, node, raw)
    step_kind(step.kind).shape(delta, step)
    used = node.used if delta.counted is None else tuple(sorted(delta.counted.items()))
    return _memo(ctx, (tuple(sorted(delta.tokens)), used, delta.weights, delta.reductions, can_reduce,
                       ctx.floor_index(floor)))


class _Delta:
    """The child's key as a step kind changes its parent's (:class:`~syno_tvm.synth.steps.ShapeDelta`): tokens
    taken and added, the allowance counted (a copy made on the first count), weights and Reduces."""

    __slots__ = ("ctx", "node", "raw", "tokens", "counted", "weights", "reductions")

    def __init__(self, ctx: _Context, node: Node, raw: bool) -> None:
        self.ctx, self.node, self.raw = ctx, node, raw
        self.tokens = list(ctx.parent[1])
        self.counted: dict[str, int] | None = None
        self.weights, self.reductions = len(node.weights), node.reductions

    def take(self, h: str) -> tuple[_Info, bool]:
        t = _token(self.ctx, self.node.dim(h), self.raw)
        self.tokens.remove(t)
        return self.ctx.infos[t >> 2], bool(t & 1)

    def size(self, s: Size) -> _Info:
        return self.ctx.info(s)

    def product(self, a: _Info, b: _Info) -> _Info:
        return self.ctx.combine(a, b, False)

    def quotient(self, a: _Info, b: _Info) -> _Info:
        return self.ctx.combine(a, b, True)

    def add(self, s: _Info, discarding: bool, raw: bool = False) -> None:
        self.tokens.append(4 * s.index + 2 * (raw and self.raw) + discarding)

    def count(self, s: _Info) -> None:
        if self.counted is None:
            self.counted = dict(self.node.used)
        self.ctx.count(self.counted, s.size)


def _memo(ctx: _Context, key: _Key) -> int:
    out = ctx.memo.get(key)
    if out is None:
        out = ctx.memo[key] = _distance(ctx, key)
    return out


def _distance(ctx: _Context, key: _Key) -> int:
    spec = ctx.spec
    tokens, node_used, n_weights, reductions, can_reduce, floor = key
    have = [ctx.infos[t >> 2] for t in tokens]
    disc = [bool(t & 1) for t in tokens]
    raw = [bool(t & 2) for t in tokens]
    weights_left = spec.max_weights - n_weights
    reduces = ctx.reduces_from(floor) if can_reduce and reductions < spec.max_reductions else []
    reduce_left = bool(reduces)

    surplus = False
    used = dict(node_used)
    for name in ctx.input_primaries:
        got = sum(p for i in have for n, p in i.inputs if n == name)
        # each Reduce left adds at most the largest power of ``name`` among the sizes it may take
        most = max((p for i in reduces for n, p in i.inputs if n == name), default=0)
        extra = min(max(0, spec.allowance(name) - used.get(name, 0)), most * (spec.max_reductions - reductions))
        if got + extra < ctx.need[name]:
            return UNREACHABLE
        surplus = surplus or got > ctx.need[name]
    foreign = sum(1 for i in have if i.foreign)
    discarding = sum(disc)
    to_close = foreign + discarding + surplus > 0
    unmatched = sum((ctx.want_texts - Counter(i.text for i in have)).values())
    product = _product(have)
    numel = 0 if _same(product, ctx.want_product) else 1
    if numel and not spec.strides and not reduce_left and not _divisible(ctx, product):
        return UNREACHABLE
    # a numel change needs a non-reshape step: a Stride or Reduce if allowed, else a closing remover
    special = to_close or (numel and not spec.strides and not reduce_left)
    owe_weight = not n_weights  # an operator needs a weight: at least one Contraction is left
    if owe_weight and weights_left <= 0:
        return UNREACHABLE
    best = _shape_steps(ctx.want_n - len(have), unmatched, special, weights_left > 0, owe_weight, bool(spec.strides),
                        spec.max_depth)
    contract = 0 if not owe_weight else 1 if _shareable_pair(spec, have, used) else 2
    return max(best, numel, contract,
               _group_steps(ctx, have, disc, raw, weights_left, owe_weight, reduce_left))


def _shareable_pair(spec: Spec, have: list[_Info], used: dict[str, int]) -> bool:
    """Whether two frontier dims could be selected by one Contraction within the allowance left (every selected
    dim's primaries count, inner or outer)."""
    for a in range(len(have)):
        for b in range(a + 1, len(have)):
            total = dict(used)
            for n, p in have[a].primaries + have[b].primaries:
                total[n] = total.get(n, 0) + p
            if all(total[n] <= spec.allowance(n) for n, _ in have[a].primaries + have[b].primaries):
                return True
    return False


def _divisible(ctx: _Context, product: tuple[int, int, dict[str, int]]) -> bool:
    """Whether ``product`` / the input's product is an integer >= 1 in every binding (layers and probe)."""
    num, den, powers = product
    wn, wd, wp = ctx.want_product
    ratio = dict(powers)
    for n, p in wp.items():
        ratio[n] = ratio.get(n, 0) - p
    for b in ctx.spec.bindings:
        top, bottom = num * wd, den * wn
        for n, p in ratio.items():
            if p > 0:
                top *= b[n] ** p
            elif p < 0:
                bottom *= b[n] ** -p
        if top < bottom or top % bottom:
            return False
    return True


def _group_steps(ctx: _Context, have: list[_Info], disc: list[bool], raw: list[bool], weights_left: int,
                 owe_weight: bool, can_reduce: bool) -> int:
    """Syno-style reshape groups.  Each input dim holds one primary; frontier dims that share an input primary form
    a group with those input dims.  A group whose primaries balance must become its input dims through a connected
    tree of Merges and Splits: >= |F| + |D| - 2 steps (3 dims per step, connected).  Coefficient-only dims cost a
    step each (a Split into a group, an Unfold window, an Expand) and dims with a foreign primary a closing step
    each, unless one Contraction closes them all.

    Two bounds, both sound, the larger counts.  *Peel*: a group whose product exceeds its input dims' needs one
    more Merge to peel the surplus off, on top of the free dims' cost.  *Mismatch*: a group whose product differs
    from its input dims' in either direction exchanges size with something outside it (a free dim, another group,
    a Stride); in the step hypergraph that adds a terminal to its component (one step more) or, when k >= 2 groups
    share a component, the tree over their union costs 2(k-1) >= k steps more than the k trees.  A surplus primary
    or a foreign one leaves only through a closing step (Expand or outer Share: only they drop a primary), and one
    such step may close them all; an owed weight needs a Contraction, which changes no size, so it is that closing
    step or one more.

    A *raw* free dim (a Reduce no weight reads, under no_expand_of_reduce) can be neither Expanded nor closed by an
    outer Share: it leaves through a Split or Unfold of its own (two raw dims per Split at best, and the product
    still has to close), or through two Contractions (an inner Share, then an outer one of the next weight)."""
    parent = {p: p for p in ctx.input_primaries}

    def find(p: str) -> str:
        while parent[p] != p:
            p = parent[p]
        return p

    free, raw_free, foreign, groups = 0, 0, False, []
    for discarding, is_raw, i in zip(disc, raw, have):
        if i.foreign or discarding or not i.inputs:
            free += 1
            raw_free += is_raw
            foreign = foreign or i.foreign
        else:
            groups.append(i)
            for n, _ in i.inputs[1:]:
                parent[find(n)] = find(i.inputs[0][0])
    tree = peel = mismatch = surplus = 0
    for root in {find(p) for p in ctx.input_primaries}:
        members = {p for p in ctx.input_primaries if find(p) == root}
        f = [i for i in groups if find(i.inputs[0][0]) == root]
        want = [i for p in members for i in ctx.want_by_primary[p]]
        want = list({id(i): i for i in want}.values())
        have_p = {p: sum(q for i in f for n, q in i.inputs if n == p) for p in members}
        if any(have_p[p] > ctx.need[p] for p in members):
            surplus += 1
            continue
        if any(have_p[p] < ctx.need[p] for p in members):
            if can_reduce:
                continue
            return UNREACHABLE
        tree += len(f) + len(want) - 2
        fn, fd, fp = _product(f)
        wn, wd, wp = _product(want)
        residual = dict(fp)
        for n, p in wp.items():
            residual[n] = residual.get(n, 0) - p
        peel += any(p > 0 for p in residual.values()) or fn * wd > fd * wn
        mismatch += any(residual.values()) or fn * wd != fd * wn
    must_close = surplus > 0 or foreign
    return tree + max(peel + _closing(free, raw_free, surplus, weights_left, owe_weight),
                      mismatch + max(must_close, owe_weight))


def _closing(free: int, raw: int, surplus: int, weights_left: int, owe_weight: bool) -> int:
    """Fewest steps that close the free dims (``raw`` of them raw) and the surplus groups, counting the owed
    Contraction: each plan is (steps, whether a Contraction is among them)."""
    other = free - raw
    if weights_left <= 0:
        return surplus + free  # an Expand, Split or Unfold each (no weight is owed: none can be added)
    if not raw:
        plans = [(surplus + min(other, 1), other > 0 or surplus > 0)]
    else:
        plans = [(surplus + raw + min(other, 1), other > 0 or surplus > 0),   # each raw dim Split/Unfolded away
                 (surplus + (raw + 1) // 2 + 1, True)]                        # raw pairs Split, then one closes all
        if weights_left >= 2:
            plans.append((surplus + 2, True))                                 # inner Share, then outer Share
    return min(steps + (owe_weight and not contracts) for steps, contracts in plans)


def _shape_steps(delta: int, unmatched: int, to_close: bool, can_contract: bool, must_contract: bool,
                 can_stride: bool, limit: int) -> int:
    """Fewest steps that change the dim count by ``delta`` and make ``unmatched`` new sizes (and close a dim if
    ``to_close``), counting *adders* X (Merge: +1 dim, <= 2 new sizes; Reduce: +1, 1), *removers* Y (Split: -1,
    1 new size; Unfold, Expand: -1, none), Strides S (1 new size) and at most one Contraction (any number of
    removals, closes dims; exactly one if ``must_contract``: more only cost more).  A relaxation of the true step
    set, so the minimum is a lower bound."""
    best = UNREACHABLE
    for y in range(limit + 1):
        # without a contraction: the count must change by exactly delta, and a closing step is a remover
        x = delta + y
        if not must_contract and x >= 0 and (y >= 1 or not to_close):
            short = unmatched - 2 * x - (y - (1 if to_close else 0))
            if short <= 0 or can_stride:
                best = min(best, x + y + max(0, short))
        if can_contract:
            x = max(0, delta + y, -(-(unmatched - y) // 2))
            best = min(best, x + y + 1)
    return best


def _product(infos: list[_Info]) -> tuple[int, int, dict[str, int]]:
    """The product as (numerator, denominator, powers), unreduced: compare with :func:`_same`."""
    num = den = 1
    powers: dict[str, int] = {}
    for i in infos:
        num *= i.num
        den *= i.den
        for n, p in i.powers:
            powers[n] = powers.get(n, 0) + p
    return num, den, {n: p for n, p in powers.items() if p}


def _same(a: tuple[int, int, dict[str, int]], b: tuple[int, int, dict[str, int]]) -> bool:
    return a[2] == b[2] and a[0] * b[1] == b[0] * a[1]
