// Shared by the generated-kernel tests (generated_kernels_test.cc, generated_kernels_edge_test.cc,
// generated_training_test.cc): the fixture models and how they are compiled with generated
// kernels required; random kernel arguments and the comparison of their results.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "codegen/plan.h"
#include "compile_util.h"
#include "compiler/compiler.h"
#include "frontend/onnx.h"
#include "ir/float16.h"
#include "runtime/cpu/kernel.h"

namespace ampc::gen_test {

// A kernel cache of the tests' own, inside the build tree.
inline std::string CacheDir() { return std::string(AMPC_GEN_DIR) + "/kernel-cache-test"; }

struct ModelCase {
  std::string name;
  std::string path;
  SampleDims dims;
  bool untie = false;
};

inline std::vector<ModelCase> Models() {
  const std::string fx = AMPC_FIXTURES_DIR, gen = AMPC_GEN_DIR;
  return {
      {"mlp", fx + "/mlp_opset17.onnx", {{"input", {4, 784}}, {"labels", {4}}}},
      {"cnn", fx + "/cnn_opset17.onnx", {{"input", {4, 1, 28, 28}}, {"labels", {4}}}},
      {"transformer",
       fx + "/transformer_opset17.onnx",
       {{"idx", {2, 16}}, {"labels", {2, 16}}},
       true},
      {"resnet18", gen + "/resnet18_opset17.onnx", {{"input", {1, 3, 64, 64}}, {"labels", {1}}}},
      {"mobilenet_v2",
       gen + "/mobilenet_v2_opset17.onnx",
       {{"input", {1, 3, 64, 64}}, {"labels", {1}}}},
  };
}

// `support`: the target's (null: the CPU's); `gpu_grain`: the CUDA target's kernel grain.
inline StatusOr<testing::CompiledTraining> Compile(const ModelCase& m, DType precision,
                                                   const BackendSupport* support = nullptr,
                                                   bool gpu_grain = false) {
  CompileOptions o;
  o.support = support;
  o.kernels.gpu_grain = gpu_grain;
  o.precision = precision;
  o.train.optimizer.kind = "adamw";
  o.train.untie_shared = m.untie;
  if (m.name == "transformer") o.train.loss.class_axis = 2;  // logits [batch, seq, vocab]
  o.kernels.enabled = true;
  o.kernels.required = true;
  o.kernels.cache_dir = CacheDir();
  const std::string path = m.path;
  return testing::CompileTraining([path] { return ImportOnnxFile(path); }, o,
                                  m.dims.begin()->second[0], m.dims);
}

// Random contents: normal values, and one element in eight a random bit pattern; i64 values
// in [0, 50).
inline void Fill(cpu::TensorView& v, std::mt19937_64& rng) {
  const int64_t n = v.NumElements();
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t r = rng();
    const bool bits = (r & 7) == 0;
    switch (v.dtype) {
      case DType::kFloat32:
        v.as<float>()[i] = bits ? BitsToFloat(static_cast<uint32_t>(r >> 32)) : normal(rng);
        break;
      case DType::kFloat16:
        v.as<uint16_t>()[i] = bits ? static_cast<uint16_t>(r >> 40) : FloatToHalfBits(normal(rng));
        break;
      case DType::kBFloat16:
        v.as<uint16_t>()[i] =
            bits ? static_cast<uint16_t>(r >> 40) : FloatToBFloat16Bits(normal(rng));
        break;
      case DType::kBool:
        v.as<uint8_t>()[i] = (r >> 20) & 1;
        break;
      case DType::kInt64:  // step counts, loss-scale trackers: small and not negative
        v.as<int64_t>()[i] = static_cast<int64_t>((r >> 20) % 50);
        break;
      default:
        std::memset(static_cast<uint8_t*>(v.data) + i * DTypeSize(v.dtype), 0, DTypeSize(v.dtype));
    }
  }
}

// The same bits, or both NaN: which NaN operand's payload an arithmetic instruction passes on
// depends on operand order, which neither g++ nor LLVM promise to keep (both may commute a * b),
// so NaN payloads are compared only where no arithmetic produced them (Where, Cast, storing).
inline bool SameElement(const cpu::TensorView& a, const cpu::TensorView& b, int64_t j) {
  const int size = DTypeSize(a.dtype);
  const auto* x = static_cast<const uint8_t*>(a.data) + j * size;
  const auto* y = static_cast<const uint8_t*>(b.data) + j * size;
  if (std::memcmp(x, y, size) == 0) return true;
  if (a.dtype == DType::kFloat32) {
    float u, v;
    std::memcpy(&u, x, 4);
    std::memcpy(&v, y, 4);
    return std::isnan(u) && std::isnan(v);
  }
  if (a.dtype == DType::kFloat16 || a.dtype == DType::kBFloat16) {
    uint16_t u, v;
    std::memcpy(&u, x, 2);
    std::memcpy(&v, y, 2);
    const uint16_t exp = a.dtype == DType::kFloat16 ? 0x7c00 : 0x7f80;
    auto nan = [exp](uint16_t h) { return (h & exp) == exp && (h & ~exp & 0x7fff) != 0; };
    return nan(u) && nan(v);
  }
  return false;
}

// Inputs the executor checks before it runs kernel k (labels, indices, step counts; argument
// `arg`): valid values, at most 50 distinct, and the excepted value (an ignore_index) for one
// element in four.
inline void FillChecked(cpu::TensorView& v, const plan::Kernel& k, int arg, std::mt19937_64& rng) {
  for (const plan::ArgCheck& c : k.arg_checks()) {
    if (c.arg() != arg) continue;
    const int64_t span = std::min<int64_t>(c.max() - c.min(), 49) + 1;
    for (int64_t e = 0; e < v.NumElements(); ++e) {
      const uint64_t r = rng();
      const int64_t x = c.has_except() && (r & 3) == 0
                            ? c.except()
                            : c.min() + static_cast<int64_t>((r >> 8) % span);
      if (v.dtype == DType::kInt32) {
        v.as<int32_t>()[e] = static_cast<int32_t>(x);
      } else {
        v.as<int64_t>()[e] = x;
      }
    }
  }
}

}  // namespace ampc::gen_test
