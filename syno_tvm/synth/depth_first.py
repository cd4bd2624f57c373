"""Exhaustive depth-first enumeration of the space: every final once, nearest children first.

Why beside the random sampler.  A random descent pays for the dead ends on its way down and then restarts from the
root, so most of its work buys one final; depth-first order stays in a productive region and takes every final of
it (siblings that differ in the last Contraction or view): on the vision spec about 0.55 finals per node entered
against 0.02.  Children are explored nearest first (smallest shape distance, ties in generation order): in plain
generation order the first child is a Reduce, and the search sank for minutes into a region of Reduce chains with
no final.  The price is diversity: neighbours are often the same function (benchmarks/results/synthesis.txt: half
of the first 200 on the vision spec and 90 % on the transformer spec are semantic duplicates, against 0-3 % for
random descents), and a time-limited run sees one corner of the space; it is also Python, 2.6x (vision) and 9x
(transformer) slower than the native random sampler before merging.  So this order is for enumerating a small
space completely; search and sampling use random descents (:mod:`syno_tvm.synth.sampler`).

Each node is entered once (the lattice: a node reached by another path is skipped by its hash) and each operator
is yielded once (by its structural hash); the order is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from .sampler.base import Sample
from .space import Space
from .state import Node, Step


@dataclass
class Counts:
    """Nodes entered so far and finals yielded: the figures a caller reports while the generator runs."""

    nodes: int = 0
    finals: int = 0


def depth_first(space: Space, counts: Counts | None = None) -> Iterator[Sample]:
    """Every valid final of ``space`` with the path that first reached it, in depth-first order.  The generator ends
    when the space is exhausted; ``counts`` (if given) is updated as it goes."""
    counts = counts if counts is not None else Counts()
    seen: set[str] = set()
    yielded: set[str] = set()  # two nodes can finalize to one operator (states that differ only in bookkeeping)
    stack: list[tuple[Node, tuple[Step, ...]]] = [(space.root(), ())]
    while stack:
        node, path = stack.pop()
        if node.hash in seen:
            continue
        seen.add(node.hash)
        counts.nodes += 1
        final = space.finalize(node)
        if final.operator is not None and final.operator.hash not in yielded:
            yielded.add(final.operator.hash)
            counts.finals += 1
            yield Sample(final, path)
        # pushed farthest first, so the nearest to the input is popped first; ties in generation order
        children = [(dist, i, step, c) for i, (step, c, dist) in enumerate(space.scored_children(node))
                    if c.hash not in seen]
        children.sort(reverse=True, key=lambda t: t[:2])
        stack.extend((child, path + (step,)) for _, _, step, child in children)
