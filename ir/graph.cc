#include "ir/graph.h"

#include <algorithm>

#include "ir/topo_sort.h"

namespace ampc {

const char* AttrKindName(AttrKind k) {
  switch (k) {
    case AttrKind::kInt:
      return "int";
    case AttrKind::kFloat:
      return "float";
    case AttrKind::kString:
      return "string";
    case AttrKind::kTensor:
      return "tensor";
    case AttrKind::kInts:
      return "ints";
    case AttrKind::kFloats:
      return "floats";
    case AttrKind::kStrings:
      return "strings";
  }
  return "?";
}

void Value::set_initializer(Tensor t) {
  initializer_ = std::make_shared<const Tensor>(std::move(t));
}

void Node::SetInput(int i, Value* v) {
  AMPC_CHECK(i >= 0 && i < num_inputs());
  if (Value* old = inputs_[i]) {
    auto& u = old->uses_;
    u.erase(std::find(u.begin(), u.end(), Use{this, i}));
  }
  inputs_[i] = v;
  if (v) v->uses_.push_back({this, i});
}

void Node::AddInput(Value* v) {
  inputs_.push_back(v);
  if (v) v->uses_.push_back({this, num_inputs() - 1});
}

const Attribute* Node::attr(const std::string& key) const {
  auto it = attrs_.find(key);
  return it == attrs_.end() ? nullptr : &it->second;
}
int64_t Node::attr_int(const std::string& key, int64_t dflt) const {
  const Attribute* a = attr(key);
  return a && a->kind() == AttrKind::kInt ? a->i() : dflt;
}
float Node::attr_float(const std::string& key, float dflt) const {
  const Attribute* a = attr(key);
  return a && a->kind() == AttrKind::kFloat ? a->f() : dflt;
}
std::string Node::attr_string(const std::string& key, const std::string& dflt) const {
  const Attribute* a = attr(key);
  return a && a->kind() == AttrKind::kString ? a->s() : dflt;
}
std::vector<int64_t> Node::attr_ints(const std::string& key) const {
  const Attribute* a = attr(key);
  return a && a->kind() == AttrKind::kInts ? a->ints() : std::vector<int64_t>{};
}

std::string Node::Describe() const {
  std::string op = domain_.empty() ? op_type_ : domain_ + "::" + op_type_;
  return "node '" + name_ + "' (" + op + ")";
}

Value* Graph::NewValue(const std::string& name, ValueKind kind) {
  auto v = std::make_unique<Value>();
  v->name_ = name;
  v->kind_ = kind;
  Value* raw = v.get();
  values_.push_back(std::move(v));
  by_name_[name] = raw;
  return raw;
}

StatusOr<Value*> Graph::AddInput(const std::string& name, TensorType type) {
  if (name.empty()) return InvalidArgument("graph input with an empty name");
  if (by_name_.count(name)) return InvalidArgument("value '" + name + "' is defined twice");
  Value* v = NewValue(name, ValueKind::kInput);
  v->type_ = std::move(type);
  inputs_.push_back(v);
  return v;
}

StatusOr<Value*> Graph::AddInitializer(const std::string& name, Tensor data) {
  if (name.empty()) return InvalidArgument("initializer with an empty name");
  if (by_name_.count(name)) return InvalidArgument("value '" + name + "' is defined twice");
  Value* v = NewValue(name, ValueKind::kInitializer);
  v->type_ = data.type();
  v->set_initializer(std::move(data));
  initializers_.push_back(v);
  return v;
}

StatusOr<Node*> Graph::AddNode(const std::string& op_type, const std::string& domain,
                               const std::string& node_name, const std::vector<Value*>& inputs,
                               const std::vector<std::string>& output_names, AttributeMap attrs) {
  for (const std::string& o : output_names) {
    if (!o.empty() && by_name_.count(o)) {
      return InvalidArgument("value '" + o + "' is defined twice (again as an output of node '" +
                             node_name + "' (" + op_type + "))");
    }
  }
  auto n = std::make_unique<Node>();
  Node* node = n.get();
  node->op_type_ = op_type;
  node->domain_ = domain;
  node->name_ = node_name;
  node->attrs_ = std::move(attrs);
  node->inputs_ = inputs;
  for (int i = 0; i < static_cast<int>(inputs.size()); ++i) {
    if (inputs[i]) inputs[i]->uses_.push_back({node, i});
  }
  for (int i = 0; i < static_cast<int>(output_names.size()); ++i) {
    Value* v = nullptr;
    if (!output_names[i].empty()) {
      v = NewValue(output_names[i], ValueKind::kNodeOutput);
      v->producer_ = node;
      v->producer_output_ = i;
    }
    node->outputs_.push_back(v);
  }
  node_storage_.push_back(std::move(n));
  order_.push_back(node);  // dead nodes are dropped from order_ lazily, live ones never
  return node;
}

StatusOr<Value*> Graph::AddNodeOutput(Node* n, const std::string& name) {
  if (name.empty() || by_name_.count(name)) {
    return InvalidArgument("value '" + name + "' cannot be added as an output of " + n->Describe() +
                           ": the name is empty or taken");
  }
  Value* v = NewValue(name, ValueKind::kNodeOutput);
  v->producer_ = n;
  v->producer_output_ = n->num_outputs();
  n->outputs_.push_back(v);
  return v;
}

void Graph::Reserve(size_t values, size_t nodes) {
  by_name_.reserve(values);
  values_.reserve(values);
  node_storage_.reserve(nodes);
  order_.reserve(nodes);
}

std::string Graph::UniqueName(const std::string& stem) const {
  if (!by_name_.count(stem)) return stem;
  for (int64_t i = 1;; ++i) {
    std::string s = stem + "_" + std::to_string(i);
    if (!by_name_.count(s)) return s;
  }
}

const std::vector<Node*>& Graph::nodes() const {
  if (order_dirty_) {
    std::erase_if(order_, [](Node* n) { return n->dead_; });
    order_dirty_ = false;
  }
  return order_;
}

Value* Graph::FindValue(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Status Graph::RenameValue(Value* v, const std::string& name) {
  if (name.empty()) return InvalidArgument("value '" + v->name_ + "' cannot be renamed to ''");
  if (by_name_.count(name)) return InvalidArgument("value '" + name + "' is defined twice");
  by_name_.erase(v->name_);
  v->name_ = name;
  by_name_[name] = v;
  return Status::Ok();
}

Status Graph::RemoveInitializer(Value* v) {
  if (v->kind_ != ValueKind::kInitializer || !v->uses_.empty() || IsRoot(v)) {
    return InvalidArgument("value '" + v->name_ + "' is not an unused initializer");
  }
  for (const StateUpdate& u : updates_) {
    if (u.state == v) return InvalidArgument("initializer '" + v->name_ + "' is a state");
  }
  std::erase(initializers_, v);
  by_name_.erase(v->name_);
  return Status::Ok();
}

void Graph::ReplaceAllUsesWith(Value* from, Value* to) {
  std::vector<Use> uses = from->uses_;
  for (const Use& u : uses) u.user->SetInput(u.operand, to);
  for (Value*& o : outputs_) {
    if (o == from) o = to;
  }
  for (StateUpdate& u : updates_) {
    if (u.next == from) u.next = to;
  }
}

Status Graph::ReplaceValue(Value* from, Value* to) {
  const std::string name = from->name();
  RETURN_IF_ERROR(RenameValue(from, UniqueName(name + "_replaced")));
  ReplaceAllUsesWith(from, to);
  return RenameValue(to, name);
}

bool Graph::IsRoot(const Value* v) const {
  for (const Value* o : outputs_) {
    if (o == v) return true;
  }
  for (const StateUpdate& u : updates_) {
    if (u.next == v) return true;
  }
  return false;
}

void Graph::RemoveNode(Node* n) {
  for (int i = 0; i < n->num_inputs(); ++i) n->SetInput(i, nullptr);
  for (Value* o : n->outputs_) {
    if (!o) continue;
    AMPC_CHECK(o->uses_.empty());
    by_name_.erase(o->name_);
    o->producer_ = nullptr;
  }
  n->dead_ = true;
  nodes();  // flush previous removals so order_ only holds live nodes plus this one
  order_dirty_ = true;
}

Status Graph::TopologicalSort() {
  const std::vector<Node*>& cur = nodes();
  std::unordered_map<const Node*, int> index;
  index.reserve(cur.size());
  for (size_t i = 0; i < cur.size(); ++i) index[cur[i]] = static_cast<int>(i);
  std::vector<std::vector<int>> preds(cur.size());
  for (size_t i = 0; i < cur.size(); ++i) {
    for (Value* v : cur[i]->inputs_) {
      if (v && v->producer_) preds[i].push_back(index.at(v->producer_));
    }
  }
  ASSIGN_OR_RETURN(std::vector<int> order,
                   TopologicalOrder(preds, [&](int k) { return cur[k]->Describe(); }));
  std::vector<Node*> sorted;
  sorted.reserve(order.size());
  for (int k : order) sorted.push_back(cur[k]);
  order_ = std::move(sorted);
  return Status::Ok();
}

}  // namespace ampc
