"""Dump operators, bindings and Python's plan(op, b).flops as plain text for native/synth/plan_test.cc.

Usage: python native/synth/plan_dump.py OUT.txt [--per-spec N] [--fuzz N]

Operators: the library (several coefficient variants, plus the two-weight separable conv of the tests), random
fuzz operators (tests/randomops.py: up to three tensors, all eight primitive kinds) and random final operators of
the synthesis sampler for the built-in specs.  Each is evaluated at every binding it binds under (its own example,
every spec layer binding and reference binding, the probes).

Format, whitespace-separated, one record per operator:
    op NAME NDIMS NPRIMS NTENSORS NBINDINGS
    KIND NTOPS TOPS... NBOTTOMS BOTTOMS...     (NPRIMS lines; KIND is syno::PrimKind)
    LEN DIMS...                                (NTENSORS lines: input, then weights)
    LEN DIMS...                                (output)
    FLOPS SIZE_0 .. SIZE_{NDIMS-1}             (NBINDINGS lines)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from syno_tvm.errors import SynoError  # noqa: E402
from syno_tvm.ir.assembler import Assembler  # noqa: E402
from syno_tvm.ir.graph import Operator  # noqa: E402
from syno_tvm.ir.library import LIBRARY  # noqa: E402
from syno_tvm.lower.order import plan  # noqa: E402
from syno_tvm.synth.sample import Sampler  # noqa: E402
from syno_tvm.synth.space import Space  # noqa: E402
from syno_tvm.synth.spec import load_spec  # noqa: E402

KIND = {"reduce": 0, "merge": 1, "split": 2, "shift": 3, "stride": 4, "unfold": 5, "expand": 6, "share": 7}
INT64_MAX = 2**63 - 1
SPECS = ("vision", "transformer")


def separable(k: int = 3) -> Operator:
    """Depthwise window then channel mix in one contraction (as in tests/test_lowering.py): exercises Share
    absorption, where two tops of a Share both index the intermediate."""
    a = Assembler(k=k)
    n, c, h, w = a.input("N", "C_in", "H", "W")
    h, kh = a.unfold(h, "k")
    w, kw = a.unfold(w, "k")
    c = a.share(a.share(c, 1), 2)
    kh, kw = a.share(kh, 1), a.share(kw, 1)
    o = a.share(a.expand("C_out"), 2)
    a.sum(c, kh, kw)
    return a.build([n, o, h, w], "separable")


def spec_bindings() -> list[dict[str, int]]:
    out = []
    for name in SPECS:
        spec = load_spec(name)
        for b in spec.layer_bindings.values():
            out.append(dict(b))
            out.append(spec.reference_binding(b))
        out.append(dict(spec.probe_binding))
    return out


def library_ops() -> list[tuple[str, Operator, list[dict[str, int]]]]:
    variants = {"conv2d": [{}, {"k": 1}, {"k": 5}], "conv2d_grouped": [{}, {"g": 4}, {"k": 5, "g": 2}],
                "conv2d_depthwise": [{}, {"k": 5}], "pool_conv": [{}, {"k": 5}], "stacked_conv": [{}, {"k": 5}],
                "syno_operator1": [{}, {"g": 4}, {"k": 5, "s": 4, "g": 8}], "gpt2_qkv": [{}, {"k": 4, "t": 2}],
                "shift_conv": [{}, {"shift": 2}]}
    extra = spec_bindings()
    out = []
    for name, entry in LIBRARY.items():
        for kw in variants.get(name, [{}]):
            out.append((f"{name}{''.join(f'_{k}{v}' for k, v in kw.items())}", entry.build(**kw),
                        [dict(entry.example)] + extra))
    sep_b = {"N": 1, "C_in": 6, "C_out": 5, "H": 4, "W": 3}
    for k in (3, 5):
        out.append((f"separable_k{k}", separable(k), [sep_b, dict(sep_b, C_in=64, C_out=128, H=16, W=16)] + extra))
    return out


def fuzz_ops(n: int) -> list[tuple[str, Operator, list[dict[str, int]]]]:
    from randomops import random_operator
    out = []
    for seed in range(n):
        op, b = random_operator(np.random.default_rng(seed))
        big = {k: v * 7 for k, v in b.items()}  # larger primaries, same divisibility
        out.append((f"fuzz_{seed}", op, [b, big]))
    return out


def sampled_ops(per_spec: int) -> list[tuple[str, Operator, list[dict[str, int]]]]:
    out = []
    for name in SPECS:
        spec = load_spec(name)
        sampler = Sampler(Space(spec))
        rng = np.random.default_rng(0)
        bindings = [dict(b) for b in spec.layer_bindings.values()] + [dict(spec.probe_binding)]
        for i in range(per_spec):
            try:
                op = sampler.random_final(rng).final.operator
            except SynoError:
                break  # the space is exhausted
            if op is not None:
                out.append((f"{name}_{i}", op, bindings))
    return out


def record(name: str, op: Operator, bindings: list[dict[str, int]]) -> tuple[str, int] | None:
    rows, seen = [], set()
    for b in bindings:
        try:
            sz = op.bind(b)
        except (SynoError, KeyError, ZeroDivisionError):
            continue  # a binding that leaves some size non-integral (or unbound) is not a binding of this op
        if sz in seen:
            continue
        seen.add(sz)
        flops = plan(op, b).flops
        if flops > INT64_MAX:
            raise SystemExit(f"{name}: plan flops {flops} do not fit int64")
        rows.append(f"{flops} " + " ".join(map(str, sz)))
    if not rows:
        return None
    lines = [f"op {name} {len(op.sizes)} {len(op.prims)} {len(op.tensors)} {len(rows)}"]
    for p in op.prims:
        lines.append(f"{KIND[p.kind]} {len(p.tops)} {' '.join(map(str, p.tops))} "
                     f"{len(p.bottoms)} {' '.join(map(str, p.bottoms))}".replace("  ", " ").strip())
    for t in list(op.tensors) + [op.output]:
        lines.append(f"{len(t)} {' '.join(map(str, t))}".strip())
    return "\n".join(lines + rows) + "\n", len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--per-spec", type=int, default=300)
    ap.add_argument("--fuzz", type=int, default=200)
    args = ap.parse_args()
    ops = library_ops() + fuzz_ops(args.fuzz) + sampled_ops(args.per_spec)
    n_ops = n_b = 0
    seen = set()
    with open(args.out, "w") as f:
        for name, op, bindings in ops:
            if op.hash in seen:
                continue
            seen.add(op.hash)
            rec = record(name, op, bindings)
            if rec is None:
                continue
            f.write(rec[0])
            n_ops += 1
            n_b += rec[1]
    print(f"wrote {n_ops} operators, {n_b} bindings to {args.out}")


if __name__ == "__main__":
    main()
