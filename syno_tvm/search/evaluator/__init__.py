"""Evaluators: what a candidate costs and how well it learns (see :mod:`.evaluator`)."""

from .evaluator import Evaluator, cascade, create

__all__ = ["Evaluator", "cascade", "create"]
