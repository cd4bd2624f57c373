"""An operator: a graph of dimension primitives over symbolic sizes, with a stable identity and a JSON form.

``out[i] = sum_r prod_t T_t[f_t(i, r)]``: T_0 is the input, T_1.. the weights, and each index map f_t is the
composition of the primitives between the bottom iterators (output dims and Reduce dims) and the top dims of T_t.

Representation: dims are integers indexing ``sizes``; a :class:`Prim` names its top dims (input side) and bottom
dims (output side).  Every dim has exactly one *source below* (it is an output dim, or a top of one primitive, a
Reduce included) and exactly one *sink above* (it is a dim of a tensor, or a bottom of one primitive, an Expand
included).  :meth:`Operator.validate` enforces that, the arity and shape rule of every primitive, acyclicity, and
that weights are plain tensors fed only by Shares (Syno's rule: weights are never reshaped).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Mapping

from ..errors import SynoError
from .primitives import primitive
from .sizes import Size

FORMAT = "syno-tvm/operator"
VERSION = 1


@dataclass(frozen=True)
class Prim:
    """One primitive application: ``kind`` from the rule table, its top and bottom dims, and its integer parameter
    (the shift amount for Shift, the weight index for Share, 0 otherwise)."""

    kind: str
    tops: tuple[int, ...]
    bottoms: tuple[int, ...]
    param: int = 0


@dataclass(frozen=True)
class Operator:
    """An immutable operator graph.  Equality is structural on the stored form; :attr:`hash` is the stable identity."""

    sizes: tuple[Size, ...]
    prims: tuple[Prim, ...]
    input: tuple[int, ...]
    weights: tuple[tuple[int, ...], ...]
    output: tuple[int, ...]
    coefficients: tuple[tuple[str, int], ...] = ()
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        self.validate()

    # ---- structure ----------------------------------------------------------------------------------------------
    @cached_property
    def source(self) -> dict[int, int | None]:
        """dim -> index of the primitive whose top it is (None for output dims)."""
        return self._index(lambda p: p.tops, {d: None for d in self.output})

    @cached_property
    def sink(self) -> dict[int, int | None]:
        """dim -> index of the primitive whose bottom it is (None for tensor dims)."""
        tensor_dims = {d: None for t in self.tensors for d in t}
        return self._index(lambda p: p.bottoms, tensor_dims)

    def _index(self, side, initial: dict[int, int | None]) -> dict[int, int | None]:
        out = dict(initial)
        for i, p in enumerate(self.prims):
            for d in side(p):
                out[d] = i
        return out

    @property
    def tensors(self) -> tuple[tuple[int, ...], ...]:
        """The input followed by the weights (tensor t is ``tensors[t]``)."""
        return (self.input,) + self.weights

    @property
    def reduces(self) -> tuple[int, ...]:
        return tuple(p.tops[0] for p in self.prims if p.kind == "reduce")

    @property
    def coefficient_values(self) -> dict[str, int]:
        return dict(self.coefficients)

    @cached_property
    def topo_order(self) -> tuple[int, ...]:
        """Primitive indices ordered bottom-to-top: a primitive comes after the ones producing its bottom dims."""
        order, state = [], {}

        def visit(i: int) -> None:
            if state.get(i) == 2:
                return
            if state.get(i) == 1:
                raise SynoError("the operator graph has a cycle: a dim must not depend on itself")
            state[i] = 1
            for d in self.prims[i].bottoms:
                src = self.source.get(d)
                if src is not None:
                    visit(src)
            state[i] = 2
            order.append(i)

        for i in range(len(self.prims)):
            visit(i)
        return tuple(order)

    def validate(self) -> None:
        n = len(self.sizes)
        for d in self.input + self.output + tuple(x for w in self.weights for x in w):
            if not 0 <= d < n:
                raise SynoError(f"dim {d} is out of range: the operator has {n} dims")
        for p in self.prims:
            r = primitive(p.kind)
            if len(p.tops) != r.n_tops or len(p.bottoms) != r.n_bottoms:
                raise SynoError(f"{p.kind} takes {r.n_tops} top and {r.n_bottoms} bottom dims, "
                                f"got {len(p.tops)} and {len(p.bottoms)}")
            if any(not 0 <= d < n for d in p.tops + p.bottoms):
                raise SynoError(f"{p.kind} refers to a dim outside 0..{n - 1}")
            why = r.shape([self.sizes[d] for d in p.tops], [self.sizes[d] for d in p.bottoms], p.param)
            if why:
                raise SynoError(why)
            if not r.has_param and p.param:
                raise SynoError(f"{p.kind} takes no parameter, got {p.param}")
        produced = list(self.output) + [d for p in self.prims for d in p.tops]
        consumed = [d for t in self.tensors for d in t] + [d for p in self.prims for d in p.bottoms]
        for what, dims in (("produced (an output dim or a primitive's top)", produced),
                           ("consumed (a tensor dim or a primitive's bottom)", consumed)):
            counts = {d: 0 for d in range(n)}
            for d in dims:
                counts[d] += 1
            bad = [d for d, c in counts.items() if c != 1]
            if bad:
                raise SynoError(f"dim {bad[0]} (size {self.sizes[bad[0]]}) is {what} {counts[bad[0]]} times; "
                                f"each dim must be exactly once")
        for t, dims in enumerate(self.weights, start=1):
            for d in dims:
                p = self.prims[self.source[d]] if self.source[d] is not None else None
                if p is None or p.kind != "share" or p.tops[1] != d or p.param != t:
                    raise SynoError(f"weight {t} dim {d} must come straight from a Share with weight {t}: "
                                    f"weights are plain tensors")
        for p in self.prims:
            if p.kind == "share" and not 1 <= p.param <= len(self.weights):
                raise SynoError(f"a Share names weight {p.param} but the operator has {len(self.weights)} weights")
        _ = self.topo_order  # computing the order is the cycle check

    # ---- identity -----------------------------------------------------------------------------------------------
    @cached_property
    def dim_hashes(self) -> dict[int, str]:
        """A stable hash per dim from the structure alone (never from dim numbering).

        Bottom-up: output dims are seeded by position, primitive tops by their kind, parameter and the hashes below.
        A Reduce dim has no position of its own (sums commute), so it is seeded by its *top-down* hash, the path
        from the tensor axes it reaches; two Reduces then hash equally only when swapping them changes nothing."""
        above = self._top_down_hashes()
        memo: dict[int, str] = {}
        for d, pos in ((d, i) for i, d in enumerate(self.output)):
            memo[d] = digest("out", pos, self.sizes[d])
        for i in self.topo_order:
            p = self.prims[i]
            below = [memo[d] for d in p.bottoms] if p.kind != "reduce" else [above[p.tops[0]]]
            for k, d in enumerate(p.tops):
                memo[d] = digest(p.kind, p.param, below, k, self.sizes[d])
        return memo

    def _top_down_hashes(self) -> dict[int, str]:
        memo: dict[int, str] = {}
        for t, dims in enumerate(self.tensors):
            for axis, d in enumerate(dims):
                memo[d] = digest("tensor", t, axis, self.sizes[d])
        for i in reversed(self.topo_order):
            p = self.prims[i]
            above = [memo[d] for d in p.tops]
            for k, d in enumerate(p.bottoms):
                memo[d] = digest(p.kind, p.param, above, k, self.sizes[d])
        return memo

    @cached_property
    def hash(self) -> str:
        """Stable structural hash: identical across processes, Python versions and dim numberings."""
        hs = self.dim_hashes
        expands = sorted(hs[p.bottoms[0]] for p in self.prims if p.kind == "expand")
        return digest(VERSION, [hs[d] for d in self.input], [[hs[d] for d in w] for w in self.weights], expands,
                  len(self.output), sorted(self.coefficients))

    # ---- sizes under a binding ----------------------------------------------------------------------------------
    def binding(self, values: Mapping[str, int] | None = None) -> dict[str, int]:
        """Coefficient defaults overridden by ``values``."""
        full = self.coefficient_values
        full.update(values or {})
        return full

    def bind(self, values: Mapping[str, int] | None = None, layer: str = "") -> tuple[int, ...]:
        """Concrete dim sizes; raises SynoError naming the size, the layer and the values if one is not an integer."""
        b = self.binding(values)
        out = tuple(s.value(b, where=f"dim {d}" + (f" of layer '{layer}'" if layer else ""))
                    for d, s in enumerate(self.sizes))
        for p in self.prims:
            if p.kind == "stride":
                (self.sizes[p.tops[0]] / self.sizes[p.bottoms[0]]).value(b, where="a Stride factor")
        return out

    def variables(self) -> tuple[str, ...]:
        return tuple(sorted({v for s in self.sizes for v in s.variables()}))

    def primary_variables(self) -> tuple[str, ...]:
        coeff = self.coefficient_values
        return tuple(v for v in self.variables() if v not in coeff)

    def shapes(self, values: Mapping[str, int] | None = None, layer: str = "") -> dict[str, tuple[int, ...]]:
        """Concrete shapes of X, W1.., Y under a binding (``layer`` names the layer in errors)."""
        sz = self.bind(values, layer)
        out = {"X": tuple(sz[d] for d in self.input)}
        out.update({f"W{t}": tuple(sz[d] for d in w) for t, w in enumerate(self.weights, start=1)})
        out["Y"] = tuple(sz[d] for d in self.output)
        return out

    def params(self, values: Mapping[str, int] | None = None) -> int:
        """Number of weight parameters under a binding."""
        shapes = self.shapes(values)
        return sum(_prod(s) for k, s in shapes.items() if k.startswith("W"))

    # ---- JSON ---------------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": VERSION, "name": self.name,
            "coefficients": dict(self.coefficients),
            "sizes": [str(s) for s in self.sizes],
            "prims": [[p.kind, list(p.tops), list(p.bottoms)] + ([p.param] if p.param else []) for p in self.prims],
            "input": list(self.input), "weights": [list(w) for w in self.weights], "output": list(self.output),
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))

    @staticmethod
    def from_json(data: Any) -> "Operator":
        """Build from the versioned JSON form; any malformation becomes one SynoError line."""
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as e:
                raise SynoError(f"malformed operator JSON ({e.msg} at line {e.lineno} column {e.colno}): "
                                f"pass a file written by syno-tvm or a named operator") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SynoError(f"not a syno-tvm operator: the JSON must be an object with \"format\": \"{FORMAT}\"")
        if data.get("version") != VERSION:
            raise SynoError(f"operator JSON version {data.get('version')!r} is not supported: this syno-tvm reads "
                            f"version {VERSION}")
        try:
            prims = []
            for entry in _typed(data["prims"], list, "prims"):
                kind, tops, bottoms, *rest = _typed(entry, list, "a prim")
                if len(rest) > 1:
                    raise ValueError(f"a prim has {3 + len(rest)} fields, at most 4")
                prims.append(Prim(_typed(kind, str, "a prim kind"), _ints(tops), _ints(bottoms),
                                  _int(rest[0]) if rest else 0))
            coefficients = _typed(data.get("coefficients", {}), dict, "coefficients")
            return Operator(
                sizes=tuple(Size.parse(s) for s in _typed(data["sizes"], list, "sizes")),
                prims=tuple(prims),
                input=_ints(data["input"]),
                weights=tuple(_ints(w) for w in _typed(data["weights"], list, "weights")),
                output=_ints(data["output"]),
                coefficients=tuple(sorted((_typed(k, str, "a coefficient name"), _int(v))
                                          for k, v in coefficients.items())),
                name=str(data.get("name", "")),
            )
        except (KeyError, TypeError, ValueError) as e:
            what = f"missing key {e}" if isinstance(e, KeyError) else str(e)
            raise SynoError(f"malformed operator JSON: {what}; every operator needs sizes, prims, "
                            f"input, weights and output") from None

    def with_name(self, name: str) -> "Operator":
        return Operator(self.sizes, self.prims, self.input, self.weights, self.output, self.coefficients, name)


def _typed(x: Any, kind: type, what: str) -> Any:
    if not isinstance(x, kind):
        raise TypeError(f"{what} must be a {kind.__name__}, got {type(x).__name__}")
    return x


def _int(x: Any) -> int:
    """A JSON integer; floats and booleans are errors, not silently truncated."""
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError(f"expected an integer, got {x!r}")
    return x


def _ints(xs: Any) -> tuple[int, ...]:
    return tuple(_int(x) for x in _typed(xs, list, "a dim list"))


def _prod(xs: Iterable[int]) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def digest(*parts: Any) -> str:
    """blake2b over a canonical text form (sizes by their text): stable across processes and Python versions,
    unlike ``hash()`` of a str.  The one hash of the project: operator identity and synthesis states use it."""
    return hashlib.blake2b(repr(_canon(parts)).encode(), digest_size=8).hexdigest()


def _canon(x: Any) -> Any:
    if isinstance(x, Size):
        return str(x)
    if isinstance(x, (list, tuple)):
        return [_canon(y) for y in x]
    return x
