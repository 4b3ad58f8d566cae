// Shared by the generated-kernel tests (generated_kernels_test.cc, generated_training_test.cc):
// the fixture models and how they are compiled with generated kernels required.
#pragma once

#include <string>
#include <vector>

#include "compile_util.h"
#include "compiler/compiler.h"
#include "frontend/onnx.h"

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

inline StatusOr<testing::CompiledTraining> Compile(const ModelCase& m, DType precision) {
  CompileOptions o;
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

}  // namespace ampc::gen_test
