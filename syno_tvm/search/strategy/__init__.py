"""Search strategies: what to evaluate next (see :mod:`.strategy`)."""

from __future__ import annotations

from typing import Any

from ...errors import SynoError
from .strategy import SearchStrategy, StrategyContext

__all__ = ["SearchStrategy", "StrategyContext", "create"]


def create(name: str, **options: Any) -> SearchStrategy:
    """``random`` or ``mcts``; ``options`` go to the strategy's constructor."""
    from .mcts import MCTS
    from .random import RandomSearch

    kinds = {"random": RandomSearch, "mcts": MCTS}
    if name not in kinds:
        raise SynoError(f"unknown strategy '{name}': use {', '.join(kinds)}")
    return kinds[name](**options)
