"""The training loop around the compiled step: batching, LR schedule, evaluation, a checkpoint every epoch,
``--resume`` after a kill, and the trained weights written back into the ONNX model.

Everything that decides the numbers (data order, augmentation, initial weights) is a function of the config's seed
and the epoch, so a resumed run reproduces an uninterrupted one exactly (the tests check it).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import onnx
import tvm
from onnx import numpy_helper
from tvm import relax

from ..atomic import write_atomically, write_text
from ..errors import SynoError
from ..ir.graph import Operator
from . import data as data_mod
from .program import TrainGraph, build_graph
from .optim import Schedule, make


@dataclass
class Config:
    """One training run.  ``model`` is ``builtin:NAME`` or an .onnx path; ``operator`` a library name or JSON file."""

    model: str = "builtin:resnet18-cifar"
    operator: str | None = None
    width: int = 8                  # built-in models only: channel width (ResNet-18's 64 is too slow on 2 cores)
    batch: int = 32
    epochs: int = 1
    lr: float = 0.05
    optimizer: str = "sgd"
    weight_decay: float | None = None
    schedule: str = "cosine"
    warmup_steps: int = 0
    data: str = "fashion-mnist"
    limit: int | None = None        # a fixed random subset of the data (the proxy recipe)
    val_fraction: float = 0.1
    augment: bool = True
    seed: int = 0
    threads: int = 2
    tune_trials: int = 0            # MetaSchedule trials per task of the training step (0: untuned default build)

    def key(self) -> dict:
        """What must match for ``--resume``: everything that decides the numbers (the schedule depends on epochs
        and data size); not the tuning budget, which only changes speed."""
        return {k: v for k, v in asdict(self).items() if k != "tune_trials"}


@dataclass
class History:
    epochs: list[dict] = field(default_factory=list)

    @property
    def last(self) -> dict:
        return self.epochs[-1] if self.epochs else {}


def model_proto(config: Config, num_classes: int) -> onnx.ModelProto:
    """The ONNX model at the config's batch size (built-ins are generated at it; files get their batch dim set)."""
    from ..relax.frontend import load_onnx
    from ..relax.models import BUILTIN, builtin

    if config.model.startswith("builtin:"):
        name = config.model.removeprefix("builtin:")
        if name not in BUILTIN or name == "transformer-block":
            raise SynoError(f"'{config.model}' is not a built-in classifier: use builtin:resnet18-cifar, "
                            f"builtin:small-cnn or builtin:vit-tiny")
        return builtin(config.model, batch=config.batch, width=config.width, num_classes=num_classes,
                       seed=config.seed)
    model = onnx.ModelProto()
    model.CopyFrom(load_onnx(config.model))
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_value = config.batch
    return model


def _onehot(labels: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(labels), k), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


class Trainer:
    """A compiled :class:`TrainGraph` with its tensors on the device; ``step`` runs one fused update."""

    def __init__(self, graph: TrainGraph, threads: int = 2, tune_trials: int = 0,
                 tune_dir: "str | Path | None" = None, progress: bool = False) -> None:
        """With ``tune_trials``, every task of the step (forward, backward and optimizer kernels alike) is tuned by
        MetaSchedule with that many trials into the database in ``tune_dir`` (reused next time), the same way
        ``syno-tvm optimize`` tunes inference; else the step is built with a cheap default schedule that runs the
        outer loops of every kernel on ``threads`` cores (:mod:`syno_tvm.tune.default_schedule`)."""
        from ..relax.swap import check_compiled_swaps
        from ..tune.default_schedule import build_untuned
        from ..tune.targets import host

        self.graph = graph
        self.dev = tvm.cpu()
        os.environ["TVM_NUM_THREADS"] = str(threads)
        target = host(threads)
        if graph.swap is not None:   # a miscompiled swapped kernel would train on garbage
            check_compiled_swaps(graph.swap, target)
        if tune_trials:
            from ..tune import metaschedule

            if tune_dir is None:
                raise SynoError("tuning the training step needs a directory for its database")
            self.tuning = metaschedule.tune(graph.module, target, tune_dir, tune_trials, progress=progress)
            executable = metaschedule.compile_tuned(graph.module, target, tune_dir)
        else:
            self.tuning = None
            executable = build_untuned(graph.module, target)
        self.vm = relax.VirtualMachine(executable, self.dev)
        self.params = [tvm.runtime.tensor(p.init, self.dev) for p in graph.params]
        self.states = [tvm.runtime.tensor(s.init, self.dev) for s in graph.states]
        self.slots = [tvm.runtime.tensor(np.zeros_like(p.init), self.dev)
                      for p in graph.params for _ in range(graph.optimizer.slots)]
        self.steps = 0

    def step(self, x: np.ndarray, labels: np.ndarray, lr: float) -> tuple[float, np.ndarray]:
        """One optimizer step; returns the batch loss and logits (from before the update)."""
        self.steps += 1
        scalars = [tvm.runtime.tensor(np.float32(v), self.dev) for v in self.graph.optimizer.scalars(lr, self.steps)]
        out = self.vm["step"](tvm.runtime.tensor(x, self.dev),
                              tvm.runtime.tensor(_onehot(labels, self.graph.num_classes), self.dev),
                              *scalars, *self.params, *self.states, *self.slots)
        n_p, n_s = len(self.params), len(self.states)
        self.params = list(out[2:2 + n_p])
        self.states = list(out[2 + n_p:2 + n_p + n_s])
        self.slots = list(out[2 + n_p + n_s:])
        return float(out[0].numpy()), out[1].numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.vm["infer"](tvm.runtime.tensor(x, self.dev), *self.params, *self.states).numpy()

    def evaluate(self, x: np.ndarray, y: np.ndarray, channels: int) -> tuple[float, float]:
        """(accuracy, mean loss) with BatchNorm in inference mode."""
        correct, loss, n = 0, 0.0, 0
        for xb, yb, valid in data_mod.batches(x, y, self.graph.batch, channels):
            logits = self.predict(xb)[:valid]
            z = logits - logits.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            loss -= float(logp[np.arange(valid), yb[:valid]].sum())
            correct += int((logits.argmax(axis=1) == yb[:valid]).sum())
            n += valid
        return correct / n, loss / n

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to resume: parameters, BN statistics, optimizer slots."""
        out = {f"param/{p.name}": t.numpy() for p, t in zip(self.graph.params, self.params)}
        out.update({f"state/{s.name}": t.numpy() for s, t in zip(self.graph.states, self.states)})
        out.update({f"slot/{k}": t.numpy() for k, t in enumerate(self.slots)})
        return out

    def load(self, arrays: dict[str, np.ndarray], steps: int) -> None:
        def put(key: str, like: np.ndarray):
            if key not in arrays or arrays[key].shape != like.shape:
                raise SynoError(f"checkpoint does not fit this model (missing or mis-shaped '{key}')")
            return tvm.runtime.tensor(arrays[key].astype(np.float32), self.dev)

        self.params = [put(f"param/{p.name}", p.init) for p in self.graph.params]
        self.states = [put(f"state/{s.name}", s.init) for s in self.graph.states]
        self.slots = [put(f"slot/{k}", t.numpy()) for k, t in enumerate(self.slots)]
        self.steps = steps


def _save_npz(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Atomic: a kill during the write leaves the previous checkpoint intact."""
    meta_bytes = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    write_atomically(path, lambda tmp: np.savez(tmp, __meta__=meta_bytes, **arrays), suffix=".npz")


def _load_npz(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "__meta__"}
            meta = json.loads(z["__meta__"].tobytes().decode())
    except Exception as e:  # a truncated or foreign file
        raise SynoError(f"cannot read checkpoint '{path}' ({type(e).__name__}): delete it or drop --resume") from None
    return arrays, meta


def write_onnx(model: onnx.ModelProto, graph: TrainGraph, trainer: Trainer, path: Path) -> None:
    """The model with its initializers replaced by the trained values (BatchNorm statistics included) and each
    swapped layer rewritten as its operator in standard ONNX ops with its trained weights
    (:func:`~syno_tvm.relax.export_onnx.export_swapped`, BatchNorm kept as a layer, as it was trained), so the
    latency path and onnxruntime run the trained model."""
    from ..relax.export_onnx import export_swapped

    values = {s.name: t.numpy() for s, t in zip(graph.params + graph.states, trainer.params + trainer.states)}
    trained = {s.onnx_name: values[s.name] for s in graph.params + graph.states if s.onnx_name}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for init in out.graph.initializer:
        if init.name in trained:
            init.CopyFrom(numpy_helper.from_array(trained[init.name].astype(np.float32), init.name))
    swapped = [d for d in graph.decisions if d.action == "swap"]
    if swapped:
        weights = {}
        for d in swapped:
            n = len(graph.swap.used[d.layer].weights)
            weights[d.layer] = [values[f"{d.layer}.W{k}"] for k in range(1, n + 1)]
        out = export_swapped(out, graph.swap, weights, bn_folded=False)
    onnx.checker.check_model(out)
    write_atomically(path, lambda tmp: onnx.save(out, tmp), suffix=".onnx")  # a kill mid-write leaves no half model


def train(config: Config, out_dir: str | Path | None = None, resume: bool = False, progress: bool = True,
          after_epoch: Callable[[int, dict], None] | None = None,
          choice: "Mapping[str, Operator | None] | None" = None) -> tuple[Trainer, History]:
    """Train per ``config``; with ``out_dir`` a checkpoint after every epoch, ``trained.onnx`` and ``weights.npz``
    at the end.  ``after_epoch(epoch, record)`` is called after each checkpoint (tests use it to simulate a kill).
    ``choice`` (a per-layer operator map, e.g. from the proxy) replaces ``config.operator``, which then only labels
    the run."""
    from ..ir.load import load_operator

    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.npz" if out is not None else None
    if resume and (ckpt is None or not ckpt.is_file()):
        raise SynoError(f"--resume: no checkpoint in '{out_dir}' (train once without --resume first)")
    if config.epochs < 1 or config.batch < 1:
        raise SynoError(f"epochs and batch must be >= 1 (got {config.epochs}, {config.batch})")
    ds = data_mod.load(config.data, val_fraction=config.val_fraction, seed=config.seed,
                                  limit=config.limit)
    if len(ds.train_y) < config.batch:
        raise SynoError(f"{len(ds.train_y)} training images are fewer than one batch of {config.batch}")
    model = model_proto(config, ds.num_classes)
    op = choice if choice is not None else load_operator(config.operator)[0] if config.operator else None
    graph = build_graph(model, op, make(config.optimizer, config.weight_decay), seed=config.seed)
    if graph.num_classes < ds.num_classes or tuple(graph.input_shape[1:]) != ds.image_shape:
        raise SynoError(f"the model takes {list(graph.input_shape[1:])} images with {graph.num_classes} classes; "
                        f"the data has {list(ds.image_shape)} images with {ds.num_classes} classes")
    if config.tune_trials and out is None:
        raise SynoError("tuning the training step needs --out (its database goes to OUT/tuning)")
    trainer = Trainer(graph, config.threads, config.tune_trials, out / "tuning" if out is not None else None,
                      progress=progress)
    steps_per_epoch = len(ds.train_y) // config.batch
    schedule = Schedule(config.schedule, config.lr, steps_per_epoch * config.epochs, config.warmup_steps)
    history, start = History(), 0
    if resume:
        arrays, meta = _load_npz(ckpt)
        if meta["config"] != config.key():
            diff = sorted(k for k in config.key() if meta["config"].get(k) != config.key()[k])
            raise SynoError(f"--resume: the checkpoint was made with different settings ({', '.join(diff)})")
        trainer.load(arrays, meta["steps"])
        history.epochs, start = meta["history"], meta["epoch"]
    channels = ds.image_shape[0]
    for epoch in range(start, config.epochs):
        rng = np.random.default_rng([config.seed, epoch])
        bar = _bar(steps_per_epoch, f"epoch {epoch + 1}/{config.epochs}", progress)
        t0, seen, correct, loss_sum = time.perf_counter(), 0, 0, 0.0
        for xb, yb, _ in data_mod.batches(ds.train_x, ds.train_y, config.batch, channels, rng, aug=config.augment):
            loss, logits = trainer.step(xb, yb, schedule(trainer.steps))
            if not np.isfinite(loss):
                raise SynoError(f"the loss diverged (={loss}) at step {trainer.steps}: lower --lr")
            seen += len(yb)
            correct += int((logits.argmax(axis=1) == yb).sum())
            loss_sum += loss * len(yb)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}",
                            img_s=f"{seen / (time.perf_counter() - t0):.0f}")
        bar.close()
        seconds = time.perf_counter() - t0
        val_acc, val_loss = trainer.evaluate(ds.val_x, ds.val_y, channels)
        record = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen,
                  "val_loss": val_loss, "val_acc": val_acc, "images_per_s": seen / seconds, "seconds": seconds}
        history.epochs.append(record)
        if progress:
            print(f"epoch {epoch + 1}: train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f}  "
                  f"val loss {val_loss:.4f} acc {val_acc:.4f}  {record['images_per_s']:.1f} images/s", flush=True)
        if ckpt is not None:
            _save_npz(ckpt, trainer.arrays(), {"config": config.key(), "epoch": epoch + 1, "steps": trainer.steps,
                                               "history": history.epochs})
        if after_epoch is not None:
            after_epoch(epoch + 1, record)
    if out is not None:
        _save_npz(out / "weights.npz", trainer.arrays(), {"config": config.key(), "history": history.epochs,
                                                          "decisions": [d.to_json() for d in graph.decisions]})
        write_onnx(model, graph, trainer, out / "trained.onnx")
        write_text(out / "history.json", json.dumps({"config": config.key(), "epochs": history.epochs}, indent=1))
    return trainer, history


def _bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", disable=not enabled, leave=False, dynamic_ncols=True)
