// Gradient rules for the normalisation and attention ops of opsets 18-23: GroupNormalization and
// RMSNormalization (composed of standard ops, as LayerNormalization's rule is: exact, and the
// statistics are recomputed from X), RotaryEmbedding (the same rotation by the negated angle),
// Attention (com.ampc::AttentionGrad, which recomputes the probabilities). Each is checked against
// float64 finite differences (tests/unit/gradients_attention_test.cc).
#include <numeric>

#include "frontend/training/autodiff.h"
#include "frontend/training/gradient_util.h"
#include "ir/ops/infer_util.h"

namespace ampc::grad {
namespace {

AttributeMap MeanOver(int64_t first_axis, int64_t rank) {
  std::vector<int64_t> axes(static_cast<size_t>(rank - first_axis));
  std::iota(axes.begin(), axes.end(), first_axis);
  return {{"axes", Attribute(axes)}, {"keepdims", Attribute(int64_t{1})}};
}

// RMSNormalization: y = x * r * s, r = 1 / sqrt(mean(x^2) + eps) over [axis, rank).
//   ds = sum over the broadcast dims of dy * x * r;
//   dx = r * (g - x * r^2 * mean(g * x)),  g = dy * s.
Status GradRMSNorm(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* x = n.input(0);
  Value* scale = n.input(1);
  Value* dy = ctx.output_grads[0];
  if (!x->type().has_rank) return Unimplemented("RMSNormalization gradient needs a known rank");
  const int64_t rank = x->type().rank();
  ASSIGN_OR_RETURN(int64_t axis, infer::NormalizeAxis(n.attr_int("axis", -1), rank));
  const AttributeMap mean = MeanOver(axis, rank);
  CONST(eps, static_cast<double>(n.attr_float("epsilon", 1e-5f)), x);
  EMIT(x2, "Mul", {x, x});
  EMIT(ms, "ReduceMean", {x2}, mean);
  EMIT(mse, "Add", {ms, eps});
  EMIT(rms, "Sqrt", {mse});
  EMIT(r, "Reciprocal", {rms});
  if (ctx.NeedsGrad(1)) {
    EMIT(xr, "Mul", {x, r});
    EMIT(g, "Mul", {dy, xr});
    RETURN_IF_ERROR(SetGrad(ctx, 1, SumToShape(ctx, g, scale)));
  }
  if (ctx.NeedsGrad(0)) {
    EMIT(g, "Mul", {dy, scale});
    EMIT(gx, "Mul", {g, x});
    EMIT(m, "ReduceMean", {gx}, mean);
    EMIT(r2, "Mul", {r, r});
    EMIT(xr2, "Mul", {x, r2});
    EMIT(t, "Mul", {xr2, m});
    EMIT(d, "Sub", {g, t});
    RETURN_IF_ERROR(SetGrad(ctx, 0, ctx.Emit("Mul", {r, d})));
  }
  return Status::Ok();
}

// GroupNormalization (per-channel scale and bias): statistics per (sample, group) over x viewed
// as [N, G, C/G * spatial]; with xhat that normalized x and g = dy * scale,
//   dx = invstd * (g - mean(g) - xhat * mean(g * xhat))   (means per group),
//   dscale = sum(dy * xhat), dbias = sum(dy)   (over every axis but the channels).
Status GradGroupNorm(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* x = n.input(0);
  Value* dy = ctx.output_grads[0];
  if (!x->type().has_rank) return Unimplemented("GroupNormalization gradient needs a known rank");
  const int64_t rank = x->type().rank();
  std::vector<int64_t> not_channels = {0};
  for (int64_t a = 2; a < rank; ++a) not_channels.push_back(a);
  ASSIGN_OR_RETURN(Value * not_c, ctx.Ints(not_channels));
  if (ctx.NeedsGrad(2))
    RETURN_IF_ERROR(SetGrad(ctx, 2, ctx.Emit("ReduceSum", {dy, not_c}, Keep(0))));
  if (!ctx.NeedsGrad(0) && !ctx.NeedsGrad(1)) return Status::Ok();
  const int64_t groups = n.attr_int("num_groups", 1);
  ASSIGN_OR_RETURN(Value * grouped_shape, ctx.Ints({0, groups, -1}));  // 0: keep N
  ASSIGN_OR_RETURN(Value * x_shape, ShapeOf(ctx, x));
  const AttributeMap mean = MeanOver(2, 3);
  CONST(eps, static_cast<double>(n.attr_float("epsilon", 1e-5f)), x);
  CONST(one, 1.0, x);
  EMIT(xg, "Reshape", {x, grouped_shape});
  EMIT(mu, "ReduceMean", {xg}, mean);
  EMIT(d, "Sub", {xg, mu});
  EMIT(d2, "Mul", {d, d});
  EMIT(var, "ReduceMean", {d2}, mean);
  EMIT(ve, "Add", {var, eps});
  EMIT(sd, "Sqrt", {ve});
  EMIT(invstd, "Div", {one, sd});
  EMIT(xhat_g, "Mul", {d, invstd});
  if (ctx.NeedsGrad(1)) {
    EMIT(xhat, "Reshape", {xhat_g, x_shape});
    EMIT(p, "Mul", {dy, xhat});
    RETURN_IF_ERROR(SetGrad(ctx, 1, ctx.Emit("ReduceSum", {p, not_c}, Keep(0))));
  }
  if (ctx.NeedsGrad(0)) {
    Value* scale = n.input(1);
    if (rank > 2) {  // [C] -> [C, 1, ...] against [N, C, spatial...]
      std::vector<int64_t> tail(static_cast<size_t>(rank - 2));
      std::iota(tail.begin(), tail.end(), 1);
      ASSIGN_OR_RETURN(Value * ax, ctx.Ints(tail));
      ASSIGN_OR_RETURN(scale, ctx.Emit("Unsqueeze", {scale, ax}));
    }
    EMIT(g, "Mul", {dy, scale});
    EMIT(gg, "Reshape", {g, grouped_shape});
    EMIT(m1, "ReduceMean", {gg}, mean);
    EMIT(gx, "Mul", {gg, xhat_g});
    EMIT(m2, "ReduceMean", {gx}, mean);
    EMIT(t1, "Sub", {gg, m1});
    EMIT(t2, "Mul", {xhat_g, m2});
    EMIT(t3, "Sub", {t1, t2});
    EMIT(dxg, "Mul", {invstd, t3});
    RETURN_IF_ERROR(SetGrad(ctx, 0, ctx.Emit("Reshape", {dxg, x_shape})));
  }
  return Status::Ok();
}

// RotaryEmbedding rotates pairs by an angle; its transpose rotates them back: the same op with
// the sine cache negated.
Status GradRotary(GradientContext& ctx) {
  Node& n = ctx.forward;
  if (ctx.NeedsGrad(1) || ctx.NeedsGrad(2)) {
    return Unimplemented("gradient with respect to RotaryEmbedding's cos/sin caches");
  }
  if (!ctx.NeedsGrad(0)) return Status::Ok();
  EMIT(neg_sin, "Neg", {n.input(2)});
  std::vector<Value*> in = {ctx.output_grads[0], n.input(1), neg_sin};
  if (n.input(3)) in.push_back(n.input(3));
  return SetGrad(ctx, 0, ctx.Emit("RotaryEmbedding", in, n.attrs()));
}

Status GradAttention(GradientContext& ctx) {
  Node& n = ctx.forward;
  if (ctx.NeedsGrad(3)) return Unimplemented("gradient with respect to Attention's attn_mask");
  std::vector<Value*> in = {ctx.output_grads[0], n.input(0), n.input(1), n.input(2)};
  if (n.input(3)) in.push_back(n.input(3));
  ASSIGN_OR_RETURN(std::vector<Value*> g, EmitAmpc(ctx, "AttentionGrad", in, 3, n.attrs()));
  for (int i = 0; i < 3; ++i) {
    if (ctx.NeedsGrad(i)) ctx.input_grads[i] = g[i];
  }
  return Status::Ok();
}

}  // namespace

void RegisterNormAttentionGradientRules(OpRegistry& r) {
  SetGradient(r, "RMSNormalization", GradRMSNorm);
  SetGradient(r, "GroupNormalization", GradGroupNorm);
  SetGradient(r, "RotaryEmbedding", GradRotary);
  SetGradient(r, "Attention", GradAttention);
}

}  // namespace ampc::grad
