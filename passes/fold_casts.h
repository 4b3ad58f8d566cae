// fold-casts: Cast(Cast(x)) whose first cast is exact becomes Cast(x), or x itself when the types
// round-trip (f16 -> f32 -> f16 is the identity, f32 -> f16 -> f32 is not and stays); an optimizer
// update (com.ampc SGD / Adam) reads an f16/bf16 gradient directly instead of its f32 Cast (it
// widens it as it loads it); Casts left without users are removed.
#pragma once

#include "passes/pass.h"

namespace ampc {

class FoldCastsPass : public Pass {
 public:
  std::string name() const override { return "fold-casts"; }
  StatusOr<bool> Run(Graph& g) override;
  int64_t folded() const { return folded_; }

 private:
  int64_t folded_ = 0;
};

}  // namespace ampc
