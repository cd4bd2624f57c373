"""Reachability: the familiar operators and Syno's discoveries are in the spaces (at depth <= 12), found by
:func:`syno_tvm.synth.locate.locate`, either in their own form or, when a canonicalization rule removes that form, as
the canonical twin with the same semantic fingerprint.  And a limit that excludes an operator is named."""

from __future__ import annotations

import pytest

from syno_tvm.ir.library import named
from syno_tvm.synth.fingerprint import fingerprint
from syno_tvm.synth.locate import locate
from syno_tvm.synth.space import Space
from syno_tvm.synth.spec import RESNET18_CIFAR_LAYERS, TRANSFORMER, VISION, Spec

VIS = Spec.from_json(VISION)
TRF = Spec.from_json(TRANSFORMER)
# Depthwise conv maps C_in channels to C_in channels: its space has output [N, C_in, H, W] and serves the layers
# of ResNet-18 where C_out = C_in.
DEPTHWISE = Spec.from_json({
    **VISION, "name": "vision-same-channels", "output": "[N, C_in: unordered, H, W]",
    "primary": ["N: 0", "C_in: 3", "H: 0", "W: 0"],
    "layers": {n: {k: v for k, v in b.items() if k != "C_out"} for n, b in RESNET18_CIFAR_LAYERS.items()
               if b["C_in"] == b["C_out"]},
    "probe": {"N": 1, "C_in": 10, "H": 6, "W": 8, "g": 5}, "reference": "conv2d_depthwise",
    "flops": [0.0, 30.0], "params": [0.0, 30.0],
})

CASES = [
    (VIS, "conv2d", False), (VIS, "conv2d_grouped", True), (VIS, "pointwise", False), (VIS, "shift_conv", False),
    (VIS, "pool_conv", False), (VIS, "syno_operator1", False), (VIS, "stacked_conv", True),
    (DEPTHWISE, "conv2d_depthwise", False), (TRF, "gpt2_qkv", True),
]


@pytest.mark.parametrize("spec,name,twin", CASES, ids=[c[1] for c in CASES])
def test_located(spec, name, twin):
    op = named(name)
    loc = locate(Space(spec), op)
    assert loc.found, loc.reason
    assert loc.depth <= 12 and loc.twin == twin
    assert fingerprint(loc.operator, spec.probe_binding) == fingerprint(op, spec.probe_binding)
    if twin:
        assert loc.reason.startswith("given form excluded by rule ")
    else:
        assert loc.operator.hash == locate(Space(spec), op).operator.hash  # deterministic


def test_located_path_replays_to_the_same_operator():
    space = Space(VIS)
    loc = locate(space, named("syno_operator1"))
    node = space.root()
    for step in loc.path:
        node, why = space.child(node, step)
        assert node is not None, why
    assert space.finalize(node).operator.hash == loc.operator.hash
    assert loc.depth == 10  # 5 Reduces, 2 Contractions, 1 Split, 2 Unfolds


def test_excluded_operators_name_the_limit():
    shallow = Space(VIS.with_limits(depth=5))
    loc = locate(shallow, named("conv2d"))
    assert not loc.found and ("depth" in loc.reason or "distance" in loc.reason)
    cheap = Space(VIS.with_limits(flops=[0.0, 0.5]))
    loc = locate(cheap, named("conv2d"))
    assert not loc.found and loc.reason.startswith("limit flops")
    assert not locate(Space(VIS), named("linear")).found
