// CPU kernels for the one-input elementwise ops: Relu LeakyRelu Elu Selu Tanh Sigmoid HardSigmoid
// Softplus Erf Sqrt Exp Log Neg Abs Reciprocal Floor Ceil Sign IsNaN IsInf Not Identity Cast
// CastLike Clip Dropout (and com.ampc::Dropout; masks from counter_rng.h) Trilu. Registered
// through RegisterElementwiseKernels.
//
// Numerics as in kernels_elementwise.cc: f32/f16/bf16 compute in fp32 and round once, f64 in
// double, integers in int64 (wrapping). Cast rounds every conversion once: f64 or integer
// sources reach f16/bf16 through a round-to-odd fp32 intermediate, which makes the two steps one
// correctly rounded step; float -> integer truncates toward zero, saturates at the target's
// range and maps NaN to 0 (what CUDA's float-to-int conversions do); integer -> integer wraps;
// anything -> bool is "!= 0" (NaN is true).
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "ir/float_math.h"
#include "ir/op_registry.h"
#include "runtime/cpu/convert.h"
#include "runtime/cpu/counter_rng.h"
#include "runtime/cpu/kernels_elementwise.h"

namespace ampc::cpu::ew {
namespace {

// ---- math ops --------------------------------------------------------------------------------

enum class U {
  kRelu,
  kLeakyRelu,
  kElu,
  kSelu,
  kTanh,
  kSigmoid,
  kHardSigmoid,
  kSoftplus,
  kErf,
  kSqrt,
  kExp,
  kLog,
  kNeg,
  kAbs,
  kReciprocal,
  kFloor,
  kCeil,
  kSign,
  kIsNaN,
  kIsInf
};

constexpr unsigned TypesOf(U op) {
  switch (op) {
    case U::kRelu:
    case U::kNeg:
      return kSigned;
    case U::kAbs:
    case U::kSign:
      return kNumeric;
    default:
      return kF;
  }
}

int64_t WrapNeg(int64_t x) { return static_cast<int64_t>(0 - static_cast<uint64_t>(x)); }

template <U kOp>
Status MathKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0}, DType::kUndefined));
  const DType t = ctx.in(0)->dtype;
  constexpr bool kToBool = kOp == U::kIsNaN || kOp == U::kIsInf;
  RETURN_IF_ERROR(CheckOutType(ctx, kToBool ? DType::kBool : t));
  // Attribute defaults of the ONNX spec (LeakyRelu 0.01, Elu 1, HardSigmoid 0.2/0.5, Selu's
  // constants as given there).
  const float alpha_dflt = kOp == U::kLeakyRelu     ? 0.01f
                           : kOp == U::kHardSigmoid ? 0.2f
                           : kOp == U::kSelu        ? 1.67326319217681884765625f
                                                    : 1.0f;
  const float alpha_attr = ctx.attr_float("alpha", alpha_dflt);
  const float beta_attr = ctx.attr_float("beta", 0.5f);
  const float gamma_attr = ctx.attr_float("gamma", 1.05070102214813232421875f);
  const bool neg_inf = ctx.attr_int("detect_negative", 1) != 0;
  const bool pos_inf = ctx.attr_int("detect_positive", 1) != 0;
  return Visit<TypesOf(kOp)>(ctx, t, [&](auto e) -> Status {
    using E = decltype(e);
    using C = typename E::C;
    [[maybe_unused]] const C alpha = static_cast<C>(alpha_attr);
    [[maybe_unused]] const C beta = static_cast<C>(beta_attr);
    [[maybe_unused]] const C gamma = static_cast<C>(gamma_attr);
    if constexpr (kOp == U::kRelu) {
      return Unary<E, E>(ctx, [](C x) { return x < C(0) ? C(0) : x; });  // NaN stays NaN
    } else if constexpr (kOp == U::kNeg) {
      if constexpr (kIntE<E>)
        return Unary<E, E>(ctx, [](C x) { return WrapNeg(x); });
      else
        return Unary<E, E>(ctx, [](C x) { return -x; });
    } else if constexpr (kOp == U::kAbs) {
      if constexpr (kIntE<E>)
        return Unary<E, E>(ctx, [](C x) { return x < 0 ? WrapNeg(x) : x; });
      else
        return Unary<E, E>(ctx, [](C x) { return std::fabs(x); });
    } else if constexpr (kOp == U::kSign) {
      // +-1 for nonzero values; zeros (and NaN) are returned as they are.
      return Unary<E, E>(ctx, [](C x) { return x > C(0) ? C(1) : x < C(0) ? C(-1) : x; });
    } else if constexpr (kOp == U::kLeakyRelu) {
      return Unary<E, E>(ctx, [alpha](C x) { return x < C(0) ? alpha * x : x; });
    } else if constexpr (kOp == U::kElu) {
      return Unary<E, E, kGrain>(ctx,
                                 [alpha](C x) { return x < C(0) ? alpha * std::expm1(x) : x; });
    } else if constexpr (kOp == U::kSelu) {
      const C ga = gamma * alpha;
      return Unary<E, E, kGrain>(
          ctx, [gamma, ga](C x) { return x <= C(0) ? ga * std::expm1(x) : gamma * x; });
    } else if constexpr (kOp == U::kTanh) {
      return Unary<E, E, kGrain>(ctx, [](C x) { return fmath::Tanh(x); });
    } else if constexpr (kOp == U::kSigmoid) {
      return Unary<E, E, kGrain>(ctx, [](C x) {
        if (x >= C(0)) return C(1) / (C(1) + fmath::Exp(-x));
        const C z = fmath::Exp(x);  // no overflow for large negative x
        return z / (C(1) + z);
      });
    } else if constexpr (kOp == U::kHardSigmoid) {
      return Unary<E, E>(ctx, [alpha, beta](C x) {
        const C v = alpha * x + beta;
        return v < C(0) ? C(0) : v > C(1) ? C(1) : v;
      });
    } else if constexpr (kOp == U::kSoftplus) {  // log(1 + e^x), without overflow
      return Unary<E, E, kGrain>(ctx, [](C x) {
        return x > C(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
      });
    } else if constexpr (kOp == U::kErf) {
      return Unary<E, E, kGrain>(ctx, [](C x) { return fmath::Erf(x); });
    } else if constexpr (kOp == U::kSqrt) {
      return Unary<E, E, kGrain>(ctx, [](C x) { return std::sqrt(x); });
    } else if constexpr (kOp == U::kExp) {
      return Unary<E, E, kGrain>(ctx, [](C x) { return fmath::Exp(x); });
    } else if constexpr (kOp == U::kLog) {
      return Unary<E, E, kGrain>(ctx, [](C x) { return std::log(x); });
    } else if constexpr (kOp == U::kReciprocal) {
      return Unary<E, E>(ctx, [](C x) { return C(1) / x; });
    } else if constexpr (kOp == U::kFloor) {
      return Unary<E, E>(ctx, [](C x) { return std::floor(x); });
    } else if constexpr (kOp == U::kCeil) {
      return Unary<E, E>(ctx, [](C x) { return std::ceil(x); });
    } else if constexpr (kOp == U::kIsNaN) {
      return Unary<E, Bool>(ctx, [](C x) { return std::isnan(x); });
    } else {
      static_assert(kOp == U::kIsInf);
      return Unary<E, Bool>(
          ctx, [neg_inf, pos_inf](C x) { return std::isinf(x) && (x > C(0) ? pos_inf : neg_inf); });
    }
  });
}

Status NotKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0}, DType::kBool));
  RETURN_IF_ERROR(CheckOutType(ctx, DType::kBool));
  return Unary<Bool, Bool>(ctx, [](bool x) { return !x; });
}

// ---- Identity, Cast ----------------------------------------------------------------------------

// Copies input 0 to output 0 (same dtype and element count).
Status CopyInput(KernelContext& ctx) {
  const TensorView& x = *ctx.in(0);
  TensorView& y = *ctx.out(0);
  if (x.NumElements() != y.NumElements() || x.dtype != y.dtype) {
    return InvalidArgument(NodeDesc(ctx) + ": output does not match the input's type and size");
  }
  if (y.data != x.data && x.NumElements() > 0) {
    std::memmove(y.data, x.data, static_cast<size_t>(x.NumElements() * DTypeSize(x.dtype)));
  }
  return Status::Ok();
}

// d rounded toward zero to float, the lowest bit set when inexact (round-to-odd); rounding that
// float to f16/bf16 is d rounded to nearest even in one step (fp32 has >= 2 bits more).
float DoubleToFloatOdd(double d) {
  float f = static_cast<float>(d);
  if (std::isnan(d) || static_cast<double>(f) == d) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(d)) f = std::nextafter(f, 0.0f);
  return BitsToFloat(FloatToBits(f) | 1u);
}
// The same for an integer.
float IntToFloatOdd(int64_t v) {
  uint64_t m = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  int shift = 0;
  const int bits = 64 - std::countl_zero(m);
  if (bits > 24) {
    shift = bits - 24;
    const bool inexact = (m & ((uint64_t{1} << shift) - 1)) != 0;
    m = (m >> shift) | (inexact ? 1u : 0u);
  }
  const float f = std::ldexp(static_cast<float>(m), shift);  // exact
  return v < 0 ? -f : f;
}

template <typename I>
I SatFromDouble(double d) {
  if (std::isnan(d)) return 0;
  constexpr double lo = static_cast<double>(std::numeric_limits<I>::min());
  constexpr double hi = static_cast<double>(std::numeric_limits<I>::max());
  if (d <= lo) return std::numeric_limits<I>::min();
  if (d >= hi) return std::numeric_limits<I>::max();
  return static_cast<I>(d);
}

template <typename ES, typename ED>
typename ED::S CastElem(typename ES::S x) {
  using D = typename ED::S;
  const auto v = ES::Ld(x);  // float, double, int64_t or bool: exact
  using V = std::remove_cv_t<decltype(v)>;
  if constexpr (std::is_same_v<ED, Bool>) {
    return v != V(0) ? 1 : 0;
  } else if constexpr (std::is_same_v<ED, F64>) {
    return static_cast<double>(v);
  } else if constexpr (std::is_same_v<ED, F32>) {
    return static_cast<float>(v);  // one rounding (from double or int64)
  } else if constexpr (std::is_same_v<ED, F16> || std::is_same_v<ED, BF16>) {
    if constexpr (std::is_same_v<V, float>)
      return ED::St(v);
    else if constexpr (std::is_same_v<V, double>)
      return ED::St(DoubleToFloatOdd(v));
    else
      return ED::St(IntToFloatOdd(static_cast<int64_t>(v)));
  } else if constexpr (std::is_floating_point_v<V>) {
    return SatFromDouble<D>(static_cast<double>(v));
  } else {
    return static_cast<D>(v);  // integer / bool -> integer: wraps
  }
}

template <typename ES, typename ED>
Status CastTyped(KernelContext& ctx) {
  const auto* a = ctx.in(0)->as<const typename ES::S>();
  auto* o = ctx.out(0)->as<typename ED::S>();
  ParallelFor(ctx.pool, ctx.in(0)->NumElements(), CheapGrain<ES, ED>(), [&](int64_t b, int64_t e) {
    // fp32 <-> f16/bf16 (the mixed-precision casts, weights and activations every step): the
    // vectorised bulk conversions, bit-identical to CastElem.
    if constexpr (std::is_same_v<ES, F32> && std::is_same_v<ED, F16>) {
      FloatToHalfN(a + b, o + b, e - b);
    } else if constexpr (std::is_same_v<ES, F32> && std::is_same_v<ED, BF16>) {
      FloatToBFloat16N(a + b, o + b, e - b);
    } else if constexpr (std::is_same_v<ES, F16> && std::is_same_v<ED, F32>) {
      HalfToFloatN(a + b, o + b, e - b);
    } else if constexpr (std::is_same_v<ES, BF16> && std::is_same_v<ED, F32>) {
      BFloat16ToFloatN(a + b, o + b, e - b);
    } else {
      for (int64_t i = b; i < e; ++i) o[i] = CastElem<ES, ED>(a[i]);
    }
  });
  return Status::Ok();
}

// Cast and CastLike: the target type is the output's dtype (set from `to` / input 1).
Status CastKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0}, DType::kUndefined));
  const TensorView& x = *ctx.in(0);
  TensorView& y = *ctx.out(0);
  if (x.NumElements() != y.NumElements()) {
    return InvalidArgument(NodeDesc(ctx) + ": output and input sizes differ");
  }
  if (ctx.op == "Cast" && ctx.attr("to")) {
    const int64_t to = ctx.attr_int("to", -1);
    static constexpr std::pair<int64_t, DType> kOnnx[] = {
        {1, DType::kFloat32},  {10, DType::kFloat16}, {16, DType::kBFloat16},
        {11, DType::kFloat64}, {7, DType::kInt64},    {6, DType::kInt32},
        {3, DType::kInt8},     {2, DType::kUInt8},    {9, DType::kBool}};
    bool known = false;
    for (const auto& [num, dt] : kOnnx) {
      if (num != to) continue;
      known = true;
      if (dt != y.dtype) {
        return InvalidArgument(NodeDesc(ctx) + ": 'to' = " + std::to_string(to) +
                               " does not match the output dtype " +
                               std::string(DTypeName(y.dtype)));
      }
    }
    if (!known) return Unimplemented(NodeDesc(ctx) + ": Cast to ONNX type " + std::to_string(to));
  }
  if (x.dtype == y.dtype) return CopyInput(ctx);
  if (x.NumElements() == 0) return Status::Ok();
  return Visit<kAny>(ctx, x.dtype, [&](auto es) -> Status {
    return Visit<kAny>(ctx, y.dtype, [&](auto ed) -> Status {
      return CastTyped<decltype(es), decltype(ed)>(ctx);
    });
  });
}

// ---- Clip, Dropout, Trilu
// ------------------------------------------------------------------------

// A scalar bound from optional input i (or, for opsets < 11, attribute `attr`).
template <typename E>
typename E::C Bound(const KernelContext& ctx, int i, const char* attr, typename E::C dflt) {
  const TensorView* v = ctx.in(i);
  if (v && v->NumElements() > 0) return E::Ld(v->as<const typename E::S>()[0]);
  if (!v && ctx.attr(attr)) return static_cast<typename E::C>(ctx.attr_float(attr, 0.0f));
  return dflt;
}

Status ClipKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0}, DType::kUndefined));
  const DType t = ctx.in(0)->dtype;
  RETURN_IF_ERROR(CheckOutType(ctx, t));
  for (int i = 1; i < 3; ++i) {
    if (ctx.in(i) && ctx.in(i)->dtype != t) {
      return InvalidArgument(NodeDesc(ctx) + ": bound " + std::to_string(i) + " has dtype " +
                             std::string(DTypeName(ctx.in(i)->dtype)) + ", input " +
                             std::string(DTypeName(t)));
    }
  }
  return Visit<kNumeric>(ctx, t, [&](auto e) -> Status {
    using E = decltype(e);
    using C = typename E::C;
    using L = std::numeric_limits<C>;
    const C lo = Bound<E>(ctx, 1, "min", L::has_infinity ? -L::infinity() : L::lowest());
    const C hi = Bound<E>(ctx, 2, "max", L::has_infinity ? L::infinity() : L::max());
    // numpy.clip order: max(x, lo) then min(., hi); lo > hi gives hi everywhere; NaN stays.
    return Unary<E, E>(ctx, [lo, hi](C x) {
      const C v = x < lo ? lo : x;
      return v > hi ? hi : v;
    });
  });
}

// Dropout's ratio (input 1, default 0.5), validated: ONNX allows [0, 1); ratio 1 drops all.
StatusOr<double> DropoutRatio(const KernelContext& ctx) {
  const TensorView* r = ctx.in(1);
  if (!r || r->NumElements() == 0) return 0.5;
  if (!IsFloat(r->dtype) || r->NumElements() != 1) {
    return InvalidArgument(NodeDesc(ctx) + ": ratio must be a float scalar");
  }
  const double ratio = Load<double>(*r, 0);
  if (!(ratio >= 0.0 && ratio <= 1.0)) {  // also catches NaN
    return InvalidArgument(NodeDesc(ctx) + ": ratio " + std::to_string(ratio) +
                           " is outside [0, 1]");
  }
  return ratio;
}

Status CheckDropoutMask(const KernelContext& ctx) {
  const TensorView* mask = ctx.out(1);
  if (mask && (mask->dtype != DType::kBool || mask->dims != ctx.in(0)->dims)) {
    return InvalidArgument(NodeDesc(ctx) + ": the mask output must be bool of the input's shape");
  }
  return Status::Ok();
}

// Training-mode dropout: keep[i] = u(seed, counter, i) >= ratio (counter_rng.h), y = x * keep /
// (1 - ratio), computed as x * (keep ? scale : 0) so that NaN and infinity propagate as in the
// spec's formula. Halves compute in fp32 and round once.
Status DropoutTraining(KernelContext& ctx, double ratio, uint64_t seed, uint64_t counter) {
  const TensorView& x = *ctx.in(0);
  TensorView& y = *ctx.out(0);
  uint8_t* mask = ctx.out(1) ? ctx.out(1)->as<uint8_t>() : nullptr;
  const uint64_t key = CounterRngKey(seed, counter);
  const double scale = ratio < 1.0 ? 1.0 / (1.0 - ratio) : 0.0;
  return Visit<kF>(ctx, x.dtype, [&](auto e) -> Status {
    using E = decltype(e);
    using C = typename E::C;
    const auto* src = x.as<const typename E::S>();
    auto* dst = y.as<typename E::S>();
    const C s = static_cast<C>(scale);
    ParallelFor(ctx.pool, x.NumElements(), CheapGrain<E>() / 8, [&](int64_t b, int64_t end) {
      for (int64_t i = b; i < end; ++i) {
        const bool keep = Uniform01(key, static_cast<uint64_t>(i)) >= ratio;
        dst[i] = E::St(E::Ld(src[i]) * (keep ? s : C(0)));
        if (mask) mask[i] = keep ? 1 : 0;
      }
    });
    return Status::Ok();
  });
}

// ONNX Dropout (opset 12+ form: data, ratio, training_mode). Inference mode is the identity;
// training mode draws the mask from the node's `seed` attribute (0 when absent), counter 0.
Status DropoutKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0}, DType::kUndefined));
  RETURN_IF_ERROR(CheckOutType(ctx, ctx.in(0)->dtype));
  RETURN_IF_ERROR(CheckDropoutMask(ctx));
  ASSIGN_OR_RETURN(double ratio, DropoutRatio(ctx));
  bool training = false;
  if (const TensorView* m = ctx.in(2); m && m->NumElements() > 0) {
    training = Load<int64_t>(*m, 0) != 0;
  }
  if (training && ratio > 0) {
    const auto seed = static_cast<uint64_t>(ctx.attr_int("seed", 0));
    return DropoutTraining(ctx, ratio, seed, 0);
  }
  RETURN_IF_ERROR(CopyInput(ctx));
  if (TensorView* mask = ctx.out(1); mask && mask->NumElements() > 0) {
    std::memset(mask->data, 1, static_cast<size_t>(mask->NumElements()));
  }
  return Status::Ok();
}

// com.ampc::Dropout(data, ratio, step) -> output[, mask]: always training mode, counter = step,
// so each training step draws its own mask and replaying a step reproduces it exactly.
Status AmpcDropoutKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0, 1, 2}, DType::kUndefined));
  RETURN_IF_ERROR(CheckOutType(ctx, ctx.in(0)->dtype));
  RETURN_IF_ERROR(CheckDropoutMask(ctx));
  ASSIGN_OR_RETURN(double ratio, DropoutRatio(ctx));
  const TensorView& step = *ctx.in(2);
  if (step.dtype != DType::kInt64 || step.NumElements() != 1) {
    return InvalidArgument(NodeDesc(ctx) + ": step must be an i64 scalar");
  }
  const auto seed = static_cast<uint64_t>(ctx.attr_int("seed", 0));
  return DropoutTraining(ctx, ratio, seed, static_cast<uint64_t>(step.as<const int64_t>()[0]));
}

Status TriluKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0}, DType::kUndefined));
  const TensorView& x = *ctx.in(0);
  TensorView& y = *ctx.out(0);
  if (x.dtype != y.dtype || x.dims != y.dims) {
    return InvalidArgument(NodeDesc(ctx) + ": output does not match the input's type and shape");
  }
  if (x.rank() < 2) return InvalidArgument(NodeDesc(ctx) + ": needs an input of rank >= 2");
  int64_t k = 0;
  if (const TensorView* kv = ctx.in(1); kv && kv->NumElements() > 0) {
    if (kv->dtype != DType::kInt64) return InvalidArgument(NodeDesc(ctx) + ": k must be int64");
    k = kv->as<const int64_t>()[0];
  }
  const bool upper = ctx.attr_int("upper", 1) != 0;
  const int64_t rows = x.dims[x.rank() - 2], cols = x.dims[x.rank() - 1];
  if (x.NumElements() == 0) return Status::Ok();
  k = std::clamp<int64_t>(k, -rows - 1, cols + 1);  // beyond that nothing changes
  const size_t esz = static_cast<size_t>(DTypeSize(x.dtype));
  const auto* src = x.as<const uint8_t>();
  auto* dst = y.as<uint8_t>();
  const int64_t all_rows = x.NumElements() / cols;
  ParallelFor(ctx.pool, all_rows, std::max<int64_t>(1, CheapGrain<>() / cols),
              [&](int64_t b, int64_t e) {
                for (int64_t g = b; g < e; ++g) {
                  const int64_t i = g % rows;
                  const size_t row = static_cast<size_t>(g * cols) * esz;
                  if (dst != src)
                    std::memcpy(dst + row, src + row, static_cast<size_t>(cols) * esz);
                  // Upper keeps j >= i + k; lower keeps j <= i + k. All-zero bytes are 0 in every
                  // dtype.
                  int64_t z0 = 0, z1 = std::clamp<int64_t>(i + k, 0, cols);
                  if (!upper) {
                    z0 = std::clamp<int64_t>(i + k + 1, 0, cols);
                    z1 = cols;
                  }
                  if (z1 > z0)
                    std::memset(dst + row + z0 * esz, 0, static_cast<size_t>(z1 - z0) * esz);
                }
              });
  return Status::Ok();
}

}  // namespace

void RegisterUnaryKernels(KernelRegistry& r) {
  r.Register("", "Relu", MathKernel<U::kRelu>);
  r.Register("", "LeakyRelu", MathKernel<U::kLeakyRelu>);
  r.Register("", "Elu", MathKernel<U::kElu>);
  r.Register("", "Selu", MathKernel<U::kSelu>);
  r.Register("", "Tanh", MathKernel<U::kTanh>);
  r.Register("", "Sigmoid", MathKernel<U::kSigmoid>);
  r.Register("", "HardSigmoid", MathKernel<U::kHardSigmoid>);
  r.Register("", "Softplus", MathKernel<U::kSoftplus>);
  r.Register("", "Erf", MathKernel<U::kErf>);
  r.Register("", "Sqrt", MathKernel<U::kSqrt>);
  r.Register("", "Exp", MathKernel<U::kExp>);
  r.Register("", "Log", MathKernel<U::kLog>);
  r.Register("", "Neg", MathKernel<U::kNeg>);
  r.Register("", "Abs", MathKernel<U::kAbs>);
  r.Register("", "Reciprocal", MathKernel<U::kReciprocal>);
  r.Register("", "Floor", MathKernel<U::kFloor>);
  r.Register("", "Ceil", MathKernel<U::kCeil>);
  r.Register("", "Sign", MathKernel<U::kSign>);
  r.Register("", "IsNaN", MathKernel<U::kIsNaN>);
  r.Register("", "IsInf", MathKernel<U::kIsInf>);
  r.Register("", "Not", NotKernel);
  r.Register("", "Cast", CastKernel);
  r.Register("", "CastLike", CastKernel);
  r.Register("", "Clip", ClipKernel);
  r.Register("", "Dropout", DropoutKernel);
  r.Register(kAmpcDomain, "Dropout", AmpcDropoutKernel);
  r.Register("", "Trilu", TriluKernel);
}

}  // namespace ampc::cpu::ew
