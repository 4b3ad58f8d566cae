// Shared references and helpers for the CPU NN kernel tests (kernels_nn*_test.cc).
#pragma once

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

namespace ampc::testing::nn {

using V = std::vector<double>;
using Dims = std::vector<int64_t>;
inline constexpr DType kF32 = DType::kFloat32, kF64 = DType::kFloat64, kF16 = DType::kFloat16,
                       kBF16 = DType::kBFloat16, kI64 = DType::kInt64;

inline cpu::ThreadPool* Pool() {
  static cpu::ThreadPool pool(2);
  return &pool;
}
inline Attribute I(int64_t v) { return Attribute(v); }
inline Attribute F(float v) { return Attribute(v); }
inline Attribute Ints(std::vector<int64_t> v) { return Attribute(std::move(v)); }
inline Attribute Str(const char* s) { return Attribute(std::string(s)); }

inline int64_t Prod(const Dims& d, size_t b = 0) {
  int64_t p = 1;
  for (size_t i = b; i < d.size(); ++i) p *= d[i];
  return p;
}
inline V Random(int64_t n, uint32_t seed, double lo = -1, double hi = 1) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  V v(n);
  for (double& x : v) x = u(g);
  return v;
}
inline V RandomInts(int64_t n, uint32_t seed, int lo, int hi) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> u(lo, hi);
  V v(n);
  for (double& x : v) x = u(g);
  return v;
}
// A random tensor; returns the stored (already rounded) values through `vals`.
inline OwnedTensor Rand(DType t, const Dims& d, uint32_t seed, V* vals, double lo = -1,
                        double hi = 1) {
  OwnedTensor o = OwnedTensor::From(t, d, Random(Prod(d), seed, lo, hi));
  *vals = o.values();
  return o;
}

inline void ExpectNear(const V& got, const V& want, double rtol = 1e-5, double atol = 1e-6) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], atol + rtol * std::fabs(want[i])) << "element " << i;
  }
}

// The value of type t nearest to v (ties to even), found among the neighbours of the float
// rounding so that no double rounding is involved.
inline double RoundOnce(DType t, double v) {
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
inline void ExpectRoundedOnce(const OwnedTensor& got, const V& want, double slack = 0,
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

inline void RunOk(const std::string& op, const AttributeMap& attrs,
                  std::vector<const OwnedTensor*> in, std::vector<OwnedTensor*> out) {
  Status st = RunKernel(op, attrs, std::move(in), std::move(out), Pool());
  ASSERT_TRUE(st.ok()) << st.message();
}

// Row-major flat index of `idx` in `dims`.
inline int64_t Flat(const Dims& dims, const Dims& idx) {
  int64_t f = 0;
  for (size_t i = 0; i < dims.size(); ++i) f = f * dims[i] + idx[i];
  return f;
}
// Calls fn(idx) for every index of `dims` in row-major order.
inline void ForEach(const Dims& dims, const std::function<void(const Dims&)>& fn) {
  if (Prod(dims) == 0) return;
  Dims idx(dims.size(), 0);
  for (;;) {
    fn(idx);
    size_t j = dims.size();
    while (j > 0 && ++idx[j - 1] == dims[j - 1]) idx[--j] = 0;
    if (j == 0) return;
  }
}

inline V RefMatMul(const V& a, Dims ad, const V& b, Dims bd) {
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

}  // namespace ampc::testing::nn
