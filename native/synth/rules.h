// The canonicalization table of syno_tvm/synth/canon.py, rule for rule and in the same order (the first rule
// that rejects a step names the rejection).  canon.py holds each rule's reason; a test checks every rule's name and
// kinds against it (rule_table()).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "spec.h"
#include "state.h"

namespace syno {

enum RuleId : int {
  R_REDUCE_FIRST, R_REDUCE_ORDER, R_MERGE_CHAIN_RIGHT, R_SPLIT_CHAIN_RIGHT, R_NO_SPLIT_UNDOING_MERGE,
  R_NO_MERGE_UNDOING_SPLIT, R_NO_SPLIT_OF_MERGE_MAJORS, R_NO_SPLIT_OF_REDUCES, R_NO_MERGE_ON_REDUCE,
  R_UNFOLD_CHAIN_ORDER, R_SHIFT_UNFOLD_ORDER, R_NO_SHIFT_ON_REDUCE, R_NO_DOUBLE_SHIFT, R_NO_SHIFT_ON_UNORDERED,
  R_UNORDERED_MERGE_ORDER, R_NO_EXPAND_OF_REDUCE, R_EXPAND_IS_OUTER, R_SHIFT_ABOVE_SHARE, R_SPLIT_AFTER_SHARES,
  R_CONTRACTION_ORDER, NRULES
};

// One rule: its name and the step kinds it can reject (a bit per Kind), so a step is checked only against the rules
// about its kind.
struct RuleKinds {
  const char* name;
  unsigned kinds;
};

constexpr unsigned kinds(Kind k) { return 1u << k; }
constexpr unsigned kinds(Kind a, Kind b) { return kinds(a) | kinds(b); }

constexpr RuleKinds RULE_TABLE[NRULES] = {
    {"reduce_first", kinds(REDUCE)},
    {"reduce_order", kinds(REDUCE)},
    {"merge_chain_right", kinds(MERGE)},
    {"split_chain_right", kinds(SPLIT)},
    {"no_split_undoing_merge", kinds(SPLIT)},
    {"no_merge_undoing_split", kinds(MERGE)},
    {"no_split_of_merge_majors", kinds(SPLIT)},
    {"no_split_of_reduces", kinds(SPLIT)},
    {"no_merge_on_reduce", kinds(MERGE)},
    {"unfold_chain_order", kinds(UNFOLD)},
    {"shift_unfold_order", kinds(UNFOLD)},
    {"no_shift_on_reduce", kinds(SHIFT)},
    {"no_double_shift", kinds(SHIFT)},
    {"no_shift_on_unordered", kinds(SHIFT)},
    {"unordered_merge_order", kinds(MERGE)},
    {"no_expand_of_reduce", kinds(EXPAND, CONTRACT)},
    {"expand_is_outer", kinds(EXPAND)},
    {"shift_above_share", kinds(CONTRACT)},
    {"split_after_shares", kinds(SPLIT)},
    {"contraction_order", kinds(CONTRACT)},
};

inline const char* rule_name(int rule) { return RULE_TABLE[rule].name; }
inline bool rule_about(int rule, int kind) { return RULE_TABLE[rule].kinds >> kind & 1u; }

// Whether `rule` allows `step` at `node` (the rule is about the step's kind).
inline bool rule_allows(int rule, SizeTable& sz, const NativeSpec& spec, const Node& node, const Step& step) {
  switch (rule) {
    case R_REDUCE_FIRST:
      return node.only_reduces();
    case R_REDUCE_ORDER:
      return !node.has_last || node.last.kind != REDUCE || !sz.key_less(step.size, node.last.size);
    case R_MERGE_CHAIN_RIGHT:
      return node.dim(step.dims[0]).origin != O_MERGE0;
    case R_SPLIT_CHAIN_RIGHT:
      return node.dim(step.dims[0]).origin != O_SPLIT;
    case R_NO_SPLIT_UNDOING_MERGE: {
      const Dim &a = node.dim(step.dims[0]), &b = node.dim(step.dims[1]);
      return !(a.origin == O_MERGE0 && b.origin == O_MERGE1 && a.below[0] == b.below[0]);
    }
    case R_NO_MERGE_UNDOING_SPLIT: {
      const Dim& d = node.dim(step.dims[0]);
      return d.origin != O_SPLIT || d.block != step.size;
    }
    case R_NO_SPLIT_OF_MERGE_MAJORS: {
      const Dim &a = node.dim(step.dims[0]), &b = node.dim(step.dims[1]);
      if (a.origin != O_MERGE0 || b.origin != O_MERGE0) return true;
      return b.below[0] != merge_top_hash(a.below[0], true, sz[a.block].text);
    }
    case R_NO_SPLIT_OF_REDUCES: {
      const Dim &a = node.dim(step.dims[0]), &b = node.dim(step.dims[1]);
      return !(a.origin == O_REDUCE && b.origin == O_REDUCE &&
               contains(spec.reduce_sizes, sz.combine(a.size, b.size, false)));
    }
    case R_NO_MERGE_ON_REDUCE: {
      const Dim& d = node.dim(step.dims[0]);
      if (d.origin != O_REDUCE || node.reductions >= spec.max_reductions) return true;
      return !(contains(spec.reduce_sizes, step.size) &&
               contains(spec.reduce_sizes, sz.combine(d.size, step.size, true)));
    }
    case R_UNFOLD_CHAIN_ORDER: {
      const Dim &main = node.dim(step.dims[0]), &window = node.dim(step.dims[1]);
      if (main.origin != O_UNFOLD) return true;
      if (window.size != main.window) return sz.key_less(window.size, main.window);
      return window.hash <= main.below[1];
    }
    case R_SHIFT_UNFOLD_ORDER:
      return node.dim(step.dims[0]).origin != O_SHIFT;
    case R_NO_SHIFT_ON_REDUCE:
      return node.dim(step.dims[0]).summed < 0;
    case R_NO_DOUBLE_SHIFT:
      return node.dim(step.dims[0]).origin != O_SHIFT;
    case R_NO_SHIFT_ON_UNORDERED:
      return !node.dim(step.dims[0]).unordered;
    case R_UNORDERED_MERGE_ORDER: {
      const Dim& d = node.dim(step.dims[0]);
      return !d.unordered || !sz.key_less(step.size, sz.combine(d.size, step.size, true));
    }
    case R_NO_EXPAND_OF_REDUCE:
      if (step.kind == EXPAND) {
        int s = node.dim(step.dims[0]).summed;
        return !(0 <= s && s <= 1);
      }
      for (size_t k = 0; k < step.dims.size(); ++k)
        if (step.outer[k] && node.dim(step.dims[k]).summed == 0) return false;
      return true;
    case R_EXPAND_IS_OUTER: {
      Hash h = step.dims[0];
      if (node.dim(h).origin != O_SHARE) return true;
      for (const auto& w : node.weights)
        if (contains(w.tops, h)) return std::count(w.outer.begin(), w.outer.end(), 0) < 2;
      return true;
    }
    case R_SHIFT_ABOVE_SHARE:
      for (Hash h : step.dims)
        if (node.dim(h).origin == O_SHIFT) return false;
      return true;
    case R_SPLIT_AFTER_SHARES: {
      const Dim &a = node.dim(step.dims[0]), &b = node.dim(step.dims[1]);
      if (a.origin != O_SHARE || b.origin != O_SHARE) return true;
      for (const auto& w : node.weights)
        if (contains(w.tops, a.hash) && contains(w.tops, b.hash)) return w.touched.size() < 3;
      return true;
    }
    case R_CONTRACTION_ORDER: {
      if (!node.has_last || node.last.kind != CONTRACT) return true;
      const Weight& a = node.weights.back();
      auto pre = [&](Hash h, bool* found) {  // to_pre: an inner top of A back to the dim A selected
        for (size_t k = 0; k < a.touched.size(); ++k)
          if (!a.outer[k] && a.tops[k] == h) {
            *found = true;
            return a.touched[k];
          }
        *found = false;
        return h;
      };
      std::vector<Hash> key_b, touched(a.touched);
      for (Hash h : step.dims) {
        bool found;
        key_b.push_back(pre(h, &found));
      }
      std::sort(key_b.begin(), key_b.end());
      std::sort(touched.begin(), touched.end());
      if (key_b >= touched) return true;
      std::vector<Hash> chained_outer;
      for (size_t k = 0; k < step.dims.size(); ++k) {
        bool found;
        Hash t = pre(step.dims[k], &found);
        if (found && step.outer[k]) chained_outer.push_back(t);
      }
      for (size_t k = 0; k < a.touched.size(); ++k)
        if (!a.outer[k] && !contains(chained_outer, a.touched[k])) return false;
      return true;
    }
  }
  return true;
}

}  // namespace syno
