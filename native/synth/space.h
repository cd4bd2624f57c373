// The bottom-up space of syno_tvm/synth/space.py: candidate steps, the judge (depth, rules, shape distance),
// apply, and Finalize with the FLOPs/params limits.  What differs between step kinds is in steps.h, reached through
// STEP_TABLE; the Contractions' draws and listings are here, as in Python's Space.  Same digests, same rules, same
// bound: a path the native sampler takes is a path the Python space accepts, ending in the same operator
// (tests/test_synth_native.py).
#pragma once

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "distance.h"
#include "plan.h"
#include "rules.h"
#include "steps.h"

namespace syno {

using NodeP = std::shared_ptr<const Node>;

struct Verdict {
  enum Reason : int { OK, DEPTH, RULE, DISTANCE };
  int reason = OK;
  int rule = -1;
  int dist = UNREACHABLE;
};

// Finalize's verdict: an operator (its tensors and limits figures) or why there is none.
struct Final {
  bool ok = false;
  std::string why;
  NodeP node;                              // the node it was made from: its dim ids are the ones below
  std::vector<int> inputs;                 // dims of the input tensor
  std::vector<std::vector<int>> weights;   // dims of each weight, weights numbered by signature
  std::vector<int> share_number;           // per prim: the renumbered weight of a Share (0 for others)
  std::vector<int64_t> flops, params;      // per layer
};

class Space {
 public:
  Space(SizeTable& sizes, NativeSpec spec, const std::vector<std::string>& rules)
      : sz_(sizes), spec_(std::move(spec)), dist_(sizes, spec_), view_(sizes, spec_) {
    if (spec_.max_shares > MAX_SHARES)
      throw std::invalid_argument("the native search supports at most " + std::to_string(MAX_SHARES) +
                                  " Shares per Contraction; lower the spec's shares or use the Python sampler");
    for (const auto& r : rules) {
      int id = 0;
      while (id < NRULES && r != rule_name(id)) ++id;
      if (id == NRULES) throw std::invalid_argument("unknown canonicalization rule '" + r + "'");
      on_[id] = true;
    }
    for (int k = 0; k < NKINDS; ++k)
      for (int r = 0; r < NRULES; ++r)
        if (on_[r] && rule_about(r, k)) rules_for_[k].push_back(r);
    reduce_anywhere_ = !on_[R_REDUCE_FIRST];
    reduce_sorted_ = on_[R_REDUCE_ORDER];
    raw_ = on_[R_NO_EXPAND_OF_REDUCE];
    input_sorted_ = spec_.search_input;
    std::sort(input_sorted_.begin(), input_sorted_.end());
  }

  const NativeSpec& spec() const { return spec_; }

  // Random draws, as the Python sampler makes them: a double in [0, 1), and a uniform index below n.
  template <class Rng>
  static double uniform(Rng& rng) {
    return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
  }
  template <class Rng>
  static int pick(Rng& rng, int n) {
    return static_cast<int>(uniform(rng) * n);
  }
  size_t memo_size() const { return dist_.memo_size(); }

  NodeP root() const {
    auto n = std::make_shared<Node>();
    n->used.assign(sz_.nvars(), 0);
    std::vector<char> fixed_out(spec_.output.size(), 0);
    for (auto [i, o] : spec_.fixed) fixed_out[o] = 1;
    for (size_t pos = 0; pos < spec_.output.size(); ++pos) {
      int size = spec_.output[pos].size;
      n->sizes.push_back(size);
      n->output.push_back(static_cast<int>(pos));
      if (fixed_out[pos]) continue;
      Dim d;
      d.id = static_cast<int>(pos);
      d.size = size;
      d.hash = Text().lit("'out', ").num(static_cast<long>(pos)).lit(", ").q(sz_[size].text).digest();
      d.origin = O_OUT;
      d.unordered = spec_.output[pos].unordered;
      n->frontier.push_back(d);
    }
    n->compute_hash();
    return n;
  }

  bool can_reduce(const Node& n) const { return n.only_reduces() || reduce_anywhere_; }
  int remaining(const Node& n) const { return spec_.max_depth - n.depth; }
  int reduce_floor(const Step& s) const { return reduce_sorted_ && s.kind == REDUCE ? s.size : -1; }
  int node_distance(const Node& n) {
    return dist_.of_node(n, can_reduce(n), n.has_last ? reduce_floor(n.last) : -1, raw_);
  }

  // ---- candidate steps (before rules and distance) ----------------------------------------------------------------
  // Candidate steps of one kind, each distinct frontier hash once, as compact records (Cand); none for a kind that
  // has no listing (Contractions).
  void candidates(const Node& node, int kind, std::vector<Cand>& out) {
    if (STEP_TABLE[kind].candidates) STEP_TABLE[kind].candidates(view_, node, out);
  }

  static Step step_of(const Cand& c) {
    Step s;
    s.kind = c.kind;
    s.size = c.size;
    if (STEP_TABLE[c.kind].dims == 2) s.dims = {c.a, c.b};
    else if (STEP_TABLE[c.kind].dims == 1) s.dims = {c.a};
    return s;
  }

  std::vector<Step> steps(const Node& node, int kind) {
    std::vector<Cand> cands;
    candidates(node, kind, cands);
    std::vector<Step> out;
    for (const Cand& c : cands) out.push_back(step_of(c));
    return out;
  }

  // One random Contraction candidate, drawn as Python's random_contraction draws it; false when there is none.
  template <class Rng>
  bool random_contraction(const Node& node, Rng& rng, Step* out) {
    int n = static_cast<int>(node.frontier.size());
    int top = std::min(spec_.max_shares, n);
    if (static_cast<int>(node.weights.size()) >= spec_.max_weights || top < 2) return false;
    int count = 2 + pick(rng, top - 1);
    int order[64];
    for (int i = 0; i < n; ++i) order[i] = i;
    for (int i = 0; i < count; ++i) std::swap(order[i], order[i + pick(rng, n - i)]);
    std::sort(order, order + count);
    char outer[MAX_SHARES];
    for (int i = 0; i < count; ++i) outer[i] = uniform(rng) < 0.5;
    outer[pick(rng, count)] = 0;
    std::pair<Hash, char> pairs[MAX_SHARES];
    for (int i = 0; i < count; ++i) pairs[i] = {node.frontier[order[i]].hash, outer[i]};
    std::sort(pairs, pairs + count);
    out->kind = CONTRACT;
    out->size = -1;
    out->dims.n = out->outer.n = 0;
    for (int i = 0; i < count; ++i) {
      out->dims.push_back(pairs[i].first);
      out->outer.push_back(pairs[i].second);
    }
    return step_allowance_ok(node, *out);
  }

  // Every Contraction candidate in Python's order (Space.steps(node, "contract")): per distinct frontier hash (in
  // hash order) how many of its dims are inner and how many outer, the last hash varying fastest; 2..max_shares
  // dims, at least one inner, within the allowance.  Only node expansion lists them all (the sampler draws them).
  std::vector<Step> all_contractions(const Node& node) {
    std::vector<Step> out;
    if (static_cast<int>(node.weights.size()) >= spec_.max_weights) return out;
    std::vector<std::pair<Hash, int>> groups;  // (hash, count), sorted by hash
    for (const auto& d : node.frontier) {
      auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == d.hash; });
      if (it == groups.end()) groups.push_back({d.hash, 1});
      else ++it->second;
    }
    std::sort(groups.begin(), groups.end());
    std::vector<std::vector<std::pair<int, int>>> options;
    for (const auto& [h, n] : groups) {
      std::vector<std::pair<int, int>> o;
      for (int i = 0; i <= n; ++i)
        for (int j = 0; j <= n - i; ++j) o.push_back({i, j});
      options.push_back(o);
    }
    std::vector<size_t> at(groups.size(), 0);
    while (true) {
      int n_in = 0, n_all = 0;
      for (size_t g = 0; g < groups.size(); ++g) {
        n_in += options[g][at[g]].first;
        n_all += options[g][at[g]].first + options[g][at[g]].second;
      }
      if (n_in >= 1 && n_all >= 2 && n_all <= spec_.max_shares) {
        std::vector<std::pair<Hash, char>> pairs;
        for (size_t g = 0; g < groups.size(); ++g) {
          for (int i = 0; i < options[g][at[g]].first; ++i) pairs.push_back({groups[g].first, 0});
          for (int i = 0; i < options[g][at[g]].second; ++i) pairs.push_back({groups[g].first, 1});
        }
        Step s = contraction(pairs);
        if (step_allowance_ok(node, s)) out.push_back(s);
      }
      size_t g = groups.size();
      while (g > 0 && ++at[g - 1] == options[g - 1].size()) at[--g] = 0;
      if (g == 0) break;
    }
    return out;
  }

  // The Contractions after which the frontier has exactly the input's sizes (Python's closing_contractions).
  std::vector<Step> closing_contractions(const Node& node) {
    std::vector<Step> out;
    if (static_cast<int>(node.weights.size()) >= spec_.max_weights) return out;
    std::vector<int> size_order;                 // sizes in order of first appearance
    std::vector<std::vector<int>> by_size;       // frontier positions per size
    for (size_t i = 0; i < node.frontier.size(); ++i) {
      int s = node.frontier[i].size;
      auto it = std::find(size_order.begin(), size_order.end(), s);
      if (it == size_order.end()) {
        size_order.push_back(s);
        by_size.push_back({static_cast<int>(i)});
      } else {
        by_size[it - size_order.begin()].push_back(static_cast<int>(i));
      }
    }
    for (int s : spec_.search_input)
      if (!contains(size_order, s)) return out;
    // per size: the ways to pick the dims that stay (kept, closed)
    std::vector<std::vector<std::pair<std::vector<int>, std::vector<int>>>> choices;
    for (size_t g = 0; g < size_order.size(); ++g) {
      int want = static_cast<int>(std::count(spec_.search_input.begin(), spec_.search_input.end(), size_order[g]));
      const auto& dims = by_size[g];
      if (want > static_cast<int>(dims.size())) return out;
      std::vector<std::pair<std::vector<int>, std::vector<int>>> ways;
      for (const auto& keep : combinations(dims, want)) {
        bool disc = false;
        for (int i : keep) disc = disc || node.frontier[i].discarding;
        if (disc) continue;
        std::vector<int> gone;
        for (int i : dims)
          if (!contains(keep, i)) gone.push_back(i);
        ways.push_back({keep, gone});
      }
      choices.push_back(std::move(ways));
    }
    std::vector<size_t> idx(choices.size(), 0);
    for (const auto& c : choices)
      if (c.empty()) return out;
    while (true) {
      std::vector<int> keep, closed;
      for (size_t g = 0; g < choices.size(); ++g) {
        const auto& [k, c] = choices[g][idx[g]];
        keep.insert(keep.end(), k.begin(), k.end());
        closed.insert(closed.end(), c.begin(), c.end());
      }
      for (int r = 1; r <= static_cast<int>(keep.size()); ++r) {
        int total = static_cast<int>(closed.size()) + r;
        if (total < 2 || total > spec_.max_shares) continue;
        for (const auto& inner : combinations(keep, r)) {
          std::vector<std::pair<Hash, char>> pairs;
          for (int i : inner) pairs.push_back({node.frontier[i].hash, 0});
          for (int i : closed) pairs.push_back({node.frontier[i].hash, 1});
          Step st = contraction(pairs);
          if (step_allowance_ok(node, st) && std::find(out.begin(), out.end(), st) == out.end())
            out.push_back(std::move(st));
        }
      }
      size_t g = 0;  // odometer over the product of choices
      while (g < idx.size() && ++idx[g] == choices[g].size()) idx[g++] = 0;
      if (g == idx.size()) break;
    }
    return out;
  }

  // ---- judging and applying ----------------------------------------------------------------------------------------
  // The child if the step is canonical and its distance fits the depth left; else null, and `verdict` says why
  // (a code, not a text: most candidate steps are rejected, and formatting reasons cost more than judging).
  NodeP judge(const Node& node, const Step& step, Verdict* verdict = nullptr) {
    Verdict v;
    NodeP out;
    if (node.depth >= spec_.max_depth) {
      v.reason = Verdict::DEPTH;
    } else {
      for (int r : rules_for_[step.kind])
        if (!rule_allows(r, sz_, spec_, node, step)) {
          v.reason = Verdict::RULE;
          v.rule = r;
          break;
        }
      if (v.reason == Verdict::OK) {
        v.dist = dist_.of_step(node, step, STEP_TABLE[step.kind].shape,
                               (node.only_reduces() && step.kind == REDUCE) || reduce_anywhere_, reduce_floor(step),
                               raw_);
        if (v.dist > remaining(node) - 1) v.reason = Verdict::DISTANCE;
        else out = apply(node, step);
      }
    }
    if (verdict) *verdict = v;
    return out;
  }

  // Python's reason text for a verdict (Space._judge).
  std::string why(const Node& node, const Verdict& v) const {
    switch (v.reason) {
      case Verdict::DEPTH: return "limit depth " + std::to_string(spec_.max_depth);
      case Verdict::RULE: return std::string("rule ") + rule_name(v.rule);
      case Verdict::DISTANCE:
        return "shape distance " + (v.dist < UNREACHABLE ? std::to_string(v.dist) : std::string("unreachable")) +
               " > depth left " + std::to_string(remaining(node) - 1);
    }
    return "";
  }

  NodeP apply(const Node& node, const Step& step) {
    if (step.kind < 0 || step.kind >= NKINDS) throw std::invalid_argument("unknown step kind");
    auto n = std::make_shared<Node>(node);  // depth, last and hash are set below
    const StepKind& kind = STEP_TABLE[step.kind];
    Builder b(*n, step, kind, sz_);
    kind.apply(b, step);
    n->depth = node.depth + 1;
    n->has_last = true;
    n->last = step;
    n->compute_hash();
    return n;
  }

  // ---- finals ------------------------------------------------------------------------------------------------------
  // Cached per node hash, as Python's: a node reached again by another path (other dim ids, same operator) gets
  // the Final of the first one, which carries that node so that ids and dims stay together.
  // Only nodes whose frontier is the input's are cached (with the node, when final): every entered node is asked,
  // and keeping all of them alive cost gigabytes on long runs.
  const Final& finalize(const NodeP& node) {
    if (!frontier_is_input(*node)) return not_input_;
    auto it = finals_.find(node->hash);
    if (it != finals_.end()) return it->second;
    Final f = make_final(*node);
    if (f.ok) f.node = node;
    return finals_.emplace(node->hash, std::move(f)).first->second;
  }

 private:
  static std::string g3(double x) {  // Python's format(x, ".3g")
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", x);
    return buf;
  }

  // A Contraction step with its (hash, outer) pairs in sorted order, as Python builds them.
  static Step contraction(std::vector<std::pair<Hash, char>> pairs) {
    std::sort(pairs.begin(), pairs.end());
    Step s;
    s.kind = CONTRACT;
    for (auto [h, o] : pairs) {
      s.dims.push_back(h);
      s.outer.push_back(o);
    }
    return s;
  }

  bool step_allowance_ok(const Node& node, const Step& s) const {
    int sizes[MAX_SHARES];
    for (size_t k = 0; k < s.dims.size(); ++k) sizes[k] = node.dim(s.dims[k]).size;
    return view_.allowance_ok(node, sizes, static_cast<int>(s.dims.size()));
  }

  static std::vector<std::vector<int>> combinations(const std::vector<int>& xs, int r) {
    std::vector<std::vector<int>> out;
    int n = static_cast<int>(xs.size());
    if (r > n) return out;
    std::vector<int> idx(r);
    for (int i = 0; i < r; ++i) idx[i] = i;
    while (true) {
      std::vector<int> c;
      for (int i : idx) c.push_back(xs[i]);
      out.push_back(std::move(c));
      int i = r - 1;
      while (i >= 0 && idx[i] == n - r + i) --i;
      if (i < 0) break;
      ++idx[i];
      for (int j = i + 1; j < r; ++j) idx[j] = idx[j - 1] + 1;
    }
    return out;
  }

  bool frontier_is_input(const Node& node) const {
    if (node.frontier.size() != input_sorted_.size()) return false;
    int have[64];
    int n = 0;
    for (const auto& d : node.frontier) {
      if (d.discarding) return false;
      have[n++] = d.size;
    }
    std::sort(have, have + n);
    return std::equal(have, have + n, input_sorted_.begin());
  }

  Final make_final(const Node& node) {
    Final f;
    if (node.weights.empty()) {
      f.why = "limit weights: an operator needs at least one weight to learn";
      return f;
    }
    std::vector<Dim> free(node.frontier);
    for (size_t pos = 0; pos < spec_.input.size(); ++pos) {
      int fixed_out = -1;
      for (auto [i, o] : spec_.fixed)
        if (i == static_cast<int>(pos)) fixed_out = o;
      if (fixed_out >= 0) {
        f.inputs.push_back(node.output[fixed_out]);
        continue;
      }
      for (auto it = free.begin(); it != free.end(); ++it)
        if (it->size == spec_.input[pos]) {
          f.inputs.push_back(it->id);
          free.erase(it);
          break;
        }
    }
    int nw = static_cast<int>(node.weights.size());
    std::vector<int> order(nw);
    for (int i = 0; i < nw; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return node.weights[a].sig < node.weights[b].sig; });
    std::vector<int> number(nw + 1);
    for (int rank = 0; rank < nw; ++rank) number[order[rank] + 1] = rank + 1;
    for (const auto& p : node.prims) f.share_number.push_back(p.kind == P_SHARE ? number[p.param] : 0);
    for (int i : order) {
      auto dims = node.weights[i].dims;
      std::sort(dims.begin(), dims.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second < b.second : a.first < b.first;
      });
      std::vector<int> ids;
      for (auto [id, h] : dims) ids.push_back(id);
      f.weights.push_back(std::move(ids));
    }
    // limits, in every layer
    PlanGraph g;
    g.ndims = static_cast<int>(node.sizes.size());
    for (const auto& p : node.prims)
      g.prims.push_back({p.kind, {p.tops.begin(), p.tops.end()}, {p.bottoms.begin(), p.bottoms.end()}});
    g.tensors.push_back(f.inputs);
    for (const auto& w : f.weights) g.tensors.push_back(w);
    g.output = node.output;
    std::vector<std::vector<int64_t>> per_binding;
    for (int b : spec_.layers) {
      std::vector<int64_t> dims;
      for (int s : node.sizes) dims.push_back(sz_[s].value[b]);
      per_binding.push_back(std::move(dims));
    }
    std::vector<int64_t> flops = plan_flops(g, per_binding);
    for (size_t l = 0; l < spec_.layers.size(); ++l) {
      int64_t params = 0;
      for (const auto& w : f.weights) {
        int64_t p = 1;
        for (int d : w) p *= per_binding[l][d];
        params += p;
      }
      double rf = static_cast<double>(spec_.ref_flops[l]), rp = static_cast<double>(spec_.ref_params[l]);
      double fl = static_cast<double>(flops[l]), pa = static_cast<double>(params);
      if (!(spec_.flops_lo * rf <= fl && fl <= spec_.flops_hi * rf)) {
        f.why = "limit flops: " + g3(fl / rf) + "x the " + spec_.reference + " FLOPs in layer " + spec_.layer_names[l] +
                ", outside " + spec_.flops_text;
        return f;
      }
      if (!(spec_.params_lo * rp <= pa && pa <= spec_.params_hi * rp)) {
        f.why = "limit params: " + g3(pa / rp) + "x the " + spec_.reference + " parameters in layer " +
                spec_.layer_names[l] + ", outside " + spec_.params_text;
        return f;
      }
      f.flops.push_back(flops[l]);
      f.params.push_back(params);
    }
    f.ok = true;
    return f;
  }

  SizeTable& sz_;
  NativeSpec spec_;
  Distance dist_;
  SpaceView view_;
  bool on_[NRULES] = {};
  std::vector<int> rules_for_[NKINDS];
  bool reduce_anywhere_ = false, reduce_sorted_ = false, raw_ = false;
  std::vector<int> input_sorted_;
  std::unordered_map<Hash, Final> finals_;
  const Final not_input_{false, "the frontier is not the input's dims", nullptr, {}, {}, {}, {}, {}};
};

}  // namespace syno
