"""Which layers of the model a candidate replaces, grouped by binding: the latency and FLOPs evaluators sum over
the model's layers the way the swap pass uses them (a binding shared by four layers counts four times)."""

from __future__ import annotations

from .context import LayerUse
from .space import Spec


def layer_uses(spec: Spec, model: str | None) -> tuple[LayerUse, ...]:
    """The swap pass's bindings for the layers ``spec`` serves in ``model`` (its kind and kernel, not skipped),
    found by swapping the reference operator in; without a model, each spec layer once."""
    if model is None:
        return tuple(LayerUse(tuple(sorted(b.items())), 1, (name,)) for name, b in spec.layer_bindings.items())
    from ..ir.library import named
    from ..relax.frontend import import_onnx
    from ..relax.swap import OperatorSwap, find_layers

    mod = import_onnx(model)
    serving = [d.layer for d in find_layers(mod) if d.kind == spec.layer_kind and d.layer not in spec.skip_layers
               and (spec.kernel is None or d.shape.get("kernel") == spec.kernel)]
    swap = OperatorSwap({layer: named(spec.reference) for layer in serving})
    swap(mod)
    names = set(spec.variables.names())
    groups: dict[tuple[tuple[str, int], ...], list[str]] = {}
    for d in swap.decisions:
        if d.action == "swap":
            key = tuple(sorted((k, v) for k, v in d.binding.items() if k in names))
            groups.setdefault(key, []).append(d.layer)
    return tuple(LayerUse(k, len(v), tuple(v)) for k, v in groups.items())
