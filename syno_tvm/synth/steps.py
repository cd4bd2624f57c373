"""THE table of synthesis step kinds: every kind a name, a one-line reason, and what the space does with it.

A step is one child edge of the bottom-up space (:mod:`syno_tvm.synth.space`): a primitive applied in reverse, or a
Contraction that adds one weight.  Everything that differs between kinds is written here, once per kind, so that
the space, the shape distance and :mod:`~syno_tvm.synth.locate` hold no per-kind branches of their own:

* :meth:`StepKind.steps`: the candidate steps of this kind at a node (before rules and distance);
* :meth:`StepKind.apply`: what the step does to the node (the dims it takes, the dims and primitives it makes);
* :meth:`StepKind.shape`: the same effect on sizes alone, for the shape distance, which judges a child without
  building it (:func:`syno_tvm.synth.distance.step_distance`);
* :meth:`StepKind.replay`: the step that rebuilds given primitives of an operator (locate's replay), and what a
  twin search may create (:meth:`StepKind.twin_sizes`, :meth:`StepKind.weight_sizes`).

The order of :data:`STEPS` is the order the space offers the kinds in (Syno's stages: Reduces first), so it decides
which finals a seed draws.  Dims' *origins* name what created them (``out`` for the output's own, else the ones
listed here), the facts the canonicalization rules read (:mod:`syno_tvm.synth.canon`).  The native engine has the
same table (``native/synth/steps.h``: name, code = position here, primitive, dims taken, origins, and per kind its
candidates, apply and shape functions, as here), which ``tests/test_synth_native.py`` checks field by field.

Must not import the space, the distance or locate (they import this); what they give a kind is typed by the
protocols below.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, TypeVar

from ..errors import SynoError
from ..ir.graph import Operator, Prim, digest
from ..ir.sizes import Size
from .spec import Spec
from .state import CONTRACT, EXPAND, MERGE, REDUCE, SHIFT, SPLIT, STRIDE, UNFOLD, Dim, Node, Step, Weight, \
    merge_top_hash


class SpaceView(Protocol):
    """What listing a kind's steps reads of the space (:class:`~syno_tvm.synth.space.Space` is one)."""

    spec: Spec

    def allowance_ok(self, node: Node, sizes: list[Size]) -> bool:
        """Whether dims of ``sizes`` added at ``node`` keep the primaries within their allowance."""

    def blocks(self, size: Size) -> list[Size]:
        """The Merge blocks of a dim of ``size``."""


R = TypeVar("R")  # the shape distance's record of one size (its index, powers, ...)


class ShapeDelta(Protocol[R]):
    """The child's shape-distance key as a step changes it (the distance module's implementation): frontier dims
    taken and added as (size, discarding), primaries counted against the allowance, weights and Reduces added."""

    weights: int
    reductions: int

    def take(self, h: str) -> tuple[R, bool]:
        """Remove the frontier dim of hash ``h``: its size and whether it is data-discarding."""

    def size(self, s: Size) -> R:
        """The record of a size."""

    def product(self, a: R, b: R) -> R:
        """The record of ``a * b``."""

    def quotient(self, a: R, b: R) -> R:
        """The record of ``a / b``."""

    def add(self, s: R, discarding: bool, raw: bool = False) -> None:
        """Add a frontier dim (``raw``: a Reduce dim no weight reads yet)."""

    def count(self, s: R) -> None:
        """Count a size's primaries against the allowance."""


class Builder:
    """A child node under construction: :meth:`StepKind.apply` takes dims off the parent's frontier and adds dims,
    primitives, weights and Expands; :meth:`child` is the node."""

    def __init__(self, node: Node, step: Step, is_primary: Callable[[str], bool]) -> None:
        self.parent, self.step, self.is_primary = node, step, is_primary
        self.sizes, self.prims = list(node.sizes), list(node.prims)
        self.frontier = list(node.frontier)
        self.weights, self.expands = list(node.weights), list(node.expands)
        self.used = dict(node.used)
        self.reductions = node.reductions
        self.created: list[str] = []

    def take(self, h: str) -> Dim:
        """Remove the frontier dim of hash ``h`` (the first of equal ones) and return it."""
        for i, d in enumerate(self.frontier):
            if d.hash == h:
                return self.frontier.pop(i)
        raise SynoError(f"step {self.step} refers to dim {h} that is not on the frontier")

    def new(self, size: Size, h: str, origin: str, below: tuple[str, ...] = (), unordered: bool = False,
            discarding: bool = False, window: Size | None = None, keep: bool = True, summed: int = -1,
            block: Size | None = None) -> Dim:
        """A new dim (on the frontier if ``keep``: a weight's own dims are not)."""
        self.sizes.append(size)
        d = Dim(len(self.sizes) - 1, size, h, origin, below, unordered, discarding, window, summed, block)
        if keep:
            self.frontier.append(d)
            self.created.append(h)
        return d

    def count(self, size: Size) -> None:
        """Count the primaries of a Reduce or of a selected dim against the allowance."""
        for n, p in size.powers:
            if self.is_primary(n):
                self.used[n] = self.used.get(n, 0) + p

    def child(self) -> Node:
        """The child node: one step deeper, created by ``step``."""
        node = self.parent
        return Node(tuple(self.sizes), tuple(self.prims), node.output, tuple(self.frontier), tuple(self.weights),
                    tuple(self.expands), node.depth + 1, self.reductions, tuple(sorted(self.used.items())),
                    self.step, tuple(self.created))


@dataclass(frozen=True)
class StepKind(ABC):
    """One step kind.  ``primitive``: the primitive its steps create (a Contraction: the Shares, plus an Expand per
    outer one); ``origins``: the origins of the dims it creates, in creation order (per selected dim for a
    Contraction: the weight's dim, then the Share's input-side top)."""

    name: str
    reason: str
    primitive: str
    origins: tuple[str, ...]

    @abstractmethod
    def steps(self, space: SpaceView, node: Node) -> Iterator[Step]:
        """The candidate steps at ``node``, each distinct frontier hash once (rules and distance judge them)."""

    @abstractmethod
    def apply(self, b: Builder, step: Step) -> None:
        """Turn the parent into the child (no rule or distance check)."""

    @abstractmethod
    def shape(self, d: ShapeDelta, step: Step) -> None:
        """The step's effect on the frontier's sizes, the allowance, the weight and Reduce counts."""

    def replay(self, op: Operator, unit: list[int], where: dict[int, str],
               expanded: set[int]) -> tuple[Step, list[int]]:
        """The step that rebuilds ``op``'s primitives ``unit`` (one, but a weight's Shares for a Contraction) at a
        node where ``where`` maps ``op``'s dims to frontier hashes; and the dims of ``op`` its created dims are.
        ``expanded``: the dims of ``op`` that an Expand closes."""
        p = op.prims[unit[0]]
        return Step(self.name, tuple(where[b] for b in p.bottoms), self.replay_size(op, p)), list(p.tops)

    def replay_size(self, op: Operator, p: Prim) -> Size | None:
        """``Step.size`` of the step that rebuilds primitive ``p`` (None: the kind has no size)."""
        return None

    def refusal(self, space: SpaceView, node: Node, step: Step) -> str | None:
        """Why the space does not offer ``step`` at ``node`` (a limit), or None when it does."""
        if step in set(self.steps(space, node)):
            return None
        return (f"limit: step {self.name} with these sizes is not enumerated by spec '{space.spec.name}' "
                "(reductions, allowance, block, window or stride sizes)")

    def twin_sizes(self, node: Node, step: Step) -> tuple[Size, ...]:
        """The new sizes that a twin search keeps within the operator's own sizes and their products and quotients:
        a Reduce's, a Merge's and a Split's (a Stride's factor is one of the spec's; the other kinds make no size)."""
        return ()

    def weight_sizes(self, node: Node, step: Step) -> tuple[Size, ...]:
        """The dims' sizes of the weight the step adds (none: it adds no weight)."""
        return ()


def _each_dim(kind: str, node: Node) -> Iterator[Step]:
    """A step of ``kind`` on each distinct frontier dim (Shift, Expand: any dim, no size)."""
    for d in node.by_hash.values():
        yield Step(kind, (d.hash,))


def _bigger(spec: Spec, main: Size, window: Size) -> bool:
    """An Unfold needs a main dim larger than its window in every binding (else it is all padding)."""
    return all(main.evaluate(b) > window.evaluate(b) for b in spec.bindings)


class _Reduce(StepKind):
    def steps(self, space: SpaceView, node: Node) -> Iterator[Step]:
        if node.reductions < space.spec.max_reductions:
            for s in space.spec.reduce_sizes:
                if space.allowance_ok(node, [s]):
                    yield Step(self.name, size=s)

    def apply(self, b: Builder, step: Step) -> None:
        r = b.new(step.size, digest("reduce", step.size), self.origins[0], summed=0)
        b.prims.append(Prim(self.primitive, (r.id,), ()))
        b.count(step.size)
        b.reductions += 1

    def shape(self, d: ShapeDelta, step: Step) -> None:
        s = d.size(step.size)
        d.add(s, False, raw=True)
        d.count(s)
        d.reductions += 1

    def replay_size(self, op: Operator, p: Prim) -> Size | None:
        return op.sizes[p.tops[0]]

    def twin_sizes(self, node: Node, step: Step) -> tuple[Size, ...]:
        return (step.size,)


class _Merge(StepKind):
    def steps(self, space: SpaceView, node: Node) -> Iterator[Step]:
        for d in node.by_hash.values():
            for b in space.blocks(d.size):
                yield Step(self.name, (d.hash,), b)

    def apply(self, b: Builder, step: Step) -> None:
        d = b.take(step.dims[0])
        t0 = b.new(d.size / step.size, merge_top_hash(d.hash, False, step.size), self.origins[0], (d.hash,),
                   d.unordered, d.discarding, block=step.size)
        t1 = b.new(step.size, merge_top_hash(d.hash, True, step.size), self.origins[1], (d.hash,), d.unordered,
                   d.discarding, block=step.size)
        b.prims.append(Prim(self.primitive, (t0.id, t1.id), (d.id,)))

    def shape(self, d: ShapeDelta, step: Step) -> None:
        (i, disc), block = d.take(step.dims[0]), d.size(step.size)
        d.add(d.quotient(i, block), disc)
        d.add(block, disc)

    def replay_size(self, op: Operator, p: Prim) -> Size | None:
        return op.sizes[p.tops[1]]

    def twin_sizes(self, node: Node, step: Step) -> tuple[Size, ...]:
        return step.size, node.dim(step.dims[0]).size / step.size


class _Split(StepKind):
    def steps(self, space: SpaceView, node: Node) -> Iterator[Step]:
        seen = set()
        for a, b in itertools.permutations(node.frontier, 2):
            if (a.hash, b.hash) not in seen:
                seen.add((a.hash, b.hash))
                yield Step(self.name, (a.hash, b.hash))

    def apply(self, b: Builder, step: Step) -> None:
        x, y = b.take(step.dims[0]), b.take(step.dims[1])
        t = b.new(x.size * y.size, digest("split", x.hash, y.hash), self.origins[0], (x.hash, y.hash),
                  x.unordered and y.unordered, x.discarding or y.discarding, block=y.size)
        b.prims.append(Prim(self.primitive, (t.id,), (x.id, y.id)))

    def shape(self, d: ShapeDelta, step: Step) -> None:
        (a, da), (b, db) = d.take(step.dims[0]), d.take(step.dims[1])
        d.add(d.product(a, b), da or db)

    def twin_sizes(self, node: Node, step: Step) -> tuple[Size, ...]:
        return (node.dim(step.dims[0]).size * node.dim(step.dims[1]).size,)


class _Shift(StepKind):
    def steps(self, space: SpaceView, node: Node) -> Iterator[Step]:
        return _each_dim(self.name, node)

    def apply(self, b: Builder, step: Step) -> None:
        d = b.take(step.dims[0])
        t = b.new(d.size, digest("shift", d.hash), self.origins[0], (d.hash,), d.unordered, d.discarding)
        b.prims.append(Prim(self.primitive, (t.id,), (d.id,), 1))

    def shape(self, d: ShapeDelta, step: Step) -> None:
        i, disc = d.take(step.dims[0])
        d.add(i, disc)  # the same size, no longer a raw Reduce


class _Stride(StepKind):
    def steps(self, space: SpaceView, node: Node) -> Iterator[Step]:
        for d in node.by_hash.values():
            for s in space.spec.stride_sizes:
                yield Step(self.name, (d.hash,), s)

    def apply(self, b: Builder, step: Step) -> None:
        d = b.take(step.dims[0])
        t = b.new(d.size * step.size, digest("stride", d.hash, step.size), self.origins[0], (d.hash,), d.unordered,
                  True)
        b.prims.append(Prim(self.primitive, (t.id,), (d.id,)))

    def shape(self, d: ShapeDelta, step: Step) -> None:
        i, _ = d.take(step.dims[0])
        d.add(d.product(i, d.size(step.size)), True)

    def replay_size(self, op: Operator, p: Prim) -> Size | None:
        return op.sizes[p.tops[0]] / op.sizes[p.bottoms[0]]


class _Unfold(StepKind):
    def steps(self, space: SpaceView, node: Node) -> Iterator[Step]:
        windows = set(space.spec.window_sizes)
        uniq = list(node.by_hash.values())
        for m in uniq:
            for w in uniq:
                if w.size in windows and m is not w and _bigger(space.spec, m.size, w.size):
                    yield Step(self.name, (m.hash, w.hash))

    def apply(self, b: Builder, step: Step) -> None:
        m, w = b.take(step.dims[0]), b.take(step.dims[1])
        t = b.new(m.size, digest("unfold", m.hash, w.hash), self.origins[0], (m.hash, w.hash), m.unordered, False,
                  w.size)
        b.prims.append(Prim(self.primitive, (t.id,), (m.id, w.id)))

    def shape(self, d: ShapeDelta, step: Step) -> None:
        (main, _), _ = d.take(step.dims[0]), d.take(step.dims[1])
        d.add(main, False)


class _Expand(StepKind):
    def steps(self, space: SpaceView, node: Node) -> Iterator[Step]:
        return _each_dim(self.name, node)

    def apply(self, b: Builder, step: Step) -> None:
        d = b.take(step.dims[0])
        b.prims.append(Prim(self.primitive, (), (d.id,)))
        b.expands.append(digest("expand", d.hash))

    def shape(self, d: ShapeDelta, step: Step) -> None:
        d.take(step.dims[0])


class _Contract(StepKind):
    def steps(self, space: SpaceView, node: Node) -> Iterator[Step]:
        """Every multiset of 2..max_shares frontier dims, each inner or outer, at least one inner."""
        if len(node.weights) >= space.spec.max_weights:
            return
        groups = sorted(node.by_hash)
        count = {h: sum(1 for d in node.frontier if d.hash == h) for h in groups}
        # per hash: how many selected inner, how many outer
        options = [[(i, o) for i in range(count[h] + 1) for o in range(count[h] + 1 - i)] for h in groups]
        for choice in itertools.product(*options):
            n_in = sum(i for i, _ in choice)
            n_all = n_in + sum(o for _, o in choice)
            if n_in < 1 or not 2 <= n_all <= space.spec.max_shares:
                continue
            dims, outer = [], []
            for h, (i, o) in zip(groups, choice):
                dims += [h] * (i + o)
                outer += [False] * i + [True] * o
            # the same (hash, outer) order as Space.random_contraction, so equal steps compare equal
            pairs = sorted(zip(dims, outer))
            dims, outer = [h for h, _ in pairs], [o for _, o in pairs]
            sizes = [node.dim(h).size for h in dims]
            if space.allowance_ok(node, sizes):
                yield Step(self.name, tuple(dims), outer=tuple(outer))

    def apply(self, b: Builder, step: Step) -> None:
        weight_origin, share_origin = self.origins
        sel = [b.take(h) for h in step.dims]
        sig = digest("weight", sorted((d.hash, o) for d, o in zip(sel, step.outer)))
        ordinal = len(b.weights) + 1
        wdims, tops = [], []
        for d, o in zip(sel, step.outer):
            w = b.new(d.size, digest("wdim", d.hash, sig), weight_origin, keep=False)
            t = b.new(d.size, digest("share", d.hash, sig), share_origin, (d.hash,), d.unordered, d.discarding,
                      keep=not o, summed=d.summed + 1 if d.summed >= 0 else -1)
            b.prims.append(Prim(self.primitive, (t.id, w.id), (d.id,), ordinal))
            if o:
                b.prims.append(Prim("expand", (), (t.id,)))
                b.expands.append(digest("expand", t.hash))
            wdims.append((w.id, w.hash))
            tops.append("" if o else t.hash)
            b.count(d.size)
        b.weights.append(Weight(sig, tuple(wdims), step.dims, step.outer, tuple(tops)))

    def shape(self, d: ShapeDelta, step: Step) -> None:
        for h, outer in zip(step.dims, step.outer):
            i, disc = d.take(h)
            if not outer:
                d.add(i, disc)
            d.count(i)
        d.weights += 1

    def replay(self, op: Operator, unit: list[int], where: dict[int, str],
               expanded: set[int]) -> tuple[Step, list[int]]:
        """One weight's Shares as one Contraction: a Share whose input-side top is Expanded is outer."""
        pairs = sorted((where[op.prims[i].bottoms[0]], op.prims[i].tops[0] in expanded, op.prims[i].tops[0])
                       for i in unit)
        step = Step(self.name, tuple(h for h, _, _ in pairs), outer=tuple(o for _, o, _ in pairs))
        return step, [t for _, o, t in pairs if not o]

    def refusal(self, space: SpaceView, node: Node, step: Step) -> str | None:
        """Checked directly: listing every Contraction to look this one up costs up to 3^n steps."""
        n, spec = len(step.dims), space.spec
        if (len(node.weights) < spec.max_weights and 2 <= n <= spec.max_shares and not all(step.outer)
                and space.allowance_ok(node, [node.dim(h).size for h in step.dims])):
            return None
        return "limit: weights, shares per weight or variable allowance"

    def weight_sizes(self, node: Node, step: Step) -> tuple[Size, ...]:
        return tuple(node.dim(h).size for h in step.dims)


STEPS: dict[str, StepKind] = {k.name: k for k in (
    _Reduce(REDUCE, "adds a summed iterator r of a spec Reduce size: the operator's sum over r (Reduces come "
            "first)", "reduce", ("reduce",)),
    _Merge(MERGE, "Merge^-1: a frontier dim becomes its (major, minor) pair for a spec block size",
           "merge", ("merge0", "merge1")),
    _Split(SPLIT, "Split^-1: two frontier dims (major, minor) become one dim of their product's size",
           "split", ("split",)),
    _Shift(SHIFT, "Shift^-1: a frontier dim becomes one read at (i + 1) mod N", "shift", ("shift",)),
    _Stride(STRIDE, "Stride^-1: a frontier dim becomes one a spec stride factor larger, read at i * s",
            "stride", ("stride",)),
    _Unfold(UNFOLD, "Unfold^-1: a (main, window) pair becomes one dim read through a zero-padded sliding window",
            "unfold", ("unfold",)),
    _Expand(EXPAND, "Expand^-1: a frontier dim is closed, read by nothing on the input side (a broadcast)",
            "expand", ()),
    _Contract(CONTRACT, "adds one weight: Shares of 2..max_shares frontier dims, each inner (the input keeps it) "
              "or outer (Share + Expand: only the weight has it)", "share", ("weight", "share")),
)}

STEP_KINDS = tuple(STEPS)
_BY_PRIMITIVE = {k.primitive: k for k in STEPS.values()}


def step_kind(name: str) -> StepKind:
    """The step kind ``name``, or a SynoError listing the known ones."""
    try:
        return STEPS[name]
    except KeyError:
        raise SynoError(f"unknown step kind '{name}': use one of {', '.join(STEP_KINDS)}") from None


def replaying(primitive: str) -> StepKind:
    """The kind whose steps create ``primitive`` (an Expand outside a Contraction is an ``expand`` step)."""
    return _BY_PRIMITIVE[primitive]
