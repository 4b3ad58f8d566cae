#include "frontend/training/batchnorm_ops.h"

#include <string>

#include "ir/dtype.h"
#include "ir/node_emitter.h"
#include "ir/op_registry.h"

namespace ampc {

StatusOr<BatchNormOps> DecomposeBatchNorm(Graph& g, Node* bn, bool training) {
  Value* x = bn->input(0);
  const TensorType& xt = x->type();
  if (!xt.has_rank || xt.rank() < 2) {
    return Unimplemented(bn->Describe() + ": decomposing BatchNormalization needs x of known "
                         "rank >= 2, got " + xt.ToString());
  }
  for (int i = 1; i < 5; ++i) {
    if (!bn->input(i) || bn->input(i)->dtype() != x->dtype()) {
      return Unimplemented(bn->Describe() + ": decomposing BatchNormalization needs scale, B, "
                           "mean and var of x's type " + xt.ToString());
    }
  }
  for (int i = 1; i < bn->num_outputs(); ++i) {
    if (bn->output(i) && (!training || i > 2) && !bn->output(i)->uses().empty()) {
      return Unimplemented(bn->Describe() + ": decomposing BatchNormalization with output " +
                           std::to_string(i) + " read");
    }
  }
  NodeEmitter e(g, RoleOf(*bn));
  const std::string stem = bn->name();
  const DType dt = x->dtype();
  auto op = [&](const std::string& type, const std::string& suffix, std::vector<Value*> in,
                AttributeMap attrs = {}) {
    return e.One(type, stem + suffix, std::move(in), std::move(attrs));
  };
  auto scalar = [&](const std::string& suffix, double v) {
    return e.Init(stem + suffix, Tensor::Scalar(dt, v));
  };
  auto ints = [&](const std::string& suffix, const std::vector<int64_t>& v) {
    return e.Init(stem + suffix, Tensor::FromInt64s(v, {static_cast<int64_t>(v.size())}));
  };
  const int64_t rank = xt.rank();
  std::vector<int64_t> per_channel(static_cast<size_t>(rank - 1), 1), axes{0};
  per_channel[0] = -1;
  for (int64_t a = 2; a < rank; ++a) axes.push_back(a);
  ASSIGN_OR_RETURN(Value * channel_shape, ints("_channel_shape", per_channel));
  auto per_c = [&](int input, const std::string& suffix) {
    return op("Reshape", suffix, {bn->input(input), channel_shape});
  };
  Value *mean = nullptr, *var = nullptr, *centred = nullptr;
  if (training) {
    ASSIGN_OR_RETURN(Value * over, ints("_axes", axes));
    const AttributeMap keep{{"keepdims", Attribute(int64_t{1})}};
    ASSIGN_OR_RETURN(mean, op("ReduceMean", "_batch_mean", {x, over}, keep));
    ASSIGN_OR_RETURN(centred, op("Sub", "_centred", {x, mean}));
    ASSIGN_OR_RETURN(Value * sq, op("Mul", "_squares", {centred, centred}));
    ASSIGN_OR_RETURN(var, op("ReduceMean", "_batch_var", {sq, over}, keep));
  } else {
    ASSIGN_OR_RETURN(mean, per_c(3, "_mean"));
    ASSIGN_OR_RETURN(var, per_c(4, "_var"));
    ASSIGN_OR_RETURN(centred, op("Sub", "_centred", {x, mean}));
  }
  ASSIGN_OR_RETURN(Value * eps, scalar("_epsilon", bn->attr_float("epsilon", 1e-5f)));
  ASSIGN_OR_RETURN(Value * ve, op("Add", "_var_eps", {var, eps}));
  ASSIGN_OR_RETURN(Value * sd, op("Sqrt", "_std", {ve}));
  ASSIGN_OR_RETURN(Value * scale, per_c(1, "_scale"));
  ASSIGN_OR_RETURN(Value * mul, op("Div", "_multiplier", {scale, sd}));
  ASSIGN_OR_RETURN(Value * scaled, op("Mul", "_scaled", {centred, mul}));
  ASSIGN_OR_RETURN(Value * bias, per_c(2, "_bias"));
  BatchNormOps out;
  ASSIGN_OR_RETURN(out.y, op("Add", "_y", {scaled, bias}));
  if (training) {
    const double m = bn->attr_float("momentum", 0.9f);
    ASSIGN_OR_RETURN(Value * keep, scalar("_momentum", m));
    ASSIGN_OR_RETURN(Value * take, scalar("_one_minus_momentum", 1.0 - m));
    ASSIGN_OR_RETURN(Value * flat, ints("_flat", {-1}));
    // Elements per channel, n = size(x) / C, and the unbiased variance's factor n / max(n-1, 1).
    const DType count_type = dt == DType::kFloat64 ? dt : DType::kFloat32;
    const AttributeMap to{{"to", Attribute(int64_t{DTypeToOnnxNumber(count_type)})}};
    ASSIGN_OR_RETURN(Value * size, op("Size", "_size", {x}));
    ASSIGN_OR_RETURN(Value * shape, op("Shape", "_shape", {x}));
    ASSIGN_OR_RETURN(Value * one_i, e.Init(stem + "_channel_axis", Tensor::ScalarInt64(1)));
    ASSIGN_OR_RETURN(Value * channels, op("Gather", "_channels", {shape, one_i}));
    ASSIGN_OR_RETURN(Value * size_f, op("Cast", "_size_f", {size}, to));
    ASSIGN_OR_RETURN(Value * channels_f, op("Cast", "_channels_f", {channels}, to));
    ASSIGN_OR_RETURN(Value * n, op("Div", "_count", {size_f, channels_f}));
    ASSIGN_OR_RETURN(Value * one, e.Init(stem + "_one", Tensor::Scalar(count_type, 1.0)));
    ASSIGN_OR_RETURN(Value * n1, op("Sub", "_count_less_one", {n, one}));
    ASSIGN_OR_RETURN(Value * n1c, op("Max", "_count_less_one_at_least_one", {n1, one}));
    ASSIGN_OR_RETURN(Value * corr, op("Div", "_unbiased", {n, n1c}));
    if (dt != count_type) {
      ASSIGN_OR_RETURN(corr, op("Cast", "_unbiased_cast", {corr},
                                {{"to", Attribute(int64_t{DTypeToOnnxNumber(dt)})}}));
    }
    auto update = [&](int input, Value* batch, Value* factor,
                      const std::string& what) -> StatusOr<Value*> {
      ASSIGN_OR_RETURN(Value * b, op("Reshape", what + "_batch", {batch, flat}));
      if (factor) {
        ASSIGN_OR_RETURN(b, op("Mul", what + "_unbiased", {b, factor}));
      }
      ASSIGN_OR_RETURN(Value * old, op("Mul", what + "_kept", {bn->input(input), keep}));
      ASSIGN_OR_RETURN(Value * add, op("Mul", what + "_taken", {b, take}));
      return op("Add", what + "_next", {old, add});
    };
    ASSIGN_OR_RETURN(out.running_mean, update(3, mean, nullptr, "_running_mean"));
    ASSIGN_OR_RETURN(out.running_var, update(4, var, corr, "_running_var"));
  }
  // The result takes the node's place: its output's name, readers and graph-output places.
  RETURN_IF_ERROR(g.ReplaceValue(bn->output(0), out.y));
  for (int i = 1; i < bn->num_outputs() && i < 3; ++i) {
    if (Value* o = bn->output(i)) g.ReplaceAllUsesWith(o, i == 1 ? out.running_mean : out.running_var);
  }
  g.RemoveNode(bn);
  return out;
}

Status DecomposeInferenceBatchNorms(Graph& g) {
  std::vector<Node*> bns;
  for (Node* n : g.nodes()) {
    if (n->domain().empty() && n->op_type() == "BatchNormalization") bns.push_back(n);
  }
  for (Node* n : bns) RETURN_IF_ERROR(DecomposeBatchNorm(g, n, false).status());
  return bns.empty() ? Status::Ok() : g.TopologicalSort();
}

}  // namespace ampc
