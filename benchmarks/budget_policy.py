"""Tuning budget policies side by side: the same global budget (trials x tasks) per model, spread ``uniform`` (every
task the same trials) or ``share`` (a floor of one round per task, MetaSchedule's gradient task scheduler spends
the rest on the tasks whose weighted latency falls fastest), on ResNet-18@32 and with Syno's Operator 1 swapped
into every 3x3 conv.  Each policy has its own database (``WORK_DIR/<policy>``); all latencies are measured after
all tuning, in interleaved rounds with onnxruntime, so that load from other processes hits every row alike.

    python benchmarks/budget_policy.py --width 32 --trials 16 --work-dir /tmp/policy_db
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import tvm
from tvm import relax

from syno_tvm.ir.library import named
from syno_tvm.relax.frontend import import_onnx
from syno_tvm.relax.models import resnet18_cifar
from syno_tvm.relax.swap import OperatorSwap, find_layers
from syno_tvm.tune import metaschedule, targets
from syno_tvm.tune.measure import input_arrays, machine_facts, measure_onnxruntime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=64, help="ResNet-18 base width (64 = the real model)")
    ap.add_argument("--trials", type=int, default=16, help="budget per task (global budget = trials x tasks)")
    ap.add_argument("--work-dir", default="policy_tuning", help="one database per policy under this folder")
    ap.add_argument("--policies", default="share,uniform", help="comma-separated, tuned in this order")
    ap.add_argument("--models", default="original,syno_operator1", help="comma-separated subset of the two models")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    facts = machine_facts()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items())
          + f", TVM_NUM_THREADS {os.environ.get('TVM_NUM_THREADS')} (shared machine: compare ratios)")
    target = targets.host()
    print(f"target: {target}; width {args.width}; budget {args.trials} trials x tasks per model")
    model = resnet18_cifar(batch=1, width=args.width)
    mod = import_onnx(model)
    convs = [d for d in find_layers(mod) if d.kind == "conv2d" and d.shape["kernel"] == 3]
    models = {"original": mod, "syno_operator1": OperatorSwap({d.layer: named("syno_operator1") for d in convs})(mod)}
    inputs = input_arrays(model)
    dev = tvm.cpu()
    x = [tvm.runtime.tensor(a, dev) for a in inputs]
    vms, tuning = {}, {}
    for policy in args.policies.split(","):
        for name, variant in models.items():
            if name not in args.models.split(","):
                continue
            work = Path(args.work_dir) / policy
            res = metaschedule.tune(variant, target, work, args.trials, policy=policy)
            row = f"{name} [{policy}]"
            tuning[row] = res.to_json()
            vms[row] = relax.VirtualMachine(metaschedule.compile_tuned(variant, target, work), dev)
            per_task = ", ".join(str(t.trials) for t in res.tasks)
            print(f"tuned {row}: {len(res.tasks)} tasks, budget {res.budget_trials}, {res.new_trials} new trials "
                  f"({per_task}), {res.seconds:.0f} s", flush=True)
    samples: dict[str, list[float]] = {k: [] for k in vms} | {"onnxruntime original": []}
    for _ in range(args.rounds):
        samples["onnxruntime original"].append(measure_onnxruntime(model, inputs, int(facts["cores"])).median_ms)
        for row, vm in vms.items():
            vm["main"](*x)
            timer = vm.time_evaluator("main", dev, number=10, repeat=20)
            samples[row].append(1e3 * float(np.median(timer(*x).results)))
    ort = float(np.median(samples["onnxruntime original"]))
    print(f"\n{'row':30s} {'median ms':>10s} {'round min-max':>16s} {'vs ORT':>8s} {'budget':>7s}")
    for row, xs in samples.items():
        med = float(np.median(xs))
        budget = tuning[row]["budget_trials"] if row in tuning else ""
        print(f"{row:30s} {med:10.3f} {min(xs):7.3f}-{max(xs):<8.3f} {med / ort:7.2f}x {budget:>7}")
    print("('vs ORT' = how many times slower than onnxruntime on the original model)")
    if args.json:
        Path(args.json).write_text(json.dumps({"command": sys.argv, "machine": facts, "target": str(target),
                                               "tuning": tuning, "latency_ms": samples}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TVM_NUM_THREADS", str(os.cpu_count()))
    sys.exit(main())
