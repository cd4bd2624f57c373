"""Differential fuzzing: random valid operators (tests/randomops.py) lowered to TVM vs the numpy reference.

Default suite: seeds 0..N_FORWARD-1 forward + JSON round trip + FLOPs plan sanity, the first N_BACKWARD seeds also
every backward kernel.  ``pytest -m slow tests/test_fuzz.py`` runs 10,000 more operators in chunks.

A failure message names the seed and the operator JSON; reproduce with
``random_operator(np.random.default_rng(seed))``.
"""

from __future__ import annotations

import os
import sys
from collections import Counter

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from randomops import KINDS, random_arrays, random_operator  # noqa: E402

from syno_tvm.ir.graph import Operator  # noqa: E402
from syno_tvm.ir.reference import evaluate, gradient  # noqa: E402
from syno_tvm.lower.build import compile_backward, compile_forward  # noqa: E402
from syno_tvm.lower.order import plan  # noqa: E402

TOL = 1e-4
N_FORWARD = 300
N_BACKWARD = 60
SLOW_TOTAL = 10_000
SLOW_CHUNK = 250
SLOW_FIRST_SEED = 100_000  # disjoint from the default suite's seeds


def _rel(got: np.ndarray, ref: np.ndarray) -> float:
    got = np.asarray(got, np.float64)
    assert got.shape == ref.shape, f"shape {got.shape} != reference shape {ref.shape}"
    return float(np.abs(got - ref).max(initial=0.0)) / max(1.0, float(np.abs(ref).max(initial=0.0)))


def check_operator(seed: int, backward: bool) -> str | None:
    """None if operator ``seed`` passes every check, else a message with the seed and the operator JSON."""
    op, binding = random_operator(np.random.default_rng(seed))
    problems: list[str] = []
    try:
        back = Operator.from_json(op.dumps())
        if back != op or back.hash != op.hash:
            problems.append(f"JSON round trip changed the operator (hash {op.hash} -> {back.hash})")
        p = plan(op, binding)
        if p.flops > p.naive_flops:
            problems.append(f"plan.flops {p.flops} > naive_flops {p.naive_flops}")
        rng = np.random.default_rng(seed + 1)
        arrays = random_arrays(op, binding, rng)
        ref = evaluate(op, binding, arrays)
        err = _rel(compile_forward(op, binding)(*arrays), ref)
        if not err <= TOL:
            problems.append(f"forward relative error {err:.3e} > {TOL}")
        if backward:
            dy = rng.uniform(-1, 1, ref.shape).astype(np.float32)
            for t in range(len(arrays)):
                want = gradient(op, binding, arrays, dy, t)
                err = _rel(compile_backward(op, t, binding)(dy, *arrays), want)
                if not err <= TOL:
                    name = "X" if t == 0 else f"W{t}"
                    problems.append(f"backward d{name} relative error {err:.3e} > {TOL}")
    except Exception as e:  # noqa: BLE001 - any exception on a valid operator is a finding
        problems.append(f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}")
    if not problems:
        return None
    return f"seed {seed} binding {binding}: {'; '.join(problems)}\n  operator JSON: {op.dumps()}"


def test_generator_covers_every_primitive():
    seen: Counter = Counter()
    for seed in range(200):
        op, _ = random_operator(np.random.default_rng(seed))
        seen.update(p.kind for p in op.prims)
    missing = [k for k in KINDS if not seen[k]]
    assert not missing, f"200 seeds never used {missing}: {dict(seen)}"
    assert set(seen) <= set(KINDS)


def test_generator_is_deterministic_and_within_bounds():
    from randomops import MAX_SPACE, iteration_space

    for seed in range(50):
        op1, b1 = random_operator(np.random.default_rng(seed))
        op2, b2 = random_operator(np.random.default_rng(seed))
        assert op1 == op2 and b1 == b2 and op1.hash == op2.hash
        assert iteration_space(op1, b1) <= MAX_SPACE
        assert op1.output, "an operator needs at least one output dim"
        assert [len(w) >= 1 for w in op1.weights] == [True] * len(op1.weights)


@pytest.mark.parametrize("seed", range(N_FORWARD))
def test_random_operator(seed):
    failure = check_operator(seed, backward=seed < N_BACKWARD)
    assert failure is None, failure


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(SLOW_TOTAL // SLOW_CHUNK))
def test_random_operators_slow(chunk):
    seeds = range(SLOW_FIRST_SEED + chunk * SLOW_CHUNK, SLOW_FIRST_SEED + (chunk + 1) * SLOW_CHUNK)
    failures = [f for s in seeds if (f := check_operator(s, backward=s % 10 == 0)) is not None]
    assert not failures, f"{len(failures)} of {SLOW_CHUNK} operators failed:\n" + "\n".join(failures)
