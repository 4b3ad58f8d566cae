// ir/float_math.h against double-precision libm (glibc's exp/erf/tanh in double, then the
// distance in float ulps): a strided sweep over every float bit pattern (every 97th, and every
// one when AMPC_EXHAUSTIVE=1 is set: ~4 minutes on 2 cores), plus the special values. The bounds
// are the ones the exhaustive run measured (exp 1.06, erf 1.19, tanh 1.36 ulp), rounded up.
#include "ir/float_math.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>

#include "codegen/mlir_text.h"

namespace ampc {
namespace {

// |got - ref| in units of the float spacing at ref (the subnormal spacing below 2^-126).
double UlpError(float got, double ref) {
  const double a = std::fabs(ref);
  int e = 0;
  std::frexp(a, &e);  // a in [2^(e-1), 2^e)
  const double ulp = std::ldexp(1.0, std::max(e - 1, -126) - 23);
  return std::fabs(static_cast<double>(got) - ref) / ulp;
}

struct Sweep {
  double worst = 0;
  float worst_x = 0;
  int64_t wrong_special = 0;
};

template <typename Fn, typename Ref>
Sweep SweepAll(Fn fn, Ref ref) {
  const char* ex = std::getenv("AMPC_EXHAUSTIVE");
  const uint64_t stride = ex && *ex == '1' ? 1 : 97;
  Sweep s;
  for (uint64_t i = 0; i < (uint64_t{1} << 32); i += stride) {
    const float x = std::bit_cast<float>(static_cast<uint32_t>(i));
    const float got = fn(x);
    const double want = ref(static_cast<double>(x));
    if (std::isnan(x) || std::isinf(static_cast<float>(want)) || std::isinf(got)) {
      const bool same = std::isnan(x) ? std::isnan(got) : got == static_cast<float>(want);
      s.wrong_special += same ? 0 : 1;
      continue;
    }
    const double err = UlpError(got, want);
    if (err > s.worst) s.worst = err, s.worst_x = x;
  }
  return s;
}

TEST(FloatMath, ExpWithinOneUlpAndAHalf) {
  const Sweep s = SweepAll([](float x) { return fmath::Exp(x); }, [](double x) { return std::exp(x); });
  EXPECT_LE(s.worst, 1.1) << "at x = " << s.worst_x;
  EXPECT_EQ(s.wrong_special, 0);
}

TEST(FloatMath, ErfWithinOneUlpAndAQuarter) {
  const Sweep s = SweepAll([](float x) { return fmath::Erf(x); }, [](double x) { return std::erf(x); });
  EXPECT_LE(s.worst, 1.25) << "at x = " << s.worst_x;
  EXPECT_EQ(s.wrong_special, 0);
}

TEST(FloatMath, TanhWithinOneUlpAndAHalf) {
  const Sweep s =
      SweepAll([](float x) { return fmath::Tanh(x); }, [](double x) { return std::tanh(x); });
  EXPECT_LE(s.worst, 1.4) << "at x = " << s.worst_x;
  EXPECT_EQ(s.wrong_special, 0);
}

TEST(FloatMath, SpecialValues) {  // IEEE / C99 Annex F values
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(fmath::Exp(0.0f), 1.0f);
  EXPECT_EQ(fmath::Exp(-inf), 0.0f);
  EXPECT_EQ(fmath::Exp(inf), inf);
  EXPECT_EQ(fmath::Exp(88.8f), inf);   // e^88.8 > FLT_MAX
  EXPECT_EQ(fmath::Exp(-104.0f), 0.0f);  // below half the smallest subnormal
  EXPECT_EQ(fmath::Exp(-103.9f), std::numeric_limits<float>::denorm_min());
  for (float (*f)(float) : {+[](float x) { return fmath::Exp(x); },
                            +[](float x) { return fmath::Erf(x); },
                            +[](float x) { return fmath::Tanh(x); }}) {
    EXPECT_TRUE(std::isnan(f(nan)));
    EXPECT_TRUE(std::isnan(f(-nan)));
  }
  EXPECT_EQ(std::bit_cast<uint32_t>(fmath::Erf(-0.0f)), 0x80000000u);  // odd: -0 stays -0
  EXPECT_EQ(std::bit_cast<uint32_t>(fmath::Tanh(-0.0f)), 0x80000000u);
  EXPECT_EQ(fmath::Erf(inf), 1.0f);
  EXPECT_EQ(fmath::Erf(-inf), -1.0f);
  EXPECT_EQ(fmath::Tanh(inf), 1.0f);
  EXPECT_EQ(fmath::Tanh(-inf), -1.0f);
  EXPECT_EQ(fmath::Erf(3.92f), 1.0f);  // erf(3.92) = 1 - 1.6e-8 rounds to 1
}

// The emitter writes one SSA line per policy operation, in the order the C++ evaluates them:
// count the lines against the operations a counting policy sees.
struct CountF32 {
  using F = float;
  using I = int32_t;
  using M = bool;
  int ops = 0;
  F C(float v) { return ++ops, v; }
  F Add(F x, F y) { return ++ops, x + y; }
  F Sub(F x, F y) { return ++ops, x - y; }
  F Mul(F x, F y) { return ++ops, x * y; }
  F Div(F x, F y) { return ++ops, x / y; }
  F Neg(F x) { return ++ops, -x; }
  F Abs(F x) { return ++ops, std::fabs(x); }
  F Fma(F x, F y, F z) { return ++ops, std::fma(x, y, z); }
  F MaxNum(F x, F y) { return ++ops, fmath::ScalarF32::MaxNum(x, y); }
  F MinNum(F x, F y) { return ++ops, fmath::ScalarF32::MinNum(x, y); }
  M Lt(F x, F y) { return ++ops, x < y; }
  M Ge(F x, F y) { return ++ops, x >= y; }
  M IsNan(F x) { return ++ops, x != x; }
  F Select(M c, F x, F y) { return ++ops, c ? x : y; }
  I ToInt(F x) { return ++ops, static_cast<I>(x); }
  I IC(int32_t v) { return ++ops, v; }
  I IAdd(I x, I y) { return ++ops, x + y; }
  I ISub(I x, I y) { return ++ops, x - y; }
  I IShr(I x, int k) { return ops += 2, x >> k; }  // the shift amount is a constant line
  I IShl(I x, int k) { return ops += 2, static_cast<I>(static_cast<uint32_t>(x) << k); }
  F BitsToF(I x) { return ++ops, std::bit_cast<float>(x); }
};

TEST(FloatMath, EmitterWritesOneLinePerOperation) {
  for (int which = 0; which < 3; ++which) {
    CountF32 c;
    const float v = which == 0 ? fmath::Exp(c, 0.3f) : which == 1 ? fmath::Erf(c, 0.3f)
                                                                  : fmath::Tanh(c, 0.3f);
    EXPECT_EQ(std::bit_cast<uint32_t>(v),
              std::bit_cast<uint32_t>(which == 0   ? fmath::Exp(0.3f)
                                      : which == 1 ? fmath::Erf(0.3f)
                                                   : fmath::Tanh(0.3f)));
    std::string text;
    mlir_text::BodyWriter w(&text);
    const std::string x = w.F32(0.3f);
    const std::string r = which == 0   ? mlir_text::Exp(w, x)
                          : which == 1 ? mlir_text::Erf(w, x)
                                       : mlir_text::Tanh(w, x);
    const int lines = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    EXPECT_EQ(lines - 1, c.ops) << text;  // less the line defining x
    EXPECT_NE(text.find(r + " = "), std::string::npos);
    EXPECT_NE(text.find("llvm.intr.fma"), std::string::npos);
    EXPECT_EQ(text.find("math.exp"), std::string::npos);  // no libm call
  }
}

}  // namespace
}  // namespace ampc
