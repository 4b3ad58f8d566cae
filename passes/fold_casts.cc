#include "passes/fold_casts.h"

#include "ir/op_registry.h"
#include "passes/insert_casts.h"

namespace ampc {

StatusOr<bool> FoldCastsPass::Run(Graph& g) {
  folded_ = 0;
  bool changed = false;
  // Cast(Cast(x)) with an exact first cast: Cast(x) directly, or x when the types round-trip.
  for (Node* n : g.nodes()) {
    if (n->op_type() != "Cast" || !n->domain().empty() || !n->input(0)) continue;
    Node* p = n->input(0)->producer();
    if (!p || p->op_type() != "Cast" || !p->domain().empty() || !p->input(0)) continue;
    Value* x = p->input(0);
    if (!IsFloat(x->dtype()) || !IsExactWidening(x->dtype(), p->output(0)->dtype())) continue;
    if (x->dtype() == n->output(0)->dtype() && !g.IsRoot(n->output(0))) {
      g.ReplaceAllUsesWith(n->output(0), x);
    } else {
      n->SetInput(0, x);
    }
    ++folded_;
    changed = true;
  }
  // An optimizer update's f32 gradient widened from f16/bf16 by a Cast: the update reads the half
  // gradient and widens it as it loads it (the same values; the Cast's f32 copy is never stored).
  for (Node* n : g.nodes()) {
    if (n->domain() != kAmpcDomain || (n->op_type() != "SGD" && n->op_type() != "Adam")) continue;
    if (n->num_inputs() < 4 || !n->input(2) || !n->input(3)) continue;
    if (n->input(2)->dtype() != DType::kFloat32) continue;
    Node* c = n->input(3)->producer();
    if (!c || c->op_type() != "Cast" || !c->domain().empty() || !c->input(0)) continue;
    Value* half = c->input(0);
    if (!IsHalf(half->dtype()) || n->input(3)->dtype() != DType::kFloat32) continue;
    n->SetInput(3, half);
    ++folded_;
    changed = true;
  }
  RETURN_IF_ERROR(g.TopologicalSort());
  // Drop casts (and other nodes) left without users.
  const std::vector<Node*> after = g.nodes();
  for (auto it = after.rbegin(); it != after.rend(); ++it) {
    Node* n = *it;
    if (n->op_type() != "Cast") continue;
    bool used = false;
    for (Value* o : n->outputs()) used = used || (o && (!o->uses().empty() || g.IsRoot(o)));
    if (!used) {
      g.RemoveNode(n);
      changed = true;
    }
  }
  return changed;
}

}  // namespace ampc
