"""``report.json`` (everything, machine-readable) and ``report.md`` (the same for a reader) of one optimize run.

Both come from one :class:`~syno_tvm.report.results.OptimizeReport`: the JSON is its ``to_json`` and the Markdown is
rendered from the same object, so the two never disagree.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import write_text
from ..search.model_search import ModelSearch
from ..tune.measure import Latency
from .results import ModelRun, OptimizeReport


def headline(report: OptimizeReport) -> list[str]:
    """The few lines a user wants first: what was searched and swapped, the latencies and their ratios, accuracy."""
    t = report.totals
    lines = search_lines(report.search)
    lines += [f"{report.swapped_layers}/{len(report.layers)} layers swapped; layer FLOPs {t.flops_before / 1e6:.1f}M "
              f"-> {t.flops_after / 1e6:.1f}M, params {t.params_before / 1e6:.3f}M -> {t.params_after / 1e6:.3f}M"]
    orig, new = report.original.median_ms, report.swapped.median_ms
    ort = report.onnxruntime.median_ms if report.onnxruntime else None
    if new is None:
        lines.append(f"latency not measured: {report.swapped.not_measured}")
        return lines
    parts = [f"swapped {new:.3f} ms"]
    if orig:
        parts.append(f"tuned original {orig:.3f} ms ({orig / new:.2f}x)")
    if ort:
        parts.append(f"onnxruntime {ort:.3f} ms ({ort / new:.2f}x)")
    lines.append("latency (median): " + ", ".join(parts) + f"; {report.trials_per_task} trials per task")
    acc = report.accuracy
    if acc:
        lines.append(f"accuracy (proxy: {acc.recipe['epochs']} epochs on {acc.recipe['limit']} images of "
                     f"{acc.data}): original {100 * acc.original.val_acc:.2f} %, swapped "
                     f"{100 * acc.swapped.val_acc:.2f} % ({acc.delta_pp:+.2f} pp, one seed)")
    return lines


def search_lines(found: ModelSearch | None) -> list[str]:
    """What the search stage found, in one or two lines (none without a search)."""
    if not found:
        return []
    m = found.metrics
    ratios = ", ".join(f"{name} {m[key]:.2f}x" for name, key in (("FLOPs", "flops_ratio"),
                       ("default-build latency", "latency_ratio"), ("predicted tuned latency", "predicted_ratio"),
                       ("quick-proxy accuracy", "accuracy_ratio"))
                       if key in m)
    which = "chosen" if found.finalists else "best"
    lines = [f"searched {found.evaluated} operators ({found.ok} passed every evaluator, {found.pruned} "
             f"pruned, {found.failed} failed) in {found.seconds:.0f} s; {which} {found.fingerprint}: "
             f"{found.formula}", f"{which} operator vs the original layer: {ratios}"]
    if found.finalists:
        lines.append(f"the search's best {len(found.finalists)} trained with the final recipe (accuracy ratio, "
                     "reward): " + ", ".join(f"{f.fingerprint} {f.accuracy_ratio:.2f}x {f.reward:.3f}"
                                             for f in found.finalists))
    return lines


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _finalist_rows(found: ModelSearch) -> list[str]:
    if not found.finalists:
        return []
    rows = ["The search's best operators by reward, each trained with the final recipe (the accuracy section's) "
            "on every layer it serves; the highest reward under that accuracy is swapped in:", "",
            "| fingerprint | cost ratio | quick-proxy accuracy ratio | search reward | final accuracy ratio | "
            "reward | formula |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for i, f in enumerate(found.finalists):
        rows.append(f"| {f.fingerprint}{' (chosen)' if i == 0 else ''} | {_num(f.cost_ratio)} | "
                    f"{_num(f.search_accuracy_ratio)} | {f.search_reward:.3f} | {f.accuracy_ratio:.3f} | "
                    f"{f.reward:.3f} | `{f.formula}` |")
    return rows + [""]


def _lat_row(name: str, lat: Latency | None, why: str, base: float | None) -> str:
    if not lat:
        return f"| {name} | - | - | - | {why or 'not measured'} |"
    ratio = f"{base / lat.median_ms:.2f}x" if base else "-"
    return (f"| {name} | {lat.median_ms:.3f} | {lat.p25_ms:.3f} - {lat.p75_ms:.3f} "
            f"(min {lat.min_ms:.3f}) | {ratio} | {lat.repeat}x{lat.number} runs, {lat.where} |")


def _tuning_line(run: ModelRun) -> str:
    tuning = run.tuning
    if not tuning:
        return f"- {run.name}: {run.note or 'not tuned'}"
    reused = sum(t.reused for t in tuning.tasks)
    return (f"- {run.name}: {len(tuning.tasks)} tasks, budget {tuning.budget_trials} trials ({tuning.policy} policy), "
            f"{tuning.new_trials} new trials ({tuning.failed} failed candidates), {reused} tasks reused from the "
            f"database, {tuning.seconds:.0f} s")


def render(report: OptimizeReport) -> str:
    """report.md: the same facts as report.json, for a reader."""
    t = report.totals
    base = report.original.median_ms
    plan = report.plan
    out = [f"# syno-tvm optimize: {report.model}", "",
           f"- operator choice: `{report.choice}`",
           f"- target: `{report.target}`",
           f"- tuned: {plan.tuned}", f"- measured: {plan.measured}", f"- device: {plan.device}",
           f"- trials per tuning task: {report.trials_per_task} (original and swapped alike)",
           "- machine: " + ", ".join(f"{k} {v}" for k, v in report.machine.items()),
           f"- run time: {report.seconds} s", "", *[f"**{line}**" for line in headline(report)], "",
           "## Latency (batch 1)", "",
           "| model | median ms | IQR (min) | speedup vs tuned original | how |", "| --- | --- | --- | --- | --- |",
           _lat_row("original, TVM tuned", report.original.latency, report.original.not_measured, base),
           _lat_row("swapped, TVM tuned", report.swapped.latency, report.swapped.not_measured, base),
           _lat_row("original, onnxruntime", report.onnxruntime, "onnxruntime runs on this host only", base), ""]
    if report.max_abs_output_diff is not None:
        out += [f"Max |output difference| swapped vs original: {report.max_abs_output_diff:.3g} "
                f"({report.output_diff_note}).", ""]
    elif report.output_diff_note:
        out += [f"Output difference swapped vs original: {report.output_diff_note}.", ""]
    found = report.search
    if found:
        out += ["## Searched operator", "",
                f"MCTS over spec `{found.spec}`, {found.evaluated} evaluations (FLOPs, then the tuned latency of "
                "each layer binding predicted from its default build, then the quick accuracy proxy; an operator "
                "more than 5 % costlier than the original in FLOPs or that latency is not trained; an operator "
                f"computing the original function is a baseline, not a find). The search's own report: [{found.report}]"
                f"({found.report}); the operator file: `{found.operator_file}`.", "",
                f"`{found.formula}`", "", *_finalist_rows(found),
                f"![Pareto front of the search]({found.pareto_png})", ""]
        if found.picture:
            out += [f"![the {'chosen' if found.finalists else 'best'} operator's primitive graph]({found.picture})",
                    ""]
    acc = report.accuracy
    if acc:
        r = acc.recipe
        out += ["## Accuracy (proxy)", "",
                f"Both models trained inside TVM with one recipe: {r['epochs']} epochs on {r['limit']} images of "
                f"{acc.data} (batch {r['batch']}, {r['optimizer']}, lr {r['lr']}, seed {r['seed']}, width "
                f"{r['width']}); a ranking of operators on this proxy, not a final accuracy.", "",
                "| model | validation accuracy | validation loss | train images/s |", "| --- | --- | --- | --- |"]
        for name, a in (("original", acc.original), ("swapped", acc.swapped)):
            out.append(f"| {name} | {100 * a.val_acc:.2f} % | {a.val_loss:.4f} | {a.images_per_s:.0f} |")
        out += ["", f"Delta: {acc.delta_pp:+.2f} percentage points.", ""]
    out += ["## Tuning", "", _tuning_line(report.original), _tuning_line(report.swapped), "",
            "## Layers", "",
            f"Conv/matmul layers: FLOPs {t.flops_before:,} -> {t.flops_after:,}, "
            f"params {t.params_before:,} -> {t.params_after:,}.", "",
            "| layer | kind | shape | action | operator | FLOPs before | FLOPs after | params before | params after "
            "| reason |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for d in report.layers:
        shape = ", ".join(f"{k}={v}" for k, v in d.shape.items())
        swapped = d.action == "swap"
        action = "swap (same function)" if swapped and d.exact else d.action
        out.append(f"| {d.layer} | {d.kind} | {shape} | {action} | {d.operator or '-'} | "
                   f"{d.flops_before:,} | {d.flops_after if swapped else d.flops_before:,} | "
                   f"{d.params_before:,} | {d.params_after if swapped else d.params_before:,} | "
                   f"{d.reason or '-'} |")
    return "\n".join(out) + "\n"


def write_report(directory: "str | Path", report: OptimizeReport) -> None:
    """Write report.json and report.md into ``directory``."""
    directory = Path(directory)
    write_text(directory / "report.json", json.dumps(report.to_json(), indent=1) + "\n")
    write_text(directory / "report.md", render(report))


def read_report(directory: "str | Path") -> OptimizeReport:
    """The report an optimize run wrote into ``directory``."""
    return OptimizeReport.from_json(json.loads((Path(directory) / "report.json").read_text()))
