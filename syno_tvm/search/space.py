"""The one module of :mod:`syno_tvm.search` that talks to :mod:`syno_tvm.synth`: the space's nodes and children,
finals, semantic fingerprints, a seeded stream of random finals and the location of known operators.

Why one adapter: the synthesis API is being reshaped (sampler factory, verdict types); search code uses only
:class:`SearchSpace`, so such a change is adapted here once.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np

from ..errors import SynoError
from ..ir.graph import Operator
from ..ir.library import named
from ..synth.fingerprint import fingerprint
from ..synth.locate import locate
from ..synth.sampler import NativeSampler, PythonSampler, create
from ..synth.space import Space
from ..synth.spec import Spec, layers_from_model, load_spec
from ..synth.state import Node, Step
from ..synth.steps import STEP_KINDS

__all__ = ["SearchSpace", "FinalStream", "Node", "Step", "STEP_KINDS", "load_search_spec"]

# Restarts of one rollout from its start node (after 4 backtracks in a row) before it is given up.  16 failed 35 of
# 40 rollouts one step below the vision root (a live node: 1024 found a final in 40 of 40, ~40 ms each on the shared
# machine), and three failures kill an MCTS node, so a low value prunes live parts of the space.
ROLLOUT_RESTARTS = 1024
CACHE_NODES = 4096  # nodes whose judged children are kept (least recently used dropped): bounds memory


def load_search_spec(spec: str, model: str | None) -> Spec:
    """The spec (built-in name or JSON file), its layer bindings taken from ``model`` when one is given."""
    s = load_spec(spec)
    return s.with_layers(layers_from_model(s, model)) if model else s


def arc_key(step: Step) -> str:
    """A text identity of a step that is the same wherever the step applies (its dims are structural hashes): the
    key of the global AMAF (GRAVE) table, Syno's "Arc"."""
    outer = "".join("o" if o else "i" for o in step.outer)
    return f"{step.kind}|{','.join(step.dims)}|{step.size if step.size is not None else ''}|{outer}"


class FinalStream:
    """Random finals in a fixed order for a seed (the native sampler; the Python sampler for specs beyond the
    native engine's limits).  ``position`` counts finals drawn, so a resumed search can skip to where it was."""

    def __init__(self, space: Space, seed: int) -> None:
        self.position = 0
        self._rng = np.random.default_rng(seed)
        self._sampler = create("auto", space, seed)

    def next(self) -> tuple[tuple[Step, ...], Operator] | None:
        """The next final (path, operator), or None when the space is exhausted."""
        try:
            sample = self._sampler.random_final(self._rng)
        except SynoError:
            return None
        self.position += 1
        return sample.path, sample.final.operator

    def skip_to(self, position: int) -> None:
        while self.position < position and self.next() is not None:
            pass


class _Rooted:
    """The space seen from ``start``: a :class:`~syno_tvm.synth.sampler.PythonSampler` over it descends from ``start``
    instead of the root (the sampler asks its space for ``root()`` and nothing else that depends on where it is)."""

    def __init__(self, space: Space, start: Node) -> None:
        self._space, self._start = space, start

    def root(self) -> Node:
        return self._start

    def __getattr__(self, name: str):
        return getattr(self._space, name)


class SearchSpace:
    """A spec's space seen by a search: nodes by stable hash, children cached per node, finals and fingerprints."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.space = Space(spec)
        self._native = None  # the engine for rollouts, built on first use (False: the spec is beyond its limits)
        self._children: OrderedDict[tuple[str, str], list[tuple[Step, Node]]] = OrderedDict()

    def root(self) -> Node:
        return self.space.root()

    @staticmethod
    def key(node: Node) -> str:
        """The stable node hash: equal for every path that reaches the same partial operator (a transposition)."""
        return node.hash

    def children(self, node: Node, kind: str | None = None) -> list[tuple[Step, Node]]:
        """Canonical children (of one step kind, or all) whose shape distance fits the depth left, in the space's
        deterministic order.  Judged per kind, so a random descent that picks a kind first judges only that kind's
        steps (Contractions are most of the candidates)."""
        if kind is None:
            return [c for k in STEP_KINDS for c in self.children(node, k)]
        key = (node.hash, kind)
        got = self._children.get(key)
        if got is None:
            got = []
            for step in self.space.steps(node, kind):
                child, _ = self.space.child(node, step)
                if child is not None:
                    got.append((step, child))
            self._children[key] = got
            if len(self._children) > CACHE_NODES * len(STEP_KINDS):
                self._children.popitem(last=False)
        else:
            self._children.move_to_end(key)
        return got

    def rollout(self, path: tuple[Step, ...], seed: int, restarts: int = ROLLOUT_RESTARTS
                ) -> tuple[tuple[Step, ...], Operator] | None:
        """A random descent from the node ``path`` leads to, down to a final: the path below it and the operator,
        or None when none was found within ``restarts`` restarts.  The sampler's algorithm (a kind uniformly, then
        a step; only the picked step judged) in the native engine, a fresh sampler per rollout so the result
        depends on ``path`` and ``seed`` alone (a restored strategy rolls out as the killed one would have).  The
        Python sampler, started at the node, for specs beyond the native engine's limits."""
        if self._native is None:
            try:
                self._native = NativeSampler(self.space, 0)
            except ValueError:  # beyond the native engine's fixed limits
                self._native = False
        if self._native:
            sample = self._native.rollout(path, seed, restarts)
        else:
            node = self.root()
            for step in path:
                node = self.apply(node, step)
            try:
                sample = PythonSampler(_Rooted(self.space, node), max_restarts=restarts).random_final(  # type: ignore
                    np.random.default_rng(seed))
            except SynoError:
                sample = None
        return None if sample is None else (sample.path, sample.final.operator)

    def final(self, node: Node) -> Operator | None:
        """The operator if ``node`` is final and within every limit, else None."""
        return self.space.finalize(node).operator

    def apply(self, node: Node, step: Step) -> Node:
        return self.space.apply(node, step)

    def fingerprint(self, op: Operator) -> str:
        return fingerprint(op, self.spec.probe_binding)

    def locate(self, op: Operator) -> tuple[Step, ...] | None:
        """The path to ``op`` (or to its canonical twin) in this space, None when the space excludes it."""
        loc = locate(self.space, op)
        return tuple(loc.path) if loc.found else None

    def original_fingerprint(self) -> str:
        """The fingerprint of the spec's reference operator (the layer as the model has it): a candidate with this
        fingerprint computes the original function, so it is a baseline for the search, never a find."""
        return fingerprint(named(self.spec.reference), self.spec.reference_binding(self.spec.probe_binding))

    def known(self, names: Sequence[str]) -> list[tuple[str, Operator]]:
        """Library operators by name (the MCTS seeds)."""
        return [(n, named(n)) for n in names]

    def stream(self, seed: int) -> FinalStream:
        return FinalStream(self.space, seed)
