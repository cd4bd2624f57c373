"""How far the proxy accuracy ranks operators like a longer run: Spearman rank correlation over >= 8 operators.

    python benchmarks/proxy_fidelity.py [--out benchmarks/results/proxy_fidelity.jsonl] [--limit-scale 1.0]
                                        [--synthesized OPS.jsonl --synthesized-count 2]

Each operator (in the stride-1 3x3 convs of ResNet-18, see syno_tvm/train/proxy.py) is trained with the PROXY
recipe and with the LONG recipe (same seed); the script prints both accuracies and the Spearman correlation of the
two rankings.  Slow: every finished run is appended to ``--out`` as one JSON line and skipped when the script is
started again, so it can be stopped and resumed.  ``--limit-scale`` shrinks both recipes' data subsets for a budget
that finishes on 2 shared cores (the printed recipe says what was run).  ``--synthesized`` adds the first
operators of a ``syno-tvm synthesize`` output (random synthesized operators, labelled by hash) to the built-ins;
benchmarks/results/proxy_fidelity_synth_ops.jsonl was made for the width-4 proxy model with

    syno-tvm synthesize --spec benchmarks/results/proxy_fidelity_synth_spec.json --model RESNET18_W4.onnx \
        --count 4 --seed 1 --out benchmarks/results/proxy_fidelity_synth_ops.jsonl

(the vision spec with g=2 instead of 32, so that sizes divide the width-4 channels; RESNET18_W4.onnx is
``syno_tvm.relax.models.builtin("builtin:resnet18-cifar", batch=1, width=4, num_classes=10, seed=0)``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from scipy.stats import spearmanr

from syno_tvm.ir import library as lib
from syno_tvm.ir.graph import Operator
from syno_tvm.train import proxy


def operators(width: int, synthesized: str | None = None, count: int = 0) -> list[tuple[str, object]]:
    g = max(1, width // 2)
    extra = []
    if synthesized:
        for line in Path(synthesized).read_text().splitlines()[:count]:
            rec = json.loads(line)
            extra.append((f"synth:{rec['hash'][:8]}", Operator.from_json(rec["operator"])))
    return extra + [("conv2d", lib.conv2d()), (f"conv2d_grouped(g={g})", lib.conv2d_grouped(g=g)),
            ("conv2d_depthwise", lib.conv2d_depthwise()), ("pointwise", lib.pointwise()),
            ("shift_conv", lib.shift_conv()), ("pool_conv", lib.pool_conv()), ("stacked_conv", lib.stacked_conv()),
            (f"syno_operator1(g={g})", lib.syno_operator1(g=g))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/proxy_fidelity.jsonl")
    p.add_argument("--limit-scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report-only", action="store_true", help="train nothing; report the operators finished so far")
    p.add_argument("--synthesized", help="a syno-tvm synthesize output: add its first --synthesized-count operators")
    p.add_argument("--synthesized-count", type=int, default=2)
    a = p.parse_args()
    recipes = {name: replace(r, limit=int(r.limit * a.limit_scale))
               for name, r in (("proxy", proxy.PROXY), ("long", proxy.LONG))}
    for name, r in recipes.items():
        print(f"{name}: {r.model} width {r.width}, {r.data} subset {r.limit}, {r.epochs} epochs, batch {r.batch}, "
              f"{r.optimizer} lr {r.lr} {r.schedule}, augment {r.augment}, seed {a.seed}", flush=True)
    out = Path(a.out)
    done = {(d["recipe"], d["operator"]): d for d in map(json.loads, out.read_text().splitlines())} \
        if out.is_file() else {}
    for label, op in operators(proxy.PROXY.width, a.synthesized, a.synthesized_count):
        for name, recipe in recipes.items():
            if (name, label) in done or a.report_only:
                continue
            rec = {"recipe": name, **proxy.run(op, label, recipe, a.seed)}
            done[(name, label)] = rec
            with out.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            print(f"  {name:5s} {label:24s} val acc {100 * rec['val_acc']:6.2f} %  ({rec['seconds']:.0f} s)",
                  flush=True)
    every = [label for label, _ in operators(proxy.PROXY.width, a.synthesized, a.synthesized_count)]
    labels = [lb for lb in every if ("proxy", lb) in done and ("long", lb) in done]
    if len(labels) < len(every):
        print(f"\nPARTIAL: {len(labels)} of {len(every)} operators have both runs (rerun without --report-only)")
    short = [done[("proxy", lb)]["val_acc"] for lb in labels]
    long = [done[("long", lb)]["val_acc"] for lb in labels]
    print("\n  operator                  proxy %   long %")
    for lb, s, lg in zip(labels, short, long):
        print(f"  {lb:24s} {100 * s:7.2f}  {100 * lg:7.2f}")
    rho, pval = spearmanr(short, long)
    print(f"\nSpearman rho (proxy vs long) over {len(labels)} operators: {rho:.3f} (p = {pval:.3f})")


if __name__ == "__main__":
    main()
