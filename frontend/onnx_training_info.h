// ONNX TrainingInfoProto, the parts that are not graph import: update bindings become the
// Graph's state updates, initialization graphs are checked but not run, and several entries are
// accepted only when running them one after another equals running them as one step. Internal
// to the frontend (used by onnx_import.cc, which imports each algorithm graph into the Graph).
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"

namespace ampc {

// What one training_info entry's algorithm added to the Graph.
struct AlgorithmImport {
  int index = 0;                // k of training_info[k]
  std::vector<Node*> nodes;     // nodes it added (after Gradient expansion)
  std::vector<Value*> defined;  // inputs, initializers and node outputs it defined
  std::vector<Value*> outputs;  // its outputs (appended to the Graph's outputs)
  // Names its update_binding keys may use: initializers of the inference graph or of this
  // algorithm (ONNX: "ModelProto.graph.initializer or TrainingInfoProto.algorithm.initializer").
  std::unordered_set<std::string> bindable;
};

// The training_info entries of one model, applied in order.
class TrainingInfoImport {
 public:
  TrainingInfoImport(Graph& g, std::vector<Node*> inference_nodes,
                     std::unordered_set<std::string> inference_outputs)
      : g_(g),
        inference_nodes_(std::move(inference_nodes)),
        inference_outputs_(std::move(inference_outputs)) {}

  // initialization + initialization_binding: names are checked, nothing is run. An imported
  // model's initializers hold its current state; the initialization graph is ONNX's way to
  // reset that state to "before training", which ampc does not offer.
  Status CheckInitialization(const onnx::TrainingInfoProto& ti, const AlgorithmImport& a) const;

  // After algorithm `a` is imported: rejects reads of another algorithm's values and of values
  // an earlier entry's update makes stale, then turns ti.update_binding into state updates.
  Status ApplyUpdateBindings(const onnx::TrainingInfoProto& ti, const AlgorithmImport& a);

 private:
  Status CheckReads(const AlgorithmImport& a, const std::vector<const Value*>& reads) const;

  Graph& g_;
  std::vector<Node*> inference_nodes_;
  std::unordered_set<std::string> inference_outputs_;
  std::unordered_map<const Value*, int> owner_;  // value -> entry whose algorithm defines it
  std::unordered_map<const Value*, int> stale_;  // value -> entry whose update changes it
  std::unordered_set<std::string> bound_;        // keys of all update bindings so far
};

}  // namespace ampc
