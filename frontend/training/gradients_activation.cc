// Gradient rules for the activations and elementwise math added for today's PyTorch exports:
// Gelu and Mish (com.ampc::GeluGrad / MishGrad: dY * f'(X) in one pass), Sin, Cos, and
// Reciprocal (dynamo writes rsqrt as Reciprocal(Sqrt)). Each is checked against float64 finite
// differences (tests/unit/gradients_activation_test.cc).
#include "frontend/training/autodiff.h"
#include "frontend/training/gradient_util.h"

namespace ampc::grad {
namespace {

Status GradGelu(GradientContext& ctx) {
  AttributeMap attrs;
  if (const Attribute* a = ctx.forward.attr("approximate")) attrs["approximate"] = *a;
  ASSIGN_OR_RETURN(
      std::vector<Value*> g,
      EmitAmpc(ctx, "GeluGrad", {ctx.output_grads[0], ctx.forward.input(0)}, 1, std::move(attrs)));
  return SetGrad(ctx, 0, g[0]);
}

Status GradMish(GradientContext& ctx) {
  ASSIGN_OR_RETURN(std::vector<Value*> g,
                   EmitAmpc(ctx, "MishGrad", {ctx.output_grads[0], ctx.forward.input(0)}, 1, {}));
  return SetGrad(ctx, 0, g[0]);
}

Status GradSin(GradientContext& ctx) {  // dy * cos(x)
  EMIT(c, "Cos", {ctx.forward.input(0)});
  return SetGrad(ctx, 0, ctx.Emit("Mul", {ctx.output_grads[0], c}));
}

Status GradCos(GradientContext& ctx) {  // -dy * sin(x)
  EMIT(s, "Sin", {ctx.forward.input(0)});
  EMIT(p, "Mul", {ctx.output_grads[0], s});
  return SetGrad(ctx, 0, ctx.Emit("Neg", {p}));
}

Status GradReciprocal(GradientContext& ctx) {  // d(1/x) = -dy / x^2 = -dy * y^2
  Value* y = ctx.forward.output(0);
  EMIT(y2, "Mul", {y, y});
  EMIT(p, "Mul", {ctx.output_grads[0], y2});
  return SetGrad(ctx, 0, ctx.Emit("Neg", {p}));
}

}  // namespace

void RegisterActivationGradientRules(OpRegistry& r) {
  SetGradient(r, "Gelu", GradGelu);
  SetGradient(r, "Mish", GradMish);
  SetGradient(r, "Sin", GradSin);
  SetGradient(r, "Cos", GradCos);
  SetGradient(r, "Reciprocal", GradReciprocal);
}

}  // namespace ampc::grad
