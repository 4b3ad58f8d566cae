// CPU reduction kernels (runtime/cpu/kernels_reduction.cc) through RunKernel. Expected values
// are written by hand (noted "by hand") or computed by a naive float64 loop over the input
// (noted "naive loop", see NaiveReduce).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ir/float16.h"
#include "tests/unit/kernel_test_util.h"

namespace ampc {
namespace {

using testing::OwnedTensor;
using testing::RunKernel;

constexpr double kInf = std::numeric_limits<double>::infinity();

OwnedTensor T(DType t, std::vector<int64_t> dims, const std::vector<double>& v) {
  return OwnedTensor::From(t, std::move(dims), v);
}
OwnedTensor F32(std::vector<int64_t> dims, const std::vector<double>& v) {
  return T(DType::kFloat32, std::move(dims), v);
}
OwnedTensor I64s(const std::vector<double>& v) {
  return T(DType::kInt64, {static_cast<int64_t>(v.size())}, v);
}
AttributeMap Attrs(std::vector<int64_t> axes, int64_t keep) {
  AttributeMap m = {{"keepdims", keep}};
  if (!axes.empty()) m["axes"] = Attribute(std::move(axes));
  return m;
}

// Naive float64 reference: reduces `v` (row-major `dims`) over `axes` (non-negative; empty =
// all) with op, visiting the input in row-major order and each output's elements in turn.
std::vector<double> NaiveReduce(const std::vector<double>& v, const std::vector<int64_t>& dims,
                                std::vector<int64_t> axes, const std::string& op) {
  const size_t r = dims.size();
  std::vector<bool> red(r, axes.empty());
  for (int64_t a : axes) red[a] = true;
  int64_t nout = 1, count = 1;
  for (size_t a = 0; a < r; ++a) (red[a] ? count : nout) *= dims[a];
  std::vector<std::vector<double>> groups(nout);
  for (size_t i = 0; i < v.size(); ++i) {
    int64_t rem = static_cast<int64_t>(i), o = 0, scale = 1;
    for (size_t a = r; a-- > 0;) {
      const int64_t ia = rem % dims[a];
      rem /= dims[a];
      if (!red[a]) {
        o += ia * scale;
        scale *= dims[a];
      }
    }
    groups[o].push_back(v[i]);
  }
  std::vector<double> out;
  for (const auto& g : groups) {
    double acc = op == "prod" ? 1 : op == "max" ? -kInf : op == "min" ? kInf : 0;
    for (double x : g) {
      if (op == "sum" || op == "mean") acc += x;
      if (op == "prod") acc *= x;
      if (op == "max") acc = std::max(acc, x);
      if (op == "min") acc = std::min(acc, x);
      if (op == "l1") acc += std::fabs(x);
      if (op == "l2" || op == "sumsquare") acc += x * x;
      if (op == "logsumexp") acc += std::exp(x);
    }
    if (op == "mean") acc /= static_cast<double>(count);
    if (op == "l2") acc = std::sqrt(acc);
    if (op == "logsumexp") acc = std::log(acc);
    out.push_back(acc);
  }
  return out;
}

std::vector<double> RandomValues(int64_t n, unsigned seed, double lo = -2, double hi = 2) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = static_cast<float>(d(gen));  // exactly representable in f32
  return v;
}

void ExpectNear(const std::vector<double>& got, const std::vector<double>& want, double rel) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], rel * std::max(1.0, std::fabs(want[i]))) << "element " << i;
  }
}

// ---- ReduceSum (axes input) ------------------------------------------------------------------

TEST(ReductionKernelTest, ReduceSumKeepdims) {  // by hand
  OwnedTensor x = F32({2, 3}, {1, 2, 3, 4, 5, 6});
  OwnedTensor axes = I64s({-1});
  OwnedTensor k1(DType::kFloat32, {2, 1});
  ASSERT_TRUE(RunKernel("ReduceSum", {}, {&x, &axes}, {&k1}).ok());
  EXPECT_EQ(k1.values(), (std::vector<double>{6, 15}));
  OwnedTensor k0(DType::kFloat32, {3});
  OwnedTensor a0 = I64s({0});
  ASSERT_TRUE(RunKernel("ReduceSum", {{"keepdims", int64_t{0}}}, {&x, &a0}, {&k0}).ok());
  EXPECT_EQ(k0.values(), (std::vector<double>{5, 7, 9}));
  OwnedTensor wrong(DType::kFloat32, {3});  // keepdims=1 needs [1,3]
  EXPECT_FALSE(RunKernel("ReduceSum", {}, {&x, &a0}, {&wrong}).ok());
}

TEST(ReductionKernelTest, ReduceSumEmptyAxes) {  // by hand
  OwnedTensor x = F32({2, 3}, {1, 2, 3, 4, 5, 6});
  OwnedTensor none(DType::kInt64, {0});
  OwnedTensor all(DType::kFloat32, {1, 1});
  ASSERT_TRUE(RunKernel("ReduceSum", {}, {&x, &none}, {&all}).ok());
  EXPECT_EQ(all.values(), (std::vector<double>{21}));
  OwnedTensor all0(DType::kFloat32, {});
  ASSERT_TRUE(RunKernel("ReduceSum", {{"keepdims", int64_t{0}}}, {&x, nullptr}, {&all0}).ok());
  EXPECT_EQ(all0.values(), (std::vector<double>{21}));
  OwnedTensor same(DType::kFloat32, {2, 3});
  ASSERT_TRUE(
      RunKernel("ReduceSum", {{"noop_with_empty_axes", int64_t{1}}}, {&x, &none}, {&same}).ok());
  EXPECT_EQ(same.values(), x.values());
  OwnedTensor bad = I64s({2});
  EXPECT_FALSE(RunKernel("ReduceSum", {}, {&x, &bad}, {&all}).ok());
}

TEST(ReductionKernelTest, ReduceSumIntegers) {  // by hand
  OwnedTensor x = T(DType::kInt32, {2, 2}, {2000000000, 2000000000, -5, 7});
  OwnedTensor axes = I64s({1});
  OwnedTensor out(DType::kInt32, {2, 1});
  ASSERT_TRUE(RunKernel("ReduceSum", {}, {&x, &axes}, {&out}).ok());
  // int64 accumulation, then stored (wrapping) into i32: 4000000000 - 2^32.
  EXPECT_EQ(out.values(), (std::vector<double>{4000000000.0 - 4294967296.0, 2}));
}

// ---- attribute-axes reductions ---------------------------------------------------------------

TEST(ReductionKernelTest, AllOpsMatchNaiveLoop) {  // naive loop
  const std::vector<int64_t> dims = {3, 4, 5};
  const std::vector<double> v = RandomValues(60, 1);
  OwnedTensor x = F32(dims, v);
  const std::vector<std::pair<std::string, std::string>> ops = {{"ReduceMean", "mean"},
                                                                {"ReduceMax", "max"},
                                                                {"ReduceMin", "min"},
                                                                {"ReduceProd", "prod"},
                                                                {"ReduceL1", "l1"},
                                                                {"ReduceL2", "l2"},
                                                                {"ReduceLogSumExp", "logsumexp"},
                                                                {"ReduceSumSquare", "sumsquare"}};
  struct Case {
    std::vector<int64_t> axes, norm, out_keep, out_drop;
  };
  const std::vector<Case> cases = {
      {{-1}, {2}, {3, 4, 1}, {3, 4}},    {{0}, {0}, {1, 4, 5}, {4, 5}},
      {{0, -1}, {0, 2}, {1, 4, 1}, {4}},                           // non-adjacent axes
      {{1}, {1}, {3, 1, 5}, {3, 5}},     {{}, {}, {1, 1, 1}, {}},  // empty axes: every axis
  };
  for (const auto& [op, naive] : ops) {
    for (const Case& c : cases) {
      for (int64_t keep : {0, 1}) {
        OwnedTensor out(DType::kFloat32, keep ? c.out_keep : c.out_drop);
        ASSERT_TRUE(RunKernel(op, Attrs(c.axes, keep), {&x}, {&out}).ok()) << op;
        // f32 output: the double result rounded once to f32.
        std::vector<double> want = NaiveReduce(v, dims, c.norm, naive);
        for (double& w : want) w = static_cast<float>(w);
        ExpectNear(out.values(), want, 1e-6);
      }
    }
  }
}

TEST(ReductionKernelTest, ReduceMeanMaxHandValues) {  // by hand
  OwnedTensor x = F32({2, 2}, {1, -8, 3, 4});
  OwnedTensor m(DType::kFloat32, {2});
  ASSERT_TRUE(RunKernel("ReduceMean", Attrs({0}, 0), {&x}, {&m}).ok());
  EXPECT_EQ(m.values(), (std::vector<double>{2, -2}));
  ASSERT_TRUE(RunKernel("ReduceMax", Attrs({1}, 0), {&x}, {&m}).ok());
  EXPECT_EQ(m.values(), (std::vector<double>{1, 4}));
  ASSERT_TRUE(RunKernel("ReduceMin", Attrs({-2}, 0), {&x}, {&m}).ok());
  EXPECT_EQ(m.values(), (std::vector<double>{1, -8}));
  ASSERT_TRUE(RunKernel("ReduceL1", Attrs({1}, 0), {&x}, {&m}).ok());
  EXPECT_EQ(m.values(), (std::vector<double>{9, 7}));
  ASSERT_TRUE(RunKernel("ReduceL2", Attrs({0}, 0), {&x}, {&m}).ok());
  EXPECT_EQ(m.values(), (std::vector<double>{static_cast<float>(std::sqrt(10.0)),
                                             static_cast<float>(std::sqrt(80.0))}));
}

TEST(ReductionKernelTest, IntegerReductions) {  // by hand
  OwnedTensor x = T(DType::kInt32, {2, 3}, {1, 2, 4, -3, 5, 7});
  OwnedTensor o(DType::kInt32, {2});
  ASSERT_TRUE(RunKernel("ReduceMean", Attrs({1}, 0), {&x}, {&o}).ok());
  EXPECT_EQ(o.values(), (std::vector<double>{2, 3}));  // 7/3 and 9/3, truncated
  ASSERT_TRUE(RunKernel("ReduceMax", Attrs({1}, 0), {&x}, {&o}).ok());
  EXPECT_EQ(o.values(), (std::vector<double>{4, 7}));
  ASSERT_TRUE(RunKernel("ReduceProd", Attrs({1}, 0), {&x}, {&o}).ok());
  EXPECT_EQ(o.values(), (std::vector<double>{8, -105}));
  ASSERT_TRUE(RunKernel("ReduceSumSquare", Attrs({1}, 0), {&x}, {&o}).ok());
  EXPECT_EQ(o.values(), (std::vector<double>{21, 83}));
}

TEST(ReductionKernelTest, EmptySetFollowsOnnx) {  // by hand
  OwnedTensor x(DType::kFloat32, {2, 0});
  auto run = [&](const std::string& op) {
    OwnedTensor out(DType::kFloat32, {2});
    EXPECT_TRUE(RunKernel(op, Attrs({1}, 0), {&x}, {&out}).ok()) << op;
    return out.values();
  };
  EXPECT_EQ(run("ReduceProd"), (std::vector<double>{1, 1}));
  EXPECT_EQ(run("ReduceMax"), (std::vector<double>{-kInf, -kInf}));
  EXPECT_EQ(run("ReduceMin"), (std::vector<double>{kInf, kInf}));
  EXPECT_EQ(run("ReduceL2"), (std::vector<double>{0, 0}));
  EXPECT_EQ(run("ReduceLogSumExp"), (std::vector<double>{-kInf, -kInf}));
  EXPECT_TRUE(std::isnan(run("ReduceMean")[0]));
  OwnedTensor axes = I64s({1}), sum(DType::kFloat32, {2, 1});
  ASSERT_TRUE(RunKernel("ReduceSum", {}, {&x, &axes}, {&sum}).ok());
  EXPECT_EQ(sum.values(), (std::vector<double>{0, 0}));
}

TEST(ReductionKernelTest, LogSumExpIsStable) {  // by hand: log(2 e^1000) = 1000 + log 2
  OwnedTensor x = T(DType::kFloat64, {2}, {1000, 1000});
  OwnedTensor out(DType::kFloat64, {});
  ASSERT_TRUE(RunKernel("ReduceLogSumExp", Attrs({}, 0), {&x}, {&out}).ok());
  EXPECT_DOUBLE_EQ(out.values()[0], 1000 + std::log(2.0));
}

TEST(ReductionKernelTest, HalfSumsRoundOnce) {  // by hand
  // bf16 has 8 significant bits: 256 + 1 + 1 = 258 is representable, but rounding after each
  // add would give 256 (257 ties to even).
  OwnedTensor b = T(DType::kBFloat16, {3}, {256, 1, 1});
  OwnedTensor axes = I64s({0});
  OwnedTensor ob(DType::kBFloat16, {});
  ASSERT_TRUE(RunKernel("ReduceSum", {{"keepdims", int64_t{0}}}, {&b, &axes}, {&ob}).ok());
  EXPECT_EQ(ob.values(), (std::vector<double>{258}));
  // 1 + 2^-8 + 2^-30 lies just above the bf16 tie between 1 and 1 + 2^-7: the correctly
  // rounded result is 1 + 2^-7 (rounding through f32 first would land on the tie and give 1).
  OwnedTensor b2 = T(DType::kBFloat16, {3}, {1, std::ldexp(1.0, -8), std::ldexp(1.0, -30)});
  ASSERT_TRUE(RunKernel("ReduceSum", {{"keepdims", int64_t{0}}}, {&b2, &axes}, {&ob}).ok());
  EXPECT_EQ(ob.values(), (std::vector<double>{1 + std::ldexp(1.0, -7)}));
  // The same for f16 (11 bits): 1 + 2^-11 + 2^-24 rounds to 1 + 2^-10.
  OwnedTensor h = T(DType::kFloat16, {3}, {1, std::ldexp(1.0, -11), std::ldexp(1.0, -24)});
  OwnedTensor oh(DType::kFloat16, {});
  ASSERT_TRUE(RunKernel("ReduceSum", {{"keepdims", int64_t{0}}}, {&h, &axes}, {&oh}).ok());
  EXPECT_EQ(oh.values(), (std::vector<double>{1 + std::ldexp(1.0, -10)}));
}

TEST(ReductionKernelTest, LargeParallelMatchesNaiveLoop) {  // naive loop
  cpu::ThreadPool pool(4);
  const std::vector<int64_t> dims = {16, 300, 40};
  const std::vector<double> v = RandomValues(16 * 300 * 40, 7);
  for (DType dt : {DType::kFloat32, DType::kFloat16}) {
    OwnedTensor x = T(dt, dims, v);
    const std::vector<double> xv = x.values();  // after rounding into dt
    struct Case {
      std::vector<int64_t> axes, out;
    };
    for (const Case& c :
         std::vector<Case>{{{2}, {16, 300}}, {{0}, {300, 40}}, {{0, 2}, {300}}, {{1}, {16, 40}}}) {
      OwnedTensor out(dt, c.out);
      ASSERT_TRUE(RunKernel("ReduceMean", Attrs(c.axes, 0), {&x}, {&out}, &pool).ok());
      ExpectNear(out.values(), NaiveReduce(xv, dims, c.axes, "mean"),
                 dt == DType::kFloat16 ? 1e-3 : 1e-6);
    }
  }
}

// ---- ArgMax / ArgMin -------------------------------------------------------------------------

TEST(ReductionKernelTest, ArgMaxArgMinTies) {  // by hand
  OwnedTensor x = F32({2, 4}, {1, 5, 5, 0, 2, 2, -1, -1});
  OwnedTensor o(DType::kInt64, {2, 1});
  ASSERT_TRUE(RunKernel("ArgMax", {{"axis", int64_t{1}}}, {&x}, {&o}).ok());
  EXPECT_EQ(o.values(), (std::vector<double>{1, 0}));
  ASSERT_TRUE(
      RunKernel("ArgMax", {{"axis", int64_t{-1}}, {"select_last_index", int64_t{1}}}, {&x}, {&o})
          .ok());
  EXPECT_EQ(o.values(), (std::vector<double>{2, 1}));
  ASSERT_TRUE(RunKernel("ArgMin", {{"axis", int64_t{1}}}, {&x}, {&o}).ok());
  EXPECT_EQ(o.values(), (std::vector<double>{3, 2}));
  ASSERT_TRUE(
      RunKernel("ArgMin", {{"axis", int64_t{1}}, {"select_last_index", int64_t{1}}}, {&x}, {&o})
          .ok());
  EXPECT_EQ(o.values(), (std::vector<double>{3, 3}));
  OwnedTensor o0(DType::kInt64, {4});
  ASSERT_TRUE(RunKernel("ArgMax", {{"keepdims", int64_t{0}}}, {&x}, {&o0}).ok());
  EXPECT_EQ(o0.values(), (std::vector<double>{1, 0, 0, 0}));
  ASSERT_TRUE(RunKernel("ArgMax", {{"keepdims", int64_t{0}}, {"select_last_index", int64_t{1}}},
                        {&x}, {&o0})
                  .ok());
  EXPECT_EQ(o0.values(), (std::vector<double>{1, 0, 0, 0}));
}

TEST(ReductionKernelTest, ArgMaxHalfAndIntegers) {  // by hand
  OwnedTensor h = T(DType::kFloat16, {3, 2}, {0.5, -1, 0.75, -3, 0.25, -2});
  OwnedTensor o(DType::kInt64, {2});
  ASSERT_TRUE(RunKernel("ArgMax", {{"keepdims", int64_t{0}}}, {&h}, {&o}).ok());
  EXPECT_EQ(o.values(), (std::vector<double>{1, 0}));
  ASSERT_TRUE(RunKernel("ArgMin", {{"keepdims", int64_t{0}}}, {&h}, {&o}).ok());
  EXPECT_EQ(o.values(), (std::vector<double>{2, 1}));
  OwnedTensor i = T(DType::kUInt8, {2, 3}, {3, 200, 200, 9, 1, 9});
  OwnedTensor oi(DType::kInt64, {2, 1});
  ASSERT_TRUE(RunKernel("ArgMax", {{"axis", int64_t{1}}}, {&i}, {&oi}).ok());
  EXPECT_EQ(oi.values(), (std::vector<double>{1, 0}));
}

TEST(ReductionKernelTest, ArgMaxNaNWinsLikeNumpy) {  // by hand
  const double nan = std::numeric_limits<double>::quiet_NaN();
  OwnedTensor x = F32({4}, {1, nan, 3, nan});
  OwnedTensor o(DType::kInt64, {});
  ASSERT_TRUE(RunKernel("ArgMax", {{"keepdims", int64_t{0}}}, {&x}, {&o}).ok());
  EXPECT_EQ(o.values(), (std::vector<double>{1}));
  ASSERT_TRUE(RunKernel("ArgMin", {{"keepdims", int64_t{0}}}, {&x}, {&o}).ok());
  EXPECT_EQ(o.values(), (std::vector<double>{1}));
  ASSERT_TRUE(
      RunKernel("ArgMax", {{"keepdims", int64_t{0}}, {"select_last_index", int64_t{1}}}, {&x}, {&o})
          .ok());
  EXPECT_EQ(o.values(), (std::vector<double>{3}));
  OwnedTensor m(DType::kFloat32, {});
  ASSERT_TRUE(RunKernel("ReduceMax", Attrs({}, 0), {&x}, {&m}).ok());
  EXPECT_TRUE(std::isnan(m.values()[0]));
}

// ---- CumSum ----------------------------------------------------------------------------------

TEST(ReductionKernelTest, CumSumExclusiveReverse) {  // by hand
  OwnedTensor x = F32({5}, {1, 2, 3, 4, 5});
  OwnedTensor axis = T(DType::kInt32, {}, {0});
  auto run = [&](int64_t ex, int64_t rev) {
    OwnedTensor out(DType::kFloat32, {5});
    EXPECT_TRUE(
        RunKernel("CumSum", {{"exclusive", ex}, {"reverse", rev}}, {&x, &axis}, {&out}).ok());
    return out.values();
  };
  EXPECT_EQ(run(0, 0), (std::vector<double>{1, 3, 6, 10, 15}));
  EXPECT_EQ(run(1, 0), (std::vector<double>{0, 1, 3, 6, 10}));
  EXPECT_EQ(run(0, 1), (std::vector<double>{15, 14, 12, 9, 5}));
  EXPECT_EQ(run(1, 1), (std::vector<double>{14, 12, 9, 5, 0}));
}

TEST(ReductionKernelTest, CumSumNegativeAxisAndIntegers) {  // by hand
  OwnedTensor x = T(DType::kInt64, {2, 3}, {1, 2, 3, 4, 5, 6});
  OwnedTensor axis = T(DType::kInt64, {1}, {-2});
  OwnedTensor out(DType::kInt64, {2, 3});
  ASSERT_TRUE(RunKernel("CumSum", {}, {&x, &axis}, {&out}).ok());
  EXPECT_EQ(out.values(), (std::vector<double>{1, 2, 3, 5, 7, 9}));
  OwnedTensor ax1 = T(DType::kInt64, {}, {1});
  ASSERT_TRUE(
      RunKernel("CumSum", {{"exclusive", int64_t{1}}, {"reverse", int64_t{1}}}, {&x, &ax1}, {&out})
          .ok());
  EXPECT_EQ(out.values(), (std::vector<double>{5, 3, 0, 11, 6, 0}));
  OwnedTensor bad = T(DType::kInt64, {}, {2});
  EXPECT_FALSE(RunKernel("CumSum", {}, {&x, &bad}, {&out}).ok());
}

TEST(ReductionKernelTest, CumSumBFloat16RoundsEachOutputOnce) {  // by hand
  // Running sums 256, 257, 258: the accumulator is not rounded, so 258 is exact (a bf16
  // accumulator would stay at 256); 257 itself ties to even, 256.
  OwnedTensor x = T(DType::kBFloat16, {3}, {256, 1, 1});
  OwnedTensor axis = T(DType::kInt64, {}, {0});
  OwnedTensor out(DType::kBFloat16, {3});
  ASSERT_TRUE(RunKernel("CumSum", {}, {&x, &axis}, {&out}).ok());
  EXPECT_EQ(out.values(), (std::vector<double>{256, 256, 258}));
}

}  // namespace
}  // namespace ampc
