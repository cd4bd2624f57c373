"""MetaSchedule tuning of a whole Relax module, with a database that persists in a work directory.

Why not ``relax.pipeline.static_shape_tuning_pipeline``: it cannot tell a workload it has already tuned from a new
one, so a second run spends the whole budget again, and with a global budget smaller than ``tasks x per-task`` the
gradient scheduler starves the last tasks (measured on TVM 0.27: ResNet-18 for CIFAR left at its
naive schedules, 232 ms instead of 12 ms).  Here a model's
global budget is ``trials x tasks``, spread by a :data:`POLICIES` entry: ``uniform`` gives every task the same
``trials`` (a task whose workload the database already holds at this budget or more is not tuned again);
``share`` gives every task a floor of one search round and lets MetaSchedule's gradient task scheduler spend the
rest where the weighted latency falls fastest (heavy tasks get more), the model counting as tuned as a whole.  The budget spent per workload is kept in ``budget.json`` beside
MetaSchedule's own JSON database, because a task with a small search space can end with fewer records than its
budget and must still count as done.  Failed candidates (build or run errors) go through MetaSchedule's default
callbacks like any other (committed to the database, never chosen as best, not re-proposed by the search, which
skips traces it has measured); we count them per task for the report.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tvm
import tvm_ffi
from tvm.s_tir import meta_schedule as ms
from tvm.ir.utils import derived_object

from ..atomic import write_text
from ..errors import SynoError
from .budget import DEFAULT_POLICY, POLICIES
from .targets import is_aarch64

BUDGET_FILE = "budget.json"


@dataclass
class TaskStats:
    """One tuning task: its name, how often the model calls it, trials run now and failures among them."""

    name: str
    weight: int
    trials: int = 0
    failed: int = 0
    reused: bool = False          # already tuned at this budget in the database: no trials this run
    best_us: float | None = None  # best measured run time of this workload in the database


@dataclass
class TuneResult:
    """What one :func:`tune` call did; ``new_trials == 0`` on a rerun with the same budget."""

    work_dir: str
    trials_per_task: int
    seconds: float
    tasks: list[TaskStats] = field(default_factory=list)
    policy: str = DEFAULT_POLICY

    @property
    def budget_trials(self) -> int:
        """The model's global budget (``trials_per_task x tasks``), whether spent now or by an earlier run."""
        return self.trials_per_task * len(self.tasks)

    @property
    def new_trials(self) -> int:
        return sum(t.trials for t in self.tasks)

    @property
    def failed(self) -> int:
        return sum(t.failed for t in self.tasks)

    def to_json(self) -> dict:
        return {**asdict(self), "new_trials": self.new_trials, "failed": self.failed,
                "budget_trials": self.budget_trials}


@derived_object
class _Progress(ms.measure_callback.PyMeasureCallback):
    """Counts candidates and failures per task and advances a progress bar after every measured batch."""

    def __init__(self, stats: list[TaskStats], bar) -> None:
        self.stats, self.bar = stats, bar

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results) -> None:
        st = self.stats[task_id]
        st.trials += len(measure_candidates)
        st.failed += sum(1 for b, r in zip(builder_results, runner_results)
                         if b.error_msg is not None or r.error_msg is not None)
        self.bar.set_postfix_str(f"{st.name[:40]} failed={sum(s.failed for s in self.stats)}")
        self.bar.update(len(measure_candidates))


def _host_intrinsics_only(arm: bool | None = None) -> None:
    """Register the tensor intrinsics of this CPU only (``arm=True``: of an Arm CPU, for a board tuned over RPC).

    MetaSchedule imports ``tvm.s_tir.tensor_intrin`` when it creates a tuning context and in every fresh builder
    worker (one set per measured batch); that package parses the CUDA/ROCm/Hexagon intrinsics too: 20 s on an idle
    core here, minutes on these shared ones, past the builder's timeout, so every candidate failed.  CPU schedules use
    only the target's (x86 VNNI/AVX-512 or Arm) intrinsics, so the package is registered without running its
    ``__init__`` and the target's module is imported alone; the other submodules stay importable by name (dlight
    imports ``tensor_intrin.cuda`` itself)."""
    import importlib
    import importlib.util
    import platform
    import sys

    name = "tvm.s_tir.tensor_intrin"
    if name not in sys.modules:
        sys.modules[name] = importlib.util.module_from_spec(importlib.util.find_spec(name))
    if arm is None:
        arm = platform.machine() in ("aarch64", "arm64")
    importlib.import_module(name + (".arm_cpu" if arm else ".x86"))


def _workload_key(mod: tvm.IRModule) -> str:
    return f"{tvm_ffi.structural_hash(mod) & 0xFFFFFFFFFFFFFFFF:016x}"


# How tasks are told apart.  ``structural``: every fused PrimFunc is its own task.  ``anchor-block``: functions
# whose heaviest block (the conv or matmul) is the same share one task and one schedule, the epilogue (bias, add,
# relu) inlined into it: ResNet-18's conv2d fused with add+relu and with add+add+relu is then tuned once, with the
# trials of both (benchmarks/e2e_breakdown.py measured the same conv 2x apart when tuned as two tasks).  Structural
# is the default: at 16 trials per task anchor-block was slower end to end (benchmarks/results/task_equality.txt).
EQUALITIES = ("structural", "anchor-block")
EQUALITY_FILE = "module_equality.txt"  # which one a work directory's database was written with


def equality_of(work_dir: "str | Path") -> str:
    """The task equality the database in ``work_dir`` uses (``structural`` for one written before it was recorded)."""
    path = Path(work_dir) / EQUALITY_FILE
    return path.read_text().strip() if path.is_file() else "structural"


def open_database(work_dir: "str | Path", equality: str | None = None) -> ms.database.JSONDatabase:
    """The JSON database in ``work_dir`` (created if missing), keyed by the work directory's task equality; a
    different ``equality`` for a database that exists is refused (its records would not match)."""
    path = Path(work_dir)
    path.mkdir(parents=True, exist_ok=True)
    stored = equality_of(path)
    if equality is not None and equality not in EQUALITIES:
        raise SynoError(f"unknown task equality '{equality}': use one of {', '.join(EQUALITIES)}")
    if equality is not None and equality != stored:
        if any(p.stat().st_size for p in path.glob("database_*.json")):  # records exist: they keep their equality
            raise SynoError(f"the tuning database in {path} was tuned with {stored} task equality, not {equality}: "
                            "use another work directory")
        write_text(path / EQUALITY_FILE, equality + "\n")
        stored = equality
    return ms.database.JSONDatabase(work_dir=str(path), module_equality=stored)


def _best_us(db: ms.database.Database, mod: tvm.IRModule) -> float | None:
    if not db.has_workload(mod):
        return None
    top = db.get_top_k(db.commit_workload(mod), 1)
    if not top or not top[0].run_secs:
        return None
    return 1e6 * sum(float(s) for s in top[0].run_secs) / len(top[0].run_secs)


def prepare(mod: tvm.IRModule) -> tvm.IRModule:
    """Legalize and fuse (Relax's zero pipeline) so that tasks are the fused PrimFuncs the build will contain:
    MetaSchedule extracts nothing from unlegalized Relax ops, and tuning and compiling must see the same
    functions for the database to match."""
    from tvm import relax

    return _without_custom_rules(relax.get_pipeline("zero")(mod))


def _without_custom_rules(mod: tvm.IRModule) -> tvm.IRModule:
    """Drop the ``schedule_rule`` block annotation that TOPI puts on pooling blocks: apache-tvm 0.27 registers no CPU
    rule under that name, so MetaSchedule warned once per candidate (hundreds of lines on stderr) and then applied
    its generic rules anyway, the schedules it also picks without the annotation."""
    import tvm.s_tir
    import tvm.tirx

    for gv, f in list(mod.functions_items()):
        if not isinstance(f, tvm.tirx.PrimFunc) or "schedule_rule" not in f.script():
            continue
        sch = tvm.s_tir.Schedule(tvm.IRModule({"main": f}))
        pending = list(sch.get_child_blocks(sch.get_sblock("root")))
        while pending:
            block = pending.pop()
            if "schedule_rule" in sch.get(block).annotations:
                sch.unannotate(block, "schedule_rule")
            pending += sch.get_child_blocks(block)
        mod[gv] = sch.mod["main"]  # mod is the pipeline's fresh module, not the caller's
    return mod


def tune(mod: tvm.IRModule, target: tvm.target.Target, work_dir: "str | Path", trials: int, *,
         seed: int = 0, progress: bool = True, rpc: "str | None" = None, policy: str = DEFAULT_POLICY,
         equality: str | None = None) -> TuneResult:
    """Tune the tasks of ``mod`` with a budget of ``trials`` per task spread by ``policy`` (module docstring),
    skipping what the database already holds at this budget.  ``equality`` (:data:`EQUALITIES`) tells tasks apart;
    None keeps the work directory's (``structural`` for a new one).

    Candidates run on this machine's CPU (MetaSchedule's local runner) or, with ``rpc`` (``host:port:key`` of a
    tracker), on the tracker's device of that key (:mod:`.ms_rpc`: an aarch64 board, or this CPU behind an RPC
    server); raises SynoError for a target neither can run."""
    from functools import partial

    from tqdm import tqdm

    from . import ms_rpc

    if trials < 1:
        raise SynoError(f"--trials must be at least 1 (got {trials})")
    if policy not in POLICIES:
        raise SynoError(f"unknown budget policy '{policy}': use one of {', '.join(POLICIES)}")
    arm = is_aarch64(target)
    if target.kind.name != "llvm" or (arm and rpc is None):
        raise SynoError(f"tuning {'aarch64' if arm else target.kind.name} needs that device: this machine tunes its "
                        "own CPU, or a CPU behind a tvm.rpc tracker (--rpc HOST:PORT:KEY)")
    initializer = partial(_host_intrinsics_only, True if arm else None)
    start = time.time()
    work = Path(work_dir)
    db = open_database(work, equality)
    ledger_path = work / BUDGET_FILE
    ledger: dict[str, int] = json.loads(ledger_path.read_text()) if ledger_path.is_file() else {}
    extracted = ms.relax_integration.extract_tasks(prepare(mod), target, module_equality=equality_of(work))
    todo, stats_all = [], []
    keys = [_workload_key(task.dispatched[0]) for task in extracted]
    # share: the model is the unit (its tasks compete for one budget); its ledger key names policy and workloads
    model_key = "share:" + "+".join(sorted(keys)) if policy == "share" else None
    for task, key in zip(extracted, keys):
        st = TaskStats(task.task_name, int(task.weight))
        done = ledger.get(model_key or key, 0) >= trials
        st.reused = done and db.has_workload(task.dispatched[0])
        stats_all.append(st)
        if not st.reused:
            todo.append((task, st, model_key or key))
    if model_key and todo:   # one task missing from the database: the shared budget is spent again on all
        todo = [(task, st, model_key) for task, st in zip(extracted, stats_all)]
        for st in stats_all:
            st.reused = False
    if todo:
        # MetaSchedule prints per-trial tables and XGBoost iterations on stdout at DEBUG; keep them in
        # work_dir/logs (file handlers stay at DEBUG) and show the progress bar instead.
        ms_logger = logging.getLogger("tvm.s_tir.meta_schedule")
        ms_logger.setLevel(logging.WARNING)
        # MetaSchedule rebuilds its logging config from the *names* of this logger's handlers; an unnamed one
        # (pytest's capture handlers, a user's addHandler) crashes it with "'NoneType' has no attribute 'format'".
        unnamed = [h for h in ms_logger.handlers if h.get_name() is None]
        for h in unnamed:
            ms_logger.removeHandler(h)
        try:
            runner = ms_rpc.rpc_runner(rpc) if rpc else "local"  # fails here, in one line, when no device answers
            initializer()
            # Search effort in proportion to the measured budget: the default population of 512 per round costs
            # more CPU than a handful of trials on these 2 shared cores.
            strategy = ms.search_strategy.EvolutionarySearch(population_size=min(512, max(64, 16 * trials)))
            contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
                [t for t, _, _ in todo], work_dir=str(work), strategy=strategy, seed=seed)
            # Two or more rounds per task: the cost model learns from the first round's measurements, and the bar
            # moves when a task's earlier round is collected (MetaSchedule reports results one round late).  Under
            # ``share`` the gradient scheduler's warm-up (one round per task) is the floor; a task may take up to
            # four times its uniform share.
            per_iter = min(64, max(1, (trials + 1) // 2))
            per_task = trials if policy == "uniform" else 4 * trials
            with tqdm(total=trials * len(todo), desc=f"tuning {len(todo)} tasks x {trials} trials", unit="trial",
                      disable=not progress, leave=False) as bar:
                callbacks = list(ms.measure_callback.MeasureCallback.create("default"))
                callbacks.append(_Progress([st for _, st, _ in todo], bar))
                ms.tune.tune_tasks(tasks=contexts, task_weights=weights, work_dir=str(work),
                                   max_trials_global=trials * len(todo), max_trials_per_task=per_task,
                                   num_trials_per_iter=per_iter, database=db, measure_callbacks=callbacks,
                                   builder=(ms_rpc.rpc_builder(target, initializer) if rpc else
                                            ms.builder.LocalBuilder(initializer=initializer)),
                                   runner=runner,
                                   # XGBoost ranks no better than chance from a few samples, and retraining it after
                                   # every batch costs more than the measurements at tiny budgets (tests, smoke runs)
                                   cost_model="xgb" if trials >= 8 else "random")
        finally:
            for h in unnamed:
                ms_logger.addHandler(h)
        for _, _, key in todo:
            ledger[key] = max(ledger.get(key, 0), trials)
        write_text(ledger_path, json.dumps(ledger, indent=1, sort_keys=True) + "\n")
    for task, st in zip(extracted, stats_all):
        st.best_us = _best_us(db, task.dispatched[0])
    return TuneResult(str(work), trials, time.time() - start, stats_all, policy)


def compile_tuned(mod: tvm.IRModule, target: tvm.target.Target, work_dir: "str | Path"):
    """Build ``mod`` with the best schedules of the database in ``work_dir`` (untuned functions get defaults).

    Not ``ms.relax_integration.compile_relax``: in apache-tvm 0.27 its build of a tuned ResNet-18@32 ran 30x slower
    (582 ms) than ``tvm.compile`` of the same database-applied module (19.6 ms), kernels for kernels the same
    (``benchmarks/e2e_latency.py`` found it: see tests/test_tune.py)."""
    return tvm.compile(apply_database(mod, target, work_dir), target=target)


def apply_database(mod: tvm.IRModule, target: tvm.target.Target, work_dir: "str | Path") -> tvm.IRModule:
    """``mod`` prepared as for tuning, every function the database holds replaced by its best schedule."""
    from tvm import relax

    with target, open_database(work_dir):
        return relax.transform.MetaScheduleApplyDatabase()(prepare(mod))
