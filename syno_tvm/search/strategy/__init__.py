"""Search strategies: what to evaluate next (see :mod:`.strategy`)."""

from .strategy import SearchStrategy, StrategyContext, create

__all__ = ["SearchStrategy", "StrategyContext", "create"]
