// ai.onnx.preview.training::Gradient: outputs[i] = d sum(y) / d xs[i], built with BuildBackward.
// ONNX defines the op on the sub-graph between the inputs xs ++ zs and y; ampc expands it on the
// graph itself, so that sub-graph must be the graph's own: xs are graph inputs or initializers,
// the node's inputs are the values its attributes name, and no z is computed from an x (holding
// such a z constant would need a stop-gradient the IR does not have).
#include "frontend/gradient_op.h"

#include <unordered_set>

#include "frontend/training/autodiff.h"
#include "ir/op_registry.h"

namespace ampc {
namespace {

StatusOr<std::vector<std::string>> StringsAttr(const AttributeMap& attrs, const std::string& key,
                                               bool required) {
  auto it = attrs.find(key);
  if (it == attrs.end()) {
    if (required) return InvalidArgument("attribute '" + key + "' is missing");
    return std::vector<std::string>{};
  }
  if (it->second.kind() != AttrKind::kStrings) {
    return InvalidArgument("attribute '" + key + "' must be a list of strings");
  }
  return it->second.strings();
}

// Values that depend on any of `roots` through the graph's nodes (roots included).
std::unordered_set<const Value*> DependentsOf(const Graph& g, const std::vector<Value*>& roots) {
  std::unordered_set<const Value*> dep(roots.begin(), roots.end());
  for (const Node* n : g.nodes()) {
    bool any = false;
    for (const Value* in : n->inputs()) any = any || (in && dep.count(in));
    if (!any) continue;
    for (const Value* out : n->outputs()) {
      if (out) dep.insert(out);
    }
  }
  return dep;
}

// Checks xs and zs against the node's inputs; returns the xs values.
StatusOr<std::vector<Value*>> ResolveInputs(const Graph& g, const std::vector<std::string>& xs,
                                            const std::vector<std::string>& zs,
                                            const std::vector<Value*>& inputs) {
  if (xs.empty()) return InvalidArgument("attribute 'xs' is empty");
  if (inputs.size() != xs.size() + zs.size()) {
    return InvalidArgument("has " + std::to_string(inputs.size()) + " inputs but xs and zs name " +
                           std::to_string(xs.size() + zs.size()) + " values");
  }
  std::vector<Value*> xv;
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const bool is_x = i < xs.size();
    const std::string& want = is_x ? xs[i] : zs[i - xs.size()];
    const std::string what =
        (is_x ? "xs[" + std::to_string(i) + "]" : "zs[" + std::to_string(i - xs.size()) + "]") +
        " '" + want + "'";
    Value* v = g.FindValue(want);
    if (!v) return InvalidArgument(what + " names no value of the graph");
    if (!seen.insert(want).second) return InvalidArgument(what + " is listed twice in xs/zs");
    if (inputs[i] != v) {
      return Unimplemented("input " + std::to_string(i) + " is not " + what +
                           "; ampc differentiates at the graph's own values, so each input must "
                           "be the value its xs/zs entry names");
    }
    if (!is_x) continue;
    if (v->kind() == ValueKind::kNodeOutput) {
      return InvalidArgument(what + " is computed by " + v->producer()->Describe() +
                             "; xs must be graph inputs or initializers");
    }
    if (!IsFloat(v->dtype())) {
      return InvalidArgument(what + " has type " + std::string(DTypeName(v->dtype())) +
                             "; only float tensors have gradients");
    }
    xv.push_back(v);
  }
  const std::unordered_set<const Value*> dep = DependentsOf(g, xv);
  for (const std::string& z : zs) {
    if (dep.count(g.FindValue(z))) {
      return Unimplemented("zs entry '" + z +
                           "' is computed from xs; holding it constant "
                           "would need a stop-gradient, which ampc does not have");
    }
  }
  return xv;
}

// A node with one output, inferred.
StatusOr<Value*> AddOne(Graph& g, const std::string& op, const std::string& name,
                        std::vector<Value*> inputs, const std::string& out,
                        AttributeMap attrs = {}) {
  ASSIGN_OR_RETURN(Node * n, g.AddNode(op, "", name, inputs, {out}, std::move(attrs)));
  RETURN_IF_ERROR(InferNode(*n));
  return n->output(0);
}

// Zeros shaped like x (x does not reach y).
StatusOr<Value*> ZerosLike(Graph& g, const std::string& stem, Value* x) {
  ASSIGN_OR_RETURN(Value * zero,
                   g.AddInitializer(g.UniqueName(stem + "_zero"), Tensor::Scalar(x->dtype(), 0.0)));
  ASSIGN_OR_RETURN(Value * shape,
                   AddOne(g, "Shape", stem + "_shape", {x}, g.UniqueName(stem + "_shape")));
  return AddOne(g, "Expand", stem + "_zeros", {zero, shape}, g.UniqueName(stem + "_zeros"));
}

}  // namespace

std::vector<std::string> GradientAttributeReads(const AttributeMap& attrs) {
  auto it = attrs.find("y");
  if (it == attrs.end() || it->second.kind() != AttrKind::kString) return {};
  return {it->second.s()};
}

StatusOr<std::vector<Value*>> ExpandGradientOp(Graph& g, const std::string& node_name,
                                               const AttributeMap& attrs,
                                               const std::vector<Value*>& inputs,
                                               const std::vector<std::string>& outputs) {
  ASSIGN_OR_RETURN(std::vector<std::string> xs, StringsAttr(attrs, "xs", true));
  ASSIGN_OR_RETURN(std::vector<std::string> zs, StringsAttr(attrs, "zs", false));
  auto yit = attrs.find("y");
  if (yit == attrs.end() || yit->second.kind() != AttrKind::kString) {
    return InvalidArgument("attribute 'y' (a string) is missing");
  }
  Value* y = g.FindValue(yit->second.s());
  if (!y) return InvalidArgument("y '" + yit->second.s() + "' names no value of the graph");
  if (!IsFloat(y->dtype())) {
    return InvalidArgument("y '" + y->name() + "' has type " + std::string(DTypeName(y->dtype())) +
                           "; only float values can be differentiated");
  }
  ASSIGN_OR_RETURN(std::vector<Value*> xv, ResolveInputs(g, xs, zs, inputs));
  if (outputs.size() != xs.size()) {
    return InvalidArgument("has " + std::to_string(outputs.size()) + " outputs but " +
                           std::to_string(xs.size()) + " xs");
  }
  const std::string stem = node_name.empty() ? "Gradient" : node_name;
  // ONNX's Gradient of a non-scalar y is the gradient of the sum of its elements.
  Value* loss = y;
  Node* sum = nullptr;
  if (!y->type().has_rank || y->type().rank() != 0) {
    ASSIGN_OR_RETURN(loss,
                     AddOne(g, "ReduceSum", stem + "_sum_y", {y}, g.UniqueName(stem + "_sum_y"),
                            {{"keepdims", Attribute(int64_t{0})}}));
    sum = loss->producer();
  }
  ASSIGN_OR_RETURN(BackwardResult bw, BuildBackward(g, loss, xv));
  if (sum && sum->output(0)->uses().empty()) g.RemoveNode(sum);
  std::vector<Value*> out;
  for (size_t i = 0; i < xv.size(); ++i) {
    if (outputs[i].empty()) {  // an omitted output
      out.push_back(nullptr);
      continue;
    }
    const std::string out_stem = stem + "_d" + std::to_string(i);
    auto it = bw.grads.find(xv[i]);
    Value* grad = nullptr;
    if (it != bw.grads.end()) {
      grad = it->second;
    } else {
      ASSIGN_OR_RETURN(grad, ZerosLike(g, out_stem, xv[i]));
    }
    ASSIGN_OR_RETURN(Value * named, AddOne(g, "Identity", out_stem, {grad}, outputs[i]));
    out.push_back(named);
  }
  return out;
}

}  // namespace ampc
