// Shape distance: the lower bound of syno_tvm/synth/distance.py, term for term (the docstrings there say why each
// term is sound).  Memoized on the same key: frontier tokens, allowance used, weight and Reduce counts, whether
// Reduces may follow and their floor.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <new>
#include <sys/mman.h>
#include <numeric>
#include <unordered_map>
#include <vector>

#include "spec.h"
#include "state.h"

namespace syno {

constexpr int UNREACHABLE = 1000000;

// Zeroed memory from mmap, on 2 MiB pages where the kernel allows (transparent huge pages in madvise mode): the
// memo is probed at random over tens of megabytes, and with 4 KiB pages most probes also missed the TLB.
template <class T>
class HugeArray {
 public:
  HugeArray() = default;
  explicit HugeArray(size_t n) : n_(n) {
    bytes_ = ((n * sizeof(T) + (2u << 20) - 1) >> 21) << 21;
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    madvise(p, bytes_, MADV_HUGEPAGE);
    p_ = static_cast<T*>(p);
  }
  HugeArray(const HugeArray&) = delete;
  HugeArray(HugeArray&& o) noexcept { *this = std::move(o); }
  HugeArray& operator=(HugeArray&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  ~HugeArray() {
    if (p_) munmap(p_, bytes_);
  }
  T& operator[](size_t i) { return p_[i]; }
  const T& operator[](size_t i) const { return p_[i]; }
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0, bytes_ = 0;
};

// The memo of the bound: keys are short arrays of small ints (tokens, allowance used, counts), stored back to back
// in one arena with open addressing over them.  A node-based map keyed by vectors spent most of the search's time
// in allocation and pointer chasing.
class Memo {
 public:
  Memo() : slots_(1 << 16), arena_(1 << 20) {}

  // The value stored for key[0..len), or -1.
  int find(const uint16_t* key, int len, uint64_t h) const {
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (!s.len) return -1;
      if (s.hash == h && s.len == len && std::equal(key, key + len, arena_.data() + s.off)) return s.value;
    }
  }

  void insert(const uint16_t* key, int len, uint64_t h, int value) {
    if (2 * (count_ + 1) > slots_.size()) grow();
    if (used_ + len > arena_.size()) {  // a bigger arena: keys keep their offsets
      HugeArray<uint16_t> bigger(2 * arena_.size());
      std::copy(arena_.data(), arena_.data() + used_, bigger.data());
      arena_ = std::move(bigger);
    }
    std::copy(key, key + len, arena_.data() + used_);
    place(Slot{h, used_, static_cast<uint16_t>(len), value});
    used_ += len;
    ++count_;
  }

  size_t size() const { return count_; }

  static uint64_t hash(const uint16_t* key, int len) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ static_cast<uint64_t>(len);
    for (int i = 0; i < len; ++i) {
      h = (h ^ key[i]) * 0xff51afd7ed558ccdULL;
      h ^= h >> 32;
    }
    return h ^ (h >> 29);
  }

 private:
  struct Slot {
    uint64_t hash;
    uint64_t off;
    uint16_t len;  // 0: empty (keys are never empty), so zeroed memory is an empty table
    int32_t value;
  };

  void place(const Slot& s) {
    size_t mask = slots_.size() - 1;
    size_t i = s.hash & mask;
    while (slots_[i].len) i = (i + 1) & mask;
    slots_[i] = s;
  }

  void grow() {
    HugeArray<Slot> old(2 * slots_.size());
    std::swap(old, slots_);
    for (size_t i = 0; i < old.size(); ++i)
      if (old[i].len) place(old[i]);
  }

  HugeArray<Slot> slots_;
  HugeArray<uint16_t> arena_;
  uint64_t used_ = 0;
  size_t count_ = 0;
};

// A product of sizes: a reduced rational factor and summed powers.
constexpr int MAX_VARS = 16;  // variables of one spec the native search supports

struct Product {
  i128 num = 1, den = 1;
  int pw[MAX_VARS] = {};
  bool operator==(const Product& o) const {
    return num == o.num && den == o.den && std::equal(pw, pw + MAX_VARS, o.pw);
  }
};

// Sizes or tokens of one frontier without heap storage: the bound is asked for every candidate step.
using Ints = Small<int, 64>;
using Tokens = Ints;

// A frontier dim as the bound sees it: its size, whether it is a raw Reduce (no weight reads it yet; only told apart
// under the no_expand_of_reduce rule, `raw`) and whether it is data-discarding.
inline int token(const Dim& d, bool raw) { return 4 * d.size + 2 * (raw && d.summed == 0) + d.discarding; }

// The child's shape-distance key as a step changes it (Python's distance-side ShapeDelta), starting from the
// parent's: a step kind's shape function (steps.h) takes frontier dims off and adds sizes, counts primaries against
// the allowance (`used`, the parent's copied) and adds weights and Reduces; Distance::of_step then bounds the result.
class ShapeDelta {
 public:
  ShapeDelta(const Node& node, SizeTable& sizes, std::vector<int>& used, bool raw)
      : weights(static_cast<int>(node.weights.size())), reductions(node.reductions), node_(node), sz_(sizes),
        used_(used), raw_(raw) {
    for (const auto& d : node.frontier) tokens_.push_back(token(d, raw));
  }

  int weights, reductions;

  // Take the frontier dim of hash h: (its size, whether it is data-discarding).
  std::pair<int, int> take(Hash h) {
    int t = token(node_.dim(h), raw_);
    int i = static_cast<int>(std::find(tokens_.v, tokens_.v + tokens_.n, t) - tokens_.v);
    std::copy(tokens_.v + i + 1, tokens_.v + tokens_.n, tokens_.v + i);
    --tokens_.n;
    return {t >> 2, t & 1};
  }
  // Add a frontier dim of `size` (`raw`: a Reduce dim no weight reads yet).
  void add(int size, bool discarding, bool raw = false) {
    tokens_.push_back(4 * size + 2 * (raw && raw_) + discarding);
  }
  void count(int size) { sz_.count_primaries(size, used_); }
  int product(int a, int b) { return sz_.combine(a, b, false); }
  int quotient(int a, int b) { return sz_.combine(a, b, true); }

 private:
  friend class Distance;
  const Node& node_;
  SizeTable& sz_;
  std::vector<int>& used_;
  bool raw_;
  Tokens tokens_;
};

class Distance {
 public:
  Distance(SizeTable& sizes, const NativeSpec& spec) : sz_(sizes), spec_(spec) {
    int nv = sizes.nvars();
    if (nv > MAX_VARS)
      throw std::invalid_argument("the native search supports at most " + std::to_string(MAX_VARS) + " variables");
    input_primary_.assign(nv, 0);
    for (int s : spec.search_input)
      for (int v = 0; v < nv; ++v)
        if (sizes[s].pw[v] && sizes.is_primary(v)) input_primary_[v] = 1;
    for (int v = 0; v < nv; ++v)
      if (input_primary_[v]) primaries_.push_back(v);
    need_.assign(nv, 0);
    want_by_primary_.assign(nv, {});
    for (int s : spec.search_input) {
      want_count_[s] += 1;
      for (int v : primaries_) {
        need_[v] += std::max(0, sizes[s].pw[v]);
        if (sizes[s].pw[v] > 0) want_by_primary_[v].push_back(s);
      }
    }
    want_product_ = product(spec.search_input);
    reduces_ = spec.reduce_sizes;
    std::sort(reduces_.begin(), reduces_.end(), [&](int a, int b) { return sz_.key_less(a, b); });
  }

  // The bound for a node (can_reduce, floor: as in Python; floor -1 for any).
  int of_node(const Node& node, bool can_reduce, int floor, bool raw) {
    Tokens tokens;
    for (const auto& d : node.frontier) tokens.push_back(token(d, raw));
    return memo(tokens, node.used, static_cast<int>(node.weights.size()), node.reductions, can_reduce, floor);
  }

  // The bound for the child that `step` leads to, from the sizes it creates and consumes alone: `shape` is the
  // step kind's effect on the parent's key (steps.h), so the child is judged without being built.
  int of_step(const Node& node, const Step& step, void (*shape)(ShapeDelta&, const Step&), bool can_reduce, int floor,
              bool raw) {
    used_ = node.used;
    ShapeDelta d(node, sz_, used_, raw);
    shape(d, step);
    return memo(d.tokens_, used_, d.weights, d.reductions, can_reduce, floor);
  }

  size_t memo_size() const { return memo_.size(); }

 private:
  // The Reduce sizes not below `floor` in size order (all for -1), cached per floor.
  const std::vector<int>& reduces_from(int floor) {
    auto it = floors_.find(floor);
    if (it != floors_.end()) return it->second;
    std::vector<int> out;
    for (int s : reduces_)
      if (floor < 0 || !sz_.key_less(s, floor)) out.push_back(s);
    return floors_[floor] = out;
  }

  int memo(Tokens& tokens, const std::vector<int>& used, int weights, int reductions, bool can_reduce, int floor) {
    std::sort(tokens.v, tokens.v + tokens.n);
    uint16_t key[128];
    int len = 0;
    auto put = [&](int x) {
      if (x < 0 || x > 0xffff || len == 128) throw std::overflow_error("a shape-distance key outside its buffer");
      key[len++] = static_cast<uint16_t>(x);
    };
    for (int i = 0; i < tokens.n; ++i) put(tokens.v[i]);
    for (int u : used) put(u);  // fixed length: the token count is implied by the key's length
    put(weights);
    put(reductions);
    put(can_reduce);
    put(floor + 1);
    uint64_t h = Memo::hash(key, len);
    int out = memo_.find(key, len, h);
    if (out >= 0) return out;
    out = compute(tokens, used, weights, reductions, can_reduce, floor);
    memo_.insert(key, len, h, out);
    return out;
  }

  template <class Ids>
  Product product(const Ids& ids) const {
    Product p;
    for (int s : ids) {
      const SizeRec& r = sz_[s];
      if (r.num != 1 || r.den != 1) {  // most sizes are pure monomials: skip the 128-bit gcd
        p.num *= r.num;
        p.den *= r.den;
        i128 g = gcd(p.num, p.den);
        p.num /= g;
        p.den /= g;
      }
      for (int v = 0; v < sz_.nvars(); ++v) p.pw[v] += r.pw[v];
    }
    return p;
  }

  static i128 gcd(i128 a, i128 b) {
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    while (b) {
      i128 t = a % b;
      a = b;
      b = t;
    }
    return a ? a : 1;
  }

  static i128 mul(i128 a, i128 b) {
    i128 out;
    if (__builtin_mul_overflow(a, b, &out)) throw std::overflow_error("shape distance: a product overflows");
    return out;
  }

  // Whether product / the input's product is an integer >= 1 in every binding.
  bool divisible(const Product& p) const {
    for (int b = 0; b < sz_.nbindings(); ++b) {
      i128 top = mul(p.num, want_product_.den), bottom = mul(p.den, want_product_.num);
      for (int v = 0; v < sz_.nvars(); ++v) {
        int r = p.pw[v] - want_product_.pw[v];
        int64_t x = sz_.binding(b, v);
        for (int k = 0; k < r; ++k) top = mul(top, x);
        for (int k = 0; k < -r; ++k) bottom = mul(bottom, x);
      }
      if (top < bottom || top % bottom) return false;
    }
    return true;
  }

  int compute(const Tokens& tokens, const std::vector<int>& used, int n_weights, int reductions, bool can_reduce,
              int floor) {
    int n = tokens.n;
    Ints have;
    char disc[64], raw[64];
    for (int k = 0; k < n; ++k) {
      have.push_back(tokens.v[k] >> 2);
      disc[k] = tokens.v[k] & 1;
      raw[k] = (tokens.v[k] >> 1) & 1;
    }
    int weights_left = spec_.max_weights - n_weights;
    const std::vector<int>& reduces = can_reduce && reductions < spec_.max_reductions ? reduces_from(floor) : none_;
    bool reduce_left = !reduces.empty();

    bool surplus = false;
    for (int v : primaries_) {
      int got = 0, most = 0;
      for (int s : have) got += std::max(0, sz_[s].pw[v]);
      for (int s : reduces) most = std::max(most, sz_[s].pw[v]);
      int extra = std::min(std::max(0, spec_.allowance[v] - used[v]), most * (spec_.max_reductions - reductions));
      if (got + extra < need_[v]) return UNREACHABLE;
      surplus = surplus || got > need_[v];
    }
    int foreign = 0, discarding = 0;
    for (int k = 0; k < n; ++k) {
      foreign += is_foreign(have[k]);
      discarding += disc[k];
    }
    bool to_close = foreign + discarding + surplus > 0;
    int unmatched = 0;
    for (const auto& [s, c] : want_count_) {
      int h = static_cast<int>(std::count(have.begin(), have.end(), s));
      unmatched += std::max(0, c - h);
    }
    Product prod = product(have);
    int numel = prod == want_product_ ? 0 : 1;
    if (numel && !spec_.strides && !reduce_left && !divisible(prod)) return UNREACHABLE;
    bool special = to_close || (numel && !spec_.strides && !reduce_left);
    bool owe_weight = n_weights == 0;
    if (owe_weight && weights_left <= 0) return UNREACHABLE;
    int best = shape_steps(static_cast<int>(spec_.search_input.size()) - n, unmatched, special, weights_left > 0,
                           owe_weight, spec_.strides, spec_.max_depth);
    int contract = !owe_weight ? 0 : shareable_pair(have, used) ? 1 : 2;
    int group = group_steps(have, disc, raw, weights_left, owe_weight, reduce_left);
    return std::max({best, numel, contract, group});
  }

  bool is_foreign(int s) const {
    for (int v = 0; v < sz_.nvars(); ++v)
      if (sz_.is_primary(v) && sz_[s].pw[v] && !input_primary_[v]) return true;
    return false;
  }

  bool has_inputs(int s) const {
    for (int v : primaries_)
      if (sz_[s].pw[v]) return true;
    return false;
  }

  bool shareable_pair(const Ints& have, const std::vector<int>& used) const {
    int n = have.n;
    for (int a = 0; a < n; ++a)
      for (int b = a + 1; b < n; ++b) {
        bool ok = true;
        for (int v = 0; v < sz_.nvars() && ok; ++v) {
          if (!sz_.is_primary(v)) continue;
          int pa = sz_[have[a]].pw[v], pb = sz_[have[b]].pw[v];
          if ((pa || pb) && used[v] + pa + pb > spec_.allowance[v]) ok = false;
        }
        if (ok) return true;
      }
    return false;
  }

  int group_steps(const Ints& have, const char* disc, const char* raw, int weights_left, bool owe_weight,
                  bool can_reduce) const {
    int nv = sz_.nvars();
    int parent[MAX_VARS];
    std::iota(parent, parent + nv, 0);
    auto find = [&](int p) {
      while (parent[p] != p) p = parent[p];
      return p;
    };
    auto first_input = [&](int s) {
      for (int v : primaries_)
        if (sz_[s].pw[v]) return v;
      return -1;
    };
    int free = 0, raw_free = 0;
    bool foreign = false;
    Ints groups;
    for (int k = 0; k < have.n; ++k) {
      int s = have[k];
      bool f = is_foreign(s);
      if (f || disc[k] || !has_inputs(s)) {
        free += 1;
        raw_free += raw[k];
        foreign = foreign || f;
      } else {
        groups.push_back(s);
        int first = first_input(s);
        for (int v : primaries_)
          if (v != first && sz_[s].pw[v]) parent[find(v)] = find(first);
      }
    }
    int tree = 0, peel = 0, mismatch = 0, surplus = 0;
    char seen_root[MAX_VARS] = {};
    for (int p0 : primaries_) {
      int root = find(p0);
      if (seen_root[root]) continue;
      seen_root[root] = 1;
      Ints members, f, want;
      for (int p : primaries_)
        if (find(p) == root) members.push_back(p);
      for (int s : groups)
        if (find(first_input(s)) == root) f.push_back(s);
      for (int p : members)
        for (int s : want_by_primary_[p])
          if (std::find(want.begin(), want.end(), s) == want.end()) want.push_back(s);
      bool over = false, under = false;
      for (int p : members) {
        int got = 0;
        for (int s : f) got += sz_[s].pw[p];
        over = over || got > need_[p];
        under = under || got < need_[p];
      }
      if (over) {
        surplus += 1;
        continue;
      }
      if (under) {
        if (can_reduce) continue;
        return UNREACHABLE;
      }
      tree += f.n + want.n - 2;
      Product fp = product(f), wp = product(want);
      bool pos = false, nonzero = false;
      for (int v = 0; v < nv; ++v) {
        int r = fp.pw[v] - wp.pw[v];
        pos = pos || r > 0;
        nonzero = nonzero || r != 0;
      }
      i128 lhs = mul(fp.num, wp.den), rhs = mul(fp.den, wp.num);
      peel += pos || lhs > rhs;
      mismatch += nonzero || lhs != rhs;
    }
    bool must_close = surplus > 0 || foreign;
    return tree + std::max(peel + closing(free, raw_free, surplus, weights_left, owe_weight),
                           mismatch + std::max<int>(must_close, owe_weight));
  }

  static int closing(int free, int raw, int surplus, int weights_left, bool owe_weight) {
    int other = free - raw;
    if (weights_left <= 0) return surplus + free;
    // each plan: (steps, whether a Contraction is among them)
    auto cost = [&](int steps, bool contracts) { return steps + (owe_weight && !contracts); };
    if (!raw) return cost(surplus + std::min(other, 1), other > 0 || surplus > 0);
    int best = std::min(cost(surplus + raw + std::min(other, 1), other > 0 || surplus > 0),  // each raw dim away
                        cost(surplus + (raw + 1) / 2 + 1, true));  // raw pairs Split, then one closes all
    if (weights_left >= 2) best = std::min(best, cost(surplus + 2, true));  // inner Share, then outer Share
    return best;
  }

  static int shape_steps(int delta, int unmatched, bool to_close, bool can_contract, bool must_contract,
                         bool can_stride, int limit) {
    int best = UNREACHABLE;
    for (int y = 0; y <= limit; ++y) {
      int x = delta + y;
      if (!must_contract && x >= 0 && (y >= 1 || !to_close)) {
        int shortage = unmatched - 2 * x - (y - (to_close ? 1 : 0));
        if (shortage <= 0 || can_stride) best = std::min(best, x + y + std::max(0, shortage));
      }
      if (can_contract) {
        int half = unmatched - y;
        int ceil_half = half >= 0 ? (half + 1) / 2 : -((-half) / 2);  // Python's -(-a // 2)
        x = std::max({0, delta + y, ceil_half});
        best = std::min(best, x + y + 1);
      }
    }
    return best;
  }

  SizeTable& sz_;
  const NativeSpec& spec_;
  std::vector<char> input_primary_;
  std::vector<int> primaries_;  // the input's primaries, in variable order
  std::vector<int> need_;
  std::vector<std::vector<int>> want_by_primary_;
  std::map<int, int> want_count_;
  Product want_product_;
  std::vector<int> reduces_;
  Memo memo_;
  std::unordered_map<int, std::vector<int>> floors_;
  const std::vector<int> none_;
  std::vector<int> used_;  // scratch for of_step (the child's allowance used)
};

}  // namespace syno
