"""Minimal reproducers of apache-tvm 0.27 bugs that affect syno-tvm's kernels; each is expected to fail (xfail
strict), so an apache-tvm upgrade that fixes one makes the suite say so."""

import numpy as np
import pytest
import tvm
from tvm import te


@pytest.mark.xfail(strict=True, reason="apache-tvm 0.27 simplifier: floormod under a bounding if_then_else")
def test_tvm_floormod_under_guard_miscompile():
    """``X[((x + 1) % 2 * 2 + 2) % 4]`` guarded by ``0 <= x < 2`` with ``x = r + i - 1``: TVM reads the wrong
    element.  Shift above Unfold in a synthesized operator produces exactly this shape of index."""
    X = te.placeholder((4,), name="X")

    def body(i, r):
        x = r + i - 1
        return te.if_then_else(tvm.tirx.all(x >= 0, x < 2), X[((x + 1) % 2 * 2 + 2) % 4], 0.0)

    Y = te.compute((3, 2), body, name="Y")
    lib = tvm.compile(te.create_prim_func([X, Y]), target="llvm")
    xa = (np.arange(4) * 10 + 1).astype("float32")
    out = tvm.runtime.tensor(np.zeros((3, 2), "float32"))
    lib(tvm.runtime.tensor(xa), out)
    ref = np.zeros((3, 2), "float32")
    for i in range(3):
        for r in range(2):
            x = r + i - 1
            if 0 <= x < 2:
                ref[i, r] = xa[((x + 1) % 2 * 2 + 2) % 4]
    np.testing.assert_array_equal(out.numpy(), ref)


@pytest.mark.xfail(strict=True, reason="apache-tvm 0.27 IterMapSimplify (used by FlattenBuffer) rewrites "
                   "((i+1)%3+1)%3 to (i+1)%3")
def test_tvm_nested_floormod_miscompile():
    """Two Shifts on one dim written as nested ``floormod``: TVM rotates by 1 instead of 2.  This is why
    :func:`syno_tvm.ir.primitives.cyclic` is a select in the TVM domain."""
    X = te.placeholder((3,), name="X")
    Y = te.compute((3,), lambda i: X[((i + 1) % 3 + 1) % 3], name="Y")
    lib = tvm.compile(te.create_prim_func([X, Y]), target="llvm")
    xa = np.array([10, 20, 30], "float32")
    out = tvm.runtime.tensor(np.zeros(3, "float32"))
    lib(tvm.runtime.tensor(xa), out)
    np.testing.assert_array_equal(out.numpy(), [30, 10, 20])


def _gather_op():
    """A searched operator (fa9d9d05126ab7b8, 2026-12-08) whose forward kernel LLVM miscompiles for any -mcpu."""
    import json
    from pathlib import Path

    from syno_tvm.ir.graph import Operator

    return Operator.from_json(json.loads((Path(__file__).parent / "data" / "miscompiled_gather.json").read_text()))


GATHER_BINDING = {"N": 2, "C_in": 8, "C_out": 8, "H": 16, "W": 16}
HASWELL = {"kind": "llvm", "mcpu": "haswell"}


def _forward_error(op, binding, target) -> float:
    from syno_tvm.ir.reference import evaluate
    from syno_tvm.lower.build import compile_forward

    rng = np.random.default_rng(0)
    arrays = [rng.uniform(-1, 1, s).astype(np.float32) for k, s in op.shapes(binding).items() if k != "Y"]
    ref = evaluate(op, binding, arrays)
    return float(np.abs(compile_forward(op, binding, tvm.target.Target(target))(*arrays) - ref).max())


@pytest.mark.xfail(strict=True, reason="apache-tvm 0.27 / LLVM: a gather kernel miscompiled with any -mcpu "
                   "(one output column wrong; generic x86-64 and opt-level=0 are right)")
def test_llvm_gather_miscompile_with_mcpu():
    assert _forward_error(_gather_op(), GATHER_BINDING, {"kind": "llvm"}) < 1e-4   # generic code: right
    assert _forward_error(_gather_op(), GATHER_BINDING, HASWELL) < 1e-4


def test_the_compiled_check_refuses_exactly_the_miscompiled_kernels():
    """check_compiled raises on this CPU model's code if and only if that code differs from the reference (so it
    keeps working once LLVM is fixed), and a correct operator passes on the same target."""
    from syno_tvm.ir.library import named
    from syno_tvm.lower.verify import CompiledMismatch, check_compiled

    target = tvm.target.Target(HASWELL)
    wrong = _forward_error(_gather_op(), GATHER_BINDING, HASWELL) > 1e-3
    if wrong:
        with pytest.raises(CompiledMismatch, match="differ from the numpy reference"):
            check_compiled(_gather_op(), GATHER_BINDING, target)
    else:
        check_compiled(_gather_op(), GATHER_BINDING, target)
    check_compiled(named("conv2d"), GATHER_BINDING, target)


def test_a_swap_with_a_miscompiled_kernel_is_refused_before_training(monkeypatch):
    """The swap pass's kernels are checked on the target the trainer builds for: a mismatch stops the Trainer."""
    import syno_tvm.lower.verify as V
    from syno_tvm.ir.library import named
    from syno_tvm.relax.models import small_cnn
    from syno_tvm.train.loop import Trainer
    from syno_tvm.train.optim import make
    from syno_tvm.train.program import build_graph

    graph = build_graph(small_cnn(width=4), named("conv2d"), make("sgd", 0.0), seed=0)
    real = V.verify

    def wrong(op, binding, **kw):   # the kernels as a miscompile would leave them: the forward off by 1
        report = real(op, binding, **kw)
        report.forward = 1.0
        return report
    monkeypatch.setattr(V, "verify", wrong)
    with pytest.raises(V.CompiledMismatch, match="code-generation fault"):
        Trainer(graph, 1)


def test_the_deployed_stages_are_checked_too(monkeypatch):
    """check_deployed builds the form the swap deploys (one PrimFunc per stage) for the target and compares it with
    the reference: Operator 1 (two stages) passes, and the check fails where the output differs (the reference
    shifted by one stands in for a miscompiled stage)."""
    import syno_tvm.ir.reference as R
    from syno_tvm.ir.library import named
    from syno_tvm.lower.verify import CompiledMismatch
    from syno_tvm.relax.swap import check_deployed

    target = tvm.target.Target(HASWELL)
    op1, binding = named("syno_operator1"), {"N": 1, "C_in": 64, "C_out": 64, "H": 8, "W": 8}
    check_deployed(op1, binding, target)
    real = R.evaluate
    monkeypatch.setattr(R, "evaluate", lambda *a: real(*a) + 1.0)
    with pytest.raises(CompiledMismatch, match="deployed kernels"):
        check_deployed(op1, binding, target)
