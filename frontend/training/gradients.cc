// Per-op gradient rules for reverse-mode autodiff (frontend/training/autodiff.h). Each rule reads
// ctx.output_grads and sets ctx.input_grads for the inputs in ctx.needs_grad, emitting standard
// ONNX ops through ctx.Emit. Broadcasting binary ops sum the gradient back to the input shape.
// This file holds the shared helpers (gradient_util.h), the arithmetic, matrix, shape, reduction
// and softmax rules, and the registration; gradients_nn.cc and gradients_tensor.cc hold the rest.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "frontend/training/autodiff.h"
#include "frontend/training/gradient_util.h"
#include "ir/ops/infer_util.h"

namespace ampc {
namespace grad {

AttributeMap Keep(int64_t keep) { return {{"keepdims", Attribute(keep)}}; }

AttributeMap CastTo(DType t) {
  return {{"to", Attribute(static_cast<int64_t>(DTypeToOnnxNumber(t)))}};
}

StatusOr<Value*> ShapeOf(GradientContext& ctx, Value* v) {
  if (v->type().is_fully_static()) {
    std::vector<int64_t> dims;
    for (const Dim& d : v->type().dims) dims.push_back(d.value());
    return ctx.Ints(dims);
  }
  return ctx.Emit("Shape", {v});
}

StatusOr<Value*> SumToShape(GradientContext& ctx, Value* grad, Value* target) {
  const TensorType& gt = grad->type();
  const TensorType& tt = target->type();
  if (gt.has_rank && tt.has_rank && gt.dims == tt.dims && !gt.dims.empty() &&
      tt.is_fully_static()) {
    return grad;
  }
  if (gt.has_rank && tt.has_rank && gt.dims == tt.dims && gt.dims.empty()) return grad;
  if (!gt.has_rank || !tt.has_rank || tt.rank() > gt.rank()) {
    return Unimplemented("cannot reduce a gradient of type " + gt.ToString() + " to " +
                         tt.ToString());
  }
  const int64_t lead = gt.rank() - tt.rank();
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < lead; ++i) axes.push_back(i);
  for (int64_t i = 0; i < tt.rank(); ++i) {
    const Dim& td = tt.dims[i];
    const Dim& gd = gt.dims[i + lead];
    if (td == gd && !td.is_unknown()) continue;
    if (td == Dim(1)) {
      axes.push_back(i + lead);
      continue;
    }
    return Unimplemented("cannot tell how " + tt.ToString() + " broadcasts to " + gt.ToString());
  }
  Value* r = grad;
  if (!axes.empty()) {
    ASSIGN_OR_RETURN(Value * ax, ctx.Ints(axes));
    ASSIGN_OR_RETURN(r, ctx.Emit("ReduceSum", {grad, ax}, Keep(1)));
  }
  if (lead > 0) {
    ASSIGN_OR_RETURN(Value * shape, ShapeOf(ctx, target));
    ASSIGN_OR_RETURN(r, ctx.Emit("Reshape", {r, shape}));
  }
  return r;
}

StatusOr<Value*> CountOf(GradientContext& ctx, Value* v, DType dt) {
  if (auto n = v->type().NumElements()) {
    return ctx.graph.AddInitializer(ctx.graph.UniqueName("grad_const"),
                                    Tensor::Scalar(dt, static_cast<double>(*n)));
  }
  ASSIGN_OR_RETURN(Value * size, ctx.Emit("Size", {v}));
  return ctx.Emit("Cast", {size}, CastTo(dt));
}

StatusOr<Value*> ZerosLike(GradientContext& ctx, Value* v) {
  CONST(zero, 0.0, v);
  ASSIGN_OR_RETURN(Value * shape, ShapeOf(ctx, v));
  return ctx.Emit("Expand", {zero, shape});
}

Status SetGrad(GradientContext& ctx, int i, StatusOr<Value*> g) {
  if (!g.ok()) return g.status();
  ctx.input_grads[i] = *g;
  return Status::Ok();
}

StatusOr<std::vector<Value*>> EmitAmpc(GradientContext& ctx, const std::string& op,
                                       std::vector<Value*> inputs, int num_outputs,
                                       AttributeMap attrs, const std::vector<bool>& wanted) {
  ctx.graph.opsets().emplace(kAmpcDomain, 1);
  return ctx.EmitMulti(op, std::move(inputs), num_outputs, std::move(attrs), kAmpcDomain, wanted);
}

std::optional<double> ConstantScalar(const Value* v) {
  if (!v || v->kind() != ValueKind::kInitializer || !v->initializer()) return std::nullopt;
  auto d = v->initializer()->AsDoubles();
  if (!d || d->size() != 1) return std::nullopt;
  return (*d)[0];
}

StatusOr<std::optional<std::vector<int64_t>>> ReducedAxes(const Node& n) {
  Value* x = n.input(0);
  if (!x->type().has_rank) return Unimplemented("reduction gradient needs a known rank");
  const int64_t r = x->type().rank();
  std::vector<int64_t> axes = n.attr_ints("axes");  // before opset 18 (ReduceSum: 13)
  if (n.input(1)) {
    auto known = infer::KnownStatic(n.input(1));
    if (!known) return Unimplemented(n.op_type() + " gradient needs constant axes");
    axes = *known;
  }
  if (axes.empty() && n.attr_int("noop_with_empty_axes", 0) != 0) {
    return std::optional<std::vector<int64_t>>();
  }
  if (axes.empty()) {
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  }
  ASSIGN_OR_RETURN(axes, infer::NormalizeAxes(axes, r));
  std::sort(axes.begin(), axes.end());
  return std::optional<std::vector<int64_t>>(std::move(axes));
}

StatusOr<Value*> UnreduceShape(GradientContext& ctx, Value* dy, const std::vector<int64_t>& axes,
                               bool keepdims) {
  if (keepdims) return dy;
  ASSIGN_OR_RETURN(Value * ax, ctx.Ints(axes));
  return ctx.Emit("Unsqueeze", {dy, ax});
}

StatusOr<Value*> ClassOneHot(GradientContext& ctx, Value* labels, Value* scores) {
  Graph& g = ctx.graph;
  const TensorType& xt = scores->type();
  const int64_t r = xt.rank();
  ASSIGN_OR_RETURN(Value * ax1, ctx.Ints({1}));
  EMIT(lab_u, "Unsqueeze", {labels, ax1});
  ASSIGN_OR_RETURN(Value * start,
                   g.AddInitializer(g.UniqueName("grad_ints"), Tensor::ScalarInt64(0)));
  ASSIGN_OR_RETURN(Value * delta,
                   g.AddInitializer(g.UniqueName("grad_ints"), Tensor::ScalarInt64(1)));
  Value* limit = nullptr;
  if (xt.dims[1].is_static()) {
    ASSIGN_OR_RETURN(limit, g.AddInitializer(g.UniqueName("grad_ints"),
                                             Tensor::ScalarInt64(xt.dims[1].value())));
  } else {
    EMIT(shape, "Shape", {scores});
    ASSIGN_OR_RETURN(limit, ctx.Emit("Gather", {shape, delta}, {{"axis", Attribute(int64_t{0})}}));
  }
  EMIT(cls, "Range", {start, limit, delta});
  if (r > 2) {  // classes along axis 1 of [N, C, d...]
    std::vector<int64_t> shape(r - 1, 1);
    shape[0] = -1;
    ASSIGN_OR_RETURN(Value * s, ctx.Ints(shape));
    ASSIGN_OR_RETURN(cls, ctx.Emit("Reshape", {cls, s}));
  }
  EMIT(eq, "Equal", {lab_u, cls});
  return ctx.Emit("Cast", {eq}, CastTo(scores->dtype()));
}

void SetGradient(OpRegistry& r, const char* op, GradientFn fn) {
  OpSchema* s = r.FindMutable("", op);
  AMPC_CHECK(s != nullptr);
  s->gradient = fn;
}

namespace {

// ---- elementwise ------------------------------------------------------------------------------

Status GradAddSub(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* dy = ctx.output_grads[0];
  if (ctx.NeedsGrad(0)) RETURN_IF_ERROR(SetGrad(ctx, 0, SumToShape(ctx, dy, n.input(0))));
  if (ctx.NeedsGrad(1)) {
    Value* g = dy;
    if (n.op_type() == "Sub") {
      ASSIGN_OR_RETURN(g, ctx.Emit("Neg", {dy}));
    }
    RETURN_IF_ERROR(SetGrad(ctx, 1, SumToShape(ctx, g, n.input(1))));
  }
  return Status::Ok();
}

Status GradMul(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* dy = ctx.output_grads[0];
  for (int i : {0, 1}) {
    if (!ctx.NeedsGrad(i)) continue;
    EMIT(g, "Mul", {dy, n.input(1 - i)});
    RETURN_IF_ERROR(SetGrad(ctx, i, SumToShape(ctx, g, n.input(i))));
  }
  return Status::Ok();
}

Status GradDiv(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* dy = ctx.output_grads[0];
  if (ctx.NeedsGrad(0)) {
    EMIT(g, "Div", {dy, n.input(1)});
    RETURN_IF_ERROR(SetGrad(ctx, 0, SumToShape(ctx, g, n.input(0))));
  }
  if (ctx.NeedsGrad(1)) {  // d(a/b)/db = -y/b
    EMIT(t, "Mul", {dy, n.output(0)});
    EMIT(q, "Div", {t, n.input(1)});
    EMIT(g, "Neg", {q});
    RETURN_IF_ERROR(SetGrad(ctx, 1, SumToShape(ctx, g, n.input(1))));
  }
  return Status::Ok();
}

Status GradNeg(GradientContext& ctx) {
  return SetGrad(ctx, 0, ctx.Emit("Neg", {ctx.output_grads[0]}));
}

Status GradIdentity(GradientContext& ctx) {
  ctx.input_grads[0] = ctx.output_grads[0];
  return Status::Ok();
}

// com.ampc::ReluGrad: dy where y > 0, which is where x > 0 (y = max(x, 0) in x's own type: a NaN
// or a zero of either sign is not > 0 on either side), as torch's threshold_backward reads the
// result. Reading y, not x, lets x die at the Relu: its buffer is free for the rest of the
// forward pass, and a GEMM or convolution before the Relu can apply it as its epilogue.
Status GradRelu(GradientContext& ctx) {
  ASSIGN_OR_RETURN(
      std::vector<Value*> g,
      grad::EmitAmpc(ctx, "ReluGrad", {ctx.output_grads[0], ctx.forward.output(0)}, 1, {}));
  return SetGrad(ctx, 0, g[0]);
}

Status GradTanh(GradientContext& ctx) {  // dy * (1 - y^2)
  Value* y = ctx.forward.output(0);
  CONST(one, 1.0, y);
  EMIT(y2, "Mul", {y, y});
  EMIT(d, "Sub", {one, y2});
  return SetGrad(ctx, 0, ctx.Emit("Mul", {ctx.output_grads[0], d}));
}

Status GradSigmoid(GradientContext& ctx) {  // dy * y * (1 - y)
  Value* y = ctx.forward.output(0);
  CONST(one, 1.0, y);
  EMIT(c, "Sub", {one, y});
  EMIT(d, "Mul", {y, c});
  return SetGrad(ctx, 0, ctx.Emit("Mul", {ctx.output_grads[0], d}));
}

Status GradExp(GradientContext& ctx) {
  return SetGrad(ctx, 0, ctx.Emit("Mul", {ctx.output_grads[0], ctx.forward.output(0)}));
}

Status GradLog(GradientContext& ctx) {
  return SetGrad(ctx, 0, ctx.Emit("Div", {ctx.output_grads[0], ctx.forward.input(0)}));
}

Status GradSqrt(GradientContext& ctx) {  // dy / (2 y)
  Value* y = ctx.forward.output(0);
  CONST(two, 2.0, y);
  EMIT(d, "Mul", {y, two});
  return SetGrad(ctx, 0, ctx.Emit("Div", {ctx.output_grads[0], d}));
}

Status GradErf(GradientContext& ctx) {  // dy * 2/sqrt(pi) * exp(-x^2)
  Value* x = ctx.forward.input(0);
  CONST(c, 2.0 / std::sqrt(std::acos(-1.0)), x);
  EMIT(x2, "Mul", {x, x});
  EMIT(nx2, "Neg", {x2});
  EMIT(e, "Exp", {nx2});
  EMIT(d, "Mul", {e, c});
  return SetGrad(ctx, 0, ctx.Emit("Mul", {ctx.output_grads[0], d}));
}

Status GradPow(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* x = n.input(0);
  Value* p = n.input(1);
  Value* dy = ctx.output_grads[0];
  if (ctx.NeedsGrad(0)) {  // dy * p * x^(p-1)
    Value* pc = p;
    if (p->dtype() != x->dtype()) {
      ASSIGN_OR_RETURN(pc, ctx.Emit("Cast", {p}, CastTo(x->dtype())));
    }
    CONST(one, 1.0, x);
    EMIT(pm1, "Sub", {pc, one});
    EMIT(xp, "Pow", {x, pm1});
    EMIT(d, "Mul", {xp, pc});
    EMIT(g, "Mul", {dy, d});
    RETURN_IF_ERROR(SetGrad(ctx, 0, SumToShape(ctx, g, x)));
  }
  if (ctx.NeedsGrad(1)) {  // dy * y * log(x)
    if (p->dtype() != x->dtype()) return Unimplemented("Pow exponent of another dtype");
    EMIT(lx, "Log", {x});
    EMIT(d, "Mul", {n.output(0), lx});
    EMIT(g, "Mul", {dy, d});
    RETURN_IF_ERROR(SetGrad(ctx, 1, SumToShape(ctx, g, p)));
  }
  return Status::Ok();
}

// ---- matrix products --------------------------------------------------------------------------

Status GradMatMul(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* a = n.input(0);
  Value* b = n.input(1);
  Value* dy = ctx.output_grads[0];
  if (!a->type().has_rank || !b->type().has_rank || a->type().rank() < 2 || b->type().rank() < 2) {
    return Unimplemented("MatMul gradient needs inputs of known rank >= 2");
  }
  // com.ampc::MatMul reads the transposed operand in place (no Transpose node, no copy).
  if (ctx.NeedsGrad(0)) {  // dA = dy @ B^T (summed over broadcast batch dims)
    ASSIGN_OR_RETURN(auto g,
                     EmitAmpc(ctx, "MatMul", {dy, b}, 1, {{"transB", Attribute(int64_t{1})}}));
    RETURN_IF_ERROR(SetGrad(ctx, 0, SumToShape(ctx, g[0], a)));
  }
  if (ctx.NeedsGrad(1)) {  // dB = A^T @ dy
    ASSIGN_OR_RETURN(auto g,
                     EmitAmpc(ctx, "MatMul", {a, dy}, 1, {{"transA", Attribute(int64_t{1})}}));
    RETURN_IF_ERROR(SetGrad(ctx, 1, SumToShape(ctx, g[0], b)));
  }
  return Status::Ok();
}

Status GradGemm(GradientContext& ctx) {
  Node& n = ctx.forward;
  const float alpha = n.attr_float("alpha", 1.0f), beta = n.attr_float("beta", 1.0f);
  const int64_t ta = n.attr_int("transA", 0) != 0, tb = n.attr_int("transB", 0) != 0;
  Value* a = n.input(0);
  Value* b = n.input(1);
  Value* dy = ctx.output_grads[0];
  auto gemm = [&](Value* x, Value* y, int64_t tx, int64_t ty) {
    return ctx.Emit(
        "Gemm", {x, y},
        {{"alpha", Attribute(alpha)}, {"transA", Attribute(tx)}, {"transB", Attribute(ty)}});
  };
  // Y = alpha A' B' + beta C with A' = op(A), B' = op(B). C's gradient (the bias's: dY summed
  // over the rows) first: emitted right after dY's producer, before the GEMMs read dY, so that
  // fusion makes it the reduction that ends dY's generated kernel (one pass) instead of a pass
  // of its own after them.
  if (ctx.NeedsGrad(2)) {
    Value* g = dy;
    if (beta != 1.0f) {
      CONST(bc, static_cast<double>(beta), dy);
      ASSIGN_OR_RETURN(g, ctx.Emit("Mul", {dy, bc}));
    }
    RETURN_IF_ERROR(SetGrad(ctx, 2, SumToShape(ctx, g, n.input(2))));
  }
  if (ctx.NeedsGrad(0)) {
    RETURN_IF_ERROR(SetGrad(ctx, 0, ta ? gemm(b, dy, tb, 1) : gemm(dy, b, 0, 1 - tb)));
  }
  if (ctx.NeedsGrad(1)) {
    RETURN_IF_ERROR(SetGrad(ctx, 1, tb ? gemm(dy, a, 1, ta) : gemm(a, dy, 1 - ta, 0)));
  }
  return Status::Ok();
}

// ---- shape ops --------------------------------------------------------------------------------

Status GradReshapeLike(GradientContext& ctx) {  // Reshape, Flatten, Squeeze, Unsqueeze
  Value* x = ctx.forward.input(0);
  ASSIGN_OR_RETURN(Value * shape, ShapeOf(ctx, x));
  return SetGrad(ctx, 0, ctx.Emit("Reshape", {ctx.output_grads[0], shape}));
}

Status GradTranspose(GradientContext& ctx) {
  Value* x = ctx.forward.input(0);
  if (!x->type().has_rank) return Unimplemented("Transpose gradient needs a known rank");
  const int64_t r = x->type().rank();
  std::vector<int64_t> perm = ctx.forward.attr_ints("perm");
  if (perm.empty()) {
    for (int64_t i = r - 1; i >= 0; --i) perm.push_back(i);
  }
  std::vector<int64_t> inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[perm[i]] = static_cast<int64_t>(i);
  return SetGrad(ctx, 0, ctx.Emit("Transpose", {ctx.output_grads[0]}, {{"perm", Attribute(inv)}}));
}

// ---- reductions -------------------------------------------------------------------------------

Status GradReduce(GradientContext& ctx) {  // ReduceSum (axes input), ReduceMean (axes attribute)
  Node& n = ctx.forward;
  Value* x = n.input(0);
  Value* dy = ctx.output_grads[0];
  ASSIGN_OR_RETURN(std::optional<std::vector<int64_t>> reduced, ReducedAxes(n));
  if (!reduced) {  // noop_with_empty_axes
    ctx.input_grads[0] = dy;
    return Status::Ok();
  }
  const std::vector<int64_t>& axes = *reduced;
  ASSIGN_OR_RETURN(Value * g, UnreduceShape(ctx, dy, axes, n.attr_int("keepdims", 1) != 0));
  if (n.op_type() == "ReduceMean") {
    int64_t count = 1;
    bool is_static = true;
    for (int64_t a : axes) {
      const Dim& d = x->type().dims[a];
      is_static = is_static && d.is_static();
      if (d.is_static()) count *= d.value();
    }
    if (is_static) {
      CONST(scale, 1.0 / static_cast<double>(count), x);
      ASSIGN_OR_RETURN(g, ctx.Emit("Mul", {g, scale}));
    } else {  // divide by Size(x) / Size(y)
      ASSIGN_OR_RETURN(Value * nx, CountOf(ctx, x, x->dtype()));
      ASSIGN_OR_RETURN(Value * ny, CountOf(ctx, n.output(0), x->dtype()));
      ASSIGN_OR_RETURN(g, ctx.Emit("Mul", {g, ny}));
      ASSIGN_OR_RETURN(g, ctx.Emit("Div", {g, nx}));
    }
  }
  ASSIGN_OR_RETURN(Value * shape, ShapeOf(ctx, x));
  return SetGrad(ctx, 0, ctx.Emit("Expand", {g, shape}));
}

// ---- softmax family ---------------------------------------------------------------------------

Status GradSoftmax(GradientContext& ctx) {  // y * (dy - sum(dy * y))
  Value* y = ctx.forward.output(0);
  Value* dy = ctx.output_grads[0];
  ASSIGN_OR_RETURN(Value * ax, ctx.Ints({ctx.forward.attr_int("axis", -1)}));
  EMIT(p, "Mul", {dy, y});
  EMIT(s, "ReduceSum", {p, ax}, Keep(1));
  EMIT(d, "Sub", {dy, s});
  return SetGrad(ctx, 0, ctx.Emit("Mul", {y, d}));
}

// dy - exp(logp) * sum(dy) along `axis`.
StatusOr<Value*> LogSoftmaxBackward(GradientContext& ctx, Value* dy, Value* logp, int64_t axis) {
  ASSIGN_OR_RETURN(Value * ax, ctx.Ints({axis}));
  EMIT(s, "ReduceSum", {dy, ax}, Keep(1));
  EMIT(p, "Exp", {logp});
  EMIT(t, "Mul", {p, s});
  return ctx.Emit("Sub", {dy, t});
}

Status GradLogSoftmax(GradientContext& ctx) {
  return SetGrad(ctx, 0,
                 LogSoftmaxBackward(ctx, ctx.output_grads[0], ctx.forward.output(0),
                                    ctx.forward.attr_int("axis", -1)));
}

// LayerNormalization over axes [axis, rank): mean and inverse std are recomputed from x.
Status GradLayerNorm(GradientContext& ctx) {
  Node& n = ctx.forward;
  if ((ctx.output_grads.size() > 1 && ctx.output_grads[1]) ||
      (ctx.output_grads.size() > 2 && ctx.output_grads[2])) {
    return Unimplemented("gradient through LayerNormalization's Mean/InvStdDev outputs");
  }
  Value* dy = ctx.output_grads[0];
  if (!dy) return Status::Ok();
  Value* x = n.input(0);
  Value* scale = n.input(1);
  if (!x->type().has_rank) return Unimplemented("LayerNormalization gradient needs a known rank");
  const int64_t r = x->type().rank();
  ASSIGN_OR_RETURN(int64_t axis, infer::NormalizeAxis(n.attr_int("axis", -1), r));
  std::vector<int64_t> axes;
  for (int64_t i = axis; i < r; ++i) axes.push_back(i);
  const AttributeMap mean_attrs = {{"axes", Attribute(axes)}, {"keepdims", Attribute(int64_t{1})}};
  if (ctx.NeedsGrad(2)) RETURN_IF_ERROR(SetGrad(ctx, 2, SumToShape(ctx, dy, n.input(2))));
  if (!ctx.NeedsGrad(0) && !ctx.NeedsGrad(1)) return Status::Ok();
  CONST(eps, static_cast<double>(n.attr_float("epsilon", 1e-5f)), x);
  CONST(one, 1.0, x);
  EMIT(mu, "ReduceMean", {x}, mean_attrs);
  EMIT(d, "Sub", {x, mu});
  EMIT(d2, "Mul", {d, d});
  EMIT(var, "ReduceMean", {d2}, mean_attrs);
  EMIT(ve, "Add", {var, eps});
  EMIT(sd, "Sqrt", {ve});
  EMIT(invstd, "Div", {one, sd});
  EMIT(xhat, "Mul", {d, invstd});
  if (ctx.NeedsGrad(1)) {
    EMIT(g, "Mul", {dy, xhat});
    RETURN_IF_ERROR(SetGrad(ctx, 1, SumToShape(ctx, g, scale)));
  }
  if (ctx.NeedsGrad(0)) {  // invstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * scale
    EMIT(g, "Mul", {dy, scale});
    EMIT(m1, "ReduceMean", {g}, mean_attrs);
    EMIT(gx, "Mul", {g, xhat});
    EMIT(m2, "ReduceMean", {gx}, mean_attrs);
    EMIT(t1, "Sub", {g, m1});
    EMIT(t2, "Mul", {xhat, m2});
    EMIT(t3, "Sub", {t1, t2});
    RETURN_IF_ERROR(SetGrad(ctx, 0, ctx.Emit("Mul", {invstd, t3})));
  }
  return Status::Ok();
}

// SoftmaxCrossEntropyLoss with class-index labels and no weights:
// dscores = (softmax(scores) - onehot(labels)) * w, w = dy (sum/none) or dy / count (mean),
// with ignored labels masked out.
Status GradSoftmaxCrossEntropy(GradientContext& ctx) {
  Node& n = ctx.forward;
  if (n.input(2)) return Unimplemented("SoftmaxCrossEntropyLoss gradient with class weights");
  Graph& g = ctx.graph;
  Value* x = n.input(0);
  Value* labels = n.input(1);
  Value* dy = ctx.output_grads[0];
  Value* dlogp = ctx.output_grads.size() > 1 ? ctx.output_grads[1] : nullptr;
  const TensorType& xt = x->type();
  if (!xt.has_rank || xt.rank() < 2) return Unimplemented("scores of unknown rank");
  const DType dt = x->dtype();
  Value* result = nullptr;
  if (dy) {
    const std::string reduction = n.attr_string("reduction", "mean");
    EMIT(p, "Softmax", {x}, {{"axis", Attribute(int64_t{1})}});
    Value* lab = labels;
    if (labels->dtype() != DType::kInt64) {
      ASSIGN_OR_RETURN(lab, ctx.Emit("Cast", {labels}, {{"to", Attribute(int64_t{7})}}));
    }
    ASSIGN_OR_RETURN(Value * ax1, ctx.Ints({1}));
    ASSIGN_OR_RETURN(Value * onehot, ClassOneHot(ctx, lab, x));
    EMIT(diff, "Sub", {p, onehot});
    Value* mask = nullptr;  // [N, d...], 1 where the label counts
    if (const Attribute* ii = n.attr("ignore_index")) {
      ASSIGN_OR_RETURN(Value * iv,
                       g.AddInitializer(g.UniqueName("grad_ints"), Tensor::ScalarInt64(ii->i())));
      EMIT(is_ignored, "Equal", {lab, iv});
      EMIT(keep, "Not", {is_ignored});
      ASSIGN_OR_RETURN(mask, ctx.Emit("Cast", {keep}, CastTo(dt)));
    }
    Value* w = dy;
    if (reduction == "mean") {
      if (mask) {
        EMIT(count, "ReduceSum", {mask}, Keep(0));
        EMIT(scale, "Div", {dy, count});
        ASSIGN_OR_RETURN(w, ctx.Emit("Mul", {mask, scale}));
      } else {
        ASSIGN_OR_RETURN(Value * count, CountOf(ctx, labels, dt));
        ASSIGN_OR_RETURN(w, ctx.Emit("Div", {dy, count}));
      }
    } else if (mask) {
      ASSIGN_OR_RETURN(w, ctx.Emit("Mul", {mask, dy}));
    }
    if (w->type().rank() > 0) {
      ASSIGN_OR_RETURN(w, ctx.Emit("Unsqueeze", {w, ax1}));
    }
    ASSIGN_OR_RETURN(result, ctx.Emit("Mul", {diff, w}));
  }
  if (dlogp) {
    ASSIGN_OR_RETURN(Value * gl, LogSoftmaxBackward(ctx, dlogp, n.output(1), 1));
    if (result) {
      ASSIGN_OR_RETURN(result, ctx.Emit("Add", {result, gl}));
    } else {
      result = gl;
    }
  }
  ctx.input_grads[0] = result;
  return Status::Ok();
}

}  // namespace
}  // namespace grad

void RegisterGradientRules(OpRegistry& r) {
  using namespace grad;  // NOLINT: the rules and helpers of this file
  auto set = [&r](const char* op, GradientFn fn) { SetGradient(r, op, fn); };
  set("Add", GradAddSub);
  set("Sub", GradAddSub);
  set("Mul", GradMul);
  set("Div", GradDiv);
  set("Neg", GradNeg);
  set("Identity", GradIdentity);
  set("MatMul", GradMatMul);
  set("Gemm", GradGemm);
  set("Relu", GradRelu);
  set("Tanh", GradTanh);
  set("Sigmoid", GradSigmoid);
  set("Exp", GradExp);
  set("Log", GradLog);
  set("Sqrt", GradSqrt);
  set("Erf", GradErf);
  set("Pow", GradPow);
  set("Reshape", GradReshapeLike);
  set("Flatten", GradReshapeLike);
  set("Squeeze", GradReshapeLike);
  set("Unsqueeze", GradReshapeLike);
  set("Transpose", GradTranspose);
  set("ReduceSum", GradReduce);
  set("ReduceMean", GradReduce);
  set("Softmax", GradSoftmax);
  set("LogSoftmax", GradLogSoftmax);
  set("LayerNormalization", GradLayerNorm);
  set("SoftmaxCrossEntropyLoss", GradSoftmaxCrossEntropy);
  RegisterNNGradientRules(r);
  RegisterTensorGradientRules(r);
  RegisterActivationGradientRules(r);
  RegisterNormAttentionGradientRules(r);
}

}  // namespace ampc
