"""Find a given operator in a space, or say which rule or limit keeps it out.

Two stages.  First the operator is *replayed*: its primitives are turned into the space's bottom-up steps (its
Reduces first, in canonical order; then every primitive once all of its bottom dims exist, with the Shares of one
weight as one Contraction) and each step is checked as the space checks it.  If every step is allowed and the end
node finalizes, the operator is in the space in exactly this form.  If a canonicalization rule rejects a step, the
form is redundant by design, so a bounded search looks for its *canonical twin*: a final operator of the space
with the same semantic fingerprint (:mod:`syno_tvm.synth.fingerprint`), built from sizes related to the
operator's own.  A limit (depth, weights, FLOPs, an unenumerated size) is reported as the reason it is excluded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..ir.graph import Operator, Prim
from .fingerprint import fingerprint
from .space import Space
from .spec import size_key
from .verdict import Reason, Verdict
from .state import CONTRACT, EXPAND, Node, Step
from .steps import STEP_KINDS, replaying, step_kind

TWIN_SEARCH_NODES = 20_000


@dataclass(frozen=True)
class Location:
    """Where an operator is: ``found`` with the path of steps and the space's final operator; ``twin`` when the
    given form was redundant and a canonical twin (same fingerprint) was found instead; else ``reason`` (text for
    people).  ``verdict``: the space's verdict on the step of the given form that it rejected, if one was."""

    found: bool
    path: tuple[Step, ...] = ()
    operator: Operator | None = None
    twin: bool = False
    reason: str = ""
    verdict: Verdict | None = None

    @property
    def depth(self) -> int:
        return len(self.path)


def locate(space: Space, op: Operator) -> Location:
    nodes: list[Node] = []
    replay = _replay(space, op, nodes)
    if replay.found or replay.verdict is None or replay.verdict.code is not Reason.RULE:
        return replay
    twin = _twin(space, op, nodes)
    if twin is not None:
        return Location(True, twin.path, twin.operator, True, f"given form excluded by {replay.reason}")
    return Location(False, reason=f"{replay.reason}; no canonical twin found within {TWIN_SEARCH_NODES} nodes")


def _replay(space: Space, op: Operator, nodes: list[Node]) -> Location:
    """Replay ``op``'s primitives as steps; ``nodes`` receives the nodes passed (root first)."""
    spec = space.spec
    if [op.sizes[d] for d in op.input] != [d.size for d in spec.input] or \
            [op.sizes[d] for d in op.output] != [d.size for d in spec.output]:
        return Location(False, reason="shape: its input/output sizes are not the spec's")
    for i, o in spec.fixed_pairs:
        if op.input[i] != op.output[o]:
            return Location(False, reason=f"fixed pair: input dim {i} is not output dim {o} passed through")
    node = space.root()
    nodes.append(node)
    fixed_out = {o for _, o in spec.fixed_pairs}
    where = {d: f.hash for d, f in zip([d for p, d in enumerate(op.output) if p not in fixed_out], node.frontier)}
    path: list[Step] = []

    def advance(step: Step, targets: list[int]) -> Location | None:
        """Take ``step``; the failed Location if the space does not enumerate it or rejects it."""
        nonlocal node
        refusal = step_kind(step.kind).refusal(space, node, step)
        if refusal is not None:
            return Location(False, tuple(path), reason=refusal)
        child, verdict = space.child(node, step)
        if child is None:
            return Location(False, tuple(path), reason=str(verdict), verdict=verdict)
        node = child
        nodes.append(node)
        path.append(step)
        for t, h in zip(targets, child.created):
            where[t] = h
        return None

    expanded = {p.bottoms[0] for p in op.prims if p.kind == "expand"}

    def replay(unit: list[int]) -> tuple[Step, list[int]]:
        return replaying(op.prims[unit[0]].kind).replay(op, unit, where, expanded)

    for i in sorted((i for i, p in enumerate(op.prims) if p.kind == "reduce"),
                    key=lambda i: size_key(op.sizes[op.prims[i].tops[0]])):
        failed = advance(*replay([i]))
        if failed:
            return failed
    pending = [i for i in op.topo_order if op.prims[i].kind not in ("reduce",)]
    share_of = {}
    for i, p in enumerate(op.prims):
        if p.kind == "share":
            share_of.setdefault(p.param, []).append(i)
    skip = {i for i, p in enumerate(op.prims) if p.kind == "expand" and _is_outer(op, p.bottoms[0])}
    done: set[int] = set()
    while len(done) + len(skip) < len(pending):
        unit = None
        for i in pending:
            if i in done or i in skip:
                continue
            p = op.prims[i]
            group = share_of[p.param] if p.kind == "share" else [i]
            if all(b in where for j in group for b in op.prims[j].bottoms):
                unit = group
                break
        if unit is None:
            return Location(False, tuple(path), reason="shape: its Shares of one weight are not one Contraction "
                                                       "(some are applied after views of others)")
        failed = advance(*replay(unit))
        if failed:
            return failed
        done.update(unit)
    final = space.finalize(node)
    if final.operator is None:
        return Location(False, tuple(path), reason=final.why)
    return Location(True, tuple(path), final.operator)


def _is_outer(op: Operator, d: int) -> bool:
    """Whether dim d is the input-side top of a Share (so an Expand on it makes that Share outer)."""
    src = op.source.get(d)
    return src is not None and op.prims[src].kind == "share" and op.prims[src].tops[0] == d


# ---- canonical twin search --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Hit:
    path: tuple[Step, ...]
    operator: Operator


def _twin(space: Space, op: Operator, nodes: list[Node]) -> _Hit | None:
    """Search for a final with ``op``'s fingerprint.  It starts from the last replayed node and then from each
    earlier one (the redundancy is usually in the last few steps), and uses no more steps of each kind than ``op``
    has, sizes related to ``op``'s (its sizes, their pairwise products and quotients) and weights with ``op``'s
    weights' element counts."""
    spec = space.spec
    probe = spec.probe_binding
    want = fingerprint(op, probe)
    sizes = set(op.sizes)
    vocab = sizes | {a * b for a in sizes for b in sizes} | {a / b for a in sizes for b in sizes}
    outer = sum(1 for p in op.prims if p.kind == "expand" and _is_outer(op, p.bottoms[0]))
    total = _kind_counts(op.prims, len(op.weights), outer)
    weight_sets = Counter(_numel([op.sizes[d] for d in w]) for w in op.weights)
    budget = [TWIN_SEARCH_NODES]

    def steps(node: Node):
        have = _kind_counts(node.prims, len(node.weights), sum(1 for w in node.weights for t in w.tops if not t))
        made = Counter(_numel([node.sizes[d] for d, _ in w.dims]) for w in node.weights)
        for kind in STEP_KINDS:
            if have[kind] >= total[kind]:
                continue
            k = step_kind(kind)
            for step in space.steps(node, kind):
                if not all(s in vocab for s in k.twin_sizes(node, step)):
                    continue
                weight = k.weight_sizes(node, step)
                if weight and made[_numel(weight)] >= weight_sets[_numel(weight)]:  # op has no more such weights
                    continue
                yield step

    def dfs(node: Node, path: list[Step], seen: set[str]) -> _Hit | None:
        if node.hash in seen or budget[0] <= 0:
            return None
        seen.add(node.hash)
        budget[0] -= 1
        final = space.finalize(node)
        if final.operator is not None and fingerprint(final.operator, probe) == want:
            return _Hit(tuple(path), final.operator)
        for step in steps(node):
            child, _ = space.child(node, step)
            if child is not None:
                hit = dfs(child, path + [step], seen)
                if hit is not None:
                    return hit
        return None

    for start in reversed(range(len(nodes))):
        prefix = list(_path_steps(nodes[: start + 1]))
        hit = dfs(nodes[start], prefix, set())
        if hit is not None:
            return hit
    return None


def _kind_counts(prims: tuple[Prim, ...], weights: int, outer_expands: int) -> Counter:
    """Steps of each kind that built ``prims``: one per primitive, but one Contraction per weight (its Shares, and
    the Expands of its outer Shares, are that one step)."""
    c = Counter(replaying(p.kind).name for p in prims)
    c[CONTRACT] = weights
    c[EXPAND] -= outer_expands
    return c


def _numel(sizes) -> str:
    """A weight's element count as text (a twin may lay the same weight out with other dims)."""
    out = sizes[0]
    for x in sizes[1:]:
        out = out * x
    return str(out)


def _path_steps(nodes: list[Node]):
    for n in nodes[1:]:
        yield n.last
