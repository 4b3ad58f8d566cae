#include "frontend/training/autodiff.h"

#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace ampc {

StatusOr<std::vector<Value*>> GradientContext::EmitMulti(const std::string& op,
                                                         std::vector<Value*> inputs,
                                                         int num_outputs, AttributeMap attrs,
                                                         const std::string& domain,
                                                         const std::vector<bool>& wanted) {
  const std::string stem = (forward.name().empty() ? forward.op_type() : forward.name()) + "_grad";
  const std::string name = graph.UniqueName(stem);
  std::vector<std::string> outs;
  for (int i = 0; i < num_outputs; ++i) {
    if (static_cast<size_t>(i) < wanted.size() && !wanted[static_cast<size_t>(i)]) {
      outs.emplace_back();
      continue;
    }
    outs.push_back(i == 0 ? name : graph.UniqueName(name + "_out" + std::to_string(i)));
  }
  ASSIGN_OR_RETURN(Node * n, graph.AddNode(op, domain, name, inputs, outs, std::move(attrs)));
  n->annotations()["grad_of"] = forward.name();
  RETURN_IF_ERROR(InferNode(*n).WithContext("gradient of " + forward.Describe()));
  return n->outputs();
}

StatusOr<Value*> GradientContext::Emit(const std::string& op, std::vector<Value*> inputs,
                                       AttributeMap attrs) {
  ASSIGN_OR_RETURN(std::vector<Value*> outs, EmitMulti(op, std::move(inputs), 1, std::move(attrs)));
  return outs[0];
}

StatusOr<Value*> GradientContext::ConstantLike(double v, const Value* like) {
  return graph.AddInitializer(graph.UniqueName("grad_const"), Tensor::Scalar(like->dtype(), v));
}

StatusOr<Value*> GradientContext::Ints(const std::vector<int64_t>& v) {
  return graph.AddInitializer(graph.UniqueName("grad_ints"),
                              Tensor::FromInt64s(v, {static_cast<int64_t>(v.size())}));
}

namespace {

bool IsFloatValue(const Value* v) { return v && IsFloat(v->dtype()); }

}  // namespace

StatusOr<BackwardResult> BuildBackward(Graph& g, Value* loss, const std::vector<Value*>& wrt,
                                       const std::string& seed_name) {
  static std::once_flag once;
  std::call_once(once, [] { RegisterGradientRules(OpRegistry::Global()); });
  if (!loss || !IsFloatValue(loss)) return InvalidArgument("the loss must be a float value");
  if (loss->type().has_rank && loss->type().NumElements() != std::optional<int64_t>(1)) {
    return InvalidArgument("the loss '" + loss->name() + "' must be a scalar, got " +
                           loss->type().ToString());
  }

  // Forward nodes, snapshotted before anything is appended.
  const std::vector<Node*> forward = g.nodes();

  // Values that depend on a parameter through float paths.
  std::unordered_set<const Value*> depends;
  for (Value* w : wrt) {
    if (IsFloatValue(w)) depends.insert(w);
  }
  for (Node* n : forward) {
    bool any = false;
    for (Value* in : n->inputs()) any = any || (in && depends.count(in));
    if (!any) continue;
    for (Value* out : n->outputs()) {
      if (IsFloatValue(out)) depends.insert(out);
    }
  }
  // Values the loss depends on (through float values).
  std::unordered_set<const Value*> reaches{loss};
  for (auto it = forward.rbegin(); it != forward.rend(); ++it) {
    Node* n = *it;
    bool any = false;
    for (Value* out : n->outputs()) any = any || (out && reaches.count(out));
    if (!any) continue;
    for (Value* in : n->inputs()) {
      if (IsFloatValue(in)) reaches.insert(in);
    }
  }
  auto on_path = [&](const Value* v) { return v && depends.count(v) && reaches.count(v); };

  BackwardResult result;
  ASSIGN_OR_RETURN(result.seed,
                   g.AddInitializer(g.UniqueName(seed_name), Tensor::Scalar(loss->dtype(), 1.0)));
  std::unordered_map<const Value*, Value*> grad;
  const size_t first_new_node = forward.size();
  grad[loss] = result.seed;
  if (loss->type().rank() != 0 && loss->producer()) {
    GradientContext ctx{g, *loss->producer(), {}, {}, {}};
    ASSIGN_OR_RETURN(Value * shape, ctx.Emit("Shape", {loss}));
    ASSIGN_OR_RETURN(grad[loss], ctx.Emit("Expand", {result.seed, shape}));
  }

  for (auto it = forward.rbegin(); it != forward.rend(); ++it) {
    Node& n = **it;
    GradientContext ctx{g, n, {}, {}, {}};
    bool any_out = false, any_in = false;
    for (Value* out : n.outputs()) {
      auto git = out ? grad.find(out) : grad.end();
      ctx.output_grads.push_back(git == grad.end() ? nullptr : git->second);
      any_out = any_out || ctx.output_grads.back();
    }
    for (Value* in : n.inputs()) {
      ctx.needs_grad.push_back(on_path(in));
      any_in = any_in || ctx.needs_grad.back();
    }
    if (!any_out || !any_in) continue;
    const OpSchema* s = OpRegistry::Global().Find(n.domain(), n.op_type());
    if (!s || !s->gradient) {
      return Unimplemented(n.Describe() + ": no gradient rule for " + n.op_type());
    }
    ctx.input_grads.assign(n.num_inputs(), nullptr);
    RETURN_IF_ERROR(s->gradient(ctx).WithContext("gradient of " + n.Describe()));
    for (int i = 0; i < n.num_inputs(); ++i) {
      Value* in = n.input(i);
      Value* gi = i < static_cast<int>(ctx.input_grads.size()) ? ctx.input_grads[i] : nullptr;
      if (!gi || !ctx.needs_grad[i]) continue;
      auto git = grad.find(in);
      if (git == grad.end()) {
        grad[in] = gi;
      } else {
        ASSIGN_OR_RETURN(git->second, ctx.Emit("Add", {git->second, gi}));
      }
    }
  }

  std::unordered_set<const Value*> keep;
  for (Value* w : wrt) {
    auto it = grad.find(w);
    if (it != grad.end()) {
      result.grads[w] = it->second;
      keep.insert(it->second);
    }
  }
  // Prune backward nodes whose outputs reach no requested gradient.
  std::vector<Node*> nodes = g.nodes();
  std::unordered_set<const Value*> outputs(g.outputs().begin(), g.outputs().end());
  for (size_t i = nodes.size(); i > first_new_node; --i) {
    Node* n = nodes[i - 1];
    if (!n->annotations().count("grad_of")) continue;
    bool used = false;
    for (Value* out : n->outputs()) {
      used = used || (out && (!out->uses().empty() || keep.count(out) || outputs.count(out)));
    }
    if (!used) g.RemoveNode(n);
  }
  return result;
}

}  // namespace ampc
