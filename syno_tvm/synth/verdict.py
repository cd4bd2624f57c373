"""The space's verdict on one candidate step: a reason code, the rule that rejected it, the shape distance.

Code reads the fields (``locate`` asks whether a *rule* excluded a step, the samplers count rejections per code and
rule); the text, ``str(verdict)``, is for people and is the text the native engine writes for the same verdict
(``native/synth/space.h``: ``Space::why``), so reports and the parity tests compare texts.

Must not import the space or the samplers: they import it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .distance import UNREACHABLE


class Reason(enum.IntEnum):
    """Why a step is (not) taken; the values are the native engine's ``Verdict::Reason``."""

    OK = 0
    DEPTH = 1       # the node is at the spec's depth limit
    RULE = 2        # a canonicalization rule rejects the step
    DISTANCE = 3    # the child's shape distance exceeds the depth left


@dataclass(frozen=True)
class Verdict:
    """``code``; ``rule``: the rejecting rule's name (RULE); ``distance``: the child's shape distance (UNREACHABLE
    when not computed or infinite); ``bound``: the limit it was held against (DEPTH: the spec's max depth,
    DISTANCE: the depth left after the step)."""

    code: Reason
    rule: str = ""
    distance: int = UNREACHABLE
    bound: int = 0

    @property
    def ok(self) -> bool:
        return self.code is Reason.OK

    @property
    def key(self) -> str:
        """The statistics key: the code, and for a rule its name (``rule no_split_of_merge_majors``)."""
        if self.code is Reason.RULE:
            return f"rule {self.rule}"
        return {Reason.OK: "ok", Reason.DEPTH: "limit depth", Reason.DISTANCE: "shape distance"}[self.code]

    def __str__(self) -> str:
        if self.code is Reason.DEPTH:
            return f"limit depth {self.bound}"
        if self.code is Reason.RULE:
            return f"rule {self.rule}"
        if self.code is Reason.DISTANCE:
            shown = self.distance if self.distance < UNREACHABLE else "unreachable"
            return f"shape distance {shown} > depth left {self.bound}"
        return ""


def accepted(distance: int) -> Verdict:
    return Verdict(Reason.OK, distance=distance)
