// CPU kernels for the activations added after opset 17 and their backward ops: Gelu (opset 20,
// approximate none | tanh), Mish (18), Sin and Cos (7, listed here with them because no older
// kernel had them), com.ampc::GeluGrad and com.ampc::MishGrad (dX = dY * f'(X) in one pass, where
// composing the derivative from standard ops would take ten passes over the activation).
//
// Numerics as in kernels_elementwise.cc: f32/f16/bf16 load to fp32, compute in fp32 and round
// once; f64 computes in double.
#include <cmath>
#include <string>

#include "ir/float_math.h"
#include "ir/op_registry.h"
#include "runtime/cpu/kernels_elementwise.h"

namespace ampc::cpu::ew {
namespace {

// GELU with the exact normal CDF: x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2.
template <typename C>
C GeluErf(C x) {
  return C(0.5) * x * (C(1) + fmath::Erf(x * C(0.70710678118654752440)));
}
// d/dx: Phi(x) + x * phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
template <typename C>
C GeluErfGrad(C x) {
  const C cdf = C(0.5) * (C(1) + fmath::Erf(x * C(0.70710678118654752440)));
  return cdf + x * C(0.39894228040143267794) * fmath::Exp(C(-0.5) * x * x);
}

// The tanh approximation (ONNX Gelu-20, torch's approximate='tanh'):
// x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))).
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kGeluCubic = 0.044715;
template <typename C>
C GeluTanh(C x) {
  const C u = C(kSqrt2OverPi) * (x + C(kGeluCubic) * x * x * x);
  return C(0.5) * x * (C(1) + fmath::Tanh(u));
}
template <typename C>
C GeluTanhGrad(C x) {
  const C u = C(kSqrt2OverPi) * (x + C(kGeluCubic) * x * x * x);
  const C t = fmath::Tanh(u);
  const C du = C(kSqrt2OverPi) * (C(1) + C(3 * kGeluCubic) * x * x);
  return C(0.5) * (C(1) + t) + C(0.5) * x * (C(1) - t * t) * du;
}

// log(1 + e^x) without overflow.
template <typename C>
C Softplus(C x) {
  return x > C(0) ? x + std::log1p(fmath::Exp(-x)) : std::log1p(fmath::Exp(x));
}
// Mish: x * tanh(softplus(x)).
template <typename C>
C Mish(C x) {
  return x * fmath::Tanh(Softplus(x));
}
// d/dx: tanh(sp) + x * (1 - tanh(sp)^2) * sigmoid(x).
template <typename C>
C MishGrad(C x) {
  const C t = fmath::Tanh(Softplus(x));
  const C sig = x >= C(0) ? C(1) / (C(1) + fmath::Exp(-x)) : fmath::Exp(x) / (C(1) + fmath::Exp(x));
  return t + x * (C(1) - t * t) * sig;
}

StatusOr<bool> TanhApproximation(const KernelContext& ctx) {
  const std::string a = ctx.attr_string("approximate", "none");
  if (a != "none" && a != "tanh") {
    return InvalidArgument(NodeDesc(ctx) + ": approximate must be 'none' or 'tanh', not '" + a +
                           "'");
  }
  return a == "tanh";
}

Status GeluKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0}, DType::kUndefined));
  RETURN_IF_ERROR(CheckOutType(ctx, ctx.in(0)->dtype));
  ASSIGN_OR_RETURN(const bool tanh, TanhApproximation(ctx));
  return Visit<kF>(ctx, ctx.in(0)->dtype, [&](auto e) -> Status {
    using E = decltype(e);
    using C = typename E::C;
    if (tanh) return Unary<E, E, kGrain>(ctx, [](C x) { return GeluTanh(x); });
    return Unary<E, E, kGrain>(ctx, [](C x) { return GeluErf(x); });
  });
}

template <typename F>
Status FloatUnary(KernelContext& ctx, F f) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0}, DType::kUndefined));
  RETURN_IF_ERROR(CheckOutType(ctx, ctx.in(0)->dtype));
  return Visit<kF>(ctx, ctx.in(0)->dtype, [&](auto e) -> Status {
    using E = decltype(e);
    return Unary<E, E, kGrain>(ctx, [&](typename E::C x) { return f(x); });
  });
}

Status MishKernel(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto x) { return Mish(x); });
}
Status SinKernel(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto x) { return std::sin(x); });
}
Status CosKernel(KernelContext& ctx) {
  return FloatUnary(ctx, [](auto x) { return std::cos(x); });
}

// dX = dY * f'(X): inputs dY and X of one float type and shape.
template <typename F>
Status ActivationGrad(KernelContext& ctx, F fprime) {
  RETURN_IF_ERROR(CheckInputs(ctx, {0, 1}, DType::kUndefined));
  const TensorView *dy = ctx.in(0), *x = ctx.in(1);
  if (dy->dtype != x->dtype || dy->dims != x->dims || ctx.out(0)->dims != x->dims) {
    return InvalidArgument(NodeDesc(ctx) + ": dY, X and dX must have one type and shape");
  }
  RETURN_IF_ERROR(CheckOutType(ctx, x->dtype));
  return Visit<kF>(ctx, x->dtype, [&](auto e) -> Status {
    using E = decltype(e);
    using C = typename E::C;
    return Binary<E, E, E, kGrain>(ctx, [&](C g, C v) { return g * fprime(v); });
  });
}

Status GeluGradKernel(KernelContext& ctx) {
  ASSIGN_OR_RETURN(const bool tanh, TanhApproximation(ctx));
  if (tanh) return ActivationGrad(ctx, [](auto x) { return GeluTanhGrad(x); });
  return ActivationGrad(ctx, [](auto x) { return GeluErfGrad(x); });
}
Status MishGradKernel(KernelContext& ctx) {
  return ActivationGrad(ctx, [](auto x) { return MishGrad(x); });
}

}  // namespace
}  // namespace ampc::cpu::ew

namespace ampc::cpu {

void RegisterActivationKernels(KernelRegistry& r) {
  r.Register("", "Gelu", ew::GeluKernel);
  r.Register("", "Mish", ew::MishKernel);
  r.Register("", "Sin", ew::SinKernel);
  r.Register("", "Cos", ew::CosKernel);
  r.Register(kAmpcDomain, "GeluGrad", ew::GeluGradKernel);
  r.Register(kAmpcDomain, "MishGrad", ew::MishGradKernel);
}

}  // namespace ampc::cpu
