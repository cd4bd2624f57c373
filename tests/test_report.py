"""The optimize report as dataclasses: report.json reads back into the same objects, and report.md and the CLI's
headline render from them (numbers taken from the fields, not re-parsed from text)."""

from __future__ import annotations

import json

from syno_tvm.relax.swap import Decision
from syno_tvm.report.markdown import headline, read_report, render, write_report
from syno_tvm.report.results import Accuracy, ModelRun, OptimizeReport, TrainedModel
from syno_tvm.search.model_search import ModelSearch
from syno_tvm.tune.measure import Latency
from syno_tvm.tune.metaschedule import TaskStats, TuneResult
from syno_tvm.tune.plan import TargetPlan


def lat(ms: float) -> Latency:
    return Latency(ms, ms * 0.9, ms * 1.2, ms * 0.95, ms * 1.05, 30, 10, "local cpu")


def example() -> OptimizeReport:
    tuning = TuneResult("out/tuning", 4, 12.5, [TaskStats("conv", 2, 4, 1, False, 3.5), TaskStats("add", 1, 0, 0, True)])
    layers = [Decision("conv2d_1", "conv2d", {"C_in": 8, "C_out": 8}, "swap", "abc", "", 1000, 400, 576, 100,
                       {"C_in": 8}, 0, False),
              Decision("conv2d_0", "conv2d", {"C_in": 3, "C_out": 8}, "keep", "", "the layer's kernel is 1x1", 300,
                       0, 24, 0)]
    search = ModelSearch("search", "vision-width4", 12, 12, 5, 6, 1, "abcdef", 0.5, {"flops_ratio": 0.4,
                         "latency_ratio": 0.6, "accuracy_ratio": 0.9}, "Y[n] = ...", "search/best.json", None,
                         "search/pareto.png", "search/report.md", 140.0)
    return OptimizeReport(
        "builtin:resnet18-cifar", "llvm -mcpu=x", "llvm", "search", 4, {"cpu": "test"},
        TargetPlan("llvm", "local", "local-cpu", "every task on this CPU", "median of 30", "this CPU"), layers,
        ModelRun("original", tuning, lat(0.4)), ModelRun("swapped", tuning, lat(0.2), library="model.so"),
        lat(0.3), None, "not shown: 1 of 1 swapped layers compute a new function", search,
        Accuracy("fashion-mnist", {"epochs": 2, "limit": 3000, "batch": 32, "lr": 0.1, "optimizer": "sgd", "seed": 0,
                                   "width": 4}, TrainedModel(0.77, 0.6, 250.0, 0), TrainedModel(0.75, 0.7, 260.0, 1)),
        61.0)


def test_report_json_round_trips(tmp_path):
    report = example()
    write_report(tmp_path, report)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["original"]["tuning"]["new_trials"] == 4 and data["original"]["tuning"]["budget_trials"] == 8
    assert data["swapped"]["library"] == "model.so" and "library" not in data["original"]
    assert data["accuracy"]["delta_pp"] == 100 * (0.75 - 0.77)
    back = read_report(tmp_path)
    assert back == report
    assert back.to_json() == data


def test_headline_and_markdown_read_the_fields(tmp_path):
    report = example()
    lines = headline(report)
    assert lines[0].startswith("searched 12 operators (5 passed every evaluator, 6 pruned, 1 failed)")
    assert "FLOPs 0.40x, default-build latency 0.60x, quick-proxy accuracy 0.90x" in lines[1]
    assert lines[2].startswith("1/2 layers swapped; layer FLOPs 0.0M -> 0.0M")
    assert "swapped 0.200 ms, tuned original 0.400 ms (2.00x), onnxruntime 0.300 ms (1.50x)" in lines[3]
    assert "original 77.00 %, swapped 75.00 % (-2.00 pp" in lines[4]
    md = render(report)
    assert "budget 8 trials" in md and "1300 -> 700" not in md
    assert "Conv/matmul layers: FLOPs 1,300 -> 700" in md      # the kept layer counts as before
    assert "| conv2d_0 | conv2d | C_in=3, C_out=8 | keep | - |" in md and "the layer's kernel is 1x1" in md
    assert "Output difference swapped vs original: not shown" in md


def test_a_target_without_measurement_says_why():
    report = example()
    report.swapped = ModelRun("swapped", None, None, note="default schedules", not_measured="no GPU here")
    report.onnxruntime = None
    assert headline(report)[-1] == "latency not measured: no GPU here"
    md = render(report)
    assert "| swapped, TVM tuned | - | - | - | no GPU here |" in md
    assert "- swapped: default schedules" in md
    assert "| original, onnxruntime | - | - | - | onnxruntime runs on this host only |" in md
