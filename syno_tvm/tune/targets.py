"""Compilation targets as apache-tvm 0.27 wants them: dicts (the CLI string form is rejected), wrapped in Target.

``host`` asks LLVM for this CPU.  Under virtualization LLVM's guess can lag the features the guest really has, so
when ``/proc/cpuinfo`` lists ``avx512f`` and the guessed CPU model lacks it we pick the first AVX-512 CPU model LLVM
knows for this vendor (a 2x difference in peak FLOP/s rides on that).  We never go beyond what ``/proc/cpuinfo``
lists: these 2-core AMD EPYC guests report family 23 with ``avx2 fma`` and no ``avx512f``, so they get ``znver1``.
"""

from __future__ import annotations

import os
from pathlib import Path

import tvm
from tvm.target import codegen

from ..errors import SynoError

AARCH64_TRIPLE = "aarch64-linux-gnu"
AARCH64_CC = "aarch64-linux-gnu-gcc"
_AVX512_CPUS = {"AMD": ("znver5", "znver4"), "Intel": ("sapphirerapids", "icelake-server", "skylake-avx512")}


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def host_cpu() -> str:
    cpu = codegen.llvm_get_system_cpu()
    if "avx512f" in _cpu_flags() and "avx512f" not in set(codegen.llvm_get_cpu_features(
            tvm.target.Target({"kind": "llvm", "mcpu": cpu}))):
        vendor = "AMD" if "amd" in codegen.llvm_get_system_x86_vendor().lower() else "Intel"
        for candidate in _AVX512_CPUS[vendor]:
            if codegen.llvm_is_valid_cpu(candidate, "x86_64"):
                return candidate
    return cpu


def host(num_cores: int | None = None) -> tvm.target.Target:
    """This machine's LLVM target with its real CPU model and core count."""
    return tvm.target.Target({"kind": "llvm", "mcpu": host_cpu(), "num-cores": num_cores or os.cpu_count() or 1})


def cuda(arch: str = "sm_80") -> tvm.target.Target:
    return tvm.target.Target({"kind": "cuda", "arch": arch}, host={"kind": "llvm"})


def aarch64(mcpu: str = "cortex-a78", num_cores: int = 6) -> tvm.target.Target:
    """A 64-bit Arm CPU (default: Jetson Orin Nano's Cortex-A78), cross-compiled from here."""
    return tvm.target.Target({"kind": "llvm", "mtriple": AARCH64_TRIPLE, "mcpu": mcpu, "mattr": ["+neon"],
                              "num-cores": num_cores})


def is_aarch64(target: tvm.target.Target) -> bool:
    """Whether ``target`` is a 64-bit Arm CPU (cross-compiled from here)."""
    return "aarch64" in str(target.attrs.get("mtriple", ""))


def is_host_cpu(target: tvm.target.Target) -> bool:
    """Whether ``target`` runs on this machine's CPU: the only device MetaSchedule's local runner can tune and time
    here (no CUDA GPU, no board; an aarch64 target is a cross build)."""
    return target.kind.name == "llvm" and not is_aarch64(target)


def by_name(name: str) -> tvm.target.Target:
    """``llvm`` (this host), ``cuda`` / ``cuda:sm_86``, ``aarch64`` / ``aarch64:cortex-a72``."""
    kind, _, arg = name.partition(":")
    if kind in ("llvm", "host", "cpu"):
        return host()
    if kind == "cuda":
        return cuda(arg or "sm_80")
    if kind == "aarch64":
        return aarch64(arg or "cortex-a78")
    raise SynoError(f"unknown target '{name}': use llvm, cuda[:sm_XX] or aarch64[:CPU]")
