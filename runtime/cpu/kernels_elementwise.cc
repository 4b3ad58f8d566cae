// CPU kernels for the broadcasting elementwise ops: Add Sub Mul Div Pow, the variadic Max Min
// Sum Mean, the comparisons Equal Less Greater LessOrEqual GreaterOrEqual, the logic ops And Or
// Xor, and Where. The unary ops (activations, Cast, Clip, Dropout, Trilu, ...) are in
// kernels_unary.cc; RegisterElementwiseKernels registers both.
//
// Numerics (kernel.h): f32/f16/bf16 load to fp32, compute in fp32 and round once into the output
// type; f64 computes in double; integers compute in int64 with two's-complement wrapping (the
// result is then wrapped into the output type). Integer Div truncates toward zero (C, and what
// ONNX's reference gets by casting numpy's true quotient back to the integer type); division by
// zero is an InvalidArgument error. Max/Min propagate NaN (numpy's maximum/minimum).
#include "runtime/cpu/kernels_elementwise.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace ampc::cpu {
namespace ew {

namespace {}  // namespace

Status MakePlan(const KernelContext& ctx, const std::vector<const TensorView*>& ins, Plan* p) {
  const std::vector<int64_t>& od = ctx.out(0)->dims;
  const size_t r = od.size(), k = ins.size();
  std::vector<std::vector<int64_t>> full(k);
  for (size_t j = 0; j < k; ++j) {
    if (!ins[j])
      return InvalidArgument(NodeDesc(ctx) + ": input " + std::to_string(j) + " is missing");
    const std::vector<int64_t>& id = ins[j]->dims;
    bool ok = id.size() <= r;
    for (size_t i = 0; ok && i < id.size(); ++i) {
      const int64_t in_d = id[id.size() - 1 - i], out_d = od[r - 1 - i];
      ok = in_d == out_d || in_d == 1;
    }
    if (!ok) {
      return InvalidArgument(NodeDesc(ctx) + ": input " + std::to_string(j) + " of shape " +
                             DimsToString(id) + " does not broadcast to the output shape " +
                             DimsToString(od));
    }
    full[j] = BroadcastStrides(id, od);
  }
  p->n = 1;
  for (int64_t d : od) p->n *= d;
  p->dims.clear();
  p->strides.assign(k, {});
  for (size_t a = 0; a < r; ++a) {
    if (od[a] == 1) continue;
    bool merge = !p->dims.empty();
    for (size_t j = 0; merge && j < k; ++j) merge = p->strides[j].back() == full[j][a] * od[a];
    if (merge) {
      p->dims.back() *= od[a];
      for (size_t j = 0; j < k; ++j) p->strides[j].back() = full[j][a];
      continue;
    }
    p->dims.push_back(od[a]);
    for (size_t j = 0; j < k; ++j) p->strides[j].push_back(full[j][a]);
  }
  if (p->dims.empty()) {
    p->dims = {1};
    for (auto& s : p->strides) s = {0};
  }
  return Status::Ok();
}

}  // namespace ew

namespace {

using namespace ew;  // NOLINT

// ---- wrapping integer arithmetic (int64 overflow is undefined behaviour in C++) ---------------

template <typename C>
C AddOp(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    return static_cast<C>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  } else {
    return a + b;
  }
}
template <typename C>
C SubOp(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    return static_cast<C>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
  } else {
    return a - b;
  }
}
template <typename C>
C MulOp(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    return static_cast<C>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  } else {
    return a * b;
  }
}
// NaN-propagating max / min.
template <typename C>
C MaxOp(C a, C b) {
  return (a > b || a != a) ? a : b;
}
template <typename C>
C MinOp(C a, C b) {
  return (a < b || a != a) ? a : b;
}

// A float result as int64: truncated toward zero, NaN -> 0, saturated at the int64 range.
int64_t SatInt64(double d) {
  if (std::isnan(d)) return 0;
  if (d >= 9223372036854775808.0) return std::numeric_limits<int64_t>::max();
  if (d <= -9223372036854775808.0) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(d);
}

// a^b for integers, wrapping; negative exponents truncate the fraction toward zero. Sets *bad for
// 0 raised to a negative power.
int64_t IntPow(int64_t a, int64_t b, std::atomic<bool>* bad) {
  if (b < 0) {
    if (a == 1) return 1;
    if (a == -1) return (b & 1) ? -1 : 1;
    if (a == 0) bad->store(true, std::memory_order_relaxed);
    return 0;
  }
  uint64_t result = 1, base = static_cast<uint64_t>(a);
  for (uint64_t e = static_cast<uint64_t>(b); e; e >>= 1) {
    if (e & 1) result *= base;
    base *= base;
  }
  return static_cast<int64_t>(result);
}

// Inputs 0 and 1 and the output all have one dtype; returns it.
Status SameTypeBinary(const KernelContext& ctx, DType out, bool to_bool) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0, 1}, DType::kUndefined));
  RETURN_IF_ERROR(CheckInputs(ctx, {1}, ctx.in(0)->dtype));
  return CheckOutType(ctx, to_bool ? DType::kBool : out);
}

enum class Arith { kAdd, kSub, kMul, kDiv };

template <Arith kOp>
Status ArithKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0, 1}, DType::kUndefined));
  const DType t = ctx.in(0)->dtype;
  RETURN_IF_ERROR(SameTypeBinary(ctx, t, false));
  return Visit<kNumeric>(ctx, t, [&](auto e) -> Status {
    using E = decltype(e);
    using C = typename E::C;
    if constexpr (kOp == Arith::kAdd) {
      return Binary<E, E, E>(ctx, [](C a, C b) { return AddOp(a, b); });
    } else if constexpr (kOp == Arith::kSub) {
      return Binary<E, E, E>(ctx, [](C a, C b) { return SubOp(a, b); });
    } else if constexpr (kOp == Arith::kMul) {
      return Binary<E, E, E>(ctx, [](C a, C b) { return MulOp(a, b); });
    } else if constexpr (kFloatE<E>) {
      return Binary<E, E, E>(ctx, [](C a, C b) { return a / b; });
    } else {
      std::atomic<bool> zero{false};
      RETURN_IF_ERROR((Binary<E, E, E>(ctx, [&zero](C a, C b) -> C {
        if (b == 0) {
          zero.store(true, std::memory_order_relaxed);
          return 0;
        }
        return b == -1 ? SubOp(C{0}, a) : a / b;  // INT64_MIN / -1 wraps
      })));
      if (zero.load()) return InvalidArgument(NodeDesc(ctx) + ": integer division by zero");
      return Status::Ok();
    }
  });
}

// Pow: the result has the base's type. Float bases compute in their compute type (the exponent
// converted to it); integer bases with an integer exponent compute exactly (wrapping), with a
// float exponent in double (then truncated toward zero and saturated to int64).
Status PowKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0, 1}, DType::kUndefined));
  const DType t = ctx.in(0)->dtype;
  RETURN_IF_ERROR(CheckOutType(ctx, t));
  std::atomic<bool> bad{false};
  RETURN_IF_ERROR(Visit<kNumeric>(ctx, t, [&](auto ea) -> Status {
    using EA = decltype(ea);
    using CA = typename EA::C;
    return Visit<kNumeric>(ctx, ctx.in(1)->dtype, [&](auto eb) -> Status {
      using EB = decltype(eb);
      using CB = typename EB::C;
      if constexpr (kFloatE<EA>) {
        return Binary<EA, EB, EA, kGrain>(
            ctx, [](CA a, CB b) { return static_cast<CA>(std::pow(a, static_cast<CA>(b))); });
      } else if constexpr (kIntE<EB>) {
        return Binary<EA, EB, EA, kGrain>(ctx, [&bad](CA a, CB b) { return IntPow(a, b, &bad); });
      } else {
        return Binary<EA, EB, EA, kGrain>(ctx, [](CA a, CB b) {
          return SatInt64(std::pow(static_cast<double>(a), static_cast<double>(b)));
        });
      }
    });
  }));
  if (bad.load()) return InvalidArgument(NodeDesc(ctx) + ": integer 0 raised to a negative power");
  return Status::Ok();
}

// ---- variadic Max Min Sum Mean -----------------------------------------------------------------

enum class Fold { kMax, kMin, kSum, kMean };

template <typename E, typename Fn>
Status Variadic(KernelContext& ctx, const Fn& f, bool mean) {
  using S = typename E::S;
  using C = typename E::C;
  const std::vector<const TensorView*> ins(ctx.inputs.begin(), ctx.inputs.end());
  Plan p;
  RETURN_IF_ERROR(MakePlan(ctx, ins, &p));
  std::vector<const S*> src;
  for (const TensorView* v : ins) src.push_back(v->as<const S>());
  S* o = ctx.out(0)->as<S>();
  const size_t k = ins.size();
  ParallelRuns(ctx.pool, p, CheapGrain<E>(),
               [&](const int64_t* off, const int64_t* st, int64_t pos, int64_t len) {
                 Blocked(len,
                         [&](int64_t s, auto m) {  // st[j] is 0 or 1 (MakePlan's innermost axis)
                           C acc[kBlock], t[kBlock];
                           for (size_t j = 0; j < k; ++j) {
                             const S* q = src[j] + off[j] + s * st[j];
                             C* dst = j == 0 ? acc : t;
                             if (st[j]) {
                               for (int64_t i = 0; i < m; ++i) dst[i] = E::Ld(q[i]);
                             } else {
                               std::fill(dst, dst + kBlock, E::Ld(*q));
                             }
                             if (j > 0) {
                               for (int64_t i = 0; i < m; ++i) acc[i] = f(acc[i], t[i]);
                             }
                           }
                           if constexpr (kFloatE<E>) {
                             if (mean) {
                               for (int64_t i = 0; i < m; ++i) acc[i] /= static_cast<C>(k);
                             }
                           }
                           for (int64_t i = 0; i < m; ++i) o[pos + s + i] = E::St(acc[i]);
                         });
               });
  return Status::Ok();
}

template <Fold kOp>
Status FoldKernel(KernelContext& ctx) {
  if (ctx.num_inputs() < 1) return InvalidArgument(NodeDesc(ctx) + ": needs at least one input");
  RETURN_IF_ERROR(CheckInputs(ctx, {0}, DType::kUndefined));
  const DType t = ctx.in(0)->dtype;
  for (int i = 1; i < ctx.num_inputs(); ++i) RETURN_IF_ERROR(CheckInputs(ctx, {i}, t));
  RETURN_IF_ERROR(CheckOutType(ctx, t));
  constexpr unsigned kTypes = kOp == Fold::kMean ? kF : kNumeric;
  return Visit<kTypes>(ctx, t, [&](auto e) -> Status {
    using E = decltype(e);
    using C = typename E::C;
    if constexpr (kOp == Fold::kMax)
      return Variadic<E>(
          ctx, [](C a, C b) { return MaxOp(a, b); }, false);
    if constexpr (kOp == Fold::kMin)
      return Variadic<E>(
          ctx, [](C a, C b) { return MinOp(a, b); }, false);
    return Variadic<E>(
        ctx, [](C a, C b) { return AddOp(a, b); }, kOp == Fold::kMean);
  });
}

// ---- comparisons and logic -------------------------------------------------------------------

enum class Cmp { kEq, kLt, kGt, kLe, kGe };

template <Cmp kOp>
Status CompareKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0, 1}, DType::kUndefined));
  const DType t = ctx.in(0)->dtype;
  RETURN_IF_ERROR(SameTypeBinary(ctx, t, true));
  constexpr unsigned kTypes = kOp == Cmp::kEq ? kAny : kNumeric;
  return Visit<kTypes>(ctx, t, [&](auto e) -> Status {
    using E = decltype(e);
    using C = typename E::C;
    if constexpr (kOp == Cmp::kEq) return Binary<E, E, Bool>(ctx, [](C a, C b) { return a == b; });
    if constexpr (kOp == Cmp::kLt) return Binary<E, E, Bool>(ctx, [](C a, C b) { return a < b; });
    if constexpr (kOp == Cmp::kGt) return Binary<E, E, Bool>(ctx, [](C a, C b) { return a > b; });
    if constexpr (kOp == Cmp::kLe) return Binary<E, E, Bool>(ctx, [](C a, C b) { return a <= b; });
    return Binary<E, E, Bool>(ctx, [](C a, C b) { return a >= b; });
  });
}

enum class Logic { kAnd, kOr, kXor };

template <Logic kOp>
Status LogicKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0, 1}, DType::kBool));
  RETURN_IF_ERROR(CheckOutType(ctx, DType::kBool));
  if constexpr (kOp == Logic::kAnd)
    return Binary<Bool, Bool, Bool>(ctx, [](bool a, bool b) { return a && b; });
  if constexpr (kOp == Logic::kOr)
    return Binary<Bool, Bool, Bool>(ctx, [](bool a, bool b) { return a || b; });
  return Binary<Bool, Bool, Bool>(ctx, [](bool a, bool b) { return a != b; });
}

// ---- Where -----------------------------------------------------------------------------------

template <typename T>
void WhereRuns(KernelContext& ctx, const Plan& p) {
  const auto* c = ctx.in(0)->as<const uint8_t>();
  const T* x = ctx.in(1)->as<const T>();
  const T* y = ctx.in(2)->as<const T>();
  T* o = ctx.out(0)->as<T>();
  ParallelRuns(ctx.pool, p, CheapGrain<>(),
               [&](const int64_t* off, const int64_t* st, int64_t pos, int64_t len) {
                 const uint8_t* cc = c + off[0];
                 const T* xx = x + off[1];
                 const T* yy = y + off[2];
                 T* oo = o + pos;
                 const int64_t sc = st[0], sx = st[1], sy = st[2];
                 if (sc == 1 && sx == 1 && sy == 1) {
                   for (int64_t i = 0; i < len; ++i) oo[i] = cc[i] ? xx[i] : yy[i];
                 } else {
                   for (int64_t i = 0; i < len; ++i) oo[i] = cc[i * sc] ? xx[i * sx] : yy[i * sy];
                 }
               });
}

Status WhereKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0}, DType::kBool));
  RETURN_IF_ERROR(CheckInputs(ctx, {1, 2}, DType::kUndefined));
  const DType t = ctx.in(1)->dtype;
  RETURN_IF_ERROR(CheckInputs(ctx, {2}, t));
  RETURN_IF_ERROR(CheckOutType(ctx, t));
  Plan p;
  RETURN_IF_ERROR(MakePlan(ctx, {ctx.in(0), ctx.in(1), ctx.in(2)}, &p));
  switch (DTypeSize(t)) {  // selection moves bits: dispatch on the element size only
    case 1:
      WhereRuns<uint8_t>(ctx, p);
      break;
    case 2:
      WhereRuns<uint16_t>(ctx, p);
      break;
    case 4:
      WhereRuns<uint32_t>(ctx, p);
      break;
    case 8:
      WhereRuns<uint64_t>(ctx, p);
      break;
    default:
      return BadType(ctx, t);
  }
  return Status::Ok();
}

}  // namespace

void RegisterElementwiseKernels(KernelRegistry& r) {
  r.Register("", "Add", ArithKernel<Arith::kAdd>);
  r.Register("", "Sub", ArithKernel<Arith::kSub>);
  r.Register("", "Mul", ArithKernel<Arith::kMul>);
  r.Register("", "Div", ArithKernel<Arith::kDiv>);
  r.Register("", "Pow", PowKernel);
  r.Register("", "Max", FoldKernel<Fold::kMax>);
  r.Register("", "Min", FoldKernel<Fold::kMin>);
  r.Register("", "Sum", FoldKernel<Fold::kSum>);
  r.Register("", "Mean", FoldKernel<Fold::kMean>);
  r.Register("", "Equal", CompareKernel<Cmp::kEq>);
  r.Register("", "Less", CompareKernel<Cmp::kLt>);
  r.Register("", "Greater", CompareKernel<Cmp::kGt>);
  r.Register("", "LessOrEqual", CompareKernel<Cmp::kLe>);
  r.Register("", "GreaterOrEqual", CompareKernel<Cmp::kGe>);
  r.Register("", "And", LogicKernel<Logic::kAnd>);
  r.Register("", "Or", LogicKernel<Logic::kOr>);
  r.Register("", "Xor", LogicKernel<Logic::kXor>);
  r.Register("", "Where", WhereKernel);
  ew::RegisterUnaryKernels(r);
}

}  // namespace ampc::cpu
