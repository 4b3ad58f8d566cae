// com.ampc optimizer ops with PyTorch's exact update rules (torch.optim 1.13, single-tensor path).
// One node updates one parameter:
//   SGD(lr, step, W, G [, M] [, apply]) -> W' [, M']   attrs momentum, dampening, nesterov,
//                                                       weight_decay
//   Adam(lr, step, W, G, M, V [, apply]) -> W', M', V' attrs beta1, beta2, epsilon, weight_decay,
//                                                       decoupled (1 = AdamW)
// `apply` (bool scalar, optional): when false the outputs are bit-identical copies of the inputs
// (a step skipped by the loss scaler's finite check).
// Attribute `half_copy` (an ONNX dtype number, FLOAT16 or BFLOAT16; absent or 0: none) adds one
// last output: W' rounded to that type (nearest even), the copy the forward pass reads
// (passes/half_copies), written in the same pass over W as the update.
// Loss scaling:
//   AllFinite(X1, X2, ...) -> bool scalar: no NaN or infinity in any input (one fused pass).
//   UpdateLossScale(scale f32[], growth_tracker i64[], skipped i64[], finite bool[])
//     -> scale', growth_tracker', skipped'   attrs growth_factor, backoff_factor,
//        growth_interval, dynamic: torch.cuda.amp.GradScaler.update semantics (a finite step
//        counts towards growth_interval, after which the scale grows; a non-finite one backs off
//        and resets the count); with dynamic = 0 the scale never changes.
// lr is an f32 scalar (a runtime input, so schedules need no recompilation); step is the i64
// number of updates already applied (0 on the first step: SGD's momentum buffer starts as the
// first gradient, Adam's bias correction uses step + 1). W, G and the states share one shape and
// one dtype, f32 or f64: master weights and optimizer state are never half precision. G may also
// be f16 or bf16 beside f32 W (a half gradient the update widens exactly as a Cast would:
// passes/fold_casts folds the Cast into the update).
#include <string>

#include "ir/op_registry.h"
#include "ir/ops/infer_util.h"

namespace ampc {
namespace {

Status RequireScalarInput(const Node& node, int i, const char* what, DType want) {
  RETURN_IF_ERROR(infer::RequireTyped(node, i));
  const TensorType& t = node.input(i)->type();
  if (t.dtype != want || (t.has_rank && t.rank() != 0)) {
    return InvalidArgument(std::string(what) + " (input " + std::to_string(i) + ") must be an " +
                           infer::TypeName(want) + " scalar, got " + t.ToString());
  }
  return Status::Ok();
}

// Inputs 2.. (W, G, states) must all have W's float type; outputs copy W's type.
Status InferUpdate(Node& node, int num_outputs) {
  RETURN_IF_ERROR(RequireScalarInput(node, 0, "learning rate", DType::kFloat32));
  RETURN_IF_ERROR(RequireScalarInput(node, 1, "step count", DType::kInt64));
  RETURN_IF_ERROR(infer::RequireTyped(node, 2));
  const TensorType& w = node.input(2)->type();
  if (w.dtype != DType::kFloat32 && w.dtype != DType::kFloat64) {
    return InvalidArgument("the parameter (input 2) is " + w.ToString() +
                           "; optimizers update f32 or f64 master weights");
  }
  for (int i = 3; i < node.num_inputs(); ++i) {
    if (!node.input(i) || node.input(i)->dtype() == DType::kBool) continue;
    RETURN_IF_ERROR(infer::RequireTyped(node, i));
    const TensorType& t = node.input(i)->type();
    const bool half_grad = i == 3 && w.dtype == DType::kFloat32 && IsHalf(t.dtype) &&
                           t.has_rank == w.has_rank && t.dims == w.dims;
    if (t != w && !half_grad) {
      return InvalidArgument("input " + std::to_string(i) + " is " +
                             node.input(i)->type().ToString() + " but the parameter is " +
                             w.ToString());
    }
  }
  const int extra = node.attr_int("half_copy", 0) != 0 ? 1 : 0;
  if (node.num_outputs() != num_outputs + extra) {
    return InvalidArgument("expects " + std::to_string(num_outputs + extra) + " outputs, has " +
                           std::to_string(node.num_outputs()));
  }
  for (int i = 0; i < num_outputs; ++i) infer::SetOutput(node, i, w);
  if (const int64_t h = node.attr_int("half_copy", 0); h != 0) {
    const std::optional<DType> half = DTypeFromOnnxNumber(h);
    if (!half || !IsHalf(*half) || w.dtype != DType::kFloat32) {
      return InvalidArgument("half_copy " + std::to_string(h) +
                             ": expected FLOAT16 (10) or BFLOAT16 (16) beside an f32 parameter");
    }
    TensorType t = w;
    t.dtype = *half;
    infer::SetOutput(node, num_outputs, t);
  }
  return Status::Ok();
}

// The optional trailing `apply` input at index i: a bool scalar.
Status CheckApply(Node& node, int i) {
  if (node.num_inputs() <= i || !node.input(i)) return Status::Ok();
  return RequireScalarInput(node, i, "apply flag", DType::kBool);
}

Status InferSgd(Node& node) {
  const bool momentum = node.attr_float("momentum", 0.0f) != 0.0f;
  const bool has_m = node.num_inputs() >= 5 && node.input(4);
  if (momentum != has_m) {
    return InvalidArgument(momentum ? "SGD with momentum takes a momentum buffer (input 4)"
                                    : "SGD without momentum takes no momentum buffer (input 4)");
  }
  RETURN_IF_ERROR(CheckApply(node, 5));
  if (node.attr_int("nesterov", 0) != 0 &&
      (!momentum || node.attr_float("dampening", 0.0f) != 0.0f)) {
    return InvalidArgument("Nesterov momentum requires a momentum and zero dampening");
  }
  return InferUpdate(node, momentum ? 2 : 1);
}

Status InferAdam(Node& node) {
  RETURN_IF_ERROR(CheckApply(node, 6));
  return InferUpdate(node, 3);
}

Status InferAllFinite(Node& node) {
  for (int i = 0; i < node.num_inputs(); ++i) {
    RETURN_IF_ERROR(infer::RequireFloat(node, i));
  }
  infer::SetOutput(node, 0, TensorType(DType::kBool, {}));
  return Status::Ok();
}

Status InferUpdateLossScale(Node& node) {
  RETURN_IF_ERROR(RequireScalarInput(node, 0, "scale", DType::kFloat32));
  RETURN_IF_ERROR(RequireScalarInput(node, 1, "growth tracker", DType::kInt64));
  RETURN_IF_ERROR(RequireScalarInput(node, 2, "skipped count", DType::kInt64));
  RETURN_IF_ERROR(RequireScalarInput(node, 3, "finite flag", DType::kBool));
  if (!(node.attr_float("growth_factor", 2.0f) >= 1.0f) ||
      !(node.attr_float("backoff_factor", 0.5f) > 0.0f) ||
      node.attr_float("backoff_factor", 0.5f) > 1.0f ||
      node.attr_int("growth_interval", 2000) < 1) {
    return InvalidArgument(
        "needs growth_factor >= 1, 0 < backoff_factor <= 1, growth_interval >= 1");
  }
  infer::SetOutput(node, 0, TensorType(DType::kFloat32, {}));
  infer::SetOutput(node, 1, TensorType(DType::kInt64, {}));
  infer::SetOutput(node, 2, TensorType(DType::kInt64, {}));
  return Status::Ok();
}

}  // namespace

void RegisterOptimizerOps(OpRegistry& r) {
  RegisterOp(r, "SGD", 4, 6, InferSgd, 1, 3, kAmpcDomain);
  RegisterOp(r, "Adam", 6, 7, InferAdam, 3, 4, kAmpcDomain);
  RegisterOp(r, "AllFinite", 1, 1 << 20, InferAllFinite, 1, 1, kAmpcDomain);
  RegisterOp(r, "UpdateLossScale", 4, 4, InferUpdateLossScale, 3, 3, kAmpcDomain);
  // ONNX BatchNormalization (same inputs, outputs, attributes and inference) whose running
  // variance is updated with the unbiased batch variance, as torch.nn.BatchNorm does. The training
  // graph builder uses it for models exported from PyTorch.
  if (const OpSchema* bn = r.Find("", "BatchNormalization")) {
    OpSchema s = *bn;
    s.domain = kAmpcDomain;
    r.Register(std::move(s));
  }
}

}  // namespace ampc
