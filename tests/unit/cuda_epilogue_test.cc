// cuBLASLt epilogues the CUDA runtime folds into a GEMM (runtime/cuda/step_plan.h's
// FoldGemmRelus), decided without a GPU: which steps fold in a compiled training step and its
// evaluation pass, which must not, and what the folded description computes (the CPU model of
// cuBLASLt's semantics against relu(x w^T + b) computed directly in double).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <random>
#include <string>

#include "compile_util.h"
#include "cuda_plan_util.h"
#include "ir/text.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cuda/step_plan.h"

namespace ampc {
namespace {

using cuda::StepKind;
using cuda_test::Count;
using cuda_test::Dims;

// Gemm -> Relu -> Gemm (with biases), as torch exports nn.Sequential(Linear, ReLU, Linear);
// weights of both signs.
std::string MlpText() {
  auto values = [](int n, double scale) {
    std::string s = "[";
    for (int i = 0; i < n; ++i) s += fmt::format("{}{}", i ? ", " : "", scale * std::sin(i + 1.0));
    return s + "]";
  };
  return fmt::format(R"(graph "mlp" opsets {{"": 17}} {{
  input %x: f32[batch,12]
  init %w1: f32[24,12] = {}
  init %b1: f32[24] = {}
  init %w2: f32[5,24] = {}
  init %b2: f32[5] = {}
  %h: f32[batch,24] = Gemm(%x, %w1, %b1) {{transB=1}} name="fc1"
  %a: f32[batch,24] = Relu(%h) name="relu"
  %y: f32[batch,5] = Gemm(%a, %w2, %b2) {{transB=1}} name="fc2"
  output %y
}})",
                     values(24 * 12, 0.3), values(24, 0.1), values(5 * 24, 0.2), values(5, 0.1));
}

StatusOr<testing::CompiledTraining> CompileMlp(DType precision) {
  static const BackendSupport support = cpu::CpuBackendSupportAs(Target{"cuda", "sm_90"});
  CompileOptions o;
  o.support = &support;
  o.precision = precision;
  o.train.optimizer.kind = "adamw";
  o.kernels.enabled = true;
  o.kernels.required = true;
  o.kernels.cache_dir = gen_test::CacheDir();
  return testing::CompileTraining([] { return ParseGraph(MlpText()); }, o, 8,
                                  {{"x", {8, 12}}, {"labels", {8}}});
}

struct Folds {
  std::vector<StepKind> kinds;
  std::vector<int> writes;
  int count = 0;
};

Folds Fold(const plan::PlanProto& p) {
  Folds f;
  auto kinds = cuda::ClassifySteps(p);
  EXPECT_TRUE(kinds.ok()) << kinds.status().message();
  if (!kinds.ok()) return f;
  f.kinds = *kinds;
  f.writes = cuda::FoldGemmRelus(p, &f.kinds);
  for (int w : f.writes) f.count += w >= 0;
  return f;
}

TEST(CudaEpilogue, GemmThenReluFoldsIntoOneCall) {
  if (!HaveMlir() || !cuda_test::HaveCudaToolkit()) GTEST_SKIP() << "no MLIR or CUDA toolkit";
  int folded_plans = 0;
  for (DType precision : {DType::kFloat32, DType::kBFloat16, DType::kFloat16}) {
    SCOPED_TRACE(DTypeName(precision));
    auto c = CompileMlp(precision);
    ASSERT_TRUE(c.ok()) << c.status().message();
    for (const Plan* plan : {&c->train, &c->eval}) {
      const plan::PlanProto& p = plan->proto;
      const Folds f = Fold(p);
      if (plan == &c->eval && f.count == 0) {
        // The evaluation pass's planner put the Relu's output over one of fc1's inputs (x, or
        // w1's bf16 cast), which die at fc1: the fold is refused, rightly (fc1 would overwrite
        // an input while reading it).
        int g = 0;
        while (g < p.steps_size() && p.steps(g).name() != "fc1") ++g;
        ASSERT_LT(g + 1, p.steps_size());
        const plan::Buffer& y = p.buffers(p.steps(g + 1).outputs(0));
        bool over = false;
        for (int id : p.steps(g).inputs()) {
          const plan::Buffer& x = p.buffers(id);
          over = over || (x.kind() == plan::Buffer::ARENA && x.offset() < y.offset() + y.size_bytes() &&
                          y.offset() < x.offset() + x.size_bytes());
        }
        EXPECT_TRUE(over);
        continue;
      }
      ASSERT_EQ(f.count, 1) << "one Gemm -> Relu";
      for (int i = 0; i < p.steps_size(); ++i) {
        if (f.writes[static_cast<size_t>(i)] < 0) continue;
        const plan::Step& gemm = p.steps(i);
        const plan::Step& relu = p.steps(i + 1);
        EXPECT_EQ(gemm.name(), "fc1");
        EXPECT_EQ(f.kinds[static_cast<size_t>(i + 1)], StepKind::kFolded);
        EXPECT_EQ(f.writes[static_cast<size_t>(i)], relu.outputs(0));
        // Folded with the bias: RELU_BIAS.
        auto d = cuda::DescribeGemmStep(p, gemm);
        ASSERT_TRUE(d.ok()) << d.status().message();
        EXPECT_EQ(cuda::WithRelu(d->epilogue), cuda::GemmEpilogue::kReluBias);
      }
      ++folded_plans;
      // Nothing else became kFolded.
      int folded = 0;
      for (StepKind k : f.kinds) folded += k == StepKind::kFolded;
      EXPECT_EQ(folded, 1);
    }
  }
  EXPECT_GE(folded_plans, 3);  // every precision's training step
}

// What blocks the fold: the GEMM's output read by another step or leaving the plan, the Relu's
// output placed over one of the GEMM's inputs (the planner may reuse those bytes, which die at
// the GEMM), and a fusion group of more than the Relu.
TEST(CudaEpilogue, FoldsOnlyWhereNothingElseNeedsThePreActivation) {
  if (!HaveMlir() || !cuda_test::HaveCudaToolkit()) GTEST_SKIP() << "no MLIR or CUDA toolkit";
  auto c = CompileMlp(DType::kFloat32);
  ASSERT_TRUE(c.ok()) << c.status().message();
  const plan::PlanProto& base = c->train.proto;
  const Folds f = Fold(base);
  ASSERT_EQ(f.count, 1);
  int g = 0;
  while (f.writes[static_cast<size_t>(g)] < 0) ++g;
  const int x = base.steps(g).outputs(0), y = base.steps(g + 1).outputs(0);
  {  // The pre-activation is also a plan output.
    plan::PlanProto p = base;
    auto* o = p.add_outputs();
    o->set_name("h");
    o->set_buffer(x);
    EXPECT_EQ(Fold(p).count, 0);
  }
  {  // Another step reads it (a copy of the Relu step, appended).
    plan::PlanProto p = base;
    *p.add_steps() = p.steps(g + 1);
    EXPECT_EQ(Fold(p).count, 0);
  }
  {  // The Relu's output lies over the GEMM's first input.
    plan::PlanProto p = base;
    const int a = p.steps(g).inputs(0);
    ASSERT_EQ(p.buffers(a).kind(), plan::Buffer::ARENA);
    p.mutable_buffers(y)->set_offset(p.buffers(a).offset());
    EXPECT_EQ(Fold(p).count, 0);
  }
  {  // The Relu's group holds a second node.
    plan::PlanProto p = base;
    auto* fg = p.mutable_fusion_groups(p.steps(g + 1).fusion_group() - 1);
    *fg->add_fallback() = fg->fallback(0);
    EXPECT_EQ(Fold(p).count, 0);
  }
  {  // The group is not a Relu.
    plan::PlanProto p = base;
    auto* fg = p.mutable_fusion_groups(p.steps(g + 1).fusion_group() - 1);
    fg->mutable_fallback(0)->mutable_op()->set_op("Sigmoid");
    EXPECT_EQ(Fold(p).count, 0);
  }
  // The Linear -> ReLU -> Linear fixture (torch's export): its first layer folds in every
  // precision's training step.
  const BackendSupport support = cpu::CpuBackendSupportAs(Target{"cuda", "sm_90"});
  for (DType precision : {DType::kFloat32, DType::kBFloat16, DType::kFloat16}) {
    const gen_test::ModelCase m{"relu_mlp", std::string(AMPC_FIXTURES_DIR) + "/relu_mlp_opset17.onnx",
                                {{"input", {16, 784}}, {"labels", {16}}}};
    auto r = gen_test::Compile(m, precision, &support);
    ASSERT_TRUE(r.ok()) << r.status().message();
    const Folds rf = Fold(r->train.proto);
    EXPECT_EQ(rf.count, 1) << DTypeName(precision);
    for (size_t i = 0; i < rf.writes.size(); ++i) {
      if (rf.writes[i] < 0) continue;
      const plan::Step& s = r->train.proto.steps(static_cast<int>(i));
      EXPECT_EQ(Count(Dims(r->train.proto.buffers(s.outputs(0)))), 16 * 128);
    }
  }
  // The other fixtures have no GEMM followed by a Relu (the CNN's Relus follow convolutions, the
  // MLP's and transformer's activation is GELU): nothing folds there.
  for (const Plan& plan : cuda_test::CudaPlans()) EXPECT_EQ(Fold(plan.proto).count, 0);
}

// The folded description through the CPU model of cuBLASLt against relu(x w^T + b) in double,
// with and without the bias, on random values (half of the products negative).
TEST(CudaEpilogue, ReluEpilogueComputesReluOfTheProduct) {
  const DType f = DType::kFloat32;
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (bool bias : {true, false}) {
    const int64_t m = 7, k = 5, n = 6;  // x [m, k], w [n, k], y [m, n]
    std::vector<cuda::GemmOperand> in{{f, {m, k}}, {f, {n, k}}};
    if (bias) in.push_back({f, {n}});
    auto d = cuda::DescribeGemm("", "Gemm", {{"transB", Attribute(int64_t{1})}}, in, {f, {m, n}});
    ASSERT_TRUE(d.ok()) << d.status().message();
    EXPECT_EQ(d->epilogue, bias ? cuda::GemmEpilogue::kBias : cuda::GemmEpilogue::kDefault);
    d->epilogue = cuda::WithRelu(d->epilogue);
    std::vector<std::vector<double>> v;
    for (const auto& o : in) {
      v.emplace_back(static_cast<size_t>(Count(o.dims)));
      for (double& e : v.back()) e = normal(rng);
    }
    const std::vector<double> got = cuda_test::CublasLtModel(*d, v, m * n);
    int zero = 0;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double s = bias ? v[2][static_cast<size_t>(j)] : 0.0;
        for (int64_t p = 0; p < k; ++p)
          s += v[0][static_cast<size_t>(i * k + p)] * v[1][static_cast<size_t>(j * k + p)];
        const double want = s > 0 ? s : 0;
        zero += want == 0;
        EXPECT_NEAR(got[static_cast<size_t>(i * n + j)], want, 1e-12) << i << "," << j;
      }
    }
    EXPECT_GT(zero, 5);
    EXPECT_LT(zero, m * n - 5);
  }
}

// A Gemm's bias gradient is emitted before its GEMMs read dY, so that it is the reduction ending
// dY's generated kernel (the pass that computes dY) rather than a pass of its own: in the fp32
// step of the Linear -> ReLU -> Linear fixture no fusion group is a lone ReduceSum (on the CPU
// and for CUDA alike).
TEST(CudaEpilogue, BiasGradientsEndTheKernelThatComputesDy) {
  if (!HaveMlir() || !cuda_test::HaveCudaToolkit()) GTEST_SKIP() << "no MLIR or CUDA toolkit";
  const BackendSupport cuda = cpu::CpuBackendSupportAs(Target{"cuda", "sm_90"});
  for (const BackendSupport* support : {static_cast<const BackendSupport*>(nullptr), &cuda}) {
    const gen_test::ModelCase m{"relu_mlp",
                                std::string(AMPC_FIXTURES_DIR) + "/relu_mlp_opset17.onnx",
                                {{"input", {16, 784}}, {"labels", {16}}}};
    auto r = gen_test::Compile(m, DType::kFloat32, support);
    ASSERT_TRUE(r.ok()) << r.status().message();
    const plan::PlanProto& p = r->train.proto;
    int reductions = 0;
    for (const plan::FusionGroup& fg : p.fusion_groups()) {
      bool reduce = false;
      for (const plan::Step& s : fg.fallback()) {  // a Gemm's gradient (not the loss's sum)
        reduce = reduce || (s.op().op() == "ReduceSum" &&
                            s.name().find("Gemm_grad") != std::string::npos);
      }
      if (!reduce) continue;
      ++reductions;
      EXPECT_GT(fg.fallback_size(), 1) << "a bias gradient in a pass of its own";
    }
    EXPECT_GE(reductions, 2);  // both layers' bias gradients
  }
}

}  // namespace
}  // namespace ampc
