"""The expensive evaluators through the real search: measured latency (untuned build in the default suite, tuned
in the slow one) in a 2-process pool, the per-layer plan from the latency metrics, and proxy accuracy (the tiny
recipe: small-cnn on scikit-learn digits)."""

from __future__ import annotations

import pytest

from syno_tvm.search.candidate import OK
from syno_tvm.search.driver import SearchConfig, search
from syno_tvm.search.per_layer import plan_per_layer
from syno_tvm.search.results import load
from syno_tvm.search.reward import Reward

MODEL = "builtin:small-cnn"


def check_latency(out):
    rec = load(out)
    ref = rec.reference["latency"]["latency_ms"]
    assert ref > 0
    for r in rec.results:
        assert r.status == OK, r.error
        assert r.metrics["latency_ratio"] == pytest.approx(r.metrics["latency_ms"] / ref)
        assert r.reward == pytest.approx(Reward()(r.metrics))  # latency, not FLOPs, in the reward
    return rec


def test_latency_untuned_in_process_pool_and_per_layer(tmp_path):
    out = tmp_path / "lat"
    s = search(SearchConfig(out=str(out), model=MODEL, strategy="random", evaluators=("flops", "latency"),
                            latency_trials=0, budget=4, workers=2), progress=False)
    assert s.evaluated == 4
    rec = check_latency(out)
    plan = plan_per_layer(rec)
    assert plan.metric == "latency" and len(plan.groups) == len(rec.layers) >= 1
    for g, use in zip(plan.groups, rec.layers):
        assert g.layers == use["layers"]
        assert g.reward >= Reward()({"latency_ratio": 1.0})  # never worse than keeping the original there
        if g.fingerprint:
            chosen = next(r for r in rec.results if r.fingerprint == g.fingerprint)
            assert g.cost_ratio == pytest.approx(chosen.metrics["latency_ms_layer0"] /
                                                 rec.reference["latency"]["latency_ms_layer0"])


@pytest.mark.slow
def test_latency_tuned(tmp_path):
    search(SearchConfig(out=str(tmp_path / "t"), model=MODEL, strategy="mcts", evaluators=("flops", "latency"),
                        latency_trials=4, budget=2), progress=False)
    rec = check_latency(tmp_path / "t")
    assert (tmp_path / "t" / "work" / "tuning" / "reference").is_dir()


def test_accuracy_tiny_recipe(tmp_path):
    out = tmp_path / "acc"
    search(SearchConfig(out=str(out), model=MODEL, strategy="mcts", evaluators=("flops", "accuracy"),
                        accuracy_recipe="tiny", budget=1), progress=False)
    rec = load(out)
    ref = rec.reference["accuracy"]["accuracy"]
    (r,) = rec.results
    assert r.status == OK, r.error
    assert r.candidate.source == "seed:conv2d" and r.metrics["swapped_layers"] >= 1
    assert 0 <= r.metrics["accuracy"] <= 1 and 0 < ref <= 1
    assert r.metrics["accuracy_ratio"] == pytest.approx(r.metrics["accuracy"] / ref)
    assert r.reward == pytest.approx(Reward()(r.metrics))
