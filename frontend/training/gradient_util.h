// Helpers shared by the gradient rule files (frontend/training/gradients*.cc); not a public API.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "frontend/training/autodiff.h"

namespace ampc::grad {

#define EMIT(var, ...) ASSIGN_OR_RETURN(Value* var, ctx.Emit(__VA_ARGS__))
#define CONST(var, v, like) ASSIGN_OR_RETURN(Value* var, ctx.ConstantLike(v, like))

AttributeMap Keep(int64_t keep);  // {keepdims: keep}
// {to: the ONNX number of t}, for Cast.
AttributeMap CastTo(DType t);

// The shape of v as a 1-D int64 value: a constant when static, else Shape(v).
StatusOr<Value*> ShapeOf(GradientContext& ctx, Value* v);
// Sums `grad` (shaped like the broadcast result) back to the shape of `target`.
StatusOr<Value*> SumToShape(GradientContext& ctx, Value* grad, Value* target);
// The element count of v as a scalar of dtype dt: a constant when static, else Cast(Size(v)).
StatusOr<Value*> CountOf(GradientContext& ctx, Value* v, DType dt);
// Zeros shaped and typed like v: Expand(0, ShapeOf(v)).
StatusOr<Value*> ZerosLike(GradientContext& ctx, Value* v);
// Sets ctx.input_grads[i] from g (or returns g's error).
Status SetGrad(GradientContext& ctx, int i, StatusOr<Value*> g);

// Emits a node of domain com.ampc (GradientContext::Emit emits ai.onnx only), annotated and
// inferred like Emit's, and records the domain's opset in the graph.
StatusOr<std::vector<Value*>> EmitAmpc(GradientContext& ctx, const std::string& op,
                                       std::vector<Value*> inputs, int num_outputs,
                                       AttributeMap attrs, const std::vector<bool>& wanted = {});

// The value of a scalar initializer (any numeric or bool dtype), if v is one.
std::optional<double> ConstantScalar(const Value* v);

// The axes a reduction node reduces, normalized and sorted (all axes when none are given). Reads
// the axes input (opset 18; ReduceSum 13) or the attribute of older opsets. nullopt with
// noop_with_empty_axes set and no axes: the reduction is the identity.
StatusOr<std::optional<std::vector<int64_t>>> ReducedAxes(const Node& n);
// dy of a reduction over `axes` of x, made broadcastable against x (Unsqueeze when the
// reduction dropped the axes).
StatusOr<Value*> UnreduceShape(GradientContext& ctx, Value* dy, const std::vector<int64_t>& axes,
                               bool keepdims);

// onehot(labels) along axis 1 of scores [N, C, d...], as scores' dtype; labels [N, d...] i64.
StatusOr<Value*> ClassOneHot(GradientContext& ctx, Value* labels, Value* scores);

// Per-op-family registration (gradients_nn.cc, gradients_tensor.cc), called by
// RegisterGradientRules.
void SetGradient(OpRegistry& r, const char* op, GradientFn fn);
void RegisterNNGradientRules(OpRegistry& r);
void RegisterTensorGradientRules(OpRegistry& r);
void RegisterActivationGradientRules(OpRegistry& r);     // gradients_activation.cc
void RegisterNormAttentionGradientRules(OpRegistry& r);  // gradients_attention.cc

}  // namespace ampc::grad
