"""Symbolic sizes: parsing and printing, algebra, exact evaluation, variable specs, shapes and bindings."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syno_tvm.errors import SynoError
from syno_tvm.ir.sizes import (COEFFICIENT, PRIMARY, DimSpec, Size, Variable, VarSpace, check_bindings,
                               parse_binding, parse_shape)

# ---- parsing and printing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, factor, powers", [
    ("C_in/g", 1, {"C_in": 1, "g": -1}),
    ("t*H_in", 1, {"t": 1, "H_in": 1}),
    ("H_in/(k^4*t)", 1, {"H_in": 1, "k": -4, "t": -1}),
    ("k^2", 1, {"k": 2}),
    ("3", 3, {}),
    ("C_in*g^-1", 1, {"C_in": 1, "g": -1}),
    ("k**2", 1, {"k": 2}),
    ("2*C_out/(g*s)", 2, {"C_out": 1, "g": -1, "s": -1}),
    ("a/b/c", 1, {"a": 1, "b": -1, "c": -1}),
    ("(a*b)^2/a", 1, {"a": 1, "b": 2}),
    ("6/4", Fraction(3, 2), {}),
    (" C_in / g ", 1, {"C_in": 1, "g": -1}),
])
def test_parse_structure(text, factor, powers):
    s = Size.parse(text)
    assert s.factor == factor
    assert dict(s.powers) == powers
    assert list(s.powers) == sorted(s.powers), "powers must be sorted by name"
    assert all(p != 0 for _, p in s.powers), "no zero powers may be stored"


@pytest.mark.parametrize("text, printed", [
    ("C_in/g", "C_in/g"),
    ("t*H_in", "H_in*t"),
    ("H_in/(k^4*t)", "H_in/(k^4*t)"),
    ("k^2", "k^2"),
    ("3", "3"),
    ("C_in*g^-1", "C_in/g"),
    ("1/k", "1/k"),
    ("k/k", "1"),
])
def test_print_and_round_trip(text, printed):
    s = Size.parse(text)
    assert str(s) == printed
    assert Size.parse(str(s)) == s
    assert hash(Size.parse(str(s))) == hash(s)


def test_parse_passes_sizes_and_ints_through():
    s = Size.parse("C_in/g")
    assert Size.parse(s) is s
    assert Size.parse(7) == Size.const(7)
    assert Size.var("k") == Size.parse("k")


# ---- algebra --------------------------------------------------------------------------------------------------------


def test_algebra():
    c_in, g, k = Size.var("C_in"), Size.var("g"), Size.var("k")
    assert c_in / g == Size.parse("C_in/g")
    assert (c_in / g) * g == c_in
    assert k * k == k ** 2 == Size.parse("k^2")
    assert (k ** 2) ** -1 == Size.parse("1/k^2")
    assert k ** 0 == Size.const(1)
    assert (k ** 0).is_one and not k.is_one
    assert 2 * k == k * 2 == Size.parse("2*k")
    assert 6 / Size.const(4) == Size.parse("3/2")
    assert 1 / k == Size.parse("1/k")
    assert (k / k).powers == ()
    assert Size.parse("H_in/(k^4*t)").variables() == ("H_in", "k", "t")
    assert Size.parse("H_in/(k^4*t)").power("k") == -4
    assert Size.parse("H_in/(k^4*t)").power("nothing") == 0


def test_sizes_key_dicts():
    d = {Size.parse("C_in/g"): 1}
    assert d[Size.var("C_in") / Size.var("g")] == 1


# ---- evaluation -----------------------------------------------------------------------------------------------------


def test_evaluate_and_value_exact():
    s = Size.parse("H_in/(k^4*t)")
    b = {"H_in": 768, "k": 2, "t": 3}
    assert s.evaluate(b) == Fraction(16)
    assert s.value(b) == 16
    assert isinstance(s.value(b), int)
    assert Size.parse("C_in/g").evaluate({"C_in": 10, "g": 4}) == Fraction(5, 2)
    assert Size.parse("3").value({}) == 3
    # exact arithmetic, no float rounding: 3^40 / 3^39 is exactly 3
    assert Size.parse("a^40/b^39").value({"a": 3, "b": 3}) == 3


@settings(max_examples=200, deadline=None)
@given(st.fractions(min_value=Fraction(1, 8), max_value=8, max_denominator=8),
       st.lists(st.integers(-3, 3), min_size=3, max_size=3), st.lists(st.integers(1, 12), min_size=3, max_size=3))
def test_value_is_the_exact_value_when_it_is_a_positive_integer(factor, powers, values):
    """value() takes an integer shortcut; it must agree with evaluate() and reject exactly what evaluate() says is
    not a positive integer."""
    s = Size(factor, tuple((n, p) for n, p in zip("abc", powers) if p))
    b = dict(zip("abc", values))
    exact = s.evaluate(b)
    if exact.denominator == 1 and exact >= 1:
        assert s.value(b) == exact and isinstance(s.value(b), int)
    else:
        with pytest.raises(SynoError):
            s.value(b)


def test_value_error_names_size_layer_and_values():
    with pytest.raises(SynoError) as e:
        Size.parse("C_in/g").value({"C_in": 10, "g": 4, "H": 8}, where="layer 'conv3'")
    msg = str(e.value)
    assert "C_in/g" in msg
    assert "conv3" in msg
    assert "C_in=10" in msg and "g=4" in msg
    assert "5/2" in msg
    assert "\n" not in msg


def test_value_rejects_fraction_below_one():
    with pytest.raises(SynoError, match="g/C_in"):
        Size.parse("g/C_in").value({"g": 1, "C_in": 4})


def test_evaluate_unbound_variable_names_it():
    with pytest.raises(SynoError, match="'g'"):
        Size.parse("C_in/g").evaluate({"C_in": 8})
    with pytest.raises(SynoError, match="'g'"):
        Size.parse("C_in/g").value({"C_in": 8})


def test_check_bindings_names_layer():
    sizes = {"dim 3": Size.parse("C_in/g")}
    check_bindings(sizes, {"ok": {"C_in": 64, "g": 32}})
    with pytest.raises(SynoError) as e:
        check_bindings(sizes, {"ok": {"C_in": 64, "g": 32}, "bad_layer": {"C_in": 48, "g": 32}})
    assert "bad_layer" in str(e.value) and "C_in=48" in str(e.value)


# ---- bad input is always a SynoError ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "", "   ", "0", "a+b", "(a", "a)", "a^x", "a^", "-3", "k^2.5", "1.5", "a b", "*a", "a/0", "a^(2)", "()",
    "C_in-1", "a**", "é", "a^^2",
])
def test_parse_rejects_bad_text(text):
    with pytest.raises(SynoError) as e:
        Size.parse(text)
    assert "\n" not in str(e.value)


def test_parse_deep_nesting_is_a_syno_error():
    # Deeply nested parentheses: parse them or raise SynoError, never let a RecursionError escape.
    for text in ("(" * 3000 + "a" + ")" * 3000, "(" * 3000 + "a"):
        try:
            assert Size.parse(text) == Size.var("a")
        except SynoError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab_k1230^*/() -.", max_size=20))
def test_parse_fuzz_only_raises_syno_error(text):
    try:
        s = Size.parse(text)
    except SynoError:
        return
    assert isinstance(s, Size)
    assert Size.parse(str(s)) == s


# ---- property tests ---------------------------------------------------------------------------------------------

_NAME_LIST = ["N", "C_in", "C_out", "H", "W", "k", "g", "s", "t", "H_in", "x1"]
_NAMES = st.sampled_from(_NAME_LIST)
_MONOMIAL = st.builds(
    lambda num, den, powers: Size.const(Fraction(num, den)) * _product(powers),
    st.integers(1, 50), st.integers(1, 50), st.dictionaries(_NAMES, st.integers(-4, 4), max_size=5))


def _product(powers):
    out = Size.const(1)
    for name, p in powers.items():
        out = out * Size.var(name) ** p
    return out


@settings(max_examples=200, deadline=None)
@given(_MONOMIAL)
def test_round_trip_property(s):
    assert Size.parse(str(s)) == s


@settings(max_examples=200, deadline=None)
@given(_MONOMIAL, _MONOMIAL)
def test_algebra_property(a, b):
    assert (a * b) / b == a
    assert a * b == b * a
    assert (a / b) * b == a
    assert a ** 2 == a * a
    assert (a * b) ** -1 == (1 / a) / b


@settings(max_examples=100, deadline=None)
@given(_MONOMIAL, st.fixed_dictionaries({n: st.integers(1, 9) for n in _NAME_LIST}))
def test_evaluate_is_a_homomorphism(a, binding):
    b = Size.parse("k^2*C_in/g")
    assert (a * b).evaluate(binding) == a.evaluate(binding) * b.evaluate(binding)
    assert (a / b).evaluate(binding) == a.evaluate(binding) / b.evaluate(binding)


# ---- variables, shapes, var spaces, bindings ------------------------------------------------------------------------


def test_variable_parse():
    assert Variable.parse("k=3: 2", COEFFICIENT) == Variable("k", COEFFICIENT, 3, 2)
    assert Variable.parse("C_in: 2", PRIMARY) == Variable("C_in", PRIMARY, None, 2)
    assert Variable.parse("H", PRIMARY) == Variable("H", PRIMARY, None, None)
    assert Variable.parse(" g = 32 ", COEFFICIENT) == Variable("g", COEFFICIENT, 32, None)


@pytest.mark.parametrize("text, kind", [
    ("k", COEFFICIENT),        # a coefficient needs a value
    ("k=0", COEFFICIENT),      # values are positive
    ("1k=3", COEFFICIENT),
    ("k=3: x", COEFFICIENT),
    ("k=-3", COEFFICIENT),
    ("", PRIMARY),
    ("C in", PRIMARY),
])
def test_variable_parse_rejects(text, kind):
    with pytest.raises(SynoError):
        Variable.parse(text, kind)


def test_parse_shape():
    dims = parse_shape("[N, C_in: unordered, H, W]")
    assert dims == (DimSpec(Size.var("N")), DimSpec(Size.var("C_in"), True), DimSpec(Size.var("H")),
                    DimSpec(Size.var("W")))
    assert [d.unordered for d in dims] == [False, True, False, False]
    assert str(dims[1]) == "C_in: unordered"
    assert parse_shape("[N, C_in/g, k^2]")[1].size == Size.parse("C_in/g")
    assert parse_shape("[]") == ()


@pytest.mark.parametrize("text", ["N, C_in", "[N, C: ordered]", "[N, C_in/]", "[N", "(N, C)", "[N, 0]"])
def test_parse_shape_rejects(text):
    with pytest.raises(SynoError):
        parse_shape(text)


def test_varspace():
    vs = VarSpace.from_specs(["N", "C_in: 2", "H"], ["g=32", "k=3: 4"])
    assert vs.names() == ("N", "C_in", "H", "g", "k")
    assert vs.coefficients() == {"g": 32, "k": 3}
    assert vs["k"].max_occurrences == 4
    vs.check(Size.parse("C_in/g"))
    vs.check(Size.parse("N*H/k^2"))
    with pytest.raises(SynoError, match="C_in"):
        vs.check(Size.parse("g/C_in"))
    with pytest.raises(SynoError, match="H"):
        vs.check(Size.parse("N/H"))
    with pytest.raises(SynoError, match="Z"):
        vs.check(Size.parse("Z"))
    with pytest.raises(SynoError, match="Z"):
        vs["Z"]
    assert vs.binding({"C_in": 64, "k": 5}) == {"g": 32, "k": 5, "C_in": 64}


def test_varspace_rejects_duplicates():
    with pytest.raises(SynoError, match="k"):
        VarSpace.from_specs(["k"], ["k=3"])


def test_parse_binding():
    assert parse_binding("C_in=8,C_out=16,H=8") == {"C_in": 8, "C_out": 16, "H": 8}
    assert parse_binding(" C_in = 8 , H=2,") == {"C_in": 8, "H": 2}
    assert parse_binding("") == {}


@pytest.mark.parametrize("text", ["C_in=0", "C_in", "C_in=-1", "C_in=8=9", "=3", "C_in=x", "C_in=1.5", "8=8"])
def test_parse_binding_rejects(text):
    with pytest.raises(SynoError) as e:
        parse_binding(text)
    assert "\n" not in str(e.value)
