// The op registry: what ampc knows about each operator. Per op: arity, type and shape
// inference, and the slots later stages fill (autocast class for the precision pass, gradient
// rule for autodiff). Ops are registered once, at first use of OpRegistry::Global().
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"

namespace ampc {

// Domain of ampc's own ops (backward kernels, PyTorch-exact optimizers, training-mode variants).
inline constexpr const char* kAmpcDomain = "com.ampc";

// How the autocast pass treats an op by default (TensorFlow's four lists; the defaults follow
// PyTorch's CUDA autocast policy, ir/ops/autocast_classes.cc). kUnset: in no list (fp32).
enum class AutocastClass : uint8_t { kUnset, kAllow, kDeny, kInfer, kClear };

// Infers the types of `node`'s outputs from its inputs and attributes, and validates them.
// Errors describe the problem only; the caller adds the node's name and op.
using InferFn = Status (*)(Node& node);

struct GradientContext;  // defined by the autodiff stage
using GradientFn = Status (*)(GradientContext& ctx);

struct OpSchema {
  std::string domain;  // "" = ai.onnx
  std::string op_type;
  int min_inputs = 0, max_inputs = 0;
  int min_outputs = 1, max_outputs = 1;
  InferFn infer = nullptr;
  AutocastClass autocast = AutocastClass::kUnset;
  GradientFn gradient = nullptr;
  // Output 0 may be omitted like the others (com.ampc::ConvGrad's dX, which the first layer's
  // input does not need); by default output 0 is required.
  bool optional_first_output = false;
};

class OpRegistry {
 public:
  static OpRegistry& Global();
  void Register(OpSchema schema);
  const OpSchema* Find(const std::string& domain, const std::string& op_type) const;
  OpSchema* FindMutable(const std::string& domain, const std::string& op_type);
  std::vector<const OpSchema*> All() const;

 private:
  std::map<std::pair<std::string, std::string>, OpSchema> ops_;
};

// Registers an op (default domain ai.onnx) with its arity ranges and inference function.
void RegisterOp(OpRegistry& r, const char* op, int min_in, int max_in, InferFn infer,
                int min_out = 1, int max_out = 1, const char* domain = "");

// Checks arity against the schema and runs its inference. Errors name the node and op.
Status InferNode(Node& node);
// Runs InferNode over the whole graph in topological order.
Status InferGraph(Graph& graph);

// Registration entry points, one per op family (ir/ops/*.cc).
void RegisterElementwiseOps(OpRegistry& r);
void RegisterShapeOps(OpRegistry& r);
void RegisterValueOps(OpRegistry& r);  // Shape, Size, Constant, ConstantOfShape, Range
void RegisterNNOps(OpRegistry& r);
void RegisterReductionOps(OpRegistry& r);
void RegisterTrainingOps(OpRegistry& r);
void RegisterGradOps(OpRegistry& r);  // com.ampc backward ops (ir/ops/grad_ops.cc)
// GroupNormalization, RMSNormalization, RotaryEmbedding, Attention (ir/ops/norm_attention_ops.cc)
void RegisterNormAttentionOps(OpRegistry& r);
void RegisterOptimizerOps(
    OpRegistry& r);  // com.ampc optimizers, training state (ir/ops/optimizer_ops.cc)
void RegisterAutocastClasses(
    OpRegistry& r);  // default autocast classes (ir/ops/autocast_classes.cc)

}  // namespace ampc
