#include "ir/node_emitter.h"

#include "ir/op_registry.h"

namespace ampc {

const std::string& RoleOf(const Node& n) {
  static const std::string kNone;
  auto it = n.annotations().find("role");
  return it == n.annotations().end() ? kNone : it->second;
}

StatusOr<std::vector<Value*>> NodeEmitter::Multi(const std::string& op, const std::string& domain,
                                                 const std::string& stem,
                                                 std::vector<Value*> inputs, int num_outputs,
                                                 AttributeMap attrs) {
  const std::string name = g_.UniqueName(stem);
  std::vector<std::string> outs;
  for (int i = 0; i < num_outputs; ++i) {
    outs.push_back(g_.UniqueName(num_outputs == 1 ? name : name + "_" + std::to_string(i)));
  }
  ASSIGN_OR_RETURN(Node * n, g_.AddNode(op, domain, name, inputs, outs, std::move(attrs)));
  if (!role_.empty()) n->annotations()["role"] = role_;
  RETURN_IF_ERROR(InferNode(*n));
  return n->outputs();
}

StatusOr<Value*> NodeEmitter::One(const std::string& op, const std::string& stem,
                                  std::vector<Value*> inputs, AttributeMap attrs,
                                  const std::string& domain) {
  ASSIGN_OR_RETURN(auto outs, Multi(op, domain, stem, std::move(inputs), 1, std::move(attrs)));
  return outs[0];
}

StatusOr<Value*> NodeEmitter::Init(const std::string& stem, Tensor t) {
  return g_.AddInitializer(g_.UniqueName(stem), std::move(t));
}

}  // namespace ampc
