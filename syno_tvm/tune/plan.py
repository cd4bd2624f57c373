"""Per target, what an optimize run tunes, what it measures, and on which device: decided once, here, so the flow
follows it and the report states it (a latency is meaningless without the device it was taken on).

- this CPU (``llvm``): tuned with MetaSchedule, candidates timed on this CPU (or, with ``--rpc HOST:PORT:KEY``, on
  the tracker's device); latency taken on this CPU (or over RPC with any ``--rpc``), onnxruntime on this CPU.
- ``aarch64``: tuned only through a tracker (``--rpc HOST:PORT:KEY``), else default schedules; latency only over RPC.
- ``cuda``: not tuned yet (dlight's default schedules); latency only where this machine has a GPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import tvm

from .measure import RpcSpec
from .targets import is_aarch64


@dataclass(frozen=True)
class TargetPlan:
    """How one target is handled: ``tune_rpc`` and ``measure`` drive the flow, the sentences go into the report."""

    target: str
    tune: str           # "local" (MetaSchedule on this CPU), "rpc" (MetaSchedule's RPC runner) or "none"
    measure: str        # "local-cpu", "local-cuda", "rpc" or "none"
    tuned: str          # what is tuned, and where candidates are timed
    measured: str       # what latency is taken, and where (or why not)
    device: str         # the device the figures belong to
    tune_rpc: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def _where(spec: RpcSpec) -> str:
    return (f"the device with key '{spec.key}' at the tvm.rpc tracker {spec.host}:{spec.port}" if spec.key else
            f"the tvm.rpc server at {spec.host}:{spec.port}")


def plan(target: tvm.target.Target, rpc: str | None = None, target_name: str | None = None,
         cpu: str = "this machine's CPU") -> TargetPlan:
    """The plan for ``target``; ``rpc`` is ``--rpc`` (validated), ``cpu`` names this machine's CPU for the report."""
    name = target_name or str(target)
    spec = RpcSpec.parse(rpc) if rpc else None
    remote = _where(spec) if spec else None
    if target.kind.name == "cuda":
        gpu = tvm.cuda(0)
        here = f"{gpu.device_name} on this machine" if gpu.exist else None
        return TargetPlan(name, "none", "local-cuda" if here else "none",
                          "not tuned: dlight's default GPU schedules (MetaSchedule for CUDA needs a GPU to time "
                          "candidates; benchmarks/gpu_e2e.py prepares a run on a lent one)",
                          f"the Relax VM's time_evaluator on {here}" if here else
                          "not measured: no CUDA GPU on this machine (compiled and exported only)",
                          here or "none")
    arm = is_aarch64(target)
    tracker = bool(spec and spec.key)
    if arm:
        if tracker:
            tuned = f"MetaSchedule, candidates cross-linked here and timed on {remote} (RPCRunner)"
        else:
            tuned = ("not tuned: default schedules (parallel outer loops); MetaSchedule for aarch64 times its "
                     "candidates on the board: --rpc HOST:PORT:KEY of a tracker")
        measured = (f"the Relax VM's time_evaluator on {remote}" if spec else
                    "not measured: aarch64 library cross-compiled and exported; pass --rpc HOST:PORT[:KEY] of an "
                    "aarch64 device to measure")
        return TargetPlan(name, "rpc" if tracker else "none", "rpc" if spec else "none", tuned, measured,
                          remote or "none", rpc if tracker else None)
    tuned = (f"MetaSchedule, candidates built here and timed on {remote} (RPCRunner)" if tracker else
             f"MetaSchedule, candidates timed on {cpu} (local runner)")
    measured = (f"the Relax VM's time_evaluator on {remote}; onnxruntime on {cpu}" if spec else
                f"the Relax VM's time_evaluator and onnxruntime on {cpu}")
    return TargetPlan(name, "rpc" if tracker else "local", "rpc" if spec else "local-cpu", tuned, measured,
                      remote or cpu, rpc if tracker else None)
