"""A cheap default CPU schedule for the PrimFuncs of a module built without MetaSchedule.

Why: ``tvm.compile`` of an untuned Relax module leaves every loop nest serial (apache-tvm 0.27 has no default CPU
schedule; ``dlight.cpu`` only covers GEMV and reductions), so on a multi-core CPU an untuned training step uses one
core.  The swapped operators' backward kernels (large gather reductions) dominated such steps.  Here every block gets
its outer data-parallel loops fused and marked ``parallel``, with any reduction loops kept inside; that is all, so the
schedule costs milliseconds to apply and never changes the arithmetic (each output element is still reduced by one
thread in the original order, so results are bit-identical).  A transform that TVM refuses leaves that block as it
was: this must never break a build.
"""

from __future__ import annotations

import math

import tvm
import tvm.s_tir
import tvm.tirx
from tvm.tirx.analysis import undefined_vars

# Loop iterations below which a block stays serial: waking the thread pool costs a few microseconds, more than
# such a block runs.
MIN_PARALLEL_WORK = 4096
# The fused parallel loop should give each thread a few chunks, for balance when the extent does not divide evenly.
CHUNKS_PER_THREAD = 4
SCHEDULED_ATTR = "tirx.is_scheduled"


def _spatial_prefix(sch: tvm.s_tir.Schedule, block, loops) -> int:
    """How many outer loops of ``block`` feed only data-parallel block iterators (0 if the nest is not a perfect
    nest around the block alone, which this schedule leaves as it is)."""
    realize = sch.get(loops[-1]).body
    if not isinstance(realize, tvm.s_tir.SBlockRealize) or not realize.block.same_as(sch.get(block)):
        return 0
    reduce_vars = [v for iv, value in zip(realize.block.iter_vars, realize.iter_values)
                   if iv.iter_type != tvm.tirx.IterVar.DataPar for v in undefined_vars(value)]
    count = 0
    for loop in loops:
        if any(v.same_as(sch.get(loop).loop_var) for v in reduce_vars):
            break
        count += 1
    return count


def _parallelize(sch: tvm.s_tir.Schedule, block, threads: int) -> None:
    loops = sch.get_loops(block)
    if not loops or not all(isinstance(sch.get(loop).extent, tvm.tirx.IntImm) for loop in loops):
        return
    extents = [int(sch.get(loop).extent) for loop in loops]
    spatial = _spatial_prefix(sch, block, loops)
    if spatial == 0 or math.prod(extents) < MIN_PARALLEL_WORK:
        return
    # A pure elementwise nest keeps its innermost loop serial so LLVM can vectorize it with plain indexing.
    candidates = spatial - 1 if spatial == len(loops) and spatial > 1 else spatial
    take = 1
    while take < candidates and math.prod(extents[:take]) < threads * CHUNKS_PER_THREAD:
        take += 1
    if math.prod(extents[:take]) < 2:
        return
    outer = sch.fuse(*loops[:take]) if take > 1 else loops[0]
    sch.parallel(outer)


def schedule_func(func: tvm.tirx.PrimFunc, threads: int) -> tvm.tirx.PrimFunc:
    """``func`` with each top-level block's outer data-parallel loops fused and parallel (see the module doc)."""
    if threads < 2:
        return func
    sch = tvm.s_tir.Schedule(tvm.IRModule({"main": func}))
    try:
        blocks = sch.get_child_blocks(sch.get_sblock("root"))
    except (tvm.TVMError, ValueError):  # no root block (already lowered): nothing we can schedule
        return func
    for block in blocks:
        trial = sch.copy()
        try:
            _parallelize(trial, block, threads)
        except tvm.TVMError:
            continue
        sch = trial
    return sch.mod["main"]


def default_schedule(mod: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule:
    """Every PrimFunc of ``mod`` not already scheduled, parallelized over the target's ``num-cores`` (CPU targets
    only: GPU builds get dlight's schedules instead)."""
    if target.kind.name != "llvm":
        return mod
    threads = int(target.attrs.get("num-cores", 1))
    out = mod.clone()
    for gv, func in mod.functions_items():
        if isinstance(func, tvm.tirx.PrimFunc) and not (func.attrs and func.attrs.get(SCHEDULED_ATTR, False)):
            out.update_func(gv, schedule_func(func, threads))
    return out


def build_untuned(mod: tvm.IRModule, target: tvm.target.Target):
    """``tvm.compile`` of a Relax module with no tuning database, its PrimFuncs given the default schedule.

    The module is legalized first, with the passes ``tvm.compile``'s default CPU pipeline starts with, so the
    schedule sees the kernels the build will contain; that pipeline then finds nothing left to legalize and builds
    the same kernels as before, only scheduled (it does not fuse, so neither do we: same arithmetic)."""
    from tvm import relax

    if target.kind.name != "llvm":
        return tvm.compile(mod, target=target)
    with target:
        legal = tvm.transform.Sequential([relax.backend.DispatchSampling(), relax.backend.DispatchSortScan(),
                                          relax.transform.LegalizeOps()])(mod)
    return tvm.compile(default_schedule(legal, target), target=target)
