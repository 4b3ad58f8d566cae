// Models exported by today's PyTorch train to PyTorch's own losses. tools/export_torch2_fixtures.py
// (run with torch 2.x from the package index, not at test time) exported an MLP (LayerNorm,
// GELU), a CNN (BatchNorm in training mode) and a GPT block (RMSNorm, causal SDPA, rotary
// embeddings, SiLU) with the legacy exporter at opsets 17 and 18 and the dynamo exporter at its
// default opset and at 23, with optimize=False and True, and recorded torch.optim.AdamW's fp32
// loss at each of 20 steps (tests/fixtures/torch2_train/index.json). ampc trains each export from
// the same weights on the same batches and must match every step: fp32 within 1e-4 relative,
// fp16/bf16 within 2e-2.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "codegen/mlir_compile.h"
#include "tests/unit/test_util.h"

namespace ampc {
namespace {

using testing::RunAmpc;
using testing::TempDir;

const std::string kDir = std::string(AMPC_FIXTURES_DIR) + "/torch2_train";

nlohmann::json Index() {
  std::ifstream in(kDir + "/index.json");
  return nlohmann::json::parse(in);
}

struct Case {
  std::string model, file, data, precision;
  std::vector<double> losses;
};

std::vector<Case> Cases() {
  std::vector<Case> out;
  const nlohmann::json index = Index();  // not a temporary: the loop holds references into it
  for (const auto& e : index["exports"]) {
    if (!e.contains("file")) continue;
    for (const char* p : {"fp32", "bf16", "fp16"}) {
      out.push_back({e["model"], e["file"], e["data"], p, e["losses"].get<std::vector<double>>()});
    }
  }
  return out;
}

// The losses ampc wrote to `metrics` against PyTorch's: fp32 within 1e-4 relative, fp16/bf16 2e-2.
void ExpectPyTorchsLosses(const std::string& metrics, const Case& c) {
  std::vector<double> losses;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) losses.push_back(j["loss"].get<double>());
  }
  ASSERT_EQ(losses.size(), c.losses.size());
  const double tol = c.precision == "fp32" ? 1e-4 : 2e-2;
  for (size_t i = 0; i < losses.size(); ++i) {
    EXPECT_LE(std::abs(losses[i] - c.losses[i]), tol * std::abs(c.losses[i]))
        << "step " << i + 1 << ": ampc " << losses[i] << ", PyTorch " << c.losses[i];
  }
}

class Torch2Training : public ::testing::TestWithParam<Case> {};

TEST_P(Torch2Training, TrainsToPyTorchsLosses) {
  const Case& c = GetParam();
  TempDir tmp;
  const std::string metrics = tmp / "m.jsonl";
  // dynamo's optimize=True folds training-mode BatchNorm into the Conv weights and drops the
  // RMSNorm weights' multiplication by their initial ones: the graph is the model in inference
  // form, so its training trajectory cannot be PyTorch's. ampc must say so (a warning, not quiet).
  const bool folded = c.model != "mlp" && c.file.find("_opt") != std::string::npos;
  // The GPT block's rotary tables are registered buffers; in ONNX they are float initializers
  // that the loss depends on, like parameters, so the run names them (README: --freeze).
  const std::string freeze = c.model == "gpt" ? " --freeze '^(cos|sin)$'" : "";
  auto r = RunAmpc("train " + kDir + "/" + c.file + " --data " + kDir + "/" + c.data +
                   " --batch-size 8 --steps 20 --optimizer adamw --lr 0.001 --no-shuffle" +
                   (folded ? "" : " --quiet") + " --threads 1 --metrics " + metrics +
                   " --precision " + c.precision + freeze);
  if (folded) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (c.model == "gpt") {  // its folded Linear weights are named val_N
      EXPECT_NE(r.err.find("looks constant-folded for inference"), std::string::npos) << r.err;
    } else {
      // The CNN keeps its parameters' names and simply loses the BatchNorm, which no rule can
      // tell from a model that never had one: the export has none left.
      auto g = RunAmpc("inspect " + kDir + "/" + c.file);
      EXPECT_EQ(g.out.find("BatchNormalization"), std::string::npos);
    }
    return;
  }
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectPyTorchsLosses(metrics, c);
}

// Composite ops decomposed into ONNX ops (--composite-ops ops, the CUDA target's default) train
// to the same PyTorch losses: gpt_dynamo23's Attention op (passes/decompose_attention) and the
// CNNs' training-mode BatchNormalization (frontend/training/batchnorm_ops). With
// --half-small-gemms, so that bf16 and fp16 do run the decomposed GEMMs in half precision (the
// CPU's cost rule keeps these small products in fp32).
TEST(Torch2Training, CompositeOpsTrainToPyTorchsLosses) {
  int runs = 0;
  for (const Case& c : Cases()) {
    const bool attention = c.file == "gpt_dynamo23.onnx";
    const bool batchnorm = c.model == "cnn" && c.file.find("_opt") == std::string::npos;
    if (!attention && !batchnorm) continue;
    SCOPED_TRACE(c.file + " " + c.precision);
    TempDir tmp;
    const std::string metrics = tmp / "m.jsonl";
    auto r =
        RunAmpc("train " + kDir + "/" + c.file + " --data " + kDir + "/" + c.data +
                " --batch-size 8 --steps 20 --optimizer adamw --lr 0.001 --no-shuffle --quiet" +
                " --threads 1 --composite-ops ops --half-small-gemms --metrics " + metrics +
                " --precision " + c.precision + (attention ? " --freeze '^(cos|sin)$'" : ""));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ExpectPyTorchsLosses(metrics, c);
    ++runs;
  }
  EXPECT_EQ(runs, 15);  // (gpt_dynamo23 + 4 CNNs) x fp32, bf16, fp16
}

std::string Name(const ::testing::TestParamInfo<Case>& info) {
  std::string n = info.param.file.substr(0, info.param.file.find('.')) + "_" + info.param.precision;
  for (char& ch : n) {
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n;
}

INSTANTIATE_TEST_SUITE_P(Exports, Torch2Training, ::testing::ValuesIn(Cases()), Name);

// Today's exports all compile for the CUDA runtime (`ampc compile --target cuda` classifies every
// step, refusing one it has no kernel for by name): opset 23's Attention op and training-mode
// BatchNormalization as the ONNX ops that define them. Needs MLIR (generated kernels) and ptxas.
TEST(Torch2Training, CudaTargetCoverage) {
  if (!HaveMlir() || !std::filesystem::exists("/usr/local/cuda/bin/ptxas")) {
    GTEST_SKIP() << "no MLIR or CUDA toolkit";
  }
  TempDir tmp;
  int compiled = 0;
  const nlohmann::json index = Index();
  for (const auto& e : index["exports"]) {
    const std::string file = e["file"], model = e["model"];
    const std::string dims = model == "gpt" ? " --dim seq=32 --untie-shared --class-axis 2" : "";
    auto r = RunAmpc("compile " + kDir + "/" + file + " --target cuda --batch-size 8 --force -o " +
                     (tmp / "p.ampc") + dims);
    EXPECT_EQ(r.exit_code, 0) << file << ": " << r.err;
    compiled += r.exit_code == 0;
  }
  EXPECT_EQ(compiled, 18);
}

TEST(Torch2Training, EveryExportWasWritten) {
  int files = 0;
  const nlohmann::json index = Index();
  for (const auto& e : index["exports"]) {
    EXPECT_TRUE(e.contains("file")) << e.dump();
    files += e.contains("file");
  }
  EXPECT_EQ(files, 18);
}

}  // namespace
}  // namespace ampc
