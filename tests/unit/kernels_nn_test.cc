// CPU NN kernels (runtime/cpu/kernels_nn.cc, kernels_conv.cc, kernels_norm.cc, gemm.cc).
// Expected values come from naive float64 references written below from the ONNX operator spec
// formulas (direct nested-loop convolution, pooling, softmax, normalisation, losses), on random
// data with fixed seeds; half cases check that each output is the f64 reference rounded once;
// the last test replays ONNX's own backend test data (Debian's libonnx-testdata).
// This file: GEMM entry point, MatMul/Gemm, convolutions and pooling.
#include "ir/op_registry.h"
#include "tests/unit/kernels_nn_test_util.h"

namespace ampc::testing {
namespace {

using namespace nn;  // NOLINT: test helpers

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

// com.ampc::MatMul (the MatMul gradient's product): transA / transB read A / B with the last two
// axes swapped. Reference: numpy-style matmul (RefMatMul, f64) of explicitly transposed copies.
TEST(NnKernels, AmpcMatMulReadsOperandsTransposed) {
  auto swapped = [](const V& v, const Dims& d) {  // the last two axes swapped
    const int64_t r = d[d.size() - 2], c = d.back(), n = static_cast<int64_t>(v.size()) / (r * c);
    V out(v.size());
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t i = 0; i < r; ++i) {
        for (int64_t j = 0; j < c; ++j) out[b * r * c + j * r + i] = v[b * r * c + i * c + j];
      }
    }
    return out;
  };
  auto swap_dims = [](Dims d) {
    std::swap(d[d.size() - 1], d[d.size() - 2]);
    return d;
  };
  // (A as stored, B as stored, transA, transB, Y): broadcast batches, shared B, batched both.
  const std::vector<std::tuple<Dims, Dims, int, int, Dims>> cases = {
      {{7, 5}, {7, 3}, 1, 0, {5, 3}},
      {{5, 7}, {3, 7}, 0, 1, {5, 3}},
      {{7, 5}, {3, 7}, 1, 1, {5, 3}},
      {{2, 3, 4, 6}, {3, 5, 6}, 0, 1, {2, 3, 4, 5}},
      {{2, 3, 6, 4}, {6, 5}, 1, 0, {2, 3, 4, 5}},
      {{4, 6, 9}, {4, 6, 2}, 1, 0, {4, 9, 2}}};
  for (DType t : {kF32, kF64}) {
    for (const auto& [ad, bd, ta, tb, yd] : cases) {
      V a, b;
      OwnedTensor A = Rand(t, ad, 30, &a), B = Rand(t, bd, 31, &b), Y(t, yd);
      const Status st = RunKernelInDomain(
          kAmpcDomain, "MatMul", {{"transA", I(ta)}, {"transB", I(tb)}}, {&A, &B}, {&Y}, Pool());
      ASSERT_TRUE(st.ok()) << st.message();
      ExpectNear(Y.values(), RefMatMul(ta ? swapped(a, ad) : a, ta ? swap_dims(ad) : ad,
                                       tb ? swapped(b, bd) : b, tb ? swap_dims(bd) : bd));
    }
  }
  // bf16 with integer values: exact fp32 sums rounded once.
  const V a = RandomInts(2 * 40 * 3, 32, -9, 9), b = RandomInts(5 * 40, 33, -9, 9);
  OwnedTensor A = OwnedTensor::From(kBF16, {2, 40, 3}, a), B = OwnedTensor::From(kBF16, {5, 40}, b);
  OwnedTensor Y(kBF16, {2, 3, 5});
  ASSERT_TRUE(RunKernelInDomain(kAmpcDomain, "MatMul", {{"transA", I(1)}, {"transB", I(1)}},
                                {&A, &B}, {&Y}, Pool())
                  .ok());
  ExpectRoundedOnce(Y, RefMatMul(swapped(a, {2, 40, 3}), {2, 3, 40}, swapped(b, {5, 40}), {40, 5}));
  // A transposed operand of rank 1 is an error.
  OwnedTensor v(kF32, {4}), M(kF32, {4, 2}), Yv(kF32, {2});
  EXPECT_EQ(
      RunKernelInDomain(kAmpcDomain, "MatMul", {{"transA", I(1)}}, {&v, &M}, {&Yv}, Pool()).code(),
      StatusCode::kInvalidArgument);
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
  // oneDNN's path (f32/bf16, 8+ input channels, wider than 1x1; dnnl_conv.h): a batch of 35 is a
  // full chunk and a partial one; strides, dilations and asymmetric pads; bf16 with a bias.
  CheckConv(kF32, {35, 8, 7, 6}, {16, 8, 3, 3}, true, {{3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}}, 1);
  CheckConv(kF32, {3, 16, 11, 9}, {8, 16, 3, 2}, true, {{3, 2}, {2, 1}, {2, 1}, {1, 0, 2, 1}}, 1);
  CheckConv(kBF16, {33, 16, 6, 6}, {8, 16, 3, 3}, true, {{3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}}, 1,
            {}, true);
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

}  // namespace
}  // namespace ampc::testing
