// The step kinds of syno_tvm/synth/steps.py (STEPS), kind for kind and in the same order, each with its code in one
// place: a struct per kind (its candidate steps, apply and shape-distance effect, as the methods of the Python
// kind's class) and one row of STEP_TABLE that names the kind and points at those functions.  The space, the
// distance and the sampler dispatch through the table and hold no per-kind switch of their own.
//
// A kind's code (Kind, state.h) is its position here, which decides the order the space offers kinds in and so the
// finals a seed draws.  steps.py holds each kind's reason; tests/test_synth_native.py checks every field of the
// table against it (step_table()).  Function pointers rather than virtual classes: a kind has no state, and the
// table stays a constexpr array that a static_assert checks.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "distance.h"
#include "plan.h"
#include "sizes.h"
#include "spec.h"
#include "state.h"

namespace syno {

// A candidate step of a kind other than Contraction, in a quarter of a Step's space: a node keeps hundreds of them
// until they are judged.  By dim hash, not position: another path reaches the node with the dims in another order.
struct Cand {
  int32_t kind;
  int32_t size;
  Hash a, b;  // the dim, or a Split's/Unfold's first and second
};

// What listing a kind's candidate steps reads of the space (Python's steps.SpaceView): the spec, the variable
// allowance, the Merge blocks of a size and a node's distinct frontier dims.  The space owns one.
class SpaceView {
 public:
  SpaceView(SizeTable& sizes, const NativeSpec& spec) : sz(sizes), spec(spec) {}

  SizeTable& sz;
  const NativeSpec& spec;

  // Primary variables introduced by Reduces and selected dims stay within their allowance.
  bool allowance_ok(const Node& node, const int* sizes, int n) const {
    int used[MAX_VARS];
    std::copy(node.used.begin(), node.used.end(), used);
    for (int i = 0; i < n; ++i)
      for (int v = 0; v < sz.nvars(); ++v)
        if (sz.is_primary(v) && sz[sizes[i]].pw[v]) {
          used[v] += sz[sizes[i]].pw[v];
          if (used[v] > spec.allowance[v]) return false;
        }
    return true;
  }

  // The Merge blocks of a dim of `size` (cached per size: listing runs at every node).
  const std::vector<int>& blocks(int size) {
    auto it = blocks_.find(size);
    if (it != blocks_.end()) return it->second;
    std::vector<int> out;
    for (int b : spec.block_sizes)
      if (b != size && sz[sz.combine(size, b, true)].valid) out.push_back(b);
    return blocks_[size] = out;
  }

  // The frontier's dims, each hash once: first-appearance order, the last dim of each hash (Python's by_hash).
  // Valid until the next call.
  const std::vector<const Dim*>& unique_dims(const Node& node) {
    std::vector<const Dim*>& out = uniq_;
    out.clear();
    for (const auto& d : node.frontier) {
      bool seen = false;
      for (auto& p : out)
        if (p->hash == d.hash) {
          p = &d;
          seen = true;
        }
      if (!seen) out.push_back(&d);
    }
    return out;
  }

 private:
  std::unordered_map<int, std::vector<int>> blocks_;
  std::vector<const Dim*> uniq_;  // scratch for unique_dims
};

struct StepKind;

// A child under construction (Python's steps.Builder): a kind's apply takes dims off the frontier of `node`, a copy
// of the parent, and adds dims, primitives, weights and Expands; Space::apply then sets its depth, last step and
// hash.  `kind` is the step's row of STEP_TABLE (the primitive and the origins of the dims it creates).
class Builder {
 public:
  Builder(Node& node, const Step& step, const StepKind& kind, SizeTable& sizes)
      : node(node), step(step), kind(kind), sz(sizes) {}

  Node& node;
  const Step& step;
  const StepKind& kind;
  SizeTable& sz;

  // Remove the frontier dim of hash h (the first of equal ones) and return it.
  Dim take(Hash h) {
    for (auto it = node.frontier.begin(); it != node.frontier.end(); ++it)
      if (it->hash == h) {
        Dim d = *it;
        node.frontier.erase(it);
        return d;
      }
    throw std::invalid_argument("a step refers to a dim that is not on the frontier");
  }

  // A new dim, on the frontier if `keep` (a weight's own dims are not).  The reference is valid until the next add.
  Dim& add(int size, Hash h, Origin origin, bool keep = true) {
    node.sizes.push_back(size);
    scratch_ = Dim();
    scratch_.id = static_cast<int>(node.sizes.size()) - 1;
    scratch_.size = size;
    scratch_.hash = h;
    scratch_.origin = origin;
    if (!keep) return scratch_;
    node.frontier.push_back(scratch_);
    return node.frontier.back();
  }

  // Count the primaries of a Reduce or of a selected dim against the allowance.
  void count(int size) { sz.count_primaries(size, node.used); }

  // The text of the step's size ("" when it has none), as digests quote it.
  const std::string& size_text() const {
    static const std::string none;
    return step.size >= 0 ? sz[step.size].text : none;
  }

  static void set_below(Dim& d, std::initializer_list<Hash> hs) { std::copy(hs.begin(), hs.end(), d.below); }

 private:
  Dim scratch_;  // a dim that is not kept on the frontier
};

// One step kind: its name (Step.kind in Python), code, the primitive its steps create, how many frontier dims a
// step takes (-1: any number, a Contraction's selection), the origins of the dims it creates in creation order,
// and its code: `candidates` appends its candidate steps at a node (before rules and distance), each distinct
// frontier hash once (null for Contractions: the space draws them, Space::random_contraction, or lists them whole,
// Space::all_contractions and closing_contractions); `apply` builds the child; `shape` is the step's effect on the
// shape distance's key (Distance::of_step).
struct StepKind {
  const char* name;
  Kind code;
  PrimKind primitive;
  int dims;
  int norigins;
  Origin origins[2];
  void (*candidates)(SpaceView&, const Node&, std::vector<Cand>&);
  void (*apply)(Builder&, const Step&);
  void (*shape)(ShapeDelta&, const Step&);
};

// ---- the kinds, in table order ----------------------------------------------------------------------------------

// A step of `kind` on each distinct frontier dim, with no size (Shift, Expand).
inline void each_dim(SpaceView& v, const Node& node, Kind kind, std::vector<Cand>& out) {
  for (const Dim* d : v.unique_dims(node)) out.push_back({kind, -1, d->hash, 0});
}

struct ReduceStep {
  static void candidates(SpaceView& v, const Node& node, std::vector<Cand>& out) {
    if (node.reductions < v.spec.max_reductions)
      for (int s : v.spec.reduce_sizes)
        if (v.allowance_ok(node, &s, 1)) out.push_back({REDUCE, s, 0, 0});
  }
  static void apply(Builder& b, const Step& step) {
    Dim& r = b.add(step.size, Text().lit("'reduce', ").q(b.size_text()).digest(), b.kind.origins[0]);
    r.summed = 0;
    b.node.prims.push_back({b.kind.primitive, {r.id}, {}, 0});
    b.count(step.size);
    b.node.reductions += 1;
  }
  static void shape(ShapeDelta& d, const Step& step) {
    d.add(step.size, false, true);
    d.count(step.size);
    d.reductions += 1;
  }
};

struct MergeStep {
  static void candidates(SpaceView& v, const Node& node, std::vector<Cand>& out) {
    for (const Dim* d : v.unique_dims(node))
      for (int b : v.blocks(d->size)) out.push_back({MERGE, b, d->hash, 0});
  }
  static void apply(Builder& b, const Step& step) {
    Dim d = b.take(step.dims[0]);
    int ids[2];
    for (int minor = 0; minor < 2; ++minor) {
      int size = minor ? step.size : b.sz.combine(d.size, step.size, true);
      Dim& t = b.add(size, merge_top_hash(d.hash, minor, b.size_text()), b.kind.origins[minor]);
      Builder::set_below(t, {d.hash});
      t.unordered = d.unordered;
      t.discarding = d.discarding;
      t.block = step.size;
      ids[minor] = t.id;
    }
    b.node.prims.push_back({b.kind.primitive, {ids[0], ids[1]}, {d.id}, 0});
  }
  static void shape(ShapeDelta& d, const Step& step) {
    auto [i, disc] = d.take(step.dims[0]);
    d.add(d.quotient(i, step.size), disc);
    d.add(step.size, disc);
  }
};

struct SplitStep {
  static void candidates(SpaceView&, const Node& node, std::vector<Cand>& out) {
    size_t first = out.size();
    for (size_t i = 0; i < node.frontier.size(); ++i)
      for (size_t j = 0; j < node.frontier.size(); ++j) {
        if (i == j) continue;
        Hash hi = node.frontier[i].hash, hj = node.frontier[j].hash;
        bool seen = false;
        for (size_t k = first; k < out.size() && !seen; ++k) seen = out[k].a == hi && out[k].b == hj;
        if (!seen) out.push_back({SPLIT, -1, hi, hj});
      }
  }
  static void apply(Builder& b, const Step& step) {
    Dim x = b.take(step.dims[0]), y = b.take(step.dims[1]);
    Hash h = Text().lit("'split', ").h(x.hash).lit(", ").h(y.hash).digest();
    Dim& t = b.add(b.sz.combine(x.size, y.size, false), h, b.kind.origins[0]);
    Builder::set_below(t, {x.hash, y.hash});
    t.unordered = x.unordered && y.unordered;
    t.discarding = x.discarding || y.discarding;
    t.block = y.size;
    b.node.prims.push_back({b.kind.primitive, {t.id}, {x.id, y.id}, 0});
  }
  static void shape(ShapeDelta& d, const Step& step) {
    auto [x, dx] = d.take(step.dims[0]);
    auto [y, dy] = d.take(step.dims[1]);
    d.add(d.product(x, y), dx || dy);
  }
};

struct ShiftStep {
  static void candidates(SpaceView& v, const Node& node, std::vector<Cand>& out) { each_dim(v, node, SHIFT, out); }
  static void apply(Builder& b, const Step& step) {
    Dim d = b.take(step.dims[0]);
    Dim& t = b.add(d.size, Text().lit("'shift', ").h(d.hash).digest(), b.kind.origins[0]);
    Builder::set_below(t, {d.hash});
    t.unordered = d.unordered;
    t.discarding = d.discarding;
    b.node.prims.push_back({b.kind.primitive, {t.id}, {d.id}, 1});
  }
  static void shape(ShapeDelta& d, const Step& step) {
    auto [i, disc] = d.take(step.dims[0]);
    d.add(i, disc);  // the same size, no longer a raw Reduce
  }
};

struct StrideStep {
  static void candidates(SpaceView& v, const Node& node, std::vector<Cand>& out) {
    for (const Dim* d : v.unique_dims(node))
      for (int s : v.spec.stride_sizes) out.push_back({STRIDE, s, d->hash, 0});
  }
  static void apply(Builder& b, const Step& step) {
    Dim d = b.take(step.dims[0]);
    Hash h = Text().lit("'stride', ").h(d.hash).lit(", ").q(b.size_text()).digest();
    Dim& t = b.add(b.sz.combine(d.size, step.size, false), h, b.kind.origins[0]);
    Builder::set_below(t, {d.hash});
    t.unordered = d.unordered;
    t.discarding = true;
    b.node.prims.push_back({b.kind.primitive, {t.id}, {d.id}, 0});
  }
  static void shape(ShapeDelta& d, const Step& step) {
    d.add(d.product(d.take(step.dims[0]).first, step.size), true);
  }
};

struct UnfoldStep {
  static void candidates(SpaceView& v, const Node& node, std::vector<Cand>& out) {
    const std::vector<const Dim*>& uniq = v.unique_dims(node);
    for (const Dim* m : uniq)
      for (const Dim* w : uniq)
        if (contains(v.spec.window_sizes, w->size) && m != w && bigger(v.sz, m->size, w->size))
          out.push_back({UNFOLD, -1, m->hash, w->hash});
  }
  static void apply(Builder& b, const Step& step) {
    Dim m = b.take(step.dims[0]), w = b.take(step.dims[1]);
    Dim& t = b.add(m.size, Text().lit("'unfold', ").h(m.hash).lit(", ").h(w.hash).digest(), b.kind.origins[0]);
    Builder::set_below(t, {m.hash, w.hash});
    t.unordered = m.unordered;
    t.window = w.size;
    b.node.prims.push_back({b.kind.primitive, {t.id}, {m.id, w.id}, 0});
  }
  static void shape(ShapeDelta& d, const Step& step) {
    int main = d.take(step.dims[0]).first;
    d.take(step.dims[1]);
    d.add(main, false);
  }

  // An Unfold needs a main dim larger than its window in every binding (else it is all padding).
  static bool bigger(const SizeTable& sz, int main, int window) {
    for (int b = 0; b < sz.nbindings(); ++b)
      if (!(sz[main].value[b] > sz[window].value[b])) return false;
    return true;
  }
};

struct ExpandStep {
  static void candidates(SpaceView& v, const Node& node, std::vector<Cand>& out) { each_dim(v, node, EXPAND, out); }
  static void apply(Builder& b, const Step& step) {
    Dim d = b.take(step.dims[0]);
    b.node.prims.push_back({b.kind.primitive, {}, {d.id}, 0});
    b.node.expands.push_back(Text().lit("'expand', ").h(d.hash).digest());
  }
  static void shape(ShapeDelta& d, const Step& step) { d.take(step.dims[0]); }
};

// A Contraction adds one weight: per selected dim a weight dim and a Share, whose input-side top stays on the
// frontier (inner) or is closed by an Expand (outer).
struct ContractStep {
  static void apply(Builder& b, const Step& step) {
    Node& n = b.node;
    std::vector<Dim> sel;
    for (Hash h : step.dims) sel.push_back(b.take(h));
    std::vector<std::pair<Hash, char>> pairs;
    for (size_t k = 0; k < sel.size(); ++k) pairs.push_back({sel[k].hash, step.outer[k]});
    std::sort(pairs.begin(), pairs.end());
    Text text;
    text.lit("'weight', [");
    for (size_t k = 0; k < pairs.size(); ++k)
      text.lit(k ? ", [" : "[").h(pairs[k].first).lit(pairs[k].second ? ", True]" : ", False]");
    Hash sig = text.lit("]").digest();
    int ordinal = static_cast<int>(n.weights.size()) + 1;
    Weight w;
    w.sig = sig;
    w.touched.assign(step.dims.begin(), step.dims.end());
    w.outer.assign(step.outer.begin(), step.outer.end());
    for (size_t k = 0; k < sel.size(); ++k) {
      const Dim& d = sel[k];
      bool o = step.outer[k];
      const Dim& wd = b.add(d.size, Text().lit("'wdim', ").h(d.hash).lit(", ").h(sig).digest(), b.kind.origins[0],
                            false);
      int wid = wd.id;
      Hash wh = wd.hash;
      Dim& t = b.add(d.size, Text().lit("'share', ").h(d.hash).lit(", ").h(sig).digest(), b.kind.origins[1], !o);
      Builder::set_below(t, {d.hash});
      t.unordered = d.unordered;
      t.discarding = d.discarding;
      t.summed = d.summed >= 0 ? d.summed + 1 : -1;
      int tid = t.id;
      Hash th = t.hash;
      n.prims.push_back({b.kind.primitive, {tid, wid}, {d.id}, ordinal});
      if (o) {
        n.prims.push_back({P_EXPAND, {}, {tid}, 0});
        n.expands.push_back(Text().lit("'expand', ").h(th).digest());
      }
      w.dims.push_back({wid, wh});
      w.tops.push_back(o ? 0 : th);
      b.count(d.size);
    }
    n.weights.push_back(std::move(w));
  }
  static void shape(ShapeDelta& d, const Step& step) {
    for (size_t k = 0; k < step.dims.size(); ++k) {
      auto [i, disc] = d.take(step.dims[k]);
      if (!step.outer[k]) d.add(i, disc);
      d.count(i);
    }
    d.weights += 1;
  }
};

constexpr StepKind STEP_TABLE[NKINDS] = {
    {"reduce", REDUCE, P_REDUCE, 0, 1, {O_REDUCE}, ReduceStep::candidates, ReduceStep::apply, ReduceStep::shape},
    {"merge", MERGE, P_MERGE, 1, 2, {O_MERGE0, O_MERGE1}, MergeStep::candidates, MergeStep::apply, MergeStep::shape},
    {"split", SPLIT, P_SPLIT, 2, 1, {O_SPLIT}, SplitStep::candidates, SplitStep::apply, SplitStep::shape},
    {"shift", SHIFT, P_SHIFT, 1, 1, {O_SHIFT}, ShiftStep::candidates, ShiftStep::apply, ShiftStep::shape},
    {"stride", STRIDE, P_STRIDE, 1, 1, {O_STRIDE}, StrideStep::candidates, StrideStep::apply, StrideStep::shape},
    {"unfold", UNFOLD, P_UNFOLD, 2, 1, {O_UNFOLD}, UnfoldStep::candidates, UnfoldStep::apply, UnfoldStep::shape},
    {"expand", EXPAND, P_EXPAND, 1, 0, {}, ExpandStep::candidates, ExpandStep::apply, ExpandStep::shape},
    {"contract", CONTRACT, P_SHARE, -1, 2, {O_WEIGHT, O_SHARE}, nullptr, ContractStep::apply, ContractStep::shape},
};

constexpr bool table_is_complete() {
  for (int k = 0; k < NKINDS; ++k) {
    const StepKind& row = STEP_TABLE[k];
    if (row.code != k || !row.apply || !row.shape) return false;
  }
  return true;
}
static_assert(table_is_complete(), "STEP_TABLE rows must be in Kind order, each with its apply and shape");

inline const char* kind_name(int k) { return STEP_TABLE[k].name; }

}  // namespace syno
