"""One test per canonicalization rule: the redundant form is not generated (rejected by *that* rule), its canonical
twin is, and with the rule taken out of the table the redundant form is generated again (so the rule, not
something else, is what removes it).  Exact rules also show that redundant form and twin are the same node or the
same function."""

from __future__ import annotations

import pytest

from syno_tvm.ir.sizes import Size
from syno_tvm.synth.canon import RULE_NAMES, RULES, select
from syno_tvm.synth.fingerprint import fingerprint
from syno_tvm.synth.space import Space
from syno_tvm.synth.spec import VISION, TRANSFORMER, Spec
from syno_tvm.synth.state import CONTRACT, EXPAND, MERGE, REDUCE, SHIFT, SPLIT, UNFOLD, Node, Step
from syno_tvm.synth.verdict import Reason, Verdict

VIS = Spec.from_json(VISION)
# windows k (3) and s (2), to have two different window sizes for the Unfold chain rule
VIS2 = Spec.from_json({**VISION, "windows": ["k", "s"]})
TRF = Spec.from_json(TRANSFORMER)


def h(node: Node, size: str, origin: str | None = None, nth: int = 0) -> str:
    """Hash of the nth frontier dim of this size (and origin)."""
    dims = [d for d in node.frontier if str(d.size) == size and (origin is None or d.origin == origin)]
    return dims[nth].hash


def walk(space: Space, node: Node, *steps) -> Node:
    """Apply steps given as callables node -> Step, asserting each is generated."""
    for make in steps:
        step = make(node)
        child, why = space.child(node, step)
        assert child is not None, f"{step} should be generated, got: {why}"
        node = child
    return node


def red(size: str):
    return lambda n: Step(REDUCE, size=Size.parse(size))


def without(rule: str) -> tuple:
    """The rule table less one rule."""
    return select(tuple(n for n in RULE_NAMES if n != rule))


def check(rule: str, spec: Spec, parent: Node, redundant: Step, twin_parent: Node, twin: Step) -> tuple[Node, Node]:
    """redundant is rejected by `rule`, twin is generated, and without `rule` the redundant step is generated."""
    on = Space(spec)
    child, why = on.child(parent, redundant)
    assert child is None and why == Verdict(Reason.RULE, rule=rule), f"{redundant}: {why}"
    twin_child, why = on.child(twin_parent, twin)
    assert twin_child is not None, f"twin {twin}: {why}"
    off = Space(spec, without(rule))
    red_child, why = off.child(parent, redundant)
    assert red_child is not None, f"without {rule}, {redundant} should be generated: {why}"
    return red_child, twin_child


def test_reduce_first():
    s = Space(VIS)
    # with the rule on, a view first leaves no way to make C_in (a dead end), so build that parent without rules
    after_view = walk(Space(VIS, ()), s.root(), lambda n: Step(SHIFT, (h(n, "H"),)))
    before = walk(s, s.root(), red("C_in"))
    red_child, twin = check("reduce_first", VIS, after_view, Step(REDUCE, size=Size.parse("C_in")),
                            before, Step(SHIFT, (h(before, "H"),)))
    assert red_child.hash == twin.hash  # the same partial operator


def test_reduce_order():
    s = Space(VIS)
    k_first = walk(s, s.root(), red("k"))
    c_first = walk(s, s.root(), red("C_in"))
    red_child, twin = check("reduce_order", VIS, k_first, Step(REDUCE, size=Size.parse("C_in")),
                            c_first, Step(REDUCE, size=Size.parse("k")))
    assert red_child.hash == twin.hash


def test_merge_chain_right():
    s = Space(TRF)
    root = s.root()
    left = walk(s, root, lambda n: Step(MERGE, (h(n, "H_in*t"),), Size.parse("H_in/(k^4*t)")))
    right = walk(s, root, lambda n: Step(MERGE, (h(n, "H_in*t"),), Size.parse("H_in/(k^3*t)")))
    red_child, twin = check("merge_chain_right", TRF, left, Step(MERGE, (h(left, "k^4*t^2"),), Size.parse("k")),
                            right, Step(MERGE, (h(right, "H_in/(k^3*t)"),), Size.parse("H_in/(k^4*t)")))
    assert sorted(str(d.size) for d in red_child.frontier) == sorted(str(d.size) for d in twin.frontier)


def test_split_chain_right():
    s = Space(VIS)
    base = walk(s, s.root(), red("C_in"), red("k"))
    left = walk(s, base, lambda n: Step(SPLIT, (h(n, "W"), h(n, "k"))))
    right = walk(s, base, lambda n: Step(SPLIT, (h(n, "k"), h(n, "H"))))
    red_child, twin = check("split_chain_right", VIS, left, Step(SPLIT, (h(left, "W*k"), h(left, "H"))),
                            right, Step(SPLIT, (h(right, "W"), h(right, "H*k"))))
    assert str(red_child.frontier[-1].size) == str(twin.frontier[-1].size) == "H*W*k"


def test_no_split_undoing_merge():
    s = Space(VIS)
    m = walk(s, s.root(), red("C_in"), lambda n: Step(MERGE, (h(n, "C_out"),), Size.parse("C_out/g")))
    check("no_split_undoing_merge", VIS, m, Step(SPLIT, (h(m, "g"), h(m, "C_out/g"))),
          m, Step(SPLIT, (h(m, "C_out/g"), h(m, "g"))))


def test_no_split_of_reduces():
    s = Space(VIS)
    c = walk(s, s.root(), red("C_in"))
    two = walk(s, c, red("g"), red("k"))
    check("no_split_of_reduces", VIS, two, Step(SPLIT, (h(two, "g"), h(two, "k"))),
          c, Step(REDUCE, size=Size.parse("g*k")))


def test_no_merge_on_reduce():
    s = Space(VIS)
    one = walk(s, s.root(), red("C_in"), red("g*k"))
    g = walk(s, s.root(), red("C_in"), red("g"))
    check("no_merge_on_reduce", VIS, one, Step(MERGE, (h(one, "g*k"),), Size.parse("k")),
          g, Step(REDUCE, size=Size.parse("k")))


def test_unfold_chain_order():
    s = Space(VIS2)
    base = walk(s, s.root(), red("C_in"), red("k"), red("s"))
    k_first = walk(s, base, lambda n: Step(UNFOLD, (h(n, "H"), h(n, "k"))))
    s_first = walk(s, base, lambda n: Step(UNFOLD, (h(n, "H"), h(n, "s"))))
    check("unfold_chain_order", VIS2, k_first, Step(UNFOLD, (h(k_first, "H", "unfold"), h(k_first, "s"))),
          s_first, Step(UNFOLD, (h(s_first, "H", "unfold"), h(s_first, "k"))))


def test_shift_unfold_order():
    s = Space(VIS)
    base = walk(s, s.root(), red("C_in"), red("k"))
    shifted = walk(s, base, lambda n: Step(SHIFT, (h(n, "H"),)))
    unfolded = walk(s, base, lambda n: Step(UNFOLD, (h(n, "H"), h(n, "k"))))
    check("shift_unfold_order", VIS, shifted, Step(UNFOLD, (h(shifted, "H", "shift"), h(shifted, "k"))),
          unfolded, Step(SHIFT, (h(unfolded, "H", "unfold"),)))


def test_no_shift_on_reduce():
    s = Space(VIS)
    base = walk(s, s.root(), red("C_in"), red("k"))
    red_child, _ = check("no_shift_on_reduce", VIS, base, Step(SHIFT, (h(base, "k"),)),
                         base, Step(SHIFT, (h(base, "H"),)))
    assert red_child.hash != base.hash  # without the rule it is a real (redundant) extra node


def same_function(space: Space, a: Node, b: Node) -> None:
    """Both nodes are finals of ``space`` (built without the rule under test) and different operators that compute
    the same function up to relabeling weight entries: the redundant form and its twin are one operator."""
    fa, fb = space.finalize(a).operator, space.finalize(b).operator
    assert fa is not None and fb is not None
    assert fa.hash != fb.hash
    assert fingerprint(fa, space.spec.probe_binding) == fingerprint(fb, space.spec.probe_binding)


def close_t(n: Node) -> Step:
    """The transformer's closing Contraction on a frontier [seq, H_in, t]: H_in inner, t outer (a linear layer)."""
    dims = tuple(sorted([h(n, "H_in"), h(n, "t")]))
    return Step(CONTRACT, dims, outer=tuple(x == h(n, "t") for x in dims))


def test_no_shift_on_reduce_through_shares():
    """The Shift may not sit on a Reduce dim that weights already read either: the sum moves it into the weights."""
    s = Space(VIS)
    base = walk(s, s.root(), red("C_in"),
                lambda n: Step(CONTRACT, tuple(sorted([h(n, "C_out"), h(n, "C_in")])),
                               outer=tuple(x == h(n, "C_out") for x in sorted([h(n, "C_out"), h(n, "C_in")]))))
    shift = Step(SHIFT, (h(base, "C_in", "share"),))
    assert s.child(base, shift) == (None, Verdict(Reason.RULE, rule="no_shift_on_reduce"))
    off = Space(VIS, without("no_shift_on_reduce"))
    shifted = walk(off, base, lambda n: shift)
    same_function(off, shifted, base)


def test_no_merge_undoing_split():
    s = Space(TRF)
    m = walk(s, s.root(), lambda n: Step(MERGE, (h(n, "H_in*t"),), Size.parse("t")))
    split = walk(s, m, lambda n: Step(SPLIT, (h(n, "seq"), h(n, "t"))))
    undo = Step(MERGE, (h(split, "seq*t"),), Size.parse("t"))
    assert s.child(split, undo) == (None, Verdict(Reason.RULE, rule="no_merge_undoing_split"))
    assert walk(s, split, lambda n: Step(MERGE, (h(n, "seq*t"),), Size.parse("seq")))  # another block stays
    off = Space(TRF, without("no_merge_undoing_split"))
    undone = walk(off, split, lambda n: undo)
    same_function(off, walk(off, undone, close_t), walk(off, m, close_t))


def test_no_split_of_merge_majors():
    s = Space(TRF)
    first = walk(s, s.root(), lambda n: Step(MERGE, (h(n, "H_in*t"),), Size.parse("k*t")),
                 lambda n: Step(MERGE, (h(n, "k*t"),), Size.parse("t")))
    majors = Step(SPLIT, (h(first, "H_in/k"), h(first, "k")))
    assert s.child(first, majors) == (None, Verdict(Reason.RULE, rule="no_split_of_merge_majors"))
    assert walk(s, first, lambda n: Step(SPLIT, (h(n, "k"), h(n, "H_in/k"))))  # the other order is another reshape
    twin = walk(s, s.root(), lambda n: Step(MERGE, (h(n, "H_in*t"),), Size.parse("t")))
    off = Space(TRF, without("no_split_of_merge_majors"))
    long = walk(off, first, lambda n: majors)
    assert sorted(str(d.size) for d in long.frontier) == sorted(str(d.size) for d in twin.frontier)
    same_function(off, walk(off, long, close_t), walk(off, twin, close_t))


def test_no_shift_on_unordered():
    s = Space(VIS)
    c = walk(s, s.root(), red("C_in"))
    check("no_shift_on_unordered", VIS, c, Step(SHIFT, (h(c, "C_out"),)), c, Step(SHIFT, (h(c, "W"),)))


def test_unordered_merge_order():
    s = Space(VIS)
    r = walk(s, s.root(), red("C_in"))
    red_child, twin = check("unordered_merge_order", VIS, r, Step(MERGE, (h(r, "C_out"),), Size.parse("g")),
                            r, Step(MERGE, (h(r, "C_out"),), Size.parse("C_out/g")))
    assert [str(d.size) for d in red_child.frontier[-2:]] == ["C_out/g", "g"]
    assert [str(d.size) for d in twin.frontier[-2:]] == ["g", "C_out/g"]


def test_no_expand_of_reduce():
    s = Space(VIS)
    base = walk(s, s.root(), red("C_in"), red("k"))
    check("no_expand_of_reduce", VIS, base, Step(EXPAND, (h(base, "k"),)),
          base, Step(EXPAND, (h(base, "C_out"),)))
    outer = sorted([(h(base, "k"), True), (h(base, "C_in"), False)])
    inner = sorted([(h(base, "k"), False), (h(base, "C_in"), False)])
    check("no_expand_of_reduce", VIS, base, Step(CONTRACT, tuple(x for x, _ in outer), outer=tuple(o for _, o in outer)),
          base, Step(CONTRACT, tuple(x for x, _ in inner), outer=tuple(o for _, o in inner)))


def _contract(node: Node, *dims: tuple[str, bool]) -> Step:
    pairs = sorted((h(node, size), o) for size, o in dims)
    return Step(CONTRACT, tuple(x for x, _ in pairs), outer=tuple(o for _, o in pairs))


def test_contraction_order():
    s = Space(VIS)
    base = walk(s, s.root(), red("C_in"))
    a = lambda n: _contract(n, ("C_out", True), ("C_in", False))  # noqa: E731
    b = lambda n: _contract(n, ("H", False), ("W", False))  # noqa: E731
    ab, ba = walk(Space(VIS, ()), base, a), walk(Space(VIS, ()), base, b)
    # exactly one of the two orders is canonical; both reach the same node without the rule
    first, second = (ab, b) if Space(VIS).child(ab, b(ab))[0] is None else (ba, a)
    twin_parent, twin = (ba, a) if first is ab else (ab, b)
    red_child, twin_child = check("contraction_order", VIS, first, second(first), twin_parent, twin(twin_parent))
    assert red_child.hash == twin_child.hash


def test_every_rule_has_a_test():
    names = {n.removeprefix("test_") for n in globals() if n.startswith("test_")}
    assert set(RULE_NAMES) <= names, f"rules without a test: {set(RULE_NAMES) - names}"
    assert all(r.reason and len(r.reason) < 120 for r in RULES)


def test_unknown_rule_is_a_one_line_error():
    from syno_tvm.errors import SynoError

    with pytest.raises(SynoError, match="unknown canonicalization rule"):
        select(("no_such_rule",))


def test_no_expand_of_reduce_through_shares():
    s = Space(VIS)
    # one weight reads the Reduce k (its only inner Share, so expand_is_outer does not apply)
    base = walk(s, s.root(), red("C_in"), red("k"), lambda n: _contract(n, ("C_out", True), ("k", False)))
    check("no_expand_of_reduce", VIS, base, Step(EXPAND, (h(base, "k", "share"),)),
          base, Step(SHIFT, (h(base, "H"),)))


def test_expand_is_outer():
    s = Space(VIS)
    base = walk(s, s.root(), red("C_in"), red("k"))
    inner = walk(s, base, lambda n: _contract(n, ("C_out", False), ("C_in", False), ("k", False)))
    check("expand_is_outer", VIS, inner, Step(EXPAND, (h(inner, "C_out", "share"),)),
          base, _contract(base, ("C_out", True), ("C_in", False), ("k", False)))


def test_shift_above_share():
    s = Space(VIS)
    base = walk(s, s.root(), red("C_in"))
    shifted = walk(s, base, lambda n: Step(SHIFT, (h(n, "H"),)))
    shared = walk(s, base, lambda n: _contract(n, ("C_out", True), ("C_in", False), ("H", False)))
    red_child, twin = check("shift_above_share", VIS, shifted,
                            _contract(shifted, ("C_out", True), ("C_in", False), ("H", False)),
                            shared, Step(SHIFT, (h(shared, "H", "share"),)))
    # the same primitives in the other order: the weight reads H unshifted, a relabeling of its entries
    assert sorted(p.kind for p in red_child.prims) == sorted(p.kind for p in twin.prims)


def test_split_after_shares():
    s = Space(VIS)
    base = walk(s, s.root(), red("C_in"), red("k"))
    shared = walk(s, base, lambda n: _contract(n, ("C_out", True), ("C_in", False), ("k", False), ("H", False)))
    split_first = walk(s, base, lambda n: Step(SPLIT, (h(n, "H"), h(n, "k"))))
    check("split_after_shares", VIS, shared, Step(SPLIT, (h(shared, "H", "share"), h(shared, "k", "share"))),
          split_first, _contract(split_first, ("C_out", True), ("C_in", False), ("H*k", False)))


def test_no_double_shift():
    s = Space(VIS)
    c = walk(s, s.root(), red("C_in"))
    once = walk(s, c, lambda n: Step(SHIFT, (h(n, "H"),)))
    check("no_double_shift", VIS, once, Step(SHIFT, (h(once, "H", "shift"),)), c, Step(SHIFT, (h(c, "H"),)))


@pytest.mark.parametrize("spec", [VIS2, TRF], ids=["vision", "transformer"])
def test_rules_reject_only_their_kinds(spec):
    """The space checks a step only against the rules whose ``kinds`` name its kind: every other rule must allow it,
    on nodes of random walks (rules off, so that every form turns up)."""
    import numpy as np

    from syno_tvm.synth.steps import STEP_KINDS

    space, rng, seen = Space(spec, ()), np.random.default_rng(3), set()
    for _ in range(30):
        node = space.root()
        while node.depth < spec.max_depth:
            steps = [st for k in STEP_KINDS if k != CONTRACT for st in space.steps(node, k)]
            steps += [st for st in (space.random_contraction(node, rng) for _ in range(8)) if st is not None]
            for step, rule in ((st, r) for st in steps for r in RULES if st.kind not in r.kinds):
                assert rule.allows(spec, node, step), f"{rule.name} rejects {step}, not of its kinds {rule.kinds}"
            seen |= {(r.name, st.kind) for st in steps for r in RULES if st.kind in r.kinds}
            if not steps:
                break
            node = space.apply(node, steps[int(rng.integers(len(steps)))])
    # the walks reached steps of every rule's kinds (Unfolds need windows, which the transformer spec has not)
    assert {name for name, _ in seen} == {r.name for r in RULES if spec.windows or UNFOLD not in r.kinds}
