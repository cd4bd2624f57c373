"""Per-primitive index rules, checked against the semantics written directly with numpy integers.

The forward gather (``rule.gather``) of each primitive is compared with an independent numpy statement of its
meaning (reshape, roll, slicing, zero-padded sliding windows).  Every other derivation (the inverse rules the backward
lowering uses) is checked exhaustively on small sizes against the gather: it must recover exactly the points the
gather produces, with its guards holding there, and its guards must fail wherever no such point exists.
"""

import itertools

import numpy as np
import pytest

from syno_tvm.errors import SynoError
from syno_tvm.ir.primitives import PRIMITIVE_NAMES, PRIMITIVES, branch_sizes, primitive
from syno_tvm.ir.sizes import Size

rng = np.random.default_rng(0)


def _holds(guard) -> np.ndarray:
    """Guard semantics as documented in primitives.py, evaluated independently."""
    kind = guard[0]
    if kind == "range":
        return (np.asarray(guard[1]) >= 0) & (np.asarray(guard[1]) < guard[2])
    if kind == "divides":
        return np.asarray(guard[1]) % guard[2] == 0
    raise AssertionError(f"unknown guard kind {kind!r}")


def _all_hold(guards) -> np.ndarray | bool:
    ok = True
    for g in guards:
        ok = ok & _holds(g)
    return ok


def _grid(*extents):
    """Broadcastable np.int64 index grids, one per extent."""
    n = len(extents)
    return [np.arange(e, dtype=np.int64).reshape([e if i == k else 1 for i in range(n)])
            for k, e in enumerate(extents)]


# ---- the table itself -----------------------------------------------------------------------------------------------


def test_table_has_the_eight_primitives():
    assert set(PRIMITIVES) == {"split", "merge", "shift", "stride", "unfold", "expand", "reduce", "share"}
    assert PRIMITIVE_NAMES == tuple(PRIMITIVES)
    arity = {"split": (1, 2), "merge": (2, 1), "shift": (1, 1), "stride": (1, 1), "unfold": (1, 2),
             "expand": (0, 1), "reduce": (1, 0), "share": (2, 1)}
    for name, r in PRIMITIVES.items():
        assert r.name == name
        assert (r.n_tops, r.n_bottoms) == arity[name]


def test_derivations_are_well_formed():
    for name, r in PRIMITIVES.items():
        if name in ("expand", "reduce"):
            assert r.gather is None and r.derivations == ()
            continue
        branches = {f"t{i}" for i in range(r.n_tops)} | {f"b{i}" for i in range(r.n_bottoms)}
        assert r.gather.needs == {f"b{i}" for i in range(r.n_bottoms)}, name
        assert r.gather.gives == {f"t{i}" for i in range(r.n_tops)}, name
        for d in r.derivations:
            assert not (d.needs & d.gives), name
            assert d.needs | d.gives == branches, name
        assert len({d.needs for d in r.derivations}) == len(r.derivations), f"{name}: duplicate derivations"


def test_unknown_primitive_lists_the_known_ones():
    with pytest.raises(SynoError) as e:
        primitive("foo")
    msg = str(e.value)
    assert "foo" in msg
    for name in PRIMITIVES:
        assert name in msg
    assert "\n" not in msg


def test_branch_sizes():
    c = lambda s: s.value({})  # noqa: E731
    assert branch_sizes("split", [Size.const(12)], [Size.const(3), Size.const(4)], c) == {"t0": 12, "b0": 3, "b1": 4}
    assert branch_sizes("stride", [Size.const(12)], [Size.const(4)], c) == {"t0": 12, "b0": 4, "s": 3}
    assert branch_sizes("stride", [Size.parse("s*H")], [Size.var("H")], str) == {"t0": "H*s", "b0": "H", "s": "s"}


# ---- forward gather vs numpy semantics ------------------------------------------------------------------------------


def _gather(kind, sizes, bottoms, param=0):
    tops, guards = primitive(kind).gather.fn(bottoms, sizes, param)
    return tops, guards


@pytest.mark.parametrize("A, B", [(3, 4), (1, 5), (4, 1), (2, 2)])
def test_split_gather(A, B):
    i, j = _grid(A, B)
    tops, guards = _gather("split", {"t0": A * B, "b0": A, "b1": B}, {"b0": i, "b1": j})
    assert guards == []
    assert np.array_equal(np.broadcast_to(tops["t0"], (A, B)), i * B + j)
    x = rng.integers(0, 1000, A * B)
    assert np.array_equal(x[tops["t0"]], x.reshape(A, B))


@pytest.mark.parametrize("A, B", [(3, 4), (1, 5), (4, 1), (2, 2)])
def test_merge_gather(A, B):
    (k,) = _grid(A * B)
    tops, guards = _gather("merge", {"t0": A, "t1": B, "b0": A * B}, {"b0": k})
    assert guards == []
    assert np.array_equal(tops["t0"], k // B) and np.array_equal(tops["t1"], k % B)
    x = rng.integers(0, 1000, (A, B))
    assert np.array_equal(x[tops["t0"], tops["t1"]], x.reshape(A * B))


@pytest.mark.parametrize("N, s", [(5, 1), (5, -1), (5, 2), (5, 7), (1, 1), (6, -8)])
def test_shift_gather(N, s):
    (i,) = _grid(N)
    tops, guards = _gather("shift", {"t0": N, "b0": N}, {"b0": i}, s)
    assert guards == []
    assert np.array_equal(tops["t0"], (i + s) % N)
    x = rng.integers(0, 1000, N)
    assert np.array_equal(x[tops["t0"]], np.roll(x, -s))
    assert np.array_equal(x[tops["t0"]], np.array([x[(v + s) % N] for v in range(N)]))


@pytest.mark.parametrize("n, s", [(4, 3), (5, 2), (1, 4)])
def test_stride_gather(n, s):
    (i,) = _grid(n)
    tops, guards = _gather("stride", {"t0": n * s, "b0": n, "s": s}, {"b0": i})
    assert guards == []
    assert np.array_equal(tops["t0"], i * s)
    x = rng.integers(0, 1000, n * s)
    assert np.array_equal(x[tops["t0"]], x[::s])


def _unfold_numpy(x: np.ndarray, K: int) -> np.ndarray:
    """out[i, j] = x[i + j - K//2], zero outside [0, N): a sliding window over a zero-padded copy."""
    N = len(x)
    lo = K // 2
    padded = np.pad(x, (lo, K))
    return np.stack([padded[i:i + K] for i in range(N)])


@pytest.mark.parametrize("N, K", [(7, 3), (7, 5), (8, 3), (5, 1), (3, 5), (10, 7), (6, 4)])
def test_unfold_gather(N, K):
    i, j = _grid(N, K)
    tops, guards = _gather("unfold", {"t0": N, "b0": N, "b1": K}, {"b0": i, "b1": j})
    assert np.array_equal(np.broadcast_to(tops["t0"], (N, K)), i + j - K // 2)
    mask = np.broadcast_to(_all_hold(guards), (N, K))
    x = rng.integers(1, 1000, N)  # nonzero, so a wrong mask shows
    got = np.where(mask, x[np.where(mask, tops["t0"], 0)], 0)
    assert np.array_equal(got, _unfold_numpy(x, K))


def test_unfold_guard_is_main_size_not_window():
    # With N = 7 and K = 3, positions i + j - 1 in [3, 7) are valid: a guard [0, K) would zero them out.
    N, K = 7, 3
    i, j = _grid(N, K)
    tops, guards = _gather("unfold", {"t0": N, "b0": N, "b1": K}, {"b0": i, "b1": j})
    assert [g[0] for g in guards] == ["range"]
    assert guards[0][2] == N
    mask = np.broadcast_to(_all_hold(guards), (N, K))
    assert mask[5, 1] and mask[6, 0] and not mask[6, 2] and not mask[0, 0]
    assert mask.sum() == N * K - 2 * (K // 2 * (K // 2 + 1) // 2)


def test_share_gather():
    (i,) = _grid(6)
    for p in (1, 2):
        tops, guards = _gather("share", {"t0": 6, "t1": 6, "b0": 6}, {"b0": i}, p)
        assert guards == []
        assert np.array_equal(tops["t0"], i) and np.array_equal(tops["t1"], i)


# ---- inverse derivations, exhaustively against the gather ---------------------------------------------------------

# (kind, top sizes, bottom sizes, param)
CASES = [
    ("split", [12], [3, 4], 0),
    ("split", [6], [6, 1], 0),
    ("split", [5], [1, 5], 0),
    ("merge", [3, 4], [12], 0),
    ("merge", [1, 5], [5], 0),
    ("shift", [5], [5], 1),
    ("shift", [5], [5], -1),
    ("shift", [4], [4], 6),
    ("stride", [12], [4], 0),
    ("stride", [10], [5], 0),
    ("unfold", [7], [7, 3], 0),
    ("unfold", [6], [6, 5], 0),
    ("unfold", [3], [3, 5], 0),
    ("unfold", [5], [5, 1], 0),
    ("unfold", [6], [6, 4], 0),
    ("share", [4, 4], [4], 1),
    ("share", [3, 3], [3], 2),
]


def _case_id(case):
    kind, tops, bottoms, p = case
    return f"{kind}-{tops}-{bottoms}-{p}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_inverse_derivations_match_gather(case):
    kind, top_sizes, bottom_sizes, param = case
    r = primitive(kind)
    sizes = branch_sizes(kind, [Size.const(t) for t in top_sizes], [Size.const(b) for b in bottom_sizes],
                         lambda s: s.value({}))
    extent = {f"t{i}": n for i, n in enumerate(top_sizes)}
    extent.update({f"b{i}": n for i, n in enumerate(bottom_sizes)})
    names = sorted(extent)

    # All valid points of the primitive: every bottom value, tops from the gather, gather guards holding.
    points = []
    for values in itertools.product(*[range(bottom_sizes[i]) for i in range(len(bottom_sizes))]):
        bottoms = {f"b{i}": np.int64(v) for i, v in enumerate(values)}
        tops, guards = r.gather.fn(dict(bottoms), sizes, param)
        if not _all_hold(guards):
            continue
        point = {**bottoms, **tops}
        for t in tops:
            assert 0 <= point[t] < extent[t], f"gather of {kind} leaves the top range at {point}"
        points.append(tuple(int(point[n]) for n in names))
    assert points, "no valid point at all"
    assert len(set(points)) == len(points)
    valid = set(points)

    checked = 0
    for der in r.derivations[1:]:
        needs = sorted(der.needs)
        # each valid point is determined by the values of `needs`
        by_needs = {}
        for pt in valid:
            key = tuple(pt[names.index(n)] for n in needs)
            assert key not in by_needs, f"{kind}: {needs} do not determine the point"
            by_needs[key] = pt
        for key in itertools.product(*[range(extent[n]) for n in needs]):
            known = {n: np.int64(v) for n, v in zip(needs, key)}
            gives, guards = der.fn(dict(known), sizes, param)
            assert set(gives) == der.gives
            ok = bool(_all_hold(guards))
            if key in by_needs:
                # the inverse recovers the original point, and its guards hold there
                assert ok, f"{kind} {needs}->{sorted(der.gives)}: guards {guards} fail at valid point {key}"
                pt = by_needs[key]
                for n, v in gives.items():
                    assert int(v) == pt[names.index(n)], f"{kind} {needs}={key}: {n}={v}, want {pt}"
            else:
                # no preimage: the guards must reject it
                assert not ok, f"{kind} {needs}->{sorted(der.gives)}: {key} has no preimage, but got {gives}"
            checked += 1
    if kind in ("split", "merge", "shift", "stride", "unfold", "share"):
        assert checked > 0


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_inverse_derivations_vectorized(case):
    """The same derivations on broadcast numpy arrays (as the reference uses them) agree with scalar evaluation."""
    kind, top_sizes, bottom_sizes, param = case
    r = primitive(kind)
    sizes = branch_sizes(kind, [Size.const(t) for t in top_sizes], [Size.const(b) for b in bottom_sizes],
                         lambda s: s.value({}))
    extent = {f"t{i}": n for i, n in enumerate(top_sizes)}
    extent.update({f"b{i}": n for i, n in enumerate(bottom_sizes)})
    for der in r.derivations:
        needs = sorted(der.needs)
        grids = _grid(*[extent[n] for n in needs])
        gives, guards = der.fn(dict(zip(needs, grids)), sizes, param)
        shape = tuple(extent[n] for n in needs)
        mask = np.broadcast_to(_all_hold(guards), shape)
        for key in itertools.product(*[range(e) for e in shape]):
            g2, guards2 = der.fn({n: np.int64(v) for n, v in zip(needs, key)}, sizes, param)
            assert bool(mask[key]) == bool(_all_hold(guards2))
            for n in gives:
                assert int(np.broadcast_to(gives[n], shape)[key]) == int(g2[n])


# ---- shape rules ----------------------------------------------------------------------------------------------------


def _shape(kind, tops, bottoms, param=0):
    return primitive(kind).shape([Size.parse(t) for t in tops], [Size.parse(b) for b in bottoms], param)


def test_shape_rules_accept():
    assert _shape("split", ["C_in"], ["g", "C_in/g"]) is None
    assert _shape("merge", ["g", "C_out/g"], ["C_out"]) is None
    assert _shape("shift", ["H"], ["H"], 1) is None
    assert _shape("stride", ["s*H"], ["H"]) is None
    assert _shape("unfold", ["H"], ["H", "k"]) is None
    assert _shape("share", ["C_in", "C_in"], ["C_in"], 1) is None


@pytest.mark.parametrize("kind, tops, bottoms, param", [
    ("split", ["C_in"], ["g", "C_in"], 0),
    ("merge", ["g", "C_out"], ["C_out"], 0),
    ("shift", ["H"], ["H"], 0),
    ("shift", ["H"], ["W"], 1),
    ("stride", ["H"], ["H"], 0),
    ("stride", ["H"], ["2*H"], 0),        # s = 1/2 is not a size > 1
    ("unfold", ["H"], ["k", "H"], 0),
    ("share", ["C_in", "C_in"], ["C_in"], 0),
    ("share", ["C_in", "C_out"], ["C_in"], 1),
])
def test_shape_rules_reject(kind, tops, bottoms, param):
    why = _shape(kind, tops, bottoms, param)
    assert isinstance(why, str) and why
    assert "\n" not in why
