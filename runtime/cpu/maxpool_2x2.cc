#include "runtime/cpu/maxpool_2x2.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ampc::cpu::window {
namespace {

// One window's taps (row 0 left, right; row 1 left, right), scalar: the tail of a row.
float MaxOf4(const float (&v)[4]) {
  float best = -std::numeric_limits<float>::infinity();
  bool nan = false;
  for (const float t : v) {
    best = t > best ? t : best;
    nan |= t != t;
  }
  return nan ? std::numeric_limits<float>::quiet_NaN() : best;
}
int FirstMaxOf4(const float (&v)[4]) {
  float best = v[0];
  int k = 0;
  for (int j = 1; j < 4; ++j) {
    if (v[j] > best || (v[j] != v[j] && best == best)) {
      best = v[j];
      k = j;
    }
  }
  return k;
}

// The first window of the next 8-window vector of a row ow_n >= 8 windows wide, after the one
// at ow: whole vectors, then one that ends at the row's end and overlaps its predecessor (the
// windows are disjoint, so it rewrites the same values), so that no row of 8 or more windows
// takes the scalar loop (the fixture CNN's 14-window rows had 6 of them scalar).
inline int64_t NextVector(int64_t ow, int64_t ow_n) {
  if (ow + 8 >= ow_n) return ow_n;  // the row is done
  return std::min(ow + 8, ow_n - 8);
}

#if defined(__x86_64__)
bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

// The even and odd elements of p[0..16): the left and right taps of 8 windows.
__attribute__((target("avx2"))) inline void Taps(const float* p, __m256* left, __m256* right) {
  const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
  // shuffle gives [a0 a2 b0 b2 | a4 a6 b4 b6]; the 64-bit permute (0, 2, 1, 3) puts it in order.
  *left = _mm256_castpd_ps(
      _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xd8));
  *right = _mm256_castpd_ps(
      _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xdd)), 0xd8));
}

// p[0..16) = left and right interleaved (the inverse of Taps).
__attribute__((target("avx2"))) inline void Interleave(__m256 left, __m256 right, float* p) {
  const __m256 lo = _mm256_unpacklo_ps(left, right), hi = _mm256_unpackhi_ps(left, right);
  _mm256_storeu_ps(p, _mm256_permute2f128_ps(lo, hi, 0x20));
  _mm256_storeu_ps(p + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}

__attribute__((target("avx2"))) void MaxPoolAvx2(const float* x, const Geometry& g, float* y) {
  const int64_t w = g.in[2], oh_n = g.out[1], ow_n = g.out[2];
  const __m256 nan = _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN());
  for (int64_t oh = 0; oh < oh_n; ++oh) {
    const float* r0 = x + 2 * oh * w;
    const float* r1 = r0 + w;
    float* out = y + oh * ow_n;
    int64_t ow = 0;
    for (; ow < ow_n && ow_n >= 8; ow = NextVector(ow, ow_n)) {
      __m256 t[4];
      Taps(r0 + 2 * ow, &t[0], &t[1]);
      Taps(r1 + 2 * ow, &t[2], &t[3]);
      __m256 best = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
      __m256 any_nan = _mm256_setzero_ps();
      for (const __m256 v : t) {
        best = _mm256_blendv_ps(best, v, _mm256_cmp_ps(v, best, _CMP_GT_OQ));
        any_nan = _mm256_or_ps(any_nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
      }
      _mm256_storeu_ps(out + ow, _mm256_blendv_ps(best, nan, any_nan));
    }
    for (; ow < ow_n; ++ow) {
      out[ow] = MaxOf4({r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]});
    }
  }
}

__attribute__((target("avx2"))) void MaxPoolGradAvx2(const float* x, const float* dy,
                                                     const Geometry& g, float* dx) {
  const int64_t h = g.in[1], w = g.in[2], oh_n = g.out[1], ow_n = g.out[2];
  if (2 * oh_n < h || 2 * ow_n < w) std::fill(dx, dx + h * w, 0.0f);  // taps no window has
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t oh = 0; oh < oh_n; ++oh) {
    const float* r0 = x + 2 * oh * w;
    const float* r1 = r0 + w;
    float* d0 = dx + 2 * oh * w;
    float* d1 = d0 + w;
    const float* grad = dy + oh * ow_n;
    int64_t ow = 0;
    for (; ow < ow_n && ow_n >= 8; ow = NextVector(ow, ow_n)) {
      __m256 t[4];
      Taps(r0 + 2 * ow, &t[0], &t[1]);
      Taps(r1 + 2 * ow, &t[2], &t[3]);
      __m256 best = t[0];
      __m256i k = _mm256_setzero_si256();
      for (int j = 1; j < 4; ++j) {
        const __m256 nan_over_number = _mm256_and_ps(_mm256_cmp_ps(t[j], t[j], _CMP_UNORD_Q),
                                                     _mm256_cmp_ps(best, best, _CMP_ORD_Q));
        const __m256 take = _mm256_or_ps(_mm256_cmp_ps(t[j], best, _CMP_GT_OQ), nan_over_number);
        best = _mm256_blendv_ps(best, t[j], take);
        k = _mm256_blendv_epi8(k, _mm256_set1_epi32(j), _mm256_castps_si256(take));
      }
      const __m256 s = _mm256_add_ps(zero, _mm256_loadu_ps(grad + ow));
      __m256 o[4];
      for (int j = 0; j < 4; ++j) {
        o[j] = _mm256_and_ps(s, _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, _mm256_set1_epi32(j))));
      }
      Interleave(o[0], o[1], d0 + 2 * ow);
      Interleave(o[2], o[3], d1 + 2 * ow);
    }
    for (; ow < ow_n; ++ow) {
      const int k = FirstMaxOf4({r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]});
      const float s = 0.0f + grad[ow];
      d0[2 * ow] = k == 0 ? s : 0.0f;
      d0[2 * ow + 1] = k == 1 ? s : 0.0f;
      d1[2 * ow] = k == 2 ? s : 0.0f;
      d1[2 * ow + 1] = k == 3 ? s : 0.0f;
    }
  }
}
#endif

}  // namespace

bool MaxPool2x2Plane(const float* x, const Geometry& g, float* y) {
#if defined(__x86_64__)
  if (HasAvx2()) {
    MaxPoolAvx2(x, g, y);
    return true;
  }
#endif
  (void)x, (void)g, (void)y;
  return false;
}

bool MaxPoolGrad2x2Plane(const float* x, const float* dy, const Geometry& g, float* dx) {
#if defined(__x86_64__)
  if (HasAvx2()) {
    MaxPoolGradAvx2(x, dy, g, dx);
    return true;
  }
#endif
  (void)x, (void)dy, (void)g, (void)dx;
  return false;
}

}  // namespace ampc::cpu::window
