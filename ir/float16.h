// Exact conversions between float and the two 16-bit float formats, as bit patterns.
// float -> half/bfloat16 rounds to nearest, ties to even (what CUDA's __float2half_rn and
// __float2bfloat16_rn do); subnormals and infinities are kept; NaN stays a quiet NaN.
// half/bfloat16 -> float is exact. Inline because the CPU runtime converts in its inner loops.
#pragma once

#include <cstdint>
#include <cstring>

namespace ampc {

inline float BitsToFloat(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
inline uint32_t FloatToBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

inline float HalfBitsToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  if (em >= 0x7c00u) return BitsToFloat(sign | 0x7f800000u | ((em & 0x3ffu) << 13));  // inf, NaN
  if (em >= 0x0400u) return BitsToFloat(sign | ((em + ((127 - 15) << 10)) << 13));    // normal
  const float sub = static_cast<float>(em) * 5.9604644775390625e-08f;  // em * 2^-24, exact
  return sign ? -sub : sub;
}

inline float BFloat16BitsToFloat(uint16_t b) { return BitsToFloat(static_cast<uint32_t>(b) << 16); }

inline uint16_t FloatToHalfBits(float f) {
  const uint32_t x = FloatToBits(f);
  const uint32_t sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xffu;
  uint32_t mant = x & 0x7fffffu;
  if (exp == 0xff) return static_cast<uint16_t>(sign | (mant ? 0x7e00u : 0x7c00u));
  const int e = static_cast<int>(exp) - 127 + 15;  // biased half exponent
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {                                       // half subnormal (or zero)
    if (e < -10) return static_cast<uint16_t>(sign);  // at most half the smallest subnormal
    mant |= 0x800000u;                                // the implicit bit
    const int shift = 14 - e;                         // 14..24
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (h & 1))) ++h;  // may carry into the normals
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;  // a carry to exponent 31 is infinity
  return static_cast<uint16_t>(sign | h);
}

inline uint16_t FloatToBFloat16Bits(float f) {
  // Branch-free (a select, not a jump) so conversion loops vectorise.
  const uint32_t x = FloatToBits(f);
  const uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (x >> 16) | 0x40u;
  return static_cast<uint16_t>((x & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

// Rounds a float to the nearest half / bfloat16 value and back (what storing in 16 bits does).
inline float RoundToHalf(float f) { return HalfBitsToFloat(FloatToHalfBits(f)); }
inline float RoundToBFloat16(float f) { return BFloat16BitsToFloat(FloatToBFloat16Bits(f)); }

}  // namespace ampc
