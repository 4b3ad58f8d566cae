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

std::string Name(const ::testing::TestParamInfo<Case>& info) {
  std::string n = info.param.file.substr(0, info.param.file.find('.')) + "_" + info.param.precision;
  for (char& ch : n) {
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n;
}

INSTANTIATE_TEST_SUITE_P(Exports, Torch2Training, ::testing::ValuesIn(Cases()), Name);

// What of today's exports the CUDA runtime runs (`ampc compile --target cuda` classifies every
// step): all but training-mode BatchNormalization (the CNNs not folded for inference) and opset
// 23's Attention op, which are refused by name. Needs MLIR (generated kernels) and ptxas.
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
    const bool opt = file.find("_opt") != std::string::npos;
    std::string refused;
    if (model == "cnn" && !opt) refused = "com.ampc::BatchNormalization";
    if (model == "gpt" && file.find("dynamo23") != std::string::npos) refused = "Attention";
    if (refused.empty()) {
      EXPECT_EQ(r.exit_code, 0) << file << ": " << r.err;
      compiled += r.exit_code == 0;
    } else {
      EXPECT_NE(r.exit_code, 0) << file;
      EXPECT_NE(r.err.find("the CUDA runtime has no kernel for " + refused), std::string::npos)
          << file << ": " << r.err;
    }
  }
  EXPECT_EQ(compiled, 12);  // 6 MLPs, 2 CNNs folded for inference, 4 GPTs
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
