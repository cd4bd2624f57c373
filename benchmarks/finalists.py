"""How well the search's quick accuracy proxy ranks its operators like the final recipe the optimize report trains.

    python benchmarks/finalists.py OUT/search [--out benchmarks/results/finalists.jsonl]

OUT/search is the search directory of a ``syno-tvm optimize ... --search N --accuracy fashion-mnist --out OUT`` run
on ``builtin:resnet18-cifar --width 4``.  Every ok operator of that search is trained with the final recipe
(:class:`syno_tvm.optimize.FinalTraining`: 2 epochs on 3000 images, every layer the swap pass gives it), and the
script prints the quick-proxy accuracy ratio stored by the search beside the final one, and the Spearman
correlation of the two.  This is why the optimize flow confirms its finalists: an operator can pass the quick
proxy and not learn under the final recipe.  Each finished operator is appended to ``--out`` as a JSON line and
skipped when the script is started again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scipy.stats import spearmanr

from syno_tvm.optimize import FinalTraining, OptimizeConfig
from syno_tvm.relax.frontend import import_onnx
from syno_tvm.relax.models import builtin
from syno_tvm.search.results import load
from syno_tvm.search.reward import cost_ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("search", help="the search directory of an optimize --search run (OUT/search)")
    ap.add_argument("--out", default="benchmarks/results/finalists.jsonl")
    args = ap.parse_args()
    record = load(args.search)
    config = OptimizeConfig(model="builtin:resnet18-cifar", out="unused", search=1, width=4,
                            accuracy="fashion-mnist")
    training = FinalTraining(config, progress=False)
    mod = import_onnx(builtin("builtin:resnet18-cifar", width=4))
    out = Path(args.out)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.is_file() else []
    done = {r["fingerprint"] for r in rows}
    for r in record.ok:
        if r.fingerprint in done:
            continue
        row = {"fingerprint": r.fingerprint, "original": r.fingerprint == record.original,
               "cost_ratio": cost_ratio(r.metrics), "quick_ratio": r.metrics.get("accuracy_ratio"),
               "final_ratio": training.accuracy_ratio(mod, r.candidate.operator)}
        rows.append(row)
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
    print(f"{'fingerprint':18} {'cost':>6} {'quick':>6} {'final':>6}")
    for row in rows:
        note = "  (the original's function)" if row["original"] else ""
        print(f"{row['fingerprint']:18} {row['cost_ratio']:6.3f} {row['quick_ratio']:6.3f} "
              f"{row['final_ratio']:6.3f}{note}")
    rho = spearmanr([r["quick_ratio"] for r in rows], [r["final_ratio"] for r in rows])
    print(f"Spearman rho (quick proxy vs final recipe) over {len(rows)} operators: {rho.statistic:.3f} "
          f"(p = {rho.pvalue:.3g})")


if __name__ == "__main__":
    main()
