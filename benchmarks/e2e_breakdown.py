"""Where a tuned model's batch-1 time goes, kernel by kernel, beside onnxruntime's own per-node profile.

For the tuned original ResNet-18@32 and the model with Syno's Operator 1 swapped into every 3x3 conv, every
PrimFunc of the built module (the database's best schedule of each fused kernel) is compiled alone and timed with
``time_evaluator`` on random inputs of its shapes; calls x time per kernel, summed, against the whole model's VM time
gives the time outside kernels (VM dispatch, allocation, thread-pool wake-ups).  TVM 0.27's Python VM has no
profiler (``VirtualMachine.profile`` is gone), hence per-PrimFunc timing.  FLOPs per kernel are
``estimate_tir_flops`` of the unscheduled PrimFunc.  onnxruntime runs the original model with
``enable_profiling``; its Conv nodes (BatchNorm, ReLU and the residual add fused in, as TVM's kernels are) are
matched to TVM's conv kernels by (weight shape, output shape) and order.  Everything is timed in interleaved rounds
so load from other processes hits every row alike; each figure is the median over rounds.

    python benchmarks/e2e_breakdown.py --width 32 --trials 16 --work-dir /tmp/breakdown_db
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import tvm
from tvm import relax

from syno_tvm.ir.library import named
from syno_tvm.relax.frontend import import_onnx
from syno_tvm.relax.models import resnet18_cifar
from syno_tvm.relax.swap import OperatorSwap, find_layers
from syno_tvm.tune import metaschedule, targets
from syno_tvm.tune.budget import DEFAULT_POLICY, POLICIES
from syno_tvm.tune.measure import input_arrays, machine_facts, measure_onnxruntime


@dataclass
class Kernel:
    """One PrimFunc of the built model: how often main calls it, its FLOPs and its measured time per call."""

    name: str
    calls: int
    flops: int
    shapes: list            # argument shapes of the first call (inputs..., output)
    us: list[float] = field(default_factory=list)     # per round

    @property
    def median_us(self) -> float:
        return float(np.median(self.us))

    def to_json(self) -> dict:
        return {**asdict(self), "median_us": self.median_us}


def call_sequence(mod: tvm.IRModule) -> list[tuple[str, list[tuple[int, ...]]]]:
    """``(PrimFunc name, argument shapes + output shape)`` of every ``call_tir`` in ``main``, in order."""
    calls = []

    def visit(e) -> None:
        if isinstance(e, relax.Call) and isinstance(e.op, tvm.ir.Op) and e.op.name == "relax.call_tir":
            shapes = [tuple(int(s) for s in a.ty.shape) for a in e.args[1].fields]
            shapes.append(tuple(int(s) for s in e.ty.shape))
            calls.append((e.args[0].name_hint, shapes))

    relax.analysis.post_order_visit(mod["main"], visit)
    return calls


def kernel_runner(func: tvm.tirx.PrimFunc, target: tvm.target.Target, shapes, dev):
    """A ``() -> seconds per call`` timer of one scheduled PrimFunc on random arguments of its shapes."""
    lib = tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), target=target)
    rng = np.random.default_rng(0)
    args = [tvm.runtime.tensor(rng.standard_normal(s).astype("float32"), dev) for s in shapes]
    evaluator = lib.mod.time_evaluator("main", dev, number=20, repeat=5)
    return lambda: float(np.median(evaluator(*args).results))


def tvm_kernels(mod: tvm.IRModule) -> tuple[dict[str, Kernel], list]:
    """Kernels of ``mod`` prepared for tuning (the functions the database schedules) and ``main``'s call order."""
    from tvm.s_tir.analysis import estimate_tir_flops

    plain = metaschedule.prepare(mod)
    calls = call_sequence(plain)
    counts = Counter(name for name, _ in calls)
    first = {}
    for name, shapes in calls:
        first.setdefault(name, shapes)
    kernels = {}
    for name, shapes in first.items():
        flops = int(estimate_tir_flops(tvm.IRModule({"main": plain[name]})))
        kernels[name] = Kernel(name, counts[name], flops, [list(s) for s in shapes])
    return kernels, calls


def ort_profile(model: onnx.ModelProto, inputs: list[np.ndarray], threads: int, runs: int = 50) -> dict[str, dict]:
    """onnxruntime's per-node time (median over ``runs``, microseconds) by node, with op, weight and output shape."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        feed = dict(zip([i.name for i in sess.get_inputs()], inputs))
        for _ in range(runs):
            sess.run(None, feed)
        events = json.loads(Path(sess.end_profiling()).read_text())
    per_node: dict[str, dict] = {}
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        a = e["args"]
        node = per_node.setdefault(e["name"][:-len("_kernel_time")], {
            "op": a.get("op_name", "?"), "index": int(a.get("node_index", 0)),
            "inputs": [next(iter(s.values())) for s in a.get("input_type_shape", [])],
            "output": next(iter(a["output_type_shape"][0].values())) if a.get("output_type_shape") else [],
            "us": []})
        node["us"].append(float(e["dur"]))
    for node in per_node.values():
        node["median_us"] = float(np.median(node["us"][len(node["us"]) // 5:]))  # drop the warm-up fifth
        del node["us"]
    return per_node


def conv_of_node(model: onnx.ModelProto) -> dict[str, tuple]:
    """ONNX node name -> (weight shape, output shape) of the Conv it ends a chain from (Conv -> BatchNormalization
    -> Add -> Relu, first inputs upward): onnxruntime names a fused conv after the last node it absorbed."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
              for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    weights = {i.name: tuple(i.dims) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    out = {}
    for node in model.graph.node:
        n = node
        while n is not None and n.op_type != "Conv":
            n = producer.get(n.input[0]) if n.input and n.op_type in ("BatchNormalization", "Add", "Relu") else None
        if n is not None:
            out[node.name] = (weights[n.input[1]], shapes[n.output[0]])
    return out


def match_ort(calls: list, ort_nodes: dict[str, dict], convs: dict[str, tuple]) -> list[tuple[int, str | None]]:
    """For each conv call of TVM's ``main`` (by index), the onnxruntime conv node of the same ONNX conv (same weight
    and output shape, taken in order among equals); other calls get None."""
    pool: dict[tuple, list[str]] = defaultdict(list)
    for name, node in sorted(ort_nodes.items(), key=lambda kv: kv[1]["index"]):
        base = name[:-len("_nchwc")] if name.endswith("_nchwc") else name
        if node["op"] in ("Conv", "FusedConv") and base in convs:
            pool[convs[base]].append(name)
    out = []
    for i, (name, shapes) in enumerate(calls):
        key = (tuple(shapes[1]), tuple(shapes[-1])) if "conv2d" in name and len(shapes) >= 3 else None
        out.append((i, pool[key].pop(0) if key and pool.get(key) else None))
    return out


def variants(mod: tvm.IRModule, names: list[str]) -> list[tuple[str, tvm.IRModule]]:
    """The tuned original and Operator 1 swapped into every 3x3 conv (strided ones as AvgPool + operator)."""
    convs = [d for d in find_layers(mod) if d.kind == "conv2d" and d.shape["kernel"] == 3]
    out = []
    if "original" in names:
        out.append(("tvm tuned original", mod))
    if "syno_operator1" in names:
        out.append(("syno_operator1 (all 3x3)", OperatorSwap({d.layer: named("syno_operator1") for d in convs})(mod)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=64, help="ResNet-18 base width (64 = the real model)")
    ap.add_argument("--trials", type=int, default=16, help="MetaSchedule trials per tuning task")
    ap.add_argument("--work-dir", default="breakdown_tuning", help="tuning database, reused across runs")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds")
    ap.add_argument("--models", default="original,syno_operator1", help="comma-separated subset of the two models")
    ap.add_argument("--budget-policy", choices=POLICIES, default=DEFAULT_POLICY)
    ap.add_argument("--equality", default="structural", help="task equality of the tuning (metaschedule.EQUALITIES), "
                    "or a comma list to tune and time each side by side (then each in WORK_DIR/<equality>)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    facts = machine_facts()
    threads = int(facts["cores"])
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items())
          + f", TVM_NUM_THREADS {os.environ.get('TVM_NUM_THREADS')} (shared machine: compare ratios)")
    target = targets.host()
    print(f"target: {target}; width {args.width}; trials per task: {args.trials}")

    model = resnet18_cifar(batch=1, width=args.width)
    mod = import_onnx(model)
    inputs = input_arrays(model)
    dev = tvm.cpu()
    x = [tvm.runtime.tensor(a, dev) for a in inputs]
    built = {}
    equalities = [e.strip() for e in args.equality.split(",") if e.strip()]
    for equality, (name, variant) in [(e, v) for e in equalities for v in variants(mod, args.models.split(","))]:
        work = args.work_dir if len(equalities) == 1 else os.path.join(args.work_dir, equality)
        if len(equalities) > 1:
            name = f"{name} [{equality}]"
        tuned = metaschedule.tune(variant, target, work, args.trials, policy=args.budget_policy, equality=equality)
        applied = metaschedule.apply_database(variant, target, work)
        kernels, calls = tvm_kernels(variant)
        timers = {k: kernel_runner(applied[k], target, [tuple(s) for s in kern.shapes], dev)
                  for k, kern in kernels.items()}
        vm = relax.VirtualMachine(tvm.compile(applied, target=target), dev)
        built[name] = {"vm": vm, "kernels": kernels, "calls": calls, "timers": timers, "model_ms": [],
                       "tuning": tuned}
        print(f"tuned {name}: {len(tuned.tasks)} tasks, {tuned.new_trials} new trials "
              f"({args.trials * len(tuned.tasks)} budget), {len(kernels)} kernels, {len(calls)} calls", flush=True)

    ort_ms: list[float] = []
    ort_rounds: list[dict[str, dict]] = []
    for _ in range(args.rounds):
        ort_ms.append(measure_onnxruntime(model, inputs, threads, number=10, repeat=20).median_ms)
        ort_rounds.append(ort_profile(model, inputs, threads))
        for b in built.values():
            b["vm"]["main"](*x)
            b["model_ms"].append(1e3 * float(np.median(
                b["vm"].time_evaluator("main", dev, number=10, repeat=20)(*x).results)))
            for k, timer in b["timers"].items():
                b["kernels"][k].us.append(1e6 * timer())
    ort_nodes = {n: {**ort_rounds[0][n], "median_us": float(np.median([r[n]["median_us"] for r in ort_rounds]))}
                 for n in ort_rounds[0]}
    ort_total = float(np.median(ort_ms))
    ort_node_sum_ms = sum(n["median_us"] for n in ort_nodes.values()) / 1e3
    report = {"command": sys.argv, "machine": facts, "target": str(target), "width": args.width,
              "trials_per_task": args.trials, "onnxruntime_ms": ort_total, "onnxruntime_nodes": ort_nodes, "models": {}}

    for name, b in built.items():
        kernels, calls = b["kernels"], b["calls"]
        total = float(np.median(b["model_ms"]))
        in_kernels = sum(k.calls * k.median_us for k in kernels.values()) / 1e3
        print(f"\n== {name}: model {total:.3f} ms (VM time_evaluator), kernels timed alone sum to {in_kernels:.3f} ms, "
              f"outside kernels {total - in_kernels:.3f} ms ({100 * (total - in_kernels) / total:.0f} %); "
              f"onnxruntime original {ort_total:.3f} ms (its nodes sum to {ort_node_sum_ms:.3f} ms)")
        matched = match_ort(calls, ort_nodes, conv_of_node(model)) if name.startswith("tvm tuned original") else []
        print(f"{'kernel':34s} {'calls':>5s} {'us/call':>8s} {'share':>6s} {'MFLOP':>7s} {'GFLOP/s':>8s}"
              + (f" {'ORT node':>24s} {'ORT us':>7s} {'TVM/ORT':>7s}" if matched else ""))
        rows = []
        if matched:
            for i, ort_name in matched:
                k = kernels[calls[i][0]]
                o = ort_nodes[ort_name]["median_us"] if ort_name else None
                rows.append((k, 1, ort_name, o))
        else:
            rows = [(k, k.calls, None, None) for k in sorted(kernels.values(), key=lambda k: -k.calls * k.median_us)]
        for k, calls_shown, ort_name, o in rows:
            t = k.median_us
            ort_cols = ""
            if matched:
                ort_cols = (f" {ort_name[:24]:>24s} {o:7.1f} {t / o:6.2f}x" if o else f" {'-':>24s} {'':7s} {'':7s}")
            print(f"{k.name[:34]:34s} {calls_shown:5d} {t:8.1f} {100 * t * calls_shown / 1e3 / total:5.1f}% "
                  f"{k.flops / 1e6:7.1f} {k.flops / t / 1e3:8.1f}" + ort_cols)
        if matched:
            conv_tvm = sum(kernels[calls[i][0]].median_us for i, n in matched if n) / 1e3
            conv_ort = sum(ort_nodes[n]["median_us"] for _, n in matched if n) / 1e3
            rest_ort = ort_node_sum_ms - conv_ort
            rest_tvm = in_kernels - conv_tvm
            print(f"gap to onnxruntime {total - ort_total:+.3f} ms: convs {conv_tvm - conv_ort:+.3f} ms "
                  f"(TVM {conv_tvm:.3f} vs ORT {conv_ort:.3f}), other kernels {rest_tvm - rest_ort:+.3f} ms "
                  f"(TVM {rest_tvm:.3f} vs ORT {rest_ort:.3f}, ORT's incl. its layout reorders), outside kernels "
                  f"{(total - in_kernels) - (ort_total - ort_node_sum_ms):+.3f} ms "
                  f"(TVM {total - in_kernels:.3f} vs ORT {ort_total - ort_node_sum_ms:.3f})")
            others = sorted((n for n in ort_nodes.values() if n["op"] not in ("Conv", "FusedConv")),
                            key=lambda n: -n["median_us"])
            print("onnxruntime non-conv nodes: " + ", ".join(f"{n['op']} {n['median_us']:.0f} us" for n in others))
        report["models"][name] = {"model_ms": total, "model_ms_rounds": b["model_ms"], "kernels_sum_ms": in_kernels,
                                  "outside_kernels_ms": total - in_kernels, "tuning": b["tuning"].to_json(),
                                  "total_trials_budget": args.trials * len(b["tuning"].tasks),
                                  "kernels": [k.to_json() for k in kernels.values()]}
    print("(kernels timed alone on random inputs of their shapes, warm caches; shared machine: compare ratios)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TVM_NUM_THREADS", str(os.cpu_count()))
    sys.exit(main())
