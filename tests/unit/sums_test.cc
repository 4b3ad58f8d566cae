// sums::SumOf's f32 AVX2 path (runtime/cpu/sums.cc) against the portable loop it stands in
// for: SumOf<double> of the same values widened (exactly) must give the same bits, at lengths
// with and without a tail, and on values spread over 2^-40 .. 2^40 so that any change of order
// shows in the rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "runtime/cpu/sums.h"

namespace ampc::cpu {
namespace {

TEST(Sums, F32SumIsThePortableSumBitForBit) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> mant(-1, 1);
  std::uniform_int_distribution<int> ex(-40, 40);
  for (int64_t n : {64, 65, 71, 72, 100, 784, 1000, 4099}) {
    std::vector<float> f(static_cast<size_t>(n));
    for (float& v : f) v = static_cast<float>(std::ldexp(mant(rng), ex(rng)));
    std::vector<double> d(f.begin(), f.end());
    const double got = sums::SumOf(f.data(), n), want = sums::SumOf(d.data(), n);
    EXPECT_EQ(std::memcmp(&got, &want, sizeof got), 0) << "n " << n << ": " << got << " vs " << want;
  }
}

}  // namespace
}  // namespace ampc::cpu
