// insert-casts: makes a painted graph (paint-precision's annotations) true. Each floating input of
// a painted node whose type differs from the node's precision is replaced by a Cast to it. A value
// is cast at most once per target type, the cast shared by all its consumers (a weight is cast
// once per step); integer, bool and f64 values are never cast; inputs that carry no precision
// (Shape's, Cast's, AllFinite's, Dropout's ratio, BatchNormalization's statistics) are left alone.
// Where the value to cast is itself an exact Cast of a value of the wanted type, that value is
// used directly (counted as folded). Nodes are re-inferred; the graph is re-sorted.
#pragma once

#include "passes/pass.h"

namespace ampc {

// Whether converting `from` to `to` loses nothing (f16/bf16 -> f32/f64, f32 -> f64, or same).
bool IsExactWidening(DType from, DType to);

class InsertCastsPass : public Pass {
 public:
  std::string name() const override { return "insert-casts"; }
  StatusOr<bool> Run(Graph& g) override;
  int64_t folded() const { return folded_; }

 private:
  int64_t folded_ = 0;
};

}  // namespace ampc
