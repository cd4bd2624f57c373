"""Guided synthesis benchmark: the issue's "Done when" figures, canonicalization on vs off, side by side.

For each spec (vision: ResNet-18 CIFAR 3x3 layers, depth 10, 2 weights; transformer: GPT-2 QKV), one process on
one core draws random finals for a time budget with the native sampler
(:mod:`syno_tvm.synth.sampler.native_sampler`) under the
full rule table and under none, then with the Python sampler it ports (the reference implementation: same space,
same algorithm, rules on), then takes finals in exhaustive depth-first order (Python, rules on;
:mod:`syno_tvm.synth.depth_first`).  Each run reports:

* distinct valid finals per second (distinct by operator hash; the clock includes the FLOPs/params limits, and for
  the native runs the records handed to Python, but not the Python Operator objects built from them afterwards,
  whose cost per final is a row of its own);
* invalid finals in the checked sample: each is lowered, compiled for the spec's probe binding and run against the
  numpy reference (an exception or an error above 1e-4 counts as invalid);
* the dead-end ratio: entered nodes that turned out to have no valid final below them (random descents only: a
  time-limited depth-first run has not finished most subtrees it entered, so it prints nan);
* the semantic-duplicate share: sampled finals whose fingerprint equals an earlier one's, in the checked sample
  and in a wider window of the first ``--dup-window`` finals (the share grows as a run goes on).

Run: ``python benchmarks/synthesis.py [--seconds-vision 60] [--seconds-transformer 20] [--sample 200]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("TVM_NUM_THREADS", "1")  # one core: TVM's runtime would use every core

import argparse  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from importlib.metadata import version  # noqa: E402

import numpy as np  # noqa: E402

from syno_tvm.ir.reference import evaluate  # noqa: E402
from syno_tvm.synth.canon import RULES  # noqa: E402
from syno_tvm.synth.depth_first import Counts, depth_first  # noqa: E402
from syno_tvm.synth.fingerprint import fingerprint  # noqa: E402
from syno_tvm.synth.sampler import NativeSampler, PythonSampler  # noqa: E402
from syno_tvm.synth.space import Space  # noqa: E402
from syno_tvm.synth.spec import Spec, load_spec  # noqa: E402

TOLERANCE = 1e-4
# (column, rule table, order): the native sampler with and without the rules, the Python sampler it ports (the
# reference implementation, same space, same algorithm) and the exhaustive depth-first order
RUNS = (("native, rules on", RULES, "native"), ("native, rules off", (), "native"),
        ("python, rules on", RULES, "random"), ("dfs, rules on", RULES, "dfs"))


def measure(spec: Spec, rules, seconds: float, sample: int, seed: int, order: str = "random",
            window: int = 2000) -> dict:
    space = Space(spec, rules)
    rng = np.random.default_rng(seed)
    ops, first, build = [], None, float("nan")
    if order == "native":
        sampler = NativeSampler(space, seed)
        start = time.perf_counter()
        records = sampler.draw(1, seconds)
        first = time.perf_counter() - start
        records += sampler.draw(10**9, seconds - first)
        elapsed = time.perf_counter() - start
        # Operators as Python objects (validated by their constructor) after the clock: the engine's product is
        # the checked final (shapes, FLOPs, params); this conversion is what a Python caller pays on top
        t = time.perf_counter()
        ops = [sampler.sample(r).final.operator for r in records]
        build = (time.perf_counter() - t) / max(1, len(ops)) * 1e3
    else:
        if order == "dfs":
            counts = Counts()
            finals = depth_first(space, counts)
            draw = lambda: next(finals, None)  # noqa: E731
        else:
            sampler = PythonSampler(space)
            draw = lambda: sampler.random_final(rng)  # noqa: E731
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            found = draw()
            if found is None:  # the whole space enumerated
                break
            ops.append(found.final.operator)
            first = first or time.perf_counter() - start
        elapsed = time.perf_counter() - start
    distinct = len({op.hash for op in ops})
    checked = ops[:sample]
    fps = [fingerprint(op, spec.probe_binding) for op in checked]
    dup = (len(fps) - len(set(fps))) / len(fps) if fps else float("nan")
    # duplicates accumulate as the lattice's productive regions are used up: also over a longer window
    wide = fps + [fingerprint(op, spec.probe_binding) for op in ops[len(fps):window]]
    dup_wide = (len(wide) - len(set(wide))) / len(wide) if wide else float("nan")
    invalid = sum(not _valid(op, spec.probe_binding, rng) for op in checked)
    dead, nodes = (float("nan"), counts.nodes) if order == "dfs" else (sampler.stats.dead_end_ratio,
                                                                       sampler.stats.nodes)
    return {"finals": len(ops), "distinct": distinct, "rate": distinct / elapsed, "first": first or float("nan"),
            "build": build,
            "dead": dead, "nodes": nodes, "checked": len(checked),
            "invalid": invalid, "dup": dup, "dup_wide": dup_wide}


def _valid(op, binding, rng) -> bool:
    from syno_tvm.lower.build import compile_forward

    try:
        arrays = [rng.uniform(-1, 1, s).astype(np.float32) for k, s in op.shapes(binding).items() if k != "Y"]
        got = compile_forward(op, binding)(*arrays)
        ref = evaluate(op, binding, arrays)
        return float(np.abs(got - ref).max()) <= TOLERANCE * max(1.0, float(np.abs(ref).max()))
    except Exception as e:  # noqa: BLE001 - any failure to lower, compile or run makes the final invalid
        print(f"  invalid final {op.hash}: {type(e).__name__}: {str(e)[:200]}", file=sys.stderr)
        return False


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds-vision", type=float, default=60, help="per run")
    ap.add_argument("--seconds-transformer", type=float, default=20, help="per run")
    ap.add_argument("--sample", type=int, default=200, help="finals lowered, run and fingerprinted per run")
    ap.add_argument("--dup-window", type=int, default=2000,
                    help="finals fingerprinted for the second duplicate share (after the clock stops)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("$ python benchmarks/synthesis.py " + " ".join(sys.argv[1:]))
    print(f"machine: {_cpu()}, {os.cpu_count()} cores (one used); python {platform.python_version()}, "
          f"apache-tvm {version('apache-tvm')}, numpy {np.__version__}")
    print(f"rules on: all {len(RULES)} rules of syno_tvm/synth/canon.py; rules off: the empty table\n")
    rows = [("distinct valid finals / s", "rate", "{:.2f}"), ("finals drawn (distinct)", None, None),
            ("time to first final (s)", "first", "{:.2f}"),
            ("Python Operator per final (ms, not in rate)", "build", "{:.2f}"), ("nodes entered", "nodes", "{}"),
            ("dead-end ratio", "dead", "{:.1%}"), ("checked sample (lowered, run vs numpy)", "checked", "{}"),
            ("invalid finals in the sample", "invalid", "{}"), ("semantic-duplicate share", "dup", "{:.1%}"),
            (f"semantic-duplicate share, first {args.dup_window}", "dup_wide", "{:.1%}")]
    for name, seconds in (("vision", args.seconds_vision), ("transformer", args.seconds_transformer)):
        spec = load_spec(name)
        res = {label: measure(spec, rules, seconds, args.sample, args.seed, order, args.dup_window)
               for label, rules, order in RUNS}
        print(f"spec {name}: depth {spec.max_depth}, {spec.max_weights} weights, {len(spec.layers)} layer bindings "
              f"({', '.join(spec.layer_bindings)}), {seconds:.0f} s per run")
        print(f"  {'':44s}" + "".join(f"{label:>19s}" for label in res))
        for label, key, fmt in rows:
            if key is None:
                cells = [f"{r['finals']} ({r['distinct']})" for r in res.values()]
            else:
                cells = [fmt.format(r[key]) for r in res.values()]
            print(f"  {label:44s}" + "".join(f"{c:>19s}" for c in cells))
        print()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
