// Symbolic sizes for the native search: the same monomials as syno_tvm.ir.sizes.Size (a reduced rational factor
// times integer powers of named variables), interned in a table so that the search handles small ints.
//
// Each interned size carries what the search asks of it again and again: its text (Python's str(Size), which the
// digests and the size order read), its value in every binding, and Spec.valid.
#pragma once

#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace syno {

using i128 = __int128;

struct SizeRec {
  int64_t num = 1, den = 1;          // the factor, reduced, den > 0
  std::vector<int> pw;               // power of each variable (variables in name order, as Python sorts powers)
  std::string text;                  // Python's str(Size)
  int npowers = 0;                   // len(Size.powers): the first half of size_key
  std::vector<int64_t> value;        // per binding: the value if a positive integer, else 0
  bool valid = false;                // Spec.valid
};

// uint64 -> non-negative int with open addressing: the size products are looked up for most candidate steps.
class FlatMap {
 public:
  FlatMap() : slots_(1024, Slot{EMPTY, 0}) {}
  int find(uint64_t key) const {
    size_t mask = slots_.size() - 1;
    for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
      if (slots_[i].key == key) return slots_[i].value;
      if (slots_[i].key == EMPTY) return -1;
    }
  }
  void insert(uint64_t key, int value) {
    if (2 * (count_ + 1) > slots_.size()) {
      std::vector<Slot> old(2 * slots_.size(), Slot{EMPTY, 0});
      old.swap(slots_);
      count_ = 0;
      for (const Slot& s : old)
        if (s.key != EMPTY) insert(s.key, s.value);
    }
    size_t mask = slots_.size() - 1;
    size_t i = mix(key) & mask;
    while (slots_[i].key != EMPTY && slots_[i].key != key) i = (i + 1) & mask;
    count_ += slots_[i].key == EMPTY;
    slots_[i] = Slot{key, value};
  }

 private:
  static constexpr uint64_t EMPTY = ~0ULL;  // not a key: keys are hashes and packed ids, never all ones
  struct Slot {
    uint64_t key;
    int value;
  };
  static uint64_t mix(uint64_t x) {
    x = (x ^ (x >> 31)) * 0x7fb5d329728ea185ULL;
    return x ^ (x >> 27);
  }
  std::vector<Slot> slots_;
  size_t count_ = 0;
};

class SizeTable {
 public:
  // names: all variables in name order; primary: per variable; bindings: per binding, per variable a value;
  // probe: the index of the probe binding (Spec.valid asks for a value > 1 there).
  SizeTable(std::vector<std::string> names, std::vector<char> primary, std::vector<std::vector<int64_t>> bindings,
            int probe)
      : names_(std::move(names)), primary_(std::move(primary)), bindings_(std::move(bindings)), probe_(probe) {}

  int nvars() const { return static_cast<int>(names_.size()); }
  bool is_primary(int v) const { return primary_[v]; }
  int nbindings() const { return static_cast<int>(bindings_.size()); }
  int64_t binding(int b, int v) const { return bindings_[b][v]; }
  const SizeRec& operator[](int id) const { return recs_[id]; }

  int intern(int64_t num, int64_t den, const std::vector<int>& pw) {
    int64_t g = std::gcd(num, den);
    num /= g;
    den /= g;
    if (den < 0) num = -num, den = -den;
    std::string key = std::to_string(num) + "/" + std::to_string(den);
    for (int p : pw) key += "," + std::to_string(p);
    auto it = ids_.find(key);
    if (it != ids_.end()) return it->second;
    SizeRec r;
    r.num = num;
    r.den = den;
    r.pw = pw;
    for (int p : pw) r.npowers += p != 0;
    r.text = text(num, den, pw);
    r.valid = true;
    for (int v = 0; v < nvars(); ++v)
      if (pw[v] < 0 && primary_[v]) r.valid = false;
    for (const auto& b : bindings_) {
      i128 top = num, bottom = den;
      for (int v = 0; v < nvars(); ++v) {
        for (int k = 0; k < pw[v]; ++k) top = checked(top, b[v]);
        for (int k = 0; k < -pw[v]; ++k) bottom = checked(bottom, b[v]);
      }
      int64_t val = (top % bottom == 0 && top >= bottom && bottom > 0) ? static_cast<int64_t>(top / bottom) : 0;
      r.value.push_back(val);
      if (!val) r.valid = false;
    }
    if (r.valid && r.value[probe_] <= 1) r.valid = false;
    recs_.push_back(std::move(r));
    return ids_[key] = static_cast<int>(recs_.size()) - 1;
  }

  // a * b, or a / b when divide (cached on the ids: the search combines the same sizes over and over)
  int combine(int a, int b, bool divide) {
    uint64_t key = (static_cast<uint64_t>(a) << 33) | (static_cast<uint64_t>(b) << 1) | divide;
    int found = products_.find(key);
    if (found >= 0) return found;
    const SizeRec &x = recs_[a], &y = recs_[b];
    std::vector<int> pw(x.pw);
    for (int v = 0; v < nvars(); ++v) pw[v] += divide ? -y.pw[v] : y.pw[v];
    int id = divide ? intern(x.num * y.den, x.den * y.num, pw) : intern(x.num * y.num, x.den * y.den, pw);
    products_.insert(key, id);
    return id;
  }

  // Add the powers of `size`'s primary variables to `used` (what Reduces and selected dims introduce).
  void count_primaries(int size, std::vector<int>& used) const {
    for (int v = 0; v < nvars(); ++v)
      if (primary_[v]) used[v] += recs_[size].pw[v];
  }

  // Python's size_key: (number of powers, text)
  bool key_less(int a, int b) const {
    const SizeRec &x = recs_[a], &y = recs_[b];
    if (x.npowers != y.npowers) return x.npowers < y.npowers;
    return x.text < y.text;
  }

 private:
  static i128 checked(i128 a, int64_t b) {
    i128 out;
    if (__builtin_mul_overflow(a, static_cast<i128>(b), &out))
      throw std::overflow_error("a size's value overflows 128 bits");
    return out;
  }

  std::string text(int64_t num, int64_t den, const std::vector<int>& pw) const {
    std::vector<std::string> up, down;
    for (int v = 0; v < nvars(); ++v) {
      if (pw[v] > 0) up.push_back(pw[v] == 1 ? names_[v] : names_[v] + "^" + std::to_string(pw[v]));
      if (pw[v] < 0) down.push_back(pw[v] == -1 ? names_[v] : names_[v] + "^" + std::to_string(-pw[v]));
    }
    if (num != 1 || up.empty()) up.insert(up.begin(), std::to_string(num));
    if (den != 1) down.insert(down.begin(), std::to_string(den));
    std::string out = join(up);
    if (!down.empty()) out += "/" + (down.size() == 1 ? down[0] : "(" + join(down) + ")");
    return out;
  }

  static std::string join(const std::vector<std::string>& parts) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? "*" : "") + parts[i];
    return out;
  }

  std::vector<std::string> names_;
  std::vector<char> primary_;
  std::vector<std::vector<int64_t>> bindings_;
  int probe_;
  std::vector<SizeRec> recs_;
  std::unordered_map<std::string, int> ids_;
  FlatMap products_;
};

}  // namespace syno
