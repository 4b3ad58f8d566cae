// The graph IR: a Graph owns Values and Nodes. Every Value has exactly one definition (a graph
// input, an initializer or a node output) and a use list. Nodes are kept in topological order.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/attribute.h"
#include "ir/shape.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace ampc {

class Node;
class Graph;

struct Use {
  Node* user;
  int operand;
  bool operator==(const Use& o) const { return user == o.user && operand == o.operand; }
};

enum class ValueKind : uint8_t { kInput, kInitializer, kNodeOutput };

class Value {
 public:
  const std::string& name() const { return name_; }
  ValueKind kind() const { return kind_; }
  const TensorType& type() const { return type_; }
  void set_type(TensorType t) { type_ = std::move(t); }
  DType dtype() const { return type_.dtype; }

  Node* producer() const { return producer_; }
  int producer_output() const { return producer_output_; }
  const std::vector<Use>& uses() const { return uses_; }

  // Initializer data (kind() == kInitializer).
  const Tensor* initializer() const { return initializer_.get(); }
  void set_initializer(Tensor t);

  // Element values of a small integer tensor known at compile time (shape arithmetic such as
  // Shape -> Gather -> Concat feeding Reshape). Filled by shape inference; not printed.
  const std::optional<std::vector<Dim>>& known_ints() const { return known_ints_; }
  void set_known_ints(std::optional<std::vector<Dim>> v) { known_ints_ = std::move(v); }

 private:
  friend class Graph;
  friend class Node;
  std::string name_;
  ValueKind kind_ = ValueKind::kNodeOutput;
  TensorType type_;
  Node* producer_ = nullptr;
  int producer_output_ = -1;
  std::vector<Use> uses_;
  std::shared_ptr<const Tensor> initializer_;
  std::optional<std::vector<Dim>> known_ints_;
};

class Node {
 public:
  const std::string& op_type() const { return op_type_; }
  const std::string& domain() const { return domain_; }  // "" is the default ONNX domain
  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }

  // Operands; nullptr marks an omitted optional input/output.
  const std::vector<Value*>& inputs() const { return inputs_; }
  const std::vector<Value*>& outputs() const { return outputs_; }
  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  int num_outputs() const { return static_cast<int>(outputs_.size()); }
  Value* input(int i) const { return i < num_inputs() ? inputs_[i] : nullptr; }
  Value* output(int i) const { return i < num_outputs() ? outputs_[i] : nullptr; }
  void SetInput(int i, Value* v);  // keeps use lists right
  void AddInput(Value* v);         // appends an operand (an optional trailing input)

  AttributeMap& attrs() { return attrs_; }
  const AttributeMap& attrs() const { return attrs_; }
  const Attribute* attr(const std::string& key) const;
  int64_t attr_int(const std::string& key, int64_t dflt) const;
  float attr_float(const std::string& key, float dflt) const;
  std::string attr_string(const std::string& key, const std::string& dflt) const;
  std::vector<int64_t> attr_ints(const std::string& key) const;  // empty if absent

  // Free-form annotations printed as `#key="value"` (precision, reason, grad_of, ...).
  std::map<std::string, std::string>& annotations() { return annotations_; }
  const std::map<std::string, std::string>& annotations() const { return annotations_; }

  // "node 'name' (Op)" for error messages.
  std::string Describe() const;

 private:
  friend class Graph;
  std::string op_type_, domain_, name_;
  std::vector<Value*> inputs_, outputs_;
  AttributeMap attrs_;
  std::map<std::string, std::string> annotations_;
  bool dead_ = false;
};

// Training state: after each execution of the graph, initializer `state` takes the value of
// `next` (ONNX TrainingInfoProto's update_binding). Parameters, optimizer moments, BatchNorm
// running statistics and step counters are states.
struct StateUpdate {
  Value* state;
  Value* next;
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }
  // Operator-set versions by domain ("" = ai.onnx). ampc's canonical form is ai.onnx 17.
  std::map<std::string, int64_t>& opsets() { return opsets_; }
  const std::map<std::string, int64_t>& opsets() const { return opsets_; }

  // Definitions. Names must be unique; violations return InvalidArgument.
  StatusOr<Value*> AddInput(const std::string& name, TensorType type);
  StatusOr<Value*> AddInitializer(const std::string& name, Tensor data);
  // Appends a node. Output names that are empty become omitted outputs (nullptr).
  StatusOr<Node*> AddNode(const std::string& op_type, const std::string& domain,
                          const std::string& node_name, const std::vector<Value*>& inputs,
                          const std::vector<std::string>& output_names, AttributeMap attrs = {});
  // Appends an output named `name` (unused so far) to `n`: an optional trailing output.
  StatusOr<Value*> AddNodeOutput(Node* n, const std::string& name);
  // Fresh unique value name with the given stem ("stem", "stem_1", ...).
  std::string UniqueName(const std::string& stem) const;
  void AddOutput(Value* v) { outputs_.push_back(v); }
  void SetOutputs(std::vector<Value*> v) { outputs_ = std::move(v); }
  // `state` must be an initializer and `next` a value of the same type (the verifier checks).
  void AddStateUpdate(Value* state, Value* next) { updates_.push_back({state, next}); }
  const std::vector<StateUpdate>& state_updates() const { return updates_; }
  // Whether v is a graph output or the source of a state update (both keep their producers live).
  bool IsRoot(const Value* v) const;
  // Capacity hints for building large graphs (avoids rehashing the name table).
  void Reserve(size_t values, size_t nodes);

  const std::vector<Value*>& inputs() const { return inputs_; }
  const std::vector<Value*>& initializers() const { return initializers_; }
  const std::vector<Value*>& outputs() const { return outputs_; }
  // Live nodes in order. Rebuilt lazily after removals.
  const std::vector<Node*>& nodes() const;
  int64_t num_nodes() const { return static_cast<int64_t>(nodes().size()); }

  Value* FindValue(const std::string& name) const;
  // Gives `v` a new name (unused so far); for rewrites that must keep an output's name, such as a
  // Cast inserted in front of a graph output.
  Status RenameValue(Value* v, const std::string& name);
  // Removes an initializer nothing reads (not a graph output or state either).
  Status RemoveInitializer(Value* v);
  // Points every reader, graph output and state update of `from` at `to`.
  void ReplaceAllUsesWith(Value* from, Value* to);
  // ReplaceAllUsesWith, and `to` takes `from`'s name (`from` gets a fresh one): for rewrites that
  // put new nodes in a node's place and keep its output's name.
  Status ReplaceValue(Value* from, Value* to);
  // Removes a node whose outputs have no uses (and are not graph outputs).
  void RemoveNode(Node* n);
  // Reorders nodes topologically (stable). Fails naming a node on a cycle.
  Status TopologicalSort();

 private:
  Value* NewValue(const std::string& name, ValueKind kind);

  std::string name_;
  std::map<std::string, int64_t> opsets_;
  std::vector<std::unique_ptr<Value>> values_;
  std::vector<std::unique_ptr<Node>> node_storage_;
  mutable std::vector<Node*> order_;
  mutable bool order_dirty_ = false;
  std::vector<Value*> inputs_, initializers_, outputs_;
  std::vector<StateUpdate> updates_;
  std::unordered_map<std::string, Value*> by_name_;
};

}  // namespace ampc
