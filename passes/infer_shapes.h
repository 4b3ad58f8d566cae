// Re-runs type and shape inference over the whole graph (after a rewrite, or on a textual graph
// whose types were written by hand).
#pragma once

#include "ir/op_registry.h"
#include "passes/pass.h"

namespace ampc {

class InferShapesPass : public Pass {
 public:
  std::string name() const override { return "infer-shapes"; }
  StatusOr<bool> Run(Graph& g) override;
};

}  // namespace ampc
