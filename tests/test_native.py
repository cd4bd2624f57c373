"""The C++ runner: built with cmake against the wheel's runtime, it runs an exported model, reports a sane timing,
and computes what the Python VM computes for the same inputs; the aarch64 cross build compiles Arm objects."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import tvm
from tvm import relax

from syno_tvm.errors import SynoError
from syno_tvm.relax.frontend import import_onnx
from syno_tvm.tune.compile import export
from syno_tvm.tune.native import build_runner, missing_tools, run_runner

_HOST_MISSING = missing_tools()
needs_host_tools = pytest.mark.skipif(bool(_HOST_MISSING), reason=f"{_HOST_MISSING} not installed: "
                                      "apt-get install -y cmake g++ builds the native runner")
_ARM_MISSING = missing_tools(cross_aarch64=True)


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    if _HOST_MISSING:
        pytest.skip(f"{_HOST_MISSING} not installed: apt-get install -y cmake g++ builds the native runner")
    build = build_runner(tmp_path_factory.mktemp("native-build"))
    assert build.executable is not None, build.log
    return build.executable


@pytest.fixture(scope="module")
def small_cnn(tmp_path_factory):
    """The small CNN built for this host, exported as a shared library, and its Python VM."""
    target = tvm.target.Target("llvm")
    executable = tvm.compile(import_onnx("builtin:small-cnn"), target=target)
    library = export(executable, tmp_path_factory.mktemp("lib") / "small_cnn.so", target)
    return library, relax.VirtualMachine(executable, tvm.cpu())


@needs_host_tools
def test_runner_times_and_matches_python_vm(runner, small_cnn):
    library, vm = small_cnn
    result = run_runner(runner, library, [((1, 3, 32, 32), "float32")], warmup=2, repeat=15, seed=3, save=True)
    r = result.report
    assert r["repeat"] == 15 and r["warmup"] == 2
    assert 0 < r["min_ms"] <= r["median_ms"] <= r["max_ms"] < 10_000
    assert r["std_ms"] >= 0 and r["min_ms"] <= r["mean_ms"] <= r["max_ms"]
    assert [o["shape"] for o in r["outputs"]] == [[1, 10]]

    (x,) = result.inputs
    assert x.shape == (1, 3, 32, 32) and -1 <= x.min() < x.max() < 1
    expected = vm["main"](tvm.runtime.tensor(x)).numpy()
    np.testing.assert_allclose(result.outputs[0], expected, rtol=1e-5, atol=1e-6)
    assert r["outputs"][0]["sum"] == pytest.approx(float(expected.sum()), rel=1e-4, abs=1e-5)

    # The seed decides the inputs: the same seed gives the same output, another seed a different one.
    again = run_runner(runner, library, [((1, 3, 32, 32), "float32")], warmup=0, repeat=1, seed=3, save=True)
    other = run_runner(runner, library, [((1, 3, 32, 32), "float32")], warmup=0, repeat=1, seed=4, save=True)
    np.testing.assert_array_equal(again.outputs[0], result.outputs[0])
    assert not np.allclose(other.outputs[0], result.outputs[0])


@needs_host_tools
def test_runner_errors_are_one_line(runner, small_cnn, tmp_path):
    library, _ = small_cnn
    not_a_library = tmp_path / "x.so"
    not_a_library.write_text("not ELF")
    with pytest.raises(SynoError):
        run_runner(runner, not_a_library, [((1, 3, 32, 32), "float32")], repeat=1)
    proc = subprocess.run([str(runner), str(library), "--input", "1x3x32x32", "--func", "nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "syno-runner: the executable has no function 'nope'"]
    proc = subprocess.run([str(runner), str(library), "--input", "1x3xZ"], capture_output=True, text=True)
    assert proc.returncode == 2 and "bad input shape" in proc.stderr


@pytest.mark.skipif(bool(_ARM_MISSING), reason=f"{_ARM_MISSING} not installed: apt-get install -y cmake "
                    "g++-aarch64-linux-gnu cross-builds the runner")
def test_aarch64_cross_build_compiles_arm_objects_but_cannot_link_x86_runtime(tmp_path):
    build = build_runner(tmp_path / "arm", cross_aarch64=True)
    # The wheel's libtvm_runtime.so / libtvm_ffi.so are x86-64: the runner is compiled for Arm, not linked.
    assert build.executable is None
    assert "NOT linked for aarch64" in build.log
    (obj,) = build.objects
    assert obj.read_bytes()[18:20] == b"\xb7\x00"  # ELF e_machine EM_AARCH64
