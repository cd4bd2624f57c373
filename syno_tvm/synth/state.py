"""The values the bottom-up search works on: frontier dims, steps, and nodes (partial operators).

A :class:`Node` is a partial operator grown from the output: its *frontier* is the dims still to be explained
(they will become the input's dims), its weights and Expands are closed.  Every dim carries a structural hash built
bottom-up (Merkle style: a dim's hash covers everything below it), so two orders of commuting steps give the same
dims and the same node hash: the space is a lattice, and a node is its set of frontier hashes, weight signatures and
Expand hashes (:attr:`Node.hash`).

Weights are identified by a *signature* (the hashes of the dims a contraction selected, with inner/outer), never by
their number, so commuting contractions also meet in one node; numbers are assigned canonically at Finalize.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from ..ir.graph import Prim, digest
from ..ir.sizes import Size

# The step kinds' names, for code that means one kind (what each does, and their order, is the table in
# syno_tvm/synth/steps.py); FINALIZE is the sampler's choice of ending at a final node, not a step.
REDUCE, MERGE, SPLIT, SHIFT, STRIDE, UNFOLD, EXPAND, CONTRACT, FINALIZE = (
    "reduce", "merge", "split", "shift", "stride", "unfold", "expand", "contract", "finalize")


@dataclass(frozen=True)
class Dim:
    """A frontier dim.  ``origin`` says what created it: ``out``, ``reduce``, or the primitive whose top it is
    (``merge0``/``merge1`` for a Merge's major/minor top, ``split``, ``shift``, ``stride``, ``unfold``, ``share``).
    ``below`` are the hashes of that primitive's bottoms (for the rules that look one step down); an Unfold's top also
    keeps its ``window`` size, a Merge's tops and a Split's top their ``block`` (the minor size: the Merge's block,
    the Split's minor bottom's size), for the rules that see a Merge/Split pair as one reshape.  ``summed`` counts,
    for a Reduce dim and the input-side tops of Shares on it, how many weights read it so far (-1 for every other
    dim)."""

    id: int
    size: Size
    hash: str
    origin: str
    below: tuple[str, ...] = ()
    unordered: bool = False
    discarding: bool = False
    window: Size | None = None
    summed: int = -1
    block: Size | None = None


def merge_top_hash(bottom: str, minor: bool, block: Size) -> str:
    """Hash of a Merge's major (``minor`` False) or minor top: the space builds tops with it, and a rule that asks
    whether a dim came from a given Merge recomputes it."""
    return digest("merge", bottom, int(minor), block)


@dataclass(frozen=True)
class Step:
    """One child edge.  ``dims`` are frontier hashes (Merge/Shift/Stride/Expand: one; Split: (major, minor); Unfold:
    (main, window); Contract: the selected dims).  ``size`` is the Reduce size, Merge block (minor top) or Stride
    factor; ``outer`` marks, per selected dim of a Contract, a weight-only dim (Share + Expand)."""

    kind: str
    dims: tuple[str, ...] = ()
    size: Size | None = None
    outer: tuple[bool, ...] = ()

    def __str__(self) -> str:
        if self.kind == CONTRACT:
            return "contract(" + ", ".join(f"{d[:6]}{'*' if o else ''}" for d, o in zip(self.dims, self.outer)) + ")"
        args = [d[:6] for d in self.dims] + ([str(self.size)] if self.size is not None else [])
        return f"{self.kind}({', '.join(args)})"


@dataclass(frozen=True)
class Weight:
    """One contraction's weight: its signature, its dims as (dim id, hash), and for the contraction-order rule the
    hashes it selected (``touched``), which were outer, and the input-side top it left for each ('' if outer)."""

    sig: str
    dims: tuple[tuple[int, str], ...]
    touched: tuple[str, ...]
    outer: tuple[bool, ...]
    tops: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Node:
    """A partial operator.  Equality of search states is :attr:`hash`; ``last`` is the step that created this node
    object (a path fact used only by rules about consecutive steps)."""

    sizes: tuple[Size, ...]
    prims: tuple[Prim, ...]
    output: tuple[int, ...]
    frontier: tuple[Dim, ...]
    weights: tuple[Weight, ...] = ()
    expands: tuple[str, ...] = ()
    depth: int = 0
    reductions: int = 0
    used: tuple[tuple[str, int], ...] = ()
    last: Step | None = None
    created: tuple[str, ...] = field(default=())

    @cached_property
    def hash(self) -> str:
        return digest(sorted(d.hash for d in self.frontier), sorted(w.sig for w in self.weights),
                      sorted(self.expands))

    @cached_property
    def by_hash(self) -> dict[str, Dim]:
        return {d.hash: d for d in self.frontier}

    def dim(self, h: str) -> Dim:
        return self.by_hash[h]

    @property
    def only_reduces(self) -> bool:
        """True while no step other than Reduce has been applied (Syno's reduction stage)."""
        return self.depth == self.reductions

    def __repr__(self) -> str:
        return f"Node({self.hash}, depth {self.depth}, frontier [{', '.join(str(d.size) for d in self.frontier)}])"
