"""Every library operator, evaluated by the numpy reference, against an independent numpy implementation.

The implementations below use only numpy (np.pad, np.einsum, np.roll, reshapes and loops over window taps); none of
them touches syno_tvm, so they check the primitive semantics and the library's assembly end to end.  The gradient of
the reference is checked against a hand-written conv2d gradient and, for every operator and tensor, against the
exact directional derivative of the independent implementation (each operator is linear in each tensor).
"""

import numpy as np
import pytest

from syno_tvm.ir import reference
from syno_tvm.ir.library import LIBRARY

TOL = dict(rtol=1e-9, atol=1e-9)


# ---- independent implementations -------------------------------------------------------------------------------------


def _pad_hw(X, p):
    return np.pad(X, ((0, 0), (0, 0), (p, p), (p, p)))


def np_conv2d(X, W):
    """PyTorch-style cross-correlation, zero padding k//2: Y[n,o,h,w] = sum X[n,c,h+a-p,w+b-p] W[o,c,a,b]."""
    N, C, H, Wd = X.shape
    O, C2, k, k2 = W.shape
    assert C == C2 and k == k2
    Xp = _pad_hw(X, k // 2)
    Y = np.zeros((N, O, H, Wd))
    for a in range(k):
        for b in range(k):
            Y += np.einsum("nchw,oc->nohw", Xp[:, :, a:a + H, b:b + Wd], W[:, :, a, b])
    return Y


def np_conv2d_loops(X, W):
    """The same conv2d with explicit scalar loops (a second, slower independent statement)."""
    N, C, H, Wd = X.shape
    O, _, k, _ = W.shape
    p = k // 2
    Y = np.zeros((N, O, H, Wd))
    for n in range(N):
        for o in range(O):
            for h in range(H):
                for w in range(Wd):
                    acc = 0.0
                    for c in range(C):
                        for a in range(k):
                            for b in range(k):
                                y, x = h + a - p, w + b - p
                                if 0 <= y < H and 0 <= x < Wd:
                                    acc += X[n, c, y, x] * W[o, c, a, b]
                    Y[n, o, h, w] = acc
    return Y


def np_conv2d_grouped(X, W, g):
    """W[g, C_out/g, C_in/g, k, k] is PyTorch's [C_out, C_in/g, k, k]; output o belongs to group o // (C_out/g)."""
    N, C, H, Wd = X.shape
    _, Og, Cg, k, _ = W.shape
    Wt = W.reshape(g * Og, Cg, k, k)
    Y = np.zeros((N, g * Og, H, Wd))
    for o in range(g * Og):
        grp = o // Og
        Y[:, o:o + 1] = np_conv2d(X[:, grp * Cg:(grp + 1) * Cg], Wt[o:o + 1])
    return Y


def np_conv2d_depthwise(X, W):
    """Y[n,c,h,w] = sum_{a,b} X[n,c,h+a-p,w+b-p] W[c,a,b]."""
    N, C, H, Wd = X.shape
    k = W.shape[1]
    Xp = _pad_hw(X, k // 2)
    Y = np.zeros_like(X)
    for a in range(k):
        for b in range(k):
            Y += Xp[:, :, a:a + H, b:b + Wd] * W[None, :, a, b, None, None]
    return Y


def np_pointwise(X, W):
    return np.einsum("nchw,oc->nohw", X, W)


def np_linear(X, W):
    return np.einsum("nsi,oi->nso", X, W)


def np_shift_conv(X, W):
    """Y[n,o,h,w] = sum_c X[n,c,(h+1) mod H,w] W[o,c]."""
    return np_pointwise(np.roll(X, -1, axis=2), W)


def np_pool_conv(X, W, k=3):
    """A k x k zero-padded window sum, then pointwise."""
    N, C, H, Wd = X.shape
    Xp = _pad_hw(X, k // 2)
    S = sum(Xp[:, :, a:a + H, b:b + Wd] for a in range(k) for b in range(k))
    return np_pointwise(S, W)


def np_stacked_conv(X, W1, W2):
    """A k x 1 conv with W1[m,c,a] along H, then a 1 x k conv with W2[o,m,b] along W, both zero padded."""
    N, C, H, Wd = X.shape
    k = W1.shape[2]
    p = k // 2
    Xp = np.pad(X, ((0, 0), (0, 0), (p, p), (0, 0)))
    Z = sum(np.einsum("nchw,mc->nmhw", Xp[:, :, a:a + H, :], W1[:, :, a]) for a in range(k))
    Zp = np.pad(Z, ((0, 0), (0, 0), (0, 0), (p, p)))
    return sum(np.einsum("nmhw,om->nohw", Zp[:, :, :, b:b + Wd], W2[:, :, b]) for b in range(k))


def np_syno_operator1(X, W1, W2, g):
    """Y[n,o,h,w] = sum_{gam,a,b,j} W1[gam,a,b,o,j] sum_ci W2[gam*c+ci,b,j] X[n,gam*c+ci,h+a-1,w+b-1] (zero padded)."""
    N, C, H, Wd = X.shape
    _, k, _, O, J = W1.shape
    c = C // g
    p = k // 2
    Xg = _pad_hw(X, p).reshape(N, g, c, H + 2 * p, Wd + 2 * p)
    W2g = W2.reshape(g, c, k, J)
    Y = np.zeros((N, O, H, Wd))
    for b in range(k):
        # T[n, gam, j, h', w] = sum_ci W2[gam*c+ci, b, j] * Xpad[n, gam*c+ci, h', w+b]
        T = np.einsum("ngihw,gij->ngjhw", Xg[..., b:b + Wd], W2g[:, :, b, :])
        for a in range(k):
            Y += np.einsum("ngjhw,goj->nohw", T[:, :, :, a:a + H, :], W1[:, a, b, :, :])
    return Y


def np_syno_operator1_loops(X, W1, W2, g):
    """The Operator 1 formula (Syno's ``07889``, as in the library), term by term (only for a tiny binding)."""
    N, C, H, Wd = X.shape
    G, k, _, O, J = W1.shape
    c = C // g
    Y = np.zeros((N, O, H, Wd))
    for n in range(N):
        for o in range(O):
            for h in range(H):
                for w in range(Wd):
                    acc = 0.0
                    for gam in range(G):
                        for a in range(k):
                            for b in range(k):
                                y, x = h + a - k // 2, w + b - k // 2
                                if not (0 <= y < H and 0 <= x < Wd):
                                    continue
                                for j in range(J):
                                    inner = sum(W2[gam * c + ci, b, j] * X[n, gam * c + ci, y, x] for ci in range(c))
                                    acc += W1[gam, a, b, o, j] * inner
                    Y[n, o, h, w] = acc
    return Y


def np_gpt2_qkv(X, W, k):
    """Y[n,s,(q,r1,r2)] = sum_{e < H_in/k} X[n,s,r1*(H_in/k)+e] W[q,e,r2], o = (q*k + r1)*R2 + r2."""
    N, S, Hin = X.shape
    Q, E, R2 = W.shape
    assert E == Hin // k
    Xr = X.reshape(N, S, k, E)
    Y = np.einsum("nsre,qeu->nsqru", Xr, W)
    return Y.reshape(N, S, Q * k * R2)


def np_gpt2_qkv_loops(X, W, k):
    N, S, Hin = X.shape
    Q, E, R2 = W.shape
    Y = np.zeros((N, S, Q * k * R2))
    for o in range(Q * k * R2):
        q, rest = divmod(o, k * R2)
        r1, r2 = divmod(rest, R2)
        for e in range(E):
            Y[:, :, o] += X[:, :, r1 * E + e] * W[q, e, r2]
    return Y


# name -> (expected shapes under the example binding, numpy implementation taking (X, W1, ...))
def _expected(name, b):
    N = b.get("N")
    if name == "conv2d":
        return [(N, b["C_in"], b["H"], b["W"]), (b["C_out"], b["C_in"], 3, 3)], np_conv2d
    if name == "conv2d_grouped":
        g = 32
        return ([(N, b["C_in"], b["H"], b["W"]), (g, b["C_out"] // g, b["C_in"] // g, 3, 3)],
                lambda X, W: np_conv2d_grouped(X, W, g))
    if name == "conv2d_depthwise":
        return [(N, b["C_in"], b["H"], b["W"]), (b["C_in"], 3, 3)], np_conv2d_depthwise
    if name == "pointwise":
        return [(N, b["C_in"], b["H"], b["W"]), (b["C_out"], b["C_in"])], np_pointwise
    if name == "linear":
        return [(N, b["seq"], b["H_in"]), (b["H_out"], b["H_in"])], np_linear
    if name == "shift_conv":
        return [(N, b["C_in"], b["H"], b["W"]), (b["C_out"], b["C_in"])], np_shift_conv
    if name == "pool_conv":
        return [(N, b["C_in"], b["H"], b["W"]), (b["C_out"], b["C_in"])], np_pool_conv
    if name == "stacked_conv":
        return ([(N, b["C_in"], b["H"], b["W"]), (b["C_out"], b["C_in"], 3), (b["C_out"], b["C_out"], 3)],
                np_stacked_conv)
    if name == "syno_operator1":
        g, s, k = 32, 2, 3
        J = b["C_out"] // (g * s)
        return ([(N, b["C_in"], b["H"], b["W"]), (g, k, k, b["C_out"], J), (b["C_in"], k, J)],
                lambda X, W1, W2: np_syno_operator1(X, W1, W2, g))
    if name == "gpt2_qkv":
        k, t = 2, 3
        H = b["H_in"]
        return [(N, b["seq"], H), (k ** 3 * t ** 2, H // k, H // (k ** 4 * t))], lambda X, W: np_gpt2_qkv(X, W, k)
    raise AssertionError(f"no independent implementation for library operator {name!r}: add one")


def _seed(name):
    """A seed that does not depend on PYTHONHASHSEED."""
    return sum(ord(ch) * (i + 1) for i, ch in enumerate(name))


def _random_arrays(shapes, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


OPERATORS = {name: entry.build() for name, entry in LIBRARY.items()}


# ---- the independent implementations agree with each other -------------------------------------------------------


def test_independent_implementations_self_consistent():
    rng = np.random.default_rng(7)
    X, W = rng.standard_normal((1, 3, 5, 4)), rng.standard_normal((2, 3, 3, 3))
    np.testing.assert_allclose(np_conv2d(X, W), np_conv2d_loops(X, W), **TOL)
    X, W = rng.standard_normal((2, 2, 12)), rng.standard_normal((4, 6, 3))
    np.testing.assert_allclose(np_gpt2_qkv(X, W, 2), np_gpt2_qkv_loops(X, W, 2), **TOL)
    X = rng.standard_normal((1, 4, 3, 4))
    W1, W2 = rng.standard_normal((2, 3, 3, 4, 2)), rng.standard_normal((4, 3, 2))
    np.testing.assert_allclose(np_syno_operator1(X, W1, W2, 2), np_syno_operator1_loops(X, W1, W2, 2), **TOL)
    # grouped conv with g = 1 is conv2d; depthwise is grouped with one channel per group
    X, W = rng.standard_normal((1, 4, 4, 5)), rng.standard_normal((1, 6, 4, 3, 3))
    np.testing.assert_allclose(np_conv2d_grouped(X, W, 1), np_conv2d(X, W[0]), **TOL)
    Wd = rng.standard_normal((4, 3, 3))
    np.testing.assert_allclose(np_conv2d_grouped(X, Wd.reshape(4, 1, 1, 3, 3), 4), np_conv2d_depthwise(X, Wd),
                               **TOL)


# ---- reference.evaluate vs the independent implementations ----------------------------------------------------------


def test_every_library_operator_has_an_implementation():
    for name in LIBRARY:
        _expected(name, LIBRARY[name].example)


@pytest.mark.parametrize("name", list(LIBRARY))
def test_library_operator_matches_numpy(name):
    op, binding = OPERATORS[name], LIBRARY[name].example
    shapes, impl = _expected(name, binding)
    got_shapes = op.shapes(binding)
    assert [got_shapes[k] for k in got_shapes if k != "Y"] == shapes
    arrays = _random_arrays(shapes, seed=_seed(name))
    want = impl(*arrays)
    assert got_shapes["Y"] == want.shape
    got = reference.evaluate(op, binding, arrays)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, **TOL)


def test_conv2d_matches_loops_on_odd_sizes():
    op = OPERATORS["conv2d"]
    b = {"N": 1, "C_in": 3, "C_out": 2, "H": 5, "W": 7}
    X, W = _random_arrays([(1, 3, 5, 7), (2, 3, 3, 3)], seed=3)
    np.testing.assert_allclose(reference.evaluate(op, b, [X, W]), np_conv2d_loops(X, W), **TOL)


def test_syno_operator1_matches_loops_on_small_coefficients():
    from syno_tvm.ir.library import syno_operator1
    op = syno_operator1(k=3, s=2, g=2)
    b = {"N": 1, "C_in": 4, "C_out": 8, "H": 3, "W": 4}
    X, W1, W2 = _random_arrays([(1, 4, 3, 4), (2, 3, 3, 8, 2), (4, 3, 2)], seed=4)
    np.testing.assert_allclose(reference.evaluate(op, b, [X, W1, W2]), np_syno_operator1_loops(X, W1, W2, 2), **TOL)


# ---- gradients ------------------------------------------------------------------------------------------------------


def np_conv2d_grads(X, W, G):
    """Hand-written gradients of <G, conv2d(X, W)>."""
    N, C, H, Wd = X.shape
    k = W.shape[2]
    p = k // 2
    Xp = _pad_hw(X, p)
    dW = np.zeros_like(W)
    dXp = np.zeros_like(Xp)
    for a in range(k):
        for b in range(k):
            dW[:, :, a, b] = np.einsum("nohw,nchw->oc", G, Xp[:, :, a:a + H, b:b + Wd])
            dXp[:, :, a:a + H, b:b + Wd] += np.einsum("nohw,oc->nchw", G, W[:, :, a, b])
    return dXp[:, :, p:p + H, p:p + Wd], dW


def test_conv2d_gradient_matches_hand_written():
    op, b = OPERATORS["conv2d"], LIBRARY["conv2d"].example
    shapes, _ = _expected("conv2d", b)
    X, W = _random_arrays(shapes, seed=11)
    G = np.random.default_rng(12).standard_normal(op.shapes(b)["Y"])
    dX, dW = np_conv2d_grads(X, W, G)
    np.testing.assert_allclose(reference.gradient(op, b, [X, W], G, 0), dX, **TOL)
    np.testing.assert_allclose(reference.gradient(op, b, [X, W], G, 1), dW, **TOL)


def test_conv2d_hand_gradient_is_right():
    """The hand-written gradient itself, against the exact directional derivative (conv2d is bilinear)."""
    rng = np.random.default_rng(5)
    X, W, G = rng.standard_normal((1, 2, 4, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal((1, 3, 4, 5))
    dX, dW = np_conv2d_grads(X, W, G)
    for _ in range(3):
        D = rng.standard_normal(X.shape)
        assert np.isclose(np.sum(dX * D), np.sum(G * np_conv2d(D, W)), rtol=1e-10, atol=1e-10)
        D = rng.standard_normal(W.shape)
        assert np.isclose(np.sum(dW * D), np.sum(G * np_conv2d(X, D)), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", list(LIBRARY))
def test_gradient_every_tensor(name):
    """Each operator is linear in each tensor, so <grad_T, D> must equal <G, Y(T := D)> exactly for any D."""
    op, binding = OPERATORS[name], LIBRARY[name].example
    shapes, impl = _expected(name, binding)
    rng = np.random.default_rng(_seed(name) + 1)
    arrays = [rng.standard_normal(s) for s in shapes]
    G = rng.standard_normal(op.shapes(binding)["Y"])
    for t in range(len(arrays)):
        grad = reference.gradient(op, binding, arrays, G, t)
        assert grad.shape == arrays[t].shape
        for _ in range(2):
            D = rng.standard_normal(arrays[t].shape)
            probe = list(arrays)
            probe[t] = D
            want = np.sum(G * impl(*probe))
            assert np.isclose(np.sum(grad * D), want, rtol=1e-9, atol=1e-9), (name, t)


def test_gradient_of_a_single_output_is_a_one_hot_probe():
    """dY[n,o,h,w]/dX for conv2d at one output point is the weight window placed at (h, w), clipped at the border."""
    op = OPERATORS["conv2d"]
    b = {"N": 1, "C_in": 2, "C_out": 2, "H": 4, "W": 4}
    X, W = _random_arrays([(1, 2, 4, 4), (2, 2, 3, 3)], seed=9)
    G = np.zeros((1, 2, 4, 4))
    G[0, 1, 0, 3] = 1.0                      # a corner: only a 2 x 2 part of the window lands inside
    dX = reference.gradient(op, b, [X, W], G, 0)
    want = np.zeros_like(X)
    want[0, :, 0:2, 2:4] = W[1, :, 1:3, 0:2]
    np.testing.assert_allclose(dX, want, **TOL)
