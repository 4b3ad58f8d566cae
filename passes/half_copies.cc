#include "passes/half_copies.h"

#include <unordered_map>
#include <vector>

#include "ir/op_registry.h"

namespace ampc {
namespace {

bool IsOptimizer(const Node& n) {
  return n.domain() == kAmpcDomain && (n.op_type() == "SGD" || n.op_type() == "Adam");
}

}  // namespace

const Value* HalfCopyOf(const Graph& g, const Value* w) {
  for (const Use& u : w->uses()) {
    const Node& n = *u.user;
    if (!IsOptimizer(n) || u.operand != 2 || n.attr_int("half_copy", 0) == 0) continue;
    for (const StateUpdate& s : g.state_updates()) {
      if (s.next == n.outputs().back()) return s.state;
    }
  }
  return nullptr;
}

StatusOr<bool> HalfCopiesPass::Run(Graph& g) {
  copies_ = 0;
  std::unordered_map<const Value*, const Value*> next_of;  // state -> its next value
  for (const StateUpdate& s : g.state_updates()) next_of[s.state] = s.next;
  std::vector<Node*> optimizers;
  for (Node* n : g.nodes()) {
    if (IsOptimizer(*n) && n->attr_int("half_copy", 0) == 0) optimizers.push_back(n);
  }
  for (Node* n : optimizers) {
    Value* w = n->input(2);
    if (!w || w->kind() != ValueKind::kInitializer || w->dtype() != DType::kFloat32 ||
        !w->initializer() || w->initializer()->elided()) {
      continue;
    }
    auto next = next_of.find(w);
    if (next == next_of.end() || next->second != n->output(0)) continue;  // n does not update w
    // The Cast of w to a half type (insert-casts made at most one per type; a second half
    // type, which one precision never paints, keeps its Cast).
    Node* cast = nullptr;
    for (const Use& u : w->uses()) {
      Node* c = u.user;
      if (c->op_type() == "Cast" && c->domain().empty() && c->num_outputs() == 1 && c->output(0) &&
          IsHalf(c->output(0)->dtype()) && !g.IsRoot(c->output(0))) {
        cast = c;
        break;
      }
    }
    if (!cast) continue;
    Value* cast_out = cast->output(0);
    const DType half = cast_out->dtype();
    const std::string name = cast_out->name();
    RETURN_IF_ERROR(g.RenameValue(cast_out, g.UniqueName(name + ".cast")));
    ASSIGN_OR_RETURN(Value * copy, g.AddInitializer(name, w->initializer()->ConvertFloat(half)));
    g.ReplaceAllUsesWith(cast_out, copy);
    g.RemoveNode(cast);
    ASSIGN_OR_RETURN(Value * copy_next, g.AddNodeOutput(n, g.UniqueName(name + ".next")));
    TensorType t = w->type();
    t.dtype = half;
    copy_next->set_type(std::move(t));
    n->attrs()["half_copy"] = Attribute(static_cast<int64_t>(DTypeToOnnxNumber(half)));
    g.AddStateUpdate(copy, copy_next);
    ++copies_;
  }
  return copies_ > 0;
}

}  // namespace ampc
