"""How close the tuned kernels get to this CPU's fp32 peak, on the largest ResNet-18@32 layer.

The layer (3x3 conv, 64 -> 64 channels, 32x32, batch 1: the largest activations among the equal-FLOP 3x3 convs)
is written as a one-node ONNX model.  Rows: onnxruntime on that conv; TVM's own conv2d (Relax, tuned); the library
``conv2d`` swapped in (our TE contraction, tuned: the same FLOPs); Syno's Operator 1 swapped in (tuned; GFLOP/s
over its own, smaller FLOP count).  The peak is measured here by an FMA microkernel (12 independent AVX-512 or
AVX2 FMA chains per thread, one thread per core, compiled with gcc), because the advertised clock understates
these cores.  All rows are timed in interleaved rounds; each figure is the median over rounds.

``--set synth`` (issue 19, item 3) times instead Operator 1, a shift-conv, a grouped conv and ``--random`` operators
drawn by the vision spec's sampler (``synth.sampler.create``), each swapped into the same layer and tuned alike, and gives
each one's GFLOP/s (over its own FLOPs) as a fraction of the tuned conv2d's: the median over the set, Operator 1
named apart.  A swapped operator runs one PrimFunc per planned stage (``relax.swap.call_stages``), each its own
tuning task with ``--trials`` of its own: the rows say how many tasks and trials each got.

    python benchmarks/kernel_efficiency.py --trials 64 --work-dir /tmp/kernel_db
    python benchmarks/kernel_efficiency.py --set synth --random 10 --trials 32 --work-dir /tmp/kernel_db
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import tvm
from onnx import TensorProto, helper, numpy_helper
from tvm import relax

from syno_tvm.ir.library import named
from syno_tvm.relax.frontend import import_onnx
from syno_tvm.relax.swap import OperatorSwap
from syno_tvm.tune import metaschedule, targets
from syno_tvm.tune.measure import input_arrays, machine_facts, measure_onnxruntime

LAYER = {"C_in": 64, "C_out": 64, "H": 32, "W": 32}

FMA_KERNEL = r"""
#include <immintrin.h>
/* 12 independent FMA chains hide the 4-cycle FMA latency on 2 pipes; returns a value so nothing is elided. */
float fma_loop(long iters) {
#ifdef __AVX512F__
  __m512 a[12], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
  for (long n = 0; n < iters; n++)
    for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
  __m512 s = a[0]; for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
  return _mm512_reduce_add_ps(s);
#else
  __m256 a[12], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
  for (long n = 0; n < iters; n++)
    for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
  float out[8]; __m256 s = a[0]; for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
  _mm256_storeu_ps(out, s); return out[0] + out[7];
#endif
}
int lanes(void) {
#ifdef __AVX512F__
  return 16;
#else
  return 8;
#endif
}
"""


def fma_peak(threads: int, seconds: float = 0.5) -> tuple[float, int]:
    """Measured fp32 peak in GFLOP/s over ``threads`` threads (ctypes drops the GIL), and the vector width used."""
    flags = (Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else "").split()
    isa = "-mavx512f" if "avx512f" in flags else "-mavx2"
    with tempfile.TemporaryDirectory() as tmp:
        src, lib = Path(tmp) / "fma.c", Path(tmp) / "fma.so"
        src.write_text(FMA_KERNEL)
        subprocess.run(["gcc", "-O3", isa, "-mfma", "-shared", "-fPIC", str(src), "-o", str(lib)], check=True)
        so = ctypes.CDLL(str(lib))
    so.fma_loop.argtypes, so.fma_loop.restype = [ctypes.c_long], ctypes.c_float
    lanes = so.lanes()
    iters = 1_000_000
    start = time.perf_counter()
    so.fma_loop(iters)
    iters = max(1, int(iters * seconds / (time.perf_counter() - start)))
    pool = [threading.Thread(target=so.fma_loop, args=(iters,)) for _ in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    return threads * iters * 12 * lanes * 2 / elapsed / 1e9, lanes


def conv_model() -> onnx.ModelProto:
    c_in, c_out, h, w = LAYER["C_in"], LAYER["C_out"], LAYER["H"], LAYER["W"]
    weight = np.random.default_rng(0).standard_normal((c_out, c_in, 3, 3)).astype("float32") * 0.05
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c_in, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c_out, h, w])],
        [numpy_helper.from_array(weight, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def synthesized(count: int, seed: int) -> list[tuple[str, object]]:
    """Operator 1, a shift-conv, a grouped conv, then ``count`` random operators of the vision space."""
    from syno_tvm.synth.sampler import create
    from syno_tvm.synth.space import Space
    from syno_tvm.synth.spec import load_spec

    ops = [(f"swapped {n} (tuned)", named(n)) for n in ("syno_operator1", "shift_conv", "conv2d_grouped")]
    rng = np.random.default_rng(seed)
    sampler = create("auto", Space(load_spec("vision")), int(rng.integers(1 << 62)))
    for i in range(count):
        op = sampler.random_final(rng).final.operator
        ops.append((f"random {i} {op.hash[:10]} (tuned)", op))
    return ops


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=64, help="MetaSchedule trials per tuning task")
    ap.add_argument("--work-dir", default="kernel_tuning", help="tuning database, reused across runs")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--set", choices=["conv", "synth"], default="conv", help="conv: the conv rows above; synth: "
                    "synthesized operators against the tuned conv2d (item 3)")
    ap.add_argument("--random", type=int, default=10, help="random vision-space operators in --set synth")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    facts = machine_facts()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    threads = int(facts["cores"])
    target = targets.host()
    print(f"target: {target}; layer {LAYER} (3x3, batch 1); trials per task: {args.trials}")

    model = conv_model()
    inputs = input_arrays(model)
    mod = import_onnx(model)
    conv_flops = 2 * LAYER["C_out"] * LAYER["H"] * LAYER["W"] * LAYER["C_in"] * 9
    rows: dict[str, tuple[relax.VirtualMachine, int]] = {}
    chosen = ([("swapped conv2d TE (tuned)", named("conv2d")), ("swapped syno_operator1 (tuned)",
                                                                  named("syno_operator1"))]
              if args.set == "conv" else synthesized(args.random, args.seed))
    for name, op in [("TVM conv2d (Relax, tuned)", None)] + chosen:
        swap = OperatorSwap(op) if op else None
        variant = swap(mod) if swap else mod
        if swap and swap.decisions[0].action != "swap":
            print(f"skipped {name}: {swap.decisions[0].to_json()}")
            continue
        flops = swap.decisions[0].flops_after if swap else conv_flops
        tuned = metaschedule.tune(variant, target, args.work_dir, args.trials)
        vm = relax.VirtualMachine(metaschedule.compile_tuned(variant, target, args.work_dir), tvm.cpu())
        rows[name] = (vm, flops)
        print(f"tuned {name}: {len(tuned.tasks)} task(s), {tuned.new_trials} new trials, {tuned.failed} failed, "
              f"{flops / 1e6:.1f} MFLOP", flush=True)

    samples: dict[str, list[float]] = {"fp32 peak (FMA microkernel)": [], "onnxruntime conv": [],
                                       **{k: [] for k in rows}}
    dev = tvm.cpu()
    x = [tvm.runtime.tensor(a, dev) for a in inputs]
    for _ in range(args.rounds):
        peak, lanes = fma_peak(threads)
        samples["fp32 peak (FMA microkernel)"].append(peak)
        ort_ms = measure_onnxruntime(model, inputs, threads, number=20, repeat=20).median_ms
        samples["onnxruntime conv"].append(conv_flops / ort_ms / 1e6)
        for name, (vm, flops) in rows.items():
            vm["main"](*x)
            res = vm.time_evaluator("main", dev, number=20, repeat=20)(*x)
            samples[name].append(flops / float(np.median(res.results)) / 1e9)
    peak = float(np.median(samples["fp32 peak (FMA microkernel)"]))
    print(f"\nfp32 peak measured: {peak:.1f} GFLOP/s ({threads} threads x {lanes}-lane FMA; rounds "
          f"{', '.join(f'{p:.0f}' for p in samples['fp32 peak (FMA microkernel)'])})")
    conv = float(np.median(samples["TVM conv2d (Relax, tuned)"]))
    print(f"{'row':34s} {'GFLOP/s':>8s} {'% of peak':>9s} {'round min-max':>14s} {'vs conv2d':>9s} {'MFLOP':>7s}")
    ratios = {}
    for name, xs in samples.items():
        if name.startswith("fp32 peak"):
            continue
        med = float(np.median(xs))
        mflop = f"{rows[name][1] / 1e6:7.1f}" if name in rows else f"{conv_flops / 1e6:7.1f}"
        ratios[name] = med / conv
        print(f"{name:34s} {med:8.1f} {100 * med / peak:8.1f}% {min(xs):6.1f}-{max(xs):<7.1f} {med / conv:8.2f}x "
              f"{mflop}")
    if args.set == "synth":
        synth = [r for n, r in ratios.items() if n.startswith(("swapped", "random"))]
        print(f"synthesized operators' GFLOP/s / tuned conv2d's: median {np.median(synth):.2f} over {len(synth)}; "
              f"Operator 1 {ratios.get('swapped syno_operator1 (tuned)', float('nan')):.2f} (goal: median >= 0.80)")
    print("(Operator 1's GFLOP/s count its own FLOPs, fewer than the conv's; goal: >= onnxruntime's efficiency, "
          ">= 40 % of peak)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TVM_NUM_THREADS", str(os.cpu_count()))
    sys.exit(main())
