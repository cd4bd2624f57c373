// Frontier dims, steps, weights and nodes: the values of syno_tvm/synth/state.py, with the same digests.
//
// A hash is the 8-byte BLAKE2b of the same text Python hashes (repr of a list), read big-endian, so that ordering
// hashes orders their hex texts as Python does.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "blake2b.h"
#include "sizes.h"

namespace syno {

using Hash = uint64_t;

// Codes of the step kinds (Step.kind): a kind's code is its row in steps.h's STEP_TABLE, where its code lives.
enum Kind : int { REDUCE = 0, MERGE, SPLIT, SHIFT, STRIDE, UNFOLD, EXPAND, CONTRACT, NKINDS };

// What created a dim (Dim.origin, what the rules read): the output itself, or a step (the origins of the rows of
// STEP_TABLE, in table order).
enum Origin : int { O_OUT, O_REDUCE, O_MERGE0, O_MERGE1, O_SPLIT, O_SHIFT, O_STRIDE, O_UNFOLD, O_WEIGHT, O_SHARE,
                    NORIGINS };
constexpr const char* ORIGIN_NAMES[NORIGINS] = {"out",   "reduce", "merge0", "merge1", "split",
                                                "shift", "stride", "unfold", "weight", "share"};

// ---- digests: Python's digest(*parts) hashes repr(list of parts), sizes by their text ----------------------------
// Builds the text of one digest in a reused buffer (apply hashes several texts per child, and string temporaries
// were a visible share of its time).  One Text at a time: finish it (digest) before starting the next.
class Text {
 public:
  Text() : s_(buffer()) { s_.assign(1, '['); }
  Text& lit(const char* x) {
    s_ += x;
    return *this;
  }
  Text& q(const std::string& x) {  // a Python str's repr (sizes and names hold no quotes)
    s_ += '\'';
    s_ += x;
    s_ += '\'';
    return *this;
  }
  Text& h(Hash x) {
    char buf[18];
    buf[0] = buf[17] = '\'';
    write_hex64(x, buf + 1);
    s_.append(buf, 18);
    return *this;
  }
  Text& num(long x) {
    s_ += std::to_string(x);
    return *this;
  }
  Hash digest() {
    s_ += ']';
    return blake2b64(s_.data(), s_.size());
  }

 private:
  static std::string& buffer() {
    static std::string b;  // the engine runs under the GIL: one thread
    return b;
  }
  std::string& s_;
};

inline bool contains(const std::vector<int>& xs, int x) { return std::find(xs.begin(), xs.end(), x) != xs.end(); }
inline bool contains(const std::vector<Hash>& xs, Hash x) { return std::find(xs.begin(), xs.end(), x) != xs.end(); }

inline Hash merge_top_hash(Hash bottom, bool minor, const std::string& block) {
  return Text().lit("'merge', ").h(bottom).lit(minor ? ", 1, " : ", 0, ").q(block).digest();
}

struct Dim {
  int id = 0;
  int size = 0;
  Hash hash = 0;
  Origin origin = O_OUT;
  Hash below[2] = {0, 0};
  bool unordered = false;
  bool discarding = false;
  int window = -1;  // an Unfold top's window size
  int summed = -1;  // Reduce dims and Shares' tops on them: weights reading it so far
  int block = -1;   // a Merge top's block, a Split top's minor size
};

// A fixed-capacity vector: steps and prims are copied and compared millions of times per run, and heap storage made
// allocation the largest cost of the search.
template <class T, int N>
struct Small {
  T v[N];
  uint8_t n = 0;

  Small() = default;
  Small(std::initializer_list<T> xs) {
    for (const T& x : xs) push_back(x);
  }
  void push_back(T x) {
    if (n == N) throw std::length_error("more items than the native search supports (" + std::to_string(N) + ")");
    v[n++] = x;
  }
  size_t size() const { return n; }
  bool empty() const { return n == 0; }
  T& operator[](size_t i) { return v[i]; }
  const T& operator[](size_t i) const { return v[i]; }
  const T* begin() const { return v; }
  const T* end() const { return v + n; }
  bool operator==(const Small& o) const { return n == o.n && std::equal(v, v + n, o.v); }
};

constexpr int MAX_SHARES = 8;  // Shares per Contraction the native search supports (the spec default is 6)

struct Step {
  int kind = REDUCE;
  Small<Hash, MAX_SHARES> dims;
  int size = -1;
  Small<char, MAX_SHARES> outer;

  bool operator==(const Step& o) const {
    return kind == o.kind && size == o.size && dims == o.dims && outer == o.outer;
  }
};

struct Weight {
  Hash sig = 0;
  std::vector<std::pair<int, Hash>> dims;  // (dim id, hash)
  std::vector<Hash> touched;
  std::vector<char> outer;
  std::vector<Hash> tops;  // 0 where the Share was outer (Python's '')
};

struct Prim {
  int kind;  // plan.h's PrimKind
  Small<int, 2> tops, bottoms;
  int param = 0;
};

struct Node {
  std::vector<int> sizes;
  std::vector<Prim> prims;
  std::vector<int> output;
  std::vector<Dim> frontier;
  std::vector<Weight> weights;
  std::vector<Hash> expands;
  int depth = 0;
  int reductions = 0;
  std::vector<int> used;  // per variable: primaries introduced by Reduces and selected dims
  bool has_last = false;
  Step last;
  Hash hash = 0;

  const Dim& dim(Hash h) const {
    for (auto it = frontier.rbegin(); it != frontier.rend(); ++it)  // Python's by_hash keeps the last one
      if (it->hash == h) return *it;
    throw std::logic_error("a step refers to a dim that is not on the frontier");
  }
  bool only_reduces() const { return depth == reductions; }

  void compute_hash() {
    Hash f[64], w[16], e[64];
    size_t nf = 0, nw = 0, ne = 0;
    if (frontier.size() > 64 || weights.size() > 16 || expands.size() > 64)
      throw std::length_error("a node larger than the native search supports");
    for (const auto& d : frontier) f[nf++] = d.hash;
    for (const auto& x : weights) w[nw++] = x.sig;
    for (Hash x : expands) e[ne++] = x;
    std::sort(f, f + nf);
    std::sort(w, w + nw);
    std::sort(e, e + ne);
    Text t;
    auto list = [&](const Hash* hs, size_t n, const char* after) {
      t.lit("[");
      for (size_t i = 0; i < n; ++i) {
        if (i) t.lit(", ");
        t.h(hs[i]);
      }
      t.lit(after);
    };
    list(f, nf, "], ");
    list(w, nw, "], ");
    list(e, ne, "]");
    hash = t.digest();
  }
};

}  // namespace syno
