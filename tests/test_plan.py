"""Per target, what optimize tunes and measures and on which device (syno_tvm/tune/plan.py)."""

import pytest
import tvm

from syno_tvm.errors import SynoError
from syno_tvm.tune import targets
from syno_tvm.tune.plan import plan


def test_host_cpu_tunes_and_measures_here_or_on_the_tracker():
    here = plan(targets.host(), cpu="CPU X")
    assert (here.tune, here.measure, here.tune_rpc, here.device) == ("local", "local-cpu", None, "CPU X")
    tracked = plan(targets.host(), "h:9190:k", cpu="CPU X")
    assert (tracked.tune, tracked.measure, tracked.tune_rpc) == ("rpc", "rpc", "h:9190:k")
    assert "key 'k'" in tracked.device and "RPCRunner" in tracked.tuned and "onnxruntime on CPU X" in tracked.measured
    bare = plan(targets.host(), "h:9090")  # a bare server measures; MetaSchedule's runner needs a tracker
    assert (bare.tune, bare.measure, bare.tune_rpc) == ("local", "rpc", None)


def test_aarch64_is_tuned_and_measured_only_through_rpc():
    alone = plan(targets.aarch64())
    assert (alone.tune, alone.measure, alone.device) == ("none", "none", "none")
    assert "--rpc HOST:PORT:KEY" in alone.tuned and "not measured" in alone.measured
    board = plan(targets.aarch64(), "10.0.0.2:9190:orin")
    assert (board.tune, board.measure, board.tune_rpc) == ("rpc", "rpc", "10.0.0.2:9190:orin")
    assert "cross-linked" in board.tuned and "'orin'" in board.device
    server = plan(targets.aarch64(), "10.0.0.2:9090")
    assert (server.tune, server.measure) == ("none", "rpc")


@pytest.mark.skipif(tvm.cuda(0).exist, reason="this machine has a GPU")
def test_cuda_without_gpu_is_compiled_only():
    p = plan(targets.cuda("sm_90"))
    assert (p.tune, p.measure, p.device) == ("none", "none", "none") and "no CUDA GPU" in p.measured
    assert set(p.to_json()) == {"target", "tune", "measure", "tuned", "measured", "device", "tune_rpc"}


def test_bad_rpc_is_refused():
    with pytest.raises(SynoError, match="host:port"):
        plan(targets.host(), "nohost")
