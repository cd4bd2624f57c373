// syno-runner: time a Relax VM executable exported as a shared library (syno_tvm.tune.compile.export), with only
// the TVM runtime: no Python, no compiler. It is what runs on a deployment board.
//
//   syno-runner LIB.so --input 1x3x32x32 [--input 8:int64 ...] [--warmup 5] [--repeat 50] [--seed 0]
//               [--threads N] [--func main] [--save-dir DIR]
//
// Inputs are random (uniform in [-1, 1) for floats, [0, 10) for integers) from a fixed seed, so two runs of one
// command feed the same data. The last line printed is one JSON object: the median, min, max, mean and standard
// deviation of the timed runs in milliseconds, and each output's shape, dtype and checksum (sum and sum of
// |x|). --save-dir writes every input and output as raw little-endian bytes (input0.bin, output0.bin, ...) so a
// caller can feed the same inputs to another implementation and compare the outputs element by element.
// Errors print one line "syno-runner: ..." to stderr and exit 2.

#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using tvm::ffi::Any;
using tvm::ffi::Function;
using tvm::ffi::Module;
using tvm::ffi::Tensor;

// Inputs live in 64-byte aligned host memory, the alignment TVM's own allocator gives and its kernels assume.
// (Only tvm-ffi headers are used: the apache-tvm wheel's tvm/runtime headers include files the wheel lacks.)
struct AlignedCPUAlloc {
  void AllocData(DLTensor* tensor) {
    size_t bytes = static_cast<size_t>((tensor->dtype.bits * tensor->dtype.lanes + 7) / 8);
    for (int d = 0; d < tensor->ndim; ++d) bytes *= static_cast<size_t>(tensor->shape[d]);
    tensor->data = std::aligned_alloc(64, std::max<size_t>(64, (bytes + 63) / 64 * 64));
    if (tensor->data == nullptr) throw std::bad_alloc();
  }
  void FreeData(DLTensor* tensor) { std::free(tensor->data); }
};

// The allocator ids of tvm/runtime/memory/memory_manager.h (kPooled); the Python VM uses the same default.
constexpr int kPooledAllocator = 2;

struct InputSpec {
  std::vector<int64_t> shape;
  DLDataType dtype;
  std::string dtype_name;
};

struct Options {
  std::string library;
  std::vector<InputSpec> inputs;
  int warmup = 5;
  int repeat = 50;
  uint32_t seed = 0;
  int threads = 0;
  std::string func = "main";
  std::string save_dir;
};

[[noreturn]] void Fail(const std::string& message) { throw std::runtime_error(message); }

DLDataType ParseDtype(const std::string& name) {
  if (name == "float32") return DLDataType{kDLFloat, 32, 1};
  if (name == "float64") return DLDataType{kDLFloat, 64, 1};
  if (name == "int32") return DLDataType{kDLInt, 32, 1};
  if (name == "int64") return DLDataType{kDLInt, 64, 1};
  Fail("unsupported dtype '" + name + "': use float32, float64, int32 or int64");
}

std::string DtypeName(DLDataType t) {
  if (t.code == kDLFloat && t.lanes == 1 && (t.bits == 32 || t.bits == 64)) return "float" + std::to_string(t.bits);
  if (t.code == kDLInt && t.lanes == 1 && (t.bits == 32 || t.bits == 64)) return "int" + std::to_string(t.bits);
  return "code" + std::to_string(t.code) + "_bits" + std::to_string(t.bits) + "_lanes" + std::to_string(t.lanes);
}

// "1x3x32x32" or "1x3x32x32:float32"; a scalar is written "scalar[:dtype]".
InputSpec ParseInput(const std::string& text) {
  InputSpec spec;
  std::string dims = text;
  spec.dtype_name = "float32";
  auto colon = text.find(':');
  if (colon != std::string::npos) {
    dims = text.substr(0, colon);
    spec.dtype_name = text.substr(colon + 1);
  }
  spec.dtype = ParseDtype(spec.dtype_name);
  if (dims == "scalar") return spec;
  std::stringstream stream(dims);
  std::string part;
  while (std::getline(stream, part, 'x')) {
    char* end = nullptr;
    long long v = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || v <= 0) Fail("bad input shape '" + text + "': write it like 1x3x32x32[:float32]");
    spec.shape.push_back(v);
  }
  return spec;
}

int ParseInt(const std::string& flag, const std::string& value, int lowest) {
  char* end = nullptr;
  long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v < lowest) Fail(flag + " wants an integer >= " + std::to_string(lowest));
  return static_cast<int>(v);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Fail(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--input") o.inputs.push_back(ParseInput(value()));
    else if (arg == "--warmup") o.warmup = ParseInt(arg, value(), 0);
    else if (arg == "--repeat") o.repeat = ParseInt(arg, value(), 1);
    else if (arg == "--seed") o.seed = static_cast<uint32_t>(ParseInt(arg, value(), 0));
    else if (arg == "--threads") o.threads = ParseInt(arg, value(), 1);
    else if (arg == "--func") o.func = value();
    else if (arg == "--save-dir") o.save_dir = value();
    else if (!arg.empty() && arg[0] == '-') Fail("unknown option " + arg);
    else if (o.library.empty()) o.library = arg;
    else Fail("more than one library given: " + arg);
  }
  if (o.library.empty()) Fail("usage: syno-runner LIB.so --input 1x3x32x32[:float32] [--warmup N] [--repeat N]");
  return o;
}

int64_t NumElements(const DLTensor* t) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; ++d) n *= t->shape[d];
  return n;
}

Tensor RandomTensor(const InputSpec& spec, std::mt19937& rng, DLDevice cpu) {
  Tensor t = Tensor::FromNDAlloc(AlignedCPUAlloc(), tvm::ffi::Shape(spec.shape), spec.dtype, cpu);
  int64_t n = t.numel();
  std::uniform_real_distribution<double> real(-1.0, 1.0);
  std::uniform_int_distribution<int64_t> integer(0, 9);
  void* data = t.data_ptr();
  for (int64_t i = 0; i < n; ++i) {
    switch (spec.dtype.code == kDLFloat ? spec.dtype.bits : -spec.dtype.bits) {
      case 32: static_cast<float*>(data)[i] = static_cast<float>(real(rng)); break;
      case 64: static_cast<double*>(data)[i] = real(rng); break;
      case -32: static_cast<int32_t*>(data)[i] = static_cast<int32_t>(integer(rng)); break;
      default: static_cast<int64_t*>(data)[i] = integer(rng); break;
    }
  }
  return t;
}

double ElementAsDouble(const DLTensor* t, int64_t i) {
  const char* base = static_cast<const char*>(t->data) + t->byte_offset;
  if (t->dtype.code == kDLFloat && t->dtype.bits == 32) return reinterpret_cast<const float*>(base)[i];
  if (t->dtype.code == kDLFloat && t->dtype.bits == 64) return reinterpret_cast<const double*>(base)[i];
  if (t->dtype.code == kDLInt && t->dtype.bits == 32) return reinterpret_cast<const int32_t*>(base)[i];
  if (t->dtype.code == kDLInt && t->dtype.bits == 64) return static_cast<double>(reinterpret_cast<const int64_t*>(base)[i]);
  return NAN;
}

void SaveRaw(const DLTensor* t, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  if (!out) Fail("cannot write " + path + ": does --save-dir exist?");
  size_t bytes = static_cast<size_t>(NumElements(t)) * ((t->dtype.bits * t->dtype.lanes + 7) / 8);
  out.write(static_cast<const char*>(t->data) + t->byte_offset, static_cast<std::streamsize>(bytes));
}

// The VM returns one tensor or a (possibly nested) tuple of them; flatten into a list in order.
void CollectOutputs(const Any& value, std::vector<Tensor>* out) {
  if (auto tensor = value.as<Tensor>()) {
    out->push_back(*tensor);
  } else if (auto array = value.as<tvm::ffi::Array<Any>>()) {
    for (const Any& item : *array) CollectOutputs(item, out);
  } else {
    Fail("the function returned a " + value.GetTypeKey() + ", not tensors");
  }
}

std::string ShapeJson(const DLTensor* t) {
  std::string s = "[";
  for (int d = 0; d < t->ndim; ++d) s += (d ? "," : "") + std::to_string(t->shape[d]);
  return s + "]";
}

std::string JsonString(const std::string& text) {
  std::string s = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') s += '\\';
    s += c;
  }
  return s + "\"";
}

std::string Num(double v) {
  std::ostringstream s;
  s.precision(9);
  s << v;
  return s.str();
}

int Run(const Options& o) {
  if (o.threads > 0) setenv("TVM_NUM_THREADS", std::to_string(o.threads).c_str(), 1);
  DLDevice cpu{kDLCPU, 0};
  Module lib = Module::LoadFromFile(o.library);
  auto load = lib->GetFunction("vm_load_executable");
  if (!load.has_value()) Fail(o.library + " is not a Relax VM executable (no vm_load_executable): export a relax build");
  Module vm = (*load)().cast<Module>();
  (*vm->GetFunction("vm_initialization"))(static_cast<int>(kDLCPU), 0, kPooledAllocator);
  auto entry = vm->GetFunction(o.func);
  if (!entry.has_value()) Fail("the executable has no function '" + o.func + "'");
  Function func = *entry;

  std::mt19937 rng(o.seed);
  std::vector<Any> args;
  for (const InputSpec& spec : o.inputs) args.emplace_back(RandomTensor(spec, rng, cpu));
  std::vector<tvm::ffi::AnyView> views(args.begin(), args.end());
  auto call = [&]() {
    Any result;
    func.CallPacked(views.data(), static_cast<int32_t>(views.size()), &result);
    return result;
  };

  Any result;
  for (int i = 0; i < o.warmup; ++i) result = call();
  std::vector<double> ms;
  for (int i = 0; i < o.repeat; ++i) {
    auto start = std::chrono::steady_clock::now();
    result = call();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::vector<Tensor> outputs;
  CollectOutputs(result, &outputs);

  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  size_t n = sorted.size();
  double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  double mean = 0;
  for (double v : ms) mean += v;
  mean /= n;
  double var = 0;
  for (double v : ms) var += (v - mean) * (v - mean);
  double std_ms = n > 1 ? std::sqrt(var / (n - 1)) : 0.0;

  if (!o.save_dir.empty()) {
    for (size_t i = 0; i < args.size(); ++i)
      SaveRaw(args[i].cast<Tensor>().GetDLTensorPtr(), o.save_dir + "/input" + std::to_string(i) + ".bin");
    for (size_t i = 0; i < outputs.size(); ++i)
      SaveRaw(outputs[i].GetDLTensorPtr(), o.save_dir + "/output" + std::to_string(i) + ".bin");
  }

  std::ostringstream json;
  json << "{\"library\":" << JsonString(o.library) << ",\"function\":" << JsonString(o.func) << ",\"warmup\":" << o.warmup
       << ",\"repeat\":" << o.repeat << ",\"seed\":" << o.seed << ",\"median_ms\":" << Num(median)
       << ",\"min_ms\":" << Num(sorted.front()) << ",\"max_ms\":" << Num(sorted.back()) << ",\"mean_ms\":" << Num(mean)
       << ",\"std_ms\":" << Num(std_ms) << ",\"outputs\":[";
  for (size_t i = 0; i < outputs.size(); ++i) {
    const DLTensor* t = outputs[i].GetDLTensorPtr();
    double sum = 0, abs_sum = 0;
    for (int64_t j = 0, m = NumElements(t); j < m; ++j) {
      double v = ElementAsDouble(t, j);
      sum += v;
      abs_sum += std::fabs(v);
    }
    json << (i ? "," : "") << "{\"shape\":" << ShapeJson(t) << ",\"dtype\":\"" << DtypeName(t->dtype)
         << "\",\"sum\":" << Num(sum) << ",\"abs_sum\":" << Num(abs_sum) << "}";
  }
  json << "]}";
  std::cout << json.str() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(ParseArgs(argc, argv));
  } catch (const std::exception& e) {
    std::string message = e.what();
    std::replace(message.begin(), message.end(), '\n', ' ');
    std::cerr << "syno-runner: " << message << std::endl;
    return 2;
  }
}
