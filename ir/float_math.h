// exp, erf and tanh in fp32, written once as straight-line arithmetic (fma, +, -, *, /, compares,
// selects, NaN-ignoring min/max and a bit cast for 2^n) over an "arithmetic" policy A:
//
//   - ScalarF32 below computes them in C++ (the per-op CPU kernels, via Exp/Erf/Tanh(float));
//   - codegen's MLIR emitter (codegen/mlir_text.h, MlirF32) writes the same operations, in the
//     same order, as arith/math ops (and llvm.intr.fma) of a generated kernel, CPU and GPU.
//
// Every operation is IEEE-754 binary32 with round-to-nearest-even, fma is fused (one rounding) on
// every target, and nothing is reassociated or contracted (the project builds with
// -ffp-contract=off; the kernel compiler disables FP-op fusion), so a per-op kernel and a
// generated kernel give the same bits on every machine, without a call into libm: the loops
// vectorise. Accuracy against double-precision libm, measured over every float
// (tests/unit/float_math_test.cc): exp 1.06 ulp, erf 1.19 ulp, tanh 1.36 ulp; NaN in, NaN out.
//
// The polynomial coefficients were fitted here (minimax by Lawson's iteration in float64 against
// math.exp / math.erf / math.erfc / math.tanh, then rounded to float); see docs/ARCHITECTURE.md.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace ampc::fmath {

// c[0] * t^n + ... + c[n] by Horner's rule with fma (highest degree first).
template <class A, size_t N>
typename A::F Horner(A& a, const typename A::F& t, const float (&c)[N]) {
  typename A::F p = a.C(c[0]);
  for (size_t i = 1; i < N; ++i) p = a.Fma(p, t, a.C(c[i]));
  return p;
}

// An odd function from its branches: `small` where |x| < edge (and for NaN), else `big`
// (computed for |x|) with the sign of x.
template <class A>
typename A::F OddJoin(A& a, const typename A::F& x, const typename A::F& ax, float edge,
                      const typename A::F& small, const typename A::F& big) {
  const typename A::F signed_big = a.Select(a.Lt(x, a.C(0.0f)), a.Neg(big), big);
  return a.Select(a.Ge(ax, a.C(edge)), signed_big, small);
}

// exp(x): x = n ln2 + r with |r| <= ln2/2 (n rounded with the 1.5 * 2^23 trick), e^r by a
// degree-6 polynomial, times 2^n built from exponent bits in two halves (so that results in the
// subnormal range are rounded once and overflow gives +inf). x is clamped to [-104, 89] first:
// below, e^x rounds to 0; above, to +inf.
template <class A>
typename A::F Exp(A& a, typename A::F x) {
  using F = typename A::F;
  const F xc = a.MinNum(a.MaxNum(x, a.C(-104.0f)), a.C(89.0f));
  const F shift = a.C(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const F t = a.Sub(a.Fma(xc, a.C(1.44269502162933349609375f), shift), shift);
  const F nt = a.Neg(t);
  F r = a.Fma(nt, a.C(0.693145751953125f), xc);  // ln2 = hi + lo, hi with 8 trailing zero bits
  r = a.Fma(nt, a.C(1.428606765330187045e-06f), r);
  const F p = Horner(a, r,
                     {0.0013836842263117433f, 0.008374815806746483f, 0.04166822507977486f,
                      0.16666419804096222f, 0.49999991059303284f, 1.0f, 1.0f});
  const auto n = a.ToInt(t);  // in [-150, 129]
  const auto n1 = a.IShr(n, 1);
  const auto n2 = a.ISub(n, n1);  // both in [-75, 65]: 2^n1 and 2^n2 are normal floats
  const F s1 = a.BitsToF(a.IShl(a.IAdd(n1, a.IC(127)), 23));
  const F s2 = a.BitsToF(a.IShl(a.IAdd(n2, a.IC(127)), 23));
  return a.Select(a.IsNan(x), x, a.Mul(a.Mul(p, s1), s2));
}

// erf(x): |x| < 1: x + x * q(x^2) (degree 6 in x^2); |x| >= 1: 1 - e^(-x^2 + g(|x| - 2.5)) with g a
// degree-9 fit of log(erfc(x)) + x^2 on [1, 4] (|x| is clamped to 4, where erf rounds to 1), and
// the sign of x. Both branches are computed (no control flow); NaN takes the first.
template <class A>
typename A::F Erf(A& a, typename A::F x) {
  using F = typename A::F;
  const F ax = a.Abs(x);
  const F x2 = a.Mul(x, x);
  const F q = Horner(a, x2,  // erf(x) / x - 1 as a polynomial in x^2
                     {7.889285188866779e-05f, -0.0008020895184017718f, 0.005189542192965746f,
                      -0.02685444802045822f, 0.11283600330352783f, -0.3761262595653534f,
                      0.12837916612625122f});
  const F small = a.Fma(x, q, x);
  const F b = a.MinNum(ax, a.C(4.0f));
  const F u = a.Sub(b, a.C(2.5f));
  const F g = Horner(a, u,
                     {-5.555587279104657e-08f, 1.6149543853316572e-06f, -1.3028115972701926e-05f,
                      7.73904102970846e-05f, -0.00042061926797032356f, 0.002165165962651372f,
                      -0.010858220048248768f, 0.056106358766555786f, -0.3526807427406311f,
                      -1.556815266609192f});
  const F big = a.Sub(a.C(1.0f), Exp(a, a.Fma(a.Neg(b), b, g)));
  return OddJoin(a, x, ax, 1.0f, small, big);
}

// tanh(x): |x| < 0.625: x * P(x^2) (degree 6 in x^2); else 1 - 2 / (e^(2|x|) + 1) with |x|
// clamped to 9.5 (where tanh rounds to 1), and the sign of x. NaN takes the first branch.
template <class A>
typename A::F Tanh(A& a, typename A::F x) {
  using F = typename A::F;
  const F ax = a.Abs(x);
  const F x2 = a.Mul(x, x);
  const F p = Horner(a, x2,
                     {0.002128561493009329f, -0.008159182034432888f, 0.021691855043172836f,
                      -0.05394470691680908f, 0.13333183526992798f, -0.333333283662796f, 1.0f});
  const F small = a.Mul(x, p);
  const F b = a.MinNum(ax, a.C(9.5f));
  const F e = Exp(a, a.Add(b, b));
  const F big = a.Sub(a.C(1.0f), a.Div(a.C(2.0f), a.Add(e, a.C(1.0f))));
  return OddJoin(a, x, ax, 0.625f, small, big);
}

// The policy for C++: plain binary32 operations.
struct ScalarF32 {
  using F = float;
  using I = int32_t;
  using M = bool;
  static F C(float v) { return v; }
  static F Add(F x, F y) { return x + y; }
  static F Sub(F x, F y) { return x - y; }
  static F Mul(F x, F y) { return x * y; }
  static F Div(F x, F y) { return x / y; }
  static F Neg(F x) { return -x; }
  static F Abs(F x) { return std::fabs(x); }
  static F Fma(F x, F y, F z) { return std::fma(x, y, z); }
  // NaN-ignoring (IEEE maxNum/minNum, llvm.maxnum/minnum); only ever called with a constant.
  static F MaxNum(F x, F y) { return x >= y || y != y ? x : y; }
  static F MinNum(F x, F y) { return x <= y || y != y ? x : y; }
  static M Lt(F x, F y) { return x < y; }
  static M Ge(F x, F y) { return x >= y; }
  static M IsNan(F x) { return x != x; }
  static F Select(M c, F x, F y) { return c ? x : y; }
  static I ToInt(F x) { return static_cast<I>(x); }  // x is an integer in int32's range
  static I IC(int32_t v) { return v; }
  static I IAdd(I x, I y) { return x + y; }
  static I ISub(I x, I y) { return x - y; }
  static I IShr(I x, int k) { return x >> k; }  // arithmetic (C++20)
  static I IShl(I x, int k) { return static_cast<I>(static_cast<uint32_t>(x) << k); }
  static F BitsToF(I x) { return std::bit_cast<float>(x); }
};

// The per-op kernels' entry points: float runs the shared algorithm, double stays with libm.
inline float Exp(float x) {
  ScalarF32 a;
  return Exp(a, x);
}
inline float Erf(float x) {
  ScalarF32 a;
  return Erf(a, x);
}
inline float Tanh(float x) {
  ScalarF32 a;
  return Tanh(a, x);
}
inline double Exp(double x) { return std::exp(x); }
inline double Erf(double x) { return std::erf(x); }
inline double Tanh(double x) { return std::tanh(x); }

}  // namespace ampc::fmath
