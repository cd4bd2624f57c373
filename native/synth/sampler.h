// Random descent with backtracking: the algorithm and constants of syno_tvm/synth/sample.py's Sampler (its docstring
// says why kinds are drawn uniformly, why Contractions are drawn rather than listed, and when a descent restarts).
// It draws from its own random stream, so the two sample different finals of the same space.
#pragma once

#include <deque>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "space.h"

namespace syno {

constexpr int CONTRACT_MISSES = 12;  // sample.py's constants (its docstring says how they were chosen)
constexpr int BACKTRACKS = 4;
constexpr Hash REJECTED = 1;  // an Item's child hash once the judge rejected it (a real hash is 1 in 2^64)

// A step still on offer at a node: a candidate record (a listed closing Contraction: its index in Entry::closing),
// and once judged and accepted, its child's hash.  Children are rebuilt when a descent enters them rather than
// kept: a long run judges millions of them, and nodes are the bulk of the memory.
struct Item {
  Cand cand;
  int closing = -1;
  Hash child = 0;  // 0: not judged yet
};

// What is left to try below one node.  Freed as soon as the node is exhausted: a long run enters millions of nodes.
struct Entry {
  std::vector<std::pair<int, std::vector<Item>>> pending;  // per kind, in Python's dict order
  std::vector<Step> closing;                               // listed closing Contractions (one step before the limit)
  std::vector<std::pair<Step, Hash>> contract_ok;          // drawn Contractions with a live child (its hash)
  bool draws = false;                                      // Contractions are drawn at random here
  bool final = false;
  int contract_misses = 0;
  bool exhausted = false, has_final = false;

  void drop(int kind) {
    for (auto it = pending.begin(); it != pending.end(); ++it)
      if (it->first == kind) {
        pending.erase(it);
        return;
      }
  }
  void release() {
    decltype(pending)().swap(pending);
    decltype(closing)().swap(closing);
    decltype(contract_ok)().swap(contract_ok);
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
      if (rejected[RULES_AT + r]) out[std::string("rule ") + rule_name(r)] = rejected[RULES_AT + r];
    return out;
  }
};

struct Drawn {
  std::vector<Step> path;
  const Final* final;  // carries the node it was made from
};

class Sampler {
 public:
  Sampler(Space& space, uint64_t seed, int max_restarts = 20000, int backtracks_per_descent = BACKTRACKS)
      : space_(space), rng_(seed), max_restarts_(max_restarts), backtracks_(backtracks_per_descent) {}

  const SamplerStats& stats() const { return stats_; }

  // A final not returned before; false when the space is exhausted or the restart budget ran out.  `start` (default:
  // the root) is where every descent and restart begins: an MCTS rollout starts at its tree leaf.
  bool random_final(Drawn* out, NodeP start = nullptr) {
    NodeP root = start ? start : space_.root();
    std::vector<std::pair<NodeP, Step>> path = {{root, Step()}};
    int backtracks = 0, restarts = 0;
    while (!path.empty()) {
      NodeP node = path.back().first;
      Entry& e = entry(node);
      int nkinds = static_cast<int>(e.pending.size()) + e.draws + (e.final ? 1 : 0);
      if (!nkinds) {
        e.exhausted = true;
        e.release();
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
      // the kinds on offer, in Python's order: listed kinds, then drawn Contractions, then Finalize
      int i = Space::pick(rng_, nkinds);
      int npend = static_cast<int>(e.pending.size());
      if (i >= npend + e.draws) {
        e.final = false;
        for (auto& [n, s] : path) entries_[index_.find(n->hash)].has_final = true;
        stats_.finals += 1;
        out->path.clear();
        for (size_t k = 1; k < path.size(); ++k) out->path.push_back(path[k].second);
        out->final = &space_.finalize(node);
        return true;
      }
      if (i == npend) {
        contraction(node, e, path);
        continue;
      }
      int kind = e.pending[i].first;
      std::vector<Item>& items = e.pending[i].second;
      int j = Space::pick(rng_, static_cast<int>(items.size()));
      Item& item = items[j];
      Step step = item.closing >= 0 ? e.closing[item.closing] : Space::step_of(item.cand);
      NodeP child;
      if (!item.child) {
        child = judge(*node, step);
        item.child = child ? child->hash : REJECTED;
      }
      const Entry* ce = item.child != REJECTED ? find(item.child) : nullptr;
      if (item.child == REJECTED || (ce && ce->exhausted)) {
        items[j] = items.back();
        items.pop_back();
        if (items.empty()) e.drop(kind);
        continue;
      }
      path.push_back({child ? child : space_.apply(*node, step), step});
    }
    return false;
  }

 private:
  Entry& entry(const NodeP& ptr) {
    const Node& node = *ptr;
    int found = index_.find(node.hash);
    if (found >= 0) return entries_[found];
    Entry e;
    std::vector<Item> items;
    for (int k = 0; k < NKINDS; ++k) {  // listed kinds; Contractions (no listing) are drawn or closing, below
      if (k == REDUCE && !space_.can_reduce(node)) continue;
      cands_.clear();
      space_.candidates(node, k, cands_);
      if (cands_.empty()) continue;
      items.clear();
      for (const Cand& c : cands_) items.push_back({c, -1, 0});
      e.pending.push_back({k, items});
    }
    if (space_.remaining(node) == 1) {
      e.closing = space_.closing_contractions(node);
      if (!e.closing.empty()) {
        items.clear();
        for (size_t c = 0; c < e.closing.size(); ++c)
          items.push_back({Cand{CONTRACT, -1, 0, 0}, static_cast<int>(c), 0});
        e.pending.push_back({CONTRACT, items});
      }
    } else {
      e.draws = static_cast<int>(node.weights.size()) < space_.spec().max_weights && node.frontier.size() >= 2;
    }
    e.final = space_.finalize(ptr).ok;
    stats_.nodes += 1;
    index_.insert(node.hash, static_cast<int>(entries_.size()));
    entries_.push_back(std::move(e));
    return entries_.back();
  }

  const Entry* find(Hash h) const {
    int i = index_.find(h);
    return i < 0 ? nullptr : &entries_[i];
  }

  NodeP judge(const Node& node, const Step& step) {
    Verdict v;
    NodeP child = space_.judge(node, step, &v);
    if (!child) stats_.rejected[v.reason == Verdict::RULE ? SamplerStats::RULES_AT + v.rule : v.reason] += 1;
    return child;
  }

  void contraction(const NodeP& node, Entry& e, std::vector<std::pair<NodeP, Step>>& path) {
    if (!e.contract_ok.empty() && Space::uniform(rng_) < 0.5) {
      int i = Space::pick(rng_, static_cast<int>(e.contract_ok.size()));
      const Entry* ce = find(e.contract_ok[i].second);
      if (ce && ce->exhausted) {
        e.contract_ok[i] = e.contract_ok.back();
        e.contract_ok.pop_back();
      } else {
        path.push_back({space_.apply(*node, e.contract_ok[i].first), e.contract_ok[i].first});
      }
      return;
    }
    Step step;
    NodeP child;
    if (space_.random_contraction(*node, rng_, &step)) {
      bool known = false;
      for (const auto& [s, c] : e.contract_ok) known = known || s == step;
      if (!known) child = judge(*node, step);
    }
    const Entry* ce = child ? find(child->hash) : nullptr;
    if (!child || (ce && ce->exhausted)) {
      e.contract_misses += 1;
      if (e.contract_misses >= CONTRACT_MISSES && e.contract_ok.empty()) e.draws = false;
      return;
    }
    e.contract_misses = 0;
    e.contract_ok.push_back({step, child->hash});
    path.push_back({child, step});
  }

  Space& space_;
  std::mt19937_64 rng_;
  int max_restarts_, backtracks_;
  std::deque<Entry> entries_;  // stable addresses: the descent holds references while it adds entries
  FlatMap index_;              // node hash -> entry
  std::vector<Cand> cands_;  // scratch
  SamplerStats stats_;
};

}  // namespace syno
