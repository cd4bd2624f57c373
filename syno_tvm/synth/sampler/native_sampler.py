"""The native sampler: the random descent of :mod:`syno_tvm.synth.sampler.python_sampler` run by the native engine
(:mod:`syno_tvm.synth.engine`), 30-55x faster; the Python sampler stays the reference the tests hold it against."""

from __future__ import annotations

from typing import Any

from ...errors import SynoError
from ..engine import NativeEngine, Record
from ..space import Space
from ..state import Step
from .base import Sample, Sampler, Stats


class NativeSampler(Sampler):
    """Random finals from the native engine, distinct by node hash, as the Python sampler returns them; ``seed``
    fixes the engine's own random stream.  ValueError when the spec is beyond the engine's fixed limits."""

    def __init__(self, space: Space, seed: int = 0) -> None:
        self.space = space
        self.native = NativeEngine(space, seed)
        self.engine = self.native.engine

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
        rec = self.engine.rollout([self.native.step_out(s) for s in path], seed, max_restarts)
        return None if rec is None else self.sample(rec)

    def sample(self, rec: Record) -> Sample:
        """A raw record as a :class:`Sample`."""
        return Sample(*self.native.record(rec))

    @property
    def stats(self) -> Stats:
        s = self.engine.stats()
        return Stats(s["nodes"], s["dead"], s["finals"], dict(s["rejected"]))
