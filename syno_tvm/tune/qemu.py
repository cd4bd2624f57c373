"""Run the aarch64 native runner on this x86 machine under user-mode emulation (Debian's ``qemu-user``).

This is how an exported aarch64 library is executed by an aarch64 TVM runtime without a board: the runner, the
runtime libraries (:mod:`.arm_runtime`) and the model's generated Arm code all run as aarch64 instructions, with the
cross toolchain's sysroot (``/usr/aarch64-linux-gnu``, installed with gcc-aarch64-linux-gnu) as the guest's ``/``.
It checks correctness (outputs against the x86 build of the same model), not speed: emulated timings say nothing
about a board's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .arm_runtime import Aarch64Runtime
from .native import RunnerResult, run_runner

QEMU = "qemu-aarch64"
SYSROOT = Path("/usr/aarch64-linux-gnu")


def missing(sysroot: Path = SYSROOT) -> list[str]:
    """What an emulated run needs and this machine lacks (empty when it can run)."""
    out = [] if shutil.which(QEMU) else [f"{QEMU} (apt-get install -y qemu-user)"]
    if not (sysroot / "lib" / "ld-linux-aarch64.so.1").exists():
        out.append(f"the aarch64 sysroot {sysroot} (apt-get install -y gcc-aarch64-linux-gnu)")
    return out


def launcher(runtime: Aarch64Runtime, sysroot: Path = SYSROOT) -> list[str]:
    """The qemu command prefix: the sysroot as the guest's library root, the runtime directory on the guest's
    LD_LIBRARY_PATH (set with ``-E`` so the x86 qemu process itself never sees aarch64 libraries on its path)."""
    return [QEMU, "-L", str(sysroot), "-E", f"LD_LIBRARY_PATH={runtime.lib_dir}"]


def run_library(runner: "str | Path", library: "str | Path", inputs: "list[tuple[tuple[int, ...], str]]",
                runtime: Aarch64Runtime, **kwargs) -> RunnerResult:
    """:func:`.native.run_runner` for an aarch64 runner and library, under qemu (same arguments and result)."""
    return run_runner(runner, library, inputs, launcher=launcher(runtime), **kwargs)
