"""Diagnostic for benchmarks/kernel_efficiency.py: is the if_then_else padding inside the reduction why the swapped conv2d tunes worse than Relax's conv2d?
Same layer, same trials: TE conv with a separate zero-pad stage (as topi does) vs the library conv2d's TE.
benchmarks/results/padding_check.txt was measured when our TE was single-stage (guard inside the reduction); since
the padding became its own stage (syno_tvm/lower/te_forward.py padded_product) the "ours" row measures that.

    python benchmarks/padding_check.py --work-dir /work/kern/db   (a kernel_efficiency database is reused)
"""
import argparse, sys, numpy as np, tvm
from tvm import relax, te
sys.path.insert(0, "benchmarks")
import kernel_efficiency as K
from syno_tvm.relax.frontend import import_onnx
from syno_tvm.relax.swap import OperatorSwap
from syno_tvm.ir.library import named
from syno_tvm.tune import metaschedule, targets
from syno_tvm.tune.measure import input_arrays

def padded_conv(x, w):
    n, c, h, wd = x.shape
    k = te.reduce_axis((0, 64), "c"); r = te.reduce_axis((0, 3), "r"); s = te.reduce_axis((0, 3), "s")
    p = te.compute((1, 64, 34, 34), lambda n, c, i, j: te.if_then_else(
        tvm.tirx.all(i >= 1, i < 33, j >= 1, j < 33), x[n, c, i - 1, j - 1], tvm.tirx.const(0.0, "float32")), name="pad")
    return te.compute((1, 64, 32, 32), lambda n, o, i, j: te.sum(p[n, k, i + r, j + s] * w[o, k, r, s], axis=[k, r, s]), name="Y")

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--work-dir", required=True, help="MetaSchedule database directory (kernel_efficiency's is reused)")
ap.add_argument("--trials", type=int, default=32, help="trials per task")
args = ap.parse_args()
model = K.conv_model(); x = input_arrays(model)
bb = relax.BlockBuilder()
xv = relax.Var("x", relax.TensorType((1, 64, 32, 32), "float32"))
wt = model.graph.initializer[0]
from onnx import numpy_helper
with bb.function("main", [xv]):
    with bb.dataflow():
        y = bb.emit(bb.call_te(padded_conv, xv, relax.const(numpy_helper.to_array(wt))))
        out = bb.emit_output(y)
    bb.emit_func_output(out)
padmod = bb.get()
mod = import_onnx(model); te_mod = OperatorSwap(named("conv2d"))(mod)
t = targets.host(); db = args.work_dir
metaschedule.tune(padmod, t, db, args.trials)
vms = {name: relax.VirtualMachine(metaschedule.compile_tuned(m, t, db), tvm.cpu()) for name, m in
       [("relax conv2d", mod), ("library conv2d TE (ours)", te_mod), ("TE separate pad stage", padmod)]}
xs = [tvm.runtime.tensor(a) for a in x]
ref = vms["relax conv2d"]["main"](*xs).numpy()
res = {k: [] for k in vms}
for _ in range(5):
    for k, vm in vms.items():
        assert np.abs(vm["main"](*xs).numpy() - ref).max() < 1e-3
        r = vm.time_evaluator("main", tvm.cpu(), number=20, repeat=20)(*xs)
        res[k].append(75497472 / float(np.median(r.results)) / 1e9)
for k, v in res.items():
    print(f"{k:40s} {np.median(v):6.1f} GFLOP/s (rounds {min(v):.1f}-{max(v):.1f})")
