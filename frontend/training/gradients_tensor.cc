// Gradient rules for elementwise selections and data movement: Abs, Clip, Max, Min, Where, Cast,
// Expand, Pad, Slice, Concat, Split, Gather, and the reductions ReduceSumSquare, ReduceMax and
// ReduceMin. Conventions follow PyTorch's derivatives (tools/autograd/derivatives.yaml):
//  - Clip passes the gradient where min <= x <= max, inclusive, like torch.clamp (not like
//    hardtanh/ReLU6, whose backward is exclusive); the bounds get the gradient where x is
//    outside them (min <= max assumed).
//  - Max/Min of two inputs split the gradient in half on ties (torch.maximum / minimum);
//    ReduceMax/ReduceMin share it evenly among the tied extremes (torch.amax / amin).
//  - Abs has gradient 0 at 0 (sign(0) = 0).
#include <algorithm>
#include <cstdint>
#include <limits>

#include "frontend/training/gradient_util.h"
#include "ir/ops/infer_util.h"

namespace ampc::grad {
namespace {

Status GradAbs(GradientContext& ctx) {
  EMIT(s, "Sign", {ctx.forward.input(0)});
  return SetGrad(ctx, 0, ctx.Emit("Mul", {ctx.output_grads[0], s}));
}

// Where(mask, dy, 0).
StatusOr<Value*> Masked(GradientContext& ctx, Value* mask, Value* dy) {
  CONST(zero, 0.0, dy);
  return ctx.Emit("Where", {mask, dy, zero});
}

Status GradClip(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* x = n.input(0);
  Value* lo = n.input(1);
  Value* hi = n.input(2);
  Value* dy = ctx.output_grads[0];
  if (ctx.NeedsGrad(0)) {
    Value* pass = nullptr;
    if (lo) {
      ASSIGN_OR_RETURN(pass, ctx.Emit("GreaterOrEqual", {x, lo}));
    }
    if (hi) {
      EMIT(below, "LessOrEqual", {x, hi});
      if (pass) {
        ASSIGN_OR_RETURN(pass, ctx.Emit("And", {pass, below}));
      } else {
        pass = below;
      }
    }
    RETURN_IF_ERROR(SetGrad(ctx, 0, pass ? Masked(ctx, pass, dy) : StatusOr<Value*>(dy)));
  }
  for (int i : {1, 2}) {
    if (!ctx.NeedsGrad(i)) continue;
    EMIT(out, i == 1 ? "Less" : "Greater", {x, n.input(i)});
    ASSIGN_OR_RETURN(Value * g, Masked(ctx, out, dy));
    RETURN_IF_ERROR(SetGrad(ctx, i, SumToShape(ctx, g, n.input(i))));
  }
  return Status::Ok();
}

// Max / Min of two inputs: a gets dy where it wins, b where it wins, each half on ties.
Status GradMaxMin(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* dy = ctx.output_grads[0];
  if (n.num_inputs() == 1) {
    ctx.input_grads[0] = dy;
    return Status::Ok();
  }
  if (n.num_inputs() != 2) {
    return Unimplemented(n.op_type() + " gradient with more than two inputs");
  }
  Value* a = n.input(0);
  Value* b = n.input(1);
  const char* wins = n.op_type() == "Max" ? "Greater" : "Less";
  EMIT(tie, "Equal", {a, b});
  EMIT(tie_f, "Cast", {tie}, CastTo(dy->dtype()));
  CONST(half, 0.5, dy);
  EMIT(tie_share, "Mul", {tie_f, half});
  for (int i : {0, 1}) {
    if (!ctx.NeedsGrad(i)) continue;
    EMIT(win, wins, {n.input(i), n.input(1 - i)});
    EMIT(win_f, "Cast", {win}, CastTo(dy->dtype()));
    EMIT(share, "Add", {win_f, tie_share});
    EMIT(g, "Mul", {dy, share});
    RETURN_IF_ERROR(SetGrad(ctx, i, SumToShape(ctx, g, n.input(i))));
  }
  return Status::Ok();
}

Status GradWhere(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* dy = ctx.output_grads[0];
  CONST(zero, 0.0, dy);
  if (ctx.NeedsGrad(1)) {
    EMIT(g, "Where", {n.input(0), dy, zero});
    RETURN_IF_ERROR(SetGrad(ctx, 1, SumToShape(ctx, g, n.input(1))));
  }
  if (ctx.NeedsGrad(2)) {
    EMIT(g, "Where", {n.input(0), zero, dy});
    RETURN_IF_ERROR(SetGrad(ctx, 2, SumToShape(ctx, g, n.input(2))));
  }
  return Status::Ok();
}

Status GradCast(GradientContext& ctx) {
  Value* x = ctx.forward.input(0);
  Value* dy = ctx.output_grads[0];
  if (dy->dtype() == x->dtype()) {
    ctx.input_grads[0] = dy;
    return Status::Ok();
  }
  return SetGrad(ctx, 0, ctx.Emit("Cast", {dy}, CastTo(x->dtype())));
}

Status GradExpand(GradientContext& ctx) {
  return SetGrad(ctx, 0, SumToShape(ctx, ctx.output_grads[0], ctx.forward.input(0)));
}

// Pad (constant mode): the gradient is the slice of dy that holds x; negative pads (crops) are
// padded back with zeros. The pad value gets the sum of dy over the padding.
Status GradPad(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* x = n.input(0);
  Value* dy = ctx.output_grads[0];
  const std::string mode = n.attr_string("mode", "constant");
  if (mode != "constant") return Unimplemented("Pad gradient in mode '" + mode + "'");
  if (!x->type().has_rank) return Unimplemented("Pad gradient needs a known rank");
  const int64_t r = x->type().rank();
  auto pads = infer::KnownStatic(n.input(1));
  if (!pads) return Unimplemented("Pad gradient needs constant pads");
  std::vector<int64_t> axes;
  if (n.input(3)) {
    auto known = infer::KnownStatic(n.input(3));
    if (!known) return Unimplemented("Pad gradient needs constant axes");
    ASSIGN_OR_RETURN(axes, infer::NormalizeAxes(*known, r));
  } else {
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  }
  const size_t k = axes.size();
  if (pads->size() != 2 * k) return InvalidArgument("Pad has pads of the wrong length");
  std::vector<int64_t> starts, ends, back(2 * k, 0);
  bool crops = false, pads_any = false;
  for (size_t i = 0; i < k; ++i) {
    const int64_t b = (*pads)[i], e = (*pads)[i + k];
    starts.push_back(std::max<int64_t>(b, 0));
    ends.push_back(e > 0 ? -e : std::numeric_limits<int64_t>::max());
    back[i] = std::max<int64_t>(-b, 0);
    back[i + k] = std::max<int64_t>(-e, 0);
    crops = crops || b < 0 || e < 0;
    pads_any = pads_any || b > 0 || e > 0;
  }
  Value* g = dy;
  if (pads_any) {
    ASSIGN_OR_RETURN(Value * st, ctx.Ints(starts));
    ASSIGN_OR_RETURN(Value * en, ctx.Ints(ends));
    ASSIGN_OR_RETURN(Value * ax, ctx.Ints(axes));
    ASSIGN_OR_RETURN(g, ctx.Emit("Slice", {dy, st, en, ax}));
  }
  if (crops) {
    ASSIGN_OR_RETURN(Value * p, ctx.Ints(back));
    ASSIGN_OR_RETURN(Value * ax, ctx.Ints(axes));
    ASSIGN_OR_RETURN(g, ctx.Emit("Pad", {g, p, nullptr, ax}));
  }
  if (ctx.NeedsGrad(0)) ctx.input_grads[0] = g;
  if (ctx.NeedsGrad(2)) {
    if (crops) return Unimplemented("gradient of Pad's value with negative pads");
    EMIT(total, "ReduceSum", {dy}, Keep(0));
    EMIT(inside, "ReduceSum", {g}, Keep(0));
    RETURN_IF_ERROR(SetGrad(ctx, 2, ctx.Emit("Sub", {total, inside})));
  }
  return Status::Ok();
}

// Slice: dy padded back with zeros to x's shape (static on the sliced axes) for unit steps,
// scattered with GatherGrad for other steps.
Status GradSlice(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* x = n.input(0);
  const TensorType& xt = x->type();
  if (!xt.has_rank) return Unimplemented("Slice gradient needs a known rank");
  const int64_t r = xt.rank();
  auto starts = infer::KnownStatic(n.input(1));
  auto ends = infer::KnownStatic(n.input(2));
  std::optional<std::vector<int64_t>> axes_in, steps;
  if (n.input(3)) axes_in = infer::KnownStatic(n.input(3));
  if (n.input(4)) steps = infer::KnownStatic(n.input(4));
  if (!starts || !ends || (n.input(3) && !axes_in) || (n.input(4) && !steps)) {
    return Unimplemented("Slice gradient needs constant starts, ends, axes and steps");
  }
  std::vector<int64_t> axes;
  if (axes_in) {
    ASSIGN_OR_RETURN(axes, infer::NormalizeAxes(*axes_in, r));
  } else {
    for (size_t i = 0; i < starts->size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  const size_t k = axes.size();
  if (starts->size() != k || ends->size() != k || (steps && steps->size() != k)) {
    return InvalidArgument("Slice starts, ends, axes and steps differ in length");
  }
  bool unit_steps = true;
  for (size_t i = 0; i < k; ++i) {
    unit_steps = unit_steps && (!steps || (*steps)[i] == 1);
    const Dim& d = xt.dims[axes[i]];
    if (!d.is_static()) {
      return Unimplemented("Slice gradient along a non-static dim " + d.ToString());
    }
  }
  Value* g = ctx.output_grads[0];
  if (unit_steps) {  // pad back with zeros
    std::vector<int64_t> pads(2 * r, 0);
    for (size_t i = 0; i < k; ++i) {
      const int64_t d = xt.dims[axes[i]].value();
      int64_t first = 0, count = 0;
      infer::SliceRange(d, (*starts)[i], (*ends)[i], 1, &first, &count);
      pads[axes[i]] = first;
      pads[axes[i] + r] = d - first - count;
    }
    ASSIGN_OR_RETURN(Value * p, ctx.Ints(pads));
    return SetGrad(ctx, 0, ctx.Emit("Pad", {g, p}));
  }
  // Other steps: scatter into zeros one sliced axis at a time (GatherGrad with the indices the
  // slice took), which needs every dim static.
  if (!xt.is_fully_static()) {
    return Unimplemented("Slice gradient with steps other than 1 needs a static input shape");
  }
  std::vector<int64_t> shape;  // of g, static: the slice's output shape
  for (const Dim& d : g->type().dims) shape.push_back(d.value());
  for (size_t i = 0; i < k; ++i) {
    const int64_t d = xt.dims[axes[i]].value(), step = (*steps)[i];
    int64_t first = 0, count = 0;
    infer::SliceRange(d, (*starts)[i], (*ends)[i], step, &first, &count);
    std::vector<int64_t> taken;
    for (int64_t j = 0; j < count; ++j) taken.push_back(first + j * step);
    shape[axes[i]] = d;
    ASSIGN_OR_RETURN(Value * idx, ctx.Ints(taken));
    ASSIGN_OR_RETURN(Value * sh, ctx.Ints(shape));
    ASSIGN_OR_RETURN(std::vector<Value*> out,
                     EmitAmpc(ctx, "GatherGrad", {g, idx, sh}, 1, {{"axis", Attribute(axes[i])}}));
    g = out[0];
  }
  ctx.input_grads[0] = g;
  return Status::Ok();
}

// Concat: Split dy along the axis into the inputs' sizes (runtime sizes when not static).
Status GradConcat(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* dy = ctx.output_grads[0];
  if (!dy->type().has_rank) return Unimplemented("Concat gradient needs a known rank");
  ASSIGN_OR_RETURN(int64_t axis, infer::NormalizeAxis(n.attr_int("axis", 0), dy->type().rank()));
  std::vector<int64_t> sizes;
  bool is_static = true;
  for (Value* in : n.inputs()) {
    const Dim& d = in->type().has_rank ? in->type().dims[axis] : Dim();
    is_static = is_static && d.is_static();
    sizes.push_back(d.is_static() ? d.value() : 0);
  }
  Value* split = nullptr;
  if (is_static) {
    ASSIGN_OR_RETURN(split, ctx.Ints(sizes));
  } else {
    ASSIGN_OR_RETURN(Value * at, ctx.Ints({axis}));
    std::vector<Value*> parts;
    for (Value* in : n.inputs()) {
      EMIT(shape, "Shape", {in});
      EMIT(size, "Gather", {shape, at});
      parts.push_back(size);
    }
    ASSIGN_OR_RETURN(split, ctx.Emit("Concat", parts, {{"axis", Attribute(int64_t{0})}}));
  }
  ASSIGN_OR_RETURN(std::vector<Value*> g, ctx.EmitMulti("Split", {dy, split}, n.num_inputs(),
                                                        {{"axis", Attribute(axis)}}));
  for (int i = 0; i < n.num_inputs(); ++i) {
    if (ctx.NeedsGrad(i)) ctx.input_grads[i] = g[i];
  }
  return Status::Ok();
}

// Split: Concat of the outputs' gradients, zeros for outputs without one.
Status GradSplit(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* x = n.input(0);
  if (!x->type().has_rank) return Unimplemented("Split gradient needs a known rank");
  ASSIGN_OR_RETURN(int64_t axis, infer::NormalizeAxis(n.attr_int("axis", 0), x->type().rank()));
  std::vector<Value*> parts;
  for (int i = 0; i < n.num_outputs(); ++i) {
    Value* g = ctx.output_grads[i];
    if (!g) {
      if (!n.output(i)) return Unimplemented("Split gradient with an omitted output");
      ASSIGN_OR_RETURN(g, ZerosLike(ctx, n.output(i)));
    }
    parts.push_back(g);
  }
  return SetGrad(ctx, 0, ctx.Emit("Concat", parts, {{"axis", Attribute(axis)}}));
}

Status GradGather(GradientContext& ctx) {
  Node& n = ctx.forward;
  ASSIGN_OR_RETURN(Value * shape, ShapeOf(ctx, n.input(0)));
  ASSIGN_OR_RETURN(std::vector<Value*> g,
                   EmitAmpc(ctx, "GatherGrad", {ctx.output_grads[0], n.input(1), shape}, 1,
                            {{"axis", Attribute(n.attr_int("axis", 0))}}));
  ctx.input_grads[0] = g[0];
  return Status::Ok();
}

Status GradReduceSumSquare(GradientContext& ctx) {  // 2 x dy
  Node& n = ctx.forward;
  Value* x = n.input(0);
  ASSIGN_OR_RETURN(std::optional<std::vector<int64_t>> axes, ReducedAxes(n));
  Value* g = ctx.output_grads[0];  // noop_with_empty_axes: y = x^2 elementwise
  if (axes) {
    ASSIGN_OR_RETURN(g, UnreduceShape(ctx, g, *axes, n.attr_int("keepdims", 1) != 0));
  }
  CONST(two, 2.0, x);
  EMIT(x2, "Mul", {x, two});
  return SetGrad(ctx, 0, ctx.Emit("Mul", {x2, g}));
}

// ReduceMax / ReduceMin: dy shared evenly among the elements equal to the result.
Status GradReduceExtreme(GradientContext& ctx) {
  Node& n = ctx.forward;
  Value* x = n.input(0);
  ASSIGN_OR_RETURN(std::optional<std::vector<int64_t>> axes, ReducedAxes(n));
  if (!axes) {  // noop_with_empty_axes: the identity
    ctx.input_grads[0] = ctx.output_grads[0];
    return Status::Ok();
  }
  const bool keep = n.attr_int("keepdims", 1) != 0;
  ASSIGN_OR_RETURN(Value * dy, UnreduceShape(ctx, ctx.output_grads[0], *axes, keep));
  ASSIGN_OR_RETURN(Value * y, UnreduceShape(ctx, n.output(0), *axes, keep));
  EMIT(hit, "Equal", {x, y});
  EMIT(hit_f, "Cast", {hit}, CastTo(x->dtype()));
  ASSIGN_OR_RETURN(Value * ax, ctx.Ints(*axes));
  EMIT(count, "ReduceSum", {hit_f, ax}, Keep(1));
  EMIT(share, "Div", {dy, count});
  return SetGrad(ctx, 0, ctx.Emit("Mul", {hit_f, share}));
}

}  // namespace

void RegisterTensorGradientRules(OpRegistry& r) {
  SetGradient(r, "Abs", GradAbs);
  SetGradient(r, "Clip", GradClip);
  SetGradient(r, "Max", GradMaxMin);
  SetGradient(r, "Min", GradMaxMin);
  SetGradient(r, "Where", GradWhere);
  SetGradient(r, "Cast", GradCast);
  SetGradient(r, "CastLike", GradCast);  // torch's exports write scalar constants with CastLike
  SetGradient(r, "Expand", GradExpand);
  SetGradient(r, "Pad", GradPad);
  SetGradient(r, "Slice", GradSlice);
  SetGradient(r, "Concat", GradConcat);
  SetGradient(r, "Split", GradSplit);
  SetGradient(r, "Gather", GradGather);
  SetGradient(r, "ReduceSumSquare", GradReduceSumSquare);
  SetGradient(r, "ReduceMax", GradReduceExtreme);
  SetGradient(r, "ReduceMin", GradReduceExtreme);
}

}  // namespace ampc::grad
