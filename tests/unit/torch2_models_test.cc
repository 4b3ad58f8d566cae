// Models exported by today's PyTorch (torch 2.15, torch.onnx.export(dynamo=True), opsets 18, 20
// and 23; tests/fixtures/torch2/gen_torch2_fixtures.py): a small transformer (RMSNorm, rotary
// cos/sin, causal scaled_dot_product_attention, rsqrt, tanh-GELU, qkv.split) and a small CNN
// (GroupNorm, Mish, an uneven split, GELU, spatial mean / max). Golden values: the logits from
// ONNX 1.23's reference evaluator on the same model and input, and float64 central finite
// differences of the loss sum(logits * W) taken with the PyTorch module in float64 at six
// elements of every parameter. Then each model trains for a few steps in fp32, bf16 and fp16,
// and the exports of one module at different opsets (different ops: Attention vs
// MatMul/Softmax, GroupNormalization vs InstanceNormalization) give the same fp32 trajectory.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "frontend/onnx.h"
#include "frontend/training/autodiff.h"
#include "ir/text.h"
#include "runtime/cpu/executor.h"
#include "runtime/cpu/kernel.h"
#include "tests/unit/test_util.h"

namespace ampc {
namespace {

namespace fs = std::filesystem;
using testing::Fixture;
using testing::RunAmpc;
using testing::TempDir;

std::vector<std::string> Models() {
  return {"transformer_opset20", "transformer_opset23", "cnn_opset18", "cnn_opset23"};
}

std::string Dir(const std::string& model) { return Fixture("torch2/" + model); }

Tensor Read(const std::string& path) {
  auto t = ReadTensorFile(path);
  EXPECT_TRUE(t.ok()) << path << ": " << t.status().message();
  return t.ok() ? *t : Tensor();
}

std::vector<Tensor> RunOnCpu(std::unique_ptr<Graph> g, const std::vector<Tensor>& inputs) {
  auto plan = CompileForInputs(std::move(g), inputs, DType::kFloat32, "torch2_models_test",
                               cpu::CpuBackendSupport());
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  if (!plan.ok()) return {};
  auto exec = cpu::CpuExecutor::Create(std::move(*plan), 2);
  EXPECT_TRUE(exec.ok()) << exec.status().message();
  if (!exec.ok()) return {};
  auto out = (*exec)->Run(inputs);
  EXPECT_TRUE(out.ok()) << out.status().message();
  return out.ok() ? *out : std::vector<Tensor>{};
}

class Torch2ModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(Torch2ModelTest, LogitsMatchOnnxReference) {
  auto g = ImportOnnxFile(Dir(GetParam()) + "/model.onnx");
  ASSERT_TRUE(g.ok()) << g.status().message();
  const Tensor x = Read(Dir(GetParam()) + "/test_data_set_0/input_0.pb");
  const std::vector<double> want =
      *Read(Dir(GetParam()) + "/test_data_set_0/output_0.pb").AsDoubles();
  std::vector<Tensor> out = RunOnCpu(std::move(*g), {x});
  ASSERT_EQ(out.size(), 1u);
  const std::vector<double> got = *out[0].AsDoubles();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_LE(std::fabs(got[i] - want[i]), 1e-5 + 1e-4 * std::fabs(want[i])) << "logit " << i;
  }
}

TEST_P(Torch2ModelTest, GradientsMatchFloat64FiniteDifferences) {
  const std::string dir = Dir(GetParam());
  auto imported = ImportOnnxFile(dir + "/model.onnx");
  ASSERT_TRUE(imported.ok()) << imported.status().message();
  std::unique_ptr<Graph> g = std::move(*imported);
  Value* logits = g->outputs()[0];
  auto w = g->AddInitializer("loss_weight", Read(dir + "/loss_weight.pb"));
  ASSERT_TRUE(w.ok());
  auto mul = g->AddNode("Mul", "", "loss_mul", {logits, *w}, {"loss_terms"});
  ASSERT_TRUE(mul.ok() && InferNode(**mul).ok());
  auto sum = g->AddNode("ReduceSum", "", "loss_sum", {(*mul)->output(0)}, {"loss"},
                        {{"keepdims", Attribute(int64_t{0})}});
  ASSERT_TRUE(sum.ok() && InferNode(**sum).ok());
  std::vector<std::string> names;
  std::vector<Value*> params;
  for (const auto& e : fs::directory_iterator(dir + "/fd")) {
    const std::string f = e.path().filename().string();
    if (f.size() > 7 && f.substr(f.size() - 7) == ".idx.pb") {
      names.push_back(f.substr(0, f.size() - 7));
      Value* p = g->FindValue(names.back());
      ASSERT_NE(p, nullptr) << names.back() << " is not a value of the model";
      params.push_back(p);
    }
  }
  ASSERT_FALSE(params.empty());
  auto r = BuildBackward(*g, (*sum)->output(0), params);
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::vector<Value*> outs;
  for (Value* p : params) {
    ASSERT_TRUE(r->grads.count(p)) << "no gradient for " << p->name();
    outs.push_back(r->grads.at(p));
  }
  g->SetOutputs(outs);
  std::vector<Tensor> grads = RunOnCpu(std::move(g), {Read(dir + "/test_data_set_0/input_0.pb")});
  ASSERT_EQ(grads.size(), names.size());
  for (size_t k = 0; k < names.size(); ++k) {
    const std::vector<double> got = *grads[k].AsDoubles();
    const std::vector<double> idx = *Read(dir + "/fd/" + names[k] + ".idx.pb").AsDoubles();
    const std::vector<double> fd = *Read(dir + "/fd/" + names[k] + ".val.pb").AsDoubles();
    ASSERT_EQ(idx.size(), fd.size());
    for (size_t j = 0; j < idx.size(); ++j) {
      const double g_ij = got.at(static_cast<size_t>(idx[j]));
      EXPECT_LE(std::fabs(g_ij - fd[j]), 1e-4 + 2e-3 * std::fabs(fd[j]))
          << names[k] << "[" << idx[j] << "]: autodiff (fp32) " << g_ij << ", fd (f64) " << fd[j];
    }
  }
}

TEST_P(Torch2ModelTest, TextAndExportRoundTripsAreIdentities) {
  auto g = ImportOnnxFile(Dir(GetParam()) + "/model.onnx");
  ASSERT_TRUE(g.ok()) << g.status().message();
  PrintOptions all;
  all.max_inline_elements = INT64_MAX;
  const std::string text = PrintGraph(**g, all);
  auto parsed = ParseGraph(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(PrintGraph(**parsed, all), text);
  TempDir dir;
  ASSERT_TRUE(ExportOnnxFile(**g, dir / "exported.onnx").ok());
  auto again = ImportOnnxFile(dir / "exported.onnx");
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(PrintGraph(**again, all), text);
}

// The model's last loss after `steps` of `ampc train` (the last metrics line), or NAN.
double TrainLastLoss(const std::string& model, const std::string& precision, int steps) {
  TempDir tmp;
  const std::string data = Fixture("torch2/") + model.substr(0, model.find('_')) + "_data.npz";
  auto r = RunAmpc("train " + Dir(model) + "/model.onnx --data " + data +
                   " --batch-size 2 --steps " + std::to_string(steps) + " --lr 0.05 --precision " +
                   precision + " --metrics " + (tmp / "m.jsonl"));
  EXPECT_EQ(r.exit_code, 0) << model << " " << precision << ": " << r.err;
  std::ifstream in(tmp / "m.jsonl");
  std::string line, last;
  while (std::getline(in, line)) last = line;
  const size_t p = last.find("\"loss\":");
  return p == std::string::npos ? NAN : std::stod(last.substr(p + 7));
}

TEST_P(Torch2ModelTest, TrainsInEveryPrecision) {
  for (const char* precision : {"fp32", "bf16", "fp16"}) {
    const double loss = TrainLastLoss(GetParam(), precision, 6);
    EXPECT_TRUE(std::isfinite(loss)) << precision;
  }
}

INSTANTIATE_TEST_SUITE_P(Exports, Torch2ModelTest, ::testing::ValuesIn(Models()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

TEST(Torch2Models, ExportsAtDifferentOpsetsTrainAlike) {
  EXPECT_NEAR(TrainLastLoss("transformer_opset20", "fp32", 10),
              TrainLastLoss("transformer_opset23", "fp32", 10), 1e-4);
  EXPECT_NEAR(TrainLastLoss("cnn_opset18", "fp32", 10), TrainLastLoss("cnn_opset23", "fp32", 10),
              1e-4);
}

}  // namespace
}  // namespace ampc
