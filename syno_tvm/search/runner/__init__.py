"""Where candidates are evaluated: this process, a local process pool, or Ray tasks (see :mod:`.runner`)."""

from .runner import Runner, create

__all__ = ["Runner", "create"]
