"""The latency dataset (append-only, resumable), features, rankers and ranking metrics (syno_tvm/predict)."""

import json

import numpy as np
import pytest

from syno_tvm.ir.library import named
from syno_tvm.predict import collect as C
from syno_tvm.predict.dataset import RECORDS, Dataset, Record
from syno_tvm.predict.evaluate import diverse_sample, operator_folds, ranking, top_recall
from syno_tvm.predict.features import GROUPS, features, names
from syno_tvm.predict.predictor import XGBPredictor, create

VISION = {"N": 1, "C_in": 8, "C_out": 8, "H": 6, "W": 6}


def _record(op_hash="a", binding="b", tuned=10.0):
    return Record(op_hash, binding, dict(VISION), "t", 8, 100, untuned_us=20.0, tuned_us=tuned)


def test_records_append_and_a_torn_last_line_is_dropped(tmp_path):
    ds = Dataset.open(tmp_path)
    ds.add_operator(named("conv2d"), "library:conv2d")
    ds.add_record(_record())
    with open(tmp_path / RECORDS, "a") as f:
        f.write('{"op_hash": "torn')                  # a kill in the middle of a write
    again = Dataset.open(tmp_path)
    assert [r.key for r in again.records] == [_record().key] and named("conv2d").hash in again.operators
    again.add_record(_record("c"))
    lines = (tmp_path / RECORDS).read_text().splitlines()
    assert [json.loads(x)["op_hash"] for x in lines] == ["a", "c"]


def test_collect_measures_each_pair_once_and_resumes(tmp_path, monkeypatch):
    """Two library operators at one small binding, one target, one tuning trial (each further trial is another
    builder and runner round per task, ~2 s): every pair gets an untuned and a tuned time; a second run finds
    everything recorded and measures nothing."""
    monkeypatch.setattr(C, "VISION_BINDINGS", {"tiny": VISION})
    target = C.Target("generic-1t", "generic")
    ops = [(named("conv2d"), "library:conv2d", "vision"), (named("pointwise"), "library:pointwise", "vision")]
    ds = C.collect(tmp_path, ops, [target], trials=1, progress=False)
    assert len(ds.records) == 2 and all(r.untuned_us > 0 and r.tuned_us > 0 for r in ds.records), ds.records
    conv, point = ds.records
    assert conv.flops > point.flops                  # a 3x3 window does 9x the multiply-adds of a 1x1
    again = C.collect(tmp_path, ops, [target], trials=1, progress=False)
    assert len(again.records) == 2


def test_features_have_their_named_width_and_tell_operators_apart():
    groups = ("graph", "analytic")
    b = named("conv2d").binding(VISION)
    conv, point = features(named("conv2d"), b, groups), features(named("pointwise"), b, groups)
    assert len(conv) == len(names(groups)) == len(GROUPS["graph"]) + len(GROUPS["analytic"])
    at = dict(zip(names(groups), conv - point))
    assert at["log2_flops"] == pytest.approx(np.log2(9))
    with pytest.raises(ValueError, match="unknown feature group"):
        features(named("conv2d"), b, ("nope",))


def test_ranking_metrics():
    truth = np.arange(20.0)
    assert ranking(truth, truth, np.zeros(20)).spearman == pytest.approx(1.0)
    assert ranking(truth, -truth, np.zeros(20)).kendall == pytest.approx(-1.0)
    assert top_recall(truth, truth) == 1.0 and top_recall(truth, -truth) == 0.0


def test_operator_folds_keep_each_operator_on_one_side():
    ops = np.repeat(np.arange(10), 3)
    for train, test in operator_folds(ops):
        assert not set(ops[train]) & set(ops[test])


@pytest.mark.parametrize("kind", ["xgb-rank", "xgb"])
def test_a_ranker_learns_an_order_it_is_not_given(kind, tmp_path):
    """y depends on two of five features; held-out rows are ordered far better than chance, and a saved model
    predicts the same after loading."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 5))
    y = 2 * X[:, 0] + np.abs(X[:, 3]) + 0.1 * rng.standard_normal(400)
    g = np.repeat(np.arange(4), 100)
    model = create(kind).fit(X[:300], y[:300], g[:300])
    assert ranking(y[300:], model.predict(X[300:]), g[300:]).spearman > 0.8
    model.save(tmp_path / "m.json")
    np.testing.assert_allclose(XGBPredictor.load(tmp_path / "m.json").predict(X[300:]), model.predict(X[300:]))


def test_update_moves_a_model_towards_new_data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 3))
    g = np.repeat(np.arange(3), 100)
    model = create("xgb-rank").fit(X, X[:, 0], g)
    shots = diverse_sample(X, 20)
    assert len(set(shots)) == 20
    before = ranking(-X[:, 0], model.predict(X), g).spearman
    model.update(X[shots], -X[shots, 0], g[shots])     # the new target orders the other way round
    assert ranking(-X[:, 0], model.predict(X), g).spearman > before


def test_collect_draws_the_committed_dataset_operators_in_order():
    """Extending the dataset (a larger --vision) must continue the seeded stream its operators came from."""
    import itertools
    import json
    from pathlib import Path

    from syno_tvm.predict.collect import operators

    committed = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "latency" / "operators.jsonl"
    want = [json.loads(line)["hash"] for line in itertools.islice(committed.open(), 5)]
    assert [op.hash for op, _ in operators("vision", 5, 0)][:5] == want


def test_tuned_latency_model_on_the_committed_dataset():
    """Fitted on the committed rows, the model orders held-in rows by tuned time, and the nearest measured row
    of a dataset operator at its own binding is that row."""
    from scipy.stats import spearmanr

    from syno_tvm.predict.dataset import Dataset
    from syno_tvm.predict.model import DEFAULT_DATA, TunedLatencyModel, choose_target

    ds = Dataset.open(DEFAULT_DATA)
    target = choose_target(ds, "no-such-target")
    model = TunedLatencyModel.fit(ds, target)
    rows = model.rows[:60]
    pred = [model.predict_us(ds.operators[r.op_hash], r.binding, r.untuned_us) for r in rows]
    assert spearmanr(pred, [r.tuned_us for r in rows])[0] > 0.8
    r = rows[0]
    assert model.neighbours(ds.operators[r.op_hash], r.binding, r.untuned_us, k=1)[0] == r


def test_search_with_the_predicted_evaluator(tmp_path):
    """A cascade flops,predicted: every ok result has a predicted ratio against the reference, and the reward's
    cost is that ratio (no measured latency)."""
    from syno_tvm.search.driver import SearchConfig, search
    from syno_tvm.search.results import load
    from syno_tvm.search.reward import Reward

    out = tmp_path / "s"
    search(SearchConfig(out=str(out), model="builtin:small-cnn", strategy="random", evaluators=("flops", "predicted"),
                        budget=3, seed=0), progress=False)
    rec = load(out)
    ref = rec.reference["predicted"]["predicted_ms"]
    assert ref > 0
    ok = rec.ok
    assert len(ok) == 3
    for r in ok:
        assert abs(r.metrics["predicted_ratio"] - r.metrics["predicted_ms"] / ref) < 1e-9
        assert r.versions["predicted"].startswith("1-") and "rows" in r.versions["predicted"]
        assert abs(r.reward - Reward()({"predicted_ratio": r.metrics["predicted_ratio"],
                                        "flops_ratio": 123.0})) < 1e-9


def test_cli_predict_prints_the_prediction_and_neighbours(capsys):
    from syno_tvm.cli import main

    assert main(["predict", "conv2d", "--bind", "C_in=16,C_out=16,H=8,W=8"]) == 0
    out = capsys.readouterr().out
    assert "predicted tuned:" in out and "nearest measured rows:" in out and out.count(" at resnet18_") == 3
