"""``syno-tvm``: one thin entry point.  It parses, calls the modules, prints; user errors become one line + exit 2."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .atomic import write_text
from .errors import SynoError
from .ir.library import LIBRARY
from .ir.load import bound, load_operator


def cmd_list(args: argparse.Namespace) -> int:
    for name, entry in LIBRARY.items():
        op = entry.build()
        doc = (entry.build.__doc__ or "").strip().splitlines()[0]
        print(f"{name:18s} {len(op.weights)} weight(s)  {doc}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .train.loop import Config, train

    cfg = Config(model=args.model, operator=args.operator, width=args.width, batch=args.batch, epochs=args.epochs,
                 lr=args.lr, optimizer=args.optimizer, weight_decay=args.weight_decay, schedule=args.schedule,
                 data=args.data, limit=args.limit, augment=not args.no_augment, seed=args.seed, threads=args.threads,
                 tune_trials=args.tune_trials)
    _, history = train(cfg, args.out, resume=args.resume)
    last = history.last
    print(f"val accuracy {last['val_acc']:.4f}  val loss {last['val_loss']:.4f}  "
          f"{last['images_per_s']:.1f} train images/s  -> {args.out}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from .ir.formula import operator_formula, render
    from .lower.order import plan

    op, example = load_operator(args.operator)
    binding = bound(op, example, args.bind or "")
    print(f"{op.name or 'operator'}  hash {op.hash}")
    print("  " + operator_formula(op))
    sym = {"X": op.input, **{f"W{t}": w for t, w in enumerate(op.weights, start=1)}, "Y": op.output}
    print("tensors: " + "  ".join(f"{k}[{', '.join(str(op.sizes[d]) for d in dims)}]" for k, dims in sym.items()))
    if op.coefficients:
        print("coefficients: " + ", ".join(f"{k}={v}" for k, v in op.coefficients))
    full = op.binding(binding)
    shown = {k: v for k, v in full.items() if k in op.variables()}
    print("binding: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    shapes = op.shapes(binding)
    print("shapes: " + "  ".join(f"{k}{list(v)}" for k, v in shapes.items()))
    order = plan(op, binding)
    print(f"params {op.params(binding)}, FLOPs {order.flops} (naive order {order.naive_flops}, "
          f"{order.naive_flops / order.flops:.2f}x more)")
    print(f"TE ({len(order.stages)} stage{'s' if len(order.stages) > 1 else ''}):")
    names = ["X"] + [f"W{t}" for t in range(1, len(op.weights) + 1)] + [f"Z{k}" for k in range(len(order.stages))]
    for k, st in enumerate(order.stages):
        result = "Y" if k == len(order.stages) - 1 else f"Z{k}"
        factors = [(names[f], order.factor_dims(op, f)) for f in st.factors]
        prims = {i: op.prims[i] for i in st.prims}
        print(f"  {render(op, result, st.dims, st.reduce, factors, prims)}   [{st.flops} FLOPs]")
    if args.tir:
        from .lower.te_forward import forward_primfunc

        print(forward_primfunc(op, binding).script())
    if args.json:
        write_text(args.json, json.dumps(op.to_json(), indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.dot:
        from .report.dot import to_dot

        write_text(args.dot, to_dot(op))
        print(f"wrote {args.dot}")
    if args.verify:
        from .lower.verify import verify
        from .tune.targets import host

        report = verify(op, binding, seed=args.seed, target=host(1))   # this CPU's code, which LLVM may miscompile
        for line in report.lines(op):
            print(line)
        return 0 if report.ok else 1
    return 0


def cmd_optimize(args: argparse.Namespace) -> int:
    from .optimize import OptimizeConfig, optimize
    from .report.markdown import headline, read_report

    if (args.model is None) == (args.model_option is None):
        raise SynoError("give the model once: syno-tvm optimize MODEL ... or syno-tvm optimize --model MODEL ...")
    config = OptimizeConfig(model=args.model or args.model_option, out=args.out, operator=args.operator,
                            per_layer=args.per_layer, target=args.target, trials=args.trials, rpc=args.rpc, runs=args.runs, width=args.width,
                            accuracy=args.accuracy, budget_policy=args.budget_policy, search=args.search,
                            seed=args.seed)
    out = optimize(config)
    report = read_report(out)
    for line in headline(report):
        print(line)
    print(f"wrote {out}/ (report.md, report.json, {report.swapped.library or 'no library'}, tuning/)")
    return 0


def cmd_synthesize(args: argparse.Namespace) -> int:
    from .synth.generate import synthesize
    from .synth.spec import layers_from_model, load_spec

    spec = load_spec(args.spec)
    if args.model:
        spec = spec.with_layers(layers_from_model(spec, args.model))
    n = synthesize(spec, args.count, args.seed, args.out, progress=not args.quiet, order=args.order)
    print(f"wrote {n} operators to {args.out} (spec {spec.name}, {len(spec.layers)} layer bindings)")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from .search.driver import SearchConfig, parse_duration, search
    from .search.reward import Reward

    config = SearchConfig(out=args.out, spec=args.spec, model=args.model, strategy=args.strategy,
                          evaluators=tuple(e.strip() for e in args.evaluator.split(",") if e.strip()),
                          budget=args.budget, time=parse_duration(args.time) if args.time else None,
                          target=args.target, seed=args.seed, resume=args.resume, ray=args.ray, workers=args.workers,
                          reward=Reward(args.reward, args.reward_target, args.reward_weight), latency_trials=args.trials,
                          accuracy_recipe=args.recipe, max_cost_ratio=args.max_cost_ratio)
    summary = search(config, progress=not args.quiet)
    print(f"{summary.evaluated} evaluated ({summary.new} this run, {summary.failed} failed, {summary.pruned} pruned, "
          f"{summary.duplicates} duplicates answered from the store), best reward {summary.best_reward:.4f}, "
          f"Pareto {summary.pareto_size}; stopped: {summary.stopped} -> {args.out}/search.sqlite")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .predict.model import predict

    op, example = load_operator(args.operator)
    result = predict(op, bound(op, example, args.bind or ""), args.data)
    for line in result.lines():
        print(line)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .search.report import write_report

    written = write_report(args.dir, pictures=not args.no_pictures)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _search_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``syno-tvm search`` (names shared with ``optimize`` where they mean the same)."""
    from .optimize import DEFAULT_TRIALS

    p.add_argument("--model", required=True, help="an ONNX file (static input shapes), or builtin:resnet18-cifar / "
                   "builtin:small-cnn: the layers the operators must serve and the latency/FLOPs are summed over")
    p.add_argument("--spec", default="vision", help="vision, transformer or a JSON spec file")
    p.add_argument("--strategy", choices=["mcts", "random"], default="mcts")
    p.add_argument("--evaluator", default="flops", help="flops, predicted, latency, accuracy or a comma list, cheapest "
                   "first (a cascade: the later ones run only on candidates the earlier ones did not prune); predicted "
                   "is the tuned latency predicted from the default build's time by the model fitted on "
                   "benchmarks/data/latency")
    stop = p.add_argument_group("when to stop (one or both)")
    stop.add_argument("--budget", type=int, help="evaluations in all (failed ones included; a resume counts on)")
    stop.add_argument("--time", help="wall time of this run: 2h, 30m, 90s or seconds")
    p.add_argument("--target", default="llvm", help="llvm (this CPU) or a TVM target string (latency evaluator)")
    p.add_argument("--trials", type=int, default=DEFAULT_TRIALS, help="MetaSchedule trials per tuning task of the "
                   "latency evaluator, the same for the original operator; 0 times TVM's untuned default build")
    p.add_argument("--recipe", choices=["proxy", "quick", "tiny"], default="proxy", help="accuracy evaluator's "
                   "training recipe: proxy (train/proxy.py, minutes), quick (1 epoch on 1500 images, seconds) or tiny "
                   "(seconds: smoke tests)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created with its parents); "
                   "search.sqlite holds every result as it comes")
    p.add_argument("--resume", action="store_true", help="continue the search in --out (same settings)")
    p.add_argument("--ray", metavar="ADDRESS|local", help="evaluate candidates as Ray tasks: local starts Ray "
                   "here with --workers CPUs, else the address of a running cluster")
    p.add_argument("--workers", type=int, default=1, help="candidates evaluated at once (1: in this process)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reward", choices=["soft", "hard", "weighted"], default="soft", help="how latency (or FLOPs) "
                   "enters the reward (syno_tvm/search/reward.py): soft MnasNet constraint, hard target, weighted")
    p.add_argument("--reward-target", type=float, default=1.0, help="cost ratio to the original the reward aims at")
    p.add_argument("--reward-weight", type=float, default=0.5, help="cost exponent of --reward weighted")
    p.add_argument("--max-cost-ratio", type=float, help="prune candidates whose FLOPs/latency ratio to the "
                   "original exceeds this before the later evaluators run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _optimize_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``syno-tvm optimize`` (python/optimize_onnx.py runs the same subcommand)."""
    from .optimize import DEFAULT_TRIALS
    from .tune.budget import DEFAULT_POLICY, POLICIES

    p.add_argument("model", nargs="?", help="an ONNX file (static input shapes), or builtin:resnet18-cifar / "
                   "builtin:small-cnn (or give it as --model, as the other subcommands take it)")
    p.add_argument("--model", dest="model_option", metavar="MODEL", help="the model, given as an option instead")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--operator", help="one operator (library name or JSON file) for every layer it can serve")
    how.add_argument("--per-layer", metavar="MAP.json", help='a JSON map layer -> operator or null (keep), e.g. '
                     '{"conv2d_1": "syno_operator1", "conv2d_2": null}; layer names come from the report')
    how.add_argument("--search", type=int, metavar="N", help="search N operators for this model first (MCTS; FLOPs, "
                     "default-build latency and a quick accuracy proxy; --out/search, resumed by a rerun) and swap "
                     "the best")
    p.add_argument("--seed", type=int, default=0, help="seed of the search (with --search)")
    p.add_argument("--target", default="llvm", help="llvm (this CPU), cuda[:sm_XX] or aarch64[:CPU]")
    p.add_argument("--trials", type=int, default=DEFAULT_TRIALS, help="MetaSchedule trials per tuning task, the "
                   "same for the original and the swapped model")
    p.add_argument("--budget-policy", choices=POLICIES, default=DEFAULT_POLICY, help="how the budget of trials x "
                   "tasks is spread: uniform (the same trials per task) or share (a floor of one round per task, "
                   "the rest where MetaSchedule's gradient scheduler gains most)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (replaced as a whole at the end)")
    p.add_argument("--rpc", metavar="HOST:PORT[:KEY]", help="a tvm.rpc tracker + device key (tune "
                   "and measure there) or a bare server (measure there)")
    p.add_argument("--runs", type=int, default=30, help="timed repeats (each 10 calls) per latency")
    p.add_argument("--width", type=int, help="channel width of a built-in model (default: its full width, 64 for "
                   "resnet18-cifar)")
    p.add_argument("--accuracy", metavar="DATA", help="also train the original and the swapped model with the "
                   "accuracy proxy recipe (2 epochs on 3000 images, syno_tvm/train/proxy.py) on DATA (fashion-mnist, "
                   "digits or an .npz with images and labels) and report both validation accuracies")


# One example per subcommand, shown at the end of its --help (the README's main job for optimize).
EXAMPLES = {
    "show": "syno-tvm show syno_operator1 --bind C_in=8,C_out=16,H=8,W=8 --verify",
    "optimize": "syno-tvm optimize builtin:resnet18-cifar --width 4 --search 12 --trials 4 --accuracy fashion-mnist "
                "--out out/main",
    "search": "syno-tvm search --model builtin:resnet18-cifar --strategy mcts --evaluator flops,latency --trials 0 "
              "--budget 50 --out out/search",
    "report": "syno-tvm report out/search",
    "list": "syno-tvm list",
    "predict": "syno-tvm predict syno_operator1 --bind C_in=64,C_out=64,H=32,W=32",
    "synthesize": "syno-tvm synthesize --spec vision --count 100 --out ops.jsonl",
    "train": "syno-tvm train --model builtin:resnet18-cifar --width 4 --operator conv2d_grouped:g=2 --epochs 2 "
             "--limit 3000 --out out/train",
}


def _sub(sub, name: str, help: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".",
                          epilog=f"example:\n  {EXAMPLES[name]}", formatter_class=argparse.RawDescriptionHelpFormatter)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="syno-tvm", description="Synthesize neural operators from dimension primitives "
                                "and deploy them with Apache TVM.",
                                epilog="example:\n  " + EXAMPLES["optimize"],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = _sub(sub, "show", "print an operator's formula, sizes and TE; optionally verify it numerically")
    s.add_argument("operator", help=f"a named operator ({', '.join(LIBRARY)}) or an operator JSON file")
    s.add_argument("--bind", help="variable values, e.g. C_in=8,C_out=16,H=8,W=8 (coefficients like k=5 too)")
    s.add_argument("--verify", action="store_true", help="compile forward and backward for this CPU and compare "
                   "with the numpy reference and finite differences; exit 1 above tolerance")
    s.add_argument("--dot", metavar="FILE", help="write a graphviz picture of the primitive graph")
    s.add_argument("--json", metavar="FILE", help="write the operator's JSON form")
    s.add_argument("--tir", action="store_true", help="print the forward PrimFunc (TVMScript)")
    s.add_argument("--seed", type=int, default=0, help="seed of the random test tensors")
    s.set_defaults(fn=cmd_show)
    o = _sub(sub, "optimize", "swap operators into an ONNX model, tune with MetaSchedule, build, measure "
                       "against the tuned original and onnxruntime; writes library, database and report")
    _optimize_arguments(o)
    o.set_defaults(fn=cmd_optimize)
    se = _sub(sub, "search", "search the synthesis space (MCTS or random) for operators that are cheaper "
                        "than the original layer at (almost) its accuracy; every result goes to OUT/search.sqlite")
    _search_arguments(se)
    se.set_defaults(fn=cmd_search)
    rp = _sub(sub, "report", "Pareto plot, formulas, pictures, table, best.json and per_layer.json of a "
                        "search directory")
    rp.add_argument("dir", help="a syno-tvm search --out directory")
    rp.add_argument("--no-pictures", action="store_true", help="no graphviz pictures of the Pareto operators")
    rp.set_defaults(fn=cmd_report)
    pr = _sub(sub, "predict", "predict an operator's tuned latency at a binding on this CPU, with the measured rows "
              "the prediction leans on")
    pr.add_argument("operator", help="a named operator or an operator JSON file")
    pr.add_argument("--bind", help="variable values, e.g. C_in=64,C_out=64,H=32,W=32 (default: the example binding)")
    pr.add_argument("--data", help="latency dataset directory (default: benchmarks/data/latency)")
    pr.set_defaults(fn=cmd_predict)
    ls = _sub(sub, "list", "list the named operators")
    ls.set_defaults(fn=cmd_list)
    sy = _sub(sub, "synthesize", "write N distinct valid operators of a spec's space as JSON lines")
    sy.add_argument("--spec", default="vision", help="vision, transformer or a JSON spec file")
    sy.add_argument("--model", help="an ONNX model (or builtin:NAME) whose layers the operators must serve "
                    "(replaces the spec's layer bindings)")
    sy.add_argument("--count", type=int, default=10, help="how many semantically distinct operators to write")
    sy.add_argument("--seed", type=int, default=0, help="seed of the random descent")
    sy.add_argument("--order", choices=["random", "dfs"], default="random",
                    help="random descents (diverse; default) or exhaustive depth-first enumeration "
                    "(neighbouring operators first; for enumerating a small space completely)")
    sy.add_argument("--out", default="ops.jsonl", help="output file, one JSON operator record per line")
    sy.add_argument("--quiet", action="store_true", help="no progress bar")
    sy.set_defaults(fn=cmd_synthesize)
    t = _sub(sub, "train", "train a model (optionally with an operator swapped in) inside TVM")
    t.add_argument("--model", default="builtin:resnet18-cifar", help="builtin:resnet18-cifar, builtin:small-cnn, "
                   "builtin:vit-tiny or an .onnx classifier (its batch dimension is set to --batch)")
    t.add_argument("--operator", help="swap this operator (named or JSON file) into every eligible layer")
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--out", required=True, help="directory for checkpoint.npz, weights.npz, trained.onnx, history.json")
    t.add_argument("--data", default="fashion-mnist", help="fashion-mnist (Debian dataset-fashion-mnist), digits, "
                   "or an .npz with 'images' and 'labels'")
    t.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.npz (same settings)")
    t.add_argument("--width", type=int, default=8, help="channel width of a built-in model (vit-tiny: embedding 4 x width)")
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=0.05)
    t.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    t.add_argument("--weight-decay", type=float, help="default: 5e-4 for sgd, 0 for adam")
    t.add_argument("--schedule", choices=["cosine", "step", "constant"], default="cosine")
    t.add_argument("--limit", type=int, help="train/validate on a fixed random subset of this many images")
    t.add_argument("--no-augment", action="store_true", help="no random crop / flip")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--tune-trials", type=int, default=0, metavar="N",
                   help="tune every kernel of the training step with N MetaSchedule trials (database in OUT/tuning, "
                   "reused); 0 builds TVM's untuned defaults")
    t.set_defaults(fn=cmd_train)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except SynoError as e:
        print(f"syno-tvm: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
