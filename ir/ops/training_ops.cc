// Type and shape inference for the optimizer ops of domain ai.onnx.preview.training (opset 1):
// Adagrad, Momentum and Adam. Each takes a scalar learning rate R, a scalar int64 update count
// T, then n tensors X, n gradients G and n tensors per optimizer state (H for Adagrad, V for
// Momentum, V and H for Adam), and returns the n updated X followed by the n updated states of
// each kind, in the input order. X, G and its states share one shape and one float dtype.
#include <string>

#include "ir/op_registry.h"
#include "ir/ops/infer_util.h"

namespace ampc {
namespace {

constexpr const char* kTrainingDomain = "ai.onnx.preview.training";
constexpr int kMany = 1 << 20;

Status RequireScalar(const Node& node, int i, const char* what, bool want_int64) {
  const Value* v = node.input(i);
  if (!v)
    return InvalidArgument(std::string(what) + " (input " + std::to_string(i) + ") is missing");
  RETURN_IF_ERROR(infer::RequireTyped(node, i));
  const DType t = v->dtype();
  if (want_int64 ? t != DType::kInt64 : (t != DType::kFloat32 && t != DType::kFloat64)) {
    return InvalidArgument(std::string(what) + " (input " + std::to_string(i) + ") has type " +
                           infer::TypeName(t) + " but " + node.op_type() + " needs " +
                           (want_int64 ? "i64" : "f32 or f64"));
  }
  if (v->type().has_rank && v->type().rank() != 0) {
    return InvalidArgument(std::string(what) + " (input " + std::to_string(i) +
                           ") must be a scalar, got " + v->type().ToString());
  }
  return Status::Ok();
}

// `groups` = number of input tensor kinds after R and T (X, G and the states).
Status InferOptimizer(Node& node, int groups) {
  const int nin = node.num_inputs();
  if ((nin - 2) % groups != 0 || nin - 2 < groups) {
    return InvalidArgument(node.op_type() + " takes R, T and " + std::to_string(groups) +
                           " equally long lists of tensors, but has " + std::to_string(nin) +
                           " inputs (" + std::to_string(nin - 2) + " after R and T is not a " +
                           "positive multiple of " + std::to_string(groups) + ")");
  }
  const int n = (nin - 2) / groups;
  const int want_out = n * (groups - 1);
  if (node.num_outputs() != want_out) {
    return InvalidArgument(node.op_type() + " with " + std::to_string(n) + " tensor(s) to update " +
                           "has " + std::to_string(want_out) + " outputs, got " +
                           std::to_string(node.num_outputs()));
  }
  RETURN_IF_ERROR(RequireScalar(node, 0, "learning rate R", false));
  RETURN_IF_ERROR(RequireScalar(node, 1, "update count T", true));

  for (int k = 0; k < n; ++k) {
    TensorType merged;
    bool have = false;
    for (int j = 0; j < groups; ++j) {
      const int i = 2 + j * n + k;
      const Value* v = node.input(i);
      if (!v) return InvalidArgument("input " + std::to_string(i) + " is missing");
      RETURN_IF_ERROR(infer::RequireTyped(node, i));
      const TensorType& t = v->type();
      if (t.dtype != DType::kFloat32 && t.dtype != DType::kFloat64) {
        return InvalidArgument("input " + std::to_string(i) + " has type " +
                               infer::TypeName(t.dtype) + " but " + node.op_type() +
                               " needs f32 or f64");
      }
      if (!have) {
        merged = t;
        have = true;
        continue;
      }
      const int first = 2 + k;
      if (t.dtype != merged.dtype) {
        return InvalidArgument("type mismatch: input " + std::to_string(first) + " is " +
                               infer::TypeName(merged.dtype) + ", input " + std::to_string(i) +
                               " is " + infer::TypeName(t.dtype));
      }
      if (!t.has_rank) continue;
      if (!merged.has_rank) {
        merged = t;
        continue;
      }
      if (t.rank() != merged.rank()) {
        return InvalidArgument("shape mismatch: input " + std::to_string(first) + " is " +
                               merged.ToString() + ", input " + std::to_string(i) + " is " +
                               t.ToString() + " (each tensor, its gradient and its states " +
                               "must have the same shape)");
      }
      for (int64_t d = 0; d < t.rank(); ++d) {
        auto m = infer::MergeDims(merged.dims[d], t.dims[d],
                                  "inputs " + std::to_string(first) + " and " + std::to_string(i) +
                                      " (each tensor, its gradient and its states must have the " +
                                      "same shape)");
        if (!m.ok()) return m.status();
        merged.dims[d] = *m;
      }
    }
    for (int j = 0; j + 1 < groups; ++j) infer::SetOutput(node, j * n + k, merged);
  }
  return Status::Ok();
}

Status InferAdagrad(Node& node) { return InferOptimizer(node, 3); }

Status InferMomentum(Node& node) {
  for (const char* key : {"alpha", "beta", "norm_coefficient"}) {
    const Attribute* a = node.attr(key);
    if (!a || a->kind() != AttrKind::kFloat) {
      return InvalidArgument(std::string("Momentum needs the float attribute '") + key + "'");
    }
  }
  const Attribute* mode = node.attr("mode");
  if (!mode || mode->kind() != AttrKind::kString) {
    return InvalidArgument("Momentum needs the string attribute 'mode'");
  }
  if (mode->s() != "standard" && mode->s() != "nesterov") {
    return InvalidArgument("Momentum mode '" + mode->s() + "' is not 'standard' or 'nesterov'");
  }
  return InferOptimizer(node, 3);
}

Status InferAdam(Node& node) { return InferOptimizer(node, 4); }

void Reg(OpRegistry& r, const char* op, int groups, InferFn f) {
  OpSchema s;
  s.domain = kTrainingDomain;
  s.op_type = op;
  s.min_inputs = 2 + groups;
  s.max_inputs = kMany;
  s.min_outputs = groups - 1;
  s.max_outputs = kMany;
  s.infer = f;
  r.Register(std::move(s));
}

}  // namespace

void RegisterTrainingOps(OpRegistry& r) {
  Reg(r, "Adagrad", 3, InferAdagrad);
  Reg(r, "Momentum", 3, InferMomentum);
  Reg(r, "Adam", 4, InferAdam);
}

}  // namespace ampc
