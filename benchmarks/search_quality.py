"""MCTS against random search: the same budget, the same reward, several seeds each; how many evaluations each
needs before its best reward reaches given levels, and the ratio (the issue's goal: MCTS >= 3x fewer).

Both run through the real search (:func:`syno_tvm.search.driver.search`, SQLite store and all) on the ResNet-18
CIFAR layers; the curves are read back from the stores.  The reward is the search's default (``soft``: MnasNet's
latency-aware form with Syno's accuracy shaping, reward.py) on the evaluators given (default ``flops``: FLOPs
summed over the model's layers relative to conv2d's).  A level is a quantile of the final best rewards of all
A level lies a given fraction of the way from the original's reward (1: conv2d scores 1) to the best final reward of
all runs; a run that never reaches a level counts as needing the budget + 1 (so the ratio is a bound there).
``--from-json`` redoes the table and plot from a saved run.

    python benchmarks/search_quality.py --budget 300 --seeds 5 --out benchmarks/results/search_quality
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from syno_tvm.search.driver import SearchConfig, search
from syno_tvm.search.results import load


def curve(out: Path, budget: int) -> list[float]:
    """Best reward after each evaluation (failed ones count as evaluations)."""
    best, out_curve = 0.0, []
    for r in load(out).results[:budget]:
        best = max(best, r.reward)
        out_curve.append(best)
    return out_curve + [best] * (budget - len(out_curve))


def needed(c: list[float], level: float) -> int:
    """Evaluations until the best reward is >= level (budget + 1 when never)."""
    return next((i + 1 for i, v in enumerate(c) if v >= level - 1e-12), len(c) + 1)


def machine() -> str:
    from syno_tvm.tune.targets import host_cpu

    try:
        model = next(line.split(":", 1)[1].strip() for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name"))
    except StopIteration:
        model = platform.processor()
    return f"{model}, llvm -mcpu={host_cpu()}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="builtin:resnet18-cifar")
    p.add_argument("--evaluator", default="flops", help="comma list, as syno-tvm search --evaluator")
    p.add_argument("--budget", type=int, default=300)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--fractions", default="0.5,0.75,0.9,0.95,0.99,1.0",
                   help="levels as fractions of the way from reward 1 (the original) to the best final reward")
    p.add_argument("--out", required=True, help="prefix of the .txt, .json and .png written")
    p.add_argument("--from-json", help="take the curves of a saved run instead of searching again")
    args = p.parse_args()

    curves: dict[str, list[list[float]]] = {"random": [], "mcts": []}
    seconds: dict[str, list[float]] = {"random": [], "mcts": []}
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        curves, seconds = saved["curves"], saved["seconds"]
        for k in ("model", "evaluator", "budget", "seeds"):
            setattr(args, k, saved["args"][k])
    with tempfile.TemporaryDirectory(prefix="search_quality_") as tmp:
        for seed in range(0 if args.from_json else args.seeds):
            for strategy in curves:
                out = Path(tmp) / f"{strategy}{seed}"
                t0 = time.perf_counter()
                search(SearchConfig(out=str(out), model=args.model, strategy=strategy,
                                    evaluators=tuple(args.evaluator.split(",")), budget=args.budget, seed=seed),
                       progress=False)
                seconds[strategy].append(time.perf_counter() - t0)
                curves[strategy].append(curve(out, args.budget))
                print(f"{strategy} seed {seed}: best {curves[strategy][-1][-1]:.4f} in {seconds[strategy][-1]:.0f} s",
                      flush=True)
    top = max(c[-1] for cs in curves.values() for c in cs)
    levels = sorted({round(1.0 + float(f) * (top - 1.0), 6) for f in args.fractions.split(",")})
    levels[-1] = top  # the best reached itself, unrounded
    run = (f"python benchmarks/search_quality.py --model {args.model} --evaluator {args.evaluator} --budget "
           f"{args.budget} --seeds {args.seeds}")
    lines = [f"command: python {' '.join(shlex.quote(a) for a in sys.argv)}"
             + (f" (curves of: {run})" if args.from_json else ""),
             f"machine: {machine()} (shared with other agents; times are not speed figures)",
             f"model {args.model}, evaluators {args.evaluator}, budget {args.budget}, seeds 0..{args.seeds - 1}, "
             "reward soft (reward.py); levels: fractions " + args.fractions + " of the way from 1 to the best", "",
             f"{'level':>10} {'random: evals (median; per seed)':>44} {'mcts: evals (median; per seed)':>44} "
             f"{'random/mcts':>12}"]
    table = []
    for level in levels:
        n = {s: [needed(c, level) for c in cs] for s, cs in curves.items()}
        med = {s: float(np.median(v)) for s, v in n.items()}
        ratio = med["random"] / med["mcts"]
        table.append({"level": level, "random": n["random"], "mcts": n["mcts"], "median_ratio": ratio})
        fmt = lambda s: f"{med[s]:.0f}; {','.join(str(x) if x <= args.budget else '>' + str(args.budget) for x in n[s])}"  # noqa: E731
        lines.append(f"{level:10.4f} {fmt('random'):>44} {fmt('mcts'):>44} {ratio:12.2f}")
    lines += ["", "final best reward per seed: " + "; ".join(
        f"{s} {', '.join(f'{c[-1]:.4f}' for c in cs)}" for s, cs in curves.items()),
        "seconds per run: " + "; ".join(f"{s} {', '.join(f'{t:.0f}' for t in ts)}" for s, ts in seconds.items()),
        "(a run that never reaches a level counts as budget + 1, printed >budget)"]
    text = "\n".join(lines) + "\n"
    print(text)
    prefix = Path(args.out)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{prefix}.txt").write_text(text)
    Path(f"{prefix}.json").write_text(json.dumps({"args": vars(args), "machine": machine(), "curves": curves,
                                                  "levels": table, "seconds": seconds}, indent=1) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    x = np.arange(1, args.budget + 1)
    for (s, cs), color in zip(curves.items(), ("tab:gray", "tab:red")):
        arr = np.array(cs)
        for c in arr:
            ax.plot(x, c, c=color, alpha=0.25, lw=0.8)
        ax.plot(x, np.median(arr, axis=0), c=color, lw=2, label=f"{s} (median of {len(cs)} seeds)")
    ax.set_xscale("log")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best reward so far")
    ax.set_title(f"MCTS vs random, {args.evaluator} reward, {args.model}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{prefix}.png", dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
