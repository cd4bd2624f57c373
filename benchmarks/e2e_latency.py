"""End-to-end batch-1 latency of ResNet-18@32x32 on this CPU, side by side in one run.

Rows: onnxruntime on the original ONNX model; TVM MetaSchedule-tuned original; tuned with (a) the library's
``conv2d`` swapped into every stride-1 3x3 conv (the same function, so this isolates what our lowering costs),
(b) Syno's Operator 1 and (c) a grouped conv swapped into every 3x3 conv (strided ones as AvgPool + operator,
Syno's scheme; the 1x1 projections and the classifier are kept).  Every model gets a budget of the same trials per
tuning task, spread by ``--budget-policy`` (``syno-tvm optimize``'s default unless named), from one shared database
(under ``uniform`` a workload two models share is tuned once).  Latencies are measured after all tuning,
interleaved over rounds so that load from other processes hits every row alike.

    python benchmarks/e2e_latency.py --trials 16 --work-dir /tmp/e2e_db --json benchmarks/results/e2e_latency.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import tvm
from tvm import relax

from syno_tvm.ir.library import named
from syno_tvm.relax.frontend import import_onnx
from syno_tvm.relax.models import resnet18_cifar
from syno_tvm.relax.swap import OperatorSwap, find_layers
from syno_tvm.tune import metaschedule, targets
from syno_tvm.tune.budget import DEFAULT_POLICY, POLICIES
from syno_tvm.tune.measure import input_arrays, machine_facts, measure_onnxruntime


def variants(mod: tvm.IRModule) -> list[tuple[str, OperatorSwap | None]]:
    convs = [d for d in find_layers(mod) if d.kind == "conv2d" and d.shape["kernel"] == 3]
    same = {d.layer: named("conv2d") for d in convs if d.shape["stride"] == 1}
    return [("tvm tuned original", None),
            ("(a) conv2d swapped (stride-1 3x3)", OperatorSwap(same)),
            ("(b) syno_operator1 (all 3x3)", OperatorSwap({d.layer: named("syno_operator1") for d in convs})),
            ("(c) conv2d_grouped g=32 (all 3x3)", OperatorSwap({d.layer: named("conv2d_grouped") for d in convs}))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=16, help="MetaSchedule trials per tuning task (every model)")
    ap.add_argument("--budget-policy", choices=POLICIES, default=DEFAULT_POLICY,
                    help="how trials x tasks is spread over a model's tasks (the same policy as syno-tvm optimize)")
    ap.add_argument("--work-dir", default="e2e_tuning", help="tuning database, reused across runs")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved measurement rounds")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    facts = machine_facts()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    target = targets.host()
    print(f"target: {target}; budget: {args.trials} trials x tasks per model, policy {args.budget_policy}")

    model = resnet18_cifar(batch=1)
    mod = import_onnx(model)
    inputs = input_arrays(model)
    rows: list[dict] = []
    vms: dict[str, relax.VirtualMachine] = {}
    reference = None
    for name, swap in variants(mod):
        variant = swap(mod) if swap else mod
        t0 = time.time()
        tuned = metaschedule.tune(variant, target, args.work_dir, args.trials, policy=args.budget_policy)
        ex = metaschedule.compile_tuned(variant, target, args.work_dir)
        vm = relax.VirtualMachine(ex, tvm.cpu())
        out = vm["main"](*[tvm.runtime.tensor(a) for a in inputs]).numpy()
        reference = out if reference is None else reference
        decisions = swap.decisions if swap else find_layers(mod)
        swapped = [d for d in decisions if d.action == "swap"]
        flops = sum(d.flops_after if d.action == "swap" else d.flops_before for d in decisions)
        row = {"name": name, "tasks": len(tuned.tasks), "budget_trials": tuned.budget_trials,
               "policy": tuned.policy, "new_trials": tuned.new_trials, "failed": tuned.failed,
               "reused_tasks": sum(t.reused for t in tuned.tasks), "tune_s": round(time.time() - t0, 1),
               "swapped_layers": len(swapped), "layer_flops": flops,
               "max_abs_diff_vs_original": float(np.abs(out - reference).max())}
        rows.append(row)
        vms[name] = vm
        print(f"tuned {name}: {row}", flush=True)

    print(f"measuring: {args.rounds} interleaved rounds, each 30 x 10 runs per row")
    samples: dict[str, list[float]] = {r["name"]: [] for r in rows}
    samples["onnxruntime original"] = []
    dev = tvm.cpu()
    args_dev = [tvm.runtime.tensor(a, dev) for a in inputs]
    for _ in range(args.rounds):
        samples["onnxruntime original"].append(measure_onnxruntime(model, inputs, threads=int(facts["cores"])).median_ms)
        for name, vm in vms.items():
            vm["main"](*args_dev)
            res = vm.time_evaluator("main", dev, number=10, repeat=30)(*args_dev)
            samples[name].append(float(np.median(res.results)) * 1e3)
    base = float(np.median(samples["tvm tuned original"]))
    ort = float(np.median(samples["onnxruntime original"]))
    print(f"\n{'row':38s} {'median ms':>10s} {'round min-max':>16s} {'vs tuned orig':>13s} {'vs ORT':>8s} "
          f"{'layer GFLOP':>11s}")
    by_name = {r["name"]: r for r in rows}
    table = []
    for name, xs in samples.items():
        med = float(np.median(xs))
        gflop = by_name[name]["layer_flops"] / 1e9 if name in by_name else by_name["tvm tuned original"]["layer_flops"] / 1e9
        print(f"{name:38s} {med:10.3f} {min(xs):7.3f}-{max(xs):<8.3f} {base / med:12.2f}x {ort / med:7.2f}x "
              f"{gflop:11.3f}")
        table.append({"name": name, "median_ms": med, "round_medians_ms": xs, "speedup_vs_tuned_original": base / med,
                      "speedup_vs_onnxruntime": ort / med})
    print("(speedup > 1 = faster than the reference; 'layer GFLOP' counts conv/matmul layers only)")
    if args.json:
        Path(args.json).write_text(json.dumps({"command": sys.argv, "machine": facts, "target": str(target),
                                               "trials_per_task": args.trials, "tuning": rows, "latency": table},
                                              indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
