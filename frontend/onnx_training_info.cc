#include "frontend/onnx_training_info.h"

#include <algorithm>

namespace ampc {

Status TrainingInfoImport::CheckInitialization(const onnx::TrainingInfoProto& ti,
                                               const AlgorithmImport& a) const {
  std::unordered_set<std::string> produced;
  for (const auto& o : ti.initialization().output()) produced.insert(o.name());
  for (const auto& b : ti.initialization_binding()) {
    const std::string what = "initialization_binding '" + b.key() + "' <- '" + b.value() + "'";
    if (!a.bindable.count(b.key())) {
      return InvalidArgument(what + ": '" + b.key() +
                             "' is not an initializer of the inference graph or of this entry's "
                             "algorithm");
    }
    if (!produced.count(b.value())) {
      return InvalidArgument(what + ": '" + b.value() +
                             "' is not an output of the initialization graph");
    }
  }
  return Status::Ok();
}

Status TrainingInfoImport::CheckReads(const AlgorithmImport& a,
                                      const std::vector<const Value*>& reads) const {
  for (const Value* v : reads) {
    if (auto it = owner_.find(v); it != owner_.end()) {
      return InvalidArgument("reads '" + v->name() + "', a value of training_info[" +
                             std::to_string(it->second) +
                             "]'s algorithm; an algorithm sees only the inference graph and "
                             "its own values");
    }
    if (auto it = stale_.find(v); it != stale_.end()) {
      return Unimplemented(
          "reads '" + v->name() + "'" +
          (v->kind() == ValueKind::kInitializer ? "" : " (computed from an initializer)") +
          ", which training_info[" + std::to_string(it->second) +
          "]'s update_binding changes; ONNX runs the entries one after another, and ampc "
          "imports several only when none reads what an earlier one updates");
    }
  }
  return Status::Ok();
}

Status TrainingInfoImport::ApplyUpdateBindings(const onnx::TrainingInfoProto& ti,
                                               const AlgorithmImport& a) {
  std::vector<const Value*> reads;
  for (const Node* n : a.nodes) {
    for (const Value* in : n->inputs()) {
      if (in) reads.push_back(in);
    }
  }
  reads.insert(reads.end(), a.outputs.begin(), a.outputs.end());
  std::vector<StateUpdate> updates;
  for (const auto& b : ti.update_binding()) {
    const std::string& key = b.key();
    const std::string& val = b.value();
    const std::string what = "update_binding '" + key + "' <- '" + val + "'";
    Value* state = g_.FindValue(key);
    if (!a.bindable.count(key) || !state || state->kind() != ValueKind::kInitializer) {
      return InvalidArgument(what + ": '" + key +
                             "' is not an initializer of the inference graph or of this entry's "
                             "algorithm");
    }
    if (!bound_.insert(key).second) {
      return InvalidArgument(what + ": '" + key +
                             "' is bound twice (ONNX requires the keys of all update_bindings "
                             "to be unique)");
    }
    const bool algorithm_output = std::any_of(a.outputs.begin(), a.outputs.end(),
                                              [&](const Value* o) { return o->name() == val; });
    Value* next = g_.FindValue(val);
    if (!next || (!algorithm_output && !inference_outputs_.count(val))) {
      return InvalidArgument(what + ": '" + val +
                             "' is not an output of the algorithm or of the inference graph");
    }
    if (state->type() != next->type()) {
      return InvalidArgument(what + ": type mismatch, the initializer is " +
                             state->type().ToString() + " but the value is " +
                             next->type().ToString());
    }
    reads.push_back(next);
    updates.push_back({state, next});
  }
  RETURN_IF_ERROR(CheckReads(a, reads));
  for (const StateUpdate& u : updates) {
    g_.AddStateUpdate(u.state, u.next);
    stale_.emplace(u.state, a.index);
  }
  // What the inference graph computes from an updated initializer is stale for later entries.
  for (const Node* n : inference_nodes_) {
    int by = -1;
    for (const Value* in : n->inputs()) {
      auto it = in ? stale_.find(in) : stale_.end();
      if (it != stale_.end()) by = it->second;
    }
    if (by < 0) continue;
    for (const Value* out : n->outputs()) {
      if (out) stale_.emplace(out, by);
    }
  }
  for (const Value* v : a.defined) owner_.emplace(v, a.index);
  return Status::Ok();
}

}  // namespace ampc
