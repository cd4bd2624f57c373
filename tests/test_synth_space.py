"""The bottom-up space: API, lattice (state dedup by hash), soundness of the shape distance, and that every final
it yields is a valid operator that lowers, runs and matches the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from syno_tvm.errors import SynoError
from syno_tvm.ir.graph import Operator
from syno_tvm.ir.reference import evaluate
from syno_tvm.synth.canon import RULES
from syno_tvm.synth.distance import UNREACHABLE, _closing, distance, step_distance
from syno_tvm.synth.fingerprint import fingerprint
from syno_tvm.synth.generate import random_samples
from syno_tvm.synth.locate import locate
from syno_tvm.synth.sampler import PythonSampler
from syno_tvm.synth.space import Space
from syno_tvm.synth.spec import TRANSFORMER, VISION, Spec, load_spec
from syno_tvm.synth.state import CONTRACT, REDUCE, SHIFT, Step
from syno_tvm.synth.steps import STEP_KINDS
from syno_tvm.synth.verdict import Reason

VIS = Spec.from_json(VISION)
TRF = Spec.from_json(TRANSFORMER)


def test_root_and_children():
    s = Space(VIS)
    root = s.root()
    assert sorted(str(d.size) for d in root.frontier) == ["C_out", "H", "W"]  # N is the fixed pair
    kids = s.children(root)
    assert kids and all(c.depth == 1 for _, c in kids)
    assert all(s.distance(c) <= s.remaining(c) for _, c in kids)
    # under the reduce_first rule and the C_in allowance, the only way to make C_in is a Reduce at the root
    assert all(step.kind == REDUCE for step, _ in kids)
    assert not s.is_final(root)


def test_lattice_commuting_steps_meet_in_one_node():
    s = Space(VIS)
    base = s.child(s.root(), Step(REDUCE, size=VIS.reduce_sizes[0]))[0]
    h = {str(d.size): d.hash for d in base.frontier}
    hw = s.child(s.child(base, Step(SHIFT, (h["H"],)))[0], Step(SHIFT, (h["W"],)))[0]
    wh = s.child(s.child(base, Step(SHIFT, (h["W"],)))[0], Step(SHIFT, (h["H"],)))[0]
    assert hw.hash == wh.hash and hw.prims != wh.prims  # different paths, one node


def _without(name: str) -> tuple:
    return tuple(r for r in RULES if r.name != name)


def test_distance_counts_only_the_reduces_that_can_still_come():
    """Under reduce_order a Reduce of C_out/(g*s) at the root leaves only larger Reduce sizes, none with C_in: the
    input's C_in can never appear.  Without that rule a later Reduce of C_in could still supply it."""
    size = {str(x): x for x in VIS.reduce_sizes}["C_out/(g*s)"]
    on, off = Space(VIS), Space(VIS, _without("reduce_order"))
    child, why = on.child(on.root(), Step(REDUCE, size=size))
    assert child is None and why.code is Reason.DISTANCE and why.distance == UNREACHABLE
    assert "unreachable" in str(why)
    assert off.child(off.root(), Step(REDUCE, size=size))[0] is not None


def test_a_raw_reduce_is_not_closed_by_the_owed_contraction():
    """[C_out, H, W, C_in, g*s(Reduce)] with no weight: under no_expand_of_reduce the g*s sum can be neither Expanded
    nor closed by an outer Share, so closing it and C_out takes two steps; without the rule one Contraction that
    closes both (and adds the owed weight) would do."""
    size = {str(x): x for x in VIS.reduce_sizes}
    dists = []
    for space in (Space(VIS), Space(VIS, _without("no_expand_of_reduce"))):
        node = space.child(space.root(), Step(REDUCE, size=size["C_in"]))[0]
        node = space.child(node, Step(REDUCE, size=size["g*s"]))[0]
        dists.append(space.distance(node))
    assert dists == [2, 1]
    assert _closing(free=1, raw=1, surplus=0, weights_left=1, owe_weight=True) == 2
    assert _closing(free=1, raw=0, surplus=0, weights_left=1, owe_weight=True) == 1
    assert _closing(free=4, raw=4, surplus=0, weights_left=2, owe_weight=False) == 2   # inner, then outer Share
    assert _closing(free=4, raw=4, surplus=0, weights_left=1, owe_weight=False) == 3   # two Splits, one close


def test_closing_contractions_list_every_contraction_that_ends_in_the_input():
    """One step before the depth limit the sampler lists these instead of drawing Contractions at random: each
    leaves exactly the input's sizes, and every such Contraction among all of them is listed."""
    s, rng = Space(TRF), np.random.default_rng(3)
    checked = 0
    for _ in range(200):
        node = s.root()
        while node.depth < 4:
            steps = [st for k in STEP_KINDS if k != CONTRACT for st in s.steps(node, k)]
            if not steps:
                break
            node = s.apply(node, steps[int(rng.integers(len(steps)))])
        if len(node.frontier) < 2 or node.weights:
            continue
        listed = set(s.closing_contractions(node))
        for step in s.steps(node, CONTRACT):
            child = s.apply(node, step)
            ends = sorted(str(d.size) for d in child.frontier) == s._input_sizes and not any(
                d.discarding for d in child.frontier)
            assert (step in listed) == ends, step
            checked += ends
    assert checked > 0


def _paths(space: Space, n: int, seed: int):
    samples = random_samples(space, seed)
    return [next(samples) for _ in range(n)]


BOTH = [pytest.param(VIS, id="vision"), pytest.param(TRF, id="transformer")]


@pytest.mark.parametrize("spec", BOTH)
def test_distance_is_a_lower_bound_along_real_paths(spec):
    s = Space(spec)
    for sample in _paths(s, 4, 1):
        node = s.root()
        for i, step in enumerate(sample.path):
            assert s.distance(node) <= len(sample.path) - i, f"distance overestimates at step {i} of {sample.path}"
            node = s.child(node, step)[0]
        assert s.distance(node) == 0 and s.is_final(node)


@pytest.mark.parametrize("rules", [RULES, ()], ids=["rules", "no-rules"])
@pytest.mark.parametrize("spec", [VIS, TRF], ids=["vision", "transformer"])
def test_step_distance_equals_the_built_childs(spec, rules):
    """Space.child judges a child by step_distance, before building it: it must equal the built child's distance
    for every kind of step (Contractions drawn at random; Strides through a spec that allows them)."""
    if spec is VIS:
        spec = spec.with_limits(strides=["s"])
    s, rng = Space(spec, rules), np.random.default_rng(4)
    for _ in range(12):
        node = s.root()
        while node.depth < spec.max_depth:
            steps = [st for k in STEP_KINDS if k != CONTRACT for st in s.steps(node, k)]
            steps += [st for st in (s.random_contraction(node, rng) for _ in range(8)) if st is not None]
            for step in steps:
                child = s.apply(node, step)
                args = s._can_reduce(child.only_reduces), s.reduce_floor(step), s._raw
                assert step_distance(spec, node, step, *args) == distance(spec, child, *args), step
            if not steps:
                break
            node = s.apply(node, steps[int(rng.integers(len(steps)))])


@pytest.mark.parametrize("spec", BOTH)
def test_random_finals_are_valid_distinct_operators(spec):
    s = Space(spec)
    samples = _paths(s, 5, 2)
    ops = [x.final.operator for x in samples]
    assert len({op.hash for op in ops}) == len(ops)
    for op, x in zip(ops, samples):
        Operator.from_json(op.dumps())  # validates again
        assert len(x.path) <= spec.max_depth
        for name, b in spec.layer_bindings.items():
            shapes = op.shapes(b, layer=name)
            assert shapes["X"] == tuple(d.size.value(b) for d in spec.input)
            assert shapes["Y"] == tuple(d.size.value(b) for d in spec.output)
        (flo, fhi), (plo, phi) = spec.flops, spec.params
        for f, p, (rf, rp) in zip(x.final.flops, x.final.params, s.reference_figures):
            assert flo * rf <= f <= fhi * rf and plo * rp <= p <= phi * rp


def test_random_finals_lower_and_match_numpy():
    from syno_tvm.lower.build import compile_forward

    s = Space(TRF)
    rng = np.random.default_rng(5)
    for sample in _paths(s, 3, 3):
        op, b = sample.final.operator, TRF.probe_binding
        arrays = [rng.uniform(-1, 1, sh).astype(np.float32) for k, sh in op.shapes(b).items() if k != "Y"]
        got = compile_forward(op, b)(*arrays)
        ref = evaluate(op, b, arrays)
        assert np.abs(got - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


def test_sampler_counts_dead_ends():
    sampler, rng = PythonSampler(Space(TRF)), np.random.default_rng(0)
    for _ in range(6):
        sampler.random_final(rng)
    st = sampler.stats
    assert st.finals == 6 and st.nodes > st.dead > 0 and 0 < st.dead_end_ratio < 1
    # a dead end is an entry with nothing left to try and no final found below it
    dead = [e for e in sampler.entries.values() if e.exhausted and not e.has_final]
    assert dead and all(not e.pending and not e.final for e in dead)


def test_fingerprint_sees_through_weight_layout_but_not_semantics():
    from syno_tvm.ir.assembler import Assembler
    from syno_tvm.ir.library import named

    b = VIS.probe_binding
    a = Assembler(k=3)
    n, c, hh, w = a.input("N", "C_in", "H", "W")
    hh, kh = a.unfold(hh, "k")
    w, kw = a.unfold(w, "k")
    o = a.share(a.expand("C_out"), 1)
    c, kh, kw = a.share(c, 1), a.share(kh, 1), a.share(kw, 1)
    a.sum(c, kh, kw)
    permuted = a.build([n, o, hh, w], "conv_permuted", weight_order={1: [3, 1, 2, 0]})
    conv = named("conv2d")
    assert permuted.hash != conv.hash
    assert fingerprint(permuted, b) == fingerprint(conv, b)
    assert fingerprint(named("pool_conv"), b) != fingerprint(conv, b)
    assert fingerprint(named("shift_conv"), b) != fingerprint(named("pointwise"), b)


def test_spec_errors_are_one_line():
    with pytest.raises(SynoError, match="neither a built-in spec"):
        load_spec("no-such-spec")
    with pytest.raises(SynoError, match="missing key"):
        Spec.from_json({"input": "[N, C_in, H]"})
    with pytest.raises(SynoError, match="unknown spec key"):
        Spec.from_json({**VISION, "depht": 3})
    with pytest.raises(SynoError, match="needs a value for variable 'W'"):
        Spec.from_json({**VISION, "probe": {"N": 1, "C_in": 10, "C_out": 20, "H": 6}})


def test_depth_first_enumerates_a_small_space_completely():
    """Depth-first order yields every final once and ends: on the transformer spec at depth 4 its set contains every
    final that random descents find before they report the space exhausted, and each is within the limits."""
    from syno_tvm.synth.depth_first import Counts, depth_first

    spec = TRF.with_limits(depth=4)
    counts = Counts()
    dfs = list(depth_first(Space(spec), counts))
    hashes = [x.final.operator.hash for x in dfs]
    assert len(hashes) == len(set(hashes)) == counts.finals > 100 and counts.nodes > counts.finals
    assert all(len(x.path) <= 4 and x.final.flops and x.final.params for x in dfs)
    space, drawn = Space(spec), set()
    samples = random_samples(space, 0)
    with pytest.raises(SynoError, match="no further final"):
        for _ in range(len(hashes) + 1):
            drawn.add(next(samples).final.operator.hash)
    assert drawn and drawn <= set(hashes)
    node = Space(spec).root()  # a yielded path replays to its operator
    for step in dfs[-1].path:
        node = space.child(node, step)[0]
    assert space.finalize(node).operator.hash == hashes[-1]


def test_depth_first_finds_a_located_operator():
    from syno_tvm.synth.depth_first import depth_first
    from syno_tvm.ir.library import named

    spec = VIS.with_limits(depth=3)
    loc = locate(Space(spec), named("pointwise"))
    assert loc.found
    assert loc.operator.hash in {x.final.operator.hash for x in depth_first(Space(spec))}
