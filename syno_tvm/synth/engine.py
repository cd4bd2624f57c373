"""The native engine (``native/synth``, built into ``syno_tvm._synth_native`` at install): the space of
:mod:`syno_tvm.synth.space` in C++, for random descents (:mod:`syno_tvm.synth.sampler.native_sampler`) and for node
expansion (a tree search's step: :meth:`NativeEngine.expand`).

Why a second implementation: a final costs about 1900 judged candidate steps (rules, shape distance, memo lookups),
which Python does at ~25 us each, so the Python sampler draws tens of finals per second on the vision spec.  The
native engine runs the same space: the same digests (BLAKE2b over the same texts, so hash-ordered rules pick the
same canonical forms; node hashes are the Python :attr:`Node.hash`), the same rule table, the same shape distance
and the same FLOPs plan for the limits.  The Python space stays the reference: the tests replay native paths
through :meth:`Space.child` and compare every judged step, distance and final (``tests/test_synth_native.py``).

Records come back as plain tuples; :meth:`NativeEngine.record` turns one into a Final with a Python
:class:`~syno_tvm.ir.graph.Operator` (the costly part on the Python side, so bulk callers convert only what they use).
Must not import the samplers (:mod:`syno_tvm.synth.sampler` imports this).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from .. import _synth_native
from ..ir.graph import Operator, Prim
from ..ir.sizes import Size
from .canon import RULE_NAMES
from .space import Final, Space
from .state import Step
from .steps import STEP_KINDS
from .verdict import Reason, Verdict

if tuple(_synth_native.VERDICT_REASONS) != tuple(r.name for r in Reason):
    raise ImportError(f"native verdict codes {_synth_native.VERDICT_REASONS} differ from verdict.Reason: rebuild the "
                      "extension (pip install -e .)")

if tuple(_synth_native.RULE_NAMES) != RULE_NAMES:  # the two tables must be the same, in the same order
    raise ImportError(f"native rule table {_synth_native.RULE_NAMES} differs from canon.RULES {RULE_NAMES}: "
                      "rebuild the extension (pip install -e .)")

_NATIVE_KINDS = tuple(row["name"] for row in _synth_native.step_table())
if _NATIVE_KINDS != STEP_KINDS:  # steps cross by name, and the order is the order kinds are offered in
    raise ImportError(f"native step kinds {_NATIVE_KINDS} differ from steps.STEPS {STEP_KINDS}: rebuild the "
                      "extension (pip install -e .)")

Record = tuple  # (path, final): see NativeEngine.record


def size_triple(names: Sequence[str], s: Size) -> tuple[int, int, list[int]]:
    """A Size as the engine reads it: (numerator, denominator, powers per variable in ``names`` order)."""
    powers = dict(s.powers)
    return s.factor.numerator, s.factor.denominator, [powers.get(n, 0) for n in names]


def spec_data(space: Space) -> _synth_native.SpecData:
    """What the engine needs of the space's spec, with sizes as (numerator, denominator, powers per variable).  Every
    field is named: SpecData refuses a missing, unknown or mistyped one (TypeError)."""
    spec = space.spec
    names = sorted(spec.variables.names())

    def size(s: Size) -> tuple[int, int, list[int]]:
        return size_triple(names, s)

    def sizes(xs: Iterable[Size]) -> list:
        return [size(s) for s in xs]

    bindings = [[b.get(n, 0) for n in names] for b in spec.bindings]  # layers, then the probe (Spec.bindings)
    reference = space.reference_figures
    return _synth_native.SpecData(
        names=names, primary=[spec.is_primary(n) for n in names], bindings=bindings, probe=len(bindings) - 1,
        allowance=[spec.allowance(n) if spec.is_primary(n) else 0 for n in names],
        output=[(size(d.size), d.unordered) for d in spec.output], input=sizes(d.size for d in spec.input),
        fixed=list(spec.fixed_pairs), search_input=sizes(d.size for d in spec.search_input),
        block_sizes=sizes(spec.block_sizes), reduce_sizes=sizes(spec.reduce_sizes),
        stride_sizes=sizes(spec.stride_sizes), window_sizes=sizes(spec.window_sizes),
        max_depth=spec.max_depth, max_weights=spec.max_weights, max_reductions=spec.max_reductions,
        max_shares=spec.max_shares, strides=bool(spec.strides),
        layers=list(range(len(spec.layer_bindings))), layer_names=list(spec.layer_bindings),
        ref_flops=[f for f, _ in reference], ref_params=[p for _, p in reference],
        flops=tuple(spec.flops), params=tuple(spec.params), reference=spec.reference,
        flops_text=f"[{spec.flops[0]}, {spec.flops[1]}]", params_text=f"[{spec.params[0]}, {spec.params[1]}]",
    )


@dataclass(frozen=True)
class Child:
    """One candidate step at an expanded node: the step, the child's node hash (None when rejected) and the verdict
    (for an accepted step its shape distance; for a rejected one the reason code, the rule, the distance)."""

    step: Step
    hash: str | None
    verdict: Verdict


class NativeEngine:
    """One native space (seeded random stream for descents) with its record conversion and node expansion."""

    def __init__(self, space: Space, seed: int = 0) -> None:
        self.space = space
        self.engine = _synth_native.Engine(spec_data(space), [r.name for r in space.rules], seed)
        self._sizes: dict[str, Size] = {}
        self._coefficients = tuple(sorted(space.spec.variables.coefficients().items()))
        self._names = sorted(space.spec.variables.names())
        self._depth: dict[str, int] = {}  # depth of the nodes the engine remembers, for the verdicts' bounds

    def expand(self, node: str | Sequence[Step]) -> list[Child]:
        """Every candidate step at ``node`` (all Contractions listed, in :meth:`Space.steps` order per kind), judged.
        ``node`` is a node hash (the root's, or a child's from an earlier expansion) or the path of steps to it."""
        where = node if isinstance(node, str) else [self.step_out(s) for s in node]
        recs = self.engine.expand(where)  # raises ValueError for an unknown hash or a rejected path
        depth = self._depth.get(node, 0) if isinstance(node, str) else len(node)
        max_depth = self.space.spec.max_depth
        out = []
        for rec, child, code, rule, dist in recs:
            code = Reason(code)
            # the bound a rejection was held against, as Space.judge states it (DISTANCE: the depth left after it)
            bound = max_depth if code is Reason.DEPTH else max_depth - depth - 1 if code is Reason.DISTANCE else 0
            if child is not None:
                self._depth[child] = depth + 1
            out.append(Child(self.step(rec), child, Verdict(code, rule, dist, bound)))
        return out

    def root_hash(self) -> str:
        return self.space.root().hash

    def final(self, node: str) -> Final:
        """Finalize's verdict at a node known by hash (the root, or a child from an earlier expansion)."""
        got = self.engine.final_at(node)
        if isinstance(got, str):
            return Final(None, got)
        return self.operator(got)

    def forget(self) -> None:
        """Drop the nodes remembered by expansions (by-hash lookups then need the path again)."""
        self.engine.forget()
        self._depth.clear()

    def size(self, text: str) -> Size:
        s = self._sizes.get(text)
        if s is None:
            s = self._sizes[text] = Size.parse(text)
        return s

    def step(self, rec: tuple) -> Step:
        kind, dims, size, outer = rec
        return Step(kind, tuple(dims), self.size(size) if size is not None else None, tuple(outer))

    def step_out(self, step: Step) -> tuple:
        """A Step as the engine reads it (its size as :func:`size_triple`)."""
        size = size_triple(self._names, step.size) if step.size is not None else None
        return step.kind, list(step.dims), size, list(step.outer)

    def operator(self, final: tuple) -> Final:
        _, texts, prims, inputs, weights, output, flops, params = final
        op = Operator(tuple(self.size(t) for t in texts), tuple(Prim(k, tuple(t), tuple(b), p) for k, t, b, p in prims),
                      tuple(inputs), tuple(tuple(w) for w in weights), tuple(output), self._coefficients)
        return Final(op, "", tuple(flops), tuple(params))

    def record(self, rec: Record) -> tuple[Final, tuple[Step, ...]]:
        """A raw record as the Final (its Operator validated by its constructor) and the path of Steps."""
        path, final = rec
        return self.operator(final), tuple(self.step(s) for s in path)
