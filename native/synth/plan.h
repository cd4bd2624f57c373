// C++17 port of the FLOPs of syno_tvm/lower/order.py: plan(op, binding).flops, for many bindings at once.
//
// The Python search enumerates stagings (which subset of factors to contract first, summing out the Reduce dims
// only that subset uses) and takes the cheapest.  Which stages exist depends only on the graph, never on the sizes,
// so the search tree is built once per call and its costs are then evaluated per binding (min per binding).
// Only the minimum FLOPs value is needed: Python's tie-break towards fewer stages never changes that value.
//
// Assumes a valid Operator (each dim produced once and consumed once, acyclic), as Operator.validate enforces.
// Values that do not fit int64 saturate: the result is exact whenever Python's value is < INT64_MAX, and
// INT64_MAX otherwise (a candidate that overflows can never be the minimum of one that does not).
#pragma once

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace syno {

enum PrimKind : int { P_REDUCE = 0, P_MERGE, P_SPLIT, P_SHIFT, P_STRIDE, P_UNFOLD, P_EXPAND, P_SHARE };
struct PlanPrim { int kind; std::vector<int> tops; std::vector<int> bottoms; };
struct PlanGraph {
  int ndims;                                  // dims are 0..ndims-1
  std::vector<PlanPrim> prims;                // in the operator's prim order (indices matter as in Python)
  std::vector<std::vector<int>> tensors;      // input first, then weights (Operator.tensors)
  std::vector<int> output;                    // Operator.output
};

namespace plan_detail {

__extension__ typedef unsigned __int128 u128;  // __extension__: quiet under -Wpedantic
// Clamp for every intermediate: a product of a clamped value and a size < 2^63 still fits in 128 bits.
constexpr u128 SAT = static_cast<u128>(std::numeric_limits<int64_t>::max());

inline u128 clamp(u128 x) { return x > SAT ? SAT : x; }

// cost = mult * prod(sizes of pool[off .. off+len))
struct Term { int off, len; int64_t mult; };
// One candidate stage out of a node: its cost term and the node of the state it leaves.  Edges of a node form a
// linked list because its children are built (and add their own edges) between its edges.
struct Edge { int term, child, next; };
struct Node { int final_term, first_edge; };
// A factor of a search state: Python's (factor id, dims); dims live in the pool.  Ids are kept for fidelity only.
struct Factor { int id, off, len; };

class Planner {
 public:
  void run(const PlanGraph& g, const std::vector<std::vector<int64_t>>& sizes, std::vector<int64_t>& out) {
    setup(g);
    nodes_.clear(); edges_.clear(); terms_.clear(); pool_.clear();
    alive_.clear(); factors_.clear(); reduces_.clear(); rtens_.clear();

    // Start state: every non-Reduce prim pending (Reduce prims are sources, never lowered), the tensors as factors,
    // every Reduce dim pending.  Python's op.reduces is in prim order; the state only uses it as a set.
    for (int i = 0; i < P_; ++i) alive_.push_back(g.prims[i].kind != P_REDUCE);
    for (size_t t = 0; t < g.tensors.size(); ++t) {
      int off = static_cast<int>(pool_.size());
      for (int d : g.tensors[t]) pool_.push_back(d);
      factors_.push_back({static_cast<int>(t), off, static_cast<int>(g.tensors[t].size())});
    }
    for (int i = 0; i < P_; ++i)
      if (g.prims[i].kind == P_REDUCE) reduces_.push_back(g.prims[i].tops[0]);
    sort_small(reduces_, 0, static_cast<int>(reduces_.size()));
    int nt = static_cast<int>(g.tensors.size());
    build(0, 0, nt, 0, static_cast<int>(reduces_.size()), nt);

    out.assign(sizes.size(), 0);
    val_.resize(terms_.size());
    best_.resize(nodes_.size());
    for (size_t b = 0; b < sizes.size(); ++b) {
      const std::vector<int64_t>& sz = sizes[b];
      if (static_cast<int>(sz.size()) != D_)
        throw std::invalid_argument("plan_flops: binding " + std::to_string(b) + " has " +
                                    std::to_string(sz.size()) + " sizes, the graph has " + std::to_string(D_) +
                                    " dims");
      for (int64_t s : sz)
        if (s < 0) throw std::invalid_argument("plan_flops: a dim size is negative");
      for (size_t t = 0; t < terms_.size(); ++t) {
        const Term& tm = terms_[t];
        u128 acc = static_cast<u128>(tm.mult);
        for (int j = 0; j < tm.len; ++j) acc = clamp(acc * static_cast<u128>(sz[pool_[tm.off + j]]));
        val_[t] = acc;
      }
      // Children have larger indices than their parent (a node is numbered before its subtree is built).
      for (int n = static_cast<int>(nodes_.size()) - 1; n >= 0; --n) {
        u128 v = val_[nodes_[n].final_term];
        for (int e = nodes_[n].first_edge; e >= 0; e = edges_[e].next) {
          u128 c = clamp(val_[edges_[e].term] + best_[edges_[e].child]);
          if (c < v) v = c;
        }
        best_[n] = v;
      }
      out[b] = static_cast<int64_t>(best_[0]);
    }
  }

 private:
  const PlanGraph* g_ = nullptr;
  int P_ = 0, D_ = 0;
  std::vector<int> src_, snk_;      // dim -> the prim with it as a top / as a bottom; -1 if none

  std::vector<Node> nodes_;
  std::vector<Edge> edges_;
  std::vector<Term> terms_;
  std::vector<int> pool_;           // dims of tensors, terms and stage factors (a stage's dims prefix its term)

  // Per-level state stacks (each level appends its child's state and truncates after the recursion).
  std::vector<char> alive_;         // P_ flags per level: prim still pending (Python's state.prims)
  std::vector<Factor> factors_;
  std::vector<int> reduces_;        // pending Reduce dims, ascending
  std::vector<uint64_t> rtens_;     // per level: tens() of each pending reduce, as a mask of factor positions

  // Scratch over dims / prims, all-zero (or -1) between uses.
  std::vector<int> factor_of_;
  std::vector<uint64_t> tens_;
  std::vector<char> tens_done_, is_elim_, computed_, in_cut_, is_inside_;
  std::vector<signed char> taint_;
  std::vector<int> inside_, elim_;

  std::vector<u128> val_, best_;

  void setup(const PlanGraph& g) {
    g_ = &g;
    P_ = static_cast<int>(g.prims.size());
    D_ = g.ndims;
    if (D_ < 0) throw std::invalid_argument("plan_flops: negative ndims");
    if (g.tensors.size() > 62) throw std::invalid_argument("plan_flops: more than 62 tensors");
    src_.assign(D_, -1);
    snk_.assign(D_, -1);
    auto check = [&](int d) {
      if (d < 0 || d >= D_) throw std::out_of_range("plan_flops: dim " + std::to_string(d) + " out of range");
    };
    for (int i = 0; i < P_; ++i) {
      const PlanPrim& p = g.prims[i];
      if (p.kind == P_REDUCE && p.tops.size() != 1)
        throw std::invalid_argument("plan_flops: a Reduce must have exactly one top dim");
      for (int d : p.tops) { check(d); src_[d] = i; }
      for (int d : p.bottoms) { check(d); snk_[d] = i; }
    }
    for (const auto& t : g.tensors) for (int d : t) check(d);
    for (int d : g.output) check(d);
    factor_of_.assign(D_, -1);
    tens_.assign(D_, 0);
    tens_done_.assign(D_, 0);
    is_elim_.assign(D_, 0);
    computed_.assign(D_, 0);
    in_cut_.assign(D_, 0);
    taint_.assign(D_, -1);
    is_inside_.assign(P_, 0);
  }

  static void sort_small(std::vector<int>& v, int lo, int hi) {  // insertion sort: the ranges are tiny
    for (int i = lo + 1; i < hi; ++i)
      for (int j = i; j > lo && v[j - 1] > v[j]; --j) std::swap(v[j - 1], v[j]);
  }

  // Factors whose index depends on dim d, reached upward through pending prims (Python's tens).  A dim that is a
  // factor's own dim stops the walk, even if a pending prim also consumes it (Python checks factor_of first).
  uint64_t tens(int d, int alive_off) {
    if (tens_done_[d]) return tens_[d];
    uint64_t m = 0;
    if (factor_of_[d] >= 0) {
      m = uint64_t{1} << factor_of_[d];
    } else {
      int p = snk_[d];
      if (p >= 0 && alive_[alive_off + p])
        for (int t : g_->prims[p].tops) m |= tens(t, alive_off);
    }
    tens_done_[d] = 1;
    tens_[d] = m;
    return m;
  }

  // Whether dim d's value depends on an eliminated Reduce dim, reached downward through pending prims: Python's
  // `deps(d) & elim_set` being non-empty (a dim with no pending source depends on itself only).
  bool tainted(int d, int alive_off) {
    if (taint_[d] >= 0) return taint_[d];
    bool t = false;
    int p = src_[d];
    if (p >= 0 && alive_[alive_off + p]) {
      for (int b : g_->prims[p].bottoms)
        if (tainted(b, alive_off)) { t = true; break; }
    } else {
      t = is_elim_[d];
    }
    taint_[d] = t;
    return t;
  }

  int add_term(int off, int len, int64_t mult) {
    terms_.push_back({off, len, mult});
    return static_cast<int>(terms_.size()) - 1;
  }

  // Python's search(state): a node with the "final" stage and one edge per non-None _early_stage.
  int build(int alive_off, int fac_off, int nfac, int red_off, int nred, int next_id) {
    const PlanGraph& g = *g_;
    int node = static_cast<int>(nodes_.size());
    nodes_.push_back({-1, -1});
    {  // final(state): output x pending reduces, one op per factor
      int off = static_cast<int>(pool_.size());
      for (int d : g.output) pool_.push_back(d);
      for (int j = 0; j < nred; ++j) pool_.push_back(reduces_[red_off + j]);
      nodes_[node].final_term = add_term(off, static_cast<int>(pool_.size()) - off, nfac);
    }
    // No proper non-empty subset, or nothing left to eliminate: every _early_stage would be None.
    if (nfac < 2 || nred == 0) return node;

    // tens() depends on the state only: evaluate it for the pending reduces once, before any child reuses scratch.
    for (int pos = 0; pos < nfac; ++pos) {  // later factors win, as in Python's dict comprehension
      const Factor& f = factors_[fac_off + pos];
      for (int j = 0; j < f.len; ++j) factor_of_[pool_[f.off + j]] = pos;
    }
    int rt_off = static_cast<int>(rtens_.size());
    for (int j = 0; j < nred; ++j) rtens_.push_back(tens(reduces_[red_off + j], alive_off));
    for (int pos = 0; pos < nfac; ++pos) {
      const Factor& f = factors_[fac_off + pos];
      for (int j = 0; j < f.len; ++j) factor_of_[pool_[f.off + j]] = -1;
    }
    for (int d = 0; d < D_; ++d) tens_done_[d] = 0;

    // combinations(state.factors, k) for k = 1 .. nfac-1, in Python's order (lexicographic positions).
    int idx[64];
    for (int k = 1; k < nfac; ++k) {
      for (int j = 0; j < k; ++j) idx[j] = j;
      for (;;) {
        uint64_t mask = 0;
        for (int j = 0; j < k; ++j) mask |= uint64_t{1} << idx[j];
        stage(node, alive_off, fac_off, nfac, red_off, nred, rt_off, k, mask, next_id);
        int j = k - 1;
        while (j >= 0 && idx[j] == nfac - k + j) --j;
        if (j < 0) break;
        ++idx[j];
        for (int i = j + 1; i < k; ++i) idx[i] = idx[i - 1] + 1;
      }
    }
    rtens_.resize(rt_off);
    return node;
  }

  // Python's _early_stage for one subset (a mask of factor positions), and the recursion on the state it leaves.
  void stage(int node, int alive_off, int fac_off, int nfac, int red_off, int nred, int rt_off, int k,
             uint64_t mask, int next_id) {
    const PlanGraph& g = *g_;
    // elim: pending reduces used by some factor and only by factors in the subset (ascending, like sorted()).
    elim_.clear();
    for (int j = 0; j < nred; ++j) {
      uint64_t t = rtens_[rt_off + j];
      if (t != 0 && (t & ~mask) == 0) elim_.push_back(reduces_[red_off + j]);
    }
    if (elim_.empty()) return;
    for (int r : elim_) is_elim_[r] = 1;

    // inside: pending prims with a bottom that depends on an eliminated dim (ascending prim index).
    for (int d = 0; d < D_; ++d) taint_[d] = -1;
    inside_.clear();
    for (int i = 0; i < P_; ++i) {
      if (!alive_[alive_off + i]) continue;
      for (int b : g.prims[i].bottoms)
        if (tainted(b, alive_off)) { inside_.push_back(i); is_inside_[i] = 1; break; }
    }
    for (int i : inside_) for (int t : g.prims[i].tops) computed_[t] = 1;

    // cut, built in the pool (it becomes the prefix of this stage's term and the new factor's dims).  in_cut_ counts
    // occurrences so that the list operations below stay literal even if a dim were ever repeated.
    int off = static_cast<int>(pool_.size());
    auto consider = [&](int d) {
      if (!computed_[d] && !is_elim_[d] && !in_cut_[d]) { pool_.push_back(d); ++in_cut_[d]; }
    };
    for (int pos = 0; pos < nfac; ++pos) {
      if (!(mask >> pos & 1)) continue;
      const Factor& f = factors_[fac_off + pos];
      for (int j = 0; j < f.len; ++j) consider(pool_[f.off + j]);
    }
    size_t n_inside = inside_.size();
    for (size_t j = 0; j < n_inside; ++j) for (int b : g.prims[inside_[j]].bottoms) consider(b);

    // Share absorption to a fixpoint.  Python walks a frozenset (order unspecified); ascending order gives the same
    // absorbed set (a Share's tops are nobody else's, so absorbing one never blocks another) and the same cut set.
    for (bool absorbed = true; absorbed;) {
      absorbed = false;
      for (int i = 0; i < P_; ++i) {
        if (!alive_[alive_off + i] || is_inside_[i] || g.prims[i].kind != P_SHARE) continue;
        const PlanPrim& p = g.prims[i];
        bool all = true;
        for (int t : p.tops) if (!in_cut_[t]) { all = false; break; }
        if (!all) continue;
        for (int t : p.tops) in_cut_[t] = 0;
        size_t w = off;
        for (size_t r = off; r < pool_.size(); ++r)
          if (!is_top(p, pool_[r])) pool_[w++] = pool_[r];
        pool_.resize(w);
        for (int b : p.bottoms) { pool_.push_back(b); ++in_cut_[b]; }
        inside_.push_back(i);
        is_inside_[i] = 1;
        absorbed = true;
      }
    }
    int cut_len = static_cast<int>(pool_.size()) - off;
    for (int r : elim_) pool_.push_back(r);
    int term = add_term(off, cut_len + static_cast<int>(elim_.size()), k);

    // The state the stage leaves: pending prims minus inside, unchosen factors then the new one, reduces minus elim.
    int c_alive = static_cast<int>(alive_.size());
    for (int i = 0; i < P_; ++i) alive_.push_back(alive_[alive_off + i] && !is_inside_[i]);
    int c_fac = static_cast<int>(factors_.size());
    for (int pos = 0; pos < nfac; ++pos) {
      if (mask >> pos & 1) continue;
      Factor f = factors_[fac_off + pos];  // a copy: push_back may reallocate
      factors_.push_back(f);
    }
    factors_.push_back({next_id, off, cut_len});
    int c_red = static_cast<int>(reduces_.size());
    for (int j = 0; j < nred; ++j) {
      int r = reduces_[red_off + j];
      if (!is_elim_[r]) reduces_.push_back(r);
    }
    int c_nred = static_cast<int>(reduces_.size()) - c_red;

    // Clear the scratch before the recursion reuses it.
    for (int r : elim_) is_elim_[r] = 0;
    for (int i : inside_) { is_inside_[i] = 0; for (int t : g.prims[i].tops) computed_[t] = 0; }
    for (int j = 0; j < cut_len; ++j) in_cut_[pool_[off + j]] = 0;

    int child = build(c_alive, c_fac, nfac - k + 1, c_red, c_nred, next_id + 1);
    edges_.push_back({term, child, nodes_[node].first_edge});
    nodes_[node].first_edge = static_cast<int>(edges_.size()) - 1;

    alive_.resize(c_alive);
    factors_.resize(c_fac);
    reduces_.resize(c_red);
  }

  static bool is_top(const PlanPrim& p, int d) {
    for (int t : p.tops) if (t == d) return true;
    return false;
  }
};

}  // namespace plan_detail

// For each binding b (sizes[b][d] = concrete size of dim d), the FLOPs of the FLOPs-minimal plan, i.e. exactly
// Python's plan(op, binding).flops (saturated at INT64_MAX).  Thread-safe: each thread has its own planner, whose
// buffers are kept between calls to avoid allocation.
inline std::vector<int64_t> plan_flops(const PlanGraph& g, const std::vector<std::vector<int64_t>>& sizes) {
  thread_local plan_detail::Planner planner;
  std::vector<int64_t> out;
  planner.run(g, sizes, out);
  return out;
}

}  // namespace syno
