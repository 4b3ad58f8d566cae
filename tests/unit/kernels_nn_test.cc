// CPU NN kernels (runtime/cpu/kernels_nn.cc, kernels_conv.cc, kernels_norm.cc, gemm.cc).
// Expected values come from naive float64 references written below from the ONNX operator spec
// formulas (direct nested-loop convolution, pooling, softmax, normalisation, losses), on random
// data with fixed seeds; half cases check that each output is the f64 reference rounded once;
// the last test replays ONNX's own backend test data (Debian's libonnx-testdata).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>

#include "frontend/onnx.h"
#include "runtime/cpu/gemm.h"
#include "tests/unit/kernel_test_util.h"

namespace ampc::testing {
namespace {

using V = std::vector<double>;
using Dims = std::vector<int64_t>;
constexpr DType kF32 = DType::kFloat32, kF64 = DType::kFloat64, kF16 = DType::kFloat16,
                kBF16 = DType::kBFloat16, kI64 = DType::kInt64;

cpu::ThreadPool* Pool() {
  static cpu::ThreadPool pool(2);
  return &pool;
}
Attribute I(int64_t v) { return Attribute(v); }
Attribute F(float v) { return Attribute(v); }
Attribute Ints(std::vector<int64_t> v) { return Attribute(std::move(v)); }
Attribute Str(const char* s) { return Attribute(std::string(s)); }

int64_t Prod(const Dims& d, size_t b = 0) {
  int64_t p = 1;
  for (size_t i = b; i < d.size(); ++i) p *= d[i];
  return p;
}
V Random(int64_t n, uint32_t seed, double lo = -1, double hi = 1) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  V v(n);
  for (double& x : v) x = u(g);
  return v;
}
V RandomInts(int64_t n, uint32_t seed, int lo, int hi) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> u(lo, hi);
  V v(n);
  for (double& x : v) x = u(g);
  return v;
}
// A random tensor; returns the stored (already rounded) values through `vals`.
OwnedTensor Rand(DType t, const Dims& d, uint32_t seed, V* vals, double lo = -1, double hi = 1) {
  OwnedTensor o = OwnedTensor::From(t, d, Random(Prod(d), seed, lo, hi));
  *vals = o.values();
  return o;
}

void ExpectNear(const V& got, const V& want, double rtol = 1e-5, double atol = 1e-6) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], atol + rtol * std::fabs(want[i])) << "element " << i;
  }
}

// The value of type t nearest to v (ties to even), found among the neighbours of the float
// rounding so that no double rounding is involved.
double RoundOnce(DType t, double v) {
  if (t == kF32) return static_cast<float>(v);
  if (t != kF16 && t != kBF16) return v;
  const bool bf = t == kBF16;
  const float f = static_cast<float>(v);
  const uint16_t b = bf ? FloatToBFloat16Bits(f) : FloatToHalfBits(f);
  double best = 0, best_err = INFINITY;
  for (int d = -1; d <= 1; ++d) {
    const uint16_t c = static_cast<uint16_t>(b + d);
    if ((c & 0x8000) != (b & 0x8000)) continue;
    const double x = bf ? BFloat16BitsToFloat(c) : HalfBitsToFloat(c);
    const double err = std::fabs(x - v);
    if (std::isfinite(x) && (err < best_err || (err == best_err && (c & 1) == 0))) {
      best = x, best_err = err;
    }
  }
  return best;
}

// Each element must be the reference rounded once, except where the reference lies within
// fp32 computing error (`slack` relative, `abs_slack` absolute) of a rounding tie.
void ExpectRoundedOnce(const OwnedTensor& got, const V& want, double slack = 0,
                       double abs_slack = 0) {
  const V g = got.values();
  ASSERT_EQ(g.size(), want.size());
  for (size_t i = 0; i < g.size(); ++i) {
    const double e = RoundOnce(got.view().dtype, want[i]);
    if (g[i] == e) continue;
    ASSERT_GT(slack, 0) << "element " << i << ": got " << g[i] << ", want " << e;
    ASSERT_NEAR(want[i], (g[i] + e) / 2, slack * std::fabs(want[i]) + abs_slack) << "element " << i;
  }
}

void RunOk(const std::string& op, const AttributeMap& attrs, std::vector<const OwnedTensor*> in,
           std::vector<OwnedTensor*> out) {
  Status st = RunKernel(op, attrs, std::move(in), std::move(out), Pool());
  ASSERT_TRUE(st.ok()) << st.message();
}

// Row-major flat index of `idx` in `dims`.
int64_t Flat(const Dims& dims, const Dims& idx) {
  int64_t f = 0;
  for (size_t i = 0; i < dims.size(); ++i) f = f * dims[i] + idx[i];
  return f;
}
// Calls fn(idx) for every index of `dims` in row-major order.
void ForEach(const Dims& dims, const std::function<void(const Dims&)>& fn) {
  if (Prod(dims) == 0) return;
  Dims idx(dims.size(), 0);
  for (;;) {
    fn(idx);
    size_t j = dims.size();
    while (j > 0 && ++idx[j - 1] == dims[j - 1]) idx[--j] = 0;
    if (j == 0) return;
  }
}

// ---------------------------------------------------------------- GEMM and MatMul references

// C = alpha * op(A) op(B) + beta * C on packed row-major matrices.
V RefGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const V& a, const V& b,
          double beta, const V& c) {
  V out(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p)
        s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
      out[i * n + j] = alpha * s + (beta != 0 ? beta * c[i * n + j] : 0);
    }
  }
  return out;
}

// Float-rounded random values.
V RandomF(int64_t n, uint32_t seed) {
  V v = Random(n, seed);
  for (double& x : v) x = static_cast<float>(x);
  return v;
}

// Small and large shapes (the large ones are split across the pool by rows or by columns),
// with leading dims wider than the matrices (the padding holds NaN, which must not leak).
TEST(GemmEntry, F32AllTransposesAlphaBetaAndSplits) {
  const std::vector<Dims> shapes = {{7, 5, 9}, {300, 40, 30}, {70, 300, 20}};
  const int64_t pad = 3;
  auto padded = [&](const V& v, int64_t rows, int64_t cols) {  // packed -> rows of cols + pad
    std::vector<float> o(rows * (cols + pad), NAN);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < cols; ++j) o[r * (cols + pad) + j] = v[r * cols + j];
    }
    return o;
  };
  for (const Dims& mnk : shapes) {
    const int64_t m = mnk[0], n = mnk[1], k = mnk[2];
    for (int ta = 0; ta < 2; ++ta) {
      for (int tb = 0; tb < 2; ++tb) {
        const V a = RandomF(m * k, 1), b = RandomF(k * n, 2), c = RandomF(m * n, 3);
        const std::vector<float> fa = padded(a, ta ? k : m, ta ? m : k);
        const std::vector<float> fb = padded(b, tb ? n : k, tb ? k : n);
        std::vector<float> fc = padded(c, m, n);
        cpu::GemmDesc d;
        d.trans_a = ta, d.trans_b = tb, d.m = m, d.n = n, d.k = k, d.alpha = 0.5, d.beta = -2;
        d.lda = (ta ? m : k) + pad, d.ldb = (tb ? k : n) + pad, d.ldc = n + pad;
        ASSERT_TRUE(cpu::Gemm(d, fa.data(), fb.data(), fc.data(), Pool()).ok());
        V got;
        for (int64_t r = 0; r < m; ++r) {
          for (int64_t j = 0; j < n; ++j) got.push_back(fc[r * (n + pad) + j]);
        }
        ExpectNear(got, RefGemm(ta, tb, m, n, k, 0.5, a, b, -2, c), 1e-5, 1e-5);
      }
    }
  }
}

// Integer-valued inputs: fp32 accumulation is exact, so a single rounding of the exact sum is
// the only acceptable f16/bf16 result (bf16 keeps 8 bits: sums above 256 must round once).
TEST(GemmEntry, HalfTypesAccumulateInFp32AndRoundOnce) {
  for (DType t : {kF16, kBF16}) {
    for (int tb = 0; tb < 2; ++tb) {
      const int64_t m = 6, n = 11, k = 64;
      const V a = RandomInts(m * k, 4, -8, 8), b = RandomInts(k * n, 5, -8, 8);
      const V c = RandomInts(m * n, 6, -50, 50);
      OwnedTensor A = OwnedTensor::From(t, {m, k}, a), B = OwnedTensor::From(t, {k * n}, b);
      OwnedTensor C = OwnedTensor::From(t, {m, n}, c);
      cpu::GemmDesc d;
      d.dtype = t, d.trans_b = tb, d.m = m, d.n = n, d.k = k, d.beta = 1;
      ASSERT_TRUE(cpu::Gemm(d, A.view().data, B.view().data, C.view().data, Pool()).ok());
      ExpectRoundedOnce(C, RefGemm(false, tb, m, n, k, 1, a, b, 1, c));
    }
  }
}

// Batch 5 of 48^3 products runs whole products per pool thread; B is shared (stride 0).
TEST(GemmEntry, BatchedStridesShareOperands) {
  const int64_t m = 48, n = 48, k = 48, batch = 5;
  V a, b;
  OwnedTensor A = Rand(kF64, {batch, m, k}, 7, &a), B = Rand(kF64, {k, n}, 8, &b);
  OwnedTensor C(kF64, {batch, m, n});
  cpu::GemmDesc d;
  d.dtype = kF64, d.m = m, d.n = n, d.k = k, d.batch = batch;
  d.stride_a = m * k, d.stride_b = 0, d.stride_c = m * n;
  ASSERT_TRUE(cpu::Gemm(d, A.view().data, B.view().data, C.view().data, Pool()).ok());
  V want;
  for (int64_t i = 0; i < batch; ++i) {
    const V ai(a.begin() + i * m * k, a.begin() + (i + 1) * m * k);
    const V r = RefGemm(false, false, m, n, k, 1, ai, b, 0, {});
    want.insert(want.end(), r.begin(), r.end());
  }
  ExpectNear(C.values(), want, 1e-12, 1e-12);
}

// numpy matmul on f64 values: 1-D promotion and batch broadcasting.
V RefMatMul(const V& a, Dims ad, const V& b, Dims bd) {
  if (ad.size() == 1) ad.insert(ad.begin(), 1);
  if (bd.size() == 1) bd.push_back(1);
  const int64_t M = ad[ad.size() - 2], K = ad.back(), N = bd.back();
  const Dims ab(ad.begin(), ad.end() - 2), bb(bd.begin(), bd.end() - 2);
  const size_t r = std::max(ab.size(), bb.size());
  Dims ob(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t x = i < r - ab.size() ? 1 : ab[i - (r - ab.size())];
    const int64_t y = i < r - bb.size() ? 1 : bb[i - (r - bb.size())];
    ob[i] = std::max(x, y);
  }
  V out;
  ForEach(ob, [&](const Dims& idx) {
    Dims ia, ib;
    for (size_t i = r - ab.size(); i < r; ++i)
      ia.push_back(ab[i - (r - ab.size())] == 1 ? 0 : idx[i]);
    for (size_t i = r - bb.size(); i < r; ++i)
      ib.push_back(bb[i - (r - bb.size())] == 1 ? 0 : idx[i]);
    const int64_t oa = Flat(ab, ia) * M * K, obb = Flat(bb, ib) * K * N;
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t p = 0; p < K; ++p) s += a[oa + i * K + p] * b[obb + p * N + j];
        out.push_back(s);
      }
    }
  });
  return out;
}

TEST(NnKernels, MatMulShapesAndBroadcasting) {
  const std::vector<std::tuple<Dims, Dims, Dims>> cases = {{{5, 7}, {7, 3}, {5, 3}},
                                                           {{2, 1, 3, 4}, {3, 4, 5}, {2, 3, 3, 5}},
                                                           {{4}, {4, 5}, {5}},
                                                           {{2, 3, 4}, {4}, {2, 3}},
                                                           {{4}, {4}, {}},
                                                           {{2, 3, 4}, {4, 6}, {2, 3, 6}},
                                                           {{3, 4}, {2, 4, 2}, {2, 3, 2}}};
  for (DType t : {kF32, kF64}) {
    for (const auto& [ad, bd, yd] : cases) {
      V a, b;
      OwnedTensor A = Rand(t, ad, 10, &a), B = Rand(t, bd, 11, &b), Y(t, yd);
      RunOk("MatMul", {}, {&A, &B}, {&Y});
      ExpectNear(Y.values(), RefMatMul(a, ad, b, bd));
    }
  }
  // Integer-valued halves: exact fp32 sums rounded once; i64 exactly.
  for (DType t : {kF16, kBF16, kI64}) {
    const V a = RandomInts(2 * 3 * 40, 12, -9, 9), b = RandomInts(40 * 5, 13, -9, 9);
    OwnedTensor A = OwnedTensor::From(t, {2, 3, 40}, a), B = OwnedTensor::From(t, {40, 5}, b);
    OwnedTensor Y(t, {2, 3, 5});
    RunOk("MatMul", {}, {&A, &B}, {&Y});
    ExpectRoundedOnce(Y, RefMatMul(a, {2, 3, 40}, b, {40, 5}));
  }
  OwnedTensor A(kF32, {2, 3}), B(kF32, {4, 5}), Y(kF32, {2, 5});
  EXPECT_EQ(RunKernel("MatMul", {}, {&A, &B}, {&Y}).code(), StatusCode::kInvalidArgument);
}

TEST(NnKernels, GemmOpTransposesAlphaBetaAndBiasBroadcast) {
  const int64_t M = 6, N = 5, K = 7;
  const std::vector<Dims> bias_shapes = {{}, {N}, {M, 1}, {1, N}, {M, N}, {1}};
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      for (const Dims& cd : bias_shapes) {
        V a, b, c;
        OwnedTensor A = Rand(kF32, ta ? Dims{K, M} : Dims{M, K}, 20, &a);
        OwnedTensor B = Rand(kF32, tb ? Dims{N, K} : Dims{K, N}, 21, &b);
        OwnedTensor C = Rand(kF32, cd, 22, &c), Y(kF32, {M, N});
        RunOk("Gemm",
              {{"transA", I(ta)}, {"transB", I(tb)}, {"alpha", F(0.25f)}, {"beta", F(3.0f)}},
              {&A, &B, &C}, {&Y});
        V full(M * N);  // C broadcast to [M, N] by hand
        for (int64_t i = 0; i < M; ++i) {
          for (int64_t j = 0; j < N; ++j) {
            const int64_t ci = cd.size() == 2 ? (cd[0] == 1 ? 0 : i) : 0;
            const int64_t cj = cd.empty() || cd.back() == 1 ? 0 : j;
            full[i * N + j] = c[ci * (cd.size() == 2 ? cd[1] : 0) + cj];
          }
        }
        ExpectNear(Y.values(), RefGemm(ta, tb, M, N, K, 0.25, a, b, 3.0, full));
      }
    }
  }
  // No C; then bf16 with a bias: A B + C summed in fp32 and rounded once.
  V a, b;
  OwnedTensor A = Rand(kF64, {M, K}, 23, &a), B = Rand(kF64, {N, K}, 24, &b), Y(kF64, {M, N});
  RunOk("Gemm", {{"transB", I(1)}}, {&A, &B}, {&Y});
  ExpectNear(Y.values(), RefGemm(false, true, M, N, K, 1, a, b, 0, {}), 1e-12, 1e-12);
  const V ha = RandomInts(M * 48, 25, -9, 9), hb = RandomInts(48 * N, 26, -9, 9);
  const V hc = RandomInts(N, 27, -100, 100);
  OwnedTensor HA = OwnedTensor::From(kBF16, {M, 48}, ha),
              HB = OwnedTensor::From(kBF16, {48, N}, hb);
  OwnedTensor HC = OwnedTensor::From(kBF16, {N}, hc), HY(kBF16, {M, N});
  RunOk("Gemm", {}, {&HA, &HB, &HC}, {&HY});
  V full(M * N);
  for (int64_t i = 0; i < M * N; ++i) full[i] = hc[i % N];
  ExpectRoundedOnce(HY, RefGemm(false, false, M, N, 48, 1, ha, hb, 1, full));
}

// ------------------------------------------------------------------ Conv / ConvTranspose

struct Window {
  Dims k, s, d, pads;  // pads: [x1_begin, x2_begin, ..., x1_end, x2_end]
};

// The window as node attributes, plus `extra` (an auto_pad there drops the explicit pads).
AttributeMap WindowAttrs(const Window& w, AttributeMap extra = {}) {
  AttributeMap a = {{"kernel_shape", Ints(w.k)}, {"strides", Ints(w.s)}, {"dilations", Ints(w.d)}};
  if (!extra.count("auto_pad")) a["pads"] = Ints(w.pads);
  for (auto& [k, v] : extra) a[k] = v;
  return a;
}

// Output dim by the ONNX formula (mirrors ir/ops/nn.cc, including the ceil_mode rule).
int64_t OutDim(int64_t in, const Window& w, size_t i, bool ceil_mode = false) {
  const int64_t n = static_cast<int64_t>(w.k.size()), ek = (w.k[i] - 1) * w.d[i] + 1;
  const int64_t padded = in + w.pads[i] + w.pads[i + n];
  int64_t out = ceil_mode ? (padded - ek + w.s[i] - 1) / w.s[i] + 1 : (padded - ek) / w.s[i] + 1;
  if (ceil_mode && (out - 1) * w.s[i] >= in + w.pads[i]) --out;
  return out;
}

// Direct convolution: y[n,m,o] = b[m] + sum_{c,k} x[n, g*Cg+c, o*s - pad + k*d] * w[m,c,k].
V RefConv(const V& x, const Dims& xd, const V& w, const Dims& wd, const V& b, const Window& win,
          int64_t group, Dims* yd) {
  const size_t n = xd.size() - 2;
  *yd = {xd[0], wd[0]};
  for (size_t i = 0; i < n; ++i) yd->push_back(OutDim(xd[2 + i], win, i));
  const int64_t Cg = wd[1], Mg = wd[0] / group;
  V y(Prod(*yd));
  ForEach(*yd, [&](const Dims& o) {
    const int64_t g = o[1] / Mg;
    double s = b.empty() ? 0 : b[o[1]];
    for (int64_t c = 0; c < Cg; ++c) {
      ForEach(Dims(wd.begin() + 2, wd.end()), [&](const Dims& k) {
        Dims xi = {o[0], g * Cg + c}, wi = {o[1], c};
        for (size_t i = 0; i < n; ++i) {
          const int64_t p = o[2 + i] * win.s[i] - win.pads[i] + k[i] * win.d[i];
          if (p < 0 || p >= xd[2 + i]) return;
          xi.push_back(p);
          wi.push_back(k[i]);
        }
        s += x[Flat(xd, xi)] * w[Flat(wd, wi)];
      });
    }
    y[Flat(*yd, o)] = s;
  });
  return y;
}

void CheckConv(DType t, const Dims& xd, const Dims& wd, bool bias, const Window& win, int64_t group,
               AttributeMap attrs = {}, bool ints = false) {
  V x, w, b;
  OwnedTensor X =
      ints ? OwnedTensor::From(t, xd, RandomInts(Prod(xd), 30, -4, 4)) : Rand(t, xd, 30, &x);
  OwnedTensor W =
      ints ? OwnedTensor::From(t, wd, RandomInts(Prod(wd), 31, -4, 4)) : Rand(t, wd, 31, &w);
  OwnedTensor B =
      ints ? OwnedTensor::From(t, {wd[0]}, RandomInts(wd[0], 32, -9, 9)) : Rand(t, {wd[0]}, 32, &b);
  x = X.values(), w = W.values(), b = bias ? B.values() : V{};
  Dims yd;
  const V want = RefConv(x, xd, w, wd, b, win, group, &yd);
  OwnedTensor Y(t, yd);
  attrs["group"] = I(group);
  RunOk("Conv", WindowAttrs(win, attrs), {&X, &W, bias ? &B : nullptr}, {&Y});
  if (t == kF32 || t == kF64) {
    ExpectNear(Y.values(), want);
  } else {
    ExpectRoundedOnce(Y, want);
  }
}

TEST(NnKernels, ConvPadsStridesGroupsDilations) {
  // 2-D with asymmetric pads and strides, a bias; groups and dilations; depthwise; 1-D; 3-D;
  // 1x1 (the GEMM reads X directly) in f64. The CNN case (64x8x28x28 -> 16) is timed below.
  CheckConv(kF32, {2, 3, 9, 8}, {4, 3, 3, 2}, true, {{3, 2}, {2, 1}, {1, 1}, {1, 0, 2, 1}}, 1);
  CheckConv(kF32, {2, 6, 10, 11}, {4, 3, 3, 3}, true, {{3, 3}, {1, 1}, {2, 3}, {2, 1, 2, 3}}, 2);
  CheckConv(kF32, {2, 4, 7, 7}, {4, 1, 3, 3}, false, {{3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}}, 4);
  CheckConv(kF32, {3, 2, 13}, {5, 2, 4}, true, {{4}, {3}, {1}, {2, 1}}, 1);
  CheckConv(kF32, {1, 2, 5, 6, 4}, {3, 2, 2, 3, 2}, true,
            {{2, 3, 2}, {1, 2, 1}, {1, 1, 2}, {0, 1, 1, 1, 0, 0}}, 1);
  CheckConv(kF64, {2, 6, 5, 5}, {8, 3, 1, 1}, true, {{1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}}, 2);
  // auto_pad SAME_*: out = ceil(in / s), total pad (out-1)*s + k - in = 3 in all three cases;
  // SAME_UPPER puts the odd extra at the end, SAME_LOWER at the beginning (the reference gets
  // those pads explicitly).
  CheckConv(kF32, {1, 2, 7, 7}, {3, 2, 4, 4}, false, {{4, 4}, {2, 2}, {1, 1}, {1, 1, 2, 2}}, 1,
            {{"auto_pad", Str("SAME_UPPER")}});
  CheckConv(kF32, {1, 2, 6, 6}, {3, 2, 4, 4}, false, {{4, 4}, {1, 1}, {1, 1}, {2, 2, 1, 1}}, 1,
            {{"auto_pad", Str("SAME_LOWER")}});
  CheckConv(kF32, {1, 2, 6, 6}, {3, 2, 4, 4}, false, {{4, 4}, {1, 1}, {1, 1}, {1, 1, 2, 2}}, 1,
            {{"auto_pad", Str("SAME_UPPER")}});
  // f16/bf16 with small integers: exact fp32 sums (bias included) rounded once.
  CheckConv(kF16, {2, 4, 6, 6}, {6, 2, 3, 3}, true, {{3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}}, 2, {},
            true);
  CheckConv(kBF16, {2, 8, 5, 5}, {4, 8, 3, 3}, true, {{3, 3}, {1, 1}, {1, 1}, {0, 0, 0, 0}}, 1, {},
            true);
}

// Direct transposed convolution:
//   y[n, g*Mg+co, i*s - pad + k*d] += x[n, g*Cg+ci, i] * w[g*Cg+ci, co, k].
TEST(NnKernels, ConvTransposeGroupsStridesPadsOutputPadding) {
  struct Case {
    Dims xd, wd;
    int64_t group;
    Window win;
    Dims opad;
  };
  const std::vector<Case> cases = {
      {{2, 4, 4, 5}, {4, 3, 3, 2}, 2, {{3, 2}, {2, 3}, {1, 2}, {1, 0, 0, 1}}, {1, 2}},
      {{1, 3, 6}, {3, 2, 3}, 1, {{3}, {2}, {1}, {1, 1}}, {1}},
      {{2, 2, 3, 3, 2},
       {2, 2, 2, 2, 2},
       1,
       {{2, 2, 2}, {2, 1, 2}, {1, 1, 1}, {0, 0, 1, 0, 1, 0}},
       {0, 0, 1}}};
  for (const Case& c : cases) {
    V x, w, b;
    OwnedTensor X = Rand(kF32, c.xd, 40, &x), W = Rand(kF32, c.wd, 41, &w);
    const int64_t Cout = c.wd[1] * c.group, Cg = c.xd[1] / c.group, n = c.xd.size() - 2;
    OwnedTensor B = Rand(kF32, {Cout}, 42, &b);
    Dims yd = {c.xd[0], Cout};
    for (int64_t i = 0; i < n; ++i) {
      yd.push_back(c.win.s[i] * (c.xd[2 + i] - 1) + c.opad[i] + (c.win.k[i] - 1) * c.win.d[i] + 1 -
                   c.win.pads[i] - c.win.pads[i + n]);
    }
    V want(Prod(yd));
    for (int64_t i = 0; i < Prod(yd); ++i) want[i] = b[(i / Prod(yd, 2)) % Cout];
    ForEach(c.xd, [&](const Dims& xi) {
      const int64_t g = xi[1] / Cg;
      for (int64_t co = 0; co < c.wd[1]; ++co) {
        ForEach(Dims(c.wd.begin() + 2, c.wd.end()), [&](const Dims& k) {
          Dims yi = {xi[0], g * c.wd[1] + co}, wi = {xi[1], co};
          for (int64_t i = 0; i < n; ++i) {
            const int64_t p = xi[2 + i] * c.win.s[i] - c.win.pads[i] + k[i] * c.win.d[i];
            if (p < 0 || p >= yd[2 + i]) return;
            yi.push_back(p);
            wi.push_back(k[i]);
          }
          want[Flat(yd, yi)] += x[Flat(c.xd, xi)] * w[Flat(c.wd, wi)];
        });
      }
    });
    OwnedTensor Y(kF32, yd);
    RunOk("ConvTranspose",
          WindowAttrs(c.win, {{"group", I(c.group)}, {"output_padding", Ints(c.opad)}}),
          {&X, &W, &B}, {&Y});
    ExpectNear(Y.values(), want);
  }
}

// ------------------------------------------------------------------------------ Pooling

// Direct pooling over [N, C, spatial]: windows o*s - pad + k*d; max skips the padding (-inf),
// average divides by the valid count or, with count_include_pad, by the taps inside the padded
// input. `idx` receives MaxPool's flattened (n*C + c) * prod(spatial) + row-major index.
V RefPool(const V& x, const Dims& xd, const Window& w, bool ceil_mode, bool is_max,
          bool include_pad, Dims* yd, std::vector<int64_t>* idx) {
  const size_t n = xd.size() - 2;
  *yd = {xd[0], xd[1]};
  for (size_t i = 0; i < n; ++i) yd->push_back(OutDim(xd[2 + i], w, i, ceil_mode));
  V y;
  ForEach(*yd, [&](const Dims& o) {
    double best = -INFINITY, sum = 0;
    int64_t count = 0, padded = 0, bi = -1;
    ForEach(w.k, [&](const Dims& k) {
      Dims xi = {o[0], o[1]};
      bool inside = true, in_pad = true;
      for (size_t i = 0; i < n; ++i) {
        const int64_t p = o[2 + i] * w.s[i] - w.pads[i] + k[i] * w.d[i];
        inside = inside && p >= 0 && p < xd[2 + i];
        in_pad = in_pad && p >= -w.pads[i] && p < xd[2 + i] + w.pads[i + n];
        xi.push_back(p);
      }
      padded += in_pad;
      if (!inside) return;
      const double v = x[Flat(xd, xi)];
      if (v > best) best = v, bi = Flat(xd, xi);
      sum += v;
      ++count;
    });
    y.push_back(is_max ? best : sum / (include_pad ? padded : count));
    if (idx) idx->push_back(bi);
  });
  return y;
}

TEST(NnKernels, MaxPoolCeilModeDilationsAndIndices) {
  struct Case {
    Dims xd;
    Window w;
    bool ceil;
  };
  const std::vector<Case> cases = {
      {{2, 3, 7, 8}, {{3, 3}, {2, 2}, {1, 1}, {1, 0, 1, 1}}, true},  // ceil_mode adds a window
      {{2, 2, 9, 9}, {{2, 3}, {2, 1}, {2, 2}, {0, 1, 1, 0}}, false},
      {{1, 2, 11}, {{3}, {3}, {1}, {1, 0}}, true},
      {{1, 2, 4, 5, 6}, {{2, 2, 3}, {2, 2, 2}, {1, 1, 1}, {0, 0, 1, 0, 1, 1}}, false}};
  for (const Case& c : cases) {
    for (DType t : {kF32, kF16, DType::kInt8}) {
      OwnedTensor X = OwnedTensor::From(t, c.xd, RandomInts(Prod(c.xd), 50, -100, 100));
      Dims yd;
      std::vector<int64_t> idx;
      const V want = RefPool(X.values(), c.xd, c.w, c.ceil, true, false, &yd, &idx);
      OwnedTensor Y(t, yd), Ind(kI64, yd);
      RunOk("MaxPool", WindowAttrs(c.w, {{"ceil_mode", I(c.ceil)}}), {&X}, {&Y, &Ind});
      EXPECT_EQ(Y.values(), want);
      // Ties in the integer data resolve to the first tap, like the reference's strict '>'.
      EXPECT_EQ(Ind.values(), V(idx.begin(), idx.end()));
    }
  }
  // storage_order 1: the spatial part of the index is column-major (w * H + h).
  OwnedTensor X = OwnedTensor::From(kF32, {1, 1, 2, 3}, {1, 6, 3, 4, 2, 5}), Y(kF32, {1, 1, 1, 1});
  OwnedTensor Ind(kI64, {1, 1, 1, 1});
  RunOk("MaxPool", {{"kernel_shape", Ints({2, 3})}, {"storage_order", I(1)}}, {&X}, {&Y, &Ind});
  EXPECT_EQ(Y.values(), V({6}));
  EXPECT_EQ(Ind.values(), V({2}));  // (h=0, w=1) -> 1 * 2 + 0
}

TEST(NnKernels, AveragePoolCountIncludePadAndCeilMode) {
  const Dims xd = {2, 3, 7, 6};
  const Window w = {{3, 2}, {2, 2}, {1, 1}, {1, 1, 2, 0}};
  for (int include : {0, 1}) {
    for (int ceil : {0, 1}) {
      for (DType t : {kF32, kBF16}) {
        V x;
        OwnedTensor X = Rand(t, xd, 60, &x);
        Dims yd;
        const V want = RefPool(x, xd, w, ceil, false, include, &yd, nullptr);
        OwnedTensor Y(t, yd);
        RunOk("AveragePool",
              WindowAttrs(w, {{"count_include_pad", I(include)}, {"ceil_mode", I(ceil)}}), {&X},
              {&Y});
        if (t == kF32) {
          ExpectNear(Y.values(), want);
        } else {
          ExpectRoundedOnce(Y, want, 1e-6);
        }
      }
    }
  }
}

TEST(NnKernels, GlobalPools) {
  const Dims xd = {3, 4, 5, 7};
  V x;
  OwnedTensor X = Rand(kF32, xd, 70, &x), A(kF32, {3, 4, 1, 1}), M(kF32, {3, 4, 1, 1});
  RunOk("GlobalAveragePool", {}, {&X}, {&A});
  RunOk("GlobalMaxPool", {}, {&X}, {&M});
  V mean, mx;
  for (int64_t p = 0; p < 12; ++p) {
    double s = 0, m = -INFINITY;
    for (int64_t i = 0; i < 35; ++i) s += x[p * 35 + i], m = std::max(m, x[p * 35 + i]);
    mean.push_back(s / 35);
    mx.push_back(m);
  }
  ExpectNear(A.values(), mean);
  EXPECT_EQ(M.values(), mx);
}

// ------------------------------------------------------------------- Normalisation

// BatchNormalization per the ONNX spec: y = scale * (x - mean) / sqrt(var + eps) + B; training
// mode uses the biased batch statistics and running = input * momentum + batch * (1 - momentum)
// (biased variance too: checked against ONNX's test_batchnorm_*_training_mode data below).
TEST(NnKernels, BatchNormalizationInferenceAndTraining) {
  const Dims xd = {3, 4, 5, 2};
  const int64_t N = 3, C = 4, S = 10;
  for (int training : {0, 1}) {
    for (DType t : {kF32, kF16}) {
      V x, sc, bi, mu, va;
      OwnedTensor X = Rand(t, xd, 80, &x, -2, 3), Sc = Rand(kF32, {C}, 81, &sc);
      OwnedTensor Bi = Rand(kF32, {C}, 82, &bi), Mu = Rand(kF32, {C}, 83, &mu);
      OwnedTensor Va = Rand(kF32, {C}, 84, &va, 0.5, 2);
      OwnedTensor Y(t, xd), RM(kF32, {C}), RV(kF32, {C});
      const double eps = 1e-3, mom = 0.8;
      RunOk("BatchNormalization",
            {{"epsilon", F(1e-3f)}, {"momentum", F(0.8f)}, {"training_mode", I(training)}},
            {&X, &Sc, &Bi, &Mu, &Va}, {&Y, training ? &RM : nullptr, training ? &RV : nullptr});
      V want(x.size()), rm(C), rv(C);
      for (int64_t c = 0; c < C; ++c) {
        double m = mu[c], v = va[c];
        if (training) {
          double s = 0, q = 0;
          for (int64_t n = 0; n < N; ++n)
            for (int64_t i = 0; i < S; ++i) s += x[(n * C + c) * S + i];
          m = s / (N * S);
          for (int64_t n = 0; n < N; ++n)
            for (int64_t i = 0; i < S; ++i) q += std::pow(x[(n * C + c) * S + i] - m, 2);
          v = q / (N * S);
        }
        rm[c] = mu[c] * mom + m * (1 - mom);
        rv[c] = va[c] * mom + v * (1 - mom);
        for (int64_t n = 0; n < N; ++n) {
          for (int64_t i = 0; i < S; ++i) {
            const int64_t k = (n * C + c) * S + i;
            want[k] = sc[c] * (x[k] - m) / std::sqrt(v + eps) + bi[c];
          }
        }
      }
      if (t == kF32) {
        ExpectNear(Y.values(), want, 1e-5, 1e-5);
      } else {
        ExpectRoundedOnce(Y, want, 1e-5);
      }
      if (training) {
        ExpectNear(RM.values(), rm);
        ExpectNear(RV.values(), rv);
      }
    }
  }
}

// LayerNormalization per the ONNX spec (opset 17 function body): Mean = mean(X over the axes
// >= axis), Var = mean((X - Mean)^2), InvStdDev = 1 / sqrt(Var + eps),
// Y = (X - Mean) * InvStdDev * Scale + B.
TEST(NnKernels, LayerNormalizationAxesAndOutputs) {
  struct Case {
    Dims xd;
    int64_t axis;
    Dims sd, bd;
  };
  const std::vector<Case> cases = {
      {{6, 20}, -1, {20}, {20}}, {{3, 4, 5}, 1, {4, 5}, {5}}, {{2, 3, 4}, 0, {1, 4}, {}}};
  for (const Case& c : cases) {
    for (DType t : {kF32, kF64, kBF16}) {
      V x, s, b;
      OwnedTensor X = Rand(t, c.xd, 90, &x, -3, 2), Sc = Rand(t, c.sd, 91, &s);
      OwnedTensor B = Rand(t, c.bd.empty() ? Dims{1} : c.bd, 92, &b);
      const int64_t axis = c.axis < 0 ? c.axis + c.xd.size() : c.axis;
      const int64_t outer = Prod(Dims(c.xd.begin(), c.xd.begin() + axis)), inner = Prod(c.xd, axis);
      Dims sd(c.xd.begin(), c.xd.begin() + axis);
      sd.resize(c.xd.size(), 1);
      OwnedTensor Y(t, c.xd), Mean(kF32, sd), Inv(kF32, sd);
      RunOk("LayerNormalization", {{"axis", I(c.axis)}, {"epsilon", F(1e-2f)}},
            {&X, &Sc, c.bd.empty() ? nullptr : &B}, {&Y, &Mean, &Inv});
      V want(x.size()), wm(outer), wi(outer);
      for (int64_t r = 0; r < outer; ++r) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < inner; ++i) m += x[r * inner + i] / inner;
        for (int64_t i = 0; i < inner; ++i) v += std::pow(x[r * inner + i] - m, 2) / inner;
        wm[r] = m;
        wi[r] = 1 / std::sqrt(v + 1e-2);
        for (int64_t i = 0; i < inner; ++i) {
          const double sv = s[i % Prod(c.sd)], bv = c.bd.empty() ? 0 : b[i % Prod(c.bd)];
          want[r * inner + i] = (x[r * inner + i] - m) * wi[r] * sv + bv;
        }
      }
      if (t == kBF16) {
        ExpectRoundedOnce(Y, want, 1e-5);
      } else {
        ExpectNear(Y.values(), want, 1e-5, 1e-5);
      }
      ExpectNear(Mean.values(), wm, 1e-5, 1e-6);
      ExpectNear(Inv.values(), wi, 1e-5, 1e-6);
    }
  }
}

// Softmax along one axis: exp(x - max) / sum; LogSoftmax: x - max - log(sum).
TEST(NnKernels, SoftmaxAndLogSoftmaxAxes) {
  const Dims xd = {3, 4, 5};
  for (int64_t axis : {-1, 1, 0}) {
    for (DType t : {kF32, kF16}) {
      for (bool log : {false, true}) {
        V x;
        OwnedTensor X = Rand(t, xd, 100, &x, -30, 30), Y(t, xd);  // wide range: needs the max shift
        RunOk(log ? "LogSoftmax" : "Softmax", {{"axis", I(axis)}}, {&X}, {&Y});
        const int64_t a = axis < 0 ? axis + 3 : axis;
        const int64_t outer = Prod(Dims(xd.begin(), xd.begin() + a)), C = xd[a],
                      inner = Prod(xd, a + 1);
        V want(x.size());
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t j = 0; j < inner; ++j) {
            double m = -INFINITY, s = 0;
            for (int64_t c = 0; c < C; ++c) m = std::max(m, x[(o * C + c) * inner + j]);
            for (int64_t c = 0; c < C; ++c) s += std::exp(x[(o * C + c) * inner + j] - m);
            for (int64_t c = 0; c < C; ++c) {
              const double v = x[(o * C + c) * inner + j] - m;
              want[(o * C + c) * inner + j] = log ? v - std::log(s) : std::exp(v) / s;
            }
          }
        }
        if (t == kF32) {
          ExpectNear(Y.values(), want, 1e-5, 1e-6);
        } else {
          ExpectRoundedOnce(Y, want, 1e-5, 1e-7);  // log(sum) ~ 1 carries fp32 error
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------- Losses

// loss_i = -w[y_i] * logp[n, y_i, d] (0 where y_i == ignore_index); none / sum / mean, where mean
// divides by the sum of the weights of the non-ignored labels (ONNX's softmaxcrossentropy.py).
void CheckLoss(bool sce, const Dims& xd, bool weights, bool ignore, const std::string& reduction) {
  const int64_t N = xd[0], C = xd[1], D = Prod(xd, 2);
  V x, w;
  OwnedTensor X = Rand(kF32, xd, 110, &x, -3, 3), W = Rand(kF32, {C}, 111, &w, 0.1, 2);
  V labels = RandomInts(N * D, 112, 0, C - 1);
  labels[0] = labels[3] = -1;  // ignored when ignore_index is given (out of range otherwise)
  if (!ignore) labels[0] = labels[3] = 1;
  Dims ld = {N};
  ld.insert(ld.end(), xd.begin() + 2, xd.end());
  OwnedTensor L = OwnedTensor::From(kI64, ld, labels);
  V logp(x.size());
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t d = 0; d < D; ++d) {
      double m = -INFINITY, s = 0;
      for (int64_t c = 0; c < C; ++c) m = std::max(m, x[(n * C + c) * D + d]);
      for (int64_t c = 0; c < C; ++c) s += std::exp(x[(n * C + c) * D + d] - m);
      for (int64_t c = 0; c < C; ++c) {
        const int64_t k = (n * C + c) * D + d;
        logp[k] = sce ? x[k] - m - std::log(s) : x[k];
      }
    }
  }
  V per(N * D);
  double sum = 0, wsum = 0;
  for (int64_t i = 0; i < N * D; ++i) {
    if (ignore && labels[i] == -1) continue;
    const int64_t y = static_cast<int64_t>(labels[i]);
    const double wy = weights ? w[y] : 1;
    per[i] = -wy * logp[((i / D) * C + y) * D + i % D];
    sum += per[i];
    wsum += wy;
  }
  const V want = reduction == "none" ? per : V{reduction == "sum" ? sum : sum / wsum};
  OwnedTensor Out(kF32, reduction == "none" ? ld : Dims{}), LogP(kF32, xd);
  AttributeMap attrs = {{"reduction", Attribute(reduction)}};
  if (ignore) attrs["ignore_index"] = I(-1);
  std::vector<OwnedTensor*> outs = {&Out};
  if (sce) outs.push_back(&LogP);
  RunOk(sce ? "SoftmaxCrossEntropyLoss" : "NegativeLogLikelihoodLoss", attrs,
        {&X, &L, weights ? &W : nullptr}, outs);
  ExpectNear(Out.values(), want, 1e-5, 1e-6);
  if (sce) ExpectNear(LogP.values(), logp, 1e-5, 1e-6);
}

TEST(NnKernels, SoftmaxCrossEntropyAndNllLosses) {
  for (bool sce : {true, false}) {
    for (const char* red : {"mean", "sum", "none"}) {
      CheckLoss(sce, {8, 10}, false, false, red);
      CheckLoss(sce, {8, 10}, true, true, red);
      CheckLoss(sce, {3, 5, 2, 3}, true, true, red);
      CheckLoss(sce, {3, 5, 4}, false, true, red);
    }
  }
  // A label outside [0, C) that is not ignore_index is an error, never a read out of bounds.
  OwnedTensor X(kF32, {2, 10}), L = OwnedTensor::From(kI64, {2}, {3, 12}), Out(kF32, {});
  Status st = RunKernel("SoftmaxCrossEntropyLoss", {}, {&X, &L}, {&Out});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "label 12 is out of range [0, 10)");
  L = OwnedTensor::From(DType::kInt32, {2}, {-1, 0});
  EXPECT_FALSE(RunKernel("NegativeLogLikelihoodLoss", {}, {&X, &L}, {&Out}).ok());
  EXPECT_TRUE(
      RunKernel("NegativeLogLikelihoodLoss", {{"ignore_index", I(-1)}}, {&X, &L}, {&Out}).ok());
}

// ------------------------------------------------------------------------------- Einsum

TEST(NnKernels, EinsumTwoOperandAndSingleOperand) {
  V a, b;
  OwnedTensor A = Rand(kF32, {2, 3, 4}, 120, &a), B = Rand(kF32, {2, 4, 5}, 121, &b);
  OwnedTensor Y(kF32, {2, 3, 5});
  RunOk("Einsum", {{"equation", Str("bij,bjk->bik")}}, {&A, &B}, {&Y});
  ExpectNear(Y.values(), RefMatMul(a, {2, 3, 4}, b, {2, 4, 5}));
  // "bij,bjk->kib": output permuted; and a label summed out of one operand only ("bij,bjk->ik").
  OwnedTensor P(kF32, {5, 3, 2}), Q(kF32, {3, 5});
  RunOk("Einsum", {{"equation", Str("bij, bjk -> kib")}}, {&A, &B}, {&P});
  RunOk("Einsum", {{"equation", Str("bij,bjk->ik")}}, {&A, &B}, {&Q});
  const V mm = RefMatMul(a, {2, 3, 4}, b, {2, 4, 5});
  V wp(30), wq(15, 0.0);
  for (int64_t bb = 0; bb < 2; ++bb) {
    for (int64_t i = 0; i < 3; ++i) {
      for (int64_t k = 0; k < 5; ++k) {
        wp[(k * 3 + i) * 2 + bb] = mm[(bb * 3 + i) * 5 + k];
        wq[i * 5 + k] += mm[(bb * 3 + i) * 5 + k];
      }
    }
  }
  ExpectNear(P.values(), wp);
  ExpectNear(Q.values(), wq);
  // Implicit output ("ij,jk" -> "ik"), a single-operand sum and transpose.
  OwnedTensor M1 = Rand(kF64, {3, 4}, 122, &a), M2 = Rand(kF64, {4, 2}, 123, &b), R(kF64, {3, 2});
  RunOk("Einsum", {{"equation", Str("ij,jk")}}, {&M1, &M2}, {&R});
  ExpectNear(R.values(), RefMatMul(a, {3, 4}, b, {4, 2}));
  OwnedTensor T(kF64, {4, 3}), Sum(kF64, {3});
  RunOk("Einsum", {{"equation", Str("ij->ji")}}, {&M1}, {&T});
  RunOk("Einsum", {{"equation", Str("ij->i")}}, {&M1}, {&Sum});
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_DOUBLE_EQ(Sum.values()[i], a[i * 4] + a[i * 4 + 1] + a[i * 4 + 2] + a[i * 4 + 3]);
    for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(T.values()[j * 3 + i], a[i * 4 + j]);
  }
  OwnedTensor Sq(kF32, {3, 3}), Diag(kF32, {3});
  EXPECT_EQ(RunKernel("Einsum", {{"equation", Str("ii->i")}}, {&Sq}, {&Diag}).code(),
            StatusCode::kUnimplemented);
}

// -------------------------------------------------------------- ONNX backend test data

// Replays ONNX's backend node tests for these ops: model attributes through the importer,
// inputs and expected outputs from test_data_set_0 (computed by ONNX's numpy references).
TEST(NnKernels, OnnxBackendNodeData) {
  const std::string root = "/usr/share/libonnx-testdata/data/node";
  if (!std::filesystem::exists(root)) GTEST_SKIP() << "libonnx-testdata is not installed";
  const std::vector<std::string> prefixes = {"test_averagepool_",
                                             "test_maxpool_",
                                             "test_basic_conv_",
                                             "test_conv_with_",
                                             "test_convtranspose",
                                             "test_batchnorm_",
                                             "test_layer_normalization_",
                                             "test_softmax_",
                                             "test_logsoftmax_",
                                             "test_nllloss_",
                                             "test_sce_",
                                             "test_gemm_",
                                             "test_matmul_",
                                             "test_einsum_"};
  int ran = 0;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    bool match = false;
    for (const auto& p : prefixes) match = match || name.rfind(p, 0) == 0;
    if (!match || name.find("_expanded") != std::string::npos) continue;
    if (name == "test_convtranspose_with_kernel" || name == "test_einsum_batch_diagonal") continue;
    SCOPED_TRACE(name);
    auto g = ImportOnnxFile((entry.path() / "model.onnx").string());
    ASSERT_TRUE(g.ok()) << g.status().message();
    ASSERT_EQ((*g)->num_nodes(), 1);
    const Node& node = *(*g)->nodes()[0];
    auto load = [&](const std::string& file) {
      auto t = ReadTensorFile((entry.path() / "test_data_set_0" / file).string());
      EXPECT_TRUE(t.ok()) << file;
      OwnedTensor o(t->dtype(), t->dims());
      std::memcpy(o.view().data, t->bytes().data(), t->bytes().size());
      return o;
    };
    std::vector<OwnedTensor> ins, want, outs;
    for (size_t k = 0; k < (*g)->inputs().size(); ++k)
      ins.push_back(load("input_" + std::to_string(k) + ".pb"));
    for (size_t k = 0; k < (*g)->outputs().size(); ++k) {
      want.push_back(load("output_" + std::to_string(k) + ".pb"));
      outs.push_back(OwnedTensor(want.back().view().dtype, want.back().view().dims));
    }
    std::vector<const OwnedTensor*> in_ptrs;
    for (const Value* v : node.inputs()) {
      const OwnedTensor* p = nullptr;
      for (size_t k = 0; k < (*g)->inputs().size(); ++k) {
        if ((*g)->inputs()[k] == v) p = &ins[k];
      }
      in_ptrs.push_back(p);
    }
    std::vector<OwnedTensor*> out_ptrs;
    for (const Value* v : node.outputs()) {
      OwnedTensor* p = nullptr;
      for (size_t k = 0; k < (*g)->outputs().size(); ++k) {
        if ((*g)->outputs()[k] == v) p = &outs[k];
      }
      out_ptrs.push_back(p);
    }
    RunOk(node.op_type(), node.attrs(), in_ptrs, out_ptrs);
    for (size_t k = 0; k < outs.size(); ++k)
      ExpectNear(outs[k].values(), want[k].values(), 1e-5, 1e-5);
    ++ran;
  }
  EXPECT_GE(ran, 150);
}

// ------------------------------------------------------------------------------- Timing

// Run with --gtest_also_run_disabled_tests; prints the best of 100 single calls (2 threads).
double BestMs(const std::function<void()>& fn) {
  double best = 1e30;
  for (int i = 0; i < 100; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(
        best,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

TEST(NnKernelsPerf, DISABLED_GemmAndConvTimings) {
  for (DType t : {kF32, kBF16}) {
    V a, b, c;
    OwnedTensor A = Rand(t, {256, 784}, 1, &a), B = Rand(t, {784, 256}, 2, &b),
                C = Rand(t, {256}, 3, &c);
    OwnedTensor Y(t, {256, 256});
    std::printf("Gemm 256x784 @ 784x256 + bias %s: %.3f ms\n", std::string(DTypeName(t)).c_str(),
                BestMs([&] {
                  RunOk("Gemm", {}, {&A, &B, &C}, {&Y});
                }));
  }
  V x, w, b;
  OwnedTensor X = Rand(kF32, {64, 8, 28, 28}, 4, &x), W = Rand(kF32, {16, 8, 3, 3}, 5, &w);
  OwnedTensor B = Rand(kF32, {16}, 6, &b), Y(kF32, {64, 16, 28, 28});
  std::printf("Conv 64x8x28x28 -> 16, 3x3 pad 1, f32: %.3f ms\n", BestMs([&] {
                RunOk("Conv", {{"pads", Ints({1, 1, 1, 1})}}, {&X, &W, &B}, {&Y});
              }));
  OwnedTensor P(kF32, {64, 16, 14, 14});
  std::printf(
      "MaxPool 2x2/2 on 64x16x28x28 f32: %.3f ms\n", BestMs([&] {
        RunOk("MaxPool", {{"kernel_shape", Ints({2, 2})}, {"strides", Ints({2, 2})}}, {&Y}, {&P});
      }));
}

}  // namespace
}  // namespace ampc::testing
