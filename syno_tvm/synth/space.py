"""The bottom-up space of operators: nodes are partial operators, children are primitive applications in reverse.

Direction (Syno's bottom-up search): the root is the output's dims; Reduces come first, then the primitives are applied
in reverse (``Merge^-1`` turns one frontier dim into two, ``Split^-1`` two into one, ``Unfold^-1`` a (main, window)
pair into one, ``Expand^-1`` closes a dim, ``Shift^-1``/``Stride^-1`` replace one), and a Contraction adds one
weight: it Shares a set of frontier dims with the new weight, each *inner* (the input keeps the dim) or *outer*
(Share + Expand: only the weight has it).  What each kind of step does (its candidates, its child) is written once,
in the step-kind table :mod:`syno_tvm.synth.steps`; the space judges the steps and caches per node.  A node is final
when its frontier is exactly the input's dims and the operator is within the spec's limits in every layer;
:meth:`Space.finalize` then returns the :class:`~syno_tvm.ir.graph.Operator`.

Every step costs one unit of depth (a Contraction too, whatever its size); a child whose shape distance exceeds
the depth left is never generated (:mod:`syno_tvm.synth.distance`), and a step that a canonicalization rule
rejects is never generated (:mod:`syno_tvm.synth.canon`).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Iterator

import numpy as np

from ..ir.graph import Operator, Prim, digest
from ..ir.library import named
from ..ir.sizes import Size
from .canon import RULES, Rule, by_kind, first_violation
from .distance import distance, step_distance
from .spec import Spec
from .state import CONTRACT, REDUCE, Dim, Node, Step
from .steps import STEP_KINDS, Builder, step_kind
from .verdict import Reason, Verdict, accepted


@dataclass(frozen=True)
class Final:
    """Finalize's verdict on a node: the operator, or why there is none (a limit, named)."""

    operator: Operator | None
    why: str = ""
    flops: tuple[int, ...] = ()
    params: tuple[int, ...] = ()


class Space:
    """The space of one spec under one rule table.  Nodes are values; the Space only caches per node hash."""

    def __init__(self, spec: Spec, rules: tuple[Rule, ...] = RULES) -> None:
        self.spec = spec
        self.rules = tuple(rules)
        self._rules_for = by_kind(self.rules)
        self._valid: dict[Size, bool] = {}
        self._block_cache: dict[Size, list[Size]] = {}
        self._finals: dict[str, Final] = {}
        self._input_sizes = sorted(str(d.size) for d in spec.search_input)
        self._input_counts = Counter(self._input_sizes)
        self._reduce_anywhere = all(r.name != "reduce_first" for r in self.rules)
        self._reduce_sorted = any(r.name == "reduce_order" for r in self.rules)
        self._raw = any(r.name == "no_expand_of_reduce" for r in self.rules)

    # ---- nodes --------------------------------------------------------------------------------------------------
    def root(self) -> Node:
        """The output's dims; fixed pairs (the batch) are dims of the output and the input at once."""
        sizes, frontier = [], []
        fixed_out = {o for _, o in self.spec.fixed_pairs}
        for pos, d in enumerate(self.spec.output):
            sizes.append(d.size)
            if pos not in fixed_out:
                frontier.append(Dim(pos, d.size, digest("out", pos, d.size), "out", unordered=d.unordered))
        return Node(tuple(sizes), (), tuple(range(len(sizes))), tuple(frontier))

    def distance(self, node: Node) -> int:
        return distance(self.spec, node, self.can_reduce(node), self.reduce_floor(node.last), self._raw)

    def reduce_floor(self, last: Step | None) -> Size | None:
        """The smallest Reduce size that may follow a node created by ``last`` (the reduce_order rule: after a Reduce,
        none smaller), None for any: the shape distance counts only the Reduces that can still come."""
        return last.size if self._reduce_sorted and last is not None and last.kind == REDUCE else None

    def can_reduce(self, node: Node) -> bool:
        """Whether a Reduce may still follow ``node`` (only in the Reduce stage under the reduce_first rule)."""
        return self._can_reduce(node.only_reduces)

    def _can_reduce(self, only_reduces: bool) -> bool:
        """Whether Reduces may follow a node (``only_reduces``: no other step so far), for the shape distance."""
        return only_reduces or self._reduce_anywhere

    def remaining(self, node: Node) -> int:
        return self.spec.max_depth - node.depth

    def valid(self, size: Size) -> bool:
        if size not in self._valid:
            self._valid[size] = self.spec.valid(size)
        return self._valid[size]

    # ---- steps --------------------------------------------------------------------------------------------------
    def steps(self, node: Node, kind: str) -> Iterator[Step]:
        """Candidate steps of one kind (before rules and distance), each distinct frontier hash once."""
        return step_kind(kind).steps(self, node)

    def blocks(self, size: Size) -> list[Size]:
        """Merge blocks for a dim of this size (cached per size: enumeration runs at every node)."""
        if size not in self._block_cache:
            self._block_cache[size] = [b for b in self.spec.block_sizes if b != size and self.valid(size / b)]
        return self._block_cache[size]

    def random_contraction(self, node: Node, rng: "np.random.Generator | random.Random") -> Step | None:
        """One random Contraction candidate (uniform number of Shares, then dims, then inner/outer with at least one
        inner), or None when the node allows none.  The sampler uses this instead of listing all 3^n of them.
        ``rng`` is anything with ``random()`` (the sampler passes a ``random.Random``: a draw costs a tenth of
        numpy's, and this runs a hundred times per final)."""
        n = len(node.frontier)
        top = min(self.spec.max_shares, n)
        if len(node.weights) >= self.spec.max_weights or top < 2:
            return None
        count = 2 + int(rng.random() * (top - 1))
        order = list(range(n))
        for i in range(count):  # a partial Fisher-Yates shuffle: ``count`` distinct positions
            j = i + int(rng.random() * (n - i))
            order[i], order[j] = order[j], order[i]
        picked = sorted(order[:count])
        outer = [rng.random() < 0.5 for _ in range(count)]
        outer[int(rng.random() * count)] = False
        pairs = sorted((node.frontier[i].hash, o) for i, o in zip(picked, outer))
        if not self.allowance_ok(node, [node.dim(h).size for h, _ in pairs]):
            return None
        return Step(CONTRACT, tuple(h for h, _ in pairs), outer=tuple(o for _, o in pairs))

    def closing_contractions(self, node: Node) -> list[Step]:
        """The Contractions after which the frontier has exactly the input's sizes: the dims beyond the input's
        multiset of sizes are the outer Shares (each way of choosing them among equal sizes), any non-empty set of
        the kept dims the inner ones.  One step before the depth limit no other Contraction can end in a final, and
        a random draw finds one of these rarely (about 1 in 300 on the vision spec), so the sampler lists them."""
        if len(node.weights) >= self.spec.max_weights:
            return []
        by_size: dict[str, list[Dim]] = {}
        for d in node.frontier:
            by_size.setdefault(str(d.size), []).append(d)
        want = self._input_counts
        choices = []  # per size: the ways to pick the dims that stay (the rest are closed)
        for text, dims in by_size.items():
            n = want.get(text, 0)
            if n > len(dims):
                return []
            choices.append([(keep, [d for d in dims if d not in keep]) for keep in itertools.combinations(dims, n)
                            if not any(d.discarding for d in keep)])
        if any(text not in by_size for text in want):
            return []
        out: dict[Step, None] = {}  # ordered set: equal hashes (two Reduces of one size) give equal steps
        for pick in itertools.product(*choices):
            keep = [d for kept, _ in pick for d in kept]
            closed = [d for _, gone in pick for d in gone]
            for r in range(1, len(keep) + 1):
                if len(closed) + r < 2 or len(closed) + r > self.spec.max_shares:
                    continue
                for inner in itertools.combinations(keep, r):
                    pairs = sorted([(d.hash, False) for d in inner] + [(d.hash, True) for d in closed])
                    if self.allowance_ok(node, [node.dim(h).size for h, _ in pairs]):
                        out[Step(CONTRACT, tuple(h for h, _ in pairs), outer=tuple(o for _, o in pairs))] = None
        return list(out)

    def allowance_ok(self, node: Node, sizes: list[Size]) -> bool:
        """Whether steps adding dims of ``sizes`` keep the primary variables introduced by Reduces and weight dims
        within their max occurrences (also how a given Contraction is checked: :meth:`StepKind.refusal
        <syno_tvm.synth.steps.StepKind.refusal>`)."""
        used = dict(node.used)
        for s in sizes:
            for n, p in s.powers:
                if self.spec.is_primary(n):
                    used[n] = used.get(n, 0) + p
                    if used[n] > self.spec.allowance(n):
                        return False
        return True

    def apply(self, node: Node, step: Step) -> Node:
        """The child reached by ``step`` (no rule or distance check: see :meth:`child`)."""
        b = Builder(node, step, self.spec.is_primary)
        step_kind(step.kind).apply(b, step)
        return b.child()

    def child(self, node: Node, step: Step) -> tuple[Node | None, Verdict]:
        """The child if the step is canonical and its distance fits the depth left, else None; and the verdict."""
        return self.judge(node, step)

    def judge(self, node: Node, step: Step) -> tuple[Node | None, Verdict]:
        """:meth:`child`; the verdict carries the child's shape distance (``distance.UNREACHABLE`` when no child)."""
        if node.depth >= self.spec.max_depth:
            return None, Verdict(Reason.DEPTH, bound=self.spec.max_depth)
        rule = first_violation(self._rules_for.get(step.kind, ()), self.spec, node, step)
        if rule is not None:
            return None, Verdict(Reason.RULE, rule=rule.name)
        # most candidates fail the bound: judge the child by its sizes before building it
        dist = step_distance(self.spec, node, step, self._can_reduce(node.only_reduces and step.kind == REDUCE),
                             self.reduce_floor(step), self._raw)
        left = self.remaining(node) - 1
        if dist > left:
            return None, Verdict(Reason.DISTANCE, distance=dist, bound=left)
        return self.apply(node, step), accepted(dist)

    def children(self, node: Node) -> list[tuple[Step, Node]]:
        """Every child (step, node): canonical steps whose child can still reach the input within the depth."""
        return [(step, c) for step, c, _ in self.scored_children(node)]

    def scored_children(self, node: Node) -> list[tuple[Step, Node, int]]:
        """:meth:`children` with each child's shape distance, in generation order."""
        out = []
        for kind in STEP_KINDS:
            for step in self.steps(node, kind):
                c, verdict = self.judge(node, step)
                if c is not None:
                    out.append((step, c, verdict.distance))
        return out

    # ---- finals -------------------------------------------------------------------------------------------------
    def is_final(self, node: Node) -> bool:
        return self.finalize(node).operator is not None

    def finalize(self, node: Node) -> Final:
        """The operator at ``node`` if its frontier is exactly the input and it is within every limit (cached)."""
        if node.hash not in self._finals:
            self._finals[node.hash] = self._finalize(node)
        return self._finals[node.hash]

    def _finalize(self, node: Node) -> Final:
        spec = self.spec
        if sorted(str(d.size) for d in node.frontier) != self._input_sizes or any(d.discarding for d in node.frontier):
            return Final(None, "the frontier is not the input's dims")
        if not node.weights:
            return Final(None, "limit weights: an operator needs at least one weight to learn")
        free = list(node.frontier)
        fixed = dict(spec.fixed_pairs)
        inputs = []
        for pos, d in enumerate(spec.input):
            if pos in fixed:
                inputs.append(node.output[fixed[pos]])
            else:
                i = next(i for i, f in enumerate(free) if f.size == d.size)
                inputs.append(free.pop(i).id)
        order = sorted(range(len(node.weights)), key=lambda i: node.weights[i].sig)
        number = {i + 1: rank + 1 for rank, i in enumerate(order)}
        prims = tuple(Prim(p.kind, p.tops, p.bottoms, number[p.param]) if p.kind == "share" else p
                      for p in node.prims)
        weights = tuple(tuple(i for i, _ in sorted(node.weights[i].dims, key=lambda x: (x[1], x[0]))) for i in order)
        op = Operator(node.sizes, prims, tuple(inputs), weights, node.output,
                      tuple(sorted(spec.variables.coefficients().items())))
        return self._limits(op)

    @cached_property
    def reference_figures(self) -> list[tuple[int, int]]:
        """(FLOPs, params) of the reference operator in each layer: the limits are ratios to these (the native
        engine takes them as they are)."""
        from ..lower.order import plan

        ref = named(self.spec.reference)
        out = []
        for b in self.spec.layer_bindings.values():
            rb = self.spec.reference_binding(b)
            out.append((plan(ref, rb).flops, ref.params(rb)))
        return out

    def _limits(self, op: Operator) -> Final:
        from ..lower.order import plan

        (flo, fhi), (plo, phi) = self.spec.flops, self.spec.params
        flops, params = [], []
        for (name, b), (rf, rp) in zip(self.spec.layer_bindings.items(), self.reference_figures):
            f, p = plan(op, b).flops, op.params(b)
            if not flo * rf <= f <= fhi * rf:
                return Final(None, f"limit flops: {f / rf:.3g}x the {self.spec.reference} FLOPs in layer {name}, "
                                   f"outside [{flo}, {fhi}]")
            if not plo * rp <= p <= phi * rp:
                return Final(None, f"limit params: {p / rp:.3g}x the {self.spec.reference} parameters in layer "
                                   f"{name}, outside [{plo}, {phi}]")
            flops.append(f)
            params.append(p)
        return Final(op, "", tuple(flops), tuple(params))
