"""MetaSchedule's builder and runner for a device reached through a ``tvm.rpc`` tracker (an aarch64 board, or this
machine standing in for one).

Candidates are built here and exported as shared objects, cross-linked with aarch64-linux-gnu-gcc for an aarch64
target, so the board needs the TVM runtime (the aarch64 apache-tvm wheel's ``rpc_server``) and no compiler:
MetaSchedule's default export is a .tar of object files, which the server would have to link itself.  The runner is
MetaSchedule's ``RPCRunner``: it asks the tracker for a server with the key, uploads each candidate, and times it
there with the same evaluator settings as the local runner, so local and remote records mean the same thing.
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable

import tvm
from tvm.s_tir import meta_schedule as ms

from ..errors import SynoError
from .measure import RpcSpec
from .targets import AARCH64_CC, is_aarch64

SESSION_TIMEOUT_S = 60  # one candidate's upload + timing on a small board; MetaSchedule's default (10 s) is tight


def export_host(mod: tvm.runtime.Module) -> str:
    """A candidate as a shared object linked by this machine's compiler (the RPC server is this CPU)."""
    path = os.path.join(tempfile.mkdtemp(prefix="syno-ms-"), "candidate.so")
    mod.export_library(path)
    return path


def export_aarch64(mod: tvm.runtime.Module) -> str:
    """A candidate as an aarch64 shared object (cross-linked here: the board needs no compiler)."""
    from tvm.support.cc import cross_compiler

    path = os.path.join(tempfile.mkdtemp(prefix="syno-ms-"), "candidate.so")
    mod.export_library(path, fcompile=cross_compiler(AARCH64_CC))
    return path


def rpc_config(rpc: "RpcSpec | str") -> ms.runner.RPCConfig:
    """The tracker of ``host:port:key``; a bare server (``host:port``) cannot serve MetaSchedule's runner."""
    spec = RpcSpec.parse(rpc) if isinstance(rpc, str) else rpc
    if not spec.key:
        raise SynoError(f"tuning over RPC needs a tracker and a device key: --rpc {spec.host}:{spec.port}:KEY "
                        "(a bare RPC server serves measuring only)")
    return ms.runner.RPCConfig(tracker_host=spec.host, tracker_port=spec.port, tracker_key=spec.key,
                               session_timeout_sec=SESSION_TIMEOUT_S)


def rpc_runner(rpc: "RpcSpec | str") -> ms.runner.RPCRunner:
    """MetaSchedule's RPC runner on the tracker's devices of the key; fails in one line when none is registered."""
    config = rpc_config(rpc)
    try:
        config.count_num_servers(allow_missing=False)
    except (ValueError, OSError, RuntimeError) as e:  # tvm.rpc raises all three
        raise SynoError(f"no RPC server with key '{config.tracker_key}' at the tracker {config.tracker_host}:"
                        f"{config.tracker_port}: {str(e).strip().splitlines()[0][:160]}") from None
    return ms.runner.RPCRunner(rpc_config=config)


def rpc_builder(target: tvm.target.Target, initializer: Callable[[], None] | None = None) -> ms.builder.LocalBuilder:
    """A local builder whose artifacts load on the remote device of ``target``."""
    return ms.builder.LocalBuilder(f_export=export_aarch64 if is_aarch64(target) else export_host,
                                   initializer=initializer)
