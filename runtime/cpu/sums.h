// Sums for normalisation kernels and their gradients: double accumulation in 8 independent
// partial sums (no serial dependency chain, so the loops pipeline and vectorise; error like a
// pairwise sum's). Shared by kernels_norm.cc and kernels_grad.cc.
#pragma once

#include <cstdint>
#include <type_traits>

namespace ampc::cpu::sums {

// SumOf for f32 on an AVX2 CPU (sums.cc): the same 8 partial sums, two 4-double vectors wide,
// so the same bits. False where the CPU has no AVX2.
bool SumOfF32Avx2(const float* p, int64_t n, double* sum);

// Sum of p[0..n) in double with 8 independent partial sums (no serial dependency chain):
// partial j sums the elements i = j (mod 8) in order; the partials are added pairwise.
template <typename T>
double SumOf(const T* p, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    double sum;
    if (n >= 64 && SumOfF32Avx2(p, n, &sum)) return sum;
  }
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += p[i + j];
  }
  for (; i < n; ++i) acc[i & 7] += p[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Sum of (p[i] - mean)^2 in double, likewise.
template <typename T>
double SumSqDev(const T* p, int64_t n, double mean) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) {
      const double d = p[i + j] - mean;
      acc[j] += d * d;
    }
  }
  for (; i < n; ++i) {
    const double d = p[i] - mean;
    acc[i & 7] += d * d;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// sum(dy) and sum(dy * (x - mean)) over n elements, in one pass.
template <typename T>
void SumDyAndDyDev(const T* dy, const T* x, int64_t n, double mean, double* sdy, double* sdyx) {
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) {
      const double g = dy[i + j];
      a[j] += g;
      b[j] += g * (x[i + j] - mean);
    }
  }
  for (; i < n; ++i) {
    const double g = dy[i];
    a[i & 7] += g;
    b[i & 7] += g * (x[i] - mean);
  }
  *sdy += ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  *sdyx += ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
}

}  // namespace ampc::cpu::sums
