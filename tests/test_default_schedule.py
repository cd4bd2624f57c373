"""The default CPU schedule of untuned builds: parallel outer loops, same numbers as TVM's unscheduled build."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax, te

from syno_tvm.ir.load import load_operator
from syno_tvm.lower.te_backward import backward_primfunc
from syno_tvm.relax.models import small_cnn
from syno_tvm.train.program import build_graph
from syno_tvm.train.loop import Trainer, _onehot
from syno_tvm.tune.default_schedule import default_schedule, schedule_func
from syno_tvm.tune.targets import host


def _random_args(func: tvm.tirx.PrimFunc, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, [int(d) for d in p.ty.shape]).astype(np.float32) for p in func.params]


def _run(func: tvm.tirx.PrimFunc, arrays: list[np.ndarray]) -> np.ndarray:
    args = [tvm.runtime.tensor(a) for a in arrays]
    tvm.compile(func, target=host(2))(*args)
    return args[-1].numpy()


def test_backward_kernels_run_parallel_with_identical_results():
    """Each gather reduction of a synthesized operator's backward gets a parallel outer loop with its reduction
    loops inside, so every output element is summed in the same order as before: bit-identical results."""
    op = load_operator("syno_operator1:g=2")[0]
    binding = dict(N=4, C_in=8, C_out=8, H=4, W=4)
    for tensor in range(1 + len(op.weights)):
        plain = backward_primfunc(op, tensor, binding)
        scheduled = schedule_func(plain, threads=2)
        assert "T.parallel" not in plain.script() and "T.parallel" in scheduled.script()
        arrays = _random_args(plain, tensor)
        np.testing.assert_array_equal(_run(scheduled, arrays), _run(plain, arrays))
        assert schedule_func(plain, threads=1).same_as(plain)


def test_loops_without_parallel_work_stay_serial():
    """A full reduction has no data-parallel loop to split, and a small elementwise loop costs less than waking
    the thread pool: both are left as they were, and the build still works."""
    a = te.placeholder((64, 64), name="A")
    k, j = te.reduce_axis((0, 64), name="k"), te.reduce_axis((0, 64), name="j")
    total = te.compute((1,), lambda _: te.sum(a[k, j], axis=[k, j]), name="total")
    small = te.compute((8, 8), lambda i, j: a[i, j] * 2.0, name="small")
    for out in (total, small):
        func = te.create_prim_func([a, out])
        assert "T.parallel" not in schedule_func(func, threads=2).script()


def test_swapped_training_step_matches_the_unscheduled_build():
    """The Trainer's untuned build (default schedule, 2 threads) computes the same step as ``tvm.compile`` of the
    same module, and the swapped operator's backward kernel in it is parallel."""
    model = small_cnn(batch=4, width=4, seed=5)
    graph = build_graph(model, load_operator("syno_operator1:g=2")[0])
    assert "swap" in [d.action for d in graph.decisions]
    legal = relax.transform.LegalizeOps()(graph.module)
    scheduled = default_schedule(legal, host(2))
    grads = [f for gv, f in scheduled.functions_items() if gv.name_hint.startswith("syno_grad")]
    assert grads and all("T.parallel" in f.script() for f in grads)

    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    labels = np.array([3, 1, 4, 1])
    trainer = Trainer(graph, threads=2)
    dev = tvm.cpu()
    plain = relax.VirtualMachine(tvm.compile(graph.module, target=host(2)), dev)
    scalars = [tvm.runtime.tensor(np.float32(v), dev) for v in graph.optimizer.scalars(0.05, 1)]
    want = plain["step"](tvm.runtime.tensor(x, dev), tvm.runtime.tensor(_onehot(labels, graph.num_classes), dev),
                         *scalars, *trainer.params, *trainer.states, *trainer.slots)
    loss, logits = trainer.step(x, labels, 0.05)
    np.testing.assert_array_equal(loss, want[0].numpy())
    np.testing.assert_array_equal(logits, want[1].numpy())
    for got, ref in zip(trainer.params + trainer.states, list(want[2:])):
        np.testing.assert_array_equal(got.numpy(), ref.numpy())
