"""MetaSchedule tuning through a tvm.rpc tracker on loopback: a tracker and an RPC server run as subprocesses
(the server stands in for a board, the target is this CPU), candidates are built here, uploaded, timed on the
server through MetaSchedule's RPCRunner, and the database records their measured times."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

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


def test_tuning_through_rpc_runner_writes_measured_records(tracker, tmp_path):
    import tvm
    from tvm.s_tir import meta_schedule as ms

    mod = import_onnx(small_cnn(width=4))
    target = targets.host(num_cores=1)
    result = metaschedule.tune(mod, target, tmp_path, trials=2, progress=False, rpc=tracker)
    assert result.new_trials >= len(result.tasks) > 0
    assert result.failed == 0, result.to_json()
    db = ms.database.JSONDatabase(work_dir=str(tmp_path))
    records = db.get_all_tuning_records()
    measured = [r for r in records if r.run_secs and all(float(s) > 0 for s in r.run_secs)]
    assert len(measured) == result.new_trials  # every candidate was run (on the server) and timed
    assert all(t.best_us is not None and t.best_us > 0 for t in result.tasks)
    # the tuned module builds and runs like one tuned locally
    executable = metaschedule.compile_tuned(mod, target, tmp_path)
    assert tvm.relax.VirtualMachine(executable, tvm.cpu()) is not None
    # a rerun finds every workload tuned at this budget and asks the tracker for nothing
    again = metaschedule.tune(mod, target, tmp_path, trials=2, progress=False, rpc="127.0.0.1:1:nobody")
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
