// Removes nodes none of whose outputs is used by another node or is a graph output, and
// initializers nothing reads are kept (they are parameters the user may still want to export).
#pragma once

#include "passes/pass.h"

namespace ampc {

class DeadCodeElimination : public Pass {
 public:
  std::string name() const override { return "dce"; }
  StatusOr<bool> Run(Graph& g) override;
};

}  // namespace ampc
