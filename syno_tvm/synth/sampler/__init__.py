"""Samplers of a space: random descents to distinct finals.  ``create(name, space, seed)`` picks one by name:
``native`` (the C++ engine), ``python`` (the reference descent it ports) or ``auto`` (native when the spec is within
the engine's fixed limits, else python).  The space does not know its samplers: they sit above it."""

from __future__ import annotations

from ..space import Space
from .base import Sample, Sampler, Stats
from .native_sampler import NativeSampler
from .python_sampler import PythonSampler

__all__ = ["NAMES", "NativeSampler", "PythonSampler", "Sample", "Sampler", "Stats", "create"]

NAMES = ("auto", "native", "python")


def create(name: str, space: Space, seed: int = 0) -> Sampler:
    """The sampler ``name`` over ``space``; ``seed`` seeds the native engine's stream (the Python descent draws its
    per-final seeds from the rng given to ``random_final``)."""
    from ...errors import SynoError

    if name == "python":
        return PythonSampler(space)
    if name == "native":
        return NativeSampler(space, seed)
    if name == "auto":
        try:
            return NativeSampler(space, seed)
        except ValueError:  # beyond the native engine's fixed limits (shares, variables, dims)
            return PythonSampler(space)
    raise SynoError(f"unknown sampler '{name}': use one of {', '.join(NAMES)}")
