// The constants of one synthesis problem, as syno_tvm/synth/spec.py derives them: SpecData as Python hands them over
// (syno_tvm/synth/engine.py builds one field by field), NativeSpec as the search reads them.  Python remains the one
// place that parses and checks specs; SpecData::check only refuses fields that do not fit together.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "sizes.h"

namespace syno {

// A size as Python gives it: (numerator, denominator, power of each variable, in SpecData::names order).
using SizeIn = std::tuple<int64_t, int64_t, std::vector<int>>;

// The spec with sizes not yet interned (NativeSpec holds ids into the engine's SizeTable, which Python cannot
// make): the variables and their bindings, then NativeSpec's fields.  Exposed to Python as
// syno_tvm._synth_native.SpecData, whose keyword constructor requires every field once (module.cc).
struct SpecData {
  std::vector<std::string> names;              // every variable, in name order
  std::vector<bool> primary;                   // per variable
  std::vector<std::vector<int64_t>> bindings;  // Spec.bindings: per binding (the layers', then the probe), per variable
  int probe = 0;                               // the probe binding's index
  std::vector<int> allowance;                  // per variable (primaries; 0 for coefficients)
  std::vector<std::pair<SizeIn, bool>> output;  // Spec.output: size, unordered
  std::vector<SizeIn> input;
  std::vector<std::pair<int, int>> fixed;
  std::vector<SizeIn> search_input, block_sizes, reduce_sizes, stride_sizes, window_sizes;
  int max_depth = 0, max_weights = 0, max_reductions = 0, max_shares = 0;
  bool strides = false;
  std::vector<int> layers;
  std::vector<std::string> layer_names;
  std::vector<int64_t> ref_flops, ref_params;
  std::pair<double, double> flops, params;
  std::string reference, flops_text, params_text;

  // Refuses fields that cannot be one spec: the search would read past a list (std::invalid_argument).
  void check() const {
    size_t nv = names.size();
    auto need = [](bool ok, const std::string& what) {
      if (!ok) throw std::invalid_argument("SpecData: " + what);
    };
    need(primary.size() == nv && allowance.size() == nv, "primary and allowance need one entry per variable");
    for (const auto& b : bindings) need(b.size() == nv, "every binding needs a value per variable");
    need(0 <= probe && probe < static_cast<int>(bindings.size()), "probe is not a binding");
    auto sized = [&](const SizeIn& x) { need(std::get<2>(x).size() == nv, "a size needs a power per variable"); };
    for (const auto& [x, unordered] : output) sized(x);
    for (const auto* xs : {&input, &search_input, &block_sizes, &reduce_sizes, &stride_sizes, &window_sizes})
      for (const auto& x : *xs) sized(x);
    for (auto [i, o] : fixed)
      need(0 <= i && i < static_cast<int>(input.size()) && 0 <= o && o < static_cast<int>(output.size()),
           "a fixed pair is outside the input or the output");
    for (int l : layers) need(0 <= l && l < static_cast<int>(bindings.size()), "a layer is not a binding");
    need(layer_names.size() == layers.size() && ref_flops.size() == layers.size() &&
             ref_params.size() == layers.size(),
         "layer_names, ref_flops and ref_params need one entry per layer");
  }
};

struct OutDim {
  int size;
  bool unordered;
};

struct NativeSpec {
  std::vector<OutDim> output;                 // Spec.output
  std::vector<int> input;                     // Spec.input sizes
  std::vector<std::pair<int, int>> fixed;     // fixed_pairs: (input position, output position)
  std::vector<int> search_input;              // sizes the search must produce
  std::vector<int> block_sizes, reduce_sizes, stride_sizes, window_sizes;
  std::vector<int> allowance;                 // per variable (primaries; 99 when unlimited)
  int max_depth = 10, max_weights = 2, max_reductions = 5, max_shares = 6;
  bool strides = false;                       // bool(Spec.strides)
  std::vector<int> layers;                    // binding indices of the layers, in Spec.layer_bindings order
  std::vector<std::string> layer_names;
  std::vector<int64_t> ref_flops, ref_params;  // the reference operator's, per layer
  double flops_lo = 0, flops_hi = 1.5, params_lo = 0, params_hi = 1.5;
  std::string reference;
  std::string flops_text, params_text;        // the ranges as Python prints them, for the limits' reasons
};

}  // namespace syno
