// BatchNormalization as the ONNX ops that define it, for backends without a batch-norm kernel
// (the CUDA runtime), over x of rank >= 2 with channels on axis 1 and the per-channel tensors
// reshaped to [C, 1, ...] so that they broadcast:
//   y = (x - mean) * (scale / Sqrt(var + epsilon)) + B
// In training form (model.train(), what training_graph gives every BatchNormalization) mean and
// var are the batch's, ReduceMean over every axis but 1 (var of x - mean, biased), and the
// running statistics become state updates with torch.nn.BatchNorm's rule:
//   running_mean' = running_mean * momentum + mean * (1 - momentum)
//   running_var'  = running_var * momentum + var * n / max(n - 1, 1) * (1 - momentum)
// with n = size(x) / C elements per channel (the unbiased variance, as the CPU kernel). Autodiff
// differentiates the primitives, so no com.ampc::BatchNormalizationGrad is needed. In inference
// form mean and var are the running statistics. Refused, naming the node: inputs of different
// float types and x of unknown rank.
#pragma once

#include <vector>

#include "ir/graph.h"
#include "ir/status.h"

namespace ampc {

struct BatchNormOps {
  Value* y = nullptr;
  Value* running_mean = nullptr;  // training form: the updated statistics ([C])
  Value* running_var = nullptr;
};

// Replaces ai.onnx BatchNormalization node `bn` by ops (the training form when `training`).
// The result takes the node's output name; the node is removed.
StatusOr<BatchNormOps> DecomposeBatchNorm(Graph& g, Node* bn, bool training);

// Every ai.onnx BatchNormalization of `g` in inference form (an evaluation pass), then sorted.
Status DecomposeInferenceBatchNorms(Graph& g);

}  // namespace ampc
