"""The TE lowering of the named operators: numerics (forward, backward, finite differences), the FLOPs of the
staging plan, Unfold's zero padding, independent numpy checks of conv2d and stacked_conv, and bad runner input."""

from __future__ import annotations

import re

import numpy as np
import pytest

from syno_tvm.errors import SynoError
from syno_tvm.ir.assembler import Assembler
from syno_tvm.ir.library import LIBRARY, named
from syno_tvm.ir.reference import evaluate, gradient
from syno_tvm.lower.build import compile_backward, compile_forward
from syno_tvm.lower.normalize import fuse_shifts
from syno_tvm.lower.order import plan
from syno_tvm.lower.te_backward import backward_primfunc
from syno_tvm.lower.te_forward import forward_primfunc, padded_product
from syno_tvm.lower.verify import TOLERANCE, verify

TOL = 1e-4


def _rel(got, ref) -> float:
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape
    return float(np.abs(got - ref).max()) / max(1.0, float(np.abs(ref).max()))


# ---- every named operator verifies ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(LIBRARY))
def test_named_operator_verifies(name):
    op, binding = named(name), dict(LIBRARY[name].example)
    report = verify(op, binding)
    n_tensors = 1 + len(op.weights)
    detail = f"{name} at {binding}:\n" + "\n".join(report.lines(op))
    assert TOLERANCE <= TOL
    assert len(report.backward) == n_tensors and len(report.finite_diff) == n_tensors, detail
    assert report.forward <= TOL, detail
    assert max(report.backward) <= TOL, detail
    assert max(report.finite_diff) <= TOL, detail
    assert report.ok, detail
    p = plan(op, binding)
    assert (report.flops, report.naive_flops) == (p.flops, p.naive_flops)
    assert 0 < p.flops <= p.naive_flops


# ---- FLOPs of the staging plan ----------------------------------------------------------------------------------

def test_conv2d_flops_are_the_textbook_count():
    b = dict(LIBRARY["conv2d"].example)
    op = named("conv2d")
    k = op.coefficient_values["k"]
    p = plan(op, b)
    assert len(p.stages) == 1
    assert p.flops == 2 * b["N"] * b["C_out"] * b["H"] * b["W"] * b["C_in"] * k * k
    # also at another binding and kernel size
    op5 = LIBRARY["conv2d"].build(k=5)
    b2 = {"N": 1, "C_in": 3, "C_out": 7, "H": 6, "W": 5}
    assert plan(op5, b2).flops == 2 * 1 * 7 * 6 * 5 * 3 * 5 * 5


@pytest.mark.parametrize("name", ["pool_conv", "stacked_conv", "syno_operator1"])
def test_early_reduction_is_staged_and_cheaper(name):
    p = plan(named(name), LIBRARY[name].example)
    assert len(p.stages) > 1, p
    assert p.flops < p.naive_flops, p


@pytest.mark.parametrize("name", ["stacked_conv", "syno_operator1"])
def test_backward_is_staged_when_a_free_iterator_misses_a_factor(name):
    """Each gradient of a two-weight operator sums an iterator that some factors never read first (an intermediate
    ``*_Z0`` block); conv2d's single gather has nothing to stage.  Numerics: test_named_operator_verifies."""
    op, b = named(name), LIBRARY[name].example
    for t in range(len(op.tensors)):
        assert "_Z0" in backward_primfunc(op, t, b).script(), (name, t)
    conv = named("conv2d")
    for t in range(len(conv.tensors)):
        assert "_Z0" not in backward_primfunc(conv, t, LIBRARY["conv2d"].example).script()


def test_pool_conv_sums_the_window_before_the_weight():
    b = dict(LIBRARY["pool_conv"].example)
    p = plan(named("pool_conv"), b)
    k = 3
    # stage 0: window sum over X alone; stage 1: pointwise with W1
    assert p.stages[0].factors == (0,)
    assert p.stages[0].flops == b["N"] * b["C_in"] * b["H"] * b["W"] * k * k
    assert p.flops == p.stages[0].flops + 2 * b["N"] * b["C_out"] * b["H"] * b["W"] * b["C_in"]


def separable(k: int = 3):
    """Depthwise k x k window (W1[C_in, k, k]) and channel mix (W2[C_in, C_out]) in one two-weight contraction."""
    a = Assembler(k=k)
    n, c, h, w = a.input("N", "C_in", "H", "W")
    h, kh = a.unfold(h, "k")
    w, kw = a.unfold(w, "k")
    c = a.share(a.share(c, 1), 2)
    kh, kw = a.share(kh, 1), a.share(kw, 1)
    o = a.share(a.expand("C_out"), 2)
    a.sum(c, kh, kw)
    return a.build([n, o, h, w], "separable")


def test_separable_window_is_summed_per_channel_first():
    """The window stage is indexed once by the channel X and W1 share (not by C_in squared), then mixed by W2."""
    b = {"N": 1, "C_in": 6, "C_out": 5, "H": 4, "W": 3}
    op = separable()
    p = plan(op, b)
    window = 2 * b["N"] * b["C_in"] * b["H"] * b["W"] * 9
    mix = 2 * b["N"] * b["C_out"] * b["H"] * b["W"] * b["C_in"]
    assert [s.factors for s in p.stages] == [(0, 1), (2, 3)]
    assert p.flops == window + mix
    assert verify(op, b).ok


def test_syno_operator1_first_stage_does_not_iterate_over_c_out():
    op = named("syno_operator1")
    base = {"N": 1, "C_in": 64, "H": 4, "W": 5, "g": 32}
    b128 = dict(base, C_out=128, s=2)
    b256 = dict(base, C_out=256, s=2)
    p128, p256 = plan(op, b128), plan(op, b256)
    assert len(p128.stages) == 2 and p128.flops < p128.naive_flops
    c_out_dims = {d for d, s in enumerate(op.sizes) if str(s) == "C_out"}
    first = p128.stages[0]
    assert not c_out_dims & set(first.dims + first.reduce), "stage 0 iterates over a C_out dim"
    assert set(first.factors) == {0, 2}, "stage 0 is sum_ci W2 * X"
    # Its cost is 2 * N*H*W * k * g * (C_in/g) * J with J = C_out/(g*s): it depends on C_out only through J, never
    # by a factor C_out (a stage over the C_out output dim would cost C_out times more).
    for b, p in ((b128, p128), (b256, p256)):
        J = b["C_out"] // (b["g"] * b["s"])
        assert p.stages[0].flops == 2 * b["N"] * b["H"] * b["W"] * 3 * b["C_in"] * J
    # Holding J fixed, C_out has no effect on stage 0 (C_out=256, s=4 has the same J as C_out=128, s=2).
    p256s4 = plan(op, dict(base, C_out=256, s=4))
    assert p256s4.stages[0].flops == p128.stages[0].flops
    assert p256s4.stages[0].dims == p128.stages[0].dims
    # ... while the final stage does scale with C_out.
    assert p256s4.stages[1].flops == 2 * p128.stages[1].flops


# ---- independent numpy checks -----------------------------------------------------------------------------------

def _pad_hw(x, ph, pw):
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _conv_numpy(x, w):
    """PyTorch conv2d, stride 1, 'same' padding k//2, weight [O, C, kh, kw] (float64)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = _pad_hw(x.astype(np.float64), kh // 2, kw // 2)
    y = np.zeros((n, o, h, wd))
    for a in range(kh):
        for b in range(kw):
            y += np.einsum("nchw,oc->nohw", xp[:, :, a:a + h, b:b + wd], w[:, :, a, b])
    return y


def test_conv2d_matches_numpy_convolution():
    op, b = named("conv2d"), dict(LIBRARY["conv2d"].example)
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, op.shapes(b)["X"]).astype(np.float32)
    w = rng.uniform(-1, 1, op.shapes(b)["W1"]).astype(np.float32)
    assert _rel(compile_forward(op, b)(x, w), _conv_numpy(x, w)) <= TOL


def test_stacked_conv_is_a_kx1_conv_then_a_1xk_conv():
    op, b = named("stacked_conv"), dict(LIBRARY["stacked_conv"].example)
    shapes = op.shapes(b)
    rng = np.random.default_rng(4)
    x, w1, w2 = (rng.uniform(-1, 1, shapes[k]).astype(np.float32) for k in ("X", "W1", "W2"))
    # W1[m, C_in, k] is a k x 1 kernel, W2[o, m, k] a 1 x k kernel
    z = _conv_numpy(x, w1[:, :, :, None])
    want = _conv_numpy(z, w2[:, :, None, :])
    got = compile_forward(op, b)(x, w1, w2)
    assert plan(op, b).stages[0].factors == (0, 1)  # staged: Z = conv_kx1(X, W1) first
    assert _rel(got, want) <= TOL


# ---- Unfold's zero padding: guard [0, N), not [0, K) -------------------------------------------------------------

def _window_op(window: int):
    a = Assembler()
    (x,) = a.input("N")
    i, j = a.unfold(x, window)
    return a.build([i, j], f"unfold{window}")


def _window_conv_op(window: int):
    a = Assembler()
    (x,) = a.input("N")
    i, j = a.unfold(x, window)
    j = a.share(j, 1)
    a.sum(j)
    return a.build([i], f"conv1d_{window}")


def test_unfold_window_larger_than_dim_pads_with_zeros():
    op, b = _window_op(5), {"N": 4}
    x = np.arange(1, 5, dtype=np.float32)
    xp = np.pad(x, 2)
    want = np.stack([xp[i:i + 5] for i in range(4)])  # want[i, j] = x[i + j - 2], 0 outside [0, 4)
    assert want.shape == (4, 5) and want[0, 0] == 0 and want[3, 4] == 0 and want[0, 2] == 1
    np.testing.assert_array_equal(evaluate(op, b, [x]), want)
    np.testing.assert_array_equal(compile_forward(op, b)(x), want)
    # backward: each x[m] is read once per window position that lands on it
    dy = np.ones((4, 5), np.float32)
    count = np.array([sum(1 for i in range(4) for j in range(5) if i + j - 2 == m) for m in range(4)], float)
    np.testing.assert_allclose(compile_backward(op, 0, b)(dy, x), count)
    np.testing.assert_allclose(gradient(op, b, [x], dy, 0), count)


def test_unfold_conv1d_window_5_on_size_4():
    op, b = _window_conv_op(5), {"N": 4}
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, 4).astype(np.float32)
    w = rng.uniform(-1, 1, 5).astype(np.float32)
    xp = np.pad(x.astype(np.float64), 2)
    want = np.array([xp[i:i + 5] @ w for i in range(4)])
    assert _rel(compile_forward(op, b)(x, w), want) <= TOL
    report = verify(op, b)
    assert report.ok, "\n".join(report.lines(op))


# ---- Unfold padding as a separate stage --------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(LIBRARY))
def test_no_named_operator_keeps_a_guard_inside_its_reductions(name):
    """Padding is a stage of its own (as in TVM's conv2d) forward and backward; only the pad stages branch."""
    op, b = named(name), dict(LIBRARY[name].example)
    scripts = [forward_primfunc(op, b).script()] + [backward_primfunc(op, t, b).script() for t in range(len(op.tensors))]
    for text in scripts:
        assert text.count("if_then_else") == len(re.findall(r"_pad\[[^]]*\] = T\.if_then_else", text)), text
    if name == "conv2d":
        assert "X_pad = T.sblock_alloc_buffer((2, 8, 10, 10))" in scripts[0]
        assert "dY_pad = T.sblock_alloc_buffer((2, 16, 10, 10))" in scripts[1]


def test_padding_keeps_the_guard_when_another_read_depends_on_the_index():
    """``if_then_else`` is lazy, so a guard on ``e`` also keeps ``W[e // 2]`` in bounds: padding X alone would let W be
    read at ``-1 // 2``; the lowering must keep the guard (and then needs no padding)."""
    from tvm import te

    x, w = te.placeholder((8,), name="X"), te.placeholder((4,), name="W")
    j = te.reduce_axis((0, 3), name="j")
    guarded = te.compute((8,), lambda i: te.sum(
        padded_product([(x, (i + j - 1,)), (w, ((i + j - 1) // 2,))], [("range", i + j - 1, 8)],
                       {i: 8, j.var: 3}, "float32"), axis=j), name="Y")
    text = te.create_prim_func([x, w, guarded]).script()
    assert "if_then_else" in text and "_pad" not in text, text
    padded = te.compute((8,), lambda i: te.sum(
        padded_product([(x, (i + j - 1,)), (w, (i // 2,))], [("range", i + j - 1, 8)], {i: 8, j.var: 3}, "float32"),
        axis=j), name="Y")
    text = te.create_prim_func([x, w, padded]).script()
    assert "X_pad = T.sblock_alloc_buffer((10,))" in text and text.count("if_then_else") == 1, text


# ---- Shift chains: nested floormod ------------------------------------------------------------------------------

def test_two_shifts_compose():
    """``Y[i] = X[((i+1) % 3 + 1) % 3]``: X rotated by 2.  Written with nested ``floormod`` apache-tvm 0.27 compiles
    it as a rotation by 1 (test_lowering_tvm_bugs.py); the TVM domain spells Shift as a select, which is exact."""
    a = Assembler()
    (x,) = a.input("N")
    op = a.build([a.shift(a.shift(x, 1), 1)], "shift2")
    b = {"N": 3}
    xa = np.array([10, 20, 30], np.float32)
    want = np.array([30, 10, 20], np.float32)
    np.testing.assert_array_equal(evaluate(op, b, [xa]), want)
    dy = np.array([1, 2, 3], np.float32)
    np.testing.assert_array_equal(gradient(op, b, [xa], dy, 0), [2, 3, 1])
    np.testing.assert_array_equal(compile_forward(op, b)(xa), want)
    np.testing.assert_array_equal(compile_backward(op, 0, b)(dy, xa), [2, 3, 1])


@pytest.mark.parametrize("shifts", [(1, 1, 1, 1, 1, 1), (1, -1), (2, 1, -3, 1), (1, 2, 2, -4, 1)])
def test_shift_chains_fuse_and_compile(shifts):
    """A chain of k Shifts is one Shift by the sum (none if it is 0): exact, and the nested selects that took TVM
    exponential time (k = 5 did not compile in 3 minutes) never reach it."""
    a = Assembler()
    (x,) = a.input("N")
    for s in shifts:
        x = a.shift(x, s)
    op = a.build([x], "chain")
    fused = fuse_shifts(op)
    kinds = [p.kind for p in fused.prims]
    assert kinds == ([] if sum(shifts) == 0 else ["shift"]), kinds
    assert [p.param for p in fused.prims] == ([] if sum(shifts) == 0 else [sum(shifts)])
    b = {"N": 5}
    xa = np.arange(5, dtype=np.float32)
    want = np.roll(xa, -sum(shifts))
    np.testing.assert_array_equal(evaluate(op, b, [xa]), want)
    np.testing.assert_array_equal(compile_forward(op, b)(xa), want)
    np.testing.assert_array_equal(compile_backward(op, 0, b)(xa, xa), np.roll(xa, sum(shifts)))


def test_fuse_shifts_keeps_the_rest_of_the_graph():
    """Shifts separated by a Merge are not a chain; a chain inside a larger operator keeps the tensors' shapes."""
    a = Assembler()
    n, c, h, w = a.input("N", "C_in", "H", "W")
    h = a.shift(a.shift(h, 1), 1)
    m = a.shift(a.merge(h, w), 1)
    o = a.share(a.expand("C_out"), 1)
    a.sum(a.share(c, 1))
    op = a.build([n, o, m], "mixed")
    fused = fuse_shifts(op)
    assert sorted(p.param for p in fused.prims if p.kind == "shift") == [1, 2]
    b = {"N": 1, "C_in": 3, "C_out": 2, "H": 4, "W": 3}
    assert fused.shapes(b) == op.shapes(b)
    assert verify(op, b).ok


# ---- bad input to the compiled runners --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pointwise_kernels():
    op, b = named("pointwise"), dict(LIBRARY["pointwise"].example)
    shapes = op.shapes(b)
    arrays = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    return op, b, arrays, compile_forward(op, b), compile_backward(op, 0, b)


def test_forward_runner_rejects_wrong_rank_with_syno_error(pointwise_kernels):
    op, b, arr, fwd, _ = pointwise_kernels
    x, w = arr["X"], arr["W1"]
    assert fwd(x, w).shape == tuple(op.shapes(b)["Y"])
    for bad in [(x[0], w), (x.reshape(2, 8, 64), w), (x, w[None]), (x[:, :4], w), (x,), (x, w, w)]:
        with pytest.raises(SynoError) as e:
            fwd(*bad)
        assert "shape" in str(e.value) or "tensors" in str(e.value)


def test_backward_runner_rejects_wrong_rank_with_syno_error(pointwise_kernels):
    """errors.py: a wrong rank is user input and must surface as SynoError, not a TVM error."""
    _, _, arr, _, bwd = pointwise_kernels
    dy, x, w = arr["Y"], arr["X"], arr["W1"]
    assert bwd(dy, x, w).shape == x.shape
    for bad in [(dy, x[0], w), (dy[0], x, w), (dy, x)]:
        with pytest.raises(SynoError):
            bwd(*bad)
