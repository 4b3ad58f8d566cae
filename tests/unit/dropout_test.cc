// Training-mode Dropout: the counter-based RNG (runtime/cpu/counter_rng.h), the CPU kernels of
// ONNX Dropout and com.ampc::Dropout (runtime/cpu/kernels_unary.cc), and com.ampc::Dropout's
// gradient rule (frontend/training/gradients_nn.cc).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "runtime/cpu/counter_rng.h"
#include "runtime/cpu/thread_pool.h"
#include "tests/unit/gradient_check.h"
#include "tests/unit/kernel_test_util.h"

namespace ampc {
namespace {

using ::ampc::testing::OwnedTensor;
using ::ampc::testing::RunKernel;
using ::ampc::testing::RunKernelInDomain;
using namespace ::ampc::testing::gradcheck;  // NOLINT: the gradient-check harness

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

OwnedTensor Vals(DType t, std::vector<int64_t> dims, const std::vector<double>& v) {
  return OwnedTensor::From(t, std::move(dims), v);
}

// x[i] = 1 + i % 7 (never 0, so every dropped element is visible as a 0).
OwnedTensor Ramp(DType t, int64_t n) {
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = 1.0 + static_cast<double>(i % 7);
  return Vals(t, {n}, v);
}

struct Drop {
  OwnedTensor y, mask;
};

// ONNX Dropout in training mode.
Drop RunOnnx(const OwnedTensor& x, double ratio, int64_t seed, cpu::ThreadPool* pool = nullptr) {
  OwnedTensor r = Vals(DType::kFloat32, {}, {ratio}), on = Vals(DType::kBool, {}, {1});
  Drop d{OwnedTensor(x.view().dtype, x.view().dims), OwnedTensor(DType::kBool, x.view().dims)};
  AttributeMap attrs = {{"seed", Attribute(seed)}};
  Status st = RunKernel("Dropout", attrs, {&x, &r, &on}, {&d.y, &d.mask}, pool);
  EXPECT_TRUE(st.ok()) << st.message();
  return d;
}

// com.ampc::Dropout at `step`.
Drop RunAmpc(const OwnedTensor& x, double ratio, int64_t step, int64_t seed) {
  OwnedTensor r = Vals(DType::kFloat32, {}, {ratio}), s = Vals(DType::kInt64, {}, {double(step)});
  Drop d{OwnedTensor(x.view().dtype, x.view().dims), OwnedTensor(DType::kBool, x.view().dims)};
  AttributeMap attrs = {{"seed", Attribute(seed)}};
  Status st = RunKernelInDomain(kAmpcDomain, "Dropout", attrs, {&x, &r, &s}, {&d.y, &d.mask});
  EXPECT_TRUE(st.ok()) << st.message();
  return d;
}

// Every output is x * scale where the mask is set and 0 where not; returns the number kept.
int64_t CheckOutputAgainstMask(const OwnedTensor& x, const Drop& d, double ratio, double rtol) {
  const std::vector<double> xv = x.values(), yv = d.y.values(), mv = d.mask.values();
  const double scale = 1.0 / (1.0 - ratio);
  int64_t kept = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    if (mv[i] != 0) {
      ++kept;
      EXPECT_NEAR(yv[i], xv[i] * scale, rtol * std::fabs(xv[i] * scale)) << "element " << i;
    } else {
      EXPECT_EQ(yv[i], 0.0) << "element " << i;
    }
  }
  return kept;
}

// |kept - n (1 - ratio)| <= 5 sigma of the binomial distribution.
void ExpectBinomial(int64_t kept, int64_t n, double ratio) {
  const double mean = static_cast<double>(n) * (1 - ratio);
  const double sigma = std::sqrt(static_cast<double>(n) * ratio * (1 - ratio));
  EXPECT_LE(std::fabs(static_cast<double>(kept) - mean), 5 * sigma)
      << "kept " << kept << " of " << n << " at ratio " << ratio;
}

// ---- the RNG ----------------------------------------------------------------------------------

TEST(CounterRng, UniformIsInUnitIntervalAndDeterministic) {
  const uint64_t key = cpu::CounterRngKey(42, 7);
  EXPECT_EQ(key, cpu::CounterRngKey(42, 7));
  double sum = 0;
  const int n = 1 << 16;
  for (int i = 0; i < n; ++i) {
    const double u = cpu::Uniform01(key, i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    EXPECT_EQ(u, cpu::Uniform01(key, i));
    sum += u;
  }
  // Mean of n uniforms: sigma = sqrt(1 / (12 n)).
  EXPECT_NEAR(sum / n, 0.5, 5 * std::sqrt(1.0 / (12.0 * n)));
}

TEST(CounterRng, NearbySeedsAndCountersGiveDistinctStreams) {
  std::set<uint64_t> keys;
  for (uint64_t seed = 0; seed < 16; ++seed) {
    for (uint64_t counter = 0; counter < 16; ++counter)
      keys.insert(cpu::CounterRngKey(seed, counter));
  }
  EXPECT_EQ(keys.size(), 256u);
}

// ---- ONNX Dropout, training mode --------------------------------------------------------------

TEST(DropoutKernel, TrainingMaskMatchesOutputAndKeepsOneMinusRatio) {
  const int64_t n = 1 << 16;
  for (double ratio : {0.1, 0.3, 0.5, 0.9}) {
    OwnedTensor x = Ramp(DType::kFloat32, n);
    Drop d = RunOnnx(x, ratio, 3);
    const int64_t kept = CheckOutputAgainstMask(x, d, ratio, 1e-6);
    ExpectBinomial(kept, n, ratio);
  }
}

TEST(DropoutKernel, TrainingIsDeterministicPerSeedAndThreadCount) {
  OwnedTensor x = Ramp(DType::kFloat32, 1 << 18);  // large enough to be split between threads
  cpu::ThreadPool pool(2);
  Drop a = RunOnnx(x, 0.4, 11), b = RunOnnx(x, 0.4, 11, &pool), c = RunOnnx(x, 0.4, 12);
  EXPECT_EQ(a.mask.values(), b.mask.values());
  EXPECT_EQ(a.y.values(), b.y.values());
  EXPECT_NE(a.mask.values(), c.mask.values()) << "another seed must draw another mask";
}

TEST(DropoutKernel, TrainingRatioZeroAndOne) {
  OwnedTensor x = Vals(DType::kFloat32, {4}, {1, -2, 3, 4});
  Drop zero = RunOnnx(x, 0.0, 0);
  EXPECT_EQ(zero.y.values(), x.values());
  EXPECT_EQ(zero.mask.values(), (std::vector<double>{1, 1, 1, 1}));
  Drop one = RunOnnx(x, 1.0, 0);
  EXPECT_EQ(one.y.values(), (std::vector<double>{0, 0, 0, 0}));
  EXPECT_EQ(one.mask.values(), (std::vector<double>{0, 0, 0, 0}));
}

TEST(DropoutKernel, TrainingHalfAndDoubleTypes) {
  for (DType t : {DType::kFloat16, DType::kBFloat16, DType::kFloat64}) {
    OwnedTensor x = Ramp(t, 4096);
    Drop d = RunOnnx(x, 0.25, 5);
    // x * 4/3 rounded once to the storage type.
    const double rtol = t == DType::kFloat64 ? 1e-15 : t == DType::kFloat16 ? 1e-3 : 8e-3;
    ExpectBinomial(CheckOutputAgainstMask(x, d, 0.25, rtol), 4096, 0.25);
  }
}

TEST(DropoutKernel, TrainingPropagatesNaN) {
  OwnedTensor x = Vals(DType::kFloat32, {64}, std::vector<double>(64, kNaN));
  Drop d = RunOnnx(x, 0.5, 0);
  for (double v : d.y.values()) EXPECT_TRUE(std::isnan(v));  // x * 0 and x * 2 are both NaN
}

TEST(DropoutKernel, RejectsBadRatioAndMask) {
  OwnedTensor x = Vals(DType::kFloat32, {2}, {1, 2}), on = Vals(DType::kBool, {}, {1});
  OwnedTensor y(DType::kFloat32, {2}), mask(DType::kBool, {2}), wrong_mask(DType::kFloat32, {2});
  for (double r : {-0.1, 1.5, kNaN}) {
    OwnedTensor ratio = Vals(DType::kFloat32, {}, {r});
    Status st = RunKernel("Dropout", {}, {&x, &ratio, &on}, {&y, &mask});
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << r;
    EXPECT_NE(st.message().find("ratio"), std::string::npos) << st.message();
  }
  OwnedTensor ratio = Vals(DType::kFloat32, {}, {0.5}), int_ratio = Vals(DType::kInt64, {}, {0});
  EXPECT_EQ(RunKernel("Dropout", {}, {&x, &ratio, &on}, {&y, &wrong_mask}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RunKernel("Dropout", {}, {&x, &int_ratio, &on}, {&y, &mask}).code(),
            StatusCode::kInvalidArgument);
}

// ---- com.ampc::Dropout ------------------------------------------------------------------------

TEST(AmpcDropoutKernel, SameStepSameMaskOtherStepOtherMask) {
  const int64_t n = 1 << 14;
  OwnedTensor x = Ramp(DType::kFloat32, n);
  Drop s7 = RunAmpc(x, 0.5, 7, 99), again = RunAmpc(x, 0.5, 7, 99), s8 = RunAmpc(x, 0.5, 8, 99);
  EXPECT_EQ(s7.mask.values(), again.mask.values());
  EXPECT_EQ(s7.y.values(), again.y.values());
  ExpectBinomial(CheckOutputAgainstMask(x, s7, 0.5, 1e-6), n, 0.5);
  ExpectBinomial(CheckOutputAgainstMask(x, s8, 0.5, 1e-6), n, 0.5);
  // Independent masks differ in a fraction 2 p (1 - p) = 1/2 of the elements.
  const std::vector<double> a = s7.mask.values(), b = s8.mask.values();
  int64_t differ = 0;
  for (int64_t i = 0; i < n; ++i) differ += a[i] != b[i];
  ExpectBinomial(differ, n, 0.5);
}

TEST(AmpcDropoutKernel, StepZeroIsOnnxDropoutWithTheSameSeed) {
  OwnedTensor x = Ramp(DType::kFloat32, 1000);
  EXPECT_EQ(RunAmpc(x, 0.3, 0, 5).mask.values(), RunOnnx(x, 0.3, 5).mask.values());
}

TEST(AmpcDropoutKernel, RejectsBadStep) {
  OwnedTensor x = Vals(DType::kFloat32, {2}, {1, 2}), r = Vals(DType::kFloat32, {}, {0.5});
  OwnedTensor y(DType::kFloat32, {2}), mask(DType::kBool, {2});
  OwnedTensor f_step = Vals(DType::kFloat32, {}, {1}), long_step = Vals(DType::kInt64, {2}, {1, 2});
  for (const OwnedTensor* step : {&f_step, &long_step}) {
    Status st = RunKernelInDomain(kAmpcDomain, "Dropout", {}, {&x, &r, step}, {&y, &mask});
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("step"), std::string::npos) << st.message();
  }
  EXPECT_EQ(RunKernelInDomain(kAmpcDomain, "Dropout", {}, {&x, &r, nullptr}, {&y}).code(),
            StatusCode::kInvalidArgument);
}

// ---- com.ampc::Dropout gradient ---------------------------------------------------------------

Value* AmpcDropout(Builder& b, Value* x, double ratio, int64_t step, int outputs) {
  Graph& g = b.g;
  g.opsets()[kAmpcDomain] = 1;
  Value* s = *g.AddInitializer(g.UniqueName("step"), Tensor::ScalarInt64(step));
  const std::string name = g.UniqueName("drop");
  std::vector<std::string> outs = {name};
  if (outputs > 1) outs.push_back(name + "_mask");
  auto n = g.AddNode("Dropout", kAmpcDomain, name, {x, b.Scalar(ratio), s}, outs,
                     {{"seed", Attribute(int64_t{17})}});
  EXPECT_TRUE(n.ok()) << n.status().message();
  Status st = InferNode(**n);
  EXPECT_TRUE(st.ok()) << st.message();
  return (*n)->output(0);
}

TEST(AmpcDropoutGradient, MatchesFiniteDifferencesAtRatioZero) {
  for (int outputs : {1, 2}) {
    CheckGradients(
        {"AmpcDropoutRatio0", {{2, 3}}, [outputs](Builder& b, const std::vector<Value*>& p) {
           return AmpcDropout(b, p[0], 0.0, 3, outputs);
         }});
  }
}

// At ratio 0.25 the gradient of sum(y * w) is w * mask / 0.75, with the mask the forward pass
// drew: from its mask output, or regenerated by the same op on dy when there is none.
TEST(AmpcDropoutGradient, UsesTheForwardMask) {
  for (int outputs : {1, 2}) {
    auto g = std::make_unique<Graph>();
    g->opsets()[""] = 17;
    const int64_t n = 256;
    Value* p = *g->AddInitializer("p", F64(Random(n, 0.5, 1.5, 3), {n}));
    Builder b{*g};
    const std::vector<double> w = Random(n, 0.5, 1.5, 4);
    Value* y = AmpcDropout(b, p, 0.25, 5, outputs);
    Value* loss = b.Op("ReduceSum", {b.Op("Mul", {y, b.Const(w, {n})})},
                       A({{"keepdims", Attribute(int64_t{0})}}));
    auto r = BuildBackward(*g, loss, {p});
    ASSERT_TRUE(r.ok()) << r.status().message();
    g->SetOutputs({y, r->grads.at(p)});
    std::vector<Tensor> out = RunGraph(std::move(g));
    ASSERT_EQ(out.size(), 2u);
    const std::vector<double> yv = *out[0].AsDoubles(), gv = *out[1].AsDoubles();
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      const bool k = yv[i] != 0;
      kept += k;
      EXPECT_NEAR(gv[i], k ? w[i] / 0.75 : 0.0, 1e-12) << "outputs " << outputs << " element " << i;
    }
    ExpectBinomial(kept, n, 0.25);
  }
}

// ONNX Dropout in training mode now runs forward: its gradient follows the mask it drew.
TEST(DropoutGradient, TrainingModeFollowsTheDrawnMask) {
  auto g = std::make_unique<Graph>();
  g->opsets()[""] = 17;
  const int64_t n = 128;
  Value* p = *g->AddInitializer("p", F64(Random(n, 0.5, 1.5, 5), {n}));
  Builder b{*g};
  Value* on = *g->AddInitializer("on", Tensor(DType::kBool, {}, std::vector<uint8_t>{1}));
  Value* y = b.Op("Dropout", {p, b.Scalar(0.5), on}, {}, 2);
  Value* loss = b.Op("ReduceSum", {y}, A({{"keepdims", Attribute(int64_t{0})}}));
  auto r = BuildBackward(*g, loss, {p});
  ASSERT_TRUE(r.ok()) << r.status().message();
  g->SetOutputs({y->producer()->output(1), r->grads.at(p)});
  std::vector<Tensor> out = RunGraph(std::move(g));
  ASSERT_EQ(out.size(), 2u);
  const std::vector<double> mask = *out[0].AsDoubles(), gv = *out[1].AsDoubles();
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(gv[i], mask[i] != 0 ? 2.0 : 0.0) << i;
}

}  // namespace
}  // namespace ampc
