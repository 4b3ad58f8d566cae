// Exhaustive tests of the f16 / bf16 conversions in ir/float16.h.
//
// References, each independent of ir/float16.h:
//  - CUDA's host-side conversions (__half2float, __float2half_rn, __bfloat162float,
//    __float2bfloat16_rn from <cuda_fp16.h> / <cuda_bf16.h>) when the unit tests are built with
//    the CUDA include directory (AMPC_TEST_HAVE_CUDA_HEADERS); skipped otherwise;
//  - numpy (float16 casts) run by /usr/bin/python3, and for bf16, which numpy lacks, a nearest-
//    value search written in the same Python script (distances to the two bf16 neighbours of
//    each float32, computed exactly in float64); skipped when python3 or numpy is missing;
//  - in-test definitions: decoding the bit fields with std::ldexp, and the "nearest value, ties
//    to even" property checked through the neighbours of each result.
// Both CUDA references return one canonical NaN, so NaN results are compared by NaN-ness only
// (numpy keeps the sign, so there the sign is compared too); ir/float16.h's own NaN promises
// (quiet, sign kept) are checked separately.
#include "ir/float16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "runtime/cpu/convert.h"
#include "tests/unit/test_util.h"

#ifdef AMPC_TEST_HAVE_CUDA_HEADERS
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace ampc {
namespace {

constexpr int kRandomCount = 10'000'000;
constexpr uint32_t kSeed = 20240611;

// ---- the two formats, decoded from their fields ---------------------------------------------

struct Format {
  const char* name;
  int man_bits;  // stored mantissa bits: 10 (f16), 7 (bf16)
  int exp_bits;  // 5, 8
  uint16_t (*to_bits)(float);
  float (*to_float)(uint16_t);
  uint16_t inf() const { return static_cast<uint16_t>(((1u << exp_bits) - 1) << man_bits); }
  uint16_t max_finite() const { return static_cast<uint16_t>(inf() - 1); }
  bool IsNaN(uint16_t b) const { return (b & 0x7fffu) > inf(); }
  // The value of a non-NaN pattern (inf -> infinity) from its sign, exponent and mantissa.
  double Value(uint16_t b) const {
    const int bias = (1 << (exp_bits - 1)) - 1;
    const int e = (b >> man_bits) & ((1 << exp_bits) - 1);
    const int m = b & ((1 << man_bits) - 1);
    double v;
    if (e == 0)
      v = std::ldexp(m, 1 - bias - man_bits);
    else if (e == (1 << exp_bits) - 1)
      v = std::numeric_limits<double>::infinity();
    else
      v = std::ldexp(m + (1 << man_bits), e - bias - man_bits);
    return (b & 0x8000u) ? -v : v;
  }
  // The value the next pattern up from max_finite would have if the exponent did not saturate.
  double Beyond() const { return std::ldexp(1.0, 1 << (exp_bits - 1)); }
  // |x| at or above this rounds to infinity: the midpoint of max_finite and Beyond().
  double OverflowThreshold() const { return (Value(max_finite()) + Beyond()) / 2; }
};

const Format kHalf{"f16", 10, 5, FloatToHalfBits, HalfBitsToFloat};
const Format kBF16{"bf16", 7, 8, FloatToBFloat16Bits, BFloat16BitsToFloat};

float Up(float f) { return std::nextafter(f, std::numeric_limits<float>::infinity()); }
float Down(float f) { return std::nextafter(f, -std::numeric_limits<float>::infinity()); }

// Floats to convert: every value of the format, every midpoint of neighbours (ties) and the
// floats one ulp either side, sweeps around the overflow threshold and through the subnormal
// range, and special values; both signs.
std::vector<float> Probes(const Format& fmt) {
  std::vector<float> v;
  auto both = [&v](float f) {
    v.push_back(f);
    v.push_back(-f);
  };
  for (uint32_t b = 0; b <= fmt.max_finite(); ++b) {
    const double lo = fmt.Value(static_cast<uint16_t>(b));
    const double hi =
        b == fmt.max_finite() ? fmt.Beyond() : fmt.Value(static_cast<uint16_t>(b + 1));
    const float mid = static_cast<float>((lo + hi) / 2);  // exact: needs one more bit
    both(static_cast<float>(lo));
    both(mid);
    both(Up(mid));
    both(Down(mid));
  }
  auto sweep = [&](double center, int ulps) {
    float f = static_cast<float>(center);
    for (int i = 0; i < ulps; ++i) f = Down(f);
    for (int i = 0; i < 2 * ulps + 1 && std::isfinite(f); ++i, f = Up(f)) both(f);
  };
  sweep(fmt.Value(fmt.max_finite()), 4096);
  sweep(fmt.OverflowThreshold(), 4096);
  sweep(std::min(fmt.Beyond(), double{std::numeric_limits<float>::max()}), 4096);
  // The subnormal range of the format and a binade either side, every 251st float.
  const int bias = (1 << (fmt.exp_bits - 1)) - 1;
  const uint32_t lo_bits =
      FloatToBits(static_cast<float>(std::ldexp(1.0, 1 - bias - fmt.man_bits - 2)));
  const uint32_t hi_bits = FloatToBits(static_cast<float>(std::ldexp(1.0, 1 - bias + 1)));
  for (uint32_t b = lo_bits; b <= hi_bits; b += 251) both(BitsToFloat(b));
  for (float f : {0.0f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::max(),
                  std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min(),
                  BitsToFloat(0x7fc00000u), BitsToFloat(0x7f800001u), BitsToFloat(0x7fbfffffu),
                  BitsToFloat(0x7fffffffu), BitsToFloat(0x7f80ffffu)}) {
    both(f);
  }
  return v;
}

std::vector<float> RandomFloats(int n) {
  std::mt19937 gen(kSeed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = BitsToFloat(static_cast<uint32_t>(gen()));
  return v;
}

// Compares `got` with the reference bits `want` for input x; NaN by NaN-ness (and sign if asked).
struct Mismatches {
  int64_t count = 0;
  std::string first;
  void Check(const Format& fmt, float x, uint16_t got, uint16_t want, bool nan_sign) {
    bool ok;
    if (fmt.IsNaN(want)) {
      ok = fmt.IsNaN(got) && (!nan_sign || (got & 0x8000u) == (want & 0x8000u));
    } else {
      ok = got == want;
    }
    if (!ok) Fail(fmt, x, got, want);
  }
  // want < 0: no reference value (a property failed).
  void Fail(const Format& fmt, float x, uint16_t got, int want) {
    if (count++ < 8) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "\n  %s: float %a (bits %08x) -> %04x", fmt.name,
                    static_cast<double>(x), FloatToBits(x), got);
      first += buf;
      if (want >= 0) std::snprintf(buf, sizeof buf, ", reference %04x", want);
      first += want >= 0 ? buf : ", not the nearest-even value";
    }
  }
};

// Same-NaN-or-equal comparison of two floats (NaN-ness and, if asked, sign).
bool SameFloat(float a, float b, bool nan_sign) {
  if (std::isnan(a) || std::isnan(b)) {
    return std::isnan(a) && std::isnan(b) && (!nan_sign || std::signbit(a) == std::signbit(b));
  }
  return FloatToBits(a) == FloatToBits(b);
}

// ---- references needing nothing outside this file --------------------------------------------

TEST(Float16Conversion, DecodeAllPatternsMatchesFieldFormula) {
  for (const Format* fmt : {&kHalf, &kBF16}) {
    for (uint32_t b = 0; b < 65536; ++b) {
      const auto h = static_cast<uint16_t>(b);
      const float f = fmt->to_float(h);
      if (fmt->IsNaN(h)) {
        ASSERT_TRUE(std::isnan(f)) << fmt->name << " " << b;
        ASSERT_EQ(std::signbit(f), (b & 0x8000u) != 0) << fmt->name << " " << b;
      } else {
        ASSERT_EQ(static_cast<double>(f), fmt->Value(h)) << fmt->name << " " << b;
        ASSERT_EQ(std::signbit(f), (b & 0x8000u) != 0) << fmt->name << " " << b;  // -0.0 too
      }
    }
  }
}

TEST(Float16Conversion, EveryValueRoundTripsAndNaNStaysQuietNaN) {
  for (const Format* fmt : {&kHalf, &kBF16}) {
    const uint16_t quiet = static_cast<uint16_t>(1u << (fmt->man_bits - 1));
    for (uint32_t b = 0; b < 65536; ++b) {
      const auto h = static_cast<uint16_t>(b);
      const uint16_t back = fmt->to_bits(fmt->to_float(h));
      if (fmt->IsNaN(h)) {
        EXPECT_TRUE(fmt->IsNaN(back) && (back & quiet) && (back & 0x8000u) == (h & 0x8000u))
            << fmt->name << " NaN " << b << " -> " << back;
      } else {
        ASSERT_EQ(back, h) << fmt->name;
      }
    }
    // float NaNs (quiet and signalling, both signs) become quiet NaNs of the same sign.
    for (uint32_t nan : {0x7fc00000u, 0x7f800001u, 0x7fbfffffu, 0x7fffffffu, 0x7f802000u}) {
      for (uint32_t sign : {0u, 0x80000000u}) {
        const uint16_t r = fmt->to_bits(BitsToFloat(nan | sign));
        EXPECT_TRUE(fmt->IsNaN(r) && (r & quiet) && ((r & 0x8000u) != 0) == (sign != 0))
            << fmt->name << " " << std::hex << (nan | sign) << " -> " << r;
      }
    }
  }
}

// Round(x) is the nearest representable value, ties to even; overflow -> inf exactly from the
// threshold (the midpoint of the largest finite value and the next power of two) upward.
void CheckNearest(const Format& fmt, float x, Mismatches& bad) {
  const uint16_t r = fmt.to_bits(x);
  const auto sign = static_cast<uint16_t>(std::signbit(x) ? 0x8000u : 0u);
  bool ok;
  if (std::isnan(x)) {
    ok = fmt.IsNaN(r);
  } else if (std::fabs(double{x}) >= fmt.OverflowThreshold()) {
    ok = r == (sign | fmt.inf());
  } else {
    const uint16_t mag = r & 0x7fffu;
    ok = (r & 0x8000u) == sign && mag <= fmt.max_finite();
    if (ok) {
      const double ax = std::fabs(double{x}), d = std::fabs(ax - fmt.Value(mag));
      if (mag > 0) {
        const double dn = ax - fmt.Value(static_cast<uint16_t>(mag - 1));
        ok = d < dn || (d == dn && (mag & 1) == 0);
      }
      const double up =
          mag == fmt.max_finite() ? fmt.Beyond() : fmt.Value(static_cast<uint16_t>(mag + 1));
      const double du = up - ax;
      ok = ok && (d < du || (d == du && (mag & 1) == 0));
    }
  }
  if (!ok) bad.Fail(fmt, x, r, -1);  // no reference value: the property failed
}

TEST(Float16Conversion, RoundingIsNearestEvenOnProbesAndRandomFloats) {
  const std::vector<float> random = RandomFloats(kRandomCount / 4);
  for (const Format* fmt : {&kHalf, &kBF16}) {
    Mismatches bad;
    for (float x : Probes(*fmt)) CheckNearest(*fmt, x, bad);
    for (float x : random) CheckNearest(*fmt, x, bad);
    EXPECT_EQ(bad.count, 0) << fmt->name
                            << " results that are not the nearest-even value:" << bad.first;
  }
}

// ---- CUDA's host-side conversions ---------------------------------------------------------------

#ifdef AMPC_TEST_HAVE_CUDA_HEADERS
uint16_t CudaToHalf(float f) {
  const __half_raw r = __float2half_rn(f);
  return r.x;
}
float CudaFromHalf(uint16_t b) {
  __half_raw r;
  r.x = b;
  return __half2float(__half(r));
}
uint16_t CudaToBF16(float f) {
  const __nv_bfloat16_raw r = __float2bfloat16_rn(f);
  return r.x;
}
float CudaFromBF16(uint16_t b) {
  __nv_bfloat16_raw r;
  r.x = b;
  return __bfloat162float(__nv_bfloat16(r));
}
#define AMPC_REQUIRE_CUDA_HEADERS() (void)0
#else
#define AMPC_REQUIRE_CUDA_HEADERS()                                                          \
  GTEST_SKIP() << "CUDA headers (<cuda_fp16.h>, <cuda_bf16.h>) not available: the unit "     \
                  "tests were built without the CUDA toolkit, so the CUDA-reference checks " \
                  "are skipped (the numpy and in-test references still run)"
#endif

TEST(Float16Cuda, DecodeAllPatterns) {
  AMPC_REQUIRE_CUDA_HEADERS();
#ifdef AMPC_TEST_HAVE_CUDA_HEADERS
  for (uint32_t b = 0; b < 65536; ++b) {
    const auto h = static_cast<uint16_t>(b);
    ASSERT_TRUE(SameFloat(HalfBitsToFloat(h), CudaFromHalf(h), false)) << "f16 " << b;
    ASSERT_TRUE(SameFloat(BFloat16BitsToFloat(h), CudaFromBF16(h), false)) << "bf16 " << b;
  }
#endif
}

TEST(Float16Cuda, EncodeProbesAndRandomFloats) {
  AMPC_REQUIRE_CUDA_HEADERS();
#ifdef AMPC_TEST_HAVE_CUDA_HEADERS
  const std::vector<float> random = RandomFloats(kRandomCount);
  for (const Format* fmt : {&kHalf, &kBF16}) {
    auto ref = fmt == &kHalf ? CudaToHalf : CudaToBF16;
    Mismatches bad;
    for (float x : Probes(*fmt)) bad.Check(*fmt, x, fmt->to_bits(x), ref(x), false);
    for (float x : random) bad.Check(*fmt, x, fmt->to_bits(x), ref(x), false);
    EXPECT_EQ(bad.count, 0) << fmt->name << " differences from CUDA:" << bad.first;
  }
#endif
}

// ---- numpy --------------------------------------------------------------------------------------

// With CUDA's reference present, numpy sees fewer random floats (test time); without it, all.
#ifdef AMPC_TEST_HAVE_CUDA_HEADERS
constexpr int kNumpyRandomCount = 2'000'000;
#else
constexpr int kNumpyRandomCount = kRandomCount;
#endif

constexpr const char* kNumpyScript = R"PY(
import sys
try:
    import numpy as np
except Exception:
    sys.exit(77)
d = sys.argv[1]
allbits = np.arange(65536, dtype=np.uint32)
allbits.astype(np.uint16).view(np.float16).astype(np.float32).tofile(d + '/f16_all.bin')
(allbits << 16).view(np.float32).tofile(d + '/bf16_all.bin')
def value(b):
    e = ((b >> 23) & 0xff).astype(np.int32)
    m = (b & 0x7fffff).astype(np.float64)
    return np.where(e == 0, np.ldexp(m, -149), np.ldexp(m + 2.0**23, np.maximum(e, 1) - 150))
# bf16: of the two bf16 magnitudes around |x| (x's top 16 bits, and one more), the nearer one;
# on a tie the even one. Values as float64 (exact); the pattern past the largest finite value
# stands for 2**128, so overflowing values end on 0x7f80 = inf.
def to_bf16(x):
    bits = x.view(np.uint32)
    sign = (bits >> 16) & 0x8000
    mag = bits & 0x7fffffff
    lo = mag & 0xffff0000
    hi = lo + 0x10000
    v = value(mag)
    dlo, dhi = v - value(lo), value(hi) - v
    lo_even = ((lo >> 16) & 1) == 0
    pick = np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(lo_even, lo, hi)))
    out = (pick >> 16) | sign
    out = np.where(mag > 0x7f800000, 0x7fc0 | sign, out)
    out = np.where(mag == 0x7f800000, 0x7f80 | sign, out)
    return out.astype(np.uint16)
x = np.fromfile(d + '/in.bin', dtype=np.float32)
to_f16 = np.empty(x.size, dtype=np.uint16)
to_b = np.empty(x.size, dtype=np.uint16)
step = 1 << 20
with np.errstate(all='ignore'):
    for i in range(0, x.size, step):
        to_f16[i:i + step] = x[i:i + step].astype(np.float16).view(np.uint16)
        to_b[i:i + step] = to_bf16(x[i:i + step])
to_f16.tofile(d + '/to_f16.bin')
to_b.tofile(d + '/to_bf16.bin')
)PY";

template <typename T>
std::vector<T> ReadArray(const std::string& path) {
  const std::string bytes = testing::ReadBytes(path);
  std::vector<T> v(bytes.size() / sizeof(T));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
  return v;
}

TEST(Float16Numpy, AllPatternsProbesAndRandomFloats) {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 with numpy not available: numpy-reference check skipped";
  }
  std::vector<float> in = Probes(kHalf);
  const std::vector<float> bf = Probes(kBF16), random = RandomFloats(kNumpyRandomCount);
  in.insert(in.end(), bf.begin(), bf.end());
  in.insert(in.end(), random.begin(), random.end());
  testing::TempDir tmp;
  testing::WriteBytes(tmp / "in.bin", std::string(reinterpret_cast<const char*>(in.data()),
                                                  in.size() * sizeof(float)));
  testing::WriteBytes(tmp / "ref.py", kNumpyScript);
  const std::string cmd = "/usr/bin/python3 " + (tmp / "ref.py") + " " + tmp.path();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  const auto f16_all = ReadArray<float>(tmp / "f16_all.bin");
  const auto bf16_all = ReadArray<float>(tmp / "bf16_all.bin");
  ASSERT_EQ(f16_all.size(), 65536u);
  ASSERT_EQ(bf16_all.size(), 65536u);
  for (uint32_t b = 0; b < 65536; ++b) {
    const auto h = static_cast<uint16_t>(b);
    ASSERT_TRUE(SameFloat(HalfBitsToFloat(h), f16_all[b], true)) << "f16 " << b;
    ASSERT_TRUE(SameFloat(BFloat16BitsToFloat(h), bf16_all[b], true)) << "bf16 " << b;
  }
  const auto to_f16 = ReadArray<uint16_t>(tmp / "to_f16.bin");
  const auto to_bf16 = ReadArray<uint16_t>(tmp / "to_bf16.bin");
  ASSERT_EQ(to_f16.size(), in.size());
  ASSERT_EQ(to_bf16.size(), in.size());
  Mismatches bad_half, bad_bf16;
  for (size_t i = 0; i < in.size(); ++i) {
    bad_half.Check(kHalf, in[i], FloatToHalfBits(in[i]), to_f16[i], true);
    bad_bf16.Check(kBF16, in[i], FloatToBFloat16Bits(in[i]), to_bf16[i], true);
  }
  EXPECT_EQ(bad_half.count, 0) << "differences from numpy float16:" << bad_half.first;
  EXPECT_EQ(bad_bf16.count, 0) << "differences from the Python bf16 reference:" << bad_bf16.first;
}

}  // namespace
}  // namespace ampc

// The vectorised bulk conversions (runtime/cpu/convert.h: F16C/AVX2 when present) must agree bit
// for bit with the scalar ones above: every 16-bit pattern, and fp32 patterns sampled across the
// whole 32-bit space (every 257th, odd stride so all exponents and mantissa residues appear)
// plus every fp16 rounding tie and NaN with payloads, in odd lengths so the scalar tails run too.
namespace ampc {
namespace {

TEST(BulkConvert, SixteenBitPatternsWidenLikeTheScalarPath) {
  std::vector<uint16_t> all(65536 + 3);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
  std::vector<float> a(all.size()), b(all.size());
  cpu::HalfToFloatN(all.data(), a.data(), static_cast<int64_t>(all.size()));
  for (size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(FloatToBits(a[i]), FloatToBits(HalfBitsToFloat(all[i]))) << "f16 " << all[i];
  }
  cpu::BFloat16ToFloatN(all.data(), b.data(), static_cast<int64_t>(all.size()));
  for (size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(FloatToBits(b[i]), FloatToBits(BFloat16BitsToFloat(all[i]))) << "bf16 " << all[i];
  }
}

TEST(BulkConvert, Fp32PatternsNarrowLikeTheScalarPath) {
  std::vector<float> src;
  for (uint64_t x = 0; x <= 0xffffffffu; x += 257)
    src.push_back(BitsToFloat(static_cast<uint32_t>(x)));
  for (uint32_t h = 0; h < 0x7c00;
       ++h) {  // every fp16 tie (halfway between neighbours) and +-1 ulp
    const uint32_t mid = (FloatToBits(HalfBitsToFloat(static_cast<uint16_t>(h))) +
                          FloatToBits(HalfBitsToFloat(static_cast<uint16_t>(h + 1)))) /
                         2;
    for (uint32_t d : {mid - 1, mid, mid + 1}) {
      src.push_back(BitsToFloat(d));
      src.push_back(-BitsToFloat(d));
    }
  }
  for (uint32_t nan : {0x7f800001u, 0x7fc00000u, 0xffc12345u, 0x7fa00000u})
    src.push_back(BitsToFloat(nan));
  src.push_back(1.0f);  // an odd length
  std::vector<uint16_t> h(src.size()), b(src.size());
  cpu::FloatToHalfN(src.data(), h.data(), static_cast<int64_t>(src.size()));
  cpu::FloatToBFloat16N(src.data(), b.data(), static_cast<int64_t>(src.size()));
  for (size_t i = 0; i < src.size(); ++i) {
    ASSERT_EQ(h[i], FloatToHalfBits(src[i])) << "f32 bits " << FloatToBits(src[i]);
    ASSERT_EQ(b[i], FloatToBFloat16Bits(src[i])) << "f32 bits " << FloatToBits(src[i]);
  }
}

}  // namespace
}  // namespace ampc
