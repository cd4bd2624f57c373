"""Optimizers as Relax code inside the compiled training step, and learning-rate schedules on the host.

apache-tvm 0.27 ships ``relax.training.optimizer.{SGD,MomentumSGD,Adam}``, but they bake the learning rate into
the function as a constant, so a cosine or step schedule would need one compiled function per step.  These take the
step's scalars as 0-d inputs instead (one compile, any schedule), and follow PyTorch's update rules exactly, which
the tests check against numpy:

* SGD: ``g += wd * p; v = mu * v + g; p -= lr * v`` (``torch.optim.SGD`` with momentum and weight_decay);
* Adam: ``g += wd * p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps)`` (``torch.optim.Adam``); the two bias corrections are
  computed on the host and passed as scalars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from tvm import relax

from ..errors import SynoError


def _c(v: float) -> relax.Expr:
    return relax.const(np.float32(v))


@dataclass
class SGD:
    """Momentum SGD with weight decay; one momentum buffer per parameter."""

    momentum: float = 0.9
    weight_decay: float = 5e-4

    slots = 1
    scalar_names = ("lr",)

    def scalars(self, lr: float, step: int) -> list[float]:
        """Values for the step's 0-d inputs (``step`` counts from 1)."""
        return [lr]

    def emit(self, bb: relax.BlockBuilder, params, grads, slots, scalars):
        """New parameters and slots (lists of Relax vars), emitted into the current dataflow block."""
        (lr,) = scalars
        new_p, new_v = [], []
        for p, g, (v,) in zip(params, grads, slots):
            if self.weight_decay:
                g = bb.emit(relax.op.add(g, relax.op.multiply(_c(self.weight_decay), p)))
            v2 = bb.emit(relax.op.add(relax.op.multiply(_c(self.momentum), v), g))
            new_p.append(bb.emit(relax.op.subtract(p, relax.op.multiply(lr, v2))))
            new_v.append([v2])
        return new_p, new_v


@dataclass
class Adam:
    """Adam (L2 weight decay added to the gradient, as torch.optim.Adam); two moment buffers per parameter."""

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0

    slots = 2
    scalar_names = ("lr_over_bc1", "sqrt_bc2")

    def scalars(self, lr: float, step: int) -> list[float]:
        return [lr / (1 - self.beta1 ** step), math.sqrt(1 - self.beta2 ** step)]

    def emit(self, bb: relax.BlockBuilder, params, grads, slots, scalars):
        lr_bc1, sqrt_bc2 = scalars
        new_p, new_s = [], []
        for p, g, (m, v) in zip(params, grads, slots):
            if self.weight_decay:
                g = bb.emit(relax.op.add(g, relax.op.multiply(_c(self.weight_decay), p)))
            m2 = bb.emit(relax.op.add(relax.op.multiply(_c(self.beta1), m), relax.op.multiply(_c(1 - self.beta1), g)))
            v2 = bb.emit(relax.op.add(relax.op.multiply(_c(self.beta2), v),
                                      relax.op.multiply(_c(1 - self.beta2), relax.op.multiply(g, g))))
            denom = relax.op.add(relax.op.divide(relax.op.sqrt(v2), sqrt_bc2), _c(self.eps))
            new_p.append(bb.emit(relax.op.subtract(p, relax.op.multiply(lr_bc1, relax.op.divide(m2, denom)))))
            new_s.append([m2, v2])
        return new_p, new_s


def make(name: str, weight_decay: float | None = None) -> "SGD | Adam":
    """``sgd`` (momentum 0.9, wd 5e-4) or ``adam`` (wd 0 unless given)."""
    if name == "sgd":
        return SGD() if weight_decay is None else SGD(weight_decay=weight_decay)
    if name == "adam":
        return Adam() if weight_decay is None else Adam(weight_decay=weight_decay)
    raise SynoError(f"unknown optimizer '{name}': use sgd or adam")


@dataclass(frozen=True)
class Schedule:
    """``cosine``: ``lr/2 (1 + cos(pi t/T))``; ``step``: ``lr * gamma^floor(t / every)``; ``constant``.
    An optional linear warm-up over the first ``warmup`` steps (large batches on BN nets start unstably)."""

    kind: str
    base_lr: float
    total_steps: int
    warmup: int = 0
    gamma: float = 0.1
    every: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("cosine", "step", "constant"):
            raise SynoError(f"unknown LR schedule '{self.kind}': use cosine, step or constant")
        if self.base_lr <= 0 or self.total_steps < 1:
            raise SynoError(f"learning rate must be > 0 and steps >= 1 (got {self.base_lr}, {self.total_steps})")

    def __call__(self, step: int) -> float:
        """The LR for ``step`` (0-based)."""
        if step < self.warmup:
            return self.base_lr * (step + 1) / self.warmup
        if self.kind == "cosine":
            return 0.5 * self.base_lr * (1 + math.cos(math.pi * min(step, self.total_steps) / self.total_steps))
        if self.kind == "step":
            every = self.every or max(1, self.total_steps // 3)
            return self.base_lr * self.gamma ** (step // every)
        return self.base_lr
