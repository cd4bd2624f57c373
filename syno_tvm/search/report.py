"""``syno-tvm report DIR``: what a search found, written into its directory.

- ``pareto.png``: every evaluated operator as cost ratio (tuned latency, else FLOPs, over the original's) vs
  quality (accuracy ratio, else reward), the Pareto front joined, the original at (1, 1);
- ``report.md``: the reference, the counts, a table of the Pareto operators (formula, ratios, reward, source) and
  the per-layer plan;
- ``pareto/NN.json`` per Pareto operator, with ``NN.dot`` and, where graphviz ``dot`` is installed, ``NN.svg``
  (the picture ``syno-tvm show --dot`` draws);
- ``best.json``: the operator with the highest reward, an operator file ``syno-tvm optimize --operator`` takes;
- ``per_layer.json``: the per-layer plan's map for ``syno-tvm optimize --per-layer`` (:mod:`.per_layer`), and
  ``per_layer_plan.json`` with the plan's per-group numbers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from ..atomic import write_atomically, write_text
from ..errors import SynoError
from ..ir.formula import operator_formula
from .candidate import FAILED, OK, PRUNED
from .per_layer import PerLayerPlan, plan_per_layer
from .results import SearchRecord, load, quality_of
from .reward import cost_ratio


def _plot(record: SearchRecord, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in record.ok if cost_ratio(r.metrics) is not None]
    front = record.pareto
    accuracy = any("accuracy_ratio" in r.metrics for r in ok)
    cost = "FLOPs" if "latency" not in record.reference else \
        "default-build latency" if record.config.get("latency_trials") == 0 else "tuned latency"
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.scatter([cost_ratio(r.metrics) for r in ok], [quality_of(r) for r in ok], s=10, c="0.6",
               label=f"evaluated ({len(ok)})")
    ax.plot([cost_ratio(r.metrics) for r in front], [quality_of(r) for r in front], "o-", c="tab:red",
            label=f"Pareto front ({len(front)})")
    ax.scatter([1.0], [1.0], marker="*", s=160, c="tab:blue", zorder=3, label="original layer")
    ax.set_xscale("log")
    ax.set_xlabel(f"{cost} / original (log)")
    ax.set_ylabel("proxy accuracy / original" if accuracy else "reward")
    ax.set_title(f"search {record.config.get('strategy', '')} on {record.config.get('model') or 'spec layers'}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120), suffix=".png")
    plt.close(fig)


def _pictures(record: SearchRecord, folder: Path, pictures: bool) -> list[tuple[Path, Path | None]]:
    """Per Pareto operator its JSON file and, where possible, its SVG."""
    from ..report.dot import to_dot

    folder.mkdir(exist_ok=True)
    dot = shutil.which("dot") if pictures else None
    out = []
    for k, r in enumerate(record.pareto):
        op = r.candidate.operator
        js = folder / f"{k:02d}.json"
        write_text(js, json.dumps(op.to_json(), indent=1) + "\n")
        svg = None
        if pictures:
            gv = folder / f"{k:02d}.dot"
            write_text(gv, to_dot(op))
            if dot:
                svg = folder / f"{k:02d}.svg"
                write_atomically(svg, lambda tmp: subprocess.run([dot, "-Tsvg", str(gv), "-o", tmp], check=True,
                                                                 capture_output=True), suffix=".svg")
        out.append((js, svg))
    return out


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _markdown(record: SearchRecord, files: list[tuple[Path, Path | None]], plan: PerLayerPlan | None,
              root: Path) -> str:
    res = record.results
    cfg = record.config
    best = record.best
    lines = [f"# Search report: {root}", "",
             f"strategy {cfg.get('strategy')}, evaluators {', '.join(cfg.get('evaluators', []))}, model "
             f"{cfg.get('model') or '(spec layers)'}, spec {cfg.get('spec')}, target {cfg.get('target')}, seed "
             f"{cfg.get('seed')}", "",
             f"{len(res)} evaluated: {sum(r.status == OK for r in res)} ok, {sum(r.status == FAILED for r in res)} "
             f"failed, {sum(r.status == PRUNED for r in res)} pruned.  Best reward {best.reward:.4f} "
             f"({best.fingerprint}, written to best.json).", "",
             "Reference (the original layer): " + "; ".join(
                 f"{ev}: " + ", ".join(f"{k}={v:.4g}" for k, v in m.items() if "_layer" not in k)
                 for ev, m in record.reference.items()), "",
             "![Pareto front](pareto.png)", "",
             "## Pareto front", "",
             "| # | fingerprint | cost ratio | accuracy ratio | reward | source | formula | picture |",
             "|---|---|---|---|---|---|---|---|"]
    for k, (r, (js, svg)) in enumerate(zip(record.pareto, files)):
        pic = f"[svg]({svg.relative_to(root)})" if svg else f"[json]({js.relative_to(root)})"
        formula = operator_formula(r.candidate.operator).replace("|", "\\|")
        lines.append(f"| {k} | {r.fingerprint} | {_fmt(cost_ratio(r.metrics))} | "
                     f"{_fmt(r.metrics.get('accuracy_ratio'))} | {r.reward:.4f} | {r.candidate.source} | "
                     f"`{formula}` | {pic} |")
    failed = [r for r in res if r.status == FAILED]
    if failed:
        lines += ["", f"## Failures ({len(failed)}; first 10)", ""]
        lines += [f"- {r.fingerprint}: {r.error}" for r in failed[:10]]
    if plan is not None:
        lines += ["", "## Per-layer plan (per_layer.json)", "",
                  f"cost ({plan.metric}) {plan.cost_ratio:.3f} x the original's; accuracy estimate "
                  f"{_fmt(plan.accuracy_estimate)} ({plan.note})", "",
                  "| layers | operator | cost ratio there | reward there |", "|---|---|---|---|"]
        for g in plan.groups:
            lines.append(f"| {', '.join(g.layers)} | {g.fingerprint or 'keep original'} | {g.cost_ratio:.3f} | "
                         f"{g.reward:.4f} |")
    return "\n".join(lines) + "\n"


def write_report(directory: "str | Path", pictures: bool = True) -> list[Path]:
    """Write the report files into the search directory; the paths written (the main ones)."""
    root = Path(directory)
    record = load(root)
    if not record.ok:
        raise SynoError(f"the search in {root} has no successfully evaluated operator yet: nothing to report")
    files = _pictures(record, root / "pareto", pictures)
    _plot(record, root / "pareto.png")
    write_text(root / "best.json", json.dumps(record.best.candidate.operator.to_json(), indent=1) + "\n")
    written = [root / "report.md", root / "pareto.png", root / "best.json"]
    plan = plan_per_layer(record) if record.layers else None
    if plan is not None:
        write_text(root / "per_layer.json", json.dumps(plan.choice_map(record), indent=1) + "\n")
        write_text(root / "per_layer_plan.json", json.dumps(plan.to_json(), indent=1) + "\n")
        written.append(root / "per_layer.json")
    write_text(root / "report.md", _markdown(record, files, plan, root))
    return written
