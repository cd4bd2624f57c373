"""ONNX in, compiled model and report out: the flow behind ``syno-tvm optimize`` and ``python/optimize_onnx.py``.

Import the model, swap the chosen operator(s) in, tune the original and the swapped model with the same trials per
task, build, measure both and onnxruntime on the original, and write into ``--out``:
``model.so`` (the swapped model; ``.tar`` of objects for aarch64 when no cross linker is installed), ``tuning/``
(the MetaSchedule database, reused when ``--out`` already holds one), ``report.json`` and ``report.md``.
Bad input fails before anything is written.  The tuning database fills ``--out/tuning`` as it goes, so a failure or
a kill after minutes of tuning loses none of it (a rerun resumes); library and report are built in a temporary
directory beside ``--out`` and moved in at the end, so a report always belongs to the library beside it.  What is
tuned and measured for each target, and on which device, is :mod:`.tune.plan`'s decision (the report states it):
CUDA and aarch64 are compiled and exported here, aarch64 tuned and measured through ``--rpc``, CUDA measured only
where this machine has a GPU.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tvm
from tvm import relax

from .errors import SynoError
from .ir.graph import Operator
from .tune import targets

if TYPE_CHECKING:  # the result types, imported where they are built: the CLI imports this module to parse
    from .report.results import Accuracy, ModelRun

DEFAULT_TRIALS = 16


@dataclass(frozen=True)
class OptimizeConfig:
    """One optimize run, as ``syno-tvm optimize`` and python/optimize_onnx.py parse it.  ``operator`` (one operator
    for every layer it can serve) and ``per_layer`` (a JSON map file layer -> operator or null) exclude each other;
    ``width`` applies to built-in models; ``accuracy`` names the proxy training data (None: no accuracy run)."""

    model: str
    out: str
    operator: str | None = None
    per_layer: str | None = None
    target: str = "llvm"
    trials: int = DEFAULT_TRIALS
    rpc: str | None = None
    runs: int = 30
    width: int | None = None
    accuracy: str | None = None
    budget_policy: str | None = None   # how tune spreads trials x tasks (tune.budget.POLICIES); None: its default
    search: int | None = None          # search this many operators for the model and swap the best (out/search)
    seed: int = 0

    @property
    def choice_text(self) -> str:
        """The operator, the per-layer map file or the search, as the user named it (labels the report)."""
        return f"searched ({self.search} evaluations)" if self.search else str(self.operator or self.per_layer)


def _choice(config: OptimizeConfig) -> "Operator | dict[str, Operator | None]":
    from .ir.load import load_operator

    if config.operator:
        return load_operator(config.operator)[0]
    path = Path(config.per_layer)
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SynoError(f"cannot read the per-layer map '{path}': {e}") from None
    if not isinstance(raw, dict) or not all(isinstance(v, (str, type(None))) for v in raw.values()):
        raise SynoError(f"the per-layer map '{path}' must be a JSON object layer -> operator name/file or null")
    return {layer: None if spec in (None, "keep") else load_operator(spec)[0] for layer, spec in raw.items()}


def _swap(mod: tvm.IRModule, choice, target=None) -> tuple[tvm.IRModule, list]:
    """The swapped module and the decisions; with a host CPU ``target``, the swapped kernels compiled for it are
    checked against the numpy reference first (a miscompiled kernel would be deployed and timed as if right)."""
    from .relax.swap import OperatorSwap, check_compiled_swaps

    swap = OperatorSwap(choice)
    swapped = swap(mod)
    if target is not None and targets.is_host_cpu(target):
        check_compiled_swaps(swap, target)
    done = [d for d in swap.decisions if d.action == "swap"]
    if isinstance(choice, dict):
        refused = [d for d in swap.decisions if choice.get(d.layer) is not None and d.action != "swap"]
        if refused:
            d = refused[0]
            raise SynoError(f"layer {d.layer} ({d.shape}) cannot take the chosen operator: {d.reason}")
    if not done:
        d = next((d for d in swap.decisions if d.reason and d.reason != "not chosen"), None)
        raise SynoError("the operator serves none of the model's layers"
                        + (f" (first: {d.layer}: {d.reason})" if d else " (the model has no conv2d/matmul layers)"))
    return swapped, swap.decisions


def _load_model(config: OptimizeConfig):
    from .relax.frontend import load_onnx
    from .relax.models import builtin

    if config.width is None:
        return load_onnx(config.model)
    if not str(config.model).startswith("builtin:"):
        raise SynoError("--width applies to built-in models only (an ONNX file has its own widths)")
    if config.width < 1:
        raise SynoError(f"--width must be at least 1 (got {config.width})")
    return builtin(config.model, width=config.width)


class FinalTraining:
    """The report's accuracy recipe for one optimize run (:data:`train.proxy.PROXY` on the run's model and data):
    the original once, and a swapped model per layer -> operator map, each trained once per run.

    With ``cache`` (a JSON file in the resumable search directory) results also outlive the run: a rerun after a
    kill does not train again what it has trained (training is seeded and deterministic on one machine, so a
    cached result is the one a retraining would give)."""

    def __init__(self, config: OptimizeConfig, progress: bool, cache: Path | None = None) -> None:
        from dataclasses import replace

        from .relax.models import BUILTIN
        from .train.proxy import PROXY

        width = PROXY.width
        if str(config.model).startswith("builtin:"):
            default = inspect.signature(BUILTIN[str(config.model).removeprefix("builtin:")]).parameters.get("width")
            width = config.width or (default.default if default is not None else width)
        self.config = config
        self.cfg = replace(PROXY, model=str(config.model), width=width, data=str(config.accuracy))
        self.recipe = {k: getattr(self.cfg, k) for k in ("epochs", "limit", "batch", "lr", "optimizer", "seed",
                                                         "width")}
        self.progress = progress
        self.finalists = 0
        self.cache = cache
        self.done: dict[str, dict] = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}

    def _key(self, layers: "dict[str, Operator] | None") -> str:
        ops = {k: op.hash for k, op in sorted((layers or {}).items())}
        return json.dumps({"recipe": self.cfg.key(), "layers": ops}, sort_keys=True)

    def train(self, label: str, layers: "dict[str, Operator] | None"):
        """The trained model (a :class:`TrainedModel`) of the run's model with ``layers`` swapped (None: the
        original); only the swapped layers are given: the training import (BatchNorm unfolded, constants not
        folded) need not see the same kept layers (a Gemm's weight is transposed by an op there)."""
        from dataclasses import replace

        from .atomic import write_text
        from .report.results import TrainedModel
        from .train.loop import train

        key = self._key(layers)
        if key not in self.done:
            if self.progress:
                print(f"training the {label} model ({self.cfg.epochs} epochs, {self.cfg.limit} images of "
                      f"{self.cfg.data})", flush=True)
            trainer, history = train(replace(self.cfg, operator=label if layers else None), progress=self.progress,
                                     choice=layers)
            self.done[key] = TrainedModel(history.last["val_acc"], history.last["val_loss"],
                                          float(np.mean([e["images_per_s"] for e in history.epochs])),
                                          sum(d.action == "swap" for d in trainer.graph.decisions)).to_json()
            if self.cache is not None:
                write_text(self.cache, json.dumps(self.done, indent=1) + "\n")
        return TrainedModel(**self.done[key])

    def accuracy_ratio(self, mod: tvm.IRModule, op: Operator) -> float:
        """A finalist's validation accuracy over the original's, with ``op`` in every layer it serves in ``mod``
        (the inference model the swap pass will rewrite)."""
        from .lower.verify import CompiledMismatch

        _, decisions = _swap(mod, op)
        base = self.train("original", None).val_acc
        self.finalists += 1
        try:
            acc = self.train(f"finalist {self.finalists}", swapped_layers(op, decisions)).val_acc
        except CompiledMismatch as e:   # cannot be trained on this CPU: it learns nothing here
            if self.progress:
                print(f"finalist {self.finalists} is not trained: {e}", flush=True)
            return 0.0
        return acc / base if base > 0 else 0.0

    def accuracy(self, choice, decisions: list) -> Accuracy:
        """Proxy accuracy of the original and the swapped model: the same layers swapped as in the latency run,
        one recipe and seed for both."""
        from .report.results import Accuracy

        return Accuracy(str(self.config.accuracy), self.recipe, self.train("original", None),
                        self.train("swapped", swapped_layers(choice, decisions)))


def swapped_layers(choice, decisions: list) -> "dict[str, Operator]":
    """Layer -> operator for the layers the swap pass swapped (``choice``: one operator or a per-layer map)."""
    return {d.layer: choice if isinstance(choice, Operator) else choice[d.layer] for d in decisions
            if d.action == "swap"}


def _build_and_time(label: str, mod: tvm.IRModule, target, tune_dir: Path, config: OptimizeConfig, inputs,
                    lib_path: Path | None, progress: bool, plan) -> tuple[ModelRun, np.ndarray | None]:
    """Tune, build, export if asked, measure, as the target's plan (:mod:`.tune.plan`) says; the run for the report
    and the model's output on ``inputs`` (None where it is not run on this host)."""
    from .report.results import ModelRun
    from .tune import compile as C
    from .tune import measure, metaschedule

    run, output = ModelRun(label), None
    if plan.tune != "none":
        if progress:
            print(f"tuning the {label} model ({config.trials} trials per task)", flush=True)
        run.tuning = metaschedule.tune(mod, target, tune_dir, config.trials, progress=progress, rpc=plan.tune_rpc,
                                       policy=config.budget_policy or metaschedule.DEFAULT_POLICY)
        executable = metaschedule.compile_tuned(mod, target, tune_dir)
    else:
        run.note = plan.tuned
        executable = C.build(metaschedule.prepare(mod), target)
    if lib_path is not None:
        run.library = C.export(executable, lib_path, target).name
    if plan.measure == "none":
        run.not_measured = plan.measured
    elif plan.measure == "rpc":
        with tempfile.TemporaryDirectory() as tmp:
            path = C.export(executable, Path(tmp) / "m.so", target)
            run.latency = measure.measure_rpc(path, config.rpc, inputs, repeat=config.runs)
    elif plan.measure == "local-cuda":
        run.latency = measure.measure_local(executable, inputs, repeat=config.runs, dev=tvm.cuda(0))
    else:
        run.latency = measure.measure_local(executable, inputs, repeat=config.runs)
        vm = relax.VirtualMachine(executable, tvm.cpu())
        output = vm["main"](*[tvm.runtime.tensor(a) for a in inputs]).numpy()
    return run, output


def optimize(config: OptimizeConfig, progress: bool = True) -> Path:
    """Run the whole flow; returns the output directory.  Raises SynoError for bad input, writing nothing."""
    if sum(x is not None for x in (config.operator, config.per_layer, config.search)) != 1:
        raise SynoError("give exactly one of --operator NAME_OR_JSON, --per-layer MAP.json and --search N")
    if config.search is not None and config.search < 1:
        raise SynoError(f"--search must be at least 1 evaluation (got {config.search})")
    from .relax.frontend import import_onnx
    from .report.markdown import write_report
    from .report.results import OptimizeReport
    from .tune import measure
    from .tune.plan import plan

    start = time.time()
    target = targets.by_name(config.target)
    if config.trials < 1:
        raise SynoError(f"--trials must be at least 1 (got {config.trials})")
    if config.rpc:
        measure.RpcSpec.parse(config.rpc)
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise SynoError(f"--out '{out}' exists and is not a directory")
    existing = next(p for p in out.absolute().parents if p.exists())
    if not existing.is_dir():
        raise SynoError(f"cannot create '{out}': '{existing}' is a file, not a directory")
    model = _load_model(config)
    inputs = measure.input_arrays(model)
    mod = import_onnx(model)
    if config.search is None:
        choice = _choice(config)
        swapped, decisions = _swap(mod, choice, target)
    else:   # a model the search cannot serve fails now, before anything is written
        from .search.model_search import choose_spec

        choose_spec(model, config.width)
    if config.accuracy:  # bad data fails now, in one line, not after the tuning
        from .train import data
        from .train.proxy import PROXY

        data.load(config.accuracy, limit=PROXY.limit)

    # The tuning database is a cache that must outlive a failure or a kill (tuning is the long part): it lives in
    # --out/tuning from the start and a rerun resumes from it.  The results are written beside it and moved in at
    # the end, so --out never holds a report that does not match its library.
    created = [p for p in [out.absolute(), *out.absolute().parents] if not p.exists()]  # made here, deepest first
    out.mkdir(parents=True, exist_ok=True)
    tune_dir = out / "tuning"
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    found = None
    training = None
    if config.accuracy:   # with a search, its directory keeps the trainings for a rerun
        training = FinalTraining(config, progress, out / "search" / "trained.json" if config.search else None)
    try:
        if config.search is not None:   # out/search is a cache like out/tuning: a rerun resumes it
            from .ir.load import load_operator
            from .search.model_search import search_for_model

            confirm = partial(training.accuracy_ratio, mod) if training else None
            found = search_for_model(model, config.width, out / "search", config.search, seed=config.seed,
                                     progress=progress, final_accuracy=confirm)
            choice = load_operator(str(out / found.operator_file))[0]
            swapped, decisions = _swap(mod, choice, target)
        machine = measure.machine_facts()
        target_plan = plan(target, config.rpc, config.target, cpu=f"this machine's CPU ({machine['cpu']})")
        original, out_original = _build_and_time("original", mod, target, tune_dir, config, inputs, None, progress,
                                                 target_plan)
        result, out_swapped = _build_and_time("swapped", swapped, target, tune_dir, config, inputs,
                                              tmp / "model.so", progress, target_plan)
        ort = None
        if targets.is_host_cpu(target):
            ort = measure.measure_onnxruntime(model, inputs, threads=int(target.attrs.get("num-cores", 1)),
                                              repeat=config.runs)
        diff = None
        swaps = [d for d in decisions if d.action == "swap"]
        new_function = sum(not d.exact for d in swaps)
        if new_function:   # a different function with new weights: its output differs by design
            diff_note = (f"not shown: {new_function} of {len(swaps)} swapped layers compute a new function with new "
                         f"weights (train the swapped model first)")
        elif out_original is None or out_swapped is None:
            diff_note = "not measured on this target"
        else:
            diff = float(np.abs(out_original - out_swapped).max())
            diff_note = "every swapped layer keeps the layer's function: the outputs must agree"
        report = OptimizeReport(
            model=str(config.model), target=str(target), target_name=config.target, choice=config.choice_text,
            trials_per_task=config.trials, machine=machine, plan=target_plan, layers=list(decisions),
            original=original, swapped=result, onnxruntime=ort, max_abs_output_diff=diff, output_diff_note=diff_note,
            search=found, accuracy=training.accuracy(choice, decisions) if training else None,
            seconds=round(time.time() - start, 1))
        write_report(tmp, report)
        for stale in ("model.so", "report.json", "report.md"):  # a library from an earlier run must not outlive it
            (out / stale).unlink(missing_ok=True)
        for path in tmp.iterdir():
            os.replace(path, out / path.name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created and not any(out.iterdir()):
            for made in created:  # the output directory and the parents this run made, if still empty
                if any(made.iterdir()):
                    break
                made.rmdir()
        elif (tune_dir.is_dir() or (out / "search").is_dir()) and progress:
            kept = " and ".join(str(p) for p in (out / "search", tune_dir) if p.is_dir())
            what = "search and tuning database" if (out / "search").is_dir() else "tuning database"
            print(f"the {what} is kept in {kept}: rerun the same command to resume from it",
                  file=sys.stderr, flush=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
