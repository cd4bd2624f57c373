// The constants of one synthesis problem, as syno_tvm/synth/spec.py derives them; filled from Python
// (module.cc), which remains the one place that parses and checks specs.
#pragma once

#include <string>
#include <vector>

#include "sizes.h"

namespace syno {

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
