// Direct tests of the CPU kernels of the com.ampc backward ops (runtime/cpu/kernels_grad*.cc).
// Expected values come from the forward kernels: the vector-Jacobian product sum(dY * dF/dx_i)
// by float64 central differences (exact up to rounding for the linear ops), and MaxPool's own
// Indices output for MaxPoolGrad. Half and f32 runs are compared with the f64 result on the
// same (rounded) inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "tests/unit/kernels_nn_test_util.h"

namespace ampc::testing::nn {
namespace {

Status RunGrad(const std::string& op, const AttributeMap& attrs, std::vector<const OwnedTensor*> in,
               std::vector<OwnedTensor*> out, cpu::ThreadPool* pool = Pool()) {
  return RunKernelInDomain(kAmpcDomain, op, attrs, std::move(in), std::move(out), pool);
}

// sum(dy * d op(inputs)[0] / d inputs[j]) by central differences of the f64 forward kernel.
V ForwardVjp(const std::string& op, const AttributeMap& attrs, std::vector<OwnedTensor> inputs,
             int j, const Dims& out_dims, const V& dy) {
  const double h = 1e-5;
  auto run = [&](const std::vector<OwnedTensor>& ins) {
    std::vector<const OwnedTensor*> p;
    for (const OwnedTensor& t : ins) p.push_back(&t);
    OwnedTensor y(kF64, out_dims);
    Status st = RunKernel(op, attrs, p, {&y});
    EXPECT_TRUE(st.ok()) << st.message();
    const V yv = y.values();
    double s = 0;
    for (size_t i = 0; i < yv.size(); ++i) s += yv[i] * dy[i];
    return s;
  };
  const int64_t n = inputs[j].view().NumElements();
  V g(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double v = cpu::Load<double>(inputs[j].view(), i);
    cpu::Store<double>(inputs[j].view(), i, v + h);
    const double plus = run(inputs);
    cpu::Store<double>(inputs[j].view(), i, v - h);
    const double minus = run(inputs);
    cpu::Store<double>(inputs[j].view(), i, v);
    g[i] = (plus - minus) / (2 * h);
  }
  return g;
}

OwnedTensor ShapeTensor(const Dims& d) {
  OwnedTensor t(kI64, {static_cast<int64_t>(d.size())});
  for (size_t i = 0; i < d.size(); ++i) t.view().as<int64_t>()[i] = d[i];
  return t;
}

// ---------------------------------------------------------------------------------- ConvGrad

struct ConvCase {
  std::string name;
  Dims x, w, y;
  AttributeMap attrs;
};

std::vector<ConvCase> ConvCases() {
  return {
      {"1DStridePad",
       {2, 2, 7},
       {3, 2, 3},
       {2, 3, 3},
       {{"strides", Ints({2})}, {"pads", Ints({1, 0})}}},
      {"2DBatch1", {1, 2, 5, 5}, {3, 2, 3, 3}, {1, 3, 5, 5}, {{"pads", Ints({1, 1, 1, 1})}}},
      {"2DGroupsDilation",
       {3, 4, 6, 5},
       {4, 2, 2, 2},
       {3, 4, 4, 4},
       {{"group", I(2)}, {"dilations", Ints({2, 1})}, {"strides", Ints({1, 1})}}},
      {"2DStrideAsymPad",
       {2, 1, 5, 6},
       {2, 1, 3, 2},
       {2, 2, 2, 3},
       {{"strides", Ints({2, 2})}, {"pads", Ints({1, 0, 0, 1})}}},
      {"2DPointwise", {3, 3, 2, 3}, {2, 3, 1, 1}, {3, 2, 2, 3}, {}},
      {"2DSameLower",
       {1, 2, 4, 4},
       {2, 2, 3, 3},
       {1, 2, 2, 2},
       {{"auto_pad", Str("SAME_LOWER")}, {"strides", Ints({2, 2})}}},
      // f32 and bf16 run these through oneDNN (8+ input channels, a window wider than 1x1):
      // a batch of 37 is a full chunk of 32 and a partial one of 5.
      {"2DOneDnnChunks",
       {37, 8, 6, 6},
       {16, 8, 3, 3},
       {37, 16, 6, 6},
       {{"pads", Ints({1, 1, 1, 1})}}},
      {"2DOneDnnStrideDilationAsymPad",
       {5, 16, 9, 8},
       {8, 16, 3, 2},
       {5, 8, 4, 8},
       {{"strides", Ints({2, 1})}, {"dilations", Ints({2, 1})}, {"pads", Ints({1, 0, 2, 1})}}},
  };
}

class ConvGradKernelTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvGradKernelTest, MatchesForwardVjpInF64) {
  const ConvCase& c = GetParam();
  V xv, wv, bv, dyv;
  OwnedTensor x = Rand(kF64, c.x, 1, &xv), w = Rand(kF64, c.w, 2, &wv),
              b = Rand(kF64, {c.w[0]}, 3, &bv), dy = Rand(kF64, c.y, 4, &dyv);
  OwnedTensor dx(kF64, c.x), dw(kF64, c.w), db(kF64, {c.w[0]});
  Status st = RunGrad("ConvGrad", c.attrs, {&dy, &x, &w}, {&dx, &dw, &db});
  ASSERT_TRUE(st.ok()) << st.message();
  ExpectNear(dx.values(), ForwardVjp("Conv", c.attrs, {x, w, b}, 0, c.y, dyv), 1e-6, 1e-8);
  ExpectNear(dw.values(), ForwardVjp("Conv", c.attrs, {x, w, b}, 1, c.y, dyv), 1e-6, 1e-8);
  ExpectNear(db.values(), ForwardVjp("Conv", c.attrs, {x, w, b}, 2, c.y, dyv), 1e-6, 1e-8);
  // Single-threaded gives the same numbers (fixed sample ranges, deterministic sums).
  OwnedTensor dx1(kF64, c.x), dw1(kF64, c.w), db1(kF64, {c.w[0]});
  ASSERT_TRUE(RunGrad("ConvGrad", c.attrs, {&dy, &x, &w}, {&dx1, &dw1, &db1}, nullptr).ok());
  ExpectNear(dx1.values(), dx.values(), 1e-12, 1e-14);
  ExpectNear(dw1.values(), dw.values(), 1e-12, 1e-14);
}

TEST_P(ConvGradKernelTest, HalfAndF32RoundTheFp32ResultOnce) {
  const ConvCase& c = GetParam();
  for (DType t : {kF32, kF16, kBF16}) {
    SCOPED_TRACE(std::string(DTypeName(t)));
    V xv, wv, dyv;
    OwnedTensor x = Rand(t, c.x, 5, &xv), w = Rand(t, c.w, 6, &wv), dy = Rand(t, c.y, 7, &dyv);
    OwnedTensor x64 = OwnedTensor::From(kF64, c.x, xv), w64 = OwnedTensor::From(kF64, c.w, wv),
                dy64 = OwnedTensor::From(kF64, c.y, dyv);
    OwnedTensor dx(t, c.x), dw(t, c.w), db(t, {c.w[0]});
    OwnedTensor rx(kF64, c.x), rw(kF64, c.w), rb(kF64, {c.w[0]});
    ASSERT_TRUE(RunGrad("ConvGrad", c.attrs, {&dy, &x, &w}, {&dx, &dw, &db}).ok());
    ASSERT_TRUE(RunGrad("ConvGrad", c.attrs, {&dy64, &x64, &w64}, {&rx, &rw, &rb}).ok());
    {
      SCOPED_TRACE("dX");
      ExpectRoundedOnce(dx, rx.values(), 1e-5, 1e-6);
    }
    {
      // oneDNN sums each dW element's 37 x 36 = 1332 products in its own blocked order (and per
      // chunk): the f32 error of such a sum reaches 1e-5 where the terms (|x dy| up to 1) cancel,
      // against 1e-6 for the im2col GEMM's.
      SCOPED_TRACE("dW");
      const bool onednn = c.name.rfind("2DOneDnn", 0) == 0 && t == kF32;
      ExpectRoundedOnce(dw, rw.values(), 1e-5, onednn ? 3e-5 : 1e-6);
    }
    {
      SCOPED_TRACE("dB");
      ExpectRoundedOnce(db, rb.values(), 1e-5, 1e-6);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, ConvGradKernelTest, ::testing::ValuesIn(ConvCases()),
                         [](const ::testing::TestParamInfo<ConvCase>& i) { return i.param.name; });

// The oneDNN path (f32, 8+ channels) sums each chunk's dW in chunk order: one thread and the
// pool give the same bits.
TEST(ConvGradKernel, OneDnnResultsDoNotDependOnTheThreads) {
  const AttributeMap attrs = {{"pads", Ints({1, 1, 1, 1})}};
  V xv, wv, dyv;
  OwnedTensor x = Rand(kF32, {70, 8, 5, 5}, 8, &xv), w = Rand(kF32, {16, 8, 3, 3}, 9, &wv),
              dy = Rand(kF32, {70, 16, 5, 5}, 10, &dyv);
  OwnedTensor dx(kF32, {70, 8, 5, 5}), dw(kF32, {16, 8, 3, 3}), db(kF32, {16});
  OwnedTensor dx1(kF32, {70, 8, 5, 5}), dw1(kF32, {16, 8, 3, 3}), db1(kF32, {16});
  ASSERT_TRUE(RunGrad("ConvGrad", attrs, {&dy, &x, &w}, {&dx, &dw, &db}).ok());
  ASSERT_TRUE(RunGrad("ConvGrad", attrs, {&dy, &x, &w}, {&dx1, &dw1, &db1}, nullptr).ok());
  EXPECT_EQ(dx.values(), dx1.values());
  EXPECT_EQ(dw.values(), dw1.values());
  EXPECT_EQ(db.values(), db1.values());
}

TEST(ConvGradKernel, OmittedOutputsAreSkipped) {
  V xv, wv, dyv;
  OwnedTensor x = Rand(kF32, {2, 2, 4, 4}, 1, &xv), w = Rand(kF32, {3, 2, 3, 3}, 2, &wv),
              dy = Rand(kF32, {2, 3, 2, 2}, 3, &dyv);
  OwnedTensor dx(kF32, {2, 2, 4, 4}), dw(kF32, {3, 2, 3, 3}), dx2(kF32, {2, 2, 4, 4});
  ASSERT_TRUE(RunGrad("ConvGrad", {}, {&dy, &x, &w}, {&dx, &dw, nullptr}).ok());
  ASSERT_TRUE(RunGrad("ConvGrad", {}, {&dy, &x, &w}, {&dx2}).ok());
  EXPECT_EQ(dx.values(), dx2.values());
}

TEST(ConvGradKernel, BadShapesAreErrors) {
  OwnedTensor x(kF32, {1, 2, 4, 4}), w(kF32, {3, 2, 3, 3}), dy(kF32, {1, 3, 2, 2});
  OwnedTensor dx(kF32, {1, 2, 4, 4}), dw(kF32, {3, 2, 3, 3});
  OwnedTensor w_bad(kF32, {3, 1, 3, 3}), dy_big(kF32, {1, 3, 3, 3}), dy_c(kF32, {1, 2, 2, 2});
  OwnedTensor dx_bad(kF32, {1, 2, 4, 5}), x16(kF16, {1, 2, 4, 4}), xi(kI64, {1, 2, 4, 4});
  EXPECT_FALSE(RunGrad("ConvGrad", {}, {&dy, &x, &w_bad}, {&dx, &dw}).ok());
  EXPECT_FALSE(RunGrad("ConvGrad", {}, {&dy_big, &x, &w}, {&dx, &dw}).ok());
  EXPECT_FALSE(RunGrad("ConvGrad", {}, {&dy_c, &x, &w}, {&dx, &dw}).ok());
  EXPECT_FALSE(RunGrad("ConvGrad", {}, {&dy, &x, &w}, {&dx_bad, &dw}).ok());
  EXPECT_FALSE(RunGrad("ConvGrad", {}, {&dy, &x16, &w}, {&dx, &dw}).ok());
  EXPECT_FALSE(RunGrad("ConvGrad", {}, {&dy, &xi, &w}, {&dx, &dw}).ok());
  EXPECT_FALSE(RunGrad("ConvGrad", {{"group", I(0)}}, {&dy, &x, &w}, {&dx, &dw}).ok());
  EXPECT_FALSE(RunGrad("ConvGrad", {{"strides", Ints({1})}}, {&dy, &x, &w}, {&dx, &dw}).ok());
  EXPECT_FALSE(RunGrad("ConvGrad", {}, {&dy, nullptr, &w}, {&dx, &dw}).ok());
}

// ---------------------------------------------------------------------------------- Pools

struct PoolCase {
  std::string name;
  Dims x, y;
  AttributeMap attrs;
};

std::vector<PoolCase> PoolCases() {
  return {
      {"2DStride",
       {2, 2, 4, 4},
       {2, 2, 2, 2},
       {{"kernel_shape", Ints({2, 2})}, {"strides", Ints({2, 2})}}},
      {"2DOverlapPad",
       {1, 3, 5, 5},
       {1, 3, 5, 5},
       {{"kernel_shape", Ints({3, 3})}, {"pads", Ints({1, 1, 1, 1})}}},
      {"2DDilationCeil",
       {1, 1, 6, 7},
       {1, 1, 3, 3},
       {{"kernel_shape", Ints({2, 2})},
        {"strides", Ints({2, 2})},
        {"dilations", Ints({1, 2})},
        {"ceil_mode", I(1)}}},
      {"1DPadCeil",
       {2, 2, 7},
       {2, 2, 4},
       {{"kernel_shape", Ints({3})},
        {"strides", Ints({2})},
        {"pads", Ints({1, 1})},
        {"ceil_mode", I(1)}}},
      {"3D",
       {1, 1, 3, 4, 4},
       {1, 1, 2, 1, 1},
       {{"kernel_shape", Ints({2, 3, 3})}, {"strides", Ints({1, 2, 2})}}},
  };
}

class PoolGradKernelTest : public ::testing::TestWithParam<PoolCase> {};

// Ties everywhere (values in {0, 1, 2}): the gradient goes to the index MaxPool reports, the
// first maximum of the window.
TEST_P(PoolGradKernelTest, MaxPoolGradFollowsMaxPoolIndices) {
  const PoolCase& c = GetParam();
  for (DType t : {kF64, kF32, kBF16}) {
    OwnedTensor x = OwnedTensor::From(t, c.x, RandomInts(Prod(c.x), 8, 0, 2));
    V dyv;
    OwnedTensor dy = Rand(t, c.y, 9, &dyv);
    OwnedTensor y(t, c.y), idx(kI64, c.y), dx(t, c.x);
    RunOk("MaxPool", c.attrs, {&x}, {&y, &idx});
    ASSERT_TRUE(RunGrad("MaxPoolGrad", c.attrs, {&dy, &x}, {&dx}).ok());
    V want(static_cast<size_t>(Prod(c.x)), 0.0);
    for (int64_t i = 0; i < Prod(c.y); ++i) want[idx.view().as<int64_t>()[i]] += dyv[i];
    ExpectRoundedOnce(dx, want, 1e-6, 1e-7);
  }
}

TEST_P(PoolGradKernelTest, AveragePoolGradMatchesForwardVjp) {
  const PoolCase& c = GetParam();
  for (int64_t include_pad : {0, 1}) {
    AttributeMap attrs = c.attrs;
    attrs["count_include_pad"] = I(include_pad);
    V xv, dyv;
    OwnedTensor x = Rand(kF64, c.x, 10, &xv), dy = Rand(kF64, c.y, 11, &dyv);
    OwnedTensor shape = ShapeTensor(c.x), dx(kF64, c.x);
    ASSERT_TRUE(RunGrad("AveragePoolGrad", attrs, {&dy, &shape}, {&dx}).ok());
    const V want = ForwardVjp("AveragePool", attrs, {x}, 0, c.y, dyv);
    ExpectNear(dx.values(), want, 1e-6, 1e-8);
    for (DType t : {kF32, kF16}) {
      OwnedTensor dyt = OwnedTensor::From(t, c.y, dyv),
                  dy64 = OwnedTensor::From(kF64, c.y, dyt.values());
      OwnedTensor dxt(t, c.x), ref(kF64, c.x);
      ASSERT_TRUE(RunGrad("AveragePoolGrad", attrs, {&dyt, &shape}, {&dxt}).ok());
      ASSERT_TRUE(RunGrad("AveragePoolGrad", attrs, {&dy64, &shape}, {&ref}).ok());
      ExpectRoundedOnce(dxt, ref.values(), 1e-6, 1e-7);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, PoolGradKernelTest, ::testing::ValuesIn(PoolCases()),
                         [](const ::testing::TestParamInfo<PoolCase>& i) { return i.param.name; });

// The f32 2x2/2 pool (kernels_conv.cc and kernels_grad_window.cc take it 8 windows at a time on
// AVX2 CPUs) against the definition written out here, bit for bit: forward, the max by `>` over
// the taps in row order, NaN when any tap is NaN; gradient, 0 + dY at the first maximum (the
// first NaN winning over numbers), 0 elsewhere and in the rows and columns no window covers.
// Values: ties everywhere ({-1, 0, 1} with -0.0 and NaN mixed in, dY with -0.0), on planes
// whose output width is a multiple of 8, not one, and below 8, with odd sizes.
TEST(PoolGradKernel, MaxPool2x2MatchesDefinitionBitForBit) {
  const AttributeMap k2 = {{"kernel_shape", Ints({2, 2})}, {"strides", Ints({2, 2})}};
  const float nan = std::numeric_limits<float>::quiet_NaN();
  uint32_t seed = 20;
  for (const auto& [h, w] :
       std::vector<std::pair<int64_t, int64_t>>{{28, 28}, {17, 35}, {4, 16}, {9, 41}, {6, 7}}) {
    const Dims xd = {2, 3, h, w}, yd = {2, 3, h / 2, w / 2};
    const V ints = RandomInts(Prod(xd), ++seed, 0, 15);
    V xv(ints.size());
    for (size_t i = 0; i < ints.size(); ++i) {
      const int r = static_cast<int>(ints[i]);
      xv[i] = r == 0 ? nan : r == 1 ? -0.0 : r < 6 ? 0.0 : r < 10 ? 1.0 : -1.0;
    }
    V dyv = RandomInts(Prod(yd), ++seed, -3, 3);
    for (double& d : dyv) d = d == 0 ? -0.0 : d / 4;
    OwnedTensor x = OwnedTensor::From(kF32, xd, xv), dy = OwnedTensor::From(kF32, yd, dyv);
    OwnedTensor y(kF32, yd), dx(kF32, xd);
    RunOk("MaxPool", k2, {&x}, {&y});
    ASSERT_TRUE(RunGrad("MaxPoolGrad", k2, {&dy, &x}, {&dx}).ok());
    const float* xp = x.view().as<float>();
    const float* dyp = dy.view().as<float>();
    std::vector<float> want_y(static_cast<size_t>(Prod(yd))), want_dx(xv.size(), 0.0f);
    const int64_t oh_n = h / 2, ow_n = w / 2;
    for (int64_t p = 0; p < 6; ++p) {
      for (int64_t oh = 0; oh < oh_n; ++oh) {
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          const int64_t at[4] = {(p * h + 2 * oh) * w + 2 * ow, (p * h + 2 * oh) * w + 2 * ow + 1,
                                 (p * h + 2 * oh + 1) * w + 2 * ow,
                                 (p * h + 2 * oh + 1) * w + 2 * ow + 1};
          const int64_t o = (p * oh_n + oh) * ow_n + ow;
          bool any_nan = false;
          float best = -std::numeric_limits<float>::infinity();
          int first = -1;  // the first maximum: the first NaN, else the first of the largest
          for (int j = 0; j < 4; ++j) {
            const float v = xp[at[j]];
            any_nan |= std::isnan(v);
            if (v > best) best = v;
            if (first < 0 && std::isnan(v)) first = j;
          }
          if (first < 0) {
            for (int j = 0; j < 4 && first < 0; ++j) {
              if (xp[at[j]] == best) first = j;
            }
          }
          want_y[o] = any_nan ? nan : best;
          want_dx[at[first]] = 0.0f + dyp[o];
        }
      }
    }
    for (size_t i = 0; i < want_y.size(); ++i) {
      const float got = y.view().as<float>()[i];
      EXPECT_TRUE(std::isnan(want_y[i])
                      ? std::isnan(got)
                      : std::signbit(got) == std::signbit(want_y[i]) && got == want_y[i])
          << h << "x" << w << " y[" << i << "] = " << got << ", want " << want_y[i];
    }
    for (size_t i = 0; i < want_dx.size(); ++i) {
      const float got = dx.view().as<float>()[i];
      EXPECT_TRUE(std::signbit(got) == std::signbit(want_dx[i]) && got == want_dx[i])
          << h << "x" << w << " dx[" << i << "] = " << got << ", want " << want_dx[i];
    }
  }
}

TEST(PoolGradKernel, BadShapesAreErrors) {
  const AttributeMap k2 = {{"kernel_shape", Ints({2, 2})}};
  OwnedTensor x(kF32, {1, 2, 4, 4}), dy(kF32, {1, 2, 3, 3}), dx(kF32, {1, 2, 4, 4});
  OwnedTensor dy_c(kF32, {1, 3, 3, 3}), dx_bad(kF32, {1, 2, 4, 3});
  OwnedTensor shape = ShapeTensor({1, 2, 4, 4}), shape_bad = ShapeTensor({1, 2, 4, 5});
  EXPECT_TRUE(RunGrad("MaxPoolGrad", k2, {&dy, &x}, {&dx}).ok());
  EXPECT_FALSE(RunGrad("MaxPoolGrad", {}, {&dy, &x}, {&dx}).ok());
  EXPECT_FALSE(RunGrad("MaxPoolGrad", k2, {&dy_c, &x}, {&dx}).ok());
  EXPECT_FALSE(RunGrad("MaxPoolGrad", k2, {&dy, &x}, {&dx_bad}).ok());
  EXPECT_TRUE(RunGrad("AveragePoolGrad", k2, {&dy, &shape}, {&dx}).ok());
  EXPECT_FALSE(RunGrad("AveragePoolGrad", k2, {&dy, &shape_bad}, {&dx}).ok());
  EXPECT_FALSE(RunGrad("AveragePoolGrad", k2, {&dy, &x}, {&dx}).ok());
  EXPECT_FALSE(
      RunGrad("AveragePoolGrad", {{"kernel_shape", Ints({2})}}, {&dy, &shape}, {&dx}).ok());
}

// -------------------------------------------------------------------- BatchNormalizationGrad

TEST(BatchNormGradKernel, MatchesTrainingForwardVjp) {
  for (const Dims& d : {Dims{4, 3}, Dims{3, 2, 5}, Dims{2, 3, 2, 3}}) {
    const Dims c = {d[1]};
    const AttributeMap attrs = {{"training_mode", I(1)}, {"epsilon", F(1e-3f)}};
    V xv, sv, bv, dyv;
    OwnedTensor x = Rand(kF64, d, 12, &xv), s = Rand(kF64, c, 13, &sv), b = Rand(kF64, c, 14, &bv),
                dy = Rand(kF64, d, 15, &dyv);
    OwnedTensor mean = OwnedTensor::From(kF64, c, V(d[1], 0.0)),
                var = OwnedTensor::From(kF64, c, V(d[1], 1.0));
    OwnedTensor dx(kF64, d), ds(kF64, c), db(kF64, c);
    ASSERT_TRUE(
        RunGrad("BatchNormalizationGrad", {{"epsilon", F(1e-3f)}}, {&dy, &x, &s}, {&dx, &ds, &db})
            .ok());
    const std::vector<OwnedTensor> in = {x, s, b, mean, var};
    ExpectNear(dx.values(), ForwardVjp("BatchNormalization", attrs, in, 0, d, dyv), 1e-5, 1e-7);
    ExpectNear(ds.values(), ForwardVjp("BatchNormalization", attrs, in, 1, d, dyv), 1e-5, 1e-7);
    ExpectNear(db.values(), ForwardVjp("BatchNormalization", attrs, in, 2, d, dyv), 1e-5, 1e-7);
    for (DType t : {kF32, kBF16}) {
      OwnedTensor xt = OwnedTensor::From(t, d, xv), dyt = OwnedTensor::From(t, d, dyv);
      OwnedTensor x64 = OwnedTensor::From(kF64, d, xt.values()),
                  dy64 = OwnedTensor::From(kF64, d, dyt.values());
      OwnedTensor dxt(t, d), dst(kF32, c), dbt(kF32, c), rx(kF64, d), rs(kF64, c), rb(kF64, c);
      const AttributeMap e = {{"epsilon", F(1e-3f)}};
      ASSERT_TRUE(RunGrad("BatchNormalizationGrad", e, {&dyt, &xt, &s}, {&dxt, &dst, &dbt}).ok());
      ASSERT_TRUE(RunGrad("BatchNormalizationGrad", e, {&dy64, &x64, &s}, {&rx, &rs, &rb}).ok());
      ExpectRoundedOnce(dxt, rx.values(), 1e-4, 1e-5);
      ExpectNear(dst.values(), rs.values(), 1e-5, 1e-5);
      ExpectNear(dbt.values(), rb.values(), 1e-5, 1e-5);
    }
  }
}

TEST(BatchNormGradKernel, BadShapesAreErrors) {
  OwnedTensor x(kF32, {2, 3, 4}), dy(kF32, {2, 3, 4}), s(kF32, {3});
  OwnedTensor dx(kF32, {2, 3, 4}), ds(kF32, {3}), db(kF32, {3});
  OwnedTensor s_bad(kF32, {4}), dy_bad(kF32, {2, 3, 5}), x1(kF32, {6}), xi(kI64, {2, 3, 4});
  EXPECT_TRUE(RunGrad("BatchNormalizationGrad", {}, {&dy, &x, &s}, {&dx, &ds, &db}).ok());
  EXPECT_FALSE(RunGrad("BatchNormalizationGrad", {}, {&dy, &x, &s_bad}, {&dx, &ds, &db}).ok());
  EXPECT_FALSE(RunGrad("BatchNormalizationGrad", {}, {&dy_bad, &x, &s}, {&dx, &ds, &db}).ok());
  EXPECT_FALSE(RunGrad("BatchNormalizationGrad", {}, {&x1, &x1, &s}, {&x1, &ds, &db}).ok());
  EXPECT_FALSE(RunGrad("BatchNormalizationGrad", {}, {&dy, &xi, &s}, {&dx, &ds, &db}).ok());
  EXPECT_FALSE(RunGrad("BatchNormalizationGrad", {}, {&dy, &x, &s}, {&dx, &s_bad, &db}).ok());
}

// -------------------------------------------------------------------------------- GatherGrad

TEST(GatherGradKernel, MatchesGatherVjpWithRepeatsAndNegativeIndices) {
  struct Case {
    Dims data;
    std::vector<int64_t> idx;
    Dims idx_dims;
    int64_t axis;
  };
  for (const Case& c :
       {Case{{5, 3}, {0, 4, -1, 0, 2, 2}, {2, 3}, 0}, Case{{2, 4, 3}, {3, -4, 0}, {3}, 1},
        Case{{3, 4}, {-1}, {}, -1}, Case{{200, 2}, {1, 1, 199, -200}, {4}, 0}}) {
    const AttributeMap attrs = {{"axis", I(c.axis)}};
    OwnedTensor idx(kI64, c.idx_dims);
    for (size_t i = 0; i < c.idx.size(); ++i) idx.view().as<int64_t>()[i] = c.idx[i];
    const int64_t r = static_cast<int64_t>(c.data.size()), a = c.axis < 0 ? c.axis + r : c.axis;
    Dims y(c.data.begin(), c.data.begin() + a);
    y.insert(y.end(), c.idx_dims.begin(), c.idx_dims.end());
    y.insert(y.end(), c.data.begin() + a + 1, c.data.end());
    V dv, dyv;
    OwnedTensor data = Rand(kF64, c.data, 16, &dv), dy = Rand(kF64, y, 17, &dyv);
    OwnedTensor shape = ShapeTensor(c.data), dd(kF64, c.data);
    ASSERT_TRUE(RunGrad("GatherGrad", attrs, {&dy, &idx, &shape}, {&dd}).ok());
    ExpectNear(dd.values(), ForwardVjp("Gather", attrs, {data, idx}, 0, y, dyv), 1e-6, 1e-8);
    OwnedTensor dy16 = OwnedTensor::From(kBF16, y, dyv), dd16(kBF16, c.data);
    OwnedTensor dy64 = OwnedTensor::From(kF64, y, dy16.values()), ref(kF64, c.data);
    ASSERT_TRUE(RunGrad("GatherGrad", attrs, {&dy16, &idx, &shape}, {&dd16}).ok());
    ASSERT_TRUE(RunGrad("GatherGrad", attrs, {&dy64, &idx, &shape}, {&ref}).ok());
    ExpectRoundedOnce(dd16, ref.values(), 1e-6, 1e-7);
  }
}

TEST(GatherGradKernel, BadInputsAreErrors) {
  OwnedTensor dy(kF32, {2, 3}), dd(kF32, {5, 3}), shape = ShapeTensor({5, 3});
  OwnedTensor idx(kI64, {2}), idx_f(kF32, {2}), shape_bad = ShapeTensor({4, 3}),
                                                dy_bad(kF32, {3, 3});
  idx.view().as<int64_t>()[0] = 1;
  idx.view().as<int64_t>()[1] = 5;  // out of range
  Status st = RunGrad("GatherGrad", {}, {&dy, &idx, &shape}, {&dd});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("out of range"), std::string::npos) << st.message();
  idx.view().as<int64_t>()[1] = -6;
  EXPECT_FALSE(RunGrad("GatherGrad", {}, {&dy, &idx, &shape}, {&dd}).ok());
  idx.view().as<int64_t>()[1] = -5;
  EXPECT_TRUE(RunGrad("GatherGrad", {}, {&dy, &idx, &shape}, {&dd}).ok());
  EXPECT_FALSE(RunGrad("GatherGrad", {}, {&dy, &idx_f, &shape}, {&dd}).ok());
  EXPECT_FALSE(RunGrad("GatherGrad", {}, {&dy, &idx, &shape_bad}, {&dd}).ok());
  EXPECT_FALSE(RunGrad("GatherGrad", {}, {&dy_bad, &idx, &shape}, {&dd}).ok());
  EXPECT_FALSE(RunGrad("GatherGrad", {{"axis", I(2)}}, {&dy, &idx, &shape}, {&dd}).ok());
}

}  // namespace
}  // namespace ampc::testing::nn

// ReluGrad(dY, X) = dY where X > 0: checked against the forward Relu kernel's central
// differences in f64 (away from the kink), and in every float type against the definition,
// including x = 0 (no gradient, as PyTorch's threshold_backward), -0, NaN and infinities.
namespace ampc::testing::nn {
namespace {

TEST(ReluGradKernel, MatchesReluVjpInF64) {
  const V x = {-1.5, -0.25, 0.3, 2.0, -3.0, 0.7};
  const V dy = {0.5, -1.0, 2.0, -0.25, 4.0, 1.5};
  OwnedTensor X = OwnedTensor::From(kF64, {2, 3}, x), dY = OwnedTensor::From(kF64, {2, 3}, dy);
  OwnedTensor dX(kF64, {2, 3});
  ASSERT_TRUE(RunGrad("ReluGrad", {}, {&dY, &X}, {&dX}).ok());
  const V want = ForwardVjp("Relu", {}, {X}, 0, {2, 3}, dy);
  const V got = dX.values();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-8) << i;
}

TEST(ReluGradKernel, EveryFloatTypeAndTheEdges) {
  const double inf = std::numeric_limits<double>::infinity();
  const V x = {0.0, -0.0, std::nan(""), inf, -inf, 1e-3, -1e-3, 5.0};
  const V dy = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0};
  const V want = {0, 0, 0, 4.0, 0, 6.0, 0, 8.0};
  for (DType t : {kF32, kF64, DType::kFloat16, DType::kBFloat16}) {
    OwnedTensor X = OwnedTensor::From(t, {8}, x), dY = OwnedTensor::From(t, {8}, dy), dX(t, {8});
    ASSERT_TRUE(RunGrad("ReluGrad", {}, {&dY, &X}, {&dX}).ok()) << DTypeName(t);
    EXPECT_EQ(dX.values(), want) << DTypeName(t);
  }
  OwnedTensor X = OwnedTensor::From(kF32, {8}, x), dY = OwnedTensor::From(kF32, {2, 4}, dy),
              dX(kF32, {8});
  EXPECT_FALSE(RunGrad("ReluGrad", {}, {&dY, &X}, {&dX}).ok());
}

}  // namespace
}  // namespace ampc::testing::nn
