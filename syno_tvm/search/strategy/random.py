"""The baseline: uniform random descents through the whole space (the native sampler's stream for the seed).
Its state is the stream position: a resumed search redraws the stream up to there (about a thousand finals per
second) and goes on."""

from __future__ import annotations

import json

from ..candidate import Candidate, Result
from ..space import FinalStream
from .strategy import SearchStrategy, StrategyContext


class RandomSearch(SearchStrategy):
    name = "random"

    def initialize(self, ctx: StrategyContext) -> None:
        self.space = ctx.space
        self.stream: FinalStream = ctx.space.stream(ctx.seed)

    def propose(self, n: int) -> list[Candidate] | None:
        out, seen = [], set()
        while len(out) < n:
            drawn = self.stream.next()
            if drawn is None:
                break
            path, op = drawn
            fp = self.space.fingerprint(op)
            if fp not in seen:
                seen.add(fp)
                out.append(Candidate(op, fp, tuple(str(s) for s in path), "random"))
        return out or None

    def notify(self, results: list[Result]) -> None:
        """Random search learns nothing."""

    def state(self) -> bytes:
        return json.dumps({"position": self.stream.position}).encode()

    def restore(self, state: bytes) -> None:
        self.stream.skip_to(int(json.loads(state)["position"]))
