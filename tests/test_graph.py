"""The operator graph: JSON round trip, stable structural hash, validation of malformed input, sizes under bindings."""

import copy
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from syno_tvm.errors import SynoError
from syno_tvm.ir import reference
from syno_tvm.ir.assembler import Assembler
from syno_tvm.ir.graph import FORMAT, VERSION, Operator
from syno_tvm.ir.library import LIBRARY, conv2d, gpt2_qkv, named, shift_conv, stacked_conv

REPO = Path(__file__).resolve().parents[1]
OPERATORS = {name: entry.build() for name, entry in LIBRARY.items()}


# ---- JSON round trip ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LIBRARY))
def test_json_round_trip(name):
    op = OPERATORS[name]
    data = op.to_json()
    assert data["format"] == FORMAT and data["version"] == VERSION
    back = Operator.from_json(data)
    assert back == op
    assert back.hash == op.hash
    assert back.name == op.name == name
    text = op.dumps()
    assert "\n" not in text
    again = Operator.from_json(text)
    assert again == op and again.hash == op.hash
    assert Operator.from_json(json.loads(text)) == op
    assert again.dumps() == text
    # the JSON text is plain JSON data (survives an unrelated serializer)
    assert Operator.from_json(json.dumps(json.loads(text), indent=2)) == op


@pytest.mark.parametrize("name", list(LIBRARY))
def test_named_matches_library(name):
    assert named(name) == OPERATORS[name]
    assert named(name).hash == OPERATORS[name].hash


def test_named_unknown():
    with pytest.raises(SynoError, match="conv2d"):
        named("no_such_operator")


# ---- the hash -------------------------------------------------------------------------------------------------------


def test_hash_is_a_short_hex_string():
    for op in OPERATORS.values():
        assert isinstance(op.hash, str) and len(op.hash) == 16
        int(op.hash, 16)


def test_hash_stable_across_processes():
    code = ("import json; from syno_tvm.ir.library import LIBRARY; "
            "print(json.dumps({n: e.build().hash for n, e in LIBRARY.items()}))")
    here = {name: op.hash for name, op in OPERATORS.items()}
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                             check=True, timeout=60)
        assert json.loads(out.stdout) == here


def test_different_operators_have_different_hashes():
    hashes = {name: op.hash for name, op in OPERATORS.items()}
    assert len(set(hashes.values())) == len(hashes), hashes
    variants = [conv2d(3), conv2d(5), shift_conv(1), shift_conv(-1), shift_conv(2), gpt2_qkv(2, 3), gpt2_qkv(2, 1),
                stacked_conv(3), stacked_conv(5)]
    assert len({op.hash for op in variants}) == len(variants)


def _conv2d_reordered() -> Operator:
    """conv2d built with the primitives called in another order (W before H, Shares reversed, sums permuted)."""
    a = Assembler(k=3)
    n, c, h, w = a.input("N", "C_in", "H", "W")
    w, kw = a.unfold(w, "k")
    h, kh = a.unfold(h, "k")
    kw = a.share(kw, 1)
    kh = a.share(kh, 1)
    c = a.share(c, 1)
    o = a.share(a.expand("C_out"), 1)
    a.sum(kw, c, kh)
    # weight dims in Share order: [kw, kh, c, o] -> PyTorch layout [o, c, kh, kw]
    return a.build([n, o, h, w], "conv2d_reordered", weight_order={1: [3, 2, 1, 0]})


def test_hash_invariant_to_assembly_order():
    op, alt = OPERATORS["conv2d"], _conv2d_reordered()
    assert alt.sizes != op.sizes or alt.prims != op.prims, "the reordered build must number dims differently"
    assert alt.hash == op.hash
    # and it really is the same operator
    b = LIBRARY["conv2d"].example
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s) for k, s in op.shapes(b).items() if k != "Y"]
    assert alt.shapes(b) == op.shapes(b)
    np.testing.assert_allclose(reference.evaluate(alt, b, arrays), reference.evaluate(op, b, arrays), atol=1e-12)


def test_hash_sees_weight_layout_and_output_order():
    op = OPERATORS["conv2d"]
    a = Assembler(k=3)
    n, c, h, w = a.input("N", "C_in", "H", "W")
    h, kh = a.unfold(h, "k")
    w, kw = a.unfold(w, "k")
    o = a.share(a.expand("C_out"), 1)
    c, kh, kw = a.share(c, 1), a.share(kh, 1), a.share(kw, 1)
    a.sum(c, kh, kw)
    swapped_out = a.build([n, o, w, h])
    assert swapped_out.hash != op.hash

    a = Assembler(k=3)
    n, c, h, w = a.input("N", "C_in", "H", "W")
    h, kh = a.unfold(h, "k")
    w, kw = a.unfold(w, "k")
    o = a.share(a.expand("C_out"), 1)
    c, kh, kw = a.share(c, 1), a.share(kh, 1), a.share(kw, 1)
    a.sum(c, kh, kw)
    c_first = a.build([n, o, h, w], weight_order={1: [1, 0, 2, 3]})   # W[c, o, a, b]
    assert c_first.hash != op.hash


def _renumber(data: dict, seed: int) -> dict:
    """The same operator with dims renumbered at random and the primitive list shuffled."""
    r = random.Random(seed)
    n = len(data["sizes"])
    perm = list(range(n))
    r.shuffle(perm)
    out = copy.deepcopy(data)
    sizes = [None] * n
    for old, new in enumerate(perm):
        sizes[new] = data["sizes"][old]
    out["sizes"] = sizes
    prims = [[p[0], [perm[d] for d in p[1]], [perm[d] for d in p[2]]] + p[3:] for p in data["prims"]]
    r.shuffle(prims)
    out["prims"] = prims
    out["input"] = [perm[d] for d in data["input"]]
    out["weights"] = [[perm[d] for d in w] for w in data["weights"]]
    out["output"] = [perm[d] for d in data["output"]]
    return out


@pytest.mark.parametrize("name", list(LIBRARY))
def test_hash_invariant_to_dim_numbering(name):
    op = OPERATORS[name]
    for seed in range(3):
        other = Operator.from_json(_renumber(op.to_json(), seed))
        assert other.hash == op.hash
        assert other.shapes(LIBRARY[name].example) == op.shapes(LIBRARY[name].example)


# ---- malformed input ------------------------------------------------------------------------------------------------


def _conv_json() -> dict:
    return OPERATORS["conv2d"].to_json()


def _edit(fn):
    data = _conv_json()
    fn(data)
    return data


def _set(key, value):
    return lambda d: d.__setitem__(key, value)


def _del(key):
    return lambda d: d.pop(key)


def _prim(i, value):
    return lambda d: d["prims"].__setitem__(i, value)


BAD = {
    "bad json text": '{"format": "syno-tvm/operator", "version": 1,',
    "not json at all": "conv2d",
    "empty text": "",
    "a json list": [1, 2, 3],
    "a json number": "3",
    "wrong format tag": _edit(_set("format", "onnx")),
    "no format tag": _edit(_del("format")),
    "wrong version": _edit(_set("version", 2)),
    "version as text": _edit(_set("version", "1")),
    "no version": _edit(_del("version")),
    "missing sizes": _edit(_del("sizes")),
    "missing prims": _edit(_del("prims")),
    "missing input": _edit(_del("input")),
    "missing weights": _edit(_del("weights")),
    "missing output": _edit(_del("output")),
    "unknown prim kind": _edit(_prim(0, ["conv", [2], [4, 5]])),
    "split with 3 bottoms": _edit(_prim(0, ["split", [2], [4, 5, 8]])),
    "unfold with 2 tops": _edit(_prim(0, ["unfold", [2, 3], [4, 5]])),
    "prim too short": _edit(_prim(0, ["unfold"])),
    "prim not a list": _edit(_prim(0, 5)),
    "prim dims not a list": _edit(_prim(0, ["unfold", 2, [4, 5]])),
    "prim dim not an int": _edit(_prim(0, ["unfold", ["x"], [4, 5]])),
    "prim dim out of range": _edit(_prim(0, ["unfold", [99], [4, 5]])),
    "prim param not an int": _edit(_prim(3, ["share", [8, 9], [10], "one"])),
    "unfold with a param": _edit(_prim(0, ["unfold", [2], [4, 5], 3])),
    "share with weight 2 of 1": _edit(_prim(3, ["share", [8, 9], [10], 2])),
    "dim used twice in input": _edit(_set("input", [0, 1, 2, 2])),
    "dim used twice in output": _edit(_set("output", [0, 10, 4, 4])),
    "negative dim": _edit(_set("input", [-1, 1, 2, 3])),
    "bool dim": _edit(_set("input", [True, 1, 2, 3])),
    "size not parsable": _edit(lambda d: d["sizes"].__setitem__(0, "N+1")),
    "sizes not a list": _edit(_set("sizes", 5)),
    "shape rule broken": _edit(lambda d: d["sizes"].__setitem__(4, "W")),
    "weight not from share": _edit(_set("weights", [[9, 11, 13, 2]])),
    "prims is null": _edit(_set("prims", None)),
    "coefficient not a number": _edit(_set("coefficients", {"k": "three"})),
    # found by these tests: the following malformations are not rejected cleanly
    "coefficients a list": _edit(_set("coefficients", [["k", 3]])),
    "coefficient a float": _edit(_set("coefficients", {"k": 3.5})),
    "size null": _edit(lambda d: d["sizes"].__setitem__(0, None)),
    "dim a float": _edit(_set("input", [0.5, 1, 2, 3])),
}


@pytest.mark.parametrize("what", list(BAD))
def test_malformed_json_is_one_line_syno_error(what):
    with pytest.raises(SynoError) as e:
        Operator.from_json(BAD[what])
    msg = str(e.value)
    assert msg and "\n" not in msg


def test_cycle_is_rejected():
    data = {"format": FORMAT, "version": VERSION, "sizes": ["N", "N"],
            "prims": [["shift", [0], [1], 1], ["shift", [1], [0], 1]], "input": [], "weights": [], "output": []}
    with pytest.raises(SynoError, match="cycle"):
        Operator.from_json(data)


def test_assembler_errors():
    a = Assembler(k=3)
    n, c, h, w = a.input("N", "C_in", "H", "W")
    h2, kh = a.unfold(h, "k")
    with pytest.raises(SynoError):
        a.unfold(h, "k")                      # h was consumed
    with pytest.raises(SynoError):
        a.build([n, c, h2, w])                # kh is left live
    with pytest.raises(SynoError):
        a.input("N")                          # second input


# ---- sizes under a binding ------------------------------------------------------------------------------------------


def test_bind_non_integer_size_names_size_layer_values():
    op = OPERATORS["conv2d_grouped"]
    with pytest.raises(SynoError) as e:
        op.bind({"N": 1, "C_in": 48, "C_out": 64, "H": 5, "W": 6}, layer="layer3.0.conv1")
    msg = str(e.value)
    assert "C_in/g" in msg
    assert "layer3.0.conv1" in msg
    assert "C_in=48" in msg and "g=32" in msg
    assert "\n" not in msg


def test_bind_after_json_round_trip():
    op = Operator.from_json(OPERATORS["gpt2_qkv"].dumps())
    with pytest.raises(SynoError) as e:
        op.bind({"N": 1, "seq": 3, "H_in": 100})
    assert "H_in=100" in str(e.value) and "\n" not in str(e.value)
    assert op.shapes(LIBRARY["gpt2_qkv"].example)["Y"] == (1, 3, 3 * 96)


def test_bind_missing_variable_names_it():
    with pytest.raises(SynoError, match="C_out"):
        OPERATORS["conv2d"].bind({"N": 1, "C_in": 4, "H": 4, "W": 4})


def test_bind_coefficient_override():
    op = OPERATORS["conv2d"]
    sizes = op.bind({"N": 1, "C_in": 2, "C_out": 3, "H": 7, "W": 7, "k": 5})
    assert op.shapes({"N": 1, "C_in": 2, "C_out": 3, "H": 7, "W": 7, "k": 5})["W1"] == (3, 2, 5, 5)
    assert len(sizes) == len(op.sizes)


@pytest.mark.parametrize("binding", [
    {"N": 2, "C_in": 8, "C_out": 16, "H": 8, "W": 8},
    {"N": 1, "C_in": 3, "C_out": 5, "H": 7, "W": 9},
])
def test_params_conv2d(binding):
    op = OPERATORS["conv2d"]
    assert op.params(binding) == binding["C_out"] * binding["C_in"] * 3 * 3
    assert conv2d(5).params(binding) == binding["C_out"] * binding["C_in"] * 5 * 5
    assert op.shapes(binding) == {"X": (binding["N"], binding["C_in"], binding["H"], binding["W"]),
                                  "W1": (binding["C_out"], binding["C_in"], 3, 3),
                                  "Y": (binding["N"], binding["C_out"], binding["H"], binding["W"])}


def test_params_other_operators():
    v = LIBRARY["conv2d"].example
    assert OPERATORS["pointwise"].params(v) == 16 * 8
    assert OPERATORS["conv2d_depthwise"].params(v) == 8 * 9
    assert OPERATORS["stacked_conv"].params(v) == 16 * 8 * 3 + 16 * 16 * 3
    g = LIBRARY["conv2d_grouped"].example
    assert OPERATORS["conv2d_grouped"].params(g) == 64 * (64 // 32) * 9
    assert OPERATORS["gpt2_qkv"].params({"N": 1, "seq": 1, "H_in": 768}) == 72 * 384 * 16


def test_variables():
    op = OPERATORS["conv2d_grouped"]
    assert op.variables() == ("C_in", "C_out", "H", "N", "W", "g", "k")
    assert op.primary_variables() == ("C_in", "C_out", "H", "N", "W")
    assert op.coefficient_values == {"g": 32, "k": 3}


def _two_filters(first_on_h: bool):
    """Y = sum X[h+r1-1, w+r2-1] W1[r1] W2[r2], with W1 filtering along H (or along W when swapped)."""
    from syno_tvm.ir.assembler import Assembler

    a = Assembler(k=3)
    (c, h, w) = a.input("C", "H", "W")
    h, rh = a.unfold(h, "k")
    w, rw = a.unfold(w, "k")
    r1, r2 = (rh, rw) if first_on_h else (rw, rh)
    r1 = a.share(r1, 1)
    r2 = a.share(r2, 2)
    a.sum(r1, r2)
    return a.build([c, h, w])


def test_equal_size_reduces_in_different_roles_hash_differently():
    """Regression: Reduce dims of equal size used to hash equally whatever they fed, so these two different
    functions (W1 along H vs W1 along W) collided."""
    import numpy as np
    from syno_tvm.ir.reference import evaluate

    along_h, along_w = _two_filters(True), _two_filters(False)
    b = {"C": 1, "H": 4, "W": 5}
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s) for k, s in along_h.shapes(b).items() if k != "Y"]
    assert not np.allclose(evaluate(along_h, b, xs), evaluate(along_w, b, xs))
    assert along_h.hash != along_w.hash
