#include "passes/fold_casts.h"

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
