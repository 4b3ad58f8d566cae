// Branch-free float exp and erf that g++ can vectorise (the libm calls cannot be), for the
// fp32 compute path of the elementwise kernels. Accuracy, checked against libm in double by
// tests/unit/fast_math_test.cc: exp within 2 ulp on [-87, 88]; erf within 2e-7 absolute
// (about 2 ulp near 1) everywhere. f64 kernels keep using libm.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace ampc::cpu {

// e^x = 2^k * e^r with k = round(x / ln 2) and |r| <= ln(2)/2; e^r by its Taylor polynomial to
// r^7 (truncation error below 2^-25 relative); 2^k assembled in the exponent bits.
inline float FastExp(float x) {
  const float xin = x;
  x = x < -87.33654f ? -87.33654f : x;
  x = x > 88.72283f ? 88.72283f : x;
  const float t = x * 1.44269504088896341f;
  const int32_t k = static_cast<int32_t>(t + std::copysign(0.5f, t));
  const float kf = static_cast<float>(k);
  const float r = (x - kf * 0.693359375f) + kf * 2.12194440e-4f;  // ln 2 split in two parts
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^k, with k in [-126, 128]; 2^128 only for x at the top of the range, split to stay finite.
  const int32_t k1 = k / 2, k2 = k - k1;
  const uint32_t b1 = static_cast<uint32_t>(k1 + 127) << 23, b2 = static_cast<uint32_t>(k2 + 127) << 23;
  float s1, s2;
  std::memcpy(&s1, &b1, 4);
  std::memcpy(&s2, &b2, 4);
  const float y = p * s1 * s2;
  return xin != xin ? xin : y;  // NaN in, NaN out (the clamp above would hide it)
}

// erf: for |x| <= 1 its Maclaurin series to x^21 (alternating, remainder below 1.1e-9); above,
// 1 - erfc with erfc(a) = poly(t) e^(-a^2), t = 1 / (1 + 0.3275911 a) (Abramowitz & Stegun
// 7.1.26, absolute error below 1.5e-7); |x| >= 4 gives +-1 (erfc(4) < 2^-25).
inline float FastErf(float x) {
  const float a = std::fabs(x);
  const float z = a * a;
  // 2/sqrt(pi) * (-1)^n / (n! (2n + 1)), n = 10 down to 0, in Horner form over z = x^2.
  float s = 1.480719282e-08f;
  s = s * z + -1.636584469e-07f;
  s = s * z + 1.646211437e-06f;
  s = s * z + -1.492565036e-05f;
  s = s * z + 1.205533298e-04f;
  s = s * z + -8.548327023e-04f;
  s = s * z + 5.223977625e-03f;
  s = s * z + -2.686617065e-02f;
  s = s * z + 1.128379167e-01f;
  s = s * z + -3.761263890e-01f;
  s = s * z + 1.128379167e+00f;
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  float q = 1.061405429f;
  q = q * t + -1.453152027f;
  q = q * t + 1.421413741f;
  q = q * t + -0.284496736f;
  q = q * t + 0.254829592f;
  const float big = 1.0f - q * t * FastExp(-z);
  const float y = a <= 1.0f ? s * a : (a >= 4.0f ? 1.0f : big);
  return x != x ? x : std::copysign(y, x);
}

}  // namespace ampc::cpu
