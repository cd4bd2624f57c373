"""``syno-tvm search`` and ``syno-tvm report`` as a user runs them: SIGKILL mid-run then ``--resume`` loses and
repeats nothing; bad input is one line, exit 2, nothing written; the report's best.json and per_layer.json load
where ``syno-tvm optimize`` reads them."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syno_tvm.cli import main
from syno_tvm.ir.load import load_operator
from syno_tvm.search.driver import SearchConfig, search

MODEL = "builtin:small-cnn"
BUDGET = 24   # killed after 12: the resumed run still has 12 to evaluate (~0.25 s each here)


def rows(db: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as c:
        return c.execute("SELECT seq, fingerprint, status, error, reward, metrics, operator FROM results "
                         "ORDER BY seq").fetchall()


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "syno_tvm.cli", "search", "--model", MODEL, "--strategy", "mcts", "--budget",
            str(BUDGET), "--seed", "1", "--quiet", *args]


def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path):
    """A search SIGKILLed after 12 results and resumed ends with the rows an uninterrupted search writes: nothing
    lost, rewritten or evaluated twice.  A budget of 24 (was 40) keeps 12 evaluations between the kill and the end,
    and the three searches (killed, resumed, uninterrupted) a third shorter."""
    out = tmp_path / "run"
    db = out / "search.sqlite"
    proc = subprocess.Popen(cli("--out", str(out)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if db.is_file():
            try:
                if len(rows(db)) >= 12:
                    break
            except sqlite3.OperationalError:  # schema not written yet
                pass
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = rows(db)
    assert 12 <= len(before) < BUDGET, "the search was not killed mid-run"
    done = subprocess.run(cli("--out", str(out), "--resume"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = rows(db)
    assert after[:len(before)] == before                       # nothing lost, nothing rewritten
    assert len(after) == BUDGET == len({r[1] for r in after})  # nothing evaluated twice
    whole = tmp_path / "whole"
    search(SearchConfig(out=str(whole), model=MODEL, strategy="mcts", budget=BUDGET, seed=1), progress=False)
    assert [r[1:] for r in after] == [r[1:] for r in rows(whole / "search.sqlite")]  # as if never killed


def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys):
    out = tmp_path / "a" / "b"
    for args in (["--model", str(tmp_path / "none.onnx"), "--budget", "3"],
                 ["--model", MODEL, "--budget", "3", "--evaluator", "flops,speed"],
                 ["--model", MODEL, "--time", "soon"],
                 ["--model", MODEL],
                 ["--model", MODEL, "--budget", "3", "--spec", str(tmp_path / "none.json")]):
        assert main(["search", *args, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("syno-tvm: error: "), err
        assert not (tmp_path / "a").exists()
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no search" in capsys.readouterr().err


def test_report_best_and_per_layer_load(tmp_path, capsys):
    from syno_tvm.relax.frontend import import_onnx
    from syno_tvm.relax.swap import OperatorSwap

    out = tmp_path / "s"
    assert main(["search", "--model", MODEL, "--strategy", "random", "--budget", "10", "--out", str(out),
                 "--quiet"]) == 0
    assert main(["report", str(out)]) == 0
    for name in ("report.md", "pareto.png", "best.json", "per_layer.json", "per_layer_plan.json", "pareto/00.json"):
        assert (out / name).is_file(), name
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best, _ = load_operator(str(out / "best.json"))
    from syno_tvm.search.results import best_operator, load

    assert best.hash == best_operator(out).hash
    rec = load(out)
    assert rec.best.fingerprint in (out / "report.md").read_text()
    mapping = json.loads((out / "per_layer.json").read_text())
    choice = {layer: None if v is None else load_operator(v)[0] for layer, v in mapping.items()}
    swap = OperatorSwap(choice)
    swap(import_onnx(MODEL))
    swapped = {d.layer for d in swap.decisions if d.action == "swap"}
    assert swapped == {layer for layer, v in choice.items() if v is not None} and swapped
