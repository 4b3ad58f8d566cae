// Reverse-mode automatic differentiation over the graph IR. BuildBackward appends the backward
// pass of a scalar loss as ordinary ONNX nodes (each annotated grad_of=<forward node name>) and
// returns the gradient Value of each requested parameter. Per-op rules live in the OpSchema
// gradient slot (frontend/training/gradients.cc).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/op_registry.h"
#include "ir/status.h"

namespace ampc {

// What a gradient rule sees: the forward node, the gradients flowing into its outputs, and the
// slots for the gradients of its inputs.
struct GradientContext {
  Graph& graph;
  Node& forward;                     // the node being differentiated
  std::vector<Value*> output_grads;  // dL/d(output i), nullptr if none flows
  std::vector<Value*> input_grads;   // set by the rule: dL/d(input i) or nullptr
  // Which inputs need a gradient; rules skip the others (their gradients would be pruned anyway).
  std::vector<bool> needs_grad;

  bool NeedsGrad(int i) const { return i < static_cast<int>(needs_grad.size()) && needs_grad[i]; }
  // Emits a backward node (annotated grad_of = forward.name(), named uniquely), runs InferNode on
  // it and returns output 0.
  StatusOr<Value*> Emit(const std::string& op, std::vector<Value*> inputs, AttributeMap attrs = {});
  // Same, with `num_outputs` outputs (output 0 takes the node's name, the others NAME_out1, ...)
  // and an op of `domain`; returns all of them. Outputs `wanted` marks false (when given) are
  // omitted (nullptr): an optional output nothing reads, which the kernel then skips.
  StatusOr<std::vector<Value*>> EmitMulti(const std::string& op, std::vector<Value*> inputs,
                                          int num_outputs, AttributeMap attrs = {},
                                          const std::string& domain = "",
                                          const std::vector<bool>& wanted = {});
  // Scalar initializer of like's dtype holding v.
  StatusOr<Value*> ConstantLike(double v, const Value* like);
  // 1-D int64 initializer (axes, shapes, perms).
  StatusOr<Value*> Ints(const std::vector<int64_t>& v);
};

struct BackwardResult {
  // Parameter -> its gradient. A parameter the loss does not depend on has no entry.
  std::map<const Value*, Value*> grads;
  Value* seed = nullptr;  // the scalar initializer dL/dloss = 1 (a later pass may rewire it)
};

// Seeds dL/dloss with a scalar initializer 1.0 of the loss dtype, walks the nodes between `wrt`
// and `loss` in reverse topological order, sums the gradients of values with several uses, skips
// integer and bool values, and removes backward nodes that do not reach a requested gradient.
// Fails (Unimplemented) naming the node when an op on the path has no gradient rule.
// `seed_name`: the seed initializer's name stem (the training builder names it ampc.loss_seed so
// passes/loss_scaling can find it).
StatusOr<BackwardResult> BuildBackward(Graph& g, Value* loss, const std::vector<Value*>& wrt,
                                       const std::string& seed_name = "loss_grad_seed");

// Sets OpSchema::gradient for every op with a rule (frontend/training/gradients.cc).
// BuildBackward calls it once.
void RegisterGradientRules(OpRegistry& r);

}  // namespace ampc
