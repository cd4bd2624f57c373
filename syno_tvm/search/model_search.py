"""A short search for one model: the stage ``syno-tvm optimize --search N`` runs before it swaps, tunes and trains.

Why a stage of its own: ``syno-tvm search`` asks the user for a spec, evaluators and a reward; a user who brings a
model and a budget wants the best operator for *that* model.  This stage picks what the search needs from the model:

- the spec by the model's layers: ``vision`` when it has 3x3 convs, else ``transformer`` when it has matmuls, with
  the group coefficient scaled to a built-in model's width (Syno's g=32 is meant at width 64, so width 4 gets g=2);
- the evaluators, cheapest first: FLOPs, then the *predicted tuned* latency of every layer binding (TVM's default
  build timed on this machine, about a second per candidate, then the latency predictor fitted on the committed
  dataset; tuning is the optimize run's job), then (vision) the ``quick`` accuracy proxy, 1 epoch of the built-in
  ResNet-18 at width 4 on 1500 images (seconds).  Predicted rather than default-build latency, because the default
  build ranks operators unlike tuning does: on 2026-12-08 (Rocket Lake) an operator at 0.45x the original's
  default-build latency ran 0.96x as fast once both models were tuned (predicted 1.18x), another at 0.05x ran 0.36x
  (predicted 0.36x), and the original's own function scored 0.54x against itself (predicted 1.01x);
- a candidate is pruned before training when its FLOPs or its predicted latency exceed the original's, so the
  budget goes to operators that can make the model faster;
- the best is the highest reward among operators that do not compute the original layer's function (MCTS's conv2d
  seed scores high, as accurate as the original by definition, and swapping it in would change nothing);
- given a final-accuracy function (optimize's final training recipe), the few best are confirmed with it
  (:mod:`.finalists`) and the best under that accuracy is chosen (``chosen.json``), since the quick proxy can pass
  an operator that then does not learn.

Everything lives in one directory (``model.onnx``, ``spec.json``, the search database and its report), so a rerun
after a kill resumes the search where it stopped (a different model there is refused).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..atomic import write_atomically, write_text
from ..errors import SynoError
from ..ir.formula import operator_formula
from ..ir.graph import Operator
from ..synth.spec import BUILTIN as SPECS
from .candidate import FAILED, PRUNED
from .database import DB_FILE
from .driver import SearchConfig, search
from .evaluator import create as create_evaluator
from .evaluator.accuracy import SYNO_WIDTH
from .finalists import Finalist, confirm, finalists
from .report import write_report
from .results import best_result, load

ACCURACY_RECIPE = "quick"
COST_EVALUATOR = "predicted"   # the tuned latency the predictor expects (see the module docstring)
# FLOPs and predicted latency at most the original's, or no training; 5 % above it because the predicted latency
# starts from a measured time: the original's own function (MCTS's seed) measured 0.99x and 1.0002x of itself in
# two runs, and pruning it in one run and not the other sent MCTS down two different paths
MAX_COST_RATIO = 1.05


@dataclass
class ModelSearch:
    """What the stage found: the best operator (``operator_file``, its formula and picture) and the search's counts,
    paths relative to the optimize output directory."""

    directory: str
    spec: str
    budget: int
    evaluated: int
    ok: int
    pruned: int
    failed: int
    fingerprint: str
    reward: float
    metrics: dict[str, float]
    formula: str
    operator_file: str
    picture: str | None
    pareto_png: str
    report: str
    seconds: float
    finalists: list[Finalist] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(data: dict) -> "ModelSearch":
        return ModelSearch(**{**data, "finalists": [Finalist(**f) for f in data.get("finalists", [])]})


def choose_spec(model, width: int | None) -> dict:
    """The built-in spec whose layer kind the model has (vision for 3x3 convs, else transformer for matmuls), with
    ``g`` scaled to ``width`` (a built-in model's channel width; None: the spec's own, meant at width 64)."""
    from ..relax.frontend import import_onnx
    from ..relax.swap import find_layers

    layers = find_layers(import_onnx(model))
    convs = [d for d in layers if d.kind == "conv2d" and d.shape.get("kernel") == 3
             and d.shape.get("kernel_w", 3) == 3]
    if convs:
        spec = json.loads(json.dumps(SPECS["vision"]))
        if width is not None:
            g = max(1, 32 * width // SYNO_WIDTH)
            spec["coefficient"] = [f"g={g}: 3" if c.startswith("g=") else c for c in spec["coefficient"]]
            spec["name"] = f"vision-width{width}"
        return spec
    if any(d.kind == "matmul" for d in layers):
        return json.loads(json.dumps(SPECS["transformer"]))
    raise SynoError("the model has no 3x3 conv and no matmul layer a searched operator could serve: "
                    "use --operator NAME for other layers")


def _same_model(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() != data:
        raise SynoError(f"{path.parent} holds a search of another model: remove it or choose another --out")


def _picture(op, folder: Path, stem: str) -> str | None:
    """The operator's graph as ``STEM.dot`` and, where graphviz is installed, ``STEM.png``."""
    from ..report.dot import to_dot

    gv = folder / f"{stem}.dot"
    write_text(gv, to_dot(op))
    dot = shutil.which("dot")
    if dot is None:
        return None
    png = folder / f"{stem}.png"
    write_atomically(png, lambda tmp: subprocess.run([dot, "-Tpng", str(gv), "-o", tmp], check=True,
                                                     capture_output=True), suffix=".png")
    return f"{folder.name}/{png.name}"


def search_for_model(model, width: int | None, directory: "str | Path", budget: int, target: str = "llvm",
                     seed: int = 0, progress: bool = True,
                     final_accuracy: Callable[[Operator], float] | None = None) -> ModelSearch:
    """Search ``budget`` candidates for ``model`` (an ONNX ModelProto) in ``directory`` (resumed when it holds this
    model's search) and write the search report there; the search's best operator is ``directory/best.json``.
    With ``final_accuracy`` (an operator's accuracy ratio under the final recipe) the best few are confirmed with it
    and the chosen one is ``directory/chosen.json``."""
    import onnx

    if budget < 1:
        raise SynoError(f"--search must be at least 1 evaluation (got {budget})")
    start = time.time()
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    data = model.SerializeToString()
    model_path, spec_path = folder / "model.onnx", folder / "spec.json"
    _same_model(model_path, data)
    spec = choose_spec(model, width)
    write_atomically(model_path, lambda tmp: onnx.save(model, tmp), suffix=".onnx")
    write_text(spec_path, json.dumps(spec, indent=1) + "\n")
    names = ["flops", COST_EVALUATOR]
    options: dict[str, dict] = {}
    if spec["layer_kind"] == "conv2d":
        names.append("accuracy")
        options["accuracy"] = {"recipe": ACCURACY_RECIPE, "spec_width": width or SYNO_WIDTH}
    evaluators = [create_evaluator(n, **options.get(n, {})) for n in names]
    cfg = SearchConfig(out=str(folder), spec=str(spec_path), model=str(model_path), strategy="mcts",
                       evaluators=tuple(names), budget=budget, target=target, seed=seed,
                       resume=(folder / DB_FILE).is_file(), accuracy_recipe=ACCURACY_RECIPE,
                       max_cost_ratio=MAX_COST_RATIO)
    if progress:
        print(f"searching {budget} operators for the model's {spec['layer_kind']} layers (spec {spec['name']}; "
              f"evaluators {', '.join(names)}; MCTS, seed {seed})", flush=True)
    search(cfg, progress=progress, evaluators=evaluators)
    record = load(folder)
    best = best_result(record.results, record.original)
    if best is None:
        raise SynoError(f"no operator of {len(record.results)} searched, other than the original's own function, "
                        f"passed every evaluator (cheaper than the original and trainable): raise --search, or give "
                        f"--operator NAME")
    write_report(folder)
    confirmed: list[Finalist] = []
    stem = "best"
    if final_accuracy is not None:
        picks = finalists(record.results, record.original)
        if progress:
            print(f"confirming the search's best {len(picks)} with the final training recipe", flush=True)
        confirmed = confirm(picks, final_accuracy, cfg.reward)
        best = next(r for r in picks if r.fingerprint == confirmed[0].fingerprint)
        stem = "chosen"
        write_text(folder / "chosen.json", json.dumps(best.candidate.operator.to_json(), indent=1) + "\n")
    op = best.candidate.operator
    return ModelSearch(
        directory=folder.name, spec=spec["name"], budget=budget, evaluated=len(record.results), ok=len(record.ok),
        pruned=sum(r.status == PRUNED for r in record.results),
        failed=sum(r.status == FAILED for r in record.results), fingerprint=best.fingerprint,
        reward=best.reward, metrics={k: v for k, v in best.metrics.items() if "_layer" not in k},
        formula=operator_formula(op), operator_file=f"{folder.name}/{stem}.json",
        picture=_picture(op, folder, stem), pareto_png=f"{folder.name}/pareto.png",
        report=f"{folder.name}/report.md", seconds=round(time.time() - start, 1), finalists=confirmed)
