"""Proxy accuracy: train.proxy's recipe (the operator in the stride-1 3x3 convs, one fixed short training run),
or a smaller recipe for tests and benchmarks.  ``accuracy_ratio`` is the candidate's validation accuracy over the
original model's under the same recipe and seed.

Grouping coefficients scale with the recipe's width (train/proxy.py's convention: Syno's g=32 at width 64 is
g=width/2), so an operator with C/g dims still fits the narrow proxy model.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ...errors import SynoError
from ...ir.graph import Operator
from ..context import EvalContext
from .evaluator import Evaluator

RECIPES = ("proxy", "quick", "tiny")
SYNO_WIDTH = 64  # the width at which the spec's coefficients (g=32) are Syno's


def make_recipe(name: str):
    """``proxy``: train/proxy.py's PROXY (ResNet-18 width 4, 3000 Fashion-MNIST images, 2 epochs: minutes);
    ``quick``: the same model for 1 epoch on 1500 images (seconds; it still tells an operator that learns from one
    that does not: 63 % for the original vs 22-53 % for three random finals, 2026-12-07); ``tiny``: small-cnn width 4 on 256 scikit-learn digits for 1 epoch (seconds: tests and benchmarks)."""
    from ...train.proxy import PROXY

    if name == "proxy":
        return PROXY
    if name == "quick":
        return replace(PROXY, epochs=1, limit=1500)
    if name == "tiny":
        return replace(PROXY, model="builtin:small-cnn", width=4, batch=32, epochs=1, lr=0.1, data="digits",
                       limit=256)
    raise SynoError(f"unknown accuracy recipe '{name}': use {', '.join(RECIPES)}")


def scaled(op: Operator, width: int, spec_width: int = SYNO_WIDTH) -> Operator:
    """``op`` with a grouping coefficient ``g`` scaled from ``spec_width`` (where the spec's coefficients are
    meant) to ``width`` (at least 1)."""
    coefs = tuple((k, max(1, v * width // spec_width) if k == "g" else v) for k, v in op.coefficients)
    return replace(op, coefficients=coefs) if coefs != op.coefficients else op


class AccuracyEvaluator(Evaluator):
    """``accuracy`` (validation accuracy after the recipe), ``swapped_layers``; relative: ``accuracy_ratio``."""

    name, tier = "accuracy", 2

    def __init__(self, recipe: str = "proxy", spec_width: int = SYNO_WIDTH) -> None:
        self.recipe_name = recipe
        self.recipe = make_recipe(recipe)
        self.spec_width = spec_width
        self.version = f"1-{recipe}" + (f"-spec{spec_width}" if spec_width != SYNO_WIDTH else "")

    def options(self) -> dict[str, Any]:
        return {"recipe": self.recipe_name, "spec_width": self.spec_width}

    def measure(self, ctx: EvalContext, op: Operator, label: str, reference: bool) -> dict[str, float]:
        from ...train.proxy import run

        if reference:
            res = run(None, "original", self.recipe, seed=ctx.seed)
        else:
            res = run(scaled(op, self.recipe.width, self.spec_width), label, self.recipe, seed=ctx.seed)
            if res["swapped_layers"] == 0:
                raise SynoError("the operator fits none of the recipe model's stride-1 3x3 convs")
        return {"accuracy": float(res["val_acc"]), "swapped_layers": float(res["swapped_layers"]),
                "train_seconds": float(res["seconds"])}

    def relative(self, metrics: dict[str, float], ref: dict[str, float]) -> dict[str, float]:
        return {"accuracy_ratio": metrics["accuracy"] / ref["accuracy"] if ref["accuracy"] > 0 else 0.0}
