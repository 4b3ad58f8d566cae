// paint-precision: gives every node of the graph a precision — half (f16 or bf16) or fp32 — as
// the annotations precision=<f16|bf16|f32|-> and reason=<why>, changing nothing else (casts come
// from insert-casts). The order follows TensorFlow's auto-mixed-precision pass over the forward
// nodes:
//   1. allow-list ops are half;
//   2. deny-list ops (and ops in no list) are fp32, and deny spreads forward through infer and
//      clear ops ("deny: after N");
//   3. infer/clear ops on a path between two half ops become half ("between half ops");
//   4. clear ops connected to half ops through clear ops become half ("clear: follows N");
//   5. infer ops whose producing inputs are all half become half ("infer: inputs half");
//   6. the rest is fp32.
// Backward nodes (annotated grad_of=N) take N's precision ("grad_of N") unless the allow or deny
// list names their own op, or it is a clear op, which follows its inputs (a bias gradient reduced
// in fp32 stays fp32 on its way to the optimizer). Loss, clipping, loss-scaling and optimizer
// nodes (annotated role=...) are always fp32, so parameters, their gradients and optimizer state
// stay fp32 masters. Nodes matching --fp32-nodes are pinned ("user: --fp32-nodes"), and so are
// their backward nodes. An op the target cannot run in the half type stays fp32 ("target: ...").
#pragma once

#include "passes/autocast.h"

namespace ampc {

class PaintPrecisionPass : public Pass {
 public:
  explicit PaintPrecisionPass(AutocastOptions o) : opts_(std::move(o)) {}
  std::string name() const override { return "paint-precision"; }
  StatusOr<bool> Run(Graph& g) override;
  int64_t half_nodes() const { return half_nodes_; }
  int64_t fp32_nodes() const { return fp32_nodes_; }

 private:
  AutocastOptions opts_;
  int64_t half_nodes_ = 0, fp32_nodes_ = 0;
};

}  // namespace ampc
