"""aarch64 for real: the runner cross-built against the aarch64 wheels' runtime runs exported aarch64 libraries under
qemu-user, and their outputs match the x86 build of the same model on the same inputs.

Needs qemu-aarch64 (apt-get install -y qemu-user), the aarch64 cross toolchain and cmake, and the aarch64 wheels
(downloaded from PyPI once into ~/.cache/syno-tvm, or $SYNO_TVM_CACHE); skipped with the reason otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from syno_tvm.errors import SynoError
from syno_tvm.ir.library import LIBRARY
from syno_tvm.relax.frontend import import_onnx
from syno_tvm.relax.models import small_cnn
from syno_tvm.relax.swap import OperatorSwap
from syno_tvm.tune import arm_runtime, qemu, targets
from syno_tvm.tune.compile import build, export
from syno_tvm.tune.metaschedule import prepare
from syno_tvm.tune.native import build_runner, missing_tools, run_runner

_MISSING = qemu.missing() + missing_tools() + missing_tools(cross_aarch64=True)
pytestmark = pytest.mark.skipif(bool(_MISSING), reason=f"not installed: {', '.join(_MISSING)}")
INPUTS = [((1, 3, 32, 32), "float32")]


@pytest.fixture(scope="module")
def runtime():
    try:
        return arm_runtime.aarch64_runtime(progress=False)
    except SynoError as e:
        pytest.skip(f"no aarch64 TVM runtime: {e}")


@pytest.fixture(scope="module")
def runners(runtime, tmp_path_factory):
    """(x86 runner, aarch64 runner)."""
    host = build_runner(tmp_path_factory.mktemp("native-x86")).executable
    assert host is not None
    return host, arm_runtime.build_runner(runtime, tmp_path_factory.mktemp("native-arm"))


def test_runtime_is_aarch64_and_cached(runtime):
    assert arm_runtime.is_aarch64_elf(runtime.runtime_lib) and arm_runtime.is_aarch64_elf(runtime.ffi_lib)
    assert (runtime.tvm_version, runtime.ffi_version) == arm_runtime.installed_versions()
    # the second call finds the cache and never reaches the network
    assert arm_runtime.aarch64_runtime(download=False) == runtime


def test_missing_wheels_are_one_line_errors(tmp_path):
    with pytest.raises(SynoError, match="holds no aarch64 wheel of apache-tvm=="):
        arm_runtime.aarch64_runtime(wheel_dir=tmp_path, cache_dir=tmp_path / "cache", download=False)


@pytest.mark.parametrize("operator", [None, "syno_operator1"])
def test_aarch64_library_under_qemu_matches_x86(runtime, runners, operator, tmp_path):
    """The original small CNN, and with Syno's Operator 1 (g=2) in the conv it serves (C_in=8; the first has 3)."""
    host_runner, arm_runner = runners
    mod = import_onnx(small_cnn(width=8))
    if operator:
        swap = OperatorSwap(LIBRARY[operator].build(g=2))
        mod = swap(mod)
        assert any(d.action == "swap" for d in swap.decisions)
    mod = prepare(mod)
    x86, arm = targets.host(), targets.aarch64()
    x86_lib = export(build(mod, x86), tmp_path / "x86.so", x86)
    arm_lib = export(build(mod, arm), tmp_path / "arm.so", arm)
    assert arm_runtime.is_aarch64_elf(arm_lib) and not arm_runtime.is_aarch64_elf(x86_lib)

    got = qemu.run_library(arm_runner, arm_lib, INPUTS, runtime, warmup=0, repeat=1, seed=7, threads=2, save=True)
    want = run_runner(host_runner, x86_lib, INPUTS, warmup=0, repeat=1, seed=7, threads=2, save=True)
    np.testing.assert_array_equal(got.inputs[0], want.inputs[0])  # the same seed gives the same inputs on both
    assert got.outputs[0].shape == want.outputs[0].shape == (1, 10)
    assert np.abs(want.outputs[0]).max() > 1e-3  # a real output, not zeros
    np.testing.assert_allclose(got.outputs[0], want.outputs[0], rtol=0, atol=1e-4)


def test_x86_library_is_refused_by_the_aarch64_runtime(runtime, runners, tmp_path):
    """The comparison above can fail: the aarch64 runtime cannot load an x86 library and says so in one line."""
    _, arm_runner = runners
    x86 = targets.host()
    lib = export(build(prepare(import_onnx(small_cnn(width=4))), x86), tmp_path / "x86.so", x86)
    with pytest.raises(SynoError):
        qemu.run_library(arm_runner, lib, INPUTS, runtime, warmup=0, repeat=1)
