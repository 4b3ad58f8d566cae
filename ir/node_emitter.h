// Appending role-annotated nodes: the training builder (loss, optimizer, clip, state) and the
// loss-scaling pass (loss-scale) append nodes with fresh names, infer each as it is added and tag
// it with a `role` annotation that inspection shows and later passes read.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace ampc {

// The node's `role` annotation, or "" when it has none.
const std::string& RoleOf(const Node& n);

class NodeEmitter {
 public:
  NodeEmitter(Graph& g, std::string role) : g_(g), role_(std::move(role)) {}

  // Appends `op` named g.UniqueName(stem) with role=<role> (none when the role is ""), and infers
  // it. Its one output takes
  // the node's name; several outputs take fresh names NAME_0, NAME_1, ...
  StatusOr<std::vector<Value*>> Multi(const std::string& op, const std::string& domain,
                                      const std::string& stem, std::vector<Value*> inputs,
                                      int num_outputs, AttributeMap attrs = {});
  // Multi with one output.
  StatusOr<Value*> One(const std::string& op, const std::string& stem, std::vector<Value*> inputs,
                       AttributeMap attrs = {}, const std::string& domain = "");
  // An initializer named g.UniqueName(stem).
  StatusOr<Value*> Init(const std::string& stem, Tensor t);

 private:
  Graph& g_;
  std::string role_;
};

}  // namespace ampc
