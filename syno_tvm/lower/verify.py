"""Numerical verification of an operator's compiled kernels: the check behind ``syno-tvm show --verify`` and the tests.

* forward TE (float32)  vs the numpy reference (float64, straight from the index rules);
* backward TE per tensor vs the numpy scatter gradient, and vs finite differences of ``<dY, Y>`` in float64.

Errors are reported relative to the largest reference magnitude: every operator is linear in each tensor, so this
is exactly the absolute error after scaling that tensor so the reference peaks at 1 (sums of hundreds of products
would otherwise make an absolute fp32 tolerance meaningless).  Finite differences are exact up to rounding here,
again because the function is linear in each tensor: ``f(T + eps*v) - f(T) = eps * <grad, v>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..errors import SynoError
from ..ir.graph import Operator
from ..ir.reference import evaluate, gradient
from .build import compile_backward, compile_forward
from .order import plan

TOLERANCE = 1e-4


@dataclass
class Report:
    forward: float
    backward: list[float] = field(default_factory=list)        # vs numpy scatter gradient, per tensor
    finite_diff: list[float] = field(default_factory=list)     # vs finite differences, per tensor
    flops: int = 0
    naive_flops: int = 0

    @property
    def ok(self) -> bool:
        return max([self.forward] + self.backward + self.finite_diff) <= TOLERANCE

    def lines(self, op: Operator) -> list[str]:
        names = ["X"] + [f"W{t}" for t in range(1, len(op.weights) + 1)]
        out = [f"forward  max|err| vs numpy reference: {self.forward:.2e}"]
        for name, b, fd in zip(names, self.backward, self.finite_diff):
            out.append(f"backward d{name:<3s} max|err| vs numpy reference: {b:.2e}   vs finite differences: {fd:.2e}")
        out.append(f"(errors relative to the reference's peak magnitude; tolerance {TOLERANCE:g}) "
                   + ("OK" if self.ok else "FAILED"))
        return out


def _rel(a: np.ndarray, ref: np.ndarray) -> float:
    scale = float(np.abs(ref).max()) or 1.0
    return float(np.abs(np.asarray(a, np.float64) - ref).max()) / scale


def verify(op: Operator, binding: Mapping[str, int] | None = None, seed: int = 0, target="llvm",
           probes: int = 4) -> Report:
    """Compile forward and every backward kernel for ``binding`` and measure their errors."""
    binding = dict(binding or {})
    rng = np.random.default_rng(seed)
    shapes = op.shapes(binding)
    arrays = [rng.uniform(-1, 1, s).astype(np.float32) for k, s in shapes.items() if k != "Y"]
    ref = evaluate(op, binding, arrays)
    order = plan(op, binding)
    report = Report(_rel(compile_forward(op, binding, target)(*arrays), ref),
                    flops=order.flops, naive_flops=order.naive_flops)
    dy = rng.uniform(-1, 1, shapes["Y"]).astype(np.float32)
    base = float(np.vdot(dy, ref))
    for t in range(len(arrays)):
        got = compile_backward(op, t, binding, target)(dy, *arrays).astype(np.float64)
        want = gradient(op, binding, arrays, dy, t)
        report.backward.append(_rel(got, want))
        report.finite_diff.append(_finite_difference(op, binding, arrays, dy, t, got, base, rng, probes) /
                                  (float(np.abs(want).max()) or 1.0))
    return report


def _finite_difference(op, binding, arrays, dy, t, grad, base, rng, probes) -> float:
    """Largest |FD - <grad, v>| / |v|_1 over random dense directions and single-element directions."""
    eps = 1e-3
    worst = 0.0
    for k in range(probes):
        v = np.zeros(arrays[t].shape)
        if k % 2 == 0:
            v = rng.uniform(-1, 1, v.shape)
        else:
            v.flat[rng.integers(v.size)] = 1.0
        moved = list(arrays)
        moved[t] = arrays[t].astype(np.float64) + eps * v
        fd = (float(np.vdot(dy, evaluate(op, binding, moved))) - base) / eps
        worst = max(worst, abs(fd - float(np.vdot(grad, v))) / float(np.abs(v).sum()))
    return worst


class CompiledMismatch(SynoError):
    """The kernels compiled for the target disagree with the numpy reference: a code-generation fault, not a
    property of the operator (its kernels agree on another target)."""


def check_compiled(op: Operator, binding: Mapping[str, int], target) -> None:
    """Raise :class:`CompiledMismatch` when ``op``'s forward or backward kernels, compiled for ``target`` at
    ``binding``, differ from the numpy reference.

    Why on the target and not once per operator: LLVM's optimizer can miscompile a gather kernel for one CPU model
    and not for another.  Seen 2026-12-08 (apache-tvm 0.27, any ``-mcpu``: haswell, skylake-avx512, rocketlake,
    znver4): a forward kernel read one output column wrong at C_in=8, 16x16 (relative error up to 1e12, different
    from call to call) while the generic x86-64 build and ``opt-level=0`` were right.  A model trained or deployed
    with such a kernel is garbage; about 0.3 s per binding catches it.  Finite differences are left to the tests
    (the reference comparisons are what a miscompile breaks)."""
    report = verify(op, binding, target=target, probes=0)
    if not report.ok:
        worst = max([report.forward] + report.backward)
        sizes = ",".join(f"{k}={v}" for k, v in binding.items())
        cpu = target.attrs.get("mcpu", "")
        raise CompiledMismatch(
            f"operator {op.name or op.hash} at {sizes}: its kernels compiled for this CPU ({cpu or target}) differ "
            f"from the numpy reference (relative error {worst:.2g}; generic x86-64 code is checked by the tests): a "
            f"TVM/LLVM code-generation fault; use another operator for this layer "
            f"(syno-tvm show OPERATOR --bind {sizes} --verify reproduces it)")
