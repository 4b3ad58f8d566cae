#include "passes/dead_code.h"

#include <algorithm>
#include <unordered_set>

namespace ampc {

StatusOr<bool> DeadCodeElimination::Run(Graph& g) {
  std::unordered_set<const Value*> outputs(g.outputs().begin(), g.outputs().end());
  for (const StateUpdate& u : g.state_updates()) outputs.insert(u.next);
  // Walk backwards: a node is dead once all its outputs are unused, which may in turn free the
  // nodes feeding it.
  std::vector<Node*> order = g.nodes();
  bool changed = false;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* n = *it;
    const bool live = std::any_of(n->outputs().begin(), n->outputs().end(), [&](Value* v) {
      return v && (!v->uses().empty() || outputs.count(v));
    });
    if (live) continue;
    g.RemoveNode(n);
    changed = true;
  }
  return changed;
}

}  // namespace ampc
