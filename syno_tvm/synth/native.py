"""The native sampler: the random descent of :mod:`syno_tvm.synth.sample` over the space of
:mod:`syno_tvm.synth.space`, in C++ (``native/synth``, built into ``syno_tvm._synth_native`` at install).

Why a second implementation: a final costs about 1900 judged candidate steps (rules, shape distance, memo lookups),
which Python does at ~25 us each, so the Python sampler draws tens of finals per second on the vision spec.  The
native engine runs the same space: the same digests (BLAKE2b over the same texts, so hash-ordered rules pick the
same canonical forms), the same rule table, the same shape distance and the same FLOPs plan for the limits.  The
Python space stays the reference: the tests replay native paths through :meth:`Space.child` and compare every
judged step, distance and final (``tests/test_synth_native.py``).

Records come back as plain tuples; :meth:`NativeSampler.sample` turns one into a :class:`Sample` with a Python
:class:`~syno_tvm.ir.graph.Operator` (the costly part on the Python side, so bulk callers convert only what they use).
"""

from __future__ import annotations

from typing import Any, Iterable

from .. import _synth_native
from ..errors import SynoError
from ..ir.graph import Operator, Prim
from ..ir.sizes import Size
from .canon import RULE_NAMES
from .sample import Sample, Stats
from .space import Final, Space
from .state import Step

if tuple(_synth_native.RULE_NAMES) != RULE_NAMES:  # the two tables must be the same, in the same order
    raise ImportError(f"native rule table {_synth_native.RULE_NAMES} differs from canon.RULES {RULE_NAMES}: "
                      "rebuild the extension (pip install -e .)")

Record = tuple  # (path, final): see NativeSampler.sample


def spec_data(space: Space) -> dict[str, Any]:
    """What the engine needs of the space's spec, with sizes as (numerator, denominator, powers per variable)."""
    spec = space.spec
    names = sorted(spec.variables.names())

    def size(s: Size) -> tuple[int, int, list[int]]:
        powers = dict(s.powers)
        return s.factor.numerator, s.factor.denominator, [powers.get(n, 0) for n in names]

    def sizes(xs: Iterable[Size]) -> list:
        return [size(s) for s in xs]

    bindings = [[b.get(n, 0) for n in names] for b in spec.bindings]  # layers, then the probe (Spec.bindings)
    reference = space._reference
    return {
        "names": names, "primary": [spec.is_primary(n) for n in names], "bindings": bindings,
        "probe": len(bindings) - 1,
        "allowance": [spec.allowance(n) if spec.is_primary(n) else 0 for n in names],
        "output": [(size(d.size), d.unordered) for d in spec.output], "input": sizes(d.size for d in spec.input),
        "fixed": list(spec.fixed_pairs), "search_input": sizes(d.size for d in spec.search_input),
        "block_sizes": sizes(spec.block_sizes), "reduce_sizes": sizes(spec.reduce_sizes),
        "stride_sizes": sizes(spec.stride_sizes), "window_sizes": sizes(spec.window_sizes),
        "max_depth": spec.max_depth, "max_weights": spec.max_weights, "max_reductions": spec.max_reductions,
        "max_shares": spec.max_shares, "strides": bool(spec.strides),
        "layers": list(range(len(spec.layer_bindings))), "layer_names": list(spec.layer_bindings),
        "ref_flops": [f for f, _ in reference], "ref_params": [p for _, p in reference],
        "flops": tuple(spec.flops), "params": tuple(spec.params), "reference": spec.reference,
        "flops_text": f"[{spec.flops[0]}, {spec.flops[1]}]", "params_text": f"[{spec.params[0]}, {spec.params[1]}]",
    }


class NativeSampler:
    """Random finals from the native engine, distinct by node hash, as :class:`~syno_tvm.synth.sample.Sampler`
    returns them; ``seed`` fixes the engine's own random stream."""

    def __init__(self, space: Space, seed: int = 0) -> None:
        self.space = space
        self.engine = _synth_native.Engine(spec_data(space), [r.name for r in space.rules], seed)
        self._sizes: dict[str, Size] = {}
        self._coefficients = tuple(sorted(space.spec.variables.coefficients().items()))
        self._names = sorted(space.spec.variables.names())

    def random_final(self, rng: Any = None) -> Sample:
        """The next final (``rng`` is accepted for the Sampler interface; the engine's stream was seeded)."""
        recs = self.engine.sample(1, float("inf"))
        if not recs:
            raise SynoError(f"no further final operator: the space of spec '{self.space.spec.name}' is exhausted "
                            "or its descents ended in dead ends; raise the depth or loosen the limits")
        return self.sample(recs[0])

    def draw(self, n: int, seconds: float = float("inf")) -> list[Record]:
        """Up to ``n`` raw records within ``seconds`` (fewer when the space runs out): one call, no Operators."""
        return self.engine.sample(n, seconds)

    def rollout(self, path: tuple[Step, ...], seed: int, max_restarts: int) -> Sample | None:
        """A random descent from the node ``path`` leads to, by a fresh engine sampler seeded with ``seed`` (an MCTS
        rollout: the result depends on the path and the seed alone); the Sample's path is the part below ``path``.
        None when no final was found within ``max_restarts`` restarts."""
        rec = self.engine.rollout([self._step_in(s) for s in path], seed, max_restarts)
        return None if rec is None else self.sample(rec)

    def _step_in(self, step: Step) -> tuple:
        size = None
        if step.size is not None:
            powers = dict(step.size.powers)
            size = (step.size.factor.numerator, step.size.factor.denominator, [powers.get(n, 0) for n in self._names])
        return step.kind, list(step.dims), size, list(step.outer)

    @property
    def stats(self) -> Stats:
        s = self.engine.stats()
        return Stats(s["nodes"], s["dead"], s["finals"], dict(s["rejected"]))

    def size(self, text: str) -> Size:
        s = self._sizes.get(text)
        if s is None:
            s = self._sizes[text] = Size.parse(text)
        return s

    def step(self, rec: tuple) -> Step:
        kind, dims, size, outer = rec
        return Step(kind, tuple(dims), self.size(size) if size is not None else None, tuple(outer))

    def sample(self, rec: Record) -> Sample:
        """A raw record as a :class:`Sample`: the Operator (validated by its constructor) and the path of Steps."""
        path, (_, texts, prims, inputs, weights, output, flops, params) = rec
        op = Operator(tuple(self.size(t) for t in texts), tuple(Prim(k, tuple(t), tuple(b), p) for k, t, b, p in prims),
                      tuple(inputs), tuple(tuple(w) for w in weights), tuple(output), self._coefficients)
        return Sample(Final(op, "", tuple(flops), tuple(params)), tuple(self.step(s) for s in path))
