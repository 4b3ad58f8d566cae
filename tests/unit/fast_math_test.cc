// runtime/cpu/fast_math.h against libm evaluated in double (the reference).
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/cpu/fast_math.h"

namespace ampc::cpu {
namespace {

double UlpOf(float f) { return std::nextafter(std::fabs(f), INFINITY) - std::fabs(f); }

TEST(FastMath, ExpWithinTwoUlpAcrossTheRange) {
  double worst = 0;
  for (float x = -87.0f; x < 88.0f; x += 0.000731f) {
    const double ref = std::exp(static_cast<double>(x));
    const float got = FastExp(x);
    worst = std::max(worst, std::fabs(got - ref) / UlpOf(static_cast<float>(ref)));
  }
  EXPECT_LE(worst, 2.0);
  EXPECT_EQ(FastExp(0.0f), 1.0f);
  EXPECT_EQ(FastExp(-1000.0f), FastExp(-87.33654f));  // clamped, no NaN
  EXPECT_TRUE(std::isfinite(FastExp(1000.0f)));
}

TEST(FastMath, ErfWithinTwoTenthsOfAMillionthEverywhere) {
  double worst_abs = 0, worst_rel_small = 0;
  for (float x = -6.0f; x < 6.0f; x += 0.0001237f) {
    const double ref = std::erf(static_cast<double>(x));
    const float got = FastErf(x);
    worst_abs = std::max(worst_abs, std::fabs(got - ref));
    if (std::fabs(x) <= 1.0f && x != 0.0f) worst_rel_small = std::max(worst_rel_small, std::fabs(got - ref) / std::fabs(ref));
  }
  EXPECT_LE(worst_abs, 2e-7);
  EXPECT_LE(worst_rel_small, 3e-7);  // the series branch keeps relative accuracy near 0
  EXPECT_EQ(FastErf(0.0f), 0.0f);
  EXPECT_EQ(FastErf(1e-30f) / 1e-30f, 1.12837917f);  // slope 2/sqrt(pi) at 0
  EXPECT_EQ(FastErf(-10.0f), -1.0f);
  EXPECT_EQ(FastErf(INFINITY), 1.0f);
  EXPECT_TRUE(std::isnan(FastErf(NAN)));
}

}  // namespace
}  // namespace ampc::cpu
