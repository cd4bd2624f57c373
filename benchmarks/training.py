"""Training inside TVM: throughput against PyTorch CPU, and the accuracy of swapped models on the proxy recipe.

    python benchmarks/training.py [--seeds 3] [--torch-python /work/torch-venv/bin/python]
    python benchmarks/training.py --skip-accuracy --tune-trials 4 --tune-dir /tmp/train_db   (tuned step)

1. images/s of one training step (forward, backward, SGD momentum) of ResNet-18 (CIFAR form) at the proxy width,
   syno-tvm (the compiled Relax step: untuned default schedules, or with --tune-trials every kernel of the step
   tuned by MetaSchedule first, the tuning time printed apart) vs PyTorch CPU, same model, batch and threads,
   measured one after the other in this run (median step), printed with their ratio;
2. validation accuracy, mean +- std over seeds, of the original model, conv2d swapped in (the same function: must
   match within noise), Syno's Operator 1 and a grouped conv, on the proxy recipe (syno_tvm/train/proxy.py),
   with the delta to the original in percentage points.  Fashion-MNIST: relative rankings, not CIFAR accuracies.

PyTorch runs in its own venv (benchmarks/torch_peer.py): apache-tvm-ffi imports torch whenever it is installed
beside it, so torch is not a project dependency and never goes into the project's venv.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from syno_tvm.ir.library import conv2d, conv2d_grouped, syno_operator1
from syno_tvm.train import proxy
from syno_tvm.train.program import build_graph
from syno_tvm.train.loop import Trainer, model_proto


def tvm_throughput(width: int, batch: int, threads: int, steps: int, tune_trials: int = 0,
                   tune_dir: str | None = None) -> float:
    cfg = replace(proxy.PROXY, width=width, batch=batch)
    t0 = time.perf_counter()
    trainer = Trainer(build_graph(model_proto(cfg, 10)), threads, tune_trials, tune_dir, progress=tune_trials > 0)
    if trainer.tuning is not None:
        t = trainer.tuning
        print(f"  tuned the step: {len(t.tasks)} tasks x {tune_trials} trials, {t.new_trials} new, {t.failed} failed; "
              f"tuning + build {time.perf_counter() - t0:.0f} s (database {tune_dir})", flush=True)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, batch)
    times = []
    for i in range(steps + 2):  # two warm-up steps
        t = time.perf_counter()
        trainer.step(x, y, 0.05)
        if i >= 2:
            times.append(time.perf_counter() - t)
    return batch / sorted(times)[len(times) // 2]


def torch_throughput(python: str, width: int, batch: int, threads: int, steps: int) -> float | None:
    if not Path(python).is_file():
        print(f"PyTorch peer skipped: no python at {python} (make a venv with torch CPU, pass --torch-python)")
        return None
    peer = Path(__file__).with_name("torch_peer.py")
    out = subprocess.run([python, str(peer), "--width", str(width), "--batch", str(batch), "--threads",
                          str(threads), "--steps", str(steps)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=10, help="timed training steps per side")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="alternating syno-tvm / PyTorch measurements")
    p.add_argument("--torch-python", default=os.environ.get("SYNO_TORCH_PYTHON", "/work/torch-venv/bin/python"))
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--tune-trials", type=int, default=0, help="MetaSchedule trials per kernel of the step (0: untuned)")
    p.add_argument("--tune-dir", default="training_tuning", help="tuning database (reused by later rounds and runs)")
    p.add_argument("--json", help="also write all numbers here")
    a = p.parse_args()
    recipe = proxy.PROXY
    w, b = recipe.width, recipe.batch
    print(f"ResNet-18 (CIFAR form) width {w}, batch {b}, {a.threads} threads, median of {a.steps} steps, "
          f"{a.rounds} alternating rounds (the machine is shared: compare within a round)")
    rounds = []
    for r in range(a.rounds):
        tvm_ips = tvm_throughput(w, b, a.threads, a.steps, a.tune_trials, a.tune_dir)
        torch_ips = torch_throughput(a.torch_python, w, b, a.threads, a.steps)
        rounds.append({"syno_tvm": tvm_ips, "torch": torch_ips})
        ratio = f"  -> syno-tvm / PyTorch = {tvm_ips / torch_ips:.3f}" if torch_ips else ""
        print(f"  round {r + 1}: syno-tvm {tvm_ips:8.1f} images/s   PyTorch "
              f"{torch_ips or float('nan'):8.1f} images/s{ratio}", flush=True)
    if all(x["torch"] for x in rounds):
        ratios = sorted(x["syno_tvm"] / x["torch"] for x in rounds)
        print(f"  median ratio syno-tvm / PyTorch: {ratios[len(ratios) // 2]:.3f} "
              f"(range {ratios[0]:.3f} .. {ratios[-1]:.3f}); syno-tvm "
              + (f"tuned, {a.tune_trials} trials per kernel" if a.tune_trials else "runs default untuned schedules"))
    result = {"throughput": {"width": w, "batch": b, "threads": a.threads, "tune_trials": a.tune_trials,
                             "rounds": rounds}}
    if not a.skip_accuracy:
        g = max(1, w // 2)
        variants = [("original", None), ("conv2d", conv2d()),
                    (f"syno_operator1(g={g})", syno_operator1(g=g)), (f"conv2d_grouped(g={g})", conv2d_grouped(g=g))]
        print(f"\naccuracy, proxy recipe: {recipe.model} width {w}, {recipe.data} subset {recipe.limit} "
              f"(val {recipe.val_fraction:.0%}), {recipe.epochs} epochs, batch {b}, {recipe.optimizer} lr {recipe.lr} "
              f"{recipe.schedule}; operators in the stride-1 3x3 convs; seeds 0..{a.seeds - 1}")
        rows = []
        for label, op in variants:
            runs = [proxy.run(op, label, recipe, seed) for seed in range(a.seeds)]
            accs = [100 * r["val_acc"] for r in runs]
            rows.append({"operator": label, "runs": runs, "mean": float(np.mean(accs)), "std": float(np.std(accs))})
            print(f"  {label:24s} {rows[-1]['mean']:6.2f} +- {rows[-1]['std']:4.2f} %  "
                  f"[{', '.join(f'{x:.2f}' for x in accs)}]  swapped {runs[0]['swapped_layers']} layers  "
                  f"{np.mean([r['images_per_s'] for r in runs]):.1f} images/s", flush=True)
        base = rows[0]["mean"]
        print("\n  operator                  delta vs original (pp)")
        for r in rows[1:]:
            print(f"  {r['operator']:24s} {r['mean'] - base:+6.2f}")
        result["accuracy"] = rows
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
