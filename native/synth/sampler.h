// Random descent with backtracking: syno_tvm/synth/sample.py's Sampler, step for step (its docstrings say why
// kinds are drawn uniformly, why Contractions are drawn rather than listed, and when a descent restarts).
#pragma once

#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "space.h"

namespace syno {

constexpr int CONTRACT_MISSES = 12;
constexpr int FINALIZE = NKINDS;  // the pseudo-kind "return this final"

struct Entry {
  std::vector<std::pair<int, std::vector<Step>>> pending;  // per kind, in Python's dict order
  bool final = false;
  std::unordered_map<Step, NodeP, StepHasher> children;
  std::vector<Step> contract_ok;
  int contract_misses = 0;
  bool exhausted = false, has_final = false, listed = false;

  std::vector<Step>* steps_of(int kind) {
    for (auto& [k, v] : pending)
      if (k == kind) return &v;
    return nullptr;
  }
  void drop(int kind) {
    for (auto it = pending.begin(); it != pending.end(); ++it)
      if (it->first == kind) {
        pending.erase(it);
        return;
      }
  }
};

struct SamplerStats {
  static constexpr int RULES_AT = Verdict::DISTANCE + 1;
  int64_t nodes = 0, dead = 0, finals = 0;
  int64_t rejected[RULES_AT + NRULES] = {};  // per reason code; rule r's at RULES_AT + r

  // Rejections by the first two words of Python's reason ("rule no_double_shift", "shape distance", ...).
  std::map<std::string, int64_t> rejected_by_reason() const {
    std::map<std::string, int64_t> out;
    if (rejected[Verdict::DEPTH]) out["limit depth"] = rejected[Verdict::DEPTH];
    if (rejected[Verdict::DISTANCE]) out["shape distance"] = rejected[Verdict::DISTANCE];
    for (int r = 0; r < NRULES; ++r)
      if (rejected[RULES_AT + r]) out["rule " + rule_names()[r]] = rejected[RULES_AT + r];
    return out;
  }
};

struct Drawn {
  std::vector<Step> path;
  NodeP node;
  const Final* final;
};

class Sampler {
 public:
  Sampler(Space& space, uint64_t seed, int max_restarts = 20000, int backtracks_per_descent = 16)
      : space_(space), rng_(seed), max_restarts_(max_restarts), backtracks_(backtracks_per_descent) {}

  const SamplerStats& stats() const { return stats_; }

  // A final not returned before; false when the space is exhausted or the restart budget ran out.
  bool random_final(Drawn* out) {
    NodeP root = space_.root();
    std::vector<std::pair<NodeP, Step>> path = {{root, Step()}};
    int backtracks = 0, restarts = 0;
    while (!path.empty()) {
      NodeP node = path.back().first;
      Entry& e = entry(node);
      int nkinds = static_cast<int>(e.pending.size()) + (e.final ? 1 : 0);
      if (!nkinds) {
        e.exhausted = true;
        if (!e.has_final) stats_.dead += 1;
        path.pop_back();
        backtracks += 1;
        if (backtracks > backtracks_ && !path.empty()) {
          path = {{root, Step()}};
          backtracks = 0;
          if (++restarts > max_restarts_) break;
        }
        continue;
      }
      int i = Space::draw(rng_, nkinds);
      int kind = i < static_cast<int>(e.pending.size()) ? e.pending[i].first : FINALIZE;
      if (kind == FINALIZE) {
        e.final = false;
        for (auto& [n, s] : path) entries_[n->hash].has_final = true;
        stats_.finals += 1;
        out->path.clear();
        for (size_t k = 1; k < path.size(); ++k) out->path.push_back(path[k].second);
        out->node = node;
        out->final = &space_.finalize(node);
        return true;
      }
      if (kind == CONTRACT && !e.listed) {
        contraction(node, e, path);
        continue;
      }
      std::vector<Step>& steps = *e.steps_of(kind);
      int j = Space::draw(rng_, static_cast<int>(steps.size()));
      Step step = steps[j];
      NodeP child;
      auto it = e.children.find(step);
      if (it != e.children.end()) {
        child = it->second;
      } else {
        child = judge(*node, step);
        if (child) e.children.emplace(step, child);
      }
      const Entry* ce = child ? find(child->hash) : nullptr;
      if (!child || (ce && ce->exhausted)) {
        steps[j] = steps.back();
        steps.pop_back();
        if (steps.empty()) e.drop(kind);
        e.children.erase(step);
        continue;
      }
      path.push_back({child, step});
    }
    return false;
  }

 private:
  Entry& entry(const NodeP& ptr) {
    const Node& node = *ptr;
    auto it = entries_.find(node.hash);
    if (it != entries_.end()) return it->second;
    Entry e;
    for (int k = 0; k < CONTRACT; ++k) {
      if (k == REDUCE && !space_.can_reduce(node)) continue;
      auto steps = space_.steps(node, k);
      if (!steps.empty()) e.pending.push_back({k, std::move(steps)});
    }
    e.listed = space_.remaining(node) == 1;
    if (e.listed) {
      auto steps = space_.closing_contractions(node);
      if (!steps.empty()) e.pending.push_back({CONTRACT, std::move(steps)});
    } else if (static_cast<int>(node.weights.size()) < space_.spec().max_weights && node.frontier.size() >= 2) {
      e.pending.push_back({CONTRACT, {Step()}});  // a placeholder: Contractions are drawn, not listed
    }
    e.final = space_.finalize(ptr).ok;
    stats_.nodes += 1;
    return entries_.emplace(node.hash, std::move(e)).first->second;
  }

  const Entry* find(Hash h) const {
    auto it = entries_.find(h);
    return it == entries_.end() ? nullptr : &it->second;
  }

  NodeP judge(const Node& node, const Step& step) {
    Verdict v;
    NodeP child = space_.judge(node, step, &v);
    if (!child) stats_.rejected[v.reason == Verdict::RULE ? SamplerStats::RULES_AT + v.rule : v.reason] += 1;
    return child;
  }

  void contraction(const NodeP& node, Entry& e, std::vector<std::pair<NodeP, Step>>& path) {
    if (!e.contract_ok.empty() && Space::draw_unit(rng_) < 0.5) {
      int i = Space::draw(rng_, static_cast<int>(e.contract_ok.size()));
      Step step = e.contract_ok[i];
      NodeP child = e.children.at(step);
      const Entry* ce = find(child->hash);
      if (ce && ce->exhausted) {
        e.contract_ok[i] = e.contract_ok.back();
        e.contract_ok.pop_back();
        e.children.erase(step);
      } else {
        path.push_back({child, step});
      }
      return;
    }
    Step step;
    NodeP child;
    if (space_.random_contraction(*node, rng_, &step) && !e.children.count(step)) child = judge(*node, step);
    const Entry* ce = child ? find(child->hash) : nullptr;
    if (!child || (ce && ce->exhausted)) {
      e.contract_misses += 1;
      if (e.contract_misses >= CONTRACT_MISSES && e.contract_ok.empty()) e.drop(CONTRACT);
      return;
    }
    e.contract_misses = 0;
    e.children.emplace(step, child);
    e.contract_ok.push_back(step);
    path.push_back({child, step});
  }

  Space& space_;
  std::mt19937_64 rng_;
  int max_restarts_, backtracks_;
  std::unordered_map<Hash, Entry> entries_;
  SamplerStats stats_;
};

}  // namespace syno
