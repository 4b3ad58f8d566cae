// Turning a forward model into one training step. BuildTrainingGraph attaches a loss, switches
// BatchNormalization and Dropout to training behaviour, builds the backward pass, optionally
// clips gradients by their global norm, and appends one optimizer node per parameter whose
// results become state updates (graph.h StateUpdate). The result is an ordinary graph: one call
// of its plan is one training step.
//
// Inputs of the training graph: the model's data inputs, the labels (unless the model computes
// its own loss), and the learning rate `ampc.lr` (f32 scalar, so schedules need no recompile).
// Outputs: the loss first, then the model's outputs, then `ampc.grad_norm` when clipping.
// States: the parameters, the optimizer's moments (`ampc.<kind>.<param>`), BatchNorm running
// statistics, and the applied-step counter `ampc.step` (i64).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"
#include "ir/training_names.h"

namespace ampc {

struct LossOptions {
  std::string kind = "cross_entropy";  // cross_entropy | nll | mse | none
  std::string labels = "labels";       // graph input (added if absent) holding the targets
  std::string loss_output;             // the model already outputs its scalar loss (kind none)
  std::string output;                  // the model output the loss applies to; "" = the first
  // 0 = automatic: axis 1 (ONNX, PyTorch), or the last axis when the labels' shape says so.
  int64_t class_axis = 0;
  // The labels array's dims (samples first), when the data is known before the graph is built;
  // the labels input's own type wins when the model has one.
  std::vector<int64_t> labels_dims;
  int64_t ignore_index = -100;         // cross_entropy and nll, as PyTorch
};

struct OptimizerOptions {
  std::string kind = "sgd";  // sgd | adam | adamw
  double lr = 0.01;          // the default value of ampc.lr (schedules override per step)
  double momentum = 0.0, dampening = 0.0;
  bool nesterov = false;
  double weight_decay = -1;  // < 0: the optimizer's PyTorch default (0, adamw 0.01)
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double clip_grad_norm = 0.0;  // > 0: clip by global L2 norm, as torch.nn.utils.clip_grad_norm_
};

struct TrainOptions {
  LossOptions loss;
  OptimizerOptions optimizer;
  std::string freeze;  // ECMAScript regex; matching initializers are not trained
  // ECMAScript regex; when set, only matching initializers are trained (and matching ones are
  // trained even when they look like constants: scalars, masks).
  std::string train;
  // torch.onnx.export merges parameters with equal values (freshly initialised LayerNorm
  // weights, zero biases): one initializer stays and the others become Identity nodes of it, so
  // they train as one tensor (the ONNX file's meaning; a warning says so). With untie_shared each
  // such Identity becomes its own initializer, named like the torch parameter, as in PyTorch.
  bool untie_shared = false;
  // Dropout masks: com.ampc::Dropout draws from (seed, step, element); a node's own `seed`
  // attribute wins, otherwise this seed mixed with the node's position.
  int64_t seed = 0;
  // BatchNormalization's training form as ONNX ops (frontend/training/batchnorm_ops.h) instead of
  // com.ampc::BatchNormalization, for backends without a batch-norm kernel (the compiler sets it
  // with CompileOptions::decompose_composites).
  bool decompose_batchnorm = false;
};

struct TrainingGraphInfo {
  std::vector<std::string> data_inputs;    // model inputs the data set feeds
  std::string labels;                      // "" when the model computes its own loss
  std::string loss;                        // name of the scalar loss output
  std::string logits;                      // the model output the loss was attached to, if any
  int64_t class_axis = -1;                 // of logits, for cross_entropy / nll
  std::vector<std::string> params;         // trained initializers, in graph order
  std::vector<std::string> model_initializers;  // the forward model's, before anything was added
  std::vector<std::string> frozen;         // float initializers left alone (--freeze, constants)
  std::map<std::string, std::string> frozen_reasons;  // why each one is frozen
  std::vector<std::string> running_stats;  // BatchNorm running mean/var states
  std::vector<std::string> warnings;       // for the user (shared initializers, ...)
  // Filled by passes/loss_scaling (the compiler copies them here for the plan and inspection).
  std::string loss_scale_mode;  // resolved: none | static | dynamic
  bool finite_check = false;    // a non-finite loss or gradient skips the step
};

// Replaces each `P = Identity(initializer Q)` whose output has a parameter name (not an
// exporter-generated "/..." or "onnx::" one) by an initializer P holding a copy of Q. Returns the
// new names; with untie = false it changes nothing and describes each alias instead.
StatusOr<std::vector<std::string>> UntieSharedInitializers(Graph& g, bool untie);

// Validates the options (unknown loss or optimizer kinds, negative rates, a bad regex ...).
Status ValidateTrainOptions(const TrainOptions& opts);

// Rewrites the forward model `g` in place into a training step. Errors name what is wrong (an
// unknown output, a loss output that is not a scalar, an op without a gradient rule ...).
// The step has no loss scaling or finite check yet (passes/loss_scaling adds them); the autodiff
// seed is the initializer kLossSeed, clip nodes (role=clip) take a gradient as their first input,
// and each optimizer node (role=optimizer) reads its gradient as input 3. Parameters must be f32
// or f64 (passes/master_weights gives half-stored ones fp32 masters first).
StatusOr<TrainingGraphInfo> BuildTrainingGraph(Graph& g, const TrainOptions& opts);

// model.eval(): BatchNormalization exported in training mode uses its running statistics, Dropout
// in training mode becomes the identity.
Status ToInferenceMode(Graph& g);

// Rewrites the forward model `g` for evaluation next to a training graph: appends the loss (when
// the labels input can be formed) so validation reports it. BatchNorm stays in inference mode.
// Returns the loss output name, or "" if the model computes no loss that way.
StatusOr<std::string> AttachEvalLoss(Graph& g, const LossOptions& opts);

}  // namespace ampc
