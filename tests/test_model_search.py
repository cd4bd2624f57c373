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


def test_short_search_writes_its_report_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(M, "ACCURACY_RECIPE", "tiny")   # seconds instead of the quick proxy's half minute
    model = small_cnn(width=8)
    found = M.search_for_model(model, None, tmp_path / "search", 4, progress=False)
    assert found.evaluated == 4 and found.ok >= 1 and found.ok + found.pruned + found.failed == 4
    for rel in (found.operator_file, found.pareto_png, found.report):
        assert (tmp_path / rel).is_file(), rel
    assert found.metrics["flops_ratio"] <= M.MAX_COST_RATIO and "accuracy_ratio" in found.metrics
    best = json.loads((tmp_path / found.operator_file).read_text())
    assert best == load(tmp_path / "search").best.candidate.operator.to_json()
    # a rerun resumes: the 4 results are there, nothing is evaluated again
    again = M.search_for_model(model, None, tmp_path / "search", 4, progress=False)
    assert again.evaluated == 4 and again.fingerprint == found.fingerprint
    with pytest.raises(SynoError, match="search of another model"):
        M.search_for_model(small_cnn(width=4), None, tmp_path / "search", 4, progress=False)


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
