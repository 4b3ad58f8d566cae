// Stateless counter-based random numbers for dropout masks: Uniform01(key, i) is a pure function
// of (seed, counter, i), so any element of any step's mask can be regenerated on its own — by
// another thread, by the backward pass, or by a GPU kernel (only 64-bit integer arithmetic, no
// generator state to carry between calls or devices).
//
// The mixing function is the output function of SplitMix64 (Steele, Lea & Flood, "Fast
// Splittable Pseudorandom Number Generators", OOPSLA 2014; the constants are Stafford's "Mix13"
// variant that java.util.SplittableRandom and Vigna's splitmix64.c use): a bijection on 64-bit
// words whose sequence Mix64(k + n * golden) passes BigCrush. A (seed, counter) pair selects the
// starting point k of that sequence through two further mixes; element i takes its (i+1)-th
// output and keeps the top 53 bits as a double in [0, 1).
#pragma once

#include <cstdint>

namespace ampc::cpu {

inline constexpr uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ull;  // 2^64 / golden ratio, odd

constexpr uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The stream of one (seed, counter) pair. Mixing each half before combining keeps nearby seeds
// and nearby counters (step 0, 1, 2, ...) from selecting nearby points of the sequence.
constexpr uint64_t CounterRngKey(uint64_t seed, uint64_t counter) {
  return Mix64(Mix64(seed + kGoldenGamma) ^ Mix64(~counter * kGoldenGamma));
}

// u(seed, counter, i) in [0, 1), with 53 random bits.
constexpr double Uniform01(uint64_t key, uint64_t i) {
  return static_cast<double>(Mix64(key + (i + 1) * kGoldenGamma) >> 11) * 0x1.0p-53;
}

}  // namespace ampc::cpu
