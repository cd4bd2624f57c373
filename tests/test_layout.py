"""The layout rules of ``lower.order.lay_out``: what each intermediate's axes become, and that values do not change.

The operators under ``tests/data`` are random finals of the vision space (``benchmarks/kernel_efficiency.py --set
synth``, seed 0) on which the rules act; their forward is compared with the numpy reference here, and the fuzz in
``test_fuzz.py`` covers the rules on 300 more.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from syno_tvm.ir.graph import Operator
from syno_tvm.ir.indexing import Propagation, propagate
from syno_tvm.ir.library import named
from syno_tvm.ir.reference import evaluate
from syno_tvm.lower.build import compile_forward
from syno_tvm.lower.normalize import fuse_shifts
from syno_tvm.lower.order import Slope, plan

DATA = Path(__file__).parent / "data"
LAYER = {"N": 1, "C_in": 64, "C_out": 64, "H": 32, "W": 32}
SMALL = {"N": 2, "C_in": 64, "C_out": 64, "H": 16, "W": 8}


def load(name: str) -> Operator:
    return fuse_shifts(Operator.from_json(json.loads((DATA / name).read_text())))


def reader_slopes(op: Operator, stages, s: int) -> dict[int, Slope]:
    """Slope of each of stage ``s``'s axes along its reader's innermost axis."""
    reader = next(st for st in stages[s + 1:] if len(op.tensors) + s in st.factors)
    walk = Propagation({d: Slope(1 if d == reader.dims[-1] else 0) for d in reader.dims + reader.reduce})
    propagate({i: op.prims[i] for i in reader.prims}, op.sizes, walk, lambda z: z.value(op.binding(LAYER)), set())
    return {d: walk.values[d] for d in stages[s].dims}


def test_slope_domain():
    w, r = Slope(1), Slope(0)
    assert w + r - 1 == Slope(1)                      # Unfold: w + r - k//2
    assert (w + 1) % 32 == Slope(1)                   # Shift's wrap, Merge's right top
    assert w * 4 + r == Slope(4)                      # Split's left bottom, Stride
    assert w // 8 == Slope(None) and r // 8 == Slope(0)
    assert 3 - w == Slope(-1) and (w // 8) * 2 == Slope(None)


def test_innermost_last_operator1():
    """Operator 1's intermediate used to put ``w`` third of six (a stride of 96 floats along the reader's ``w``)."""
    op = fuse_shifts(named("syno_operator1"))
    stages = plan(op, LAYER).stages
    assert len(stages) == 2
    slopes = reader_slopes(op, stages, 0)
    assert slopes[stages[0].dims[-1]] == Slope(1)
    assert [d for d, s in slopes.items() if s == Slope(1)] == [stages[0].dims[-1]]


def test_innermost_last_skips_floordiv_axes():
    """An axis read as ``w // 8`` has no slope: the one read as ``w % 8`` moves last, the other stays."""
    op = load("floordiv_read.json")
    stages = plan(op, LAYER).stages
    z0 = reader_slopes(op, stages, 0)
    assert z0[stages[0].dims[-1]] == Slope(1) and Slope(None) in z0.values()
    z1 = reader_slopes(op, stages, 1)
    assert z1[stages[1].dims[-1]] == Slope(0) and Slope(None) in z1.values()


def shifts_in(op: Operator, stage) -> int:
    return sum(op.prims[i].kind == "shift" for i in stage.prims)


def test_shift_moves_into_smaller_producer():
    op = load("shift_between_stages.json")
    z0, y = plan(op, LAYER).stages
    assert z0.flops < y.flops
    assert shifts_in(op, y) == 0 and shifts_in(op, z0) >= 1


def test_shift_stays_out_of_larger_producer():
    op = load("shift_into_larger_stage.json")
    z0, y = plan(op, LAYER).stages
    assert z0.flops > y.flops
    assert shifts_in(op, y) >= 1


@pytest.mark.parametrize("name", ["shift_between_stages.json", "shift_into_larger_stage.json", "floordiv_read.json"])
@pytest.mark.parametrize("binding", [SMALL, LAYER], ids=["small", "layer"])
def test_laid_out_forward_matches_reference(name, binding):
    op = load(name)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype("float32") for k, s in op.shapes(binding).items() if k != "Y"]
    want = evaluate(op, binding, arrays)
    got = compile_forward(op, binding)(*arrays)
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())
