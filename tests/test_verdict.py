"""Verdicts are codes: the samplers' statistics and locate branch on fields; the text is for people only."""

from __future__ import annotations

import numpy as np

from syno_tvm.synth.distance import UNREACHABLE
from syno_tvm.synth.sampler import PythonSampler
from syno_tvm.synth.space import Space
from syno_tvm.synth.spec import VISION, Spec
from syno_tvm.synth.verdict import Reason, Verdict, accepted


def test_texts_and_keys():
    assert str(Verdict(Reason.DEPTH, bound=7)) == "limit depth 7"
    assert str(Verdict(Reason.RULE, rule="no_double_shift")) == "rule no_double_shift"
    assert str(Verdict(Reason.DISTANCE, distance=3, bound=2)) == "shape distance 3 > depth left 2"
    assert str(Verdict(Reason.DISTANCE, distance=UNREACHABLE, bound=2)) == "shape distance unreachable > depth left 2"
    assert Verdict(Reason.RULE, rule="x").key == "rule x"
    assert Verdict(Reason.DISTANCE, distance=9).key == "shape distance"
    assert accepted(4).ok and accepted(4).distance == 4 and not Verdict(Reason.DEPTH).ok


def test_sampler_counts_rejections_by_code():
    """Every key of the Python sampler's statistics is a verdict key, and each rule key names a rule of the table."""
    space = Space(Spec.from_json(VISION))
    sampler = PythonSampler(space)
    rng = np.random.default_rng(0)
    for _ in range(3):
        sampler.random_final(rng)
    keys = set(sampler.stats.rejected)
    names = {r.name for r in space.rules}
    assert keys and keys <= {"limit depth", "shape distance"} | {f"rule {n}" for n in names}
    assert any(k.startswith("rule ") for k in keys)
