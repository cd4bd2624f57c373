"""Build a PrimFunc or Relax module for any target: host, CUDA (default GPU schedules, no GPU needed to generate
code) and aarch64 (cross-compiled and linked with Debian's aarch64-linux-gnu-gcc)."""

from __future__ import annotations

import shutil
from pathlib import Path

import tvm
from tvm import relax

from ..errors import SynoError
from .targets import AARCH64_CC, is_aarch64


def is_gpu(target: tvm.target.Target) -> bool:
    return "gpu" in target.keys


def gpu_schedule(mod: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule:
    """Bind threads with dlight's default GPU rules, as an untuned starting point (MetaSchedule refines it)."""
    from tvm.s_tir import dlight as dl

    with target:
        return dl.ApplyDefaultSchedule(dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.Reduction(),
                                       dl.gpu.GeneralReduction(), dl.gpu.Fallback())(mod)


def build(func_or_mod, target: tvm.target.Target):
    """``tvm.compile`` with default schedules: dlight's for a GPU PrimFunc (a GPU Relax module gets them from
    ``tvm.compile``), :mod:`.default_schedule`'s parallel loops for a CPU Relax module (the untuned aarch64 export
    would otherwise run every kernel on one of the board's cores)."""
    from .default_schedule import build_untuned

    mod = func_or_mod if isinstance(func_or_mod, tvm.IRModule) else tvm.IRModule({"main": func_or_mod})
    relax_mod = any(isinstance(f, relax.Function) for _, f in mod.functions_items())
    if relax_mod and not is_gpu(target):
        return build_untuned(mod, target)
    if is_gpu(target) and not relax_mod:
        mod = gpu_schedule(mod, target)
    return tvm.compile(mod, target=target)


def cuda_source(executable) -> str:
    """The generated CUDA C of a TIR executable."""
    for m in [executable.mod] + list(executable.mod.imports):
        if m.kind in ("cuda", "source") or "cuda" in m.kind:
            return m.inspect_source()
    raise SynoError("this executable holds no CUDA module: build it for a cuda target")


def export(executable, path: "str | Path", target: tvm.target.Target) -> Path:
    """Write a loadable library: a shared object for the host, cross-linked for aarch64 when the cross gcc exists,
    else a .tar of object files (link it on the device)."""
    path = Path(path)
    if is_aarch64(target):
        if shutil.which(AARCH64_CC):
            from tvm.support.cc import cross_compiler

            executable.export_library(str(path), fcompile=cross_compiler(AARCH64_CC))
            return path
        path = path.with_suffix(".tar")
    executable.export_library(str(path))
    return path
