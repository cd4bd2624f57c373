"""The README's first command (the main job) stays runnable: its syno-tvm arguments parse and name things that
exist (fast), and the whole job writes a report with the searched operator, latencies and proxy accuracies (slow, about
10 minutes)."""

import json
import re
import shlex
from pathlib import Path

import pytest

from syno_tvm.cli import main, parser
from syno_tvm.ir.load import load_operator

ROOT = Path(__file__).resolve().parents[1]


def _main_job() -> list[str]:
    """The syno-tvm part of the README's first shell command, as argv."""
    block = re.search(r"```sh\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S).group(1)
    job = block.split("&& syno-tvm ", 1)[1]
    return shlex.split(job)


def test_main_job_arguments_parse_and_resolve():
    argv = _main_job()
    args = parser().parse_args(argv)
    assert args.command == "optimize" and args.model.startswith("builtin:") and args.accuracy == "fashion-mnist"
    if args.search is None:
        load_operator(args.operator)  # a named operator with coefficients: raises on a typo
    else:
        assert args.search >= 1 and args.operator is None


@pytest.mark.slow
def test_main_job_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(_main_job()) == 0
    out = tmp_path / _main_job()[_main_job().index("--out") + 1]
    report = json.loads((out / "report.json").read_text())
    assert report["accuracy"]["original"]["val_acc"] > 0.5 and report["accuracy"]["swapped"]["val_acc"] > 0.5
    assert "## Accuracy (proxy)" in (out / "report.md").read_text()
    if report.get("search"):   # the main job searched its operator: the report shows it and its pictures
        assert "## Searched operator" in (out / "report.md").read_text()
        assert (out / report["search"]["operator_file"]).is_file() and (out / report["search"]["pareto_png"]).is_file()
