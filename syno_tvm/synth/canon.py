"""THE canonicalization table: every rule a name, a one-line reason and the predicate that enforces it.

Rules act at generation time (Syno's way: its ``src/Transforms`` never create a non-canonical child): a child
whose step would create a redundant form is never generated, while its canonical twin is.  ``allows(node, step)``
is True when the step is canonical.  A rule is either in :data:`RULES` or it is not: the space takes any sub-table
(``Space(spec, rules=())`` turns all of them off, which is how the benchmark measures their effect).  Each rule has
a test in ``tests/test_synth_canon.py`` that builds the redundant form's parent, shows the step is not generated,
and shows the twin is.

Rules whose reason says "up to ..." remove forms that are equivalent only up to channel relabeling (unordered
dims) or a border effect, as Syno's do; the others remove exact duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .spec import Spec, size_key
from .state import CONTRACT, EXPAND, MERGE, REDUCE, SHIFT, SPLIT, UNFOLD, Node, Step, merge_top_hash
from .steps import STEP_KINDS


@dataclass(frozen=True)
class Rule:
    """``kinds``: the step kinds the rule can reject (``allows`` is True for every other kind), so that a step is
    checked only against the rules about its kind: the space checks every candidate step."""

    name: str
    reason: str
    allows: Callable[[Spec, Node, Step], bool]
    kinds: tuple[str, ...]


def _reduce_first(spec: Spec, node: Node, step: Step) -> bool:
    return step.kind != REDUCE or node.only_reduces


def _reduce_order(spec: Spec, node: Node, step: Step) -> bool:
    if step.kind != REDUCE or node.last is None or node.last.kind != REDUCE:
        return True
    return size_key(step.size) >= size_key(node.last.size)


def _merge_chain_right(spec: Spec, node: Node, step: Step) -> bool:
    return step.kind != MERGE or node.dim(step.dims[0]).origin != "merge0"


def _split_chain_right(spec: Spec, node: Node, step: Step) -> bool:
    return step.kind != SPLIT or node.dim(step.dims[0]).origin != "split"


def _no_split_undoing_merge(spec: Spec, node: Node, step: Step) -> bool:
    if step.kind != SPLIT:
        return True
    a, b = node.dim(step.dims[0]), node.dim(step.dims[1])
    return not (a.origin == "merge0" and b.origin == "merge1" and a.below == b.below)


def _no_merge_undoing_split(spec: Spec, node: Node, step: Step) -> bool:
    """A Split's top is ``a * |b| + b``; a Merge of it with block ``|b|`` gives back ``(a, b)``."""
    if step.kind != MERGE:
        return True
    d = node.dim(step.dims[0])
    return d.origin != "split" or d.block != step.size


def _no_split_of_merge_majors(spec: Spec, node: Node, step: Step) -> bool:
    """Merge ``D`` by ``B1`` into ``(M1, m1)``, then ``m1`` by ``B2`` into ``(M2, m2)``: ``D = (M1 |M2| + M2) B2 + m2``,
    so Split ``(M1, M2)`` is the major top of one Merge of ``D`` by ``B2`` (three steps for one)."""
    if step.kind != SPLIT:
        return True
    a, b = node.dim(step.dims[0]), node.dim(step.dims[1])
    if a.origin != "merge0" or b.origin != "merge0":
        return True
    return b.below[0] != merge_top_hash(a.below[0], True, a.block)  # b's bottom is the minor top of a's Merge


def _no_split_of_reduces(spec: Spec, node: Node, step: Step) -> bool:
    if step.kind != SPLIT:
        return True
    a, b = node.dim(step.dims[0]), node.dim(step.dims[1])
    return not (a.origin == b.origin == "reduce" and a.size * b.size in spec.reduce_sizes)


def _no_merge_on_reduce(spec: Spec, node: Node, step: Step) -> bool:
    if step.kind != MERGE:
        return True
    d = node.dim(step.dims[0])
    if d.origin != "reduce" or node.reductions >= spec.max_reductions:
        return True
    return not (step.size in spec.reduce_sizes and d.size / step.size in spec.reduce_sizes)


def _unfold_chain_order(spec: Spec, node: Node, step: Step) -> bool:
    if step.kind != UNFOLD:
        return True
    main, window = node.dim(step.dims[0]), node.dim(step.dims[1])
    if main.origin != "unfold":
        return True
    return (size_key(window.size), window.hash) <= (size_key(main.window), main.below[1])


def _shift_unfold_order(spec: Spec, node: Node, step: Step) -> bool:
    return step.kind != UNFOLD or node.dim(step.dims[0]).origin != "shift"


def _no_shift_on_reduce(spec: Spec, node: Node, step: Step) -> bool:
    """``summed >= 0``: a Reduce dim, or the input-side top of Shares on one.  Substituting ``r -> r - 1`` in the sum
    moves the Shift from the input's index to every weight that reads ``r``: a relabeling of their entries."""
    return step.kind != SHIFT or node.dim(step.dims[0]).summed < 0


def _no_double_shift(spec: Spec, node: Node, step: Step) -> bool:
    return step.kind != SHIFT or node.dim(step.dims[0]).origin != "shift"


def _no_shift_on_unordered(spec: Spec, node: Node, step: Step) -> bool:
    return step.kind != SHIFT or not node.dim(step.dims[0]).unordered


def _unordered_merge_order(spec: Spec, node: Node, step: Step) -> bool:
    if step.kind != MERGE or not node.dim(step.dims[0]).unordered:
        return True
    d = node.dim(step.dims[0])
    return size_key(d.size / step.size) <= size_key(step.size)


def _no_expand_of_reduce(spec: Spec, node: Node, step: Step) -> bool:
    """A Reduce read by no weight then closed sums a constant; read by one weight, it sums that weight (outer
    Share on the raw Reduce, or Expand after one Share).  Read by two weights it is a shared low-rank dim
    (Syno's weight sharing) and stays."""
    if step.kind == EXPAND:
        return not 0 <= node.dim(step.dims[0]).summed <= 1
    if step.kind == CONTRACT:
        return not any(o and node.dim(h).summed == 0 for h, o in zip(step.dims, step.outer))
    return True


def _expand_is_outer(spec: Spec, node: Node, step: Step) -> bool:
    if step.kind != EXPAND or node.dim(step.dims[0]).origin != "share":
        return True
    h = step.dims[0]
    for w in node.weights:
        if h in w.tops:
            return sum(not o for o in w.outer) < 2  # the twin needs another inner Share in that Contraction
    return True


def _shift_above_share(spec: Spec, node: Node, step: Step) -> bool:
    return step.kind != CONTRACT or all(node.dim(h).origin != "shift" for h in step.dims)


def _split_after_shares(spec: Spec, node: Node, step: Step) -> bool:
    if step.kind != SPLIT:
        return True
    a, b = node.dim(step.dims[0]), node.dim(step.dims[1])
    if a.origin != "share" or b.origin != "share":
        return True
    for w in node.weights:
        if a.hash in w.tops and b.hash in w.tops:
            return len(w.touched) < 3  # the twin's Contraction has one Share less and still needs two
    return True


def _contraction_order(spec: Spec, node: Node, step: Step) -> bool:
    """Consecutive contractions A, B commute (the weights multiply; on a dim both share, the earlier one is inner).
    Keep the order whose keys ascend; keys are the pre-A hashes of the dims each touches, so both orders compare
    the same keys.  The swap is impossible when A would be left without an inner dim: then both orders stay."""
    if step.kind != CONTRACT or node.last is None or node.last.kind != CONTRACT:
        return True
    a = node.weights[-1]
    to_pre = {top: t for t, top, o in zip(a.touched, a.tops, a.outer) if not o}
    key_b = sorted(to_pre.get(h, h) for h in step.dims)
    if key_b >= sorted(a.touched):
        return True
    chained_outer = {to_pre[h] for h, o in zip(step.dims, step.outer) if h in to_pre and o}
    a_inner_left = [t for t, o in zip(a.touched, a.outer) if not o and t not in chained_outer]
    return not a_inner_left


RULES: tuple[Rule, ...] = (
    Rule("reduce_first", "sums commute with every view, so all Reduces are added at the root, before any view",
         _reduce_first, (REDUCE,)),
    Rule("reduce_order", "a set of Reduces is one multiset: generate it in non-decreasing size order",
         _reduce_order, (REDUCE,)),
    Rule("merge_chain_right", "Merge chains are associative: only the minor (right) top of a Merge is merged again",
         _merge_chain_right, (MERGE,)),
    Rule("split_chain_right", "Split chains are associative: a Split's major (left) bottom is never a Split's top",
         _split_chain_right, (SPLIT,)),
    Rule("no_split_undoing_merge", "a Split of a Merge's own two tops in order is the identity",
         _no_split_undoing_merge, (SPLIT,)),
    Rule("no_merge_undoing_split", "a Merge of a Split's top by the Split's minor size is the identity",
         _no_merge_undoing_split, (MERGE,)),
    Rule("no_split_of_merge_majors", "a Split of the majors of a Merge and of a Merge of its minor is one Merge",
         _no_split_of_merge_majors, (SPLIT,)),
    Rule("no_split_of_reduces", "a Split of two Reduce dims is one Reduce of the product size",
         _no_split_of_reduces, (SPLIT,)),
    Rule("no_merge_on_reduce", "a Merge of a Reduce dim is two Reduces of the block sizes",
         _no_merge_on_reduce, (MERGE,)),
    Rule("unfold_chain_order", "chained Unfolds commute up to zero padding at the border: windows in one order",
         _unfold_chain_order, (UNFOLD,)),
    Rule("shift_unfold_order", "Shift and Unfold commute up to the border: the Shift sits above (input side)",
         _shift_unfold_order, (UNFOLD,)),
    Rule("no_shift_on_reduce", "a sum over a cyclically shifted iterator is the same sum, up to relabeling the "
         "weights that read it",
         _no_shift_on_reduce, (SHIFT,)),
    Rule("no_double_shift", "Shifts move by one: a Shift of a Shift is a shift by 2, left out as in Syno",
         _no_double_shift, (SHIFT,)),
    Rule("no_shift_on_unordered", "shifting an unordered (channel) dim only relabels channels",
         _no_shift_on_unordered, (SHIFT,)),
    Rule("unordered_merge_order", "the two block orders of an unordered dim differ by a channel relabeling: "
         "the smaller size is the major top", _unordered_merge_order, (MERGE,)),
    Rule("no_expand_of_reduce", "a sum read by neither the input nor two weights only scales or sums one weight: "
         "drop that Reduce",
         _no_expand_of_reduce, (EXPAND, CONTRACT)),
    Rule("expand_is_outer", "an Expand on an inner Share's top is that Share made outer",
         _expand_is_outer, (EXPAND,)),
    Rule("shift_above_share", "a Shift below a Share also shifts the weight's index, a relabeling: Shift above it",
         _shift_above_share, (CONTRACT,)),
    Rule("split_after_shares", "splitting two tops of one weight's Shares reshapes only the weight: Split first",
         _split_after_shares, (SPLIT,)),
    Rule("contraction_order", "consecutive contractions commute (weight order, Share chain order): keep one order",
         _contraction_order, (CONTRACT,)),
)

RULE_NAMES = tuple(r.name for r in RULES)


def select(names: "tuple[str, ...] | None") -> tuple[Rule, ...]:
    """The sub-table with these rule names (all rules for None)."""
    from ..errors import SynoError

    if names is None:
        return RULES
    unknown = sorted(set(names) - set(RULE_NAMES))
    if unknown:
        raise SynoError(f"unknown canonicalization rule(s) {unknown}: the rules are {', '.join(RULE_NAMES)}")
    return tuple(r for r in RULES if r.name in names)


def by_kind(rules: tuple[Rule, ...]) -> dict[str, tuple[Rule, ...]]:
    """Per step kind, the rules of ``rules`` about it, in table order (so the first violation stays the same)."""
    return {k: tuple(r for r in rules if k in r.kinds) for k in STEP_KINDS}


def first_violation(rules: tuple[Rule, ...], spec: Spec, node: Node, step: Step) -> Rule | None:
    """The first rule that rejects ``step`` at ``node``, or None if the step is canonical."""
    for r in rules:
        if not r.allows(spec, node, step):
            return r
    return None
