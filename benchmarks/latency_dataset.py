"""Make (or extend) the latency dataset of the predictor: random finals of the vision and transformer specs plus
the named library, each at three layer bindings, untuned and MetaSchedule-tuned at a fixed budget, on this CPU's
own code generation and AVX2 code generation (syno_tvm/predict/collect.py says why these).

    python benchmarks/latency_dataset.py --vision 250 --transformer 50 --trials 8 --out benchmarks/data/latency

Resumable: rerun the same command after an interruption; what is recorded is never measured again, and a larger
--vision/--transformer extends the same seeded sequence of operators.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TVM_NUM_THREADS", "1")

from syno_tvm.predict.collect import collect, default_targets, operators  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vision", type=int, default=250, help="random finals of the vision spec")
    p.add_argument("--transformer", type=int, default=50, help="random finals of the transformer spec")
    p.add_argument("--trials", type=int, default=8, help="MetaSchedule trials per (operator, binding)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/data/latency")
    a = p.parse_args()
    ops = itertools.chain(((op, src, "vision") for op, src in operators("vision", a.vision, a.seed)),
                          ((op, src, "transformer") for op, src in operators("transformer", a.transformer, a.seed)))
    ds = collect(a.out, ops, default_targets(), a.trials)
    ok = [r for r in ds.records if r.tuned_us is not None]
    print(f"{len(ds.operators)} operators, {len(ds.records)} records, {len(ok)} with a tuned time, in {a.out}")


if __name__ == "__main__":
    main()
