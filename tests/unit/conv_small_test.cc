// The direct f32 convolution kernels for few input taps (runtime/cpu/conv_small.h), through the
// Conv and ConvGrad kernels, against the convolution's definition evaluated here in double.
// Geometries: 1 and 3 input channels, 3x3 / 5x5 / 2x3 windows, symmetric, asymmetric and no
// padding, output widths below 8, between 8 and 16, and ragged past 16, output channel counts
// that are and are not multiples of the 4-channel block, batches with a partial dW chunk.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ir/op_registry.h"
#include "runtime/cpu/conv_small.h"
#include "tests/unit/kernels_nn_test_util.h"

namespace ampc::testing::nn {
namespace {

struct Geo {
  int64_t n, c, h, w, m, kh, kw, pt, pl, pb, pr;
  int64_t oh() const { return h + pt + pb - kh + 1; }
  int64_t ow() const { return w + pl + pr - kw + 1; }
  cpu::conv_small::Conv2d Conv() const {
    cpu::conv_small::Conv2d g;
    g.n = n, g.c = c, g.h = h, g.w = w, g.m = m, g.kh = kh, g.kw = kw, g.oh = oh(), g.ow = ow();
    g.pad_top = pt, g.pad_left = pl, g.pad_bottom = pb, g.pad_right = pr;
    return g;
  }
  AttributeMap Attrs() const { return {{"pads", Ints({pt, pl, pb, pr})}}; }
};

std::vector<Geo> Geos() {
  return {
      {10, 1, 28, 28, 8, 3, 3, 1, 1, 1, 1},  // the fixture CNN's first layer; a partial chunk
      {3, 3, 9, 29, 9, 3, 3, 1, 1, 1, 1},    // 29 columns: one full 16-block and a ragged one
      {2, 1, 12, 20, 5, 5, 5, 0, 0, 0, 0},   // no padding, 16 columns
      {17, 3, 6, 5, 3, 2, 3, 1, 0, 0, 2},    // asymmetric pads, 6 columns, 3 channels: no block
      {1, 2, 4, 11, 4, 3, 3, 2, 1, 0, 1},    // 11 columns, batch 1
  };
}

// out[s, m, y, x] = sum over (c, i, j) of x[s, c, y + i - pt, x + j - pl] w[m, c, i, j], in
// double; and each output's sum of |terms| (for the rounding bound).
void RefForward(const Geo& g, const V& x, const V& w, V* y, V* mag) {
  y->assign(static_cast<size_t>(g.n * g.m * g.oh() * g.ow()), 0.0);
  mag->assign(y->size(), 0.0);
  for (int64_t s = 0; s < g.n; ++s)
    for (int64_t m = 0; m < g.m; ++m)
      for (int64_t r = 0; r < g.oh(); ++r)
        for (int64_t q = 0; q < g.ow(); ++q) {
          const size_t o = static_cast<size_t>(((s * g.m + m) * g.oh() + r) * g.ow() + q);
          for (int64_t c = 0; c < g.c; ++c)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t yy = r + i - g.pt, xx = q + j - g.pl;
                if (yy < 0 || yy >= g.h || xx < 0 || xx >= g.w) continue;
                const double t = x[static_cast<size_t>(((s * g.c + c) * g.h + yy) * g.w + xx)] *
                                 w[static_cast<size_t>(((m * g.c + c) * g.kh + i) * g.kw + j)];
                (*y)[o] += t;
                (*mag)[o] += std::fabs(t);
              }
        }
}

// dW[m, c, i, j] = sum over (s, y, x) of dy[s, m, y, x] x[s, c, y + i - pt, x + j - pl].
void RefWeightGrad(const Geo& g, const V& x, const V& dy, V* dw, V* mag) {
  dw->assign(static_cast<size_t>(g.m * g.c * g.kh * g.kw), 0.0);
  mag->assign(dw->size(), 0.0);
  for (int64_t s = 0; s < g.n; ++s)
    for (int64_t m = 0; m < g.m; ++m)
      for (int64_t r = 0; r < g.oh(); ++r)
        for (int64_t q = 0; q < g.ow(); ++q)
          for (int64_t c = 0; c < g.c; ++c)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t yy = r + i - g.pt, xx = q + j - g.pl;
                if (yy < 0 || yy >= g.h || xx < 0 || xx >= g.w) continue;
                const double t =
                    dy[static_cast<size_t>(((s * g.m + m) * g.oh() + r) * g.ow() + q)] *
                    x[static_cast<size_t>(((s * g.c + c) * g.h + yy) * g.w + xx)];
                const size_t o = static_cast<size_t>(((m * g.c + c) * g.kh + i) * g.kw + j);
                (*dw)[o] += t;
                (*mag)[o] += std::fabs(t);
              }
}

// got within f32 summation error of want: `terms` roundings of at most 2^-24 of the sum of
// |terms| each (plus the final rounding); infinities and NaN must match exactly.
void ExpectSum(const V& got, const V& want, const V& mag, double terms, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(want[i]) || !std::isfinite(got[i])) {
      ASSERT_TRUE(std::isnan(want[i]) ? std::isnan(got[i]) : got[i] == want[i])
          << what << " element " << i << ": got " << got[i] << ", want " << want[i];
      continue;
    }
    ASSERT_NEAR(got[i], want[i], (terms + 1) * 0x1p-24 * mag[i] + 1e-30)
        << what << " element " << i;
  }
}

Status RunGrad(const AttributeMap& attrs, std::vector<const OwnedTensor*> in,
               std::vector<OwnedTensor*> out, cpu::ThreadPool* pool = Pool()) {
  return RunKernelInDomain(kAmpcDomain, "ConvGrad", attrs, std::move(in), std::move(out), pool);
}

bool DirectKernelsRun() { return cpu::conv_small::Takes(Geos()[0].Conv()); }

TEST(ConvSmall, TakesFirstLayersOnly) {
  if (!DirectKernelsRun()) GTEST_SKIP() << "no AVX2 + FMA";
  for (const Geo& g : Geos()) EXPECT_TRUE(cpu::conv_small::Takes(g.Conv()));
  cpu::conv_small::Conv2d g = Geos()[0].Conv();
  auto with = [&](auto edit) {
    cpu::conv_small::Conv2d h = g;
    edit(h);
    return cpu::conv_small::Takes(h);
  };
  EXPECT_FALSE(with([](auto& h) { h.stride_w = 2, h.ow = 14; }));
  EXPECT_FALSE(with([](auto& h) { h.dil_h = 2, h.oh = 26; }));
  EXPECT_FALSE(with([](auto& h) { h.kh = h.kw = 1, h.oh = h.ow = 30; }));        // 1x1
  EXPECT_FALSE(with([](auto& h) { h.c = 4, h.kh = h.kw = 3; }));                // 36 taps
  EXPECT_FALSE(with([](auto& h) { h.ow = 27; }));                               // not stride 1
  EXPECT_TRUE(with([](auto& h) { h.c = 3, h.kh = 3, h.kw = 3; }));              // 27 taps
}

TEST(ConvSmall, ForwardAndWeightGradMatchTheDefinition) {
  if (!DirectKernelsRun()) GTEST_SKIP() << "no AVX2 + FMA";
  uint32_t seed = 40;
  for (const Geo& g : Geos()) {
    SCOPED_TRACE("geometry n" + std::to_string(g.n) + " c" + std::to_string(g.c) + " " +
                 std::to_string(g.h) + "x" + std::to_string(g.w) + " m" + std::to_string(g.m));
    const Dims xd = {g.n, g.c, g.h, g.w}, wd = {g.m, g.c, g.kh, g.kw},
               yd = {g.n, g.m, g.oh(), g.ow()};
    V xv, wv, bv, dyv;
    OwnedTensor x = Rand(kF32, xd, ++seed, &xv), w = Rand(kF32, wd, ++seed, &wv),
                b = Rand(kF32, {g.m}, ++seed, &bv), dy = Rand(kF32, yd, ++seed, &dyv);
    OwnedTensor y(kF32, yd), dw(kF32, wd), db(kF32, {g.m});
    RunOk("Conv", g.Attrs(), {&x, &w, &b}, {&y});
    V want, mag;
    RefForward(g, xv, wv, &want, &mag);
    for (size_t i = 0; i < want.size(); ++i) {
      const size_t m = (i / static_cast<size_t>(g.oh() * g.ow())) % static_cast<size_t>(g.m);
      want[i] += bv[m];
      mag[i] += std::fabs(bv[m]);
    }
    ExpectSum(y.values(), want, mag, static_cast<double>(g.c * g.kh * g.kw + 1), "Y");
    // ConvGrad of a first layer: dX omitted.
    ASSERT_TRUE(RunGrad(g.Attrs(), {&dy, &x, &w}, {nullptr, &dw, &db}).ok());
    RefWeightGrad(g, xv, dyv, &want, &mag);
    ExpectSum(dw.values(), want, mag, static_cast<double>(g.n * g.oh() * g.ow()), "dW");
    // One thread: the same bits (fixed chunks summed in order).
    OwnedTensor dw1(kF32, wd), db1(kF32, {g.m});
    ASSERT_TRUE(RunGrad(g.Attrs(), {&dy, &x, &w}, {nullptr, &dw1, &db1}, nullptr).ok());
    ASSERT_EQ(std::memcmp(dw1.view().data, dw.view().data, static_cast<size_t>(Prod(wd)) * 4), 0);
  }
}

// An infinity in the input's last column reaches only the outputs and dW taps whose windows
// cover it. The kernels' vector lanes past the last output column overlap that column for
// some taps; they must not turn 0 x inf into NaN in a tap that never sees it.
TEST(ConvSmall, InfinitiesStayInTheirWindows) {
  if (!DirectKernelsRun()) GTEST_SKIP() << "no AVX2 + FMA";
  const float inf = std::numeric_limits<float>::infinity();
  for (const Geo& g : {Geos()[0], Geos()[1], Geos()[4]}) {
    const Dims xd = {g.n, g.c, g.h, g.w}, wd = {g.m, g.c, g.kh, g.kw},
               yd = {g.n, g.m, g.oh(), g.ow()};
    V xv = Random(Prod(xd), 70), wv, dyv;
    for (int64_t r = 0; r < g.n * g.c * g.h; r += 3) xv[static_cast<size_t>(r * g.w + g.w - 1)] = inf;
    OwnedTensor x = OwnedTensor::From(kF32, xd, xv), w = Rand(kF32, wd, 71, &wv),
                dy = Rand(kF32, yd, 72, &dyv);
    OwnedTensor y(kF32, yd), dw(kF32, wd);
    RunOk("Conv", g.Attrs(), {&x, &w}, {&y});
    V want, mag;
    RefForward(g, xv, wv, &want, &mag);
    ExpectSum(y.values(), want, mag, static_cast<double>(g.c * g.kh * g.kw), "Y");
    ASSERT_TRUE(RunGrad(g.Attrs(), {&dy, &x, &w}, {nullptr, &dw, nullptr}).ok());
    RefWeightGrad(g, xv, dyv, &want, &mag);
    int finite = 0;
    for (double v : want) finite += std::isfinite(v) ? 1 : 0;
    EXPECT_GT(finite, 0);  // some taps never see the last column
    ExpectSum(dw.values(), want, mag, static_cast<double>(g.n * g.oh() * g.ow()), "dW");
  }
}

}  // namespace
}  // namespace ampc::testing::nn
