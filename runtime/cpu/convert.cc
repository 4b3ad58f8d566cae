#include "runtime/cpu/convert.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace ampc::cpu {

namespace {

#if defined(__x86_64__)
bool HasF16c() {
  // CPUID leaf 1, ECX bit 29 (bit_F16C): clang 14's __builtin_cpu_supports has no "f16c".
  static const bool has = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) && __builtin_cpu_supports("avx2");
  }();
  return has;
}
bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

// Blocks of 8 with a NaN fall back to the scalar conversion, so NaN payloads come out exactly as
// ir/float16.h writes them (the hardware quiets signalling NaNs differently).
__attribute__((target("avx2,f16c"))) void FloatToHalfF16c(const float* src, uint16_t* dst,
                                                          int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(src + i);
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0) {
      for (int k = 0; k < 8; ++k) dst[i + k] = FloatToHalfBits(src[i + k]);
      continue;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) dst[i] = FloatToHalfBits(src[i]);
}

__attribute__((target("avx2,f16c"))) void HalfToFloatF16c(const uint16_t* src, float* dst,
                                                          int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    // Exponent all ones = inf or NaN: the scalar path keeps NaN payloads bit for bit.
    const __m128i e = _mm_and_si128(h, _mm_set1_epi16(0x7c00));
    const __m128i nan = _mm_andnot_si128(
        _mm_cmpeq_epi16(_mm_and_si128(h, _mm_set1_epi16(0x03ff)), _mm_setzero_si128()),
        _mm_cmpeq_epi16(e, _mm_set1_epi16(0x7c00)));
    if (_mm_movemask_epi8(nan) != 0) {
      for (int k = 0; k < 8; ++k) dst[i + k] = HalfBitsToFloat(src[i + k]);
      continue;
    }
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) dst[i] = HalfBitsToFloat(src[i]);
}

// bfloat16 in AVX2 integer arithmetic: the same round-to-nearest-even and quiet-NaN rule as
// FloatToBFloat16Bits, 16 values per iteration.
__attribute__((target("avx2"))) inline __m256i Bf16Of8(__m256i x) {
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
  const __m256i rounded =
      _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff)),
                                         _mm256_set1_epi32(0x7f800000));
  const __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
  return _mm256_blendv_epi8(rounded, qnan, nan);
}

__attribute__((target("avx2"))) void FloatToBFloat16Avx2(const float* src, uint16_t* dst,
                                                         int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i a = Bf16Of8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
    const __m256i b = Bf16Of8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 8)));
    // packus works per 128-bit lane; the permute restores element order.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), packed);
  }
  for (; i < n; ++i) dst[i] = FloatToBFloat16Bits(src[i]);
}

__attribute__((target("avx2"))) void BFloat16ToFloatAvx2(const uint16_t* src, float* dst,
                                                         int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i w =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_slli_epi32(w, 16));
  }
  for (; i < n; ++i) dst[i] = BFloat16BitsToFloat(src[i]);
}
#endif

}  // namespace

void HalfToFloatN(const uint16_t* src, float* dst, int64_t n) {
#if defined(__x86_64__)
  if (HasF16c()) return HalfToFloatF16c(src, dst, n);
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = HalfBitsToFloat(src[i]);
}

void FloatToHalfN(const float* src, uint16_t* dst, int64_t n) {
#if defined(__x86_64__)
  if (HasF16c()) return FloatToHalfF16c(src, dst, n);
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = FloatToHalfBits(src[i]);
}

void BFloat16ToFloatN(const uint16_t* src, float* dst, int64_t n) {
#if defined(__x86_64__)
  if (HasAvx2()) return BFloat16ToFloatAvx2(src, dst, n);
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = BFloat16BitsToFloat(src[i]);
}

void FloatToBFloat16N(const float* src, uint16_t* dst, int64_t n) {
#if defined(__x86_64__)
  if (HasAvx2()) return FloatToBFloat16Avx2(src, dst, n);
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = FloatToBFloat16Bits(src[i]);
}

void LoadFloats(const TensorView& v, int64_t offset, int64_t n, float* dst) {
  switch (v.dtype) {
    case DType::kFloat32:
      std::memcpy(dst, v.as<const float>() + offset, n * sizeof(float));
      return;
    case DType::kFloat16:
      HalfToFloatN(v.as<const uint16_t>() + offset, dst, n);
      return;
    case DType::kBFloat16:
      BFloat16ToFloatN(v.as<const uint16_t>() + offset, dst, n);
      return;
    default:
      for (int64_t i = 0; i < n; ++i) dst[i] = Load<float>(v, offset + i);
  }
}

void StoreFloats(const float* src, int64_t n, TensorView& v, int64_t offset) {
  switch (v.dtype) {
    case DType::kFloat32:
      std::memcpy(v.as<float>() + offset, src, n * sizeof(float));
      return;
    case DType::kFloat16:
      FloatToHalfN(src, v.as<uint16_t>() + offset, n);
      return;
    case DType::kBFloat16:
      FloatToBFloat16N(src, v.as<uint16_t>() + offset, n);
      return;
    default:
      for (int64_t i = 0; i < n; ++i) Store<float>(v, offset + i, src[i]);
  }
}

}  // namespace ampc::cpu
