"""What every sampler of a space returns: :class:`Sample` (a final and its path) and :class:`Stats`, and the
abstract :class:`Sampler` (the Python descent and the native engine are its two implementations).

Must not import the implementations (the package's ``create`` does).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from ..space import Final
from ..state import Step


@dataclass
class Stats:
    """Counters over all descents: distinct nodes entered, dead ends proven, finals returned, steps rejected (by
    :attr:`Verdict.key <syno_tvm.synth.verdict.Verdict.key>`: the reason code, and the rule's name for a rule)."""

    nodes: int = 0
    dead: int = 0
    finals: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def dead_end_ratio(self) -> float:
        """Share of the entered nodes that turned out to have no valid final below them."""
        return self.dead / self.nodes if self.nodes else 0.0


@dataclass(frozen=True)
class Sample:
    """One random final: the operator, its verdict (FLOPs and params per layer) and the path of steps to it."""

    final: Final
    path: tuple[Step, ...]


class Sampler(ABC):
    """Random distinct finals of one space, by descents from the root."""

    @abstractmethod
    def random_final(self, rng: Any = None) -> Sample:
        """The next final not returned before; SynoError when the space is exhausted or the descents dead-end.
        ``rng`` is a numpy Generator (the Python descent draws its seed from it; the native engine has its own)."""

    @property
    @abstractmethod
    def stats(self) -> Stats:
        """Counters over all descents so far."""
