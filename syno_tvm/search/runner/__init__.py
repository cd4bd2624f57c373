"""Where candidates are evaluated: this process, a local process pool, or Ray tasks (see :mod:`.runner`)."""

from __future__ import annotations

from typing import Any

from ...errors import SynoError
from .runner import Runner

__all__ = ["Runner", "create"]


def create(name: str, **options: Any) -> Runner:
    """``local`` (``workers``: 1 evaluates in this process, more in a process pool) or ``ray`` (``address``:
    ``local`` starts a local Ray with ``workers`` CPUs; else the address of a running cluster)."""
    from .local import LocalRunner
    from .ray import RayRunner

    kinds = {"local": LocalRunner, "ray": RayRunner}
    if name not in kinds:
        raise SynoError(f"unknown runner '{name}': use {', '.join(kinds)}")
    return kinds[name](**options)
