// Training with generated kernels (codegen's node and fused kernels in the CPU executor) against
// the per-op run of the same plan: the same losses, loss scales, skipped steps and trained
// weights, bit for bit; and the per-op errors the kernels' argument checks keep.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "codegen/mlir_compile.h"
#include "generated_kernels_util.h"
#include "runtime/cpu/executor.h"
#include "runtime/cpu/generated.h"
#include "test_util.h"

namespace ampc {
namespace {

using gen_test::CacheDir;
using gen_test::Compile;
using gen_test::Models;
using testing::TempDir;

// Trains reference case `name` (generate_train_references) for `steps` steps with `extra` flags,
// once with generated kernels and once per-op; expects the same losses, loss scales and skipped
// steps and the same exported bytes. Returns the generated run's metrics lines.
std::vector<nlohmann::json> TrainBothWays(const std::string& name, const std::string& extra,
                                          int steps, const std::string& generated = "generated") {
  const std::string dir = std::string(AMPC_GEN_DIR) + "/train_refs/" + name;
  std::ifstream in(dir + "/case.json");
  EXPECT_TRUE(in) << dir << "/case.json missing: the generate_train_references fixture did not run";
  if (!in) return {};
  const nlohmann::json c = nlohmann::json::parse(in)["args"];
  std::string flags = extra + " --steps " + std::to_string(steps);
  for (const auto& [k, v] : c.items()) {
    if (k == "model" || k == "steps") continue;
    flags += v.is_boolean() ? (v.get<bool>() ? " --" + k : "") : " --" + k + " " + v.dump();
  }
  TempDir tmp;
  std::map<std::string, std::vector<nlohmann::json>> metrics;
  for (const std::string& mode : {generated, std::string("per-op")}) {
    const auto r =
        testing::RunAmpc("train " + testing::Fixture(c["model"].get<std::string>()) + " --data " +
                         dir + "/data.npz --no-shuffle --quiet --threads 2 --kernels " + mode +
                         " --cache-dir " + CacheDir() + " --metrics " + (tmp / mode + ".jsonl") +
                         " --export " + (tmp / mode + ".onnx") + flags);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::ifstream ml(tmp / mode + ".jsonl");
    for (std::string line; std::getline(ml, line);) {
      auto j = nlohmann::json::parse(line);
      if (!j.contains("loss") || !j.contains("step")) continue;
      j.erase("samples_per_s");  // timing
      metrics[mode].push_back(j);
    }
  }
  EXPECT_EQ(metrics[generated].size(), static_cast<size_t>(steps));
  EXPECT_EQ(metrics[generated], metrics["per-op"]);
  EXPECT_EQ(testing::ReadBytes(tmp / (generated + ".onnx")),
            testing::ReadBytes(tmp / "per-op.onnx"))
      << "trained weights differ";
  return metrics[generated];
}

// Training with generated kernels reproduces the per-op run exactly: every loss and every trained
// weight (the exported models are the same bytes).
class GeneratedTrainingTest
    : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(GeneratedTrainingTest, SameLossesAndWeightsAsPerOp) {
  if (!HaveMlir()) GTEST_SKIP() << "built without MLIR";
  const auto& [name, precision] = GetParam();
  TrainBothWays(name, " --precision " + precision, 8);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GeneratedTrainingTest,
    ::testing::Combine(::testing::Values("mlp_adamw", "transformer_adamw", "cnn_sgd"),
                       ::testing::Values("fp32", "bf16", "fp16")),
    [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

// Skipped steps and scale updates: an fp16 run whose initial scale (2^22) overflows the gradients
// skips steps (the optimizers' apply input false, AllFinite false, the scale backed off) until the
// scale fits, then grows it every 2 finite steps; the generated node kernels follow the per-op
// run through all of it, for each optimizer kernel variant of the reference cases.
TEST(GeneratedTraining, SkippedStepsAndScaleUpdatesMatchPerOp) {
  if (!HaveMlir()) GTEST_SKIP() << "built without MLIR";
  for (const char* name :
       {"mlp_adamw", "mlp_adam_l2_clip", "mlp_sgd", "mlp_sgd_nesterov_wd", "cnn_sgd"}) {
    SCOPED_TRACE(name);
    const auto m =
        TrainBothWays(name, " --precision fp16 --init-scale 4194304 --growth-interval 2", 12);
    int skipped = 0, grown = 0;
    for (size_t i = 0; i < m.size(); ++i) {
      skipped += m[i]["skipped"].get<bool>();
      grown += i > 0 && m[i]["loss_scale"].get<double>() > m[i - 1]["loss_scale"].get<double>();
    }
    EXPECT_GT(skipped, 0) << "no step was skipped: the test does not reach apply = false";
    EXPECT_GT(grown, 0) << "the scale never grew";
    EXPECT_LT(skipped, 12) << "every step was skipped";
  }
}

// The CUDA target's grain (--kernels gpu-grain emits it for the CPU): one element per optimizer
// unit, AllFinite as one unit per element onto a flag filled with true. Through skipped steps
// (AllFinite false) and finite ones (true), the run is the per-op run, bit for bit.
TEST(GeneratedTraining, GpuGrainMatchesPerOp) {
  if (!HaveMlir()) GTEST_SKIP() << "built without MLIR";
  for (const char* name : {"mlp_adamw", "mlp_sgd_nesterov_wd", "transformer_adamw"}) {
    SCOPED_TRACE(name);
    const auto m = TrainBothWays(name, " --precision fp16 --init-scale 4194304 --growth-interval 2",
                                 10, "gpu-grain");
    int skipped = 0;
    for (const auto& j : m) skipped += j["skipped"].get<bool>();
    EXPECT_GT(skipped, 0);
    EXPECT_LT(skipped, 10);
  }
  TrainBothWays("cnn_sgd", " --precision bf16", 6, "gpu-grain");
}

// A negative step count (a hand-edited checkpoint) is the per-op kernels' error, not a generated
// kernel's silent update: the executor runs the fallback, which reports it.
TEST(GeneratedTraining, NegativeStepCountIsAnError) {
  if (!HaveMlir()) GTEST_SKIP() << "built without MLIR";
  if (!cpu::CpuHasFeature("x86-64-v3")) GTEST_SKIP() << "this CPU lacks x86-64-v3";
  auto c = Compile(Models()[0], DType::kFloat32);
  ASSERT_TRUE(c.ok()) << c.status().message();
  const plan::PlanProto& p = c->train.proto;
  int step_buffer = -1, guarded = 0;
  for (int i = 0; i < p.steps_size(); ++i) {
    const plan::Step& s = p.steps(i);
    if (!s.has_kernel()) continue;
    for (const plan::ArgCheck& a : p.kernels(s.kernel().kernel()).arg_checks()) {
      if (a.min() != 0 || p.buffers(s.inputs(a.arg())).dtype() != "i64") continue;
      step_buffer = s.inputs(a.arg());
      ++guarded;
    }
  }
  ASSERT_GT(guarded, 0) << "no optimizer kernel lists its step count";
  ASSERT_EQ(p.buffers(step_buffer).kind(), plan::Buffer::STATE);
  auto ex = cpu::CpuExecutor::Create(c->train, 2);
  ASSERT_TRUE(ex.ok()) << ex.status().message();
  EXPECT_GT((*ex)->generated_steps(), 0);
  const plan::Buffer& sb = p.buffers(step_buffer);
  const Status set = (*ex)->SetState(
      sb.name(),
      Tensor::FromInt64s({-1}, std::vector<int64_t>(sb.dims().begin(), sb.dims().end())));
  ASSERT_TRUE(set.ok()) << set.message();
  std::vector<Tensor> inputs;
  for (const auto& io : p.inputs()) {
    const plan::Buffer& b = p.buffers(io.buffer());
    inputs.push_back(Tensor::Zeros(*DTypeFromName(b.dtype()),
                                   std::vector<int64_t>(b.dims().begin(), b.dims().end())));
  }
  const Status st = (*ex)->Step(inputs);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("negative step count -1"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace ampc
