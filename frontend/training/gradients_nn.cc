// Gradient rules for the CNN layers and NegativeLogLikelihoodLoss. Conv, the pools and
// training-mode BatchNormalization use the com.ampc backward ops (ir/ops/grad_ops.cc), which get
// the forward node's attributes so that they see the same window geometry; the rest is standard
// ONNX ops.
#include <string>

#include "frontend/training/gradient_util.h"
#include "ir/ops/infer_util.h"

namespace ampc::grad {
namespace {

Status GradConv(GradientContext& ctx) {
  Node& n = ctx.forward;
  const bool bias = n.input(2) && ctx.NeedsGrad(2);
  const int outputs = bias ? 3 : ctx.NeedsGrad(1) ? 2 : 1;
  // dX is omitted where nothing needs it (the first layer's input): the kernel skips its GEMMs.
  std::vector<bool> wanted(static_cast<size_t>(outputs), true);
  wanted[0] = ctx.NeedsGrad(0);
  ASSIGN_OR_RETURN(std::vector<Value*> g,
                   EmitAmpc(ctx, "ConvGrad", {ctx.output_grads[0], n.input(0), n.input(1)}, outputs,
                            n.attrs(), wanted));
  for (int i = 0; i < outputs; ++i) {
    if (ctx.NeedsGrad(i)) ctx.input_grads[i] = g[i];
  }
  return Status::Ok();
}

Status GradMaxPool(GradientContext& ctx) {  // output 1 (Indices) is integer: no gradient
  Node& n = ctx.forward;
  if (!ctx.output_grads[0]) return Status::Ok();
  ASSIGN_OR_RETURN(std::vector<Value*> g,
                   EmitAmpc(ctx, "MaxPoolGrad", {ctx.output_grads[0], n.input(0)}, 1, n.attrs()));
  ctx.input_grads[0] = g[0];
  return Status::Ok();
}

Status GradAveragePool(GradientContext& ctx) {
  Node& n = ctx.forward;
  ASSIGN_OR_RETURN(Value * shape, ShapeOf(ctx, n.input(0)));
  ASSIGN_OR_RETURN(std::vector<Value*> g,
                   EmitAmpc(ctx, "AveragePoolGrad", {ctx.output_grads[0], shape}, 1, n.attrs()));
  ctx.input_grads[0] = g[0];
  return Status::Ok();
}

Status GradGlobalAveragePool(GradientContext& ctx) {  // dy / (spatial size), expanded
  Value* x = ctx.forward.input(0);
  Value* y = ctx.forward.output(0);
  ASSIGN_OR_RETURN(Value * nx, CountOf(ctx, x, x->dtype()));
  ASSIGN_OR_RETURN(Value * ny, CountOf(ctx, y, x->dtype()));
  EMIT(spatial, "Div", {nx, ny});
  EMIT(g, "Div", {ctx.output_grads[0], spatial});
  ASSIGN_OR_RETURN(Value * shape, ShapeOf(ctx, x));
  return SetGrad(ctx, 0, ctx.Emit("Expand", {g, shape}));
}

// Inference-mode BatchNormalization, y = (x - mean) * k + B with k = scale / sqrt(var + eps):
// an affine map per channel, differentiated with standard ops.
Status GradBatchNormInference(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* x = n.input(0);
  Value* dy = ctx.output_grads[0];
  const int64_t r = x->type().rank();
  std::vector<int64_t> col(static_cast<size_t>(r - 1), 1), others = {0};
  col[0] = -1;
  for (int64_t i = 2; i < r; ++i) others.push_back(i);
  ASSIGN_OR_RETURN(Value * col_shape, ctx.Ints(col));
  ASSIGN_OR_RETURN(Value * other_axes, ctx.Ints(others));
  auto per_channel = [&](Value* v) { return ctx.Emit("Reshape", {v, col_shape}); };
  auto channel_sum = [&](Value* v) { return ctx.Emit("ReduceSum", {v, other_axes}, Keep(0)); };
  Value* scale = n.input(1);
  Value* mean = n.input(3);
  Value* var = n.input(4);
  CONST(eps, static_cast<double>(n.attr_float("epsilon", 1e-5f)), var);
  EMIT(ve, "Add", {var, eps});
  EMIT(sd, "Sqrt", {ve});
  EMIT(k, "Div", {scale, sd});  // [C]
  if (ctx.NeedsGrad(0)) {
    ASSIGN_OR_RETURN(Value * kc, per_channel(k));
    RETURN_IF_ERROR(SetGrad(ctx, 0, ctx.Emit("Mul", {dy, kc})));
  }
  Value* sum_dy = nullptr;
  if (ctx.NeedsGrad(2) || ctx.NeedsGrad(3)) {
    ASSIGN_OR_RETURN(sum_dy, channel_sum(dy));
  }
  if (ctx.NeedsGrad(2)) ctx.input_grads[2] = sum_dy;
  if (ctx.NeedsGrad(3)) {  // -k * sum(dy)
    EMIT(t, "Mul", {sum_dy, k});
    RETURN_IF_ERROR(SetGrad(ctx, 3, ctx.Emit("Neg", {t})));
  }
  if (!ctx.NeedsGrad(1) && !ctx.NeedsGrad(4)) return Status::Ok();
  ASSIGN_OR_RETURN(Value * mc, per_channel(mean));
  EMIT(d, "Sub", {x, mc});
  EMIT(dyd, "Mul", {dy, d});
  ASSIGN_OR_RETURN(Value * s, channel_sum(dyd));  // sum(dy * (x - mean)) per channel
  if (ctx.NeedsGrad(1)) RETURN_IF_ERROR(SetGrad(ctx, 1, ctx.Emit("Div", {s, sd})));
  if (ctx.NeedsGrad(4)) {  // -0.5 * scale * s / (var + eps)^1.5
    EMIT(t, "Mul", {s, k});
    EMIT(t2, "Div", {t, ve});
    CONST(mhalf, -0.5, var);
    RETURN_IF_ERROR(SetGrad(ctx, 4, ctx.Emit("Mul", {t2, mhalf})));
  }
  return Status::Ok();
}

Status GradBatchNorm(GradientContext& ctx) {
  Node& n = ctx.forward;
  for (size_t i = 1; i < ctx.output_grads.size(); ++i) {
    if (ctx.output_grads[i]) {
      return Unimplemented("gradient through BatchNormalization's running statistics");
    }
  }
  if (!ctx.output_grads[0]) return Status::Ok();
  Value* x = n.input(0);
  if (!x->type().has_rank) return Unimplemented("BatchNormalization gradient needs a known rank");
  if (n.attr_int("training_mode", 0) == 0) return GradBatchNormInference(ctx);
  // Training mode: Y does not depend on input_mean / input_var.
  ASSIGN_OR_RETURN(std::vector<Value*> g,
                   EmitAmpc(ctx, "BatchNormalizationGrad", {ctx.output_grads[0], x, n.input(1)}, 3,
                            {{"epsilon", Attribute(n.attr_float("epsilon", 1e-5f))}}));
  for (int i = 0; i < 3; ++i) {
    if (ctx.NeedsGrad(i)) ctx.input_grads[i] = g[i];
  }
  return Status::Ok();
}

// dy * mask / (1 - ratio), as dy * Where(mask, scale, 0) so that ratio 1 (scale infinite at run
// time, every element dropped) gives 0. `mode`, when given, is a run-time training_mode: in
// inference mode the scale is 1 (and the mask all true).
StatusOr<Value*> MaskedDropoutGrad(GradientContext& ctx, Value* dy, Value* mask, Value* mode) {
  Node& n = ctx.forward;
  Value* x = n.input(0);
  Value* scale = nullptr;
  std::optional<double> ratio = n.input(1) ? ConstantScalar(n.input(1)) : 0.5;
  if (ratio) {
    CONST(c, *ratio < 1.0 ? 1.0 / (1.0 - *ratio) : 0.0, x);
    scale = c;
  } else {  // 1 / (1 - ratio) at run time
    Value* rv = n.input(1);
    if (rv->dtype() != x->dtype()) {
      ASSIGN_OR_RETURN(rv, ctx.Emit("Cast", {rv}, CastTo(x->dtype())));
    }
    CONST(one, 1.0, x);
    EMIT(keep, "Sub", {one, rv});
    ASSIGN_OR_RETURN(scale, ctx.Emit("Div", {one, keep}));
  }
  if (mode) {
    CONST(one, 1.0, x);
    ASSIGN_OR_RETURN(scale, ctx.Emit("Where", {mode, scale, one}));
  }
  CONST(zero, 0.0, x);
  EMIT(m, "Where", {mask, scale, zero});
  return ctx.Emit("Mul", {dy, m});
}

// Dropout: dy * mask / (1 - ratio) in training mode, dy otherwise. A training_mode that is not
// a constant selects the scale at run time.
Status GradDropout(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* dy = ctx.output_grads[0];
  if (!dy) return Status::Ok();
  Value* mode = n.input(2);
  std::optional<double> mode_value = mode ? ConstantScalar(mode) : std::optional<double>(0.0);
  if (mode_value && *mode_value == 0.0) {
    ctx.input_grads[0] = dy;
    return Status::Ok();
  }
  Value* mask = n.output(1);
  if (!mask) {
    return Unimplemented("training-mode Dropout without its mask output (add the output 'mask' " +
                         std::string("so that the backward pass can reuse it)"));
  }
  return SetGrad(ctx, 0, MaskedDropoutGrad(ctx, dy, mask, mode_value ? nullptr : mode));
}

// com.ampc::Dropout(data, ratio, step): dy * mask / (1 - ratio) with the forward mask output.
// Without one, the same op applied to dy is the gradient: its mask depends only on (seed, step,
// element index), so it regenerates the forward mask exactly.
Status GradAmpcDropout(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* dy = ctx.output_grads[0];
  if (!dy) return Status::Ok();
  if (Value* mask = n.output(1)) return SetGrad(ctx, 0, MaskedDropoutGrad(ctx, dy, mask, nullptr));
  ASSIGN_OR_RETURN(std::vector<Value*> g,
                   EmitAmpc(ctx, "Dropout", {dy, n.input(1), n.input(2)}, 1, n.attrs()));
  ctx.input_grads[0] = g[0];
  return Status::Ok();
}

// NegativeLogLikelihoodLoss, loss_i = -w[t_i] * x[n, t_i, d...] (0 for ignored targets):
// dx = -onehot(t) * w[t] * s, with s = dy (none: per element) or dy / sum(w[t]) (mean).
Status GradNll(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* x = n.input(0);
  Value* target = n.input(1);
  Value* weight = n.input(2);
  Value* dy = ctx.output_grads[0];
  const TensorType& xt = x->type();
  if (!xt.has_rank || xt.rank() < 2) return Unimplemented("NLL gradient needs a known rank >= 2");
  const DType dt = x->dtype();
  Graph& g = ctx.graph;
  Value* t = target;
  if (t->dtype() != DType::kInt64) {
    ASSIGN_OR_RETURN(t, ctx.Emit("Cast", {target}, CastTo(DType::kInt64)));
  }
  Value* keep = nullptr;  // 1 where the target counts, as dt
  if (const Attribute* ii = n.attr("ignore_index")) {
    ASSIGN_OR_RETURN(Value * iv,
                     g.AddInitializer(g.UniqueName("grad_ints"), Tensor::ScalarInt64(ii->i())));
    EMIT(ignored, "Equal", {t, iv});
    EMIT(kept, "Not", {ignored});
    ASSIGN_OR_RETURN(keep, ctx.Emit("Cast", {kept}, CastTo(dt)));
    ASSIGN_OR_RETURN(Value * zero,
                     g.AddInitializer(g.UniqueName("grad_ints"), Tensor::ScalarInt64(0)));
    ASSIGN_OR_RETURN(t, ctx.Emit("Where", {ignored, zero, t}));  // in range for Gather
  }
  Value* w = keep;  // per-element weight [N, d...], nullptr = all ones
  if (weight) {
    EMIT(wt, "Gather", {weight, t}, {{"axis", Attribute(int64_t{0})}});
    if (keep) {
      ASSIGN_OR_RETURN(w, ctx.Emit("Mul", {wt, keep}));
    } else {
      w = wt;
    }
  }
  Value* s = dy;
  const std::string reduction = n.attr_string("reduction", "mean");
  if (reduction == "mean") {
    Value* total = nullptr;
    if (w) {
      ASSIGN_OR_RETURN(total, ctx.Emit("ReduceSum", {w}, Keep(0)));
    } else {
      ASSIGN_OR_RETURN(total, CountOf(ctx, target, dt));
    }
    ASSIGN_OR_RETURN(s, ctx.Emit("Div", {dy, total}));
  }
  if (w) {
    ASSIGN_OR_RETURN(s, ctx.Emit("Mul", {w, s}));
  }
  EMIT(neg, "Neg", {s});
  ASSIGN_OR_RETURN(Value * onehot, ClassOneHot(ctx, t, x));
  ASSIGN_OR_RETURN(Value * ax1, ctx.Ints({1}));
  Value* coef = neg;
  if (coef->type().rank() > 0) {
    ASSIGN_OR_RETURN(coef, ctx.Emit("Unsqueeze", {neg, ax1}));
  }
  EMIT(gx, "Mul", {onehot, coef});
  if (ctx.NeedsGrad(0)) ctx.input_grads[0] = gx;
  if (ctx.NeedsGrad(2)) return Unimplemented("gradient of NegativeLogLikelihoodLoss's weight");
  return Status::Ok();
}

}  // namespace

void RegisterNNGradientRules(OpRegistry& r) {
  SetGradient(r, "Conv", GradConv);
  SetGradient(r, "MaxPool", GradMaxPool);
  SetGradient(r, "AveragePool", GradAveragePool);
  SetGradient(r, "GlobalAveragePool", GradGlobalAveragePool);
  SetGradient(r, "BatchNormalization", GradBatchNorm);
  // The PyTorch-running-statistics variant the training graph uses: same Y, same gradient.
  if (OpSchema* s = r.FindMutable(kAmpcDomain, "BatchNormalization")) s->gradient = GradBatchNorm;
  SetGradient(r, "Dropout", GradDropout);
  if (OpSchema* s = r.FindMutable(kAmpcDomain, "Dropout")) s->gradient = GradAmpcDropout;
  SetGradient(r, "NegativeLogLikelihoodLoss", GradNll);
}

}  // namespace ampc::grad
