// Rewrites the ONNX importer makes so that every op version reaches the IR in ampc's canonical
// form: older versions' attributes that became inputs, legacy flags, opset < 13 Softmax; newer
// versions' changes (GroupNormalization 18's per-group scale, Split 18's either-or, Attention's
// unused outputs); and ops imported as other ops (SplitToSequence + SequenceAt as Split,
// InstanceNormalization as GroupNormalization). Internal to the frontend (onnx_import.cc).
#pragma once

#include <onnx/onnx_pb.h>

#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ir/graph.h"
#include "ir/ops/onnx_versions.h"
#include "ir/status.h"

namespace ampc {

// Sets v's known ints from its data when it is a small integer initializer (shape arithmetic).
void SetKnownIntsFromInitializer(Value* v);

class OpRewriter {
 public:
  using ApplyDeclaredFn = std::function<Status(Value*)>;
  // `opset`: the model's ai.onnx opset; `used_names`: every value name a node or graph output
  // reads; `sequences`: the importer's SplitToSequence outputs and their parts; apply_declared
  // merges the model's declared type into a value the rewriter defines.
  OpRewriter(Graph& g, int64_t opset, const std::unordered_set<std::string>& used_names,
             std::unordered_map<std::string, std::vector<Value*>>& sequences,
             ApplyDeclaredFn apply_declared)
      : g_(g),
        opset_(opset),
        used_names_(used_names),
        sequences_(sequences),
        apply_declared_(std::move(apply_declared)) {}

  // Ops never kept in the IR: the rewriter adds other ops in their place (AddInPlaceOf).
  static bool ImportsAsOtherOps(const std::string& op);
  // Adds the ops that replace `node` (an op for which ImportsAsOtherOps holds), whose attributes
  // are already converted and checked against `version`. `graph` holds the node (its readers are
  // looked up there).
  Status AddInPlaceOf(const onnx::NodeProto& node, const OnnxOpVersion& version, AttributeMap attrs,
                      const onnx::GraphProto& graph);

  // Versions older than opset 17's: attributes that became inputs, legacy flags.
  Status NormaliseOlder(const onnx::NodeProto& node, std::string& op, AttributeMap& attrs,
                        std::vector<Value*>& inputs, std::vector<std::string>& outputs);
  // Versions newer than ampc's canonical form (opsets 18-23), `version` the node's.
  Status NormaliseNewer(const onnx::NodeProto& node, int64_t version, AttributeMap& attrs,
                        std::vector<Value*>& inputs, std::vector<std::string>& outputs);
  // Softmax/LogSoftmax before opset 13 over a non-last axis: true when rewritten (and added).
  StatusOr<bool> RewriteOldSoftmax(const onnx::NodeProto& node, const std::string& op,
                                   const AttributeMap& attrs, const std::vector<Value*>& inputs,
                                   const std::vector<std::string>& outputs);

 private:
  Status AttrToInput(const std::string& node_name, AttributeMap& attrs, const std::string& key,
                     size_t pos, std::vector<Value*>& inputs);
  Status FloatAttrToInput(const std::string& node_name, AttributeMap& attrs, const std::string& key,
                          double dflt, size_t pos, std::vector<Value*>& inputs);
  Status GroupNormScalePerChannel(const onnx::NodeProto& node, std::vector<Value*>& inputs);
  StatusOr<Value*> AddHelper(const std::string& op, const std::string& name,
                             std::vector<Value*> inputs, AttributeMap attrs = {});
  Status AddInstanceNorm(const onnx::NodeProto& node, const OnnxOpVersion& version,
                         AttributeMap attrs);
  Status AddSequenceOp(const onnx::NodeProto& node, const AttributeMap& attrs,
                       const onnx::GraphProto& graph);
  Status ApplyDeclared(Value* v) { return apply_declared_(v); }

  Graph& g_;
  int64_t opset_;
  const std::unordered_set<std::string>& used_names_;
  std::unordered_map<std::string, std::vector<Value*>>& sequences_;
  ApplyDeclaredFn apply_declared_;
};

}  // namespace ampc
