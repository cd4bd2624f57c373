// Python bindings of the native search (module syno_tvm._synth_native).  syno_tvm/synth/engine.py is the only
// caller: it builds a SpecData from a Python Spec and turns records back into Steps and Operators.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <string>
#include <vector>

#include "sampler.h"

namespace py = pybind11;
using namespace syno;

namespace {

const char* prim_name(int k) {
  static const char* names[] = {"reduce", "merge", "split", "shift", "stride", "unfold", "expand", "share"};
  return names[k];
}

// SpecData's fields by name: `f(name, member)` for each, for its keyword constructor and its attributes.
template <class F>
void spec_fields(F&& f) {
  f("names", &SpecData::names);
  f("primary", &SpecData::primary);
  f("bindings", &SpecData::bindings);
  f("probe", &SpecData::probe);
  f("allowance", &SpecData::allowance);
  f("output", &SpecData::output);
  f("input", &SpecData::input);
  f("fixed", &SpecData::fixed);
  f("search_input", &SpecData::search_input);
  f("block_sizes", &SpecData::block_sizes);
  f("reduce_sizes", &SpecData::reduce_sizes);
  f("stride_sizes", &SpecData::stride_sizes);
  f("window_sizes", &SpecData::window_sizes);
  f("max_depth", &SpecData::max_depth);
  f("max_weights", &SpecData::max_weights);
  f("max_reductions", &SpecData::max_reductions);
  f("max_shares", &SpecData::max_shares);
  f("strides", &SpecData::strides);
  f("layers", &SpecData::layers);
  f("layer_names", &SpecData::layer_names);
  f("ref_flops", &SpecData::ref_flops);
  f("ref_params", &SpecData::ref_params);
  f("flops", &SpecData::flops);
  f("params", &SpecData::params);
  f("reference", &SpecData::reference);
  f("flops_text", &SpecData::flops_text);
  f("params_text", &SpecData::params_text);
}

// A SpecData from keywords: every field exactly once and of its type, else TypeError naming the field (a field
// left out or misspelt would otherwise leave a default the search silently runs with); fields that do not fit
// together, ValueError.
SpecData spec_from(const py::kwargs& kw) {
  SpecData s;
  std::vector<std::string> known;
  spec_fields([&](const char* name, auto member) {
    known.push_back(name);
    if (!kw.contains(name)) throw py::type_error(std::string("SpecData: missing field '") + name + "'");
    using T = std::remove_reference_t<decltype(s.*member)>;
    try {
      s.*member = kw[name].template cast<T>();
    } catch (const py::cast_error&) {
      py::object value = kw[name];
      throw py::type_error(std::string("SpecData: field '") + name + "' takes no " +
                           py::str(py::type::of(value).attr("__name__")).cast<std::string>() + " (" +
                           py::repr(value).cast<std::string>().substr(0, 80) + ")");
    }
  });
  for (auto item : kw) {
    auto key = item.first.cast<std::string>();
    if (std::find(known.begin(), known.end(), key) == known.end())
      throw py::type_error("SpecData: unknown field '" + key + "'");
  }
  s.check();
  return s;
}

Hash parse_hex(const std::string& s) { return std::stoull(s, nullptr, 16); }

class Engine {
 public:
  Engine(const SpecData& d, const std::vector<std::string>& rules, uint64_t seed)
      : sizes_(d.names, std::vector<char>(d.primary.begin(), d.primary.end()), d.bindings, d.probe),
        space_(sizes_, build_spec(d), rules),
        sampler_(space_, seed) {
    forget();
  }

  // Up to n (path, record) pairs of finals not returned before, within `seconds`; fewer when the space runs out.
  py::list sample(int n, double seconds) {
    py::list out;
    auto start = std::chrono::steady_clock::now();
    Drawn drawn;
    for (int i = 0; i < n; ++i) {
      double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (spent >= seconds || !sampler_.random_final(&drawn)) break;
      out.append(py::make_tuple(path_out(drawn.path), final_out(*drawn.final)));
    }
    return out;
  }

  // A random descent from the node `path` leads to (an MCTS rollout): a fresh sampler seeded with `seed`, so the
  // result depends on the path and the seed alone; None when no final was found within `max_restarts` restarts.
  py::object rollout(const py::list& path, uint64_t seed, int max_restarts) {
    NodeP start = replay(path);
    Sampler sampler(space_, seed, max_restarts);
    Drawn drawn;
    if (!sampler.random_final(&drawn, start)) return py::none();
    return py::make_tuple(path_out(drawn.path), final_out(*drawn.final));
  }

  py::dict stats() const {
    py::dict out;
    const auto& s = sampler_.stats();
    out["nodes"] = s.nodes;
    out["dead"] = s.dead;
    out["finals"] = s.finals;
    out["rejected"] = s.rejected_by_reason();
    out["memo"] = space_.memo_size();
    return out;
  }

  // ---- for the equivalence tests: judge every candidate step at the node a path leads to ------------------------
  py::dict report(const py::list& path, const py::list& extra) {
    NodeP node = replay(path);
    py::dict out;
    out["hash"] = hex64(node->hash);
    out["distance"] = space_.node_distance(*node);
    const Final& f = space_.finalize(node);
    out["final"] = f.ok ? py::object(final_out(f)) : py::object(py::str(f.why));
    py::list judged;
    std::vector<Step> steps;
    for (int k = 0; k < NKINDS; ++k)
      for (auto& s : space_.steps(*node, k)) steps.push_back(s);
    py::list closing;
    for (auto& s : space_.closing_contractions(*node)) {
      steps.push_back(s);
      closing.append(step_out(s));
    }
    out["closing"] = closing;
    for (auto h : extra) steps.push_back(step_in(h.cast<py::tuple>()));
    for (const auto& s : steps) {
      Verdict v;
      NodeP child = space_.judge(*node, s, &v);
      judged.append(py::make_tuple(step_out(s), child ? py::object(py::str(hex64(child->hash))) : py::none(),
                                   space_.why(*node, v), v.dist));
    }
    out["steps"] = judged;
    return out;
  }

  // ---- node expansion, for a tree search --------------------------------------------------------------------
  // Every candidate step at a node (all Contractions listed), judged: (step, child hash or None, reason code,
  // rule name or "", shape distance).  The node is given by its path from the root (a list of steps) or by its hash
  // (hex text) when it is the root or a child returned by an earlier expansion; accepted children are remembered.
  py::list expand(const py::object& where) {
    NodeP node;
    if (py::isinstance<py::str>(where)) {
      auto it = known_.find(parse_hex(where.cast<std::string>()));
      if (it == known_.end())
        throw std::invalid_argument("node " + where.cast<std::string>() + " was not returned by an earlier "
                                    "expansion; give its path instead");
      node = it->second;
    } else {
      node = replay(where.cast<py::list>());
    }
    known_[node->hash] = node;
    std::vector<Step> steps;
    for (int k = 0; k < NKINDS; ++k)
      for (auto& s : space_.steps(*node, k)) steps.push_back(s);
    for (auto& s : space_.all_contractions(*node)) steps.push_back(s);
    py::list out;
    for (const auto& s : steps) {
      Verdict v;
      NodeP child = space_.judge(*node, s, &v);
      if (child) known_.emplace(child->hash, child);
      out.append(py::make_tuple(step_out(s), child ? py::object(py::str(hex64(child->hash))) : py::none(), v.reason,
                                v.reason == Verdict::RULE ? std::string(rule_name(v.rule)) : std::string(), v.dist));
    }
    return out;
  }

  // The final at a known node (by hash): a record as in sample(), or the reason text why there is none.
  py::object final_at(const std::string& hash) {
    auto it = known_.find(parse_hex(hash));
    if (it == known_.end()) throw std::invalid_argument("node " + hash + " was not returned by an expansion");
    const Final& f = space_.finalize(it->second);
    return f.ok ? py::object(final_out(f)) : py::object(py::str(f.why));
  }

  // Forget the nodes remembered by expansions but the root (a long search bounds its memory with this).
  void forget() {
    known_.clear();
    NodeP root = space_.root();
    known_[root->hash] = root;
  }
  size_t known() const { return known_.size(); }

 private:
  int size_in(const SizeIn& x) { return sizes_.intern(std::get<0>(x), std::get<1>(x), std::get<2>(x)); }

  std::vector<int> sizes_in(const std::vector<SizeIn>& xs) {
    std::vector<int> out;
    for (const auto& x : xs) out.push_back(size_in(x));
    return out;
  }

  NativeSpec build_spec(const SpecData& d) {
    NativeSpec s;
    for (const auto& [size, unordered] : d.output) s.output.push_back({size_in(size), unordered});
    s.input = sizes_in(d.input);
    s.fixed = d.fixed;
    s.search_input = sizes_in(d.search_input);
    s.block_sizes = sizes_in(d.block_sizes);
    s.reduce_sizes = sizes_in(d.reduce_sizes);
    s.stride_sizes = sizes_in(d.stride_sizes);
    s.window_sizes = sizes_in(d.window_sizes);
    s.allowance = d.allowance;
    s.max_depth = d.max_depth;
    s.max_weights = d.max_weights;
    s.max_reductions = d.max_reductions;
    s.max_shares = d.max_shares;
    s.strides = d.strides;
    s.layers = d.layers;
    s.layer_names = d.layer_names;
    s.ref_flops = d.ref_flops;
    s.ref_params = d.ref_params;
    std::tie(s.flops_lo, s.flops_hi) = d.flops;
    std::tie(s.params_lo, s.params_hi) = d.params;
    s.reference = d.reference;
    s.flops_text = d.flops_text;
    s.params_text = d.params_text;
    return s;
  }

  Step step_in(const py::tuple& t) {
    Step s;
    auto kind = t[0].cast<std::string>();
    int found = -1;
    for (int k = 0; k < NKINDS; ++k)
      if (kind == kind_name(k)) found = k;
    // An unknown name once became a Reduce silently: a step from another build or a typo must fail loudly.
    if (found < 0) throw py::value_error("unknown step kind '" + kind + "': use a name from synth.steps.STEPS");
    s.kind = found;
    for (auto h : t[1].cast<py::list>()) s.dims.push_back(parse_hex(h.cast<std::string>()));
    s.size = t[2].is_none() ? -1 : size_in(t[2].cast<SizeIn>());
    for (auto o : t[3].cast<py::list>()) s.outer.push_back(o.cast<bool>());
    return s;
  }

  py::tuple step_out(const Step& s) const {
    py::list dims, outer;
    for (Hash h : s.dims) dims.append(hex64(h));
    for (char o : s.outer) outer.append(static_cast<bool>(o));
    return py::make_tuple(kind_name(s.kind), py::tuple(dims), s.size >= 0 ? py::object(py::str(sizes_[s.size].text))
                                                                          : py::object(py::none()),
                          py::tuple(outer));
  }

  py::list path_out(const std::vector<Step>& path) const {
    py::list out;
    for (const auto& s : path) out.append(step_out(s));
    return out;
  }

  py::tuple final_out(const Final& f) const {
    const Node& node = *f.node;
    py::list texts, prims;
    for (int s : node.sizes) texts.append(sizes_[s].text);
    for (size_t i = 0; i < node.prims.size(); ++i) {
      const Prim& p = node.prims[i];
      int param = p.kind == P_SHARE ? f.share_number[i] : p.param;
      py::list tops, bottoms;
      for (int d : p.tops) tops.append(d);
      for (int d : p.bottoms) bottoms.append(d);
      prims.append(py::make_tuple(prim_name(p.kind), py::tuple(tops), py::tuple(bottoms), param));
    }
    py::list weights;
    for (const auto& w : f.weights) weights.append(py::tuple(py::cast(w)));
    return py::make_tuple(hex64(node.hash), texts, prims, py::tuple(py::cast(f.inputs)), weights,
                          py::tuple(py::cast(node.output)), py::tuple(py::cast(f.flops)),
                          py::tuple(py::cast(f.params)));
  }

  NodeP replay(const py::list& path) {
    NodeP node = space_.root();
    for (auto h : path) {
      Step s = step_in(h.cast<py::tuple>());
      Verdict v;
      NodeP child = space_.judge(*node, s, &v);
      if (!child) throw std::invalid_argument("the native space rejects a step of the path: " + space_.why(*node, v));
      node = child;
    }
    return node;
  }

  SizeTable sizes_;
  Space space_;
  Sampler sampler_;
  std::unordered_map<Hash, NodeP> known_;  // nodes returned by expand(), by hash
};

}  // namespace

PYBIND11_MODULE(_synth_native, m) {
  m.doc() = "The native bottom-up search of syno_tvm.synth (see syno_tvm/synth/native.py)";
  std::vector<std::string> rule_names;
  for (const auto& r : RULE_TABLE) rule_names.push_back(r.name);
  m.attr("RULE_NAMES") = rule_names;
  m.attr("ORIGINS") = std::vector<std::string>(ORIGIN_NAMES, ORIGIN_NAMES + NORIGINS);
  m.def(
      "step_table",
      [] {
        py::list out;
        for (const auto& k : STEP_TABLE) {
          py::list origins;
          for (int i = 0; i < k.norigins; ++i) origins.append(ORIGIN_NAMES[k.origins[i]]);
          py::dict row;
          row["name"] = k.name;
          row["code"] = static_cast<int>(k.code);
          row["primitive"] = prim_name(k.primitive);
          row["dims"] = k.dims;
          row["origins"] = py::tuple(origins);
          out.append(row);
        }
        return out;
      },
      "The step-kind table (steps.h) as dicts: name, code, primitive, dims taken (-1: any), origins created");
  m.def(
      "rule_table",
      [] {
        py::list out;
        for (const auto& r : RULE_TABLE) {
          py::list kinds;
          for (int k = 0; k < NKINDS; ++k)
            if (r.kinds >> k & 1u) kinds.append(kind_name(k));
          out.append(py::make_tuple(r.name, py::tuple(kinds)));
        }
        return out;
      },
      "The rule table (rules.h) as (name, the kinds it can reject, in kind order)");
  // Verdict::Reason codes by value (syno_tvm.synth.verdict.Reason holds the same names and values)
  m.attr("VERDICT_REASONS") = std::vector<std::string>{"OK", "DEPTH", "RULE", "DISTANCE"};
  m.def("blake2b64_hex", [](const std::string& text) { return hex64(blake2b64(text)); },
        "BLAKE2b, 8-byte digest, as hex: the hash syno_tvm.ir.graph.digest uses");
  m.def(
      "plan_flops",
      [](int ndims, const std::vector<std::tuple<std::string, std::vector<int>, std::vector<int>>>& prims,
         const std::vector<std::vector<int>>& tensors, const std::vector<int>& output,
         const std::vector<std::vector<int64_t>>& sizes) {
        PlanGraph g{ndims, {}, tensors, output};
        for (const auto& [kind, tops, bottoms] : prims) {
          int k = -1;
          for (int i = 0; i <= P_SHARE; ++i)
            if (kind == prim_name(i)) k = i;
          if (k < 0) throw std::invalid_argument("unknown primitive '" + kind + "'");
          g.prims.push_back({k, tops, bottoms});
        }
        return plan_flops(g, sizes);
      },
      "FLOPs of the cheapest staging (syno_tvm.lower.order.plan(...).flops) under each binding's dim sizes");
  py::class_<SpecData> spec(m, "SpecData",
                            "The spec the engine is built from (native/synth/spec.h): keyword fields, each required "
                            "once; sizes as (numerator, denominator, powers in `names` order)");
  spec.def(py::init(&spec_from));
  spec_fields([&](const char* name, auto member) { spec.def_readonly(name, member); });
  py::class_<Engine>(m, "Engine")
      .def(py::init<const SpecData&, const std::vector<std::string>&, uint64_t>(), py::arg("spec"), py::arg("rules"),
           py::arg("seed"))
      .def("sample", &Engine::sample, py::arg("n"), py::arg("seconds"))
      .def("rollout", &Engine::rollout, py::arg("path"), py::arg("seed"), py::arg("max_restarts"))
      .def("stats", &Engine::stats)
      .def("report", &Engine::report, py::arg("path"), py::arg("extra") = py::list())
      .def("expand", &Engine::expand, py::arg("node"))
      .def("final_at", &Engine::final_at, py::arg("hash"))
      .def("forget", &Engine::forget)
      .def("known", &Engine::known);
}
