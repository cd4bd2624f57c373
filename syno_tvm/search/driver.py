"""The search loop: propose -> dedupe by fingerprint -> cheap evaluators -> expensive ones on survivors -> commit
-> notify.

Resume.  Before each batch the driver takes the strategy's state; every result of the batch is committed together
with that state, and once the whole batch was told to the strategy the state after it replaces it.  After a kill
at any moment the database holds complete results only, and the stored state is the one from which the strategy
proposes the interrupted batch again: its candidates already in the database are answered from there (told to
the strategy, not evaluated), the others are evaluated.  So nothing evaluated is lost and nothing is evaluated
twice, and the resumed search continues as the uninterrupted one would have (the strategies are deterministic).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SynoError
from .candidate import FAILED, OK, PRUNED, Result
from .context import EvalContext
from .database import create as create_database
from .evaluator import Evaluator, create as create_evaluator
from .layers import layer_uses
from .results import DB_FILE, ORIGINAL_KEY, best_result, pareto_results
from .reward import Reward
from .runner import create as create_runner
from .space import SearchSpace, load_search_spec
from .strategy import SearchStrategy, StrategyContext, create as create_strategy

STALE_BATCHES = 200  # batches in a row with nothing new after which the strategy is taken to be exhausted


@dataclass
class SearchConfig:
    """One search.  ``budget`` (evaluations, failed ones included) and/or ``time`` (seconds of this run) bound it."""

    out: str
    spec: str = "vision"
    model: str | None = None
    strategy: str = "mcts"
    evaluators: tuple[str, ...] = ("flops",)
    budget: int | None = None
    time: float | None = None
    target: str = "llvm"
    seed: int = 0
    resume: bool = False
    ray: str | None = None
    workers: int = 1
    reward: Reward = field(default_factory=Reward)
    latency_trials: int = 16
    accuracy_recipe: str = "proxy"
    max_cost_ratio: float | None = None

    def identity(self) -> dict[str, Any]:
        """What a resumed search must share with the one it continues (not budget, time, runner)."""
        d = asdict(self)
        for k in ("budget", "time", "resume", "ray", "workers", "out"):
            d.pop(k)
        d["evaluators"] = list(self.evaluators)
        return d


@dataclass
class SearchSummary:
    """What a search did (this run and in total): the live display's numbers."""

    out: str
    evaluated: int = 0
    new: int = 0
    failed: int = 0
    pruned: int = 0
    duplicates: int = 0
    best_reward: float = 0.0
    best_fingerprint: str = ""
    pareto_size: int = 0
    seconds: float = 0.0
    stopped: str = ""

    @property
    def evals_per_min(self) -> float:
        return 60.0 * self.new / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "evals_per_min": self.evals_per_min}


def parse_duration(text: str) -> float:
    """Seconds of ``2h``, ``30m``, ``90s`` or a bare number of seconds (``--time``)."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    t = text.strip().lower()
    scale = units.get(t[-1:], None)
    try:
        value = float(t[:-1] if scale else t) * (scale or 1.0)
    except ValueError:
        raise SynoError(f"--time '{text}' is not a duration: give e.g. 2h, 30m, 90s or seconds") from None
    if value <= 0:
        raise SynoError(f"--time must be positive (got '{text}')")
    return value


def _evaluators(cfg: SearchConfig) -> list[Evaluator]:
    if not cfg.evaluators:
        raise SynoError("--evaluator needs at least one of flops, predicted, latency, accuracy")
    if len(set(cfg.evaluators)) != len(cfg.evaluators):
        raise SynoError(f"--evaluator lists one evaluator twice: {','.join(cfg.evaluators)}")
    opts = {"latency": {"trials": cfg.latency_trials}, "accuracy": {"recipe": cfg.accuracy_recipe}}
    return [create_evaluator(n, **opts.get(n, {})) for n in cfg.evaluators]


def _check(cfg: SearchConfig) -> None:
    """Refuse bad settings before anything is written."""
    if cfg.budget is None and cfg.time is None:
        raise SynoError("give --budget N (evaluations) or --time SECONDS")
    if cfg.budget is not None and cfg.budget < 1:
        raise SynoError(f"--budget must be at least 1 (got {cfg.budget})")
    if cfg.time is not None and cfg.time <= 0:
        raise SynoError(f"--time must be positive (got {cfg.time})")
    out = Path(cfg.out)
    db = out / DB_FILE
    if out.exists() and not out.is_dir():
        raise SynoError(f"--out '{cfg.out}' is a file: name a directory")
    if cfg.resume and not db.is_file():
        raise SynoError(f"nothing to resume: {db} does not exist (drop --resume to start a search)")
    if not cfg.resume and db.exists():
        raise SynoError(f"{cfg.out} already holds a search: pass --resume to continue it or choose another --out")


class Tally:
    """Running totals over all stored results (the Pareto front and the best find's reward: ``original`` is the
    fingerprint of the operator the model already has, which is not a find)."""

    def __init__(self, original: str = "") -> None:
        self.results: list[Result] = []
        self.original = original

    def add(self, r: Result) -> None:
        self.results.append(r)

    def summary(self, s: SearchSummary) -> SearchSummary:
        ok = [r for r in self.results if r.status == OK]
        s.evaluated = len(self.results)
        s.failed = sum(r.status == FAILED for r in self.results)
        s.pruned = sum(r.status == PRUNED for r in self.results)
        best = best_result(ok, self.original)
        if best is not None:
            s.best_reward, s.best_fingerprint = best.reward, best.fingerprint
        if ok:
            s.pareto_size = len(pareto_results(ok))
        return s


def search(cfg: SearchConfig, progress: bool = True, evaluators: list[Evaluator] | None = None,
           strategy: SearchStrategy | None = None) -> SearchSummary:
    """Run (or resume) a search; every result is in ``cfg.out/search.sqlite`` as soon as it is known.  Bad
    settings raise a SynoError before anything is written.  ``evaluators`` and ``strategy`` replace the ones named
    in the config (tests inject a failing evaluator or a strategy that repeats itself)."""
    _check(cfg)
    spec = load_search_spec(cfg.spec, cfg.model)
    evs = evaluators if evaluators is not None else _evaluators(cfg)
    strategy = strategy if strategy is not None else create_strategy(cfg.strategy)
    identity = {**cfg.identity(), "strategy_options": strategy.options(),
                "evaluator_versions": {e.name: e.version for e in evs}}
    uses = layer_uses(spec, cfg.model)
    runner = create_runner("ray", address=cfg.ray, workers=cfg.workers) if cfg.ray else \
        create_runner("local", workers=cfg.workers)
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        runner.close()
        raise SynoError(f"cannot create --out '{cfg.out}': {e.strerror}") from None
    db = create_database("sqlite", out)
    try:
        if cfg.resume:
            stored = db.get_meta("config")
            if stored != identity:
                diff = sorted(k for k in set(stored or {}) | set(identity) if (stored or {}).get(k) != identity.get(k))
                raise SynoError(f"--resume with different settings than the search in {cfg.out} ({', '.join(diff)}): "
                                "repeat the original ones")
        else:
            db.set_meta("config", identity)
            db.set_meta("layers", [u.to_json() for u in uses])
        ctx = EvalContext(spec.to_json(), cfg.model, cfg.target, str(out / "work"), uses,
                          cfg.seed, max_cost_ratio=cfg.max_cost_ratio)
        reference = db.get_meta("reference") or {}
        for ev in evs:
            if ev.name not in reference:
                reference[ev.name] = ev.reference(ctx)
                db.set_meta("reference", reference)
        ctx.reference = reference
        space = SearchSpace(spec)
        if db.get_meta(ORIGINAL_KEY) is None:  # also for a search stored before the key existed
            db.set_meta(ORIGINAL_KEY, space.original_fingerprint())
        strategy.initialize(StrategyContext(space, cfg.seed))
        state = db.load_state()
        if state is not None:
            strategy.restore(state)
        return _loop(cfg, db, ctx, evs, strategy, runner, progress, db.get_meta(ORIGINAL_KEY))
    finally:
        runner.close()
        db.close()


def _loop(cfg, db, ctx, evs, strategy, runner, progress: bool, original: str) -> SearchSummary:
    from tqdm import tqdm

    tally = Tally(original)
    for r in db.results():
        tally.add(r)
    summary = SearchSummary(cfg.out)
    start = time.perf_counter()
    stale = 0
    with tqdm(total=cfg.budget, initial=len(tally.results), desc=f"search {cfg.strategy}", unit="eval",
              disable=not progress, dynamic_ncols=True) as bar:
        while True:
            summary.seconds = time.perf_counter() - start
            left = None if cfg.budget is None else cfg.budget - len(tally.results)
            if left is not None and left <= 0:
                summary.stopped = "budget"
                break
            if cfg.time is not None and summary.seconds >= cfg.time:
                summary.stopped = "time"
                break
            snapshot = strategy.state()
            proposed = strategy.propose(runner.parallelism if left is None else min(runner.parallelism, left))
            if proposed is None:
                summary.stopped = "strategy exhausted"
                break
            known, todo = [], []
            for c in proposed:
                stored = db.get(c.fingerprint)
                (known if stored is not None else todo).append(stored if stored is not None else c)
            summary.duplicates += len(known)
            stale = 0 if todo else stale + 1
            if stale >= STALE_BATCHES:
                summary.stopped = f"no new operator in {STALE_BATCHES} batches"
                break
            results = list(known)
            for r in runner.run(ctx, evs, todo):
                r.reward = cfg.reward.score(r)
                db.commit(r, snapshot)
                tally.add(r)
                results.append(r)
                summary.new += 1
                bar.update(1)
                tally.summary(summary)
                summary.seconds = time.perf_counter() - start
                bar.set_postfix_str(f"failed {summary.failed}, best {summary.best_reward:.4f}, "
                                    f"pareto {summary.pareto_size}, {summary.evals_per_min:.1f}/min")
            strategy.notify(results)
            db.save_state(strategy.state())
    summary.seconds = time.perf_counter() - start
    return tally.summary(summary)
