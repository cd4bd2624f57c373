"""The native search (``syno_tvm._synth_native``, ``native/synth``) is the Python space of ``syno_tvm.synth``.

The native engine exists only for speed (syno_tvm/synth/engine.py); the Python space stays the reference.  So these
tests never check the native engine against expected values of their own: they check it against Python, piece by
piece (the digest, the rule and step-kind tables, the FLOPs plan) and then as a whole: every native final replays
through :meth:`Space.child` to the same operator and the same limits, and at about three thousand nodes (around
sampled paths, and every node of two small spaces) every candidate step gets the same verdict, reason and shape
distance.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import Counter
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from syno_tvm import _synth_native
from syno_tvm.errors import SynoError
from syno_tvm.ir.graph import Operator
from syno_tvm.ir.library import LIBRARY
from syno_tvm.ir.primitives import PRIMITIVES
from syno_tvm.ir.sizes import Size
from syno_tvm.lower.order import plan
from syno_tvm.synth.canon import RULE_NAMES, RULES
from syno_tvm.synth.engine import NativeEngine, spec_data
from syno_tvm.synth.generate import random_samples
from syno_tvm.synth.sampler import NativeSampler, PythonSampler, create
from syno_tvm.synth.space import Space
from syno_tvm.synth.spec import load_spec
from syno_tvm.synth.state import CONTRACT, Node, Step
from syno_tvm.synth.steps import STEP_KINDS, STEPS

SPECS = ("vision", "transformer")
RULESETS = {"rules": RULES, "norules": ()}
CASES = [(s, r) for s in SPECS for r in RULESETS]
IDS = [f"{s}-{r}" for s, r in CASES]


# ---- helpers ----------------------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def space(spec: str, rules: str) -> Space:
    """One Space per case, shared by the tests: it caches finals per node hash, which the replays reuse."""
    return Space(load_spec(spec), RULESETS[rules])


@lru_cache(maxsize=None)
def drawn(spec: str, rules: str, n: int = 200, seed: int = 0) -> tuple[NativeSampler, tuple]:
    """``n`` native finals of a case (one engine per case, so several tests read the same records)."""
    sampler = NativeSampler(space(spec, rules), seed)
    return sampler, tuple(sampler.draw(n, 30))


@lru_cache(maxsize=None)
def small(spec: str, depth: int) -> tuple[Space, tuple[tuple[Step, ...], ...]]:
    """A space small enough to enumerate (the spec at a lower depth) and one path to each of its nodes."""
    sp = Space(load_spec(spec).with_limits(depth=depth))
    stack, seen, paths = [(sp.root(), ())], set(), []
    while stack:
        node, path = stack.pop()
        if node.hash not in seen:
            seen.add(node.hash)
            paths.append(path)
            stack += [(child, path + (step,)) for step, child in sp.children(node)]
    return sp, tuple(paths)


def size_triple(sp: Space, size: Size | None):
    """A Size as the engine takes it: (numerator, denominator, powers in sorted variable-name order)."""
    if size is None:
        return None
    powers = dict(size.powers)
    return size.factor.numerator, size.factor.denominator, [powers.get(n, 0) for n in sorted(sp.spec.variables.names())]


def step_in(sp: Space, step: Step) -> tuple:
    """A Python Step as the engine's step tuple."""
    return step.kind, list(step.dims), size_triple(sp, step.size), list(step.outer)


def py_key(step: Step) -> tuple:
    """A comparable key of a Python step: the engine reports sizes by text, so compare by text."""
    return step.kind, tuple(step.dims), None if step.size is None else str(step.size), tuple(step.outer)


def native_key(t: tuple) -> tuple:
    kind, dims, size, outer = t
    return kind, tuple(dims), size, tuple(outer)


def replay(sp: Space, path) -> Node:
    """The node at the end of ``path`` in the Python space; every step must be accepted there."""
    node = sp.root()
    for i, step in enumerate(path):
        child, why = sp.child(node, step)
        assert child is not None, f"Python rejects step {i} {step} of a native path: {why}"
        node = child
    return node


def report(sampler: NativeSampler, path, extra=()) -> dict:
    sp = sampler.space
    return sampler.engine.report([step_in(sp, s) for s in path], [step_in(sp, s) for s in extra])


# ---- pieces: digest, rule and step tables, FLOPs plan ----------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=400), st.integers(0, 400).map(lambda n: "ab" * (n // 2) + "c" * (n % 2)),
                 st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
@example("")
@example("x" * 128)   # exactly one block: BLAKE2b must not compress the last full block early
@example("é" * 64)    # 128 bytes from 64 characters: the block is counted in bytes
@example("x" * 127)
@example("x" * 129)
@example("y" * 256)
@example("y" * 257)
@example("z" * 1000)
def test_blake2b_matches_hashlib(text):
    """Node and dim hashes are BLAKE2b digests of texts; a hash-ordered rule picks another canonical form if one
    byte of one digest differs, so the native digest must be hashlib's, block boundaries and UTF-8 included."""
    assert _synth_native.blake2b64_hex(text) == hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def test_rule_table_is_the_python_one():
    """Engines are built with rule names; a name missing or out of order would silently judge with other rules, and
    a rule about other kinds than Python's would be checked on other steps."""
    assert tuple(_synth_native.RULE_NAMES) == RULE_NAMES
    native = _synth_native.rule_table()
    assert [name for name, _ in native] == list(RULE_NAMES)
    for (name, kinds), rule in zip(native, RULES):
        assert kinds == tuple(sorted(rule.kinds, key=STEP_KINDS.index)), name


def test_step_table_is_the_python_one():
    """The native step kinds are steps.STEPS field by field: the name (steps cross the boundary by name), the code
    (the table position: the order kinds are offered in, so the finals a seed draws), the primitive a step creates,
    the frontier dims it takes (the primitive's bottoms; a Contraction any number) and the origins of the dims it
    creates, in order (what the rules read).  The origins the engine knows are the output's and the table's."""
    native = _synth_native.step_table()
    assert [row["name"] for row in native] == list(STEP_KINDS)
    for code, (row, kind) in enumerate(zip(native, STEPS.values())):
        dims = -1 if kind.name == CONTRACT else PRIMITIVES[kind.primitive].n_bottoms
        assert row == {"name": kind.name, "code": code, "primitive": kind.primitive, "dims": dims,
                       "origins": kind.origins}, kind.name
    made = [o for kind in STEPS.values() for o in kind.origins]
    assert tuple(_synth_native.ORIGINS) == ("out", *dict.fromkeys(made))


def test_spec_data_refuses_missing_unknown_and_mistyped_fields():
    """The engine is built from a SpecData whose every field is named: a field left out, misspelt or of the wrong
    type is a TypeError when the spec is built, not a default the search silently runs with; fields that do not fit
    together (a size over other variables than the spec's) are a ValueError, not a read past a list."""
    sp = space("vision", "rules")
    data = spec_data(sp)
    assert data.names == sorted(sp.spec.variables.names()) and data.max_depth == sp.spec.max_depth
    fields = {k: getattr(data, k) for k in dir(data) if not k.startswith("_")}
    _synth_native.SpecData(**fields)  # what it holds builds it again
    with pytest.raises(TypeError, match="missing field 'probe'"):
        _synth_native.SpecData(**{k: v for k, v in fields.items() if k != "probe"})
    with pytest.raises(TypeError, match="unknown field 'max_dpeth'"):
        _synth_native.SpecData(**fields, max_dpeth=10)
    with pytest.raises(TypeError, match="field 'max_depth' takes no float"):
        _synth_native.SpecData(**dict(fields, max_depth=10.0))
    with pytest.raises(ValueError, match="a power per variable"):
        _synth_native.SpecData(**dict(fields, reduce_sizes=[(1, 1, [1])]))


def _native_flops(op: Operator, bindings) -> list[int]:
    prims = [(p.kind, list(p.tops), list(p.bottoms)) for p in op.prims]
    return _synth_native.plan_flops(len(op.sizes), prims, [list(t) for t in op.tensors], list(op.output),
                                    [list(op.bind(b)) for b in bindings])


def _spec_bindings() -> list[dict[str, int]]:
    out = []
    for name in SPECS:
        spec = load_spec(name)
        for b in spec.layer_bindings.values():
            out += [dict(b), spec.reference_binding(b)]
        out.append(dict(spec.probe_binding))
    return out


def _binds(op: Operator, b) -> bool:
    try:
        op.bind(b)
    except (SynoError, KeyError, ZeroDivisionError):
        return False
    return True


@pytest.mark.parametrize("name", list(LIBRARY))
def test_plan_flops_library(name):
    """The FLOPs limit decides which finals exist: the native plan must cost every library operator as Python's
    staging search does, at its example binding and at every spec binding it binds under."""
    op = LIBRARY[name].build()
    bindings = [b for b in [dict(LIBRARY[name].example)] + _spec_bindings() if _binds(op, b)]
    assert bindings
    assert _native_flops(op, bindings) == [plan(op, b).flops for b in bindings]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(list(LIBRARY)), st.data())
def test_plan_flops_library_scaled(name, data):
    """Staging choices depend on the relative sizes: scaling each primary of the example by its own factor keeps
    every size integral (the example is divisible) and changes which staging is cheapest."""
    op, example_b = LIBRARY[name].build(), dict(LIBRARY[name].example)
    b = {k: v * data.draw(st.integers(1, 6), label=k) for k, v in example_b.items()}
    assume(_binds(op, b))
    assert _native_flops(op, [b]) == [plan(op, b).flops]


@pytest.mark.parametrize("spec", SPECS)
def test_plan_flops_random_finals(spec):
    """Synthesized operators are what the limit is applied to: 100 native finals per spec, at every layer binding
    and the probe."""
    sampler, records = drawn(spec, "rules", 100, 11)
    sp = sampler.space
    bindings = list(sp.spec.layer_bindings.values()) + [sp.spec.probe_binding]
    assert len(records) == 100
    for rec in records:
        op = sampler.sample(rec).final.operator
        assert _native_flops(op, bindings) == [plan(op, b).flops for b in bindings], op.dumps()


# ---- replay: every native final is a Python final -----------------------------------------------------------------

@pytest.mark.parametrize("spec,rules", CASES, ids=IDS)
def test_native_finals_replay_in_python(spec, rules):
    """A native path is a path of the Python space (every step canonical and within the distance bound) and ends at
    a node that Python finalizes to the same operator with the same FLOPs and params per layer."""
    sampler, records = drawn(spec, rules)
    sp = sampler.space
    assert len(records) >= 100
    for rec in records:
        sample = sampler.sample(rec)
        assert len(sample.path) <= sp.spec.max_depth
        node = replay(sp, sample.path)
        assert node.hash == rec[1][0]
        final = sp.finalize(node)
        assert final.operator is not None, f"native final not final in Python: {final.why}"
        assert final.operator.hash == sample.final.operator.hash
        assert (final.flops, final.params) == (sample.final.flops, sample.final.params)
    assert len({r[1][0] for r in records}) == len(records), "the sampler returned a node twice"
    assert len({sampler.sample(r).final.operator.hash for r in records}) == len(records), "an operator twice"
    assert sampler.stats.finals == len(records)


def test_native_sampler_is_seeded():
    """The engine's stream is its seed's: equal seeds draw equal records (reproducible searches), others differ."""
    sp = space("transformer", "rules")
    a, b, c = (NativeSampler(sp, seed).draw(20, 30) for seed in (5, 5, 6))
    assert a == b and a != c


# ---- judgement parity: every candidate step, node by node ------------------------------------------------------

def _python_paths(sp: Space, n: int, seed: int) -> list[tuple[Step, ...]]:
    sampler, rng = PythonSampler(sp), np.random.default_rng(seed)
    return [sampler.random_final(rng).path for _ in range(n)]


def _extra_contractions(sp: Space, node: Node) -> list[Step]:
    """Contractions to judge beyond the closing ones: ten random draws (what the sampler tries) and, where there
    are few, every Contraction (so the rules about them meet inner/outer mixes the draws miss)."""
    out = [s for i in range(10) if (s := sp.random_contraction(node, random.Random(i))) is not None]
    every = list(itertools.islice(sp.steps(node, CONTRACT), 41))
    return out + (every if len(every) <= 40 else [])


def _compare_node(sampler: NativeSampler, path: tuple[Step, ...]) -> list[Step]:
    """Compare the native report at the end of ``path`` with Python; returns the accepted steps (for side nodes)."""
    sp = sampler.space
    node = replay(sp, path)
    extra = _extra_contractions(sp, node)
    rep = report(sampler, path, extra)
    where = f"at the end of path {[str(s) for s in path]}"
    assert rep["hash"] == node.hash, where
    assert rep["distance"] == sp.distance(node), where

    final = sp.finalize(node)
    if final.operator is None:
        assert rep["final"] == final.why, where
    else:
        assert isinstance(rep["final"], tuple) and rep["final"][0] == node.hash, (where, rep["final"])
        assert (tuple(rep["final"][6]), tuple(rep["final"][7])) == (final.flops, final.params), where
        assert sampler.sample(((), rep["final"])).final.operator.hash == final.operator.hash, where

    closing = sp.closing_contractions(node)
    assert Counter(native_key(t) for t in rep["closing"]) == Counter(py_key(s) for s in closing), where

    generated = [s for k in STEP_KINDS if k != CONTRACT for s in sp.steps(node, k)] + closing
    judged = rep["steps"]
    n_gen = len(judged) - len(extra)
    assert Counter(native_key(t[0]) for t in judged[:n_gen]) == Counter(py_key(s) for s in generated), where
    assert [native_key(t[0]) for t in judged[n_gen:]] == [py_key(s) for s in extra], where

    by_key = {py_key(s): s for s in generated + extra}
    mismatches, accepted = [], []
    for out, child_hash, why, dist in judged:
        step = by_key[native_key(out)]
        child, verdict = sp.judge(node, step)
        py = (None if child is None else child.hash, str(verdict), verdict.distance)
        if py != (child_hash, why, dist):
            mismatches.append(f"{step}: native {(child_hash, why, dist)} python {py}")
        if child is not None:
            accepted.append(step)
    assert not mismatches, where + "\n" + "\n".join(mismatches[:10])
    return accepted


@pytest.mark.parametrize("spec,rules", CASES, ids=IDS)
def test_native_judges_every_step_as_python(spec, rules):
    """Same candidates, same verdict, same reason, same distance: at every prefix of 20 native and 2 Python sampler
    paths (the nodes a descent visits), and along a short random walk off each prefix (nodes where no final was
    found: dead ends are where a wrong distance or rule would hide)."""
    sampler, records = drawn(spec, rules)
    sp = sampler.space
    paths = [sampler.sample(r).path for r in records[:20]] + _python_paths(sp, 2, 3)
    seen, rng, nodes = set(), random.Random(0), 0

    def visit(path: tuple[Step, ...]) -> list[Step] | None:
        nonlocal nodes
        key = tuple(py_key(s) for s in path[-1:]) + (replay(sp, path).hash,)  # the last step matters to rules
        if key in seen:
            return None
        seen.add(key)
        nodes += 1
        return _compare_node(sampler, path)

    for full in paths:
        for i in range(len(full) + 1):
            accepted = visit(tuple(full[:i]))
            walk = tuple(full[:i])
            for _ in range(2):
                off = [s for s in accepted or () if len(walk) == len(full) or s != full[len(walk)]]
                if not off:
                    break
                walk += (rng.choice(off),)
                accepted = visit(walk)
    assert nodes >= 200


@pytest.mark.parametrize("spec,depth", [("vision", 4), ("transformer", 4)])
def test_native_judges_a_small_space_exhaustively(spec, depth):
    """Every node of a small space, not only those near sampled paths: nodes over the FLOPs or params limit, nodes
    without a weight, and every dead end are judged as in Python."""
    sp, paths = small(spec, depth)
    sampler = NativeSampler(sp, 0)
    for path in paths:
        _compare_node(sampler, path)
    assert len(paths) > 400


def _commuted_final(sampler: NativeSampler, records) -> tuple[tuple[Step, ...], tuple[Step, ...]]:
    """A native final path ending in a Contraction and another step, and the path with those two swapped, which
    reaches the same node (the lattice) with the Share prims at other positions."""
    sp = sampler.space
    for rec in records:
        path = sampler.sample(rec).path
        a, b = path[-2:]
        if (a.kind == CONTRACT) == (b.kind == CONTRACT):
            continue
        base = replay(sp, path[:-2])
        if not set(b.dims) <= set(base.by_hash):
            continue  # b works on a dim that a creates: they do not commute
        mid = sp.child(base, b)[0]
        end = sp.child(mid, a)[0] if mid is not None else None
        if end is not None and end.hash == rec[1][0]:
            return path, path[:-2] + (b, a)
    pytest.fail("no native final path whose last two steps commute")


def test_report_final_after_another_path_to_the_node():
    """Two orders of commuting steps reach one node (one hash) with the prims in two orders and other dim ids; the
    report after either path is Python's operator, whichever path the engine saw first (a cached Final carries the
    node it was made from, so its dim ids never meet another node's prims)."""
    sampler, records = drawn("vision", "rules")
    sp = sampler.space
    path, alt = _commuted_final(sampler, records)
    expected = sp.finalize(replay(sp, path)).operator.hash
    fresh = NativeSampler(sp, 0)
    for p in (alt, path):
        assert fresh.sample(((), report(fresh, p)["final"])).final.operator.hash == expected


@pytest.mark.parametrize("spec", SPECS)
def test_final_reason_texts(spec):
    """The report's reason for a node over a limit is Python's text, not only the same limit and layer."""
    sp, paths = small(spec, 4)
    sampler = NativeSampler(sp, 0)
    over = [(p, why) for p in paths if (why := sp.finalize(replay(sp, p)).why).startswith(("limit flops",
                                                                                             "limit params"))]
    assert over
    for path, why in over:
        assert report(sampler, path)["final"] == why


# ---- failures: rejected paths, exhausted spaces -------------------------------------------------------------------

def _rejected_paths(sp: Space, full: tuple[Step, ...]) -> dict[str, tuple[Step, ...]]:
    """Per reason code (RULE, DISTANCE, DEPTH), a prefix of ``full`` plus one step Python rejects
    for that reason."""
    out = {}
    for i in range(len(full) + 1):
        node = replay(sp, full[:i])
        candidates = [s for k in STEP_KINDS if k != CONTRACT for s in sp.steps(node, k)]
        for step in candidates + sp.closing_contractions(node) + _extra_contractions(sp, node):
            child, why = sp.child(node, step)
            if child is None:
                out.setdefault(why.code.name, full[:i] + (step,))
    return out


def test_report_refuses_a_path_the_space_rejects():
    """A path is replayed through the judge: a step rejected by a rule, by the shape distance or past the depth
    limit must raise rather than build a node the space does not have (the report would then judge steps at a
    node that no descent can reach)."""
    sampler, records = drawn("vision", "rules")
    full = next(sampler.sample(r).path for r in records if len(r[0]) == sampler.space.spec.max_depth)
    rejected = _rejected_paths(sampler.space, full)
    assert set(rejected) == {"RULE", "DISTANCE", "DEPTH"}
    for reason, path in rejected.items():
        try:
            report(sampler, path)
        except (ValueError, RuntimeError):
            continue
        pytest.fail(f"the engine replayed a path whose last step {path[-1]} the space rejects ({reason})")
    assert report(sampler, full)["hash"] == replay(sampler.space, full).hash  # the accepted path itself is fine


@pytest.mark.parametrize("spec,depth", [("vision", 4), ("transformer", 4)])
def test_native_sampler_exhausts_a_small_space(spec, depth):
    """In a space small enough to enumerate, the sampler returns distinct finals, all of them finals of the Python
    space, and then says the space is exhausted (SynoError) instead of repeating one."""
    sp, paths = small(spec, depth)
    every = {f.operator.hash for p in paths if (f := sp.finalize(replay(sp, p))).operator is not None}
    sampler = NativeSampler(sp, 1)
    ops, nodes = [], []
    with pytest.raises(SynoError, match="exhausted"):
        for _ in range(len(every) + 1):
            sample = sampler.random_final()
            ops.append(sample.final.operator.hash)
            nodes.append(replay(sp, sample.path).hash)
    assert len(ops) >= 20 and len(set(ops)) == len(ops) and len(set(nodes)) == len(nodes)
    assert set(ops) <= every
    assert sampler.draw(5, 1) == []


def test_space_falls_back_to_the_python_sampler_beyond_native_limits():
    """The native engine has fixed capacities (8 Shares per Contraction); a spec beyond them is refused with one
    line, and the "auto" sampler is then the Python one instead of failing."""
    spec = load_spec("transformer").with_limits(shares=9)
    with pytest.raises(ValueError, match="at most 8 Shares"):
        NativeSampler(Space(spec), 0)
    sp = Space(spec)
    assert isinstance(create("auto", sp, 0), PythonSampler)
    sample = next(random_samples(sp, 0))
    node = sp.root()
    for step in sample.path:
        node = sp.child(node, step)[0]
    assert sp.finalize(node).operator.hash == sample.final.operator.hash


# ---- node expansion (the tree search's step) ----------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["vision", "transformer"])
def test_expansion_is_the_python_children_with_their_verdicts(spec):
    """At every prefix of a native path, the engine's expansion is Python's candidate list (every kind, all
    Contractions, in :meth:`Space.steps` order) with Python's verdict and child hash for each; by hash it is the
    same as by path."""
    sampler, records = drawn(spec, "rules", n=3)
    sp, engine = sampler.space, NativeEngine(sampler.space, 0)
    path = sampler.sample(records[-1]).path
    node = sp.root()
    at = engine.root_hash()
    assert at == node.hash
    for i in range(len(path) + 1):
        expected = []
        for kind in STEP_KINDS:
            for step in sp.steps(node, kind):
                child, verdict = sp.judge(node, step)
                expected.append((step, None if child is None else child.hash, verdict))
        by_path = engine.expand(path[:i])
        assert [(c.step, c.hash, c.verdict) for c in by_path] == expected, f"prefix {i}"
        assert engine.expand(at) == by_path
        if i < len(path):
            node = sp.child(node, path[i])[0]
            at = next(c.hash for c in by_path if c.step == path[i])
            assert at == node.hash
    assert engine.final(at).operator.hash == sp.finalize(node).operator.hash
    engine.forget()
    with pytest.raises(ValueError, match="earlier expansion"):
        engine.expand(at)


def test_unknown_step_kind_is_refused():
    """A step whose kind the engine does not know is an error, not silently a Reduce (it once was)."""
    sampler, records = drawn("vision", "rules", n=1)
    sp = sampler.space
    first = step_in(sp, sampler.sample(records[0]).path[0])
    assert report(sampler, [sampler.sample(records[0]).path[0]])  # the real step is accepted
    with pytest.raises(ValueError, match="unknown step kind 'nosuch'"):
        sampler.engine.report([("nosuch",) + tuple(first[1:])], [])
