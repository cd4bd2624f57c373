"""Build and drive the C++ runner (``native/runner.cc``): the latency of an exported library measured with the TVM
runtime alone, as it runs on a board with no Python and no compiler.

``build_runner`` configures the top-level CMakeLists.txt against the apache-tvm wheel of this interpreter and
builds it; ``run_runner`` runs it on a library exported by :func:`syno_tvm.tune.compile.export` and parses its
JSON line.  With ``save=True`` the runner writes its random inputs and the outputs as raw bytes, which are read
back here so a caller can feed the same inputs to the Python VM (or onnxruntime) and compare.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SynoError

REPO = Path(__file__).resolve().parents[2]
TOOLCHAIN_AARCH64 = REPO / "native" / "aarch64-toolchain.cmake"
RUNNER_NAME = "syno-runner"


def missing_tools(cross_aarch64: bool = False) -> list[str]:
    """The programs a build needs that are not on PATH (empty when it can be built)."""
    needed = ["cmake", "aarch64-linux-gnu-g++" if cross_aarch64 else "g++"]
    return [tool for tool in needed if shutil.which(tool) is None]


@dataclass
class RunnerBuild:
    """What a build produced: the linked runner, or (cross builds without target runtime libraries) only objects."""

    build_dir: Path
    executable: Path | None
    objects: list[Path]
    log: str


def build_runner(build_dir: "str | Path | None" = None, cross_aarch64: bool = False,
                 runtime_lib: "str | Path | None" = None, ffi_lib: "str | Path | None" = None) -> RunnerBuild:
    """Configure and build the runner with cmake.

    For ``cross_aarch64`` the runner is linked only when ``runtime_lib`` and ``ffi_lib`` name aarch64 builds of
    libtvm_runtime.so and libtvm_ffi.so (the apache-tvm wheel has x86-64 ones only); otherwise only its object
    file is compiled, and ``executable`` is None."""
    missing = missing_tools(cross_aarch64)
    if missing:
        raise SynoError(f"cannot build the native runner: {', '.join(missing)} not installed "
                        "(apt-get install -y cmake g++ g++-aarch64-linux-gnu)")
    build = Path(build_dir or REPO / "build" / ("native-aarch64" if cross_aarch64 else "native"))
    args = ["cmake", "-S", str(REPO), "-B", str(build), f"-DPython3_EXECUTABLE={sys.executable}"]
    if cross_aarch64:
        args.append(f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN_AARCH64}")
    if runtime_lib:
        args.append(f"-DTVM_RUNTIME_LIB={runtime_lib}")
    if ffi_lib:
        args.append(f"-DTVM_FFI_LIB={ffi_lib}")
    log = []
    for cmd in (args, ["cmake", "--build", str(build), "-j2"]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        log.append(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise SynoError(f"native runner build failed at '{' '.join(cmd[:2])}': {tail[0][:300]}")
    executable = build / RUNNER_NAME
    return RunnerBuild(build, executable if executable.is_file() else None,
                       sorted(build.glob("CMakeFiles/syno_runner_objects.dir/**/*.o")), "".join(log))


@dataclass
class RunnerResult:
    """One runner invocation: its JSON report and, when saved, the inputs it fed and the outputs it got."""

    report: dict
    inputs: list[np.ndarray] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return float(self.report["median_ms"])


def _shape_arg(shape: "tuple[int, ...]", dtype: str) -> str:
    return ("x".join(str(int(d)) for d in shape) if len(shape) else "scalar") + f":{dtype}"


def run_runner(runner: "str | Path", library: "str | Path", inputs: "list[tuple[tuple[int, ...], str]]",
               warmup: int = 5, repeat: int = 50, seed: int = 0, threads: int | None = None,
               save: bool = False, timeout: float = 600.0, launcher: "list[str] | None" = None) -> RunnerResult:
    """Run the runner on ``library`` with random inputs of the given (shape, dtype) pairs and parse its report.

    ``save=True`` also returns the exact inputs it used and the outputs of its last run as numpy arrays.
    ``launcher`` goes before the runner on the command line (an emulator: :mod:`.qemu`)."""
    cmd = [*(launcher or []), str(runner), str(library), "--warmup", str(warmup), "--repeat", str(repeat),
           "--seed", str(seed)]
    for shape, dtype in inputs:
        cmd += ["--input", _shape_arg(shape, dtype)]
    if threads:
        cmd += ["--threads", str(threads)]
    with tempfile.TemporaryDirectory(prefix="syno-runner-") as tmp:
        if save:
            cmd += ["--save-dir", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
            raise SynoError(lines[-1][:400])
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        result = RunnerResult(report)
        if save:
            result.inputs = [np.fromfile(Path(tmp) / f"input{i}.bin", dtype=dtype).reshape(shape)
                             for i, (shape, dtype) in enumerate(inputs)]
            result.outputs = [np.fromfile(Path(tmp) / f"output{i}.bin", dtype=out["dtype"]).reshape(out["shape"])
                              for i, out in enumerate(report["outputs"])]
    return result
