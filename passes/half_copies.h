// half-copies: a parameter that the forward pass reads through a Cast to f16/bf16 and that an
// optimizer node updates gets its half copy as a state of its own. The optimizer writes it (the
// updated fp32 master rounded to nearest even, attribute half_copy on SGD/Adam, an extra last
// output) in the same pass over the parameter as the update, and the Cast goes: each step then
// reads the parameter once in the optimizer instead of once more in a Cast (PyTorch's
// multi-tensor AMP optimizers keep such copies too). The values are the Cast's, bit for bit, so
// the trajectory does not change. Plans mark the copy (Buffer.half_copy_of): executors keep it out
// of their state names (checkpoints, state copies) and recompute it whenever the parameter is set.
// Runs after autocast, in a training step only.
#pragma once

#include <string>

#include "passes/pass.h"

namespace ampc {

class HalfCopiesPass : public Pass {
 public:
  std::string name() const override { return "half-copies"; }
  StatusOr<bool> Run(Graph& g) override;
  int copies() const { return copies_; }

 private:
  int copies_ = 0;
};

// The half-copy state of parameter `w` (an initializer the pass gave one), or nullptr.
const Value* HalfCopyOf(const Graph& g, const Value* w);

}  // namespace ampc
