// cuBLASLt epilogues the CUDA runtime folds into a GEMM (runtime/cuda/step_plan.h's
// FoldGemmEpilogues), decided without a GPU: which steps fold in a compiled training step and its
// evaluation pass, which must not, and what the folded description computes (the CPU model of
// cuBLASLt's semantics against relu(x w^T + b), GELU's tanh form and its derivative computed
// directly in double).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
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
// `activation`: of %h, Relu or Gelu (opset 20) with its attributes.
std::string MlpText(const std::string& activation = "Relu(%h)") {
  auto values = [](int n, double scale) {
    std::string s = "[";
    for (int i = 0; i < n; ++i) s += fmt::format("{}{}", i ? ", " : "", scale * std::sin(i + 1.0));
    return s + "]";
  };
  return fmt::format(R"(graph "mlp" opsets {{"": {}}} {{
  input %x: f32[batch,12]
  init %w1: f32[24,12] = {}
  init %b1: f32[24] = {}
  init %w2: f32[5,24] = {}
  init %b2: f32[5] = {}
  %h: f32[batch,24] = Gemm(%x, %w1, %b1) {{transB=1}} name="fc1"
  %a: f32[batch,24] = {} name="act"
  %y: f32[batch,5] = Gemm(%a, %w2, %b2) {{transB=1}} name="fc2"
  output %y
}})",
                     activation.rfind("Relu", 0) == 0 ? 17 : 20, values(24 * 12, 0.3),
                     values(24, 0.1), values(5 * 24, 0.2), values(5, 0.1), activation);
}

StatusOr<testing::CompiledTraining> CompileMlp(DType precision,
                                               const std::string& activation = "Relu(%h)") {
  static const BackendSupport support = cpu::CpuBackendSupportAs(Target{"cuda", "sm_90"});
  CompileOptions o;
  o.support = &support;
  o.precision = precision;
  o.train.optimizer.kind = "adamw";
  o.kernels.enabled = true;
  o.kernels.required = true;
  o.kernels.cache_dir = gen_test::CacheDir();
  return testing::CompileTraining([activation] { return ParseGraph(MlpText(activation)); }, o, 8,
                                  {{"x", {8, 12}}, {"labels", {8}}});
}

struct Folds {
  std::vector<StepKind> kinds;
  std::vector<cuda::GemmFold> folds;
  std::vector<int> writes;  // per step: the fold's `writes`
  int count = 0;
};

// `data`: the plan whose constants the BGRAD fold reads its ReduceSum's axes from.
Folds Fold(const plan::PlanProto& p, const Plan* data = nullptr) {
  Folds f;
  auto kinds = cuda::ClassifySteps(p);
  EXPECT_TRUE(kinds.ok()) << kinds.status().message();
  if (!kinds.ok()) return f;
  f.kinds = *kinds;
  cuda::HostValueFn host;
  if (data) {
    host = [&p, data](int id) -> const uint8_t* {
      const plan::Buffer& b = p.buffers(id);
      return b.kind() == plan::Buffer::CONSTANT ? BufferData(*data, b) : nullptr;
    };
  }
  f.folds = cuda::FoldGemmEpilogues(p, &f.kinds, host);
  for (const cuda::GemmFold& g : f.folds) {
    f.writes.push_back(g.writes);
    f.count += g.folded();
  }
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
      // The evaluation pass too: lowering starts the Relu's output's live range at fc1
      // (codegen/lower.cc), so the planner gives it none of fc1's inputs' bytes.
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
        EXPECT_EQ(cuda::Folded(*d, f.folds[static_cast<size_t>(i)]).epilogue,
                  cuda::GemmEpilogue::kReluBias);
      }
      ++folded_plans;
      // Nothing else became kFolded.
      int folded = 0;
      for (StepKind k : f.kinds) folded += k == StepKind::kFolded;
      EXPECT_EQ(folded, 1);
    }
  }
  EXPECT_EQ(folded_plans, 6);  // every precision's training step and evaluation pass
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

// Gemm -> Gelu(tanh) -> Gemm: forward, fc1 keeps the pre-activation for GeluGrad, so it folds as
// GELU_AUX_BIAS (aux = the pre-activation's buffer); backward, the GEMM computing dA (fc2's input
// gradient) folds GeluGrad and fc1's bias gradient (the ReduceSum autodiff emits with it) as
// DGELU_BGRAD; the evaluation pass folds GELU_BIAS. The erf form (nn.GELU()'s default) never
// folds: cuBLASLt has only the tanh form.
TEST(CudaEpilogue, GeluTanhFoldsForwardAndBackward) {
  if (!HaveMlir() || !cuda_test::HaveCudaToolkit()) GTEST_SKIP() << "no MLIR or CUDA toolkit";
  using E = cuda::GemmEpilogue;
  for (DType precision : {DType::kFloat32, DType::kBFloat16, DType::kFloat16}) {
    SCOPED_TRACE(DTypeName(precision));
    auto c = CompileMlp(precision, R"(Gelu(%h) {approximate="tanh"})");
    ASSERT_TRUE(c.ok()) << c.status().message();
    for (const Plan* plan : {&c->train, &c->eval}) {
      const bool train = plan == &c->train;
      SCOPED_TRACE(train ? "training step" : "evaluation pass");
      const plan::PlanProto& p = plan->proto;
      const Folds f = Fold(p, plan);
      EXPECT_EQ(f.count, train ? 2 : 1);
      int pre = -1;  // fc1's output, the pre-activation
      for (int i = 0; i < p.steps_size(); ++i) {
        const cuda::GemmFold& g = f.folds[static_cast<size_t>(i)];
        if (!g.folded()) continue;
        auto d = cuda::DescribeGemmStep(p, p.steps(i));
        ASSERT_TRUE(d.ok()) << d.status().message();
        const E e = cuda::Folded(*d, g).epilogue;
        if (p.steps(i).name() == "fc1") {
          pre = p.steps(i).outputs(0);
          EXPECT_EQ(e, train ? E::kGeluAuxBias : E::kGeluBias);
          EXPECT_EQ(g.aux, train ? pre : -1);
          EXPECT_EQ(f.kinds[static_cast<size_t>(i + 1)], StepKind::kFolded);
          EXPECT_EQ(g.writes, p.steps(i + 1).outputs(0));
          continue;
        }
        // fc2's input gradient dA, into GeluGrad (whose step is after fc2's weight gradient).
        EXPECT_EQ(p.steps(i).name().rfind("fc2_grad", 0), 0u) << p.steps(i).name();
        EXPECT_EQ(e, precision == DType::kFloat32 ? E::kDGeluBgrad : E::kDGelu)
            << "fp32: fc1's bias gradient is in GeluGrad's kernel";
        EXPECT_EQ(g.aux, pre);
        int k = i + 1;
        while (k < p.steps_size() && f.kinds[static_cast<size_t>(k)] != StepKind::kFolded) ++k;
        ASSERT_LT(k, p.steps_size());
        const plan::FusionGroup& fg = p.fusion_groups(p.steps(k).fusion_group() - 1);
        EXPECT_EQ(fg.fallback(0).op().op(), "GeluGrad");
        EXPECT_EQ(fg.fallback(0).inputs(0), p.steps(i).outputs(0));
        EXPECT_EQ(g.writes, fg.fallback(0).outputs(0));
        if (e == E::kDGeluBgrad) {
          EXPECT_EQ(fg.fallback(1).op().op(), "ReduceSum");
          EXPECT_EQ(g.bias_grad, fg.fallback(1).outputs(0));
          EXPECT_EQ(Count(Dims(p.buffers(g.bias_grad))), 24);
        }
      }
      EXPECT_GE(pre, 0) << "fc1 folded";
    }
    // torch's export of Linear -> GELU(approximate='tanh') -> Linear (opset 20): its first layer
    // folds forward (GELU_AUX_BIAS) and backward (DGELU, with BGRAD in fp32).
    const BackendSupport support = cpu::CpuBackendSupportAs(Target{"cuda", "sm_90"});
    const gen_test::ModelCase fixture{
        "gelu_mlp",
        std::string(AMPC_FIXTURES_DIR) + "/gelu_tanh_mlp_opset20.onnx",
        {{"input", {16, 784}}, {"labels", {16}}}};
    auto r = gen_test::Compile(fixture, precision, &support);
    ASSERT_TRUE(r.ok()) << r.status().message();
    const Folds rf = Fold(r->train.proto, &r->train);
    std::set<E> made;
    for (size_t i = 0; i < rf.folds.size(); ++i) {
      if (!rf.folds[i].folded()) continue;
      auto d = cuda::DescribeGemmStep(r->train.proto, r->train.proto.steps(static_cast<int>(i)));
      ASSERT_TRUE(d.ok());
      made.insert(cuda::Folded(*d, rf.folds[i]).epilogue);
    }
    EXPECT_EQ(made, (std::set<E>{E::kGeluAuxBias,
                                 precision == DType::kFloat32 ? E::kDGeluBgrad : E::kDGelu}));
    // nn.GELU()'s default erf form has no cuBLASLt epilogue.
    auto erf = CompileMlp(precision, "Gelu(%h)");
    ASSERT_TRUE(erf.ok()) << erf.status().message();
    EXPECT_EQ(Fold(erf->train.proto, &erf->train).count, 0);
    EXPECT_EQ(Fold(erf->eval.proto, &erf->eval).count, 0);
  }
}

// What blocks the backward fold: a step between the GEMM and GeluGrad whose output shares bytes
// with dX (the GEMM would write dX before that step runs), dX over the aux matrix, dY read by
// another step, and no host view of the ReduceSum's axes (no BGRAD: the fold is refused, not
// made without the bias gradient).
TEST(CudaEpilogue, DGeluFoldsOnlyWhereItsWritesAreSafe) {
  if (!HaveMlir() || !cuda_test::HaveCudaToolkit()) GTEST_SKIP() << "no MLIR or CUDA toolkit";
  auto c = CompileMlp(DType::kFloat32, R"(Gelu(%h) {approximate="tanh"})");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const plan::PlanProto& base = c->train.proto;
  const Folds f = Fold(base, &c->train);
  int j = -1;
  for (int i = 0; i < base.steps_size(); ++i) {
    if (f.folds[static_cast<size_t>(i)].activation == cuda::GemmEpilogue::kDGeluBgrad) j = i;
  }
  ASSERT_GE(j, 0);
  const cuda::GemmFold g = f.folds[static_cast<size_t>(j)];
  ASSERT_LT(j + 2, base.steps_size());
  ASSERT_NE(f.kinds[static_cast<size_t>(j + 1)], StepKind::kFolded) << "a step in between";
  auto count_dgelu = [](const Folds& x) {
    int n = 0;
    for (const cuda::GemmFold& y : x.folds) n += cuda::HasDGelu(y.activation);
    return n;
  };
  EXPECT_EQ(count_dgelu(f), 1);
  {  // The step in between writes over dX.
    plan::PlanProto p = base;
    const int out = p.steps(j + 1).outputs(0);
    ASSERT_EQ(p.buffers(out).kind(), plan::Buffer::ARENA);
    p.mutable_buffers(g.writes)->set_offset(p.buffers(out).offset());
    EXPECT_EQ(count_dgelu(Fold(p, &c->train)), 0);
  }
  {  // dX over the aux matrix.
    plan::PlanProto p = base;
    p.mutable_buffers(g.writes)->set_offset(p.buffers(g.aux).offset());
    EXPECT_EQ(count_dgelu(Fold(p, &c->train)), 0);
  }
  {  // dY read by another step too.
    plan::PlanProto p = base;
    *p.add_steps() = p.steps(j + 1);
    p.mutable_steps(p.steps_size() - 1)->set_inputs(0, p.steps(j).outputs(0));
    EXPECT_EQ(count_dgelu(Fold(p, &c->train)), 0);
  }
  EXPECT_EQ(count_dgelu(Fold(base)), 0) << "without the axes";
}

// The GELU epilogues through the CPU model of cuBLASLt against the tanh GELU and its derivative
// computed directly in double: forward GELU_AUX_BIAS (y = gelu(x w^T + b), the aux matrix the
// pre-activation), backward DGELU_BGRAD (dX = (dZ w) * gelu'(pre), the bias gradient dX's column
// sums).
TEST(CudaEpilogue, GeluEpiloguesComputeGeluAndItsGradient) {
  const DType f = DType::kFloat32;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0.0, 1.0);
  const int64_t m = 7, k = 5, n = 8;  // x [m, k], w [n, k], y [m, n]; D's ld n, a multiple of 8
  auto random = [&](int64_t count) {
    std::vector<double> v(static_cast<size_t>(count));
    for (double& e : v) e = normal(rng);
    return v;
  };
  const std::vector<double> x = random(m * k), w = random(n * k), b = random(n);
  auto fwd = cuda::DescribeGemm("", "Gemm", {{"transB", Attribute(int64_t{1})}},
                                {{f, {m, k}}, {f, {n, k}}, {f, {n}}}, {f, {m, n}});
  ASSERT_TRUE(fwd.ok()) << fwd.status().message();
  const cuda::GemmDesc fd = cuda::Folded(*fwd, {cuda::GemmEpilogue::kGeluAux, 0, 1, -1});
  EXPECT_EQ(fd.epilogue, cuda::GemmEpilogue::kGeluAuxBias);
  std::vector<double> pre(static_cast<size_t>(m * n), -1.0);
  const std::vector<double> y = cuda_test::CublasLtModel(fd, {x, w, b}, m * n, &pre);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = b[static_cast<size_t>(j)];
      for (int64_t q = 0; q < k; ++q) {
        s += x[static_cast<size_t>(i * k + q)] * w[static_cast<size_t>(j * k + q)];
      }
      const double gelu =
          0.5 * s * (1 + std::tanh(0.7978845608028654 * (s + 0.044715 * s * s * s)));
      EXPECT_NEAR(pre[static_cast<size_t>(i * n + j)], s, 1e-12);
      EXPECT_NEAR(y[static_cast<size_t>(i * n + j)], gelu, 1e-12);
    }
  }
  // Backward: dA [m, n] = dZ [m, o] w2 [o, n], times gelu'(pre); the bias gradient sums over m.
  const int64_t o = 3;
  const std::vector<double> dz = random(m * o), w2 = random(o * n);
  auto bwd = cuda::DescribeGemm("com.ampc", "MatMul", {}, {{f, {m, o}}, {f, {o, n}}}, {f, {m, n}});
  ASSERT_TRUE(bwd.ok()) << bwd.status().message();
  const cuda::GemmDesc bd = cuda::Folded(*bwd, {cuda::GemmEpilogue::kDGeluBgrad, 0, 1, 2});
  std::vector<double> bias_grad;
  const std::vector<double> dx = cuda_test::CublasLtModel(bd, {dz, w2}, m * n, &pre, &bias_grad);
  ASSERT_EQ(bias_grad.size(), static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    double sum = 0;
    for (int64_t i = 0; i < m; ++i) {
      double s = 0;
      for (int64_t q = 0; q < o; ++q) {
        s += dz[static_cast<size_t>(i * o + q)] * w2[static_cast<size_t>(q * n + j)];
      }
      // gelu'(v) by a central difference of the tanh form in double.
      const double v = pre[static_cast<size_t>(i * n + j)], h = 1e-6;
      auto gelu = [](double t) {
        return 0.5 * t * (1 + std::tanh(0.7978845608028654 * (t + 0.044715 * t * t * t)));
      };
      const double want = s * (gelu(v + h) - gelu(v - h)) / (2 * h);
      EXPECT_NEAR(dx[static_cast<size_t>(i * n + j)], want, 1e-8);
      sum += dx[static_cast<size_t>(i * n + j)];
    }
    EXPECT_NEAR(bias_grad[static_cast<size_t>(j)], sum, 1e-12);
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
