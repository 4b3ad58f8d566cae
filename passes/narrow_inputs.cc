#include "passes/narrow_inputs.h"

#include <algorithm>

namespace ampc {

StatusOr<bool> NarrowInputsPass::Run(Graph& g) {
  narrowed_.clear();
  for (Value* in : g.inputs()) {
    if (std::find(inputs_.begin(), inputs_.end(), in->name()) == inputs_.end()) continue;
    if (in->dtype() != DType::kFloat32 || in->uses().empty() || g.IsRoot(in)) continue;
    DType half = DType::kUndefined;
    bool only_casts = true;
    for (const Use& u : in->uses()) {
      const Node* n = u.user;
      const bool cast = n->op_type() == "Cast" && n->domain().empty() && n->num_outputs() == 1 &&
                        n->output(0) && IsHalf(n->output(0)->dtype()) && !g.IsRoot(n->output(0));
      if (!cast || (half != DType::kUndefined && n->output(0)->dtype() != half)) {
        only_casts = false;
        break;
      }
      half = n->output(0)->dtype();
    }
    if (!only_casts) continue;
    std::vector<Node*> casts;
    for (const Use& u : in->uses()) casts.push_back(u.user);
    TensorType t = in->type();
    t.dtype = half;
    in->set_type(std::move(t));
    for (Node* c : casts) {
      g.ReplaceAllUsesWith(c->output(0), in);
      g.RemoveNode(c);
    }
    narrowed_.push_back(in->name());
  }
  return !narrowed_.empty();
}

}  // namespace ampc
