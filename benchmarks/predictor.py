"""Latency predictors against their baselines, held out by operator, and few-shot transfer to a second target.

    python benchmarks/predictor.py --data benchmarks/data/latency [--tir] [--shots 20] [--out FILE.json]

Held out: 5 folds by operator on target A (this CPU's code generation); per binding, Spearman rho, Kendall tau and
top-10 % recall of each score against the measured tuned latency, averaged over bindings and folds.  Scores:
FLOPs alone, untuned latency alone, XGBoost on MetaSchedule's per-store TIR features alone (the input of
MetaSchedule's own XGBoost cost model; with --tir), and the project's rankers on graph + analytic features +
untuned latency (+ TIR features with --tir).

Transfer: the ranker trained on all of target A, then (a) used as is on target B, (b) adapted with --shots target-B
rows chosen by a diversity sampler, (c) a ranker trained on those rows alone; scored on the other target-B rows.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from syno_tvm.predict.dataset import Dataset  # noqa: E402
from syno_tvm.predict.evaluate import diverse_sample, operator_folds, ranking  # noqa: E402
from syno_tvm.predict.features import features  # noqa: E402
from syno_tvm.predict.predictor import create  # noqa: E402


def table(ds: Dataset, target: str, tir: bool):
    rows = [r for r in ds.measured(target) if r.untuned_us]
    groups = ("graph", "analytic", "tir") if tir else ("graph", "analytic")
    target_json = json.dumps({"kind": "llvm", "mcpu": target.split("-")[0], "num-cores": 1})
    X = np.array([np.append(features(ds.operators[r.op_hash], r.binding, groups, target_json),
                            math.log2(r.untuned_us)) for r in rows])
    T = np.array([features(ds.operators[r.op_hash], r.binding, ("tir",), target_json) for r in rows]) if tir else None
    return dict(rows=rows, X=X, T=T, y=np.log2([r.tuned_us for r in rows]),
                g=np.array([r.binding_name for r in rows]), ops=np.array([r.op_hash for r in rows]),
                flops=np.log2([max(1, r.flops) for r in rows]), untuned=np.log2([r.untuned_us for r in rows]))


def held_out(d, tir: bool) -> dict[str, dict]:
    scores: dict[str, np.ndarray] = {"flops": d["flops"], "untuned latency": d["untuned"]}
    models = {"xgb-rank (ours)": ("xgb-rank", d["X"]), "xgb regression (ours)": ("xgb", d["X"])}
    if tir:
        models["xgb on MetaSchedule TIR features"] = ("xgb-rank", d["T"])
    out = {}
    for name, s in scores.items():
        out[name] = ranking(d["y"], s, d["g"])
    for name, (kind, X) in models.items():
        pred = np.zeros(len(d["y"]))
        for train, test in operator_folds(d["ops"]):
            pred[test] = create(kind).fit(X[train], d["y"][train], d["g"][train]).predict(X[test])
        out[name] = ranking(d["y"], pred, d["g"])
    return {k: v.to_json() for k, v in out.items()}


def transfer(a, b, shots: int) -> dict[str, dict]:
    """Rows of target B whose operator is also in A are matched by (operator, binding)."""
    pick = diverse_sample(b["X"], shots)
    rest = np.setdiff1d(np.arange(len(b["y"])), pick)
    base = create("xgb-rank").fit(a["X"], a["y"], a["g"])
    zero = base.predict(b["X"][rest])
    adapted = create("xgb-rank").fit(a["X"], a["y"], a["g"]).update(b["X"][pick], b["y"][pick], b["g"][pick])
    alone = create("xgb-rank").fit(b["X"][pick], b["y"][pick], b["g"][pick])
    truth, g = b["y"][rest], b["g"][rest]
    return {"A model, no B samples": ranking(truth, zero, g).to_json(),
            f"A model adapted with {shots} B samples": ranking(truth, adapted.predict(b["X"][rest]), g).to_json(),
            f"trained on the {shots} B samples alone": ranking(truth, alone.predict(b["X"][rest]), g).to_json(),
            "untuned latency on B": ranking(truth, b["untuned"][rest], g).to_json()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="benchmarks/data/latency")
    p.add_argument("--tir", action="store_true", help="add MetaSchedule's per-store TIR features (slow to extract)")
    p.add_argument("--shots", type=int, default=20)
    p.add_argument("--out", help="write the figures as JSON here")
    a = p.parse_args()
    ds = Dataset.open(a.data)
    targets = sorted({r.target for r in ds.measured()}, key=lambda t: t.startswith("haswell"))
    if not targets:
        sys.exit(f"{a.data} holds no measured records: run benchmarks/latency_dataset.py first")
    A = table(ds, targets[0], a.tir)
    n_ops = len(set(A["ops"]))
    print(f"dataset {a.data}: {len(ds.operators)} operators, {len(ds.records)} records; target A {targets[0]}: "
          f"{len(A['y'])} rows, {n_ops} operators; machine {A['rows'][0].machine}")
    if n_ops < 10:
        sys.exit(f"only {n_ops} measured operators on {targets[0]}: too few for 5 folds (measure more)")
    results = {"target_a": targets[0], "rows_a": len(A["y"]), "operators_a": n_ops, "held_out": held_out(A, a.tir)}
    print(f"\nheld out by operator (5 folds), target {targets[0]}, mean over bindings:")
    print(f"{'score':40s} {'spearman':>9s} {'kendall':>8s} {'top10%':>7s}")
    for name, r in results["held_out"].items():
        print(f"{name:40s} {r['spearman']:9.3f} {r['kendall']:8.3f} {r['top10_recall']:7.2f}")
    if len(targets) > 1:
        B = table(ds, targets[1], a.tir)
        if len(B["y"]) > a.shots + 10:
            results["target_b"], results["rows_b"] = targets[1], len(B["y"])
            results["transfer"] = transfer(A, B, a.shots)
            print(f"\nfew-shot transfer {targets[0]} -> {targets[1]} ({len(B['y'])} rows on B):")
            for name, r in results["transfer"].items():
                print(f"{name:40s} {r['spearman']:9.3f} {r['kendall']:8.3f} {r['top10_recall']:7.2f}")
        else:
            print(f"\ntransfer: only {len(B['y'])} rows on {targets[1]} so far (need > {a.shots + 10})")
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
