#include "passes/infer_shapes.h"

namespace ampc {

StatusOr<bool> InferShapesPass::Run(Graph& g) {
  bool changed = false;
  for (Node* n : g.nodes()) {
    std::vector<TensorType> before;
    for (Value* o : n->outputs()) before.push_back(o ? o->type() : TensorType());
    RETURN_IF_ERROR(InferNode(*n));
    for (int i = 0; i < n->num_outputs(); ++i) {
      if (n->output(i) && n->output(i)->type() != before[i]) changed = true;
    }
  }
  return changed;
}

}  // namespace ampc
