"""``report.json`` (everything, machine-readable) and ``report.md`` (the same for a reader) of one optimize run.

The JSON is the source: the Markdown is rendered from it alone, so the two never disagree.
"""

from __future__ import annotations

import json
from pathlib import Path


def _ms(entry: dict | None) -> float | None:
    lat = (entry or {}).get("latency") if entry and "latency" in entry else entry
    return lat["median_ms"] if lat else None


def totals(report: dict) -> dict[str, int]:
    """FLOPs and parameters of the conv/matmul layers before and after the swap."""
    layers = report["layers"]
    return {
        "flops_before": sum(d["flops_before"] for d in layers),
        "flops_after": sum(d["flops_after"] if d["action"] == "swap" else d["flops_before"] for d in layers),
        "params_before": sum(d["params_before"] for d in layers),
        "params_after": sum(d["params_after"] if d["action"] == "swap" else d["params_before"] for d in layers),
    }


def headline(report: dict) -> list[str]:
    """The few lines a user wants first: what was swapped, the latencies and their ratios."""
    t = totals(report)
    swapped = sum(d["action"] == "swap" for d in report["layers"])
    lines = search_lines(report.get("search"))
    lines += [f"{swapped}/{len(report['layers'])} layers swapped; layer FLOPs {t['flops_before'] / 1e6:.1f}M -> "
             f"{t['flops_after'] / 1e6:.1f}M, params {t['params_before'] / 1e6:.3f}M -> {t['params_after'] / 1e6:.3f}M"]
    orig, new, ort = _ms(report["original"]), _ms(report["swapped"]), _ms(report.get("onnxruntime"))
    if new is None:
        lines.append(f"latency not measured: {report['swapped'].get('not_measured', '')}")
        return lines
    parts = [f"swapped {new:.3f} ms"]
    if orig:
        parts.append(f"tuned original {orig:.3f} ms ({orig / new:.2f}x)")
    if ort:
        parts.append(f"onnxruntime {ort:.3f} ms ({ort / new:.2f}x)")
    lines.append("latency (median): " + ", ".join(parts) + f"; {report['trials_per_task']} trials per task")
    acc = report.get("accuracy")
    if acc:
        lines.append(f"accuracy (proxy: {acc['recipe']['epochs']} epochs on {acc['recipe']['limit']} images of "
                     f"{acc['data']}): original {100 * acc['original']['val_acc']:.2f} %, swapped "
                     f"{100 * acc['swapped']['val_acc']:.2f} % ({acc['delta_pp']:+.2f} pp, one seed)")
    return lines


def search_lines(found: dict | None) -> list[str]:
    """What the search stage found, in one or two lines (none without a search)."""
    if not found:
        return []
    m = found["metrics"]
    ratios = ", ".join(f"{name} {m[key]:.2f}x" for name, key in (("FLOPs", "flops_ratio"),
                       ("default-build latency", "latency_ratio"), ("quick-proxy accuracy", "accuracy_ratio"))
                       if key in m)
    return [f"searched {found['evaluated']} operators ({found['ok']} passed every evaluator, {found['pruned']} "
            f"pruned, {found['failed']} failed) in {found['seconds']:.0f} s; best {found['fingerprint']}: "
            f"{found['formula']}", f"best operator vs the original layer: {ratios}"]


def _lat_row(name: str, entry: dict | None, base: float | None) -> str:
    lat = (entry or {}).get("latency") if entry and "median_ms" not in entry else entry
    if not lat:
        why = (entry or {}).get("not_measured", "not measured")
        return f"| {name} | - | - | - | {why} |"
    ratio = f"{base / lat['median_ms']:.2f}x" if base else "-"
    return (f"| {name} | {lat['median_ms']:.3f} | {lat['p25_ms']:.3f} - {lat['p75_ms']:.3f} "
            f"(min {lat['min_ms']:.3f}) | {ratio} | {lat['repeat']}x{lat['number']} runs, {lat['where']} |")


def _tuning_line(name: str, entry: dict) -> str:
    tuning = entry.get("tuning")
    if not tuning:
        return f"- {name}: {entry.get('note', 'not tuned')}"
    reused = sum(t["reused"] for t in tuning["tasks"])
    return (f"- {name}: {len(tuning['tasks'])} tasks, {tuning['new_trials']} new trials "
            f"({tuning['failed']} failed candidates), {reused} tasks reused from the database, "
            f"{tuning['seconds']:.0f} s")


def _plan_lines(target_plan: dict | None) -> list[str]:
    """What was tuned and measured, and on which device (the target's plan, :mod:`syno_tvm.tune.plan`)."""
    if not target_plan:
        return []
    return [f"- tuned: {target_plan['tuned']}", f"- measured: {target_plan['measured']}",
            f"- device: {target_plan['device']}"]


def render(report: dict) -> str:
    """report.md from report.json."""
    t = totals(report)
    base = _ms(report["original"])
    out = [f"# syno-tvm optimize: {report['model']}", "",
           f"- operator choice: `{report['choice']}`",
           f"- target: `{report['target']}`",
           *_plan_lines(report.get("plan")),
           f"- trials per tuning task: {report['trials_per_task']} (original and swapped alike)",
           "- machine: " + ", ".join(f"{k} {v}" for k, v in report["machine"].items()),
           f"- run time: {report['seconds']} s", "", *[f"**{line}**" for line in headline(report)], "",
           "## Latency (batch 1)", "",
           "| model | median ms | IQR (min) | speedup vs tuned original | how |", "| --- | --- | --- | --- | --- |",
           _lat_row("original, TVM tuned", report["original"], base),
           _lat_row("swapped, TVM tuned", report["swapped"], base),
           _lat_row("original, onnxruntime", report.get("onnxruntime") or
                    {"not_measured": "onnxruntime runs on this host only"}, base), ""]
    if report.get("max_abs_output_diff") is not None:
        out += [f"Max |output difference| swapped vs original: {report['max_abs_output_diff']:.3g} "
                f"({report.get('output_diff_note', '')}).", ""]
    elif report.get("output_diff_note"):
        out += [f"Output difference swapped vs original: {report['output_diff_note']}.", ""]
    found = report.get("search")
    if found:
        out += ["## Searched operator", "",
                f"MCTS over spec `{found['spec']}`, {found['evaluated']} evaluations (FLOPs, then the latency of TVM's "
                "default build of each layer binding, then the quick accuracy proxy; an operator costlier than the "
                f"original in FLOPs or that latency is not trained). The search's own report: [{found['report']}]"
                f"({found['report']}); the operator file: `{found['operator_file']}`.", "",
                f"`{found['formula']}`", "", f"![Pareto front of the search]({found['pareto_png']})", ""]
        if found.get("picture"):
            out += [f"![the best operator's primitive graph]({found['picture']})", ""]
    acc = report.get("accuracy")
    if acc:
        r = acc["recipe"]
        out += ["## Accuracy (proxy)", "",
                f"Both models trained inside TVM with one recipe: {r['epochs']} epochs on {r['limit']} images of "
                f"{acc['data']} (batch {r['batch']}, {r['optimizer']}, lr {r['lr']}, seed {r['seed']}, width "
                f"{r['width']}); a ranking of operators on this proxy, not a final accuracy.", "",
                "| model | validation accuracy | validation loss | train images/s |", "| --- | --- | --- | --- |"]
        for name in ("original", "swapped"):
            a = acc[name]
            out.append(f"| {name} | {100 * a['val_acc']:.2f} % | {a['val_loss']:.4f} | {a['images_per_s']:.0f} |")
        out += ["", f"Delta: {acc['delta_pp']:+.2f} percentage points.", ""]
    out += ["## Tuning", "", _tuning_line("original", report["original"]),
            _tuning_line("swapped", report["swapped"]), "",
            "## Layers", "",
            f"Conv/matmul layers: FLOPs {t['flops_before']:,} -> {t['flops_after']:,}, "
            f"params {t['params_before']:,} -> {t['params_after']:,}.", "",
            "| layer | kind | shape | action | operator | FLOPs before | FLOPs after | params before | params after "
            "| reason |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for d in report["layers"]:
        shape = ", ".join(f"{k}={v}" for k, v in d["shape"].items())
        swapped = d["action"] == "swap"
        action = "swap (same function)" if swapped and d.get("exact") else d["action"]
        out.append(f"| {d['layer']} | {d['kind']} | {shape} | {action} | {d['operator'] or '-'} | "
                   f"{d['flops_before']:,} | {d['flops_after'] if swapped else d['flops_before']:,} | "
                   f"{d['params_before']:,} | {d['params_after'] if swapped else d['params_before']:,} | "
                   f"{d['reason'] or '-'} |")
    return "\n".join(out) + "\n"


def write_report(directory: "str | Path", report: dict) -> None:
    """Write report.json and report.md into ``directory``."""
    directory = Path(directory)
    (directory / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (directory / "report.md").write_text(render(report))
