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
