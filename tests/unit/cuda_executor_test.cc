// The CUDA executor on a GPU. Every test here skips where no GPU is usable (this machine, CI),
// reported by ctest as skipped; on a machine with a GPU they run the same checks as
// tools/gpu_check.sh does with the bundle:
//  - ampc-gpu check: one forward pass and 10 training steps of the MLPs, the CNN and the causal
//    transformer in fp32, bf16 and fp16 on the CUDA executor against the CPU executor (the oracle),
//    from the same states on the same batches: outputs, every step's metrics, every state;
//  - ampc train --device auto trains on the GPU, and ampc-gpu bench reports the GPU.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "codegen/mlir_compile.h"
#include "runtime/device_info.h"
#include "test_util.h"

namespace ampc {
namespace {

struct GpuCase {
  std::string ref;      // reference case under train_refs (its data.npz)
  std::string compile;  // ampc compile flags
};

GpuCase Case(const std::string& model) {
  if (model == "mlp") {
    return {"mlp_adamw",
            testing::Fixture("mlp_opset17.onnx") + " --batch-size 32 --optimizer adamw --lr 0.001"};
  }
  if (model == "relu_mlp") {  // its first GEMM applies the ReLU as cuBLASLt's epilogue
    return {"mlp_adamw", testing::Fixture("relu_mlp_opset17.onnx") +
                             " --batch-size 32 --optimizer adamw --lr 0.001"};
  }
  if (model == "gelu_mlp") {  // GELU_AUX_BIAS forward, DGELU(_BGRAD) backward
    return {"mlp_adamw", testing::Fixture("gelu_tanh_mlp_opset20.onnx") +
                             " --batch-size 32 --optimizer adamw --lr 0.001"};
  }
  if (model == "cnn") {
    return {"cnn_adamw",
            testing::Fixture("cnn_opset17.onnx") + " --batch-size 16 --optimizer adamw --lr 0.001"};
  }
  return {"transformer_adamw", testing::Fixture("transformer_opset17.onnx") +
                                   " --batch-size 8 --dim seq=16 --untie-shared --class-axis 2 "
                                   "--optimizer adamw --lr 0.001"};
}

std::string SkipReason() {
  if (!HaveMlir()) return "built without MLIR";
  const CudaAvailability a = ProbeCuda();
  if (a.device_count == 0) return "no usable GPU (" + a.reason + ")";
  return "";
}

class CudaExecutorTest : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(CudaExecutorTest, TrainsLikeTheCpuExecutor) {
  if (const std::string why = SkipReason(); !why.empty()) GTEST_SKIP() << why;
  const auto& [model, precision] = GetParam();
  const GpuCase c = Case(model);
  testing::TempDir tmp;
  auto compiled = testing::RunAmpc("compile " + c.compile + " --precision " + precision +
                                   " --target cuda -o " + (tmp / "p.ampc"));
  ASSERT_EQ(compiled.exit_code, 0) << compiled.err;
  const std::string data = std::string(AMPC_GEN_DIR) + "/train_refs/" + c.ref + "/data.npz";
  auto check = testing::RunBinary(AMPC_GPU_BINARY,
                                  "check " + (tmp / "p.ampc") + " --data " + data + " --steps 10");
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("PASS"), std::string::npos) << check.out;
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, CudaExecutorTest,
    ::testing::Combine(::testing::Values("mlp", "relu_mlp", "gelu_mlp", "cnn", "transformer"),
                       ::testing::Values("fp32", "bf16", "fp16")),
    [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

TEST(CudaExecutor, AmpcTrainsOnTheGpuByDefault) {
  if (const std::string why = SkipReason(); !why.empty()) GTEST_SKIP() << why;
  const std::string data = std::string(AMPC_GEN_DIR) + "/train_refs/mlp_adamw/data.npz";
  testing::TempDir tmp;
  auto r = testing::RunAmpc("train " + testing::Fixture("mlp_opset17.onnx") + " --data " + data +
                            " --batch-size 32 --steps 20 --optimizer adamw --lr 0.001 --metrics " +
                            (tmp / "m.jsonl"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("running on the CPU"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("trained 20 steps"), std::string::npos) << r.out;
  auto plan = testing::RunAmpc("compile " + testing::Fixture("mlp_opset17.onnx") +
                               " --batch-size 32 --target cuda -o " + (tmp / "p.ampc"));
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  auto bench = testing::RunBinary(
      AMPC_GPU_BINARY, "bench " + (tmp / "p.ampc") + " --data " + data + " --steps 50 --warmup 5");
  EXPECT_EQ(bench.exit_code, 0) << bench.err;
  EXPECT_NE(bench.out.find("\"device\": \"cuda:0\""), std::string::npos) << bench.out;
}

}  // namespace
}  // namespace ampc
