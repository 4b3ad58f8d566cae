#include "ir/op_registry.h"

namespace ampc {

OpRegistry& OpRegistry::Global() {
  static OpRegistry* registry = [] {
    auto* r = new OpRegistry();
    RegisterElementwiseOps(*r);
    RegisterShapeOps(*r);
    RegisterValueOps(*r);
    RegisterNNOps(*r);
    RegisterReductionOps(*r);
    RegisterTrainingOps(*r);
    RegisterGradOps(*r);
    RegisterNormAttentionOps(*r);
    RegisterOptimizerOps(*r);
    RegisterAutocastClasses(*r);  // last: it fills the slots of the ops registered above
    return r;
  }();
  return *registry;
}

void OpRegistry::Register(OpSchema schema) {
  auto key = std::make_pair(schema.domain, schema.op_type);
  AMPC_CHECK(!ops_.count(key));
  ops_.emplace(std::move(key), std::move(schema));
}

const OpSchema* OpRegistry::Find(const std::string& domain, const std::string& op_type) const {
  auto it = ops_.find({domain, op_type});
  return it == ops_.end() ? nullptr : &it->second;
}

OpSchema* OpRegistry::FindMutable(const std::string& domain, const std::string& op_type) {
  auto it = ops_.find({domain, op_type});
  return it == ops_.end() ? nullptr : &it->second;
}

std::vector<const OpSchema*> OpRegistry::All() const {
  std::vector<const OpSchema*> out;
  for (const auto& [k, s] : ops_) out.push_back(&s);
  return out;
}

void RegisterOp(OpRegistry& r, const char* op, int min_in, int max_in, InferFn infer, int min_out,
                int max_out, const char* domain) {
  OpSchema s;
  s.domain = domain;
  s.op_type = op;
  s.min_inputs = min_in;
  s.max_inputs = max_in;
  s.min_outputs = min_out;
  s.max_outputs = max_out;
  s.infer = infer;
  r.Register(std::move(s));
}

Status InferNode(Node& node) {
  const OpSchema* s = OpRegistry::Global().Find(node.domain(), node.op_type());
  if (!s) return Unimplemented(node.Describe() + ": unsupported op");
  const int nin = node.num_inputs(), nout = node.num_outputs();
  if (nin < s->min_inputs || nin > s->max_inputs) {
    std::string want = s->min_inputs == s->max_inputs
                           ? std::to_string(s->min_inputs)
                           : std::to_string(s->min_inputs) + " to " + std::to_string(s->max_inputs);
    return InvalidArgument(node.Describe() + ": has " + std::to_string(nin) + " inputs, expects " +
                           want);
  }
  if (nout < s->min_outputs || nout > s->max_outputs) {
    std::string want = s->min_outputs == s->max_outputs ? std::to_string(s->min_outputs)
                                                        : std::to_string(s->min_outputs) + " to " +
                                                              std::to_string(s->max_outputs);
    return InvalidArgument(node.Describe() + ": has " + std::to_string(nout) +
                           " outputs, expects " + want);
  }
  for (int i = 0; i < s->min_inputs; ++i) {
    if (!node.input(i)) {
      return InvalidArgument(node.Describe() + ": required input " + std::to_string(i) +
                             " is missing");
    }
  }
  if (!node.output(0) && nout > 0 && !s->optional_first_output) {
    return InvalidArgument(node.Describe() + ": output 0 has no name");
  }
  return s->infer(node).WithContext(node.Describe());
}

Status InferGraph(Graph& graph) {
  for (Node* n : graph.nodes()) RETURN_IF_ERROR(InferNode(*n));
  return Status::Ok();
}

}  // namespace ampc
