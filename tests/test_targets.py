"""Code generation for every target this machine can reach: host, CUDA (source and PTX without a GPU), aarch64
(cross-linked ELF), and the RPC round trip on loopback."""

import shutil

import numpy as np
import pytest
import tvm

from syno_tvm.ir.library import LIBRARY
from syno_tvm.ir.reference import evaluate
from syno_tvm.lower.te_forward import forward_primfunc
from syno_tvm.tune import compile as C
from syno_tvm.tune import targets

OPS = ["conv2d", "syno_operator1", "stacked_conv"]


def _case(name):
    e = LIBRARY[name]
    op = e.build()
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(-1, 1, s).astype("float32") for k, s in op.shapes(e.example).items() if k != "Y"]
    return op, e.example, arrays


def _run(lib, op, binding, arrays, dev=None):
    dev = dev or tvm.cpu()
    out = tvm.runtime.tensor(np.zeros(op.shapes(binding)["Y"], "float32"), dev)
    lib(*[tvm.runtime.tensor(a, dev) for a in arrays], out)
    return out.numpy()


def test_host_target_matches_reference():
    op, b, arrays = _case("syno_operator1")
    lib = C.build(forward_primfunc(op, b), targets.host())
    ref = evaluate(op, b, arrays)
    assert np.abs(_run(lib, op, b, arrays) - ref).max() / np.abs(ref).max() < 1e-4


def test_host_cpu_never_exceeds_cpuinfo():
    from tvm.target import codegen

    features = codegen.llvm_get_cpu_features(targets.host())
    assert ("avx512f" in features) <= ("avx512f" in targets._cpu_flags())


@pytest.mark.parametrize("name", OPS)
def test_cuda_source_is_generated(name):
    op, b, _ = _case(name)
    src = C.cuda_source(C.build(forward_primfunc(op, b), targets.cuda("sm_80")))
    assert 'extern "C" __global__' in src and "threadIdx.x" in src


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_cuda_source_compiles_to_ptx_with_nvcc():
    from tvm.support import nvcc

    op, b, _ = _case("syno_operator1")
    target = targets.cuda("sm_80")
    src = C.cuda_source(C.build(forward_primfunc(op, b), target))
    with target:
        ptx = nvcc.compile_cuda(src, target_format="ptx", arch="sm_80", compiler="nvcc")
    assert b".entry" in bytes(ptx) and b"sm_80" in bytes(ptx)


@pytest.mark.skipif(tvm.cuda(0).exist is False, reason="no CUDA GPU on this machine")
def test_cuda_runs_on_gpu():
    op, b, arrays = _case("syno_operator1")
    arch = "sm_" + tvm.cuda(0).compute_version.replace(".", "")
    lib = C.build(forward_primfunc(op, b), targets.cuda(arch))
    ref = evaluate(op, b, arrays)
    assert np.abs(_run(lib, op, b, arrays, tvm.cuda(0)) - ref).max() / np.abs(ref).max() < 1e-4


def test_aarch64_library_is_an_arm_elf(tmp_path):
    op, b, _ = _case("conv2d")
    target = targets.aarch64()
    path = C.export(C.build(forward_primfunc(op, b), target), tmp_path / "conv2d_arm.so", target)
    if shutil.which(targets.AARCH64_CC):
        header = path.read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64
    else:
        assert path.suffix == ".tar" and path.stat().st_size > 0


def test_rpc_round_trip_on_loopback(tmp_path):
    from tvm import rpc

    op, b, arrays = _case("conv2d")
    target = targets.host()
    lib_path = C.export(C.build(forward_primfunc(op, b), target), tmp_path / "conv2d.so", target)
    server = rpc.Server(host="127.0.0.1", port=9091, port_end=9199)
    try:
        remote = rpc.connect("127.0.0.1", server.port)
        remote.upload(str(lib_path))
        lib = remote.load_module(lib_path.name)
        got = _run(lib["main"], op, b, arrays, remote.cpu())
    finally:
        server.terminate()
    ref = evaluate(op, b, arrays)
    assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-4


def test_is_host_cpu_only_for_this_machines_llvm():
    assert targets.is_host_cpu(targets.by_name("llvm"))
    assert not targets.is_host_cpu(targets.by_name("aarch64")) and targets.is_aarch64(targets.by_name("aarch64"))
    assert not targets.is_host_cpu(targets.by_name("cuda")) and not targets.is_aarch64(targets.by_name("cuda"))
