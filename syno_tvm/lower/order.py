"""Contraction order with early reduction: which partial sums to compute first, and what they are indexed by.

The naive lowering materializes ``prod_t T_t`` over the whole iteration space (output x all reductions).  When a
Reduce iterator touches only a subset S of the tensors, its sum can be taken first, over S alone (Syno's early
reduction).  The intermediate is indexed by *dims of the graph*, not only by bottom iterators: it is indexed by the
*cut* where the primitives that depend on the eliminated iterators meet the rest.  For Operator 1 this is what
makes the inner ``sum_ci W2 * X`` cost ``g*H*W*k*J*c`` instead of ``C_out`` times more: the intermediate is indexed
by X's padded spatial dims, and the Unfolds are applied when the next stage reads it.

A stage is itself an operator of the same form (factors, index dims, summed dims, primitives), so one TE builder
lowers all stages.  The search is exhaustive over subsets (an operator has at most a handful of tensors) and
minimizes FLOPs (``points x number of factors``: one multiply per extra factor and one add per point), breaking
ties towards fewer stages.  That search, :func:`cheapest_staging`, is shared with the backward lowering
(``te_backward``: the same recursion over the factors of a gradient's gather) and mirrored by the native engine's
FLOPs plan (``native/synth/plan.h``, held to :func:`plan` by ``tests/test_synth_native.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import reduce
from itertools import combinations
from operator import mul
from typing import Callable, Generic, Mapping, Sequence, TypeVar

from ..ir.graph import Operator
from ..ir.indexing import Propagation, propagate

S = TypeVar("S")  # a planner's state: the factors still to combine and what is left to sum
T = TypeVar("T")  # a planner's stage


@dataclass(frozen=True)
class Early(Generic[S, T]):
    """One early stage over a subset of the factors: the stage, its FLOPs and the state after it."""

    stage: T
    flops: int
    rest: S


def cheapest_staging(state: S, factors: Callable[[S], Sequence], early: Callable[[S, tuple], "Early[S, T] | None"],
                     final: Callable[[S], tuple[T, int]]) -> tuple[int, list[T]]:
    """The FLOPs-minimal sequence of stages from ``state``, ties broken towards fewer stages: every proper subset
    of ``factors(state)`` that ``early`` can sum something out of first, recursively, against summing everything
    at once (``final``: the last stage and its FLOPs).  Exhaustive, which is fine: an operator has a handful of
    tensors.  Returns the total FLOPs and the stages in order."""
    last, flops = final(state)
    best, best_stages = (flops, 1), [last]
    fs = factors(state)
    for k in range(1, len(fs)):
        for subset in combinations(fs, k):
            step = early(state, subset)
            if step is None:
                continue
            rest_flops, rest = cheapest_staging(step.rest, factors, early, final)
            cand = (step.flops + rest_flops, 1 + len(rest))
            if cand < best:
                best, best_stages = cand, [step.stage] + rest
    return best[0], best_stages


@dataclass(frozen=True)
class Stage:
    """``result[dims] = sum_{reduce} prod_{factors} factor[...]`` with index maps from ``prims``.

    Factor ids ``0..T-1`` are the operator's tensors (X, W1, ...); id ``T+s`` is the result of stage ``s``."""

    factors: tuple[int, ...]
    dims: tuple[int, ...]
    reduce: tuple[int, ...]
    prims: tuple[int, ...]
    flops: int


@dataclass(frozen=True)
class Plan:
    stages: tuple[Stage, ...]
    naive_flops: int

    @property
    def flops(self) -> int:
        return sum(s.flops for s in self.stages)

    def factor_dims(self, op: Operator, fid: int) -> tuple[int, ...]:
        n = len(op.tensors)
        return op.tensors[fid] if fid < n else self.stages[fid - n].dims


@dataclass(frozen=True)
class _State:
    prims: frozenset[int]                          # not yet lowered (Reduce prims excluded: they are sources)
    factors: tuple[tuple[int, tuple[int, ...]], ...]  # (factor id, dims)
    reduces: frozenset[int]
    made: int = 0                                  # stages made before this state (names the next result)


def plan(op: Operator, binding: Mapping[str, int] | None = None) -> Plan:
    """The FLOPs-minimal staging of ``op`` under ``binding`` (coefficient defaults apply)."""
    sz = op.bind(binding)
    size = lambda dims: reduce(mul, (sz[d] for d in dims), 1)  # noqa: E731
    n_t = len(op.tensors)
    naive = size(list(op.output) + list(op.reduces)) * n_t
    start = _State(frozenset(i for i, p in enumerate(op.prims) if p.kind != "reduce"),
                   tuple((t, dims) for t, dims in enumerate(op.tensors)), frozenset(op.reduces))

    def final(state: _State) -> tuple[Stage, int]:
        fids = tuple(f for f, _ in state.factors)
        red = tuple(sorted(state.reduces))
        stage = Stage(fids, op.output, red, tuple(sorted(state.prims)), size(list(op.output) + list(red)) * len(fids))
        return stage, stage.flops

    def early(state: _State, subset: tuple) -> Early[_State, Stage] | None:
        stage = _early_stage(op, state, subset, size)
        if stage is None:
            return None
        next_id = n_t + state.made  # stage s's result is factor T + s
        rest = _State(state.prims - set(stage.prims),
                      tuple(f for f in state.factors if f not in subset) + ((next_id, stage.dims),),
                      state.reduces - set(stage.reduce), state.made + 1)
        return Early(stage, stage.flops, rest)

    _, stages = cheapest_staging(start, lambda st: st.factors, early, final)
    return Plan(lay_out(op, stages, op.binding(binding)), naive)


@dataclass(frozen=True)
class Slope:
    """A value domain for :func:`syno_tvm.ir.indexing.propagate`: how far an index moves per step of one iterator.

    ``None`` when that is not one number (a floordiv of a moving index).  ``%`` keeps the slope (the index is
    contiguous between wraps), so Shift's wrap and Merge's right top keep it too; bound sizes are plain ints."""

    slope: int | None

    @staticmethod
    def of(x: "Slope | int") -> "Slope":
        return x if isinstance(x, Slope) else Slope(0)

    def _combine(self, other: "Slope | int", sign: int) -> "Slope":
        a, b = self.slope, Slope.of(other).slope
        return Slope(None if a is None or b is None else a + sign * b)

    def __add__(self, other: "Slope | int") -> "Slope":
        return self._combine(other, 1)

    __radd__ = __add__

    def __sub__(self, other: "Slope | int") -> "Slope":
        return self._combine(other, -1)

    def __rsub__(self, other: "Slope | int") -> "Slope":
        return Slope.of(other)._combine(self, -1)

    def __mul__(self, other: "Slope | int") -> "Slope":
        if isinstance(other, int):
            return Slope(None if self.slope is None else self.slope * other)
        return Slope(0 if self.slope == 0 and other.slope == 0 else None)

    __rmul__ = __mul__

    def __floordiv__(self, other: "Slope | int") -> "Slope":
        return Slope(0 if self.slope == 0 and Slope.of(other).slope == 0 else None)

    def __mod__(self, other: "Slope | int") -> "Slope":
        return self if Slope.of(other).slope == 0 else Slope(None)


def lay_out(op: Operator, stages: Sequence[Stage], full: Mapping[str, int]) -> tuple[Stage, ...]:
    """Each intermediate stored the way its reader reads it; neither the values nor the FLOPs change.

    Two rules, applied from the last stage back (a reader is laid out before what it reads); ``full`` is the
    binding with the coefficients' defaults:

    - ``shift-into-producer``: a Shift between an intermediate and its reader moves into the stage that makes the
      intermediate, which then stores it already rotated, when that stage has no more points than the reader.  The
      wrap is two selects per load (``te_forward`` spells it so); on the reader's innermost axis they stop
      MetaSchedule's vectorization, and the smaller stage runs them fewer times.
    - ``innermost-last``: the one axis of the intermediate that the reader walks with slope 1 along its own
      innermost axis moves last, so the reader's loads along the axis MetaSchedule vectorizes are contiguous, as
      conv2d's NCHW input is along ``w``.  The cut of :func:`_early_stage` orders axes by first appearance, which
      for Operator 1 put ``w`` third of six (``Z0[n, h, w, k, i4, g]``: a stride of 96 floats along the reader's
      ``w``).  An axis indexed by ``w // 8`` has no slope and stays where it is.
    """
    n_t = len(op.tensors)
    out = list(stages)
    points = lambda st: st.flops // max(1, len(st.factors))  # noqa: E731
    for s in range(len(out) - 2, -1, -1):
        r = next(c for c in range(s + 1, len(out)) if n_t + s in out[c].factors)
        stage, reader = out[s], out[r]
        if points(stage) <= points(reader):
            for i in [i for i in reader.prims if op.prims[i].kind == "shift" and op.prims[i].tops[0] in stage.dims]:
                p = op.prims[i]
                stage = replace(stage, dims=tuple(p.bottoms[0] if d == p.tops[0] else d for d in stage.dims),
                                prims=tuple(sorted(stage.prims + (i,))))
                reader = replace(reader, prims=tuple(j for j in reader.prims if j != i))
        if reader.dims:
            walk = Propagation({d: Slope(1 if d == reader.dims[-1] else 0) for d in reader.dims + reader.reduce})
            propagate({i: op.prims[i] for i in reader.prims}, op.sizes, walk, lambda z: z.value(full), set())
            unit = [d for d in stage.dims if walk.values.get(d) == Slope(1)]
            if len(unit) == 1:
                stage = replace(stage, dims=tuple(d for d in stage.dims if d != unit[0]) + (unit[0],))
        out[s], out[r] = stage, reader
    return tuple(out)


def _early_stage(op: Operator, state: _State, subset, size) -> Stage | None:
    """The stage that sums out every remaining Reduce iterator used only by ``subset``; None if there is none."""
    prims = {i: op.prims[i] for i in state.prims}
    factor_of = {d: f for f, dims in state.factors for d in dims}
    sink = {d: i for i, p in prims.items() for d in p.bottoms}
    source = {d: i for i, p in prims.items() for d in p.tops}
    tens_memo: dict[int, frozenset[int]] = {}

    def tens(d: int) -> frozenset[int]:
        """Factors whose index depends on dim d (reached upward)."""
        if d not in tens_memo:
            if d in factor_of:
                tens_memo[d] = frozenset([factor_of[d]])
            else:
                tens_memo[d] = frozenset().union(*(tens(t) for t in prims[sink[d]].tops)) if d in sink else frozenset()
        return tens_memo[d]

    deps_memo: dict[int, frozenset[int]] = {}

    def deps(d: int) -> frozenset[int]:
        """Bottom iterators (output or Reduce dims) that dim d's value depends on (reached downward)."""
        if d not in deps_memo:
            deps_memo[d] = (frozenset().union(*(deps(b) for b in prims[source[d]].bottoms)) if d in source
                            else frozenset([d]))
        return deps_memo[d]

    chosen = {f for f, _ in subset}
    elim = sorted(r for r in state.reduces if tens(r) and tens(r) <= chosen)
    if not elim:
        return None
    elim_set = set(elim)
    inside = sorted(i for i, p in prims.items() if any(deps(b) & elim_set for b in p.bottoms))
    computed = {d for i in inside for d in prims[i].tops}
    cut: list[int] = []
    for d in [d for _, dims in subset for d in dims] + [b for i in inside for b in prims[i].bottoms]:
        if d not in computed and d not in elim_set and d not in cut:
            cut.append(d)
    # A Share whose two tops both index the intermediate (e.g. X's and W1's channel in a separable conv) is applied
    # inside the stage: the intermediate is then indexed once by the shared coordinate instead of by its square.
    absorbed = True
    while absorbed:
        absorbed = False
        for i, p in prims.items():
            if p.kind == "share" and i not in inside and all(t in cut for t in p.tops):
                cut = [d for d in cut if d not in p.tops] + list(p.bottoms)
                inside.append(i)
                absorbed = True
    inside.sort()
    return Stage(tuple(f for f, _ in subset), tuple(cut), tuple(elim), tuple(inside),
                 size(cut + elim) * len(subset))
