"""MetaSchedule tuning through a tvm.rpc tracker on loopback: a tracker and an RPC server run as subprocesses
(the server stands in for a board, the target is this CPU), candidates are built here, uploaded, timed on the
server through MetaSchedule's RPCRunner, and the database records their measured times."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import onnx
import pytest

from syno_tvm.errors import SynoError
from syno_tvm.relax.frontend import import_onnx
from syno_tvm.relax.models import small_cnn
from syno_tvm.tune import metaschedule, targets

KEY = "loopback-board"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _registered(port: int, key: str) -> bool:
    from tvm import rpc

    try:
        summary = rpc.connect_tracker("127.0.0.1", port).summary()
    except Exception:  # the tracker is not listening yet
        return False
    return any(item["key"].split(":")[-1] == key for item in summary["server_info"])


@pytest.fixture(scope="module")
def tracker():
    """``127.0.0.1:PORT:KEY`` of a tracker with one RPC server registered under KEY; both killed afterwards."""
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "tvm.exec.rpc_tracker", "--host", "127.0.0.1",
                               "--port", str(port), "--port-end", str(port + 1), "--silent"])]
    try:
        server_port = _free_port()
        procs.append(subprocess.Popen([sys.executable, "-m", "tvm.exec.rpc_server", "--host", "127.0.0.1",
                                       "--port", str(server_port), "--port-end", str(server_port + 1),
                                       "--tracker", f"127.0.0.1:{port}", "--key", KEY, "--silent"]))
        deadline = time.time() + 90
        while not _registered(port, KEY):
            assert all(p.poll() is None for p in procs), "the tracker or the RPC server exited"
            assert time.time() < deadline, "the RPC server did not register with the tracker in 90 s"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}:{KEY}"
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def test_optimize_tunes_and_measures_through_the_tracker(tracker, tmp_path, capsys):
    """``syno-tvm optimize --rpc HOST:PORT:KEY``: both models tuned with candidates timed on the RPC server, the
    database holds a measured record for every candidate, the latencies come from the server, the report says so.
    One trial per task: every candidate is uploaded and timed on the server all the same, and each further round
    costs a build and an RPC run per task."""
    import json

    from tvm.s_tir import meta_schedule as ms

    from syno_tvm.cli import main

    model = tmp_path / "cnn.onnx"
    onnx.save(small_cnn(width=4), str(model))
    out = tmp_path / "out"
    assert main(["optimize", str(model), "--operator", "conv2d", "--trials", "1", "--runs", "3", "--rpc", tracker,
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["plan"]["tune"] == "rpc" and report["plan"]["measure"] == "rpc"
    assert KEY in report["plan"]["tuned"] and KEY in report["plan"]["device"]
    tuned = [report[k]["tuning"] for k in ("original", "swapped")]
    assert tuned[0]["new_trials"] >= len(tuned[0]["tasks"]) > 0 and all(t["failed"] == 0 for t in tuned)
    assert all(task["best_us"] > 0 for t in tuned for task in t["tasks"])
    records = ms.database.JSONDatabase(work_dir=str(out / "tuning")).get_all_tuning_records()
    measured = [r for r in records if r.run_secs and all(float(s) > 0 for s in r.run_secs)]
    assert len(measured) == len(records) == sum(t["new_trials"] for t in tuned)  # every candidate ran on the server
    for k in ("original", "swapped"):
        assert report[k]["latency"]["median_ms"] > 0 and report[k]["latency"]["where"].startswith("rpc 127.0.0.1")
    assert f"key '{KEY}'" in (out / "report.md").read_text()
    # a rerun finds every workload tuned at this budget and asks no tracker for anything
    mod = import_onnx(small_cnn(width=4))
    again = metaschedule.tune(mod, targets.by_name("llvm"), out / "tuning", 1, progress=False, rpc="127.0.0.1:1:x")
    assert again.new_trials == 0


def test_wrong_key_or_bare_server_is_one_line(tracker, tmp_path):
    mod = import_onnx(small_cnn(width=4))
    host, port, _ = tracker.split(":")
    with pytest.raises(SynoError, match="no RPC server with key 'nope'"):
        metaschedule.tune(mod, targets.host(num_cores=1), tmp_path / "a", trials=2, progress=False,
                          rpc=f"{host}:{port}:nope")
    with pytest.raises(SynoError, match="needs a tracker and a device key"):
        metaschedule.tune(mod, targets.host(num_cores=1), tmp_path / "b", trials=2, progress=False,
                          rpc=f"{host}:{port}")


def test_aarch64_tuning_needs_rpc(tmp_path):
    with pytest.raises(SynoError, match="--rpc HOST:PORT:KEY"):
        metaschedule.tune(import_onnx(small_cnn(width=4)), targets.aarch64(), tmp_path, trials=2, progress=False)
