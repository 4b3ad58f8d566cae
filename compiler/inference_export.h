// `ampc export`: an inference ONNX model from a forward model and trained weights.
//
//   weights (ReadTrainedWeights: a training plan's states, or a safetensors checkpoint)
//   -> the forward model with them in place of its initializers (names and shapes checked)
//   -> inference form: Dropout removed, BatchNormalization on its running statistics
//   -> fp16/bf16: autocast (paint-precision, insert-casts, fold-casts, as in training), casts of
//      weights computed ahead (half initializers), half outputs cast back to f32 under their own
//      names, so inputs and outputs keep their declared types (a drop-in replacement)
//   -> frontend's ONNX export (ONNX's checker runs there), written atomically.
#pragma once

#include <map>
#include <string>

#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"
#include "passes/autocast.h"

namespace ampc {

// Trained weights by initializer name, read by file extension:
//   .ampc         a training plan (`ampc train --save-plan`): its trained parameters and running
//                 statistics (the optimizer's moments and counters are not weights);
//   .safetensors  every tensor of the file.
// Another extension is an error listing these.
StatusOr<std::map<std::string, Tensor>> ReadTrainedWeights(const std::string& path);

// Replaces the initializers of forward model `g` by `weights`. Every weight must name an
// initializer of g (an untied copy's name unties g's shared initializers first) with the same
// shape, and the same dtype or f32 for a half-stored one (a master weight, rounded back); the
// errors name the tensor. `weights_name` and `model_name` are for messages. Returns the count.
StatusOr<int64_t> ApplyTrainedWeights(Graph& g, const std::map<std::string, Tensor>& weights,
                                      const std::string& weights_name,
                                      const std::string& model_name);

struct InferenceExportStats {
  int64_t weights_replaced = 0;
  int64_t half_nodes = 0, fp32_nodes = 0, casts = 0;  // after autocast (fp16/bf16 only)
};

// Rewrites forward model `g` for inference in `precision` (f32 | f16 | bf16), as described at the
// top of this file. `amp` gives the lists (its `half` is replaced by `precision`).
StatusOr<InferenceExportStats> ToInferenceModel(Graph& g, DType precision, AutocastOptions amp);

// The whole of `ampc export`: import `model_path`, apply the weights of `weights_path`, rewrite
// for `precision` and write `out_path` atomically.
StatusOr<InferenceExportStats> ExportInferenceModel(const std::string& model_path,
                                                    const std::string& weights_path,
                                                    DType precision, const std::string& out_path);

}  // namespace ampc
