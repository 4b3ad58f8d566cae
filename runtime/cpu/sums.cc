#include "runtime/cpu/sums.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ampc::cpu::sums {
namespace {

#if defined(__x86_64__)
bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

__attribute__((target("avx2"))) double SumAvx2(const float* p, int64_t n) {
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();  // partials 0-3 and 4-7
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(p + i);
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  alignas(32) double acc[8];
  _mm256_store_pd(acc, lo);
  _mm256_store_pd(acc + 4, hi);
  for (; i < n; ++i) acc[i & 7] += p[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
#endif

}  // namespace

bool SumOfF32Avx2(const float* p, int64_t n, double* sum) {
#if defined(__x86_64__)
  if (!HasAvx2()) return false;
  *sum = SumAvx2(p, n);
  return true;
#else
  (void)p, (void)n, (void)sum;
  return false;
#endif
}

}  // namespace ampc::cpu::sums
