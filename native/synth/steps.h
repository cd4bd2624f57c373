// The step-kind table of syno_tvm/synth/steps.py (STEPS), kind for kind and in the same order: a kind's code is its
// position there, which decides the order the space offers kinds in and so the finals a seed draws.  steps.py holds
// each kind's reason and behaviour; tests/test_synth_native.py checks every field here against it (step_table()).
#pragma once

#include "plan.h"

namespace syno {

// Codes of the kinds, for the switches of space.h and distance.h (one per row of STEP_TABLE).
enum Kind : int { REDUCE = 0, MERGE, SPLIT, SHIFT, STRIDE, UNFOLD, EXPAND, CONTRACT, NKINDS };

// What created a dim: the output itself, or a step (the origins of the rows of STEP_TABLE, in table order).
enum Origin : int { O_OUT, O_REDUCE, O_MERGE0, O_MERGE1, O_SPLIT, O_SHIFT, O_STRIDE, O_UNFOLD, O_WEIGHT, O_SHARE,
                    NORIGINS };
constexpr const char* ORIGIN_NAMES[NORIGINS] = {"out",   "reduce", "merge0", "merge1", "split",
                                                "shift", "stride", "unfold", "weight", "share"};

// One step kind: its name (Step.kind in Python), code, the primitive its steps create, how many frontier dims a
// step takes (-1: any number, a Contraction's selection) and the origins of the dims it creates, in creation order.
struct StepKind {
  const char* name;
  Kind code;
  PrimKind primitive;
  int dims;
  int norigins;
  Origin origins[2];
};

constexpr StepKind STEP_TABLE[NKINDS] = {
    {"reduce", REDUCE, P_REDUCE, 0, 1, {O_REDUCE}},
    {"merge", MERGE, P_MERGE, 1, 2, {O_MERGE0, O_MERGE1}},
    {"split", SPLIT, P_SPLIT, 2, 1, {O_SPLIT}},
    {"shift", SHIFT, P_SHIFT, 1, 1, {O_SHIFT}},
    {"stride", STRIDE, P_STRIDE, 1, 1, {O_STRIDE}},
    {"unfold", UNFOLD, P_UNFOLD, 2, 1, {O_UNFOLD}},
    {"expand", EXPAND, P_EXPAND, 1, 0, {}},
    {"contract", CONTRACT, P_SHARE, -1, 2, {O_WEIGHT, O_SHARE}},
};

constexpr bool codes_are_positions() {
  for (int k = 0; k < NKINDS; ++k)
    if (STEP_TABLE[k].code != k) return false;
  return true;
}
static_assert(codes_are_positions(), "STEP_TABLE rows must be in Kind order");

inline const char* kind_name(int k) { return STEP_TABLE[k].name; }

}  // namespace syno
