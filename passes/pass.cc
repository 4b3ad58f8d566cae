#include "passes/pass.h"

#include "ir/verifier.h"
#include "passes/dead_code.h"
#include "passes/decompose_attention.h"
#include "passes/infer_shapes.h"
#include "passes/split_loss.h"

namespace ampc {

StatusOr<bool> PassPipeline::Run(Graph& g) const {
  bool changed = false;
  for (const auto& p : passes_) {
    auto r = p->Run(g);
    if (!r.ok()) return r.status().WithContext("pass " + p->name());
    changed |= *r;
    if (verify_) {
      Status st = Verify(g);
      if (!st.ok()) return st.WithContext("verifier after pass " + p->name());
    }
  }
  return changed;
}

std::unique_ptr<Pass> CreatePassByName(const std::string& name) {
  if (name == "dce") return std::make_unique<DeadCodeElimination>();
  if (name == "decompose-attention") return std::make_unique<DecomposeAttentionPass>();
  if (name == "infer-shapes") return std::make_unique<InferShapesPass>();
  if (name == "split-loss") return std::make_unique<SplitLossPass>();
  return nullptr;
}

std::vector<std::string> PassNames() {
  return {"dce", "decompose-attention", "infer-shapes", "split-loss"};
}

}  // namespace ampc
