"""The search stage of ``syno-tvm optimize --search N``: the spec follows the model's layers (and a built-in width),
a short search writes its report and best operator and resumes after a rerun, and bad settings fail before
anything is written."""

import json

import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import numpy as np

from syno_tvm.cli import main
from syno_tvm.errors import SynoError
from syno_tvm.relax.models import builtin, small_cnn
from syno_tvm.search import load
from syno_tvm.search import model_search as M


def _pointwise_model() -> onnx.ModelProto:
    """One 1x1 conv: no layer a searched 3x3 operator (or a matmul one) serves."""
    w = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "pw",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_spec_follows_the_model_and_its_width():
    spec = M.choose_spec(builtin("builtin:resnet18-cifar", width=4), 4)
    assert spec["layer_kind"] == "conv2d" and "g=2: 3" in spec["coefficient"]   # Syno's g=32 is meant at width 64
    assert "g=32: 3" in M.choose_spec(small_cnn(width=8), None)["coefficient"]
    assert M.choose_spec(builtin("builtin:vit-tiny", width=4), 4)["layer_kind"] == "matmul"
    with pytest.raises(SynoError, match="no 3x3 conv and no matmul"):
        M.choose_spec(_pointwise_model(), None)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One short search of small-cnn (width 8, 4 evaluations, the tiny accuracy recipe: seconds instead of the
    quick proxy's half minute) in ``ROOT/search``: (ROOT, its result).  The search is most of the time of the two
    tests that read and resume it, so they share it; neither changes what the other reads (a resumed search
    evaluates nothing, and ``final_accuracy`` only adds chosen.json)."""
    root = tmp_path_factory.mktemp("model_search")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(M, "ACCURACY_RECIPE", "tiny")
        found = M.search_for_model(small_cnn(width=8), None, root / "search", 4, progress=False)
    return root, found


def test_short_search_writes_its_report_and_resumes(searched, monkeypatch):
    """The search (the shared fixture) writes its best operator, Pareto plot and report; a rerun resumes it."""
    root, found = searched
    monkeypatch.setattr(M, "ACCURACY_RECIPE", "tiny")   # the resumed search must have the same settings
    model = small_cnn(width=8)
    assert found.evaluated == 4 and found.ok >= 1 and found.ok + found.pruned + found.failed == 4
    for rel in (found.operator_file, found.pareto_png, found.report):
        assert (root / rel).is_file(), rel
    assert found.metrics["flops_ratio"] <= M.MAX_COST_RATIO and "accuracy_ratio" in found.metrics
    best = json.loads((root / found.operator_file).read_text())
    assert best == load(root / "search").best.candidate.operator.to_json()
    # a rerun resumes: the 4 results are there, nothing is evaluated again
    again = M.search_for_model(model, None, root / "search", 4, progress=False)
    assert again.evaluated == 4 and again.fingerprint == found.fingerprint
    with pytest.raises(SynoError, match="search of another model"):
        M.search_for_model(small_cnn(width=4), None, root / "search", 4, progress=False)


def test_search_excludes_operator(capsys, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        main(["optimize", "builtin:small-cnn", "--search", "4", "--operator", "conv2d", "--out", str(out)])
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["optimize", "builtin:small-cnn", "--width", "4", "--search", "0", "--out", str(out)]) == 2
    assert "--search must be at least 1" in capsys.readouterr().err and not out.exists()


def test_model_without_searchable_layers_fails_before_writing(capsys, tmp_path):
    path = tmp_path / "pw.onnx"
    onnx.save(_pointwise_model(), str(path))
    out = tmp_path / "a" / "out"
    assert main(["optimize", str(path), "--search", "4", "--out", str(out)]) == 2
    assert "no 3x3 conv and no matmul" in capsys.readouterr().err and not (tmp_path / "a").exists()


def _result(fp: str, reward: float, accuracy_ratio: float, cost: float, status: str = "ok"):
    from syno_tvm.ir.library import named
    from syno_tvm.search.candidate import Candidate, Result

    return Result(Candidate(named("conv2d"), fp), status, {"accuracy_ratio": accuracy_ratio, "latency_ratio": cost},
                  reward=reward)


def test_finalists_are_the_best_few_other_than_the_original_and_the_final_accuracy_reorders_them():
    from syno_tvm.search.finalists import confirm, finalists
    from syno_tvm.search.reward import Reward

    results = [_result("orig", 0.99, 1.0, 1.0), _result("a", 0.8, 0.95, 0.1), _result("b", 0.3, 0.85, 0.5),
               _result("c", 0.5, 0.9, 0.2), _result("d", 0.9, 0.97, 0.1, status="failed"),
               _result("e", 0.1, 0.7, 0.1)]
    picks = finalists(results, "orig", 3)
    assert [r.fingerprint for r in picks] == ["a", "c", "b"]   # failed and original left out, by reward
    final = {"a": 0.4, "c": 0.95, "b": 1.0}   # "a" does not learn under the final recipe
    confirmed = confirm(picks, lambda op: final[next(r.fingerprint for r in picks if r.candidate.operator is op)],
                        Reward())
    assert [f.fingerprint for f in confirmed] == ["b", "c", "a"]
    assert confirmed[-1].reward == 0.0 and confirmed[0].accuracy_ratio == 1.0
    assert confirmed[0].search_accuracy_ratio == 0.85 and confirmed[0].cost_ratio == 0.5
    assert confirmed[0].reward == pytest.approx(Reward()({"accuracy_ratio": 1.0, "latency_ratio": 0.5}))


def test_search_stage_swaps_the_finalist_the_final_recipe_prefers(searched, monkeypatch):
    """The search (the shared fixture) resumed with a final recipe that says its best does not learn: another
    finalist is chosen and written as chosen.json."""
    root, found = searched
    monkeypatch.setattr(M, "ACCURACY_RECIPE", "tiny")
    model = small_cnn(width=8)
    record = load(root / "search")
    best = record.best
    assert best.fingerprint == found.fingerprint
    # the final recipe says the search's best does not learn: another finalist is chosen
    again = M.search_for_model(model, None, root / "search", 4, progress=False,
                               final_accuracy=lambda op: 0.0 if op == best.candidate.operator else 1.0)
    assert again.finalists and again.operator_file == "search/chosen.json"
    chosen = json.loads((root / again.operator_file).read_text())
    assert len(again.finalists) > 1   # else the test below could not tell a confirmed choice from the search's
    assert again.fingerprint != found.fingerprint and again.finalists[-1].fingerprint == best.fingerprint
    assert chosen != best.candidate.operator.to_json()
    assert chosen == next(r for r in record.results if r.fingerprint == again.fingerprint).candidate.operator.to_json()
    assert M.ModelSearch.from_json(json.loads(json.dumps(again.to_json()))) == again


@pytest.mark.parametrize("recipe", ["short", pytest.param("proxy", marks=pytest.mark.slow)])
def test_final_training_of_a_same_function_swap_matches_the_original_and_is_cached(tmp_path, monkeypatch, recipe):
    """conv2d in a training graph keeps the layer's function and initial weights, so its accuracy ratio under the
    final recipe is 1; a second run with the same cache file trains nothing.  Training is the time: by default the
    final recipe (train.proxy.PROXY) is cut to 1 epoch on 400 images, the same code path; ``-m slow`` trains with
    the recipe itself (2 epochs on 3000 images)."""
    from dataclasses import replace

    from syno_tvm import optimize as O
    from syno_tvm.ir.library import named
    from syno_tvm.relax.frontend import import_onnx
    from syno_tvm.train import proxy

    if recipe == "short":
        monkeypatch.setattr(proxy, "PROXY", replace(proxy.PROXY, epochs=1, limit=400))

    config = O.OptimizeConfig(model="builtin:small-cnn", out=str(tmp_path / "out"), search=2, width=4,
                              accuracy="digits")
    mod = import_onnx(builtin("builtin:small-cnn", width=4))
    cache = tmp_path / "trained.json"
    training = O.FinalTraining(config, progress=False, cache=cache)
    assert (training.recipe["epochs"], training.recipe["limit"]) == (proxy.PROXY.epochs, proxy.PROXY.limit)
    assert training.accuracy_ratio(mod, named("conv2d")) == pytest.approx(1.0, abs=1e-6)
    assert len(json.loads(cache.read_text())) == 2   # the original and the swapped model

    import syno_tvm.train.loop as loop

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")
    monkeypatch.setattr(loop, "train", no_training)
    assert O.FinalTraining(config, progress=False, cache=cache).accuracy_ratio(mod, named("conv2d")) == \
        pytest.approx(1.0, abs=1e-6)
