"""Make the latency dataset with the project's own tooling: random finals of the built-in specs and the named
library, each lowered at real layer bindings, timed untuned (default schedule) and MetaSchedule-tuned at a fixed
small budget, on two code-generation targets of this CPU.

Why batches: one MetaSchedule run over a Relax module that calls a dozen operators shares the builder and runner
process pools and the cost model's start-up over all of them; tuning each alone spent most of its time starting
pools.  The tuned time of each (operator, binding) is the database's best measured time of its workload, the same
number MetaSchedule ranks candidates by, so every record is measured by one runner in one way.

Why two CPU targets: the same core with AVX-512 code generation (this CPU's ``-mcpu``) and with AVX2 code
(``-mcpu=haswell``), one thread each.  Both run here without another device, differ in vector width (so kernels
rank differently), and one thread keeps the numbers steadier on a machine shared with other work.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..ir.graph import Operator
from ..ir.library import LIBRARY, named
from .dataset import Dataset, Record

# layer bindings (names from the models they come from): three ResNet-18@32 stages, three transformer QKV sizes
VISION_BINDINGS = {
    "resnet18_64x32": {"N": 1, "C_in": 64, "C_out": 64, "H": 32, "W": 32},
    "resnet18_128x16": {"N": 1, "C_in": 128, "C_out": 128, "H": 16, "W": 16},
    "resnet18_256x8": {"N": 1, "C_in": 256, "C_out": 256, "H": 8, "W": 8},
}
TRANSFORMER_BINDINGS = {
    "qkv_96x16": {"N": 1, "seq": 16, "H_in": 96},
    "qkv_192x64": {"N": 1, "seq": 64, "H_in": 192},
    "qkv_384x128": {"N": 1, "seq": 128, "H_in": 384},
}
BATCH = 12           # (operator, binding) pairs tuned in one MetaSchedule run
UNTUNED_REPEAT = 20  # timed calls of the default schedule (cheap: microseconds to milliseconds each)


@dataclass(frozen=True)
class Target:
    """A named code-generation target of this CPU (the name keys the records, with the machine beside them)."""

    name: str
    mcpu: str
    threads: int = 1

    def tvm(self):
        import tvm

        return tvm.target.Target({"kind": "llvm", "mcpu": self.mcpu, "num-cores": self.threads})


def host_target() -> Target:
    """This CPU's own code generation on one thread (``<mcpu>-1t``): the target the latency model prefers."""
    from ..tune.targets import host_cpu

    cpu = host_cpu()
    return Target(f"{cpu}-1t", cpu)


def default_targets() -> list[Target]:
    """This CPU's own code generation and AVX2 code generation, one thread each."""
    return [host_target(), Target("haswell-1t", "haswell")]


def operators(spec_name: str, count: int, seed: int) -> Iterator[tuple[Operator, str]]:
    """``count`` distinct random finals of a built-in spec (the native sampler, seeded), then the library operators
    whose variables the spec's bindings give."""
    from ..synth.sampler import create
    from ..synth.space import Space
    from ..synth.spec import load_spec

    spec = load_spec(spec_name)
    space = Space(spec)
    rng = np.random.default_rng(seed)
    sampler = create("auto", space, int(rng.integers(1 << 62)))  # the stream the dataset's operators came from
    seen: set[str] = set()
    misses = 0
    while len(seen) < count and misses < 50 * count:
        op = sampler.random_final(rng).final.operator
        if op.hash in seen:
            misses += 1
            continue
        seen.add(op.hash)
        yield op, f"{spec_name}:random:seed{seed}"
    bindings = VISION_BINDINGS if spec_name == "vision" else TRANSFORMER_BINDINGS
    for name in LIBRARY:
        op = named(name)
        if op.hash not in seen and _binds(op, next(iter(bindings.values())), spec):
            seen.add(op.hash)
            yield op, f"library:{name}"


def _binds(op: Operator, primaries: dict[str, int], spec) -> bool:
    try:
        op.shapes(spec.reference_binding(spec.variables.binding(primaries)))
        return True
    except Exception:  # a library operator over other variables (linear on a vision layer): not this spec's
        return False


def binding_for(op: Operator, spec_name: str, primaries: dict[str, int]) -> dict[str, int]:
    """The full binding (coefficients and reference variables included) of a spec layer."""
    from ..synth.spec import load_spec

    spec = load_spec(spec_name)
    return spec.reference_binding(spec.variables.binding(primaries))


def time_untuned(op: Operator, binding: dict[str, int], target) -> float:
    """Microseconds of the default-schedule kernel (TVM's llvm build, no MetaSchedule)."""
    import tvm

    from ..lower.te_forward import forward_primfunc

    lib = tvm.compile(forward_primfunc(op, binding), target=target).mod
    rng = np.random.default_rng(0)
    shapes = op.shapes(binding)
    args = [tvm.runtime.tensor(rng.standard_normal(s).astype("float32")) for s in shapes.values()]
    ev = lib.time_evaluator(lib.entry_name, tvm.cpu(), number=1, repeat=UNTUNED_REPEAT, min_repeat_ms=5)
    return float(np.median(ev(*args).results)) * 1e6


def _module(pairs: list[tuple[Operator, str, dict[str, int]]]):
    """One Relax function calling every pair's forward kernel (what MetaSchedule extracts the tasks from)."""
    import tvm
    from tvm import relax

    from ..lower.te_forward import forward

    bb = relax.BlockBuilder()
    params, calls = [], []
    for i, (op, _, b) in enumerate(pairs):
        shapes = op.shapes(b)
        params.append([relax.Var(f"p{i}_{n}", relax.TensorType(s, "float32")) for n, s in shapes.items() if n != "Y"])
    with bb.function("main", [p for ps in params for p in ps]):
        with bb.dataflow():
            for i, ((op, _, b), ps) in enumerate(zip(pairs, params)):
                build, _ = forward(op, b)
                calls.append(bb.emit(bb.call_te(build, *ps, primfunc_name_hint=f"k{i}")))
            out = bb.emit_output(relax.Tuple(calls))
        bb.emit_func_output(out)
    return bb.get()


def _tuned_us(op: Operator, binding: dict[str, int], target, work: Path) -> float | None:
    """The database's best time of the pair's workload, found by extracting the task of the pair alone."""
    from tvm.s_tir import meta_schedule as ms

    from ..tune.metaschedule import open_database, prepare

    task = ms.relax_integration.extract_tasks(prepare(_module([(op, "", binding)])), target)[0]
    db = open_database(work)
    mod = task.dispatched[0]
    if not db.has_workload(mod):
        return None
    top = db.get_top_k(db.commit_workload(mod), 1)
    if not top or not top[0].run_secs:
        return None
    return 1e6 * float(np.mean([float(s) for s in top[0].run_secs]))


def collect(root: "str | Path", ops: Iterable[tuple[Operator, str, str]], targets: list[Target], trials: int,
            progress: bool = True) -> Dataset:
    """Measure every (operator, binding, target) not yet in the dataset at ``root``; ``ops`` yields (operator,
    source, spec name).  Records are appended batch by batch, so an interrupted run loses at most one batch."""
    from tqdm import tqdm

    from ..tune.measure import machine_facts
    from ..tune.metaschedule import tune

    ds = Dataset.open(root)
    facts = machine_facts()
    machine = {"cpu": facts["cpu"], "llvm_mcpu": facts["llvm_mcpu"]}
    pending: list[tuple[Operator, str, dict[str, int], Target]] = []
    done = ds.keys
    for op, source, spec_name in ops:
        ds.add_operator(op, source)
        bindings = VISION_BINDINGS if spec_name == "vision" else TRANSFORMER_BINDINGS
        for bname, primaries in bindings.items():
            for t in targets:
                if (op.hash, bname, t.name, trials) not in done:
                    pending.append((op, bname, binding_for(op, spec_name, primaries), t))
    bar = tqdm(total=len(pending), desc=f"latency dataset ({trials} trials)", unit="pair", disable=not progress)
    for t in targets:
        mine = [(op, bname, b) for op, bname, b, tt in pending if tt is t]
        for start in range(0, len(mine), BATCH):
            batch = mine[start:start + BATCH]
            tvm_target = t.tvm()
            began = time.time()
            # the 1-minute load average when the batch starts: timings taken on a busy machine can be told apart
            load = f"{os.getloadavg()[0]:.1f}"
            untuned: dict[int, float | str] = {}
            ok = []
            for i, (op, _, b) in enumerate(batch):
                try:
                    untuned[i] = time_untuned(op, b, tvm_target)
                    ok.append(i)
                except Exception as e:  # a lowering or build failure is data: recorded, the rest go on
                    untuned[i] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}"
            with tempfile.TemporaryDirectory(prefix="syno-latency-") as work:
                error = ""
                if ok:
                    try:
                        tune(_module([batch[i] for i in ok]), tvm_target, work, trials, progress=False)
                    except Exception as e:  # one failing batch must not end the collection
                        error = f"tuning failed: {type(e).__name__}: {str(e).strip()[:200]}"
                seconds = (time.time() - began) / len(batch)
                for i, (op, bname, b) in enumerate(batch):
                    u = untuned[i]
                    tuned = _tuned_us(op, b, tvm_target, Path(work)) if i in ok and not error else None
                    ds.add_record(Record(
                        op.hash, bname, b, t.name, trials, _flops(op, b),
                        untuned_us=u if isinstance(u, float) else None, tuned_us=tuned,
                        error=u if isinstance(u, str) else (error or ("" if tuned else "no tuned schedule")),
                        seconds=round(seconds, 2), machine={**machine, "load": load}))
                    bar.update(1)
    bar.close()
    return ds


def _flops(op: Operator, binding: dict[str, int]) -> int:
    from ..lower.order import plan

    return int(plan(op, binding).flops)
