// split-loss: SoftmaxCrossEntropyLoss with reduction mean or sum becomes the per-row loss
// (reduction none) followed by its sums, for the GPU's kernel grain. The node kernel sums the
// rows in one unit so that the sum runs in row order; on a GPU that unit is one thread walking
// every row (GPT-2 small: 8192 rows of 50257 classes, seconds per step). Split, each row is a
// thread of its own and only the sums of 8192 values stay in one unit:
//   loss = ReduceSum(rows) / ReduceSum(Cast(labels != ignore_index))   (mean; sum: no division)
// with the count a constant when there is no ignore_index. The sums run in double in row order
// as before; the one difference is the division, now of the f32-rounded sum (exact when the
// count is a power of two, else within one ulp of the unsplit loss). Class weights keep the
// unsplit node. The log_prob output and the loss keep their values' names.
#pragma once

#include <string>

#include "passes/pass.h"

namespace ampc {

class SplitLossPass : public Pass {
 public:
  std::string name() const override { return "split-loss"; }
  StatusOr<bool> Run(Graph& g) override;
};

}  // namespace ampc
