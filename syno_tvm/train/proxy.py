"""The accuracy proxy: one fixed, short recipe, the same for every candidate operator, so that accuracies are
comparable rankings (on Fashion-MNIST, not CIFAR: nothing in PyPI or Debian ships CIFAR).

Operators go into the stride-1 3x3 convolutions of ResNet-18 (15 of its 20 convs).  Those are the layers where
``conv2d`` is exactly the original layer (same function, same initial weights), so "conv2d swapped" must match the
original model within seed noise; the stride-2 convs and the 1x1 shortcuts keep Relax's own conv2d (Syno's
AvgPool scheme for them is a different function and would blur that check).  Grouping coefficients scale with the
width: Syno's g=32 at width 64 becomes g=width/2.

``PROXY`` runs in minutes per candidate on 2 cores; ``LONG`` is the longer run its ranking is checked against
(``benchmarks/proxy_fidelity.py`` reports the Spearman correlation between the two).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Mapping

import numpy as np

from ..ir.graph import Operator
from ..relax.swap import find_layers
from .program import bound_main
from .loop import Config, model_proto, train

PROXY = Config(model="builtin:resnet18-cifar", width=4, batch=32, epochs=2, lr=0.1, optimizer="sgd",
               schedule="cosine", data="fashion-mnist", limit=3000, augment=False, seed=0)
LONG = replace(PROXY, epochs=4, limit=8000, augment=True)


def stride1_choice(config: Config, op: Operator | None) -> dict[str, Operator | None]:
    """``op`` for every stride-1 3x3 conv of the config's model, None (keep) for the others."""
    mod, _ = bound_main(model_proto(config, 10))
    return {d.layer: op if d.shape.get("kernel") == 3 and d.shape.get("stride") == 1 else None
            for d in find_layers(mod) if d.kind == "conv2d"}


def run(op: Operator | None, label: str, recipe: Config = PROXY, seed: int = 0,
        progress: bool = False) -> dict:
    """Train ``recipe`` with ``op`` in the stride-1 3x3 convs; the validation accuracy and throughput."""
    cfg = replace(recipe, seed=seed, operator=label if op is not None else None)
    choice: Mapping[str, Operator | None] | None = stride1_choice(cfg, op) if op is not None else None
    t0 = time.perf_counter()
    trainer, hist = train(cfg, progress=progress, choice=choice)
    swapped = sum(d.action == "swap" for d in trainer.graph.decisions)
    return {"operator": label, "seed": seed, "val_acc": hist.last["val_acc"], "val_loss": hist.last["val_loss"],
            "images_per_s": float(np.mean([e["images_per_s"] for e in hist.epochs])), "swapped_layers": swapped,
            "seconds": time.perf_counter() - t0}
