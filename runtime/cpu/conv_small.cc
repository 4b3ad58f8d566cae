#include "runtime/cpu/conv_small.h"

#include <algorithm>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ampc::cpu::conv_small {
namespace {

constexpr int64_t kLanes = 8;

int64_t RoundUp(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// One sample's input planes, zero-padded: hp = oh + kh - 1 rows of wp floats, wide enough that
// every load the kernels make (16 columns from any tap's start) stays inside the buffer. Only
// the planes' own rectangle is rewritten per sample; the padding stays zero.
struct Padded {
  int64_t hp, wp;
  std::vector<float> buf;
  explicit Padded(const Conv2d& g)
      : hp(g.oh + g.kh - 1),
        wp(RoundUp(g.ow, 2 * kLanes) + g.kw - 1),
        buf(static_cast<size_t>(g.c * hp * wp), 0.0f) {}
  void Fill(const Conv2d& g, const float* xs) {
    for (int64_t c = 0; c < g.c; ++c) {
      for (int64_t r = 0; r < g.h; ++r) {
        std::memcpy(&buf[static_cast<size_t>((c * hp + g.pad_top + r) * wp + g.pad_left)],
                    xs + (c * g.h + r) * g.w, static_cast<size_t>(g.w) * sizeof(float));
      }
    }
  }
};

// Offset in a Padded buffer of tap t = (c * kh + i) * kw + j from its output's position.
std::vector<int64_t> TapOffsets(const Conv2d& g, const Padded& p) {
  std::vector<int64_t> off;
  for (int64_t c = 0; c < g.c; ++c) {
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) off.push_back((c * p.hp + i) * p.wp + j);
    }
  }
  return off;
}

#if defined(__x86_64__)
bool HasAvx2Fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

// A mask of the first n lanes (0 < n <= 8).
__attribute__((target("avx2"))) inline __m256i FirstLanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// out[start .. min(start + 8, end)) = the first lanes of r.
__attribute__((target("avx2"))) inline void StoreLanes(float* out, int64_t start, int64_t end,
                                                       __m256 r) {
  const int64_t n = std::min(kLanes, end - start);
  if (n == kLanes) {
    _mm256_storeu_ps(out + start, r);
  } else if (n > 0) {
    _mm256_maskstore_ps(out + start, FirstLanes(n), r);
  }
}

// Output channels m0 .. m0 + MB - 1 of one sample, output row oh, columns col .. col + 15
// (those below ow are stored).
template <int MB>
__attribute__((target("avx2,fma"))) void ForwardBlock(const Conv2d& g, const Padded& p,
                                                      const int64_t* off, int64_t taps,
                                                      const float* w, const float* b, int64_t m0,
                                                      int64_t oh, int64_t col, float* ys) {
  __m256 acc[MB][2];
  #pragma GCC unroll 8
  for (int mb = 0; mb < MB; ++mb) acc[mb][0] = acc[mb][1] = _mm256_setzero_ps();
  const float* base = p.buf.data() + oh * p.wp + col;
  for (int64_t t = 0; t < taps; ++t) {
    const __m256 v0 = _mm256_loadu_ps(base + off[t]), v1 = _mm256_loadu_ps(base + off[t] + kLanes);
    #pragma GCC unroll 8
    for (int mb = 0; mb < MB; ++mb) {
      const __m256 wv = _mm256_broadcast_ss(w + (m0 + mb) * taps + t);
      acc[mb][0] = _mm256_fmadd_ps(wv, v0, acc[mb][0]);
      acc[mb][1] = _mm256_fmadd_ps(wv, v1, acc[mb][1]);
    }
  }
  #pragma GCC unroll 8
  for (int mb = 0; mb < MB; ++mb) {
    float* out = ys + ((m0 + mb) * g.oh + oh) * g.ow;
    __m256 r0 = acc[mb][0], r1 = acc[mb][1];
    if (b) {
      const __m256 bias = _mm256_set1_ps(b[m0 + mb]);
      r0 = _mm256_add_ps(r0, bias);
      r1 = _mm256_add_ps(r1, bias);
    }
    StoreLanes(out, col, g.ow, r0);
    StoreLanes(out, col + kLanes, g.ow, r1);
  }
}

// Adds to out[0 .. TB) the sums over one sample of dY's channel plane `dym` times taps
// off[0 .. TB) of the Padded input. Columns past ow are masked out of both operands, so that an
// infinity of the input there cannot make 0 * inf.
template <int TB>
__attribute__((target("avx2,fma"))) void WeightGradBlock(const Conv2d& g, const Padded& p,
                                                         const int64_t* off, const float* dym,
                                                         float* out) {
  __m256 acc[TB];
  #pragma GCC unroll 8
  for (int t = 0; t < TB; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    const float* drow = dym + oh * g.ow;
    const float* base = p.buf.data() + oh * p.wp;
    for (int64_t col = 0; col < g.ow; col += kLanes) {
      const int64_t n = std::min(kLanes, g.ow - col);
      if (n == kLanes) {
        const __m256 d = _mm256_loadu_ps(drow + col);
        #pragma GCC unroll 8
        for (int t = 0; t < TB; ++t) {
          acc[t] = _mm256_fmadd_ps(d, _mm256_loadu_ps(base + off[t] + col), acc[t]);
        }
      } else {
        const __m256i mask = FirstLanes(n);
        const __m256 d = _mm256_maskload_ps(drow + col, mask);
        #pragma GCC unroll 8
        for (int t = 0; t < TB; ++t) {
          acc[t] = _mm256_fmadd_ps(d, _mm256_maskload_ps(base + off[t] + col, mask), acc[t]);
        }
      }
    }
  }
  #pragma GCC unroll 8
  for (int t = 0; t < TB; ++t) {
    alignas(32) float l[kLanes];
    _mm256_store_ps(l, acc[t]);
    out[t] += ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
  }
}
#endif

}  // namespace

bool Takes(const Conv2d& g) {
#if defined(__x86_64__)
  return HasAvx2Fma() && g.c >= 1 && g.m >= 1 && g.kh >= 1 && g.kw >= 1 && g.h >= 1 &&
         g.w >= 1 && g.c * g.kh * g.kw <= kMaxTaps && g.kh * g.kw > 1 && g.stride_h == 1 && g.stride_w == 1 &&
         g.dil_h == 1 && g.dil_w == 1 && g.pad_top >= 0 && g.pad_left >= 0 &&
         g.pad_bottom >= 0 && g.pad_right >= 0 &&
         g.oh == g.h + g.pad_top + g.pad_bottom - g.kh + 1 &&
         g.ow == g.w + g.pad_left + g.pad_right - g.kw + 1 && g.oh >= 1 && g.ow >= 1;
#else
  (void)g;
  return false;
#endif
}

bool Forward(const Conv2d& g, const float* x, const float* w, const float* b, float* y,
             ThreadPool* pool) {
  if (!Takes(g)) return false;
#if defined(__x86_64__)
  const int64_t taps = g.c * g.kh * g.kw;
  ParallelFor(pool, g.n, 1, [&](int64_t s0, int64_t s1) {
    Padded p(g);
    const std::vector<int64_t> off = TapOffsets(g, p);
    for (int64_t s = s0; s < s1; ++s) {
      p.Fill(g, x + s * g.c * g.h * g.w);
      float* ys = y + s * g.m * g.oh * g.ow;
      for (int64_t oh = 0; oh < g.oh; ++oh) {
        for (int64_t col = 0; col < g.ow; col += 2 * kLanes) {
          int64_t m = 0;
          for (; m + 4 <= g.m; m += 4) ForwardBlock<4>(g, p, off.data(), taps, w, b, m, oh, col, ys);
          for (; m < g.m; ++m) ForwardBlock<1>(g, p, off.data(), taps, w, b, m, oh, col, ys);
        }
      }
    }
  });
#else
  (void)x, (void)w, (void)b, (void)y, (void)pool;
#endif
  return true;
}

bool WeightGrad(const Conv2d& g, const float* dy, const float* x, float* dw, ThreadPool* pool) {
  if (!Takes(g)) return false;
  const int64_t taps = g.c * g.kh * g.kw, wn = g.m * taps;
  const int64_t chunks = (g.n + kChunk - 1) / kChunk;
  std::vector<float> partial(static_cast<size_t>(chunks * wn), 0.0f);
#if defined(__x86_64__)
  ParallelFor(pool, chunks, 1, [&](int64_t k0, int64_t k1) {
    Padded p(g);
    const std::vector<int64_t> off = TapOffsets(g, p);
    for (int64_t k = k0; k < k1; ++k) {
      for (int64_t s = k * kChunk; s < std::min(g.n, (k + 1) * kChunk); ++s) {
        p.Fill(g, x + s * g.c * g.h * g.w);
        for (int64_t m = 0; m < g.m; ++m) {
          const float* dym = dy + (s * g.m + m) * g.oh * g.ow;
          float* out = partial.data() + k * wn + m * taps;
          int64_t t = 0;
          for (; t + 8 <= taps; t += 8) WeightGradBlock<8>(g, p, off.data() + t, dym, out + t);
          for (; t < taps; ++t) WeightGradBlock<1>(g, p, off.data() + t, dym, out + t);
        }
      }
    }
  });
#else
  (void)dy, (void)x, (void)pool;
#endif
  if (chunks == 0) {
    std::fill(dw, dw + wn, 0.0f);
    return true;
  }
  std::memcpy(dw, partial.data(), static_cast<size_t>(wn) * sizeof(float));
  for (int64_t k = 1; k < chunks; ++k) {
    for (int64_t i = 0; i < wn; ++i) dw[i] += partial[static_cast<size_t>(k * wn + i)];
  }
  return true;
}

}  // namespace ampc::cpu::conv_small
