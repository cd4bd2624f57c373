"""MetaSchedule tuning and measurement: the swap pass inside a user's Sequential, tuned and built with the database,
matches onnxruntime; a second run with the same budget runs no new trials; latency over RPC on loopback."""

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper
from tvm import relax

from syno_tvm.errors import SynoError
from syno_tvm.ir.library import named
from syno_tvm.relax.frontend import import_onnx
from syno_tvm.relax.swap import OperatorSwap
from syno_tvm.tune import compile as C
from syno_tvm.tune import measure, metaschedule, targets


def _one_conv() -> onnx.ModelProto:
    w = np.random.default_rng(1).standard_normal((8, 4, 3, 3)).astype("float32")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["y"])], "one_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])], [numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_swap_pass_in_user_sequential_tuned_twice_matches_onnxruntime(tmp_path):
    """The swap pass inside a user's Sequential, tuned, tuned again (the database reused: no new trials), built
    with the database: it matches onnxruntime.  One trial per task: MetaSchedule's cost here is a builder and a
    runner round per measured batch (~2 s each on 2 cores), and one candidate per task already exercises it all."""
    import logging

    import onnxruntime as ort

    # A handler without a name on MetaSchedule's logger (pytest adds such) must not break tuning, and stays attached.
    stray = logging.NullHandler()
    logging.getLogger("tvm.s_tir.meta_schedule").addHandler(stray)

    model = _one_conv()
    swap = OperatorSwap(named("conv2d"))
    pipeline = tvm.transform.Sequential([swap.as_pass(), relax.transform.FoldConstant()])
    mod = pipeline(import_onnx(model))
    assert [d.action for d in swap.decisions] == ["swap"]
    target = targets.host()
    first = metaschedule.tune(mod, target, tmp_path / "db", trials=1, progress=False)
    assert first.new_trials > 0 and not any(t.reused for t in first.tasks)
    assert stray in logging.getLogger("tvm.s_tir.meta_schedule").handlers
    logging.getLogger("tvm.s_tir.meta_schedule").removeHandler(stray)
    again = metaschedule.tune(mod, target, tmp_path / "db", trials=1, progress=False)
    assert again.new_trials == 0 and all(t.reused for t in again.tasks)
    assert len(again.tasks) == len(first.tasks) and all(t.best_us for t in again.tasks)
    applied = metaschedule.apply_database(mod, target, tmp_path / "db")
    prims = {gv.name_hint: f for gv, f in applied.functions_items() if isinstance(f, tvm.tirx.PrimFunc)}
    assert {t.name for t in first.tasks} <= set(prims)
    assert all(prims[t.name].attrs["tirx.is_scheduled"] for t in first.tasks)
    x = measure.input_arrays(model)
    vm = relax.VirtualMachine(metaschedule.compile_tuned(mod, target, tmp_path / "db"), tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(x[0])).numpy()
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x[0]})[0]
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4


def test_pooling_tunes_without_the_unknown_schedule_rule_warning(tmp_path, capfd):
    """TOPI's avg-pool block names a MetaSchedule rule apache-tvm 0.27 lacks: it used to print a warning per
    candidate.  prepare() drops the annotation; the tuned pool is scheduled from the database and still right.
    One trial: the warning came once per candidate, so one candidate shows it."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 4, 8, 8), "float32"))
    with bb.function("main", [x]):
        bb.emit_func_output(bb.emit(relax.op.nn.avg_pool2d(x, (2, 2), (2, 2))))
    mod = bb.get()
    assert "schedule_rule" in relax.get_pipeline("zero")(mod).script()
    assert "schedule_rule" not in metaschedule.prepare(mod).script()
    target = targets.host()
    metaschedule.tune(mod, target, tmp_path / "db", trials=1, progress=False)
    assert "Unknown schedule rule" not in capfd.readouterr().err
    applied = metaschedule.apply_database(mod, target, tmp_path / "db")
    assert applied["avg_pool2d"].attrs["tirx.is_scheduled"]
    data = np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype("float32")
    vm = relax.VirtualMachine(metaschedule.compile_tuned(mod, target, tmp_path / "db"), tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(data)).numpy()
    np.testing.assert_allclose(got, data.reshape(1, 4, 4, 2, 4, 2).mean(axis=(3, 5)), rtol=1e-5, atol=1e-6)


def test_share_policy_spends_one_global_budget_with_a_floor_per_task(tmp_path):
    """``share``: every task gets at least its warm-up round, the model no more than trials x tasks in all, and a
    rerun at the same budget tunes nothing."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 4, 8, 8), "float32"))
    w = relax.const(np.random.default_rng(0).standard_normal((8, 4, 3, 3)).astype("float32"))
    with bb.function("main", [x]):
        y = bb.emit(relax.op.nn.conv2d(x, w, padding=1))
        bb.emit_func_output(bb.emit(relax.op.nn.avg_pool2d(y, (2, 2), (2, 2))))
    mod, target = bb.get(), targets.host()
    first = metaschedule.tune(mod, target, tmp_path / "db", trials=2, progress=False, policy="share")
    assert len(first.tasks) == 2 and first.policy == "share" and first.budget_trials == 4
    assert all(t.trials >= 1 and not t.reused for t in first.tasks) and first.new_trials <= first.budget_trials
    again = metaschedule.tune(mod, target, tmp_path / "db", trials=2, progress=False, policy="share")
    assert again.new_trials == 0 and all(t.reused for t in again.tasks)
    with pytest.raises(SynoError, match="unknown budget policy"):
        metaschedule.tune(mod, target, tmp_path / "db", trials=2, policy="greedy")


def test_tuning_refuses_targets_without_their_device(tmp_path):
    mod = import_onnx(_one_conv())
    with pytest.raises(SynoError, match="needs that device"):
        metaschedule.tune(mod, targets.cuda(), tmp_path, trials=1)
    with pytest.raises(SynoError, match="at least 1"):
        metaschedule.tune(mod, targets.host(), tmp_path, trials=0)


def test_latency_locally_over_rpc_loopback_and_onnxruntime():
    from tvm import rpc

    model = _one_conv()
    x = measure.input_arrays(model)
    ex = C.build(import_onnx(model), targets.host())
    local = measure.measure_local(ex, x, number=2, repeat=3)
    server = rpc.Server(host="127.0.0.1", port=9091, port_end=9199)
    try:
        remote = measure.measure_rpc_executable(ex, f"127.0.0.1:{server.port}", x, number=2, repeat=3)
    finally:
        server.terminate()
    ort = measure.measure_onnxruntime(model, x, threads=1, number=2, repeat=3)
    for lat in (local, remote, ort):
        assert 0 < lat.min_ms <= lat.median_ms <= lat.max_ms and lat.repeat == 3
    assert remote.where.startswith("rpc 127.0.0.1") and "onnxruntime" in ort.where


def test_rpc_spec_errors_are_one_line():
    assert measure.RpcSpec.parse("10.0.0.2:9190:orin") == measure.RpcSpec("10.0.0.2", 9190, "orin")
    with pytest.raises(SynoError, match="host:port"):
        measure.RpcSpec.parse("10.0.0.2")
    with pytest.raises(SynoError, match="cannot reach the RPC server"):
        measure.RpcSpec.parse("127.0.0.1:1").connect()


def _two_fusions() -> onnx.ModelProto:
    """The same 3x3 conv twice, fused into different epilogues (relu; add + relu), as in a ResNet block."""
    rng = np.random.default_rng(2)
    w1, w2 = (rng.standard_normal((8, 8, 3, 3)).astype("float32") * 0.2 for _ in range(2))
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c1"], ["r1"]),
         helper.make_node("Conv", ["r1", "w2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("Add", ["c2", "x"], ["s"]), helper.make_node("Relu", ["s"], ["y"])], "two_fusions",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_anchor_block_equality_tunes_one_conv_for_both_fusions(tmp_path):
    """``anchor-block``: the same conv in two fusions is one task (structural: two), the work directory remembers
    its equality, and the tuned build matches onnxruntime.  One trial per task (each extra round costs a builder and
    a runner round, ~2 s, per task): the task count, the reuse and the applied schedules do not need more."""
    import onnxruntime as ort

    model = _two_fusions()
    mod, target = import_onnx(model), targets.host()
    structural = metaschedule.tune(mod, target, tmp_path / "s", trials=1, progress=False)
    anchor = metaschedule.tune(mod, target, tmp_path / "a", trials=1, progress=False, equality="anchor-block")
    assert len(anchor.tasks) < len(structural.tasks)
    assert metaschedule.equality_of(tmp_path / "a") == "anchor-block"
    again = metaschedule.tune(mod, target, tmp_path / "a", trials=1, progress=False)   # the directory's own
    assert again.new_trials == 0
    with pytest.raises(SynoError, match="anchor-block task equality"):
        metaschedule.tune(mod, target, tmp_path / "a", trials=1, progress=False, equality="structural")
    applied = metaschedule.apply_database(mod, target, tmp_path / "a")
    convs = [f for gv, f in applied.functions_items() if isinstance(f, tvm.tirx.PrimFunc) and "conv" in gv.name_hint]
    assert len(convs) == 2 and all(f.attrs["tirx.is_scheduled"] for f in convs)
    x = measure.input_arrays(model)
    vm = relax.VirtualMachine(metaschedule.compile_tuned(mod, target, tmp_path / "a"), tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(x[0])).numpy()
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x[0]})[0]
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4
