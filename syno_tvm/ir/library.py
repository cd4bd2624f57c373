"""Named operators, built with the Assembler: the familiar ones (to locate in the space and to swap in as a
sanity check) and two of Syno's discoveries (its Operator 1 for
ResNet, ``07889``, and its GPT-2 QKV projection, ``05675``, from Syno's artifact).

Each entry carries an *example binding*: small primary values that make every size an integer, used by
``syno-tvm show NAME --verify`` and the tests.  Coefficient defaults are Syno's (k=3, s=2, g=32; GPT-2: k=2, t=3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import SynoError
from .assembler import Assembler
from .graph import Operator


def conv2d(k: int = 3) -> Operator:
    """``Y[n,o,h,w] = sum_{c,a,b} X[n,c,h+a-k//2,w+b-k//2] * W[o,c,a,b]`` (same padding, PyTorch layout)."""
    a = Assembler(k=k)
    n, c, h, w = a.input("N", "C_in", "H", "W")
    h, kh = a.unfold(h, "k")
    w, kw = a.unfold(w, "k")
    o = a.share(a.expand("C_out"), 1)
    c, kh, kw = a.share(c, 1), a.share(kh, 1), a.share(kw, 1)
    a.sum(c, kh, kw)
    return a.build([n, o, h, w], "conv2d")


def conv2d_grouped(k: int = 3, g: int = 32) -> Operator:
    """Grouped conv; ``W[g, C_out/g, C_in/g, k, k]`` is PyTorch's ``[C_out, C_in/g, k, k]`` in the same memory order."""
    a = Assembler(k=k, g=g)
    n, c, h, w = a.input("N", "C_in", "H", "W")
    h, kh = a.unfold(h, "k")
    w, kw = a.unfold(w, "k")
    gamma, ci = a.split(c, "C_in/g")
    gamma = a.share(gamma, 1)
    j = a.share(a.expand("C_out/g"), 1)
    ci, kh, kw = a.share(ci, 1), a.share(kh, 1), a.share(kw, 1)
    a.sum(ci, kh, kw)
    return a.build([n, a.merge(gamma, j), h, w], "conv2d_grouped")


def conv2d_depthwise(k: int = 3) -> Operator:
    """``Y[n,c,h,w] = sum_{a,b} X[n,c,h+a-k//2,w+b-k//2] * W[c,a,b]`` (no outer dim: C_out = C_in)."""
    a = Assembler(k=k)
    n, c, h, w = a.input("N", "C_in", "H", "W")
    h, kh = a.unfold(h, "k")
    w, kw = a.unfold(w, "k")
    c, kh, kw = a.share(c, 1), a.share(kh, 1), a.share(kw, 1)
    a.sum(kh, kw)
    return a.build([n, c, h, w], "conv2d_depthwise")


def pointwise() -> Operator:
    """1x1 conv: ``Y[n,o,h,w] = sum_c X[n,c,h,w] * W[o,c]``."""
    a = Assembler()
    n, c, h, w = a.input("N", "C_in", "H", "W")
    o = a.share(a.expand("C_out"), 1)
    c = a.share(c, 1)
    a.sum(c)
    return a.build([n, o, h, w], "pointwise")


def linear() -> Operator:
    """Matmul on the last dim: ``Y[n,s,o] = sum_i X[n,s,i] * W[o,i]`` (PyTorch nn.Linear layout)."""
    a = Assembler()
    n, s, i = a.input("N", "seq", "H_in")
    o = a.share(a.expand("H_out"), 1)
    i = a.share(i, 1)
    a.sum(i)
    return a.build([n, s, o], "linear")


def shift_conv(shift: int = 1) -> Operator:
    """Shift along H, then pointwise: ``Y[n,o,h,w] = sum_c X[n,c,(h+shift) mod H,w] * W[o,c]``."""
    a = Assembler()
    n, c, h, w = a.input("N", "C_in", "H", "W")
    h = a.shift(h, shift)
    o = a.share(a.expand("C_out"), 1)
    c = a.share(c, 1)
    a.sum(c)
    return a.build([n, o, h, w], "shift_conv")


def pool_conv(k: int = 3) -> Operator:
    """A weight-free k x k window sum, then pointwise: ``Y = sum_{c,a,b} X[n,c,h+a-k//2,w+b-k//2] * W[o,c]``.
    The window sum touches no weight, so the lowering reduces it first (early reduction)."""
    a = Assembler(k=k)
    n, c, h, w = a.input("N", "C_in", "H", "W")
    h, kh = a.unfold(h, "k")
    w, kw = a.unfold(w, "k")
    o = a.share(a.expand("C_out"), 1)
    c = a.share(c, 1)
    a.sum(c, kh, kw)
    return a.build([n, o, h, w], "pool_conv")


def stacked_conv(k: int = 3) -> Operator:
    """A k x 1 conv (C_in -> C_out) then a 1 x k conv (C_out -> C_out), as one operator with two weights:
    ``W1[m, C_in, k]`` along H and ``W2[o, m, k]`` along W."""
    a = Assembler(k=k)
    n, c, h, w = a.input("N", "C_in", "H", "W")
    h, kh = a.unfold(h, "k")
    w, kw = a.unfold(w, "k")
    m = a.share(a.expand("C_out"), 1)
    c, kh = a.share(c, 1), a.share(kh, 1)
    o = a.share(a.expand("C_out"), 2)
    m, kw = a.share(m, 2), a.share(kw, 2)
    a.sum(c, kh, m, kw)
    return a.build([n, o, h, w], "stacked_conv")


def syno_operator1(k: int = 3, s: int = 2, g: int = 32) -> Operator:
    """Syno's Operator 1 (``07889``): with c = C_in/g and J = C_out/(g*s),
    ``Y[n,o,h,w] = sum_{gam,a,b,j} W1[gam,a,b,o,j] * sum_ci W2[gam*c+ci,b,j] * X[n,gam*c+ci,h+a-k//2,w+b-k//2]``."""
    a = Assembler(k=k, s=s, g=g)
    n, c, h, w = a.input("N", "C_in", "H", "W")
    h, kh = a.unfold(h, "k")
    w, kw = a.unfold(w, "k")
    c, kw = a.share(c, 2), a.share(kw, 2)
    j = a.share(a.expand("C_out/(g*s)"), 2)
    gamma, ci = a.split(c, "C_in/g")
    a.sum(ci)
    gamma, kh, kw = a.share(gamma, 1), a.share(kh, 1), a.share(kw, 1)
    o = a.share(a.expand("C_out"), 1)
    j = a.share(j, 1)
    a.sum(gamma, kh, kw, j)
    return a.build([n, o, h, w], "syno_operator1")


def gpt2_qkv(k: int = 2, t: int = 3) -> Operator:
    """Syno's GPT-2 QKV operator (``05675``): with o = (q, r1, r2) of sizes (k^3 t^2, k, H_in/(k^4 t)),
    ``Y[n,s,o] = sum_{e < H_in/k} X[n,s,r1*(H_in/k)+e] * W[q,e,r2]``; output size t*H_in."""
    a = Assembler(k=k, t=t)
    n, s, x = a.input("N", "seq", "H_in")
    r1, e = a.split(x, "H_in/k")
    q = a.share(a.expand("k^3*t^2"), 1)
    e = a.share(e, 1)
    r2 = a.share(a.expand("H_in/(k^4*t)"), 1)
    a.sum(e)
    return a.build([n, s, a.merge(a.merge(q, r1), r2)], "gpt2_qkv")


def convolution(kh: int = 3, kw: int = 3, stride: int = 1, groups: int = 1, depthwise: bool = False) -> Operator:
    """One ONNX/PyTorch convolution layer exactly (same padding ``k//2``, odd kernels), as the swap pass needs it
    to keep a layer's function on any model: a ``kh x kw`` kernel (1 x 1 needs no window), ``stride`` as a Stride
    after each window (Unfold reads ``i + j - k//2``, Stride then keeps every ``s``-th ``i``: the strided conv's
    own index), ``groups`` as a Split of C_in by ``C_in/g``, ``depthwise`` for one filter per channel (C_out =
    C_in). The weight has PyTorch's ``[C_out, C_in/groups, kh, kw]`` memory order, so a layer's weights carry over.
    The square stride-1 cases are the library's ``conv2d``, ``conv2d_grouped`` and ``conv2d_depthwise``."""
    coefficients = {"kh": kh, "kw": kw} if kh != kw else ({"k": kh} if kh > 1 else {})
    if stride > 1:
        coefficients["s"] = stride
    if groups > 1 and not depthwise:
        coefficients["g"] = groups
    a = Assembler(**coefficients)
    n, c, h, w = a.input("N", "C_in", "H", "W")
    windows = []
    for axis, (dim, k, name) in enumerate(((h, kh, "kh" if kh != kw else "k"), (w, kw, "kw" if kh != kw else "k"))):
        if k > 1:
            dim, win = a.unfold(dim, name)
            windows.append(win)
        if stride > 1:
            dim = a.stride(dim, "s")
        h, w = (dim, w) if axis == 0 else (h, dim)
    if depthwise:
        c = a.share(c, 1)
        windows = [a.share(win, 1) for win in windows]
        a.sum(*windows)
        return a.build([n, c, h, w], "conv2d_depthwise")
    gamma = None
    if groups > 1:
        gamma, c = a.split(c, "C_in/g")
        gamma = a.share(gamma, 1)
    o = a.share(a.expand("C_out/g" if groups > 1 else "C_out"), 1)
    c = a.share(c, 1)
    windows = [a.share(win, 1) for win in windows]
    a.sum(c, *windows)
    out = a.merge(gamma, o) if gamma is not None else o
    return a.build([n, out, h, w], "conv2d_grouped" if groups > 1 else ("conv2d" if windows else "pointwise"))


@dataclass(frozen=True)
class Entry:
    build: Callable[..., Operator]
    example: dict[str, int]


_VISION = {"N": 2, "C_in": 8, "C_out": 16, "H": 8, "W": 8}
LIBRARY: dict[str, Entry] = {
    "conv2d": Entry(conv2d, _VISION),
    "conv2d_grouped": Entry(conv2d_grouped, {"N": 1, "C_in": 64, "C_out": 64, "H": 5, "W": 6}),
    "conv2d_depthwise": Entry(conv2d_depthwise, _VISION),
    "pointwise": Entry(pointwise, _VISION),
    "linear": Entry(linear, {"N": 2, "seq": 4, "H_in": 16, "H_out": 24}),
    "shift_conv": Entry(shift_conv, _VISION),
    "pool_conv": Entry(pool_conv, _VISION),
    "stacked_conv": Entry(stacked_conv, _VISION),
    "syno_operator1": Entry(syno_operator1, {"N": 1, "C_in": 64, "C_out": 128, "H": 4, "W": 5}),
    "gpt2_qkv": Entry(gpt2_qkv, {"N": 1, "seq": 3, "H_in": 96}),
}


def named(name: str) -> Operator:
    """The library operator ``name`` with its default coefficients."""
    if name not in LIBRARY:
        raise SynoError(f"unknown operator '{name}': use one of {', '.join(LIBRARY)} or a JSON file")
    return LIBRARY[name].build()
