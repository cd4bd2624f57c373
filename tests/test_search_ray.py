"""Candidates evaluated as Ray tasks on a real local Ray with 2 worker CPUs (no mock): the same results as the
in-process runner, computed in other processes."""

from __future__ import annotations

import os

import pytest

from syno_tvm.search.candidate import OK
from syno_tvm.search.driver import SearchConfig, search
from syno_tvm.search.evaluator.flops import FlopsEvaluator
from syno_tvm.search.results import load

ray = pytest.importorskip("ray")


class PidFlops(FlopsEvaluator):
    """FLOPs plus the id of the process that measured (to see where the task ran)."""

    def measure(self, ctx, op, label, reference):
        return {**super().measure(ctx, op, label, reference), "pid": float(os.getpid())}


@pytest.fixture(scope="module")
def local_ray():
    """Ray with 2 CPUs whose workers can import this module (for PidFlops) and this checkout's syno_tvm."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.pathsep.join(p for p in (os.path.dirname(here), here, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


def test_ray_two_workers_evaluate_like_local(tmp_path, local_ray):
    base = dict(strategy="mcts", budget=8, seed=2)
    search(SearchConfig(out=str(tmp_path / "ray"), ray="local", workers=2, **base), progress=False,
           evaluators=[PidFlops()])
    search(SearchConfig(out=str(tmp_path / "local"), **base), progress=False)
    on_ray, here = load(tmp_path / "ray").results, load(tmp_path / "local").results
    assert len(on_ray) == 8 and all(r.status == OK for r in on_ray)
    pids = {r.metrics["pid"] for r in on_ray}
    assert os.getpid() not in pids  # measured in Ray workers, not in this process
    by_fp = {r.fingerprint: r for r in here}
    common = [r for r in on_ray if r.fingerprint in by_fp]
    assert common  # the seeds at least
    for r in common:
        assert r.metrics["flops"] == by_fp[r.fingerprint].metrics["flops"]
        assert r.reward == pytest.approx(by_fp[r.fingerprint].reward)
    assert ray.is_initialized()  # the runner left the Ray it did not start running
