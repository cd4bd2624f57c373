// Checks syno::plan_flops (plan.h) against Python's plan(op, b).flops dumped by plan_dump.py, and times it.
//
//   python native/synth/plan_dump.py /tmp/plan_dump.txt
//   g++ -O2 -std=c++17 -Wall -Wextra native/synth/plan_test.cc -o /tmp/plan_test && /tmp/plan_test /tmp/plan_dump.txt
//
// Prints each mismatch, the summary line "N operators, M bindings, K mismatches" and the mean time of one
// plan_flops call (all bindings of one operator); exits non-zero on any mismatch or a malformed file.
#include "plan.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

namespace {

struct Case {
  std::string name;
  syno::PlanGraph g;
  std::vector<std::vector<int64_t>> sizes;
  std::vector<int64_t> expected;
};

template <class T>
void need(std::istream& in, T& x, const char* what) {
  if (!(in >> x)) throw std::runtime_error(std::string("malformed dump: expected ") + what);
}

std::vector<int> read_list(std::istream& in) {
  int n;
  need(in, n, "a list length");
  std::vector<int> v(n);
  for (int& x : v) need(in, x, "a dim");
  return v;
}

std::vector<Case> read_cases(const char* path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(std::string("cannot open ") + path);
  std::vector<Case> cases;
  std::string tag;
  while (in >> tag) {
    if (tag != "op") throw std::runtime_error("malformed dump: expected 'op', got '" + tag + "'");
    Case c;
    int nprims, ntensors, nbind;
    need(in, c.name, "a name");
    need(in, c.g.ndims, "ndims");
    need(in, nprims, "nprims");
    need(in, ntensors, "ntensors");
    need(in, nbind, "nbindings");
    for (int i = 0; i < nprims; ++i) {
      syno::PlanPrim p;
      need(in, p.kind, "a prim kind");
      p.tops = read_list(in);
      p.bottoms = read_list(in);
      c.g.prims.push_back(std::move(p));
    }
    for (int t = 0; t < ntensors; ++t) c.g.tensors.push_back(read_list(in));
    c.g.output = read_list(in);
    for (int b = 0; b < nbind; ++b) {
      int64_t f;
      need(in, f, "flops");
      c.expected.push_back(f);
      std::vector<int64_t> sz(c.g.ndims);
      for (int64_t& s : sz) need(in, s, "a size");
      c.sizes.push_back(std::move(sz));
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "/tmp/plan_dump.txt";
  std::vector<Case> cases;
  try {
    cases = read_cases(path);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  size_t n_bindings = 0, mismatches = 0;
  for (const Case& c : cases) {
    std::vector<int64_t> got = syno::plan_flops(c.g, c.sizes);
    for (size_t b = 0; b < c.sizes.size(); ++b) {
      ++n_bindings;
      if (got[b] != c.expected[b]) {
        ++mismatches;
        std::printf("MISMATCH %s binding %zu: got %lld, python %lld\n", c.name.c_str(), b,
                    static_cast<long long>(got[b]), static_cast<long long>(c.expected[b]));
      }
    }
  }
  // Saturation (no dumped value comes near it): out[d0] = sum_{d1} X[d0, d1] costs size0 * size1 FLOPs.
  {
    syno::PlanGraph g{2, {{syno::P_REDUCE, {1}, {}}}, {{0, 1}}, {0}};
    const int64_t big = int64_t{1} << 40, max = std::numeric_limits<int64_t>::max();
    std::vector<int64_t> got = syno::plan_flops(g, {{3000000000, 3000000000}, {big, big}, {max, 2}});
    const int64_t want[] = {9000000000000000000, max, max};
    for (int i = 0; i < 3; ++i)
      if (got[i] != want[i]) {
        ++mismatches;
        std::printf("MISMATCH saturation case %d: got %lld, want %lld\n", i, static_cast<long long>(got[i]),
                    static_cast<long long>(want[i]));
      }
  }

  std::printf("%zu operators, %zu bindings, %zu mismatches\n", cases.size(), n_bindings, mismatches);

  // Timing: repeat the whole set; the checksum keeps the calls from being optimized away.
  if (!cases.empty()) {
    const int reps = 200;
    int64_t checksum = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r)
      for (const Case& c : cases) checksum += syno::plan_flops(c.g, c.sizes)[0];
    auto t1 = std::chrono::steady_clock::now();
    double us = std::chrono::duration<double, std::micro>(t1 - t0).count() / (double(reps) * cases.size());
    std::printf("%.3f us per plan_flops call (mean over %zu operators x %d reps; %.2f bindings per call; "
                "checksum %lld)\n", us, cases.size(), reps, double(n_bindings) / cases.size(),
                static_cast<long long>(checksum));
  }
  return mismatches ? 1 : 0;
}
