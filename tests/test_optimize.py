"""``syno-tvm optimize`` / python/optimize_onnx.py: bad input fails with one line, exit 2 and no output directory;
a short end-to-end run on the small CNN that fails after tuning keeps the database, and its rerun reuses it;
CUDA and aarch64 are compiled and exported without their devices."""

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from syno_tvm.cli import main
from syno_tvm.errors import SynoError
from syno_tvm.relax.models import small_cnn

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "small_cnn.onnx"
    onnx.save(small_cnn(width=8), str(path))
    return path


def _fails(capsys, tmp_path, argv, expect):
    out = tmp_path / "out"
    assert main(["optimize", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expect in err, err
    assert not out.exists() and list(tmp_path.glob(".out*")) == []


def test_not_an_onnx_file(capsys, tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_text("this is not a protobuf")
    _fails(capsys, tmp_path, [str(bad), "--operator", "conv2d"], "is not a valid ONNX model")


def test_unsupported_op(capsys, tmp_path):
    graph = helper.make_graph([helper.make_node("Det", ["x"], ["y"])], "det",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    path = tmp_path / "det.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    _fails(capsys, tmp_path, [str(path), "--operator", "conv2d"], "not supported for frontend ONNX: Det")


def test_shape_the_operator_cannot_serve(capsys, tmp_path, cnn):
    # C_in = 3 and 8: Operator 1's C_in/g with g=32 is no integer for any layer
    _fails(capsys, tmp_path, [str(cnn), "--operator", "syno_operator1"], "serves none of the model's layers")


def test_per_layer_choice_the_layer_cannot_take(capsys, tmp_path, cnn):
    choice = tmp_path / "map.json"
    choice.write_text(json.dumps({"conv2d_0": "conv2d", "conv2d_1": "syno_operator1"}))
    _fails(capsys, tmp_path, [str(cnn), "--per-layer", str(choice)], "layer conv2d_1")


def test_unknown_layer_in_map(capsys, tmp_path, cnn):
    choice = tmp_path / "map.json"
    choice.write_text(json.dumps({"conv2d_9": "conv2d"}))
    _fails(capsys, tmp_path, [str(cnn), "--per-layer", str(choice)], "not found")


def test_unknown_target(capsys, tmp_path, cnn):
    _fails(capsys, tmp_path, [str(cnn), "--operator", "conv2d", "--target", "tpu"], "unknown target 'tpu'")


def test_unknown_operator(capsys, tmp_path, cnn):
    _fails(capsys, tmp_path, [str(cnn), "--operator", "no_such_op"], "unknown operator")


def test_bad_rpc_spec(capsys, tmp_path, cnn):
    _fails(capsys, tmp_path, [str(cnn), "--operator", "conv2d", "--rpc", "localhost"], "host:port")


def test_script_is_the_cli(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_text("no")
    run = subprocess.run([sys.executable, str(ROOT / "python" / "optimize_onnx.py"), str(bad), "--operator",
                          "conv2d", "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "not a valid ONNX model" in run.stderr


@pytest.mark.parametrize("target,lib", [("cuda", "model.so"), ("aarch64", "model")])
def test_cuda_and_aarch64_compile_export_and_say_unmeasured(tmp_path, cnn, target, lib):
    out = tmp_path / "runs" / target / "out"     # parents that do not exist yet, as the README's out/main
    assert main(["optimize", str(cnn), "--operator", "conv2d", "--target", target, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["swapped"]["latency"] is None and report["swapped"]["not_measured"]
    assert report["swapped"]["library"].startswith(lib) and (out / report["swapped"]["library"]).stat().st_size > 0
    assert "not measured" in (out / "report.md").read_text() or "measure" in (out / "report.md").read_text()


def test_end_to_end_small_cnn_a_failed_run_keeps_its_tuning_and_the_rerun_reuses_it(tmp_path, cnn, capsys,
                                                                                     monkeypatch):
    """One trial per task keeps this short.  The first run fails after tuning (onnxruntime breaks): --out holds the
    database and nothing else; the rerun must run no new trials and write library, database and report."""
    from syno_tvm.tune import measure

    out = tmp_path / "out"
    argv = ["optimize", str(cnn), "--operator", "conv2d", "--trials", "1", "--runs", "3", "--out", str(out)]

    def broken(*args, **kwargs):
        raise SynoError("onnxruntime broke")

    with monkeypatch.context() as m:
        m.setattr(measure, "measure_onnxruntime", broken)
        assert main(argv) == 2
    assert "tuning database is kept in" in capsys.readouterr().err
    assert {p.name for p in out.iterdir()} == {"tuning"} and list(tmp_path.glob(".out*")) == []
    assert (out / "tuning" / "database_tuning_record.json").stat().st_size > 0
    assert main(argv) == 0
    assert {"model.so", "report.json", "report.md", "tuning"} <= {p.name for p in out.iterdir()}
    report = json.loads((out / "report.json").read_text())
    assert [d["action"] for d in report["layers"]] == ["swap", "swap", "keep"]
    assert report["max_abs_output_diff"] < 1e-4                      # conv2d reuses the layer weights: same model
    assert report["original"]["tuning"]["new_trials"] == 0 and report["swapped"]["tuning"]["new_trials"] == 0
    assert report["swapped"]["tuning"]["work_dir"] == str(out / "tuning")
    for key in ("original", "swapped"):
        assert report[key]["latency"]["median_ms"] > 0
    assert report["onnxruntime"]["median_ms"] > 0
    md = (out / "report.md").read_text()
    assert "conv2d_0" in md and "onnxruntime" in md and "trials per tuning task: 1" in md
    assert list(tmp_path.glob(".out*")) == []


@pytest.mark.parametrize("recipe", ["short", pytest.param("proxy", marks=pytest.mark.slow)])
def test_accuracy_of_original_and_swapped_on_packaged_data(tmp_path, capsys, monkeypatch, recipe):
    """--accuracy trains both models (the same layers swapped as in the latency run) and reports both accuracies;
    --width narrows a built-in model; NAME:coef=value sets a library operator's coefficients.  Training is most of
    the time: the default run trains with the proxy recipe cut to 1 epoch on 400 images (the same code path; the
    report must name that recipe), ``-m slow`` with the proxy recipe itself (2 epochs on 3000 images)."""
    from dataclasses import replace

    from syno_tvm.train import proxy

    if recipe == "short":
        monkeypatch.setattr(proxy, "PROXY", replace(proxy.PROXY, epochs=1, limit=400))
    out = tmp_path / "out"
    assert main(["optimize", "builtin:small-cnn", "--width", "4", "--operator", "conv2d_grouped:g=2", "--trials",
                 "1", "--runs", "3", "--accuracy", "digits", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [d["action"] for d in report["layers"]] == ["keep", "swap", "keep"]   # 3 input channels: no g=2
    acc = report["accuracy"]
    assert acc["data"] == "digits" and acc["recipe"]["width"] == 4
    assert (acc["recipe"]["epochs"], acc["recipe"]["limit"]) == (proxy.PROXY.epochs, proxy.PROXY.limit)
    assert acc["original"]["swapped_layers"] == 0 and acc["swapped"]["swapped_layers"] == 1
    for key in ("original", "swapped"):
        assert 0.0 <= acc[key]["val_acc"] <= 1.0 and acc[key]["images_per_s"] > 0
    assert acc["delta_pp"] == pytest.approx(100 * (acc["swapped"]["val_acc"] - acc["original"]["val_acc"]))
    assert "## Accuracy (proxy)" in (out / "report.md").read_text()
    assert "accuracy (proxy" in capsys.readouterr().out


def test_a_failed_run_leaves_no_directories_it_made(capsys, tmp_path, cnn, monkeypatch):
    from syno_tvm import optimize as O

    def boom(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(O, "_build_and_time", boom)
    with pytest.raises(KeyboardInterrupt):
        O.optimize(O.OptimizeConfig(model=str(cnn), out=str(tmp_path / "a" / "b" / "out"), operator="conv2d"),
                   progress=False)
    assert list(tmp_path.iterdir()) == []


def test_bad_accuracy_data_and_width(capsys, tmp_path, cnn):
    _fails(capsys, tmp_path, [str(cnn), "--operator", "conv2d", "--accuracy", str(tmp_path / "none.npz")],
           "does not exist")
    _fails(capsys, tmp_path, [str(cnn), "--operator", "conv2d", "--width", "4"], "built-in models only")
    _fails(capsys, tmp_path, ["builtin:small-cnn", "--operator", "conv2d_grouped:q=2"], "bad coefficient")


@pytest.mark.slow
def test_transformer_block_linear_swap_tuned(tmp_path):
    """The matmul path end to end: every weight matmul takes the library's linear, tuned like the original."""
    out = tmp_path / "out"
    assert main(["optimize", "builtin:transformer-block", "--operator", "linear", "--trials", "8", "--runs", "5",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    matmuls = [d for d in report["layers"] if d["kind"] == "matmul"]
    assert matmuls and all(d["action"] == "swap" for d in matmuls)
    assert report["max_abs_output_diff"] < 1e-3
    assert report["swapped"]["tuning"]["failed"] < report["swapped"]["tuning"]["new_trials"]


def test_config_is_the_library_input(tmp_path, cnn):
    """The flow takes an OptimizeConfig, no argparse: exactly one of operator / per_layer, checked before writing."""
    from syno_tvm.optimize import OptimizeConfig, optimize

    out = tmp_path / "out"
    for both in ({}, {"operator": "conv2d", "per_layer": str(tmp_path / "m.json")}):
        with pytest.raises(SynoError, match="exactly one of --operator"):
            optimize(OptimizeConfig(model=str(cnn), out=str(out), **both), progress=False)
    with pytest.raises(SynoError, match="--trials must be at least 1"):
        optimize(OptimizeConfig(model=str(cnn), out=str(out), operator="conv2d", trials=0), progress=False)
    assert not out.exists()
