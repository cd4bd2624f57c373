"""The search loop in process: budget, reward relative to the original, failures as data, duplicates evaluated
once, resume equal to an uninterrupted run, bad settings refused before anything is written."""

from __future__ import annotations

import sqlite3

import pytest

from syno_tvm.errors import SynoError
from syno_tvm.search.candidate import FAILED, OK, Candidate, Result
from syno_tvm.search.driver import SearchConfig, parse_duration, search
from syno_tvm.search.evaluator import create as create_evaluator
from syno_tvm.search.evaluator.flops import FlopsEvaluator
from syno_tvm.search.results import load
from syno_tvm.search.reward import Reward, pareto
from syno_tvm.search.strategy import create as create_strategy
from syno_tvm.search.strategy.strategy import SearchStrategy, StrategyContext


def rows(out) -> list[tuple]:
    with sqlite3.connect(str(out / "search.sqlite")) as c:
        return c.execute("SELECT seq, fingerprint, status, error, reward, metrics FROM results ORDER BY seq").fetchall()


@pytest.mark.parametrize("strategy", ["random", "mcts"])
def test_budget_respected_and_rows_distinct(tmp_path, strategy):
    s = search(SearchConfig(out=str(tmp_path / "s"), strategy=strategy, budget=12), progress=False)
    got = rows(tmp_path / "s")
    assert s.evaluated == len(got) == 12 and s.new == 12 and s.stopped == "budget"
    assert len({r[1] for r in got}) == 12
    assert all(r[2] == OK for r in got)


def test_reward_relative_to_reference(tmp_path):
    """MCTS proposes the located conv2d first: as costly as the original by the same evaluator, so its ratio and
    its reward are 1; every other reward is the Reward of its own FLOPs ratio."""
    search(SearchConfig(out=str(tmp_path / "s"), strategy="mcts", budget=6), progress=False)
    rec = load(tmp_path / "s")
    first = rec.results[0]
    assert first.candidate.source == "seed:conv2d"
    assert first.metrics["flops_ratio"] == pytest.approx(1.0)
    assert first.reward == pytest.approx(1.0)
    ref = rec.reference["flops"]["flops"]
    for r in rec.results[1:]:
        assert r.metrics["flops_ratio"] == pytest.approx(r.metrics["flops"] / ref)
        assert r.reward == pytest.approx(Reward()({"flops_ratio": r.metrics["flops_ratio"]}))
    assert any(r.metrics["flops_ratio"] < 1 and r.reward > 1 for r in rec.results[1:])


def test_reward_modes():
    soft, hard = Reward("soft"), Reward("hard", target=0.5)
    assert soft({"flops_ratio": 0.5}) == pytest.approx(0.5 ** -0.07)
    assert soft({"flops_ratio": 1.0, "accuracy_ratio": 0.75}) == pytest.approx(0.5 ** 4)
    assert soft({"accuracy_ratio": 0.4}) == 0.0
    assert hard({"latency_ratio": 0.4, "flops_ratio": 9.0}) == pytest.approx(1.0)  # latency wins over FLOPs
    assert hard({"latency_ratio": 1.0}) == pytest.approx(0.5)
    with pytest.raises(SynoError):
        Reward("nope")
    assert pareto([(1.0, 1.0), (0.5, 0.9), (0.6, 0.8), (2.0, 1.2)]) == [1, 0, 3]


class FailingFlops(FlopsEvaluator):
    """FLOPs, but raises for every candidate whose fingerprint ends in an even hex digit (not for the reference)."""

    calls: list[str] = []

    def measure(self, ctx, op, label, reference):
        if not reference:
            FailingFlops.calls.append(label)
            if int(label[-1], 16) % 2 == 0:
                raise RuntimeError(f"injected failure for {label}")
        return super().measure(ctx, op, label, reference)


def test_failing_candidate_recorded_and_search_goes_on(tmp_path):
    FailingFlops.calls = []
    s = search(SearchConfig(out=str(tmp_path / "s"), strategy="random", budget=16), progress=False,
               evaluators=[FailingFlops()])
    got = rows(tmp_path / "s")
    failed = [r for r in got if r[2] == FAILED]
    assert len(got) == 16 and s.failed == len(failed) > 0 and len(failed) < 16
    for _, fp, _, error, reward, _ in failed:
        assert int(fp[-1], 16) % 2 == 0 and reward == 0.0
        assert f"RuntimeError: injected failure for {fp}" in error and error.startswith("flops: ")
    assert all(int(r[1][-1], 16) % 2 == 1 for r in got if r[2] == OK)


class Repeating(SearchStrategy):
    """Random search that re-proposes, with every new candidate, the one it proposed before: the driver must
    answer those from the store."""

    name = "repeating"

    def __init__(self) -> None:
        self.inner = create_strategy("random")
        self.told: list[str] = []
        self.last: Candidate | None = None

    def initialize(self, ctx: StrategyContext) -> None:
        self.inner.initialize(ctx)

    def propose(self, n: int) -> list[Candidate] | None:
        new = self.inner.propose(1)
        # a twin of the last one: same fingerprint, another path and source
        out = new + ([Candidate(self.last.operator, self.last.fingerprint, (), "twin")] if self.last else [])
        self.last = new[0]
        return out

    def notify(self, results: list[Result]) -> None:
        self.told += [r.fingerprint for r in results]

    def state(self) -> bytes:
        return self.inner.state()

    def restore(self, state: bytes) -> None:
        self.inner.restore(state)


def test_semantic_duplicates_evaluated_once(tmp_path):
    FailingFlops.calls = []

    class Counting(FlopsEvaluator):
        def measure(self, ctx, op, label, reference):
            if not reference:
                FailingFlops.calls.append(label)
            return super().measure(ctx, op, label, reference)

    strategy = Repeating()
    s = search(SearchConfig(out=str(tmp_path / "s"), strategy="random", budget=8), progress=False,
               evaluators=[Counting()], strategy=strategy)
    got = rows(tmp_path / "s")
    assert len(got) == 8 and len(FailingFlops.calls) == 8 == len(set(FailingFlops.calls))
    assert s.duplicates >= 7
    assert len(strategy.told) > len(set(strategy.told))  # the twins were told their stored result


@pytest.mark.parametrize("strategy", ["random", "mcts"])
def test_resume_continues_as_uninterrupted(tmp_path, strategy):
    whole = tmp_path / "whole"
    search(SearchConfig(out=str(whole), strategy=strategy, budget=14, seed=3), progress=False)
    part = tmp_path / "part"
    search(SearchConfig(out=str(part), strategy=strategy, budget=6, seed=3), progress=False)
    s = search(SearchConfig(out=str(part), strategy=strategy, budget=14, seed=3, resume=True), progress=False)
    assert s.new == 8 and s.evaluated == 14
    assert [r[1:] for r in rows(part)] == [r[1:] for r in rows(whole)]
    with pytest.raises(SynoError, match="different settings"):
        search(SearchConfig(out=str(part), strategy=strategy, budget=20, seed=4, resume=True), progress=False)


def test_bad_settings_refused_before_writing(tmp_path):
    out = tmp_path / "x" / "y"
    for cfg, msg in [(SearchConfig(out=str(out)), "--budget"),
                     (SearchConfig(out=str(out), budget=0), "at least 1"),
                     (SearchConfig(out=str(out), budget=3, resume=True), "nothing to resume"),
                     (SearchConfig(out=str(out), budget=3, strategy="nope"), "unknown strategy"),
                     (SearchConfig(out=str(out), budget=3, evaluators=("flops", "nope")), "unknown evaluator"),
                     (SearchConfig(out=str(out), budget=3, model=str(tmp_path / "no.onnx")), "does not exist")]:
        with pytest.raises(SynoError, match=msg):
            search(cfg, progress=False)
        assert not (tmp_path / "x").exists()
    search(SearchConfig(out=str(out), budget=2), progress=False)  # parents created
    with pytest.raises(SynoError, match="already holds a search"):
        search(SearchConfig(out=str(out), budget=2), progress=False)
    assert parse_duration("2h") == 7200 and parse_duration("30m") == 1800 and parse_duration("90") == 90
    with pytest.raises(SynoError):
        parse_duration("soon")
    with pytest.raises(SynoError):
        create_evaluator("nope")


def test_rollouts_native_and_python_reach_finals_below_the_node():
    """A rollout from a node is a path below it to a final the space accepts (native engine and the Python
    sampler's fallback), and the same seed gives the same rollout."""
    from syno_tvm.search.space import SearchSpace, load_search_spec

    space = SearchSpace(load_search_spec("vision", None))
    prefix = space.rollout((), 5)[0][:2]
    node = space.root()
    for step in prefix:
        node = space.apply(node, step)
    native = space.rollout(prefix, 11)
    assert native is not None and native == space.rollout(prefix, 11)
    space._native = False  # what a spec beyond the native engine's limits gets
    python = space.rollout(prefix, 11)
    for tail, op in (native, python):
        end = node
        for step in tail:
            end = space.apply(end, step)
        assert space.final(end) is not None and space.final(end).hash == op.hash


class InvertedFlops(FlopsEvaluator):
    """FLOPs inverted, so every operator cheaper than conv2d looks costlier: the original scores highest."""

    def measure(self, ctx, op, label, reference):
        m = super().measure(ctx, op, label, reference)
        return {**m, "flops": 1.0 / m["flops"]}


def test_the_original_function_is_a_baseline_not_the_best(tmp_path):
    """MCTS's conv2d seed has the top reward here, yet the best (record, live summary, best.json) is another
    operator: a candidate with the original's fingerprint would swap the layer for itself."""
    out = tmp_path / "s"
    s = search(SearchConfig(out=str(out), strategy="mcts", budget=6), progress=False, evaluators=[InvertedFlops()])
    rec = load(out)
    seed = rec.results[0]
    assert seed.candidate.source == "seed:conv2d" and seed.fingerprint == rec.original
    assert seed.reward == max(r.reward for r in rec.results)
    assert rec.best.fingerprint != rec.original and s.best_fingerprint == rec.best.fingerprint
    assert rec.best.reward == max(r.reward for r in rec.results[1:])


def test_a_search_that_saw_only_the_original_has_no_best(tmp_path):
    out = tmp_path / "s"
    search(SearchConfig(out=str(out), strategy="mcts", budget=1), progress=False)
    rec = load(out)
    assert [r.candidate.source for r in rec.results] == ["seed:conv2d"]
    with pytest.raises(SynoError, match="other than the original"):
        rec.best
