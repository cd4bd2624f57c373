"""Exact graph rewrites applied before lowering, for the compiler's sake (the operator's identity is untouched).

``fuse_shifts``: a chain of Shifts on one dim is one Shift by the sum (``(i + a) mod N + b) mod N = (i + a + b) mod N``),
or nothing when the sum is 0.  Why: the TVM domain spells Shift as a select (see
:func:`syno_tvm.ir.primitives.cyclic`), and apache-tvm 0.27's simplifier takes time exponential in the nesting of
selects: a chain of 4 Shifts took 34 s to compile, 5 did not finish in 3 minutes; fused, any chain compiles like one.
"""

from __future__ import annotations

from ..ir.graph import Operator, Prim


def fuse_shifts(op: Operator) -> Operator:
    """``op`` with every chain of adjacent Shifts replaced by one Shift (or none); ``op`` itself if there is none."""
    prims = list(op.prims)
    rename: dict[int, int] = {}      # consumer-side dim -> the dim that now feeds it (a chain that summed to 0)
    changed = True
    while changed:
        changed = False
        below = {p.tops[0]: i for i, p in enumerate(prims) if p.kind == "shift"}
        for j, upper in enumerate(prims):
            i = below.get(upper.bottoms[0]) if upper.kind == "shift" else None
            if i is None:
                continue
            lower = prims[i]
            total = lower.param + upper.param
            if total:
                prims[i] = Prim("shift", upper.tops, lower.bottoms, total)
                del prims[j]
            else:
                gone, feed = upper.tops[0], lower.bottoms[0]
                rename = {d: (feed if e == gone else e) for d, e in rename.items()}
                rename[gone] = feed
                prims = [Prim(p.kind, p.tops, tuple(feed if d == gone else d for d in p.bottoms), p.param)
                         for k, p in enumerate(prims) if k not in (i, j)]
            changed = True
            break
    if len(prims) == len(op.prims):
        return op
    consumer = lambda d: rename.get(d, d)  # noqa: E731
    inp = tuple(consumer(d) for d in op.input)
    weights = tuple(tuple(consumer(d) for d in w) for w in op.weights)
    used = sorted(set(inp) | {d for w in weights for d in w} | set(op.output)
                  | {d for p in prims for d in p.tops + p.bottoms})
    new = {d: k for k, d in enumerate(used)}
    renum = lambda dims: tuple(new[d] for d in dims)  # noqa: E731
    return Operator(tuple(op.sizes[d] for d in used),
                    tuple(Prim(p.kind, renum(p.tops), renum(p.bottoms), p.param) for p in prims),
                    renum(inp), tuple(renum(w) for w in weights), renum(op.output), op.coefficients, op.name)
