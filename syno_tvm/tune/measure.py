"""Batch-1 latency: a compiled Relax model on this machine or over ``tvm.rpc``, and onnxruntime on the ONNX file.

Every figure is the median of ``repeat`` timings after a warm-up, each timing the mean of ``number`` back-to-back
calls, and carries its spread (min, max, quartiles): these machines are shared and noisy, so a single mean would
hide what a reader needs to judge a ratio.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import tvm
from tvm import relax

from ..errors import SynoError


@dataclass
class Latency:
    """Milliseconds per call: median over repeats, with the spread."""

    median_ms: float
    min_ms: float
    max_ms: float
    p25_ms: float
    p75_ms: float
    repeat: int
    number: int
    where: str

    @classmethod
    def from_seconds(cls, per_call_s: "list[float]", number: int, where: str) -> "Latency":
        ms = np.asarray(per_call_s, dtype=float) * 1e3
        return cls(float(np.median(ms)), float(ms.min()), float(ms.max()), float(np.percentile(ms, 25)),
                   float(np.percentile(ms, 75)), len(ms), number, where)

    def __str__(self) -> str:
        return (f"{self.median_ms:.3f} ms (min {self.min_ms:.3f}, IQR {self.p25_ms:.3f}-{self.p75_ms:.3f}, "
                f"{self.repeat}x{self.number} runs, {self.where})")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RpcSpec:
    """``host:port`` (an RPC server) or ``host:port:key`` (a tracker and the device key to request)."""

    host: str
    port: int
    key: str = ""

    @classmethod
    def parse(cls, text: str) -> "RpcSpec":
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1].isdigit():
            raise SynoError(f"--rpc '{text}' is not host:port (RPC server) or host:port:key (tracker + device key)")
        return cls(parts[0], int(parts[1]), parts[2] if len(parts) == 3 else "")

    def connect(self, timeout_s: int = 60):
        from tvm import rpc

        try:
            if self.key:
                return rpc.connect_tracker(self.host, self.port).request(self.key, session_timeout=timeout_s)
            return rpc.connect(self.host, self.port, session_timeout=timeout_s)
        except Exception as e:  # tvm.rpc raises TVMError/RuntimeError/OSError for a refused or absent server
            raise SynoError(f"cannot reach the RPC {'tracker' if self.key else 'server'} at "
                            f"{self.host}:{self.port}: {str(e).strip().splitlines()[-1][:160]}") from None


def input_arrays(model: onnx.ModelProto, seed: int = 0) -> list[np.ndarray]:
    """Random inputs of the model's (static) input shapes and types: standard normal floats, integers in [0, 10)
    (small enough to be valid token ids or indices for any vocabulary)."""
    init = {i.name for i in model.graph.initializer}
    rng = np.random.default_rng(seed)
    out = []
    for inp in model.graph.input:
        if inp.name in init:
            continue
        dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        if dims and min(dims) <= 0:
            raise SynoError(f"input '{inp.name}' has a dynamic shape {dims}: export the model with static shapes")
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type))
        if np.issubdtype(dtype, np.integer):
            out.append(rng.integers(0, 10, size=dims).astype(dtype))
        else:
            out.append(rng.standard_normal(dims).astype(dtype))
    return out


def _time_vm(vm: relax.VirtualMachine, dev, args, number: int, repeat: int, where: str) -> Latency:
    vm["main"](*args)  # warm-up: first call allocates the memory pools and touches the weights
    evaluator = vm.time_evaluator("main", dev, number=number, repeat=repeat)
    return Latency.from_seconds(list(evaluator(*args).results), number, where)


def measure_local(executable, inputs: list[np.ndarray], number: int = 10, repeat: int = 30, dev=None) -> Latency:
    """Latency of a compiled Relax executable on a device of this machine (default: the CPU)."""
    dev = dev or tvm.cpu()
    vm = relax.VirtualMachine(executable, dev)
    return _time_vm(vm, dev, [tvm.runtime.tensor(a, dev) for a in inputs], number, repeat, f"local {dev}")


def measure_rpc(library: "str | Path", rpc: "RpcSpec | str", inputs: list[np.ndarray], number: int = 10,
                repeat: int = 30) -> Latency:
    """Upload an exported library (``.so`` linked for the remote CPU) and time it there."""
    spec = RpcSpec.parse(rpc) if isinstance(rpc, str) else rpc
    library = Path(library)
    remote = spec.connect()
    remote.upload(str(library))
    dev = remote.cpu()
    vm = relax.VirtualMachine(remote.load_module(library.name), dev)
    where = f"rpc {spec.host}:{spec.port}" + (f" key {spec.key}" if spec.key else "")
    return _time_vm(vm, dev, [tvm.runtime.tensor(a, dev) for a in inputs], number, repeat, where)


def measure_rpc_executable(executable, rpc: "RpcSpec | str", inputs: list[np.ndarray], **kwargs) -> Latency:
    """:func:`measure_rpc` for an executable built for the host CPU (exported to a temporary .so first)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.so"
        executable.export_library(str(path))
        return measure_rpc(path, rpc, inputs, **kwargs)


def measure_onnxruntime(model: onnx.ModelProto, inputs: list[np.ndarray], threads: int, number: int = 10,
                        repeat: int = 30) -> Latency:
    """onnxruntime (CPU provider, all graph optimizations) on the original model: the peer baseline."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    init = {i.name for i in model.graph.initializer}
    feed = dict(zip([i.name for i in model.graph.input if i.name not in init], inputs))
    for _ in range(max(3, number)):
        sess.run(None, feed)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            sess.run(None, feed)
        times.append((time.perf_counter() - start) / number)
    return Latency.from_seconds(times, number, f"onnxruntime {ort.__version__} cpu, {threads} threads")


def machine_facts() -> dict[str, str]:
    """What a reader needs to compare figures across machines: CPU model, cores, library versions."""
    import os
    import platform

    import onnxruntime as ort

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from .targets import host_cpu

    return {"cpu": model, "cores": str(os.cpu_count()), "llvm_mcpu": host_cpu(), "apache_tvm": tvm.__version__,
            "onnxruntime": ort.__version__, "python": platform.python_version()}
