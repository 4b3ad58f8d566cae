#include "ir/verifier.h"

#include <algorithm>
#include <unordered_set>

#include "ir/op_registry.h"

namespace ampc {
namespace {

bool Compatible(const TensorType& recorded, const TensorType& inferred) {
  if (recorded.dtype != inferred.dtype) return false;
  if (!recorded.has_rank || !inferred.has_rank) return true;
  if (recorded.rank() != inferred.rank()) return false;
  for (size_t i = 0; i < recorded.dims.size(); ++i) {
    const Dim& a = recorded.dims[i];
    const Dim& b = inferred.dims[i];
    if (a.is_static() && b.is_static() && a.value() != b.value()) return false;
  }
  return true;
}

Status CheckDefinitions(const Graph& g) {
  std::unordered_set<const Node*> placed;
  placed.reserve(g.nodes().size());
  int64_t operands = 0;
  for (Node* n : g.nodes()) {
    for (int i = 0; i < n->num_inputs(); ++i) {
      Value* v = n->input(i);
      if (!v) continue;
      // A node output whose producer was removed is no longer defined.
      if (v->kind() == ValueKind::kNodeOutput && !v->producer()) {
        return InvalidArgument(n->Describe() + ": use of undefined value '" + v->name() + "'");
      }
      if (v->kind() == ValueKind::kNodeOutput && !placed.count(v->producer())) {
        return InvalidArgument(n->Describe() + ": uses '" + v->name() +
                               "' before its definition (the node list has a cycle or is not "
                               "in topological order)");
      }
      ++operands;
    }
    placed.insert(n);
  }
  // Use lists match operands: every recorded use points back at its value, and there are as
  // many uses as operands (linear, even for a value with very many users).
  int64_t uses = 0;
  auto check_uses = [&](const Value* v) -> Status {
    for (const Use& u : v->uses()) {
      if (u.user->input(u.operand) != v) {
        return Internal("use list of '" + v->name() + "' names " + u.user->Describe() +
                        " operand " + std::to_string(u.operand) + ", which is another value");
      }
      ++uses;
    }
    return Status::Ok();
  };
  for (const Value* v : g.inputs()) RETURN_IF_ERROR(check_uses(v));
  for (const Value* v : g.initializers()) RETURN_IF_ERROR(check_uses(v));
  for (const Node* n : g.nodes()) {
    for (const Value* v : n->outputs()) {
      if (v) RETURN_IF_ERROR(check_uses(v));
    }
  }
  if (uses != operands) {
    return Internal("use lists hold " + std::to_string(uses) + " uses for " +
                    std::to_string(operands) + " operands");
  }
  for (Value* o : g.outputs()) {
    if (!o || g.FindValue(o->name()) != o) {
      return InvalidArgument("graph output '" + (o ? o->name() : std::string()) +
                             "' is not defined");
    }
  }
  std::unordered_set<const Value*> updated;
  for (const StateUpdate& u : g.state_updates()) {
    if (!u.state || !u.next || g.FindValue(u.next->name()) != u.next) {
      return InvalidArgument("a state update names an undefined value");
    }
    if (u.state->kind() != ValueKind::kInitializer) {
      return InvalidArgument("state update target '" + u.state->name() + "' is not an initializer");
    }
    if (u.state->type() != u.next->type()) {
      return InvalidArgument("state '" + u.state->name() + "' is " + u.state->type().ToString() +
                             " but its update '" + u.next->name() + "' is " +
                             u.next->type().ToString());
    }
    if (!updated.insert(u.state).second) {
      return InvalidArgument("state '" + u.state->name() + "' is updated twice");
    }
  }
  return Status::Ok();
}

Status CheckInitializers(const Graph& g) {
  for (Value* v : g.initializers()) {
    const Tensor* t = v->initializer();
    if (!t) return Internal("initializer '" + v->name() + "' has no data");
    if (!t->elided() &&
        static_cast<int64_t>(t->bytes().size()) != t->NumElements() * DTypeSize(t->dtype())) {
      return InvalidArgument("initializer '" + v->name() + "' has " +
                             std::to_string(t->bytes().size()) + " bytes of data for type " +
                             t->type().ToString());
    }
    if (t->type() != v->type()) {
      return InvalidArgument("initializer '" + v->name() + "' is typed " + v->type().ToString() +
                             " but its data is " + t->type().ToString());
    }
  }
  return Status::Ok();
}

// Re-runs inference node by node and compares with the recorded types, then restores them.
Status CheckTypes(Graph& g) {
  for (Node* n : g.nodes()) {
    std::vector<TensorType> recorded;
    std::vector<std::optional<std::vector<Dim>>> known;
    for (Value* o : n->outputs()) {
      recorded.push_back(o ? o->type() : TensorType());
      known.push_back(o ? o->known_ints() : std::nullopt);
    }
    Status st = InferNode(*n);
    Status mismatch;
    for (int i = 0; i < n->num_outputs() && st.ok() && mismatch.ok(); ++i) {
      Value* o = n->output(i);
      if (o && !Compatible(recorded[i], o->type())) {
        mismatch = InvalidArgument(n->Describe() + ": output '" + o->name() + "' is recorded as " +
                                   recorded[i].ToString() + " but inference gives " +
                                   o->type().ToString());
      }
    }
    for (int i = 0; i < n->num_outputs(); ++i) {
      if (Value* o = n->output(i)) {
        o->set_type(recorded[i]);
        o->set_known_ints(known[i]);
      }
    }
    RETURN_IF_ERROR(st);
    RETURN_IF_ERROR(mismatch);
  }
  return Status::Ok();
}

}  // namespace

Status Verify(Graph& g) {
  RETURN_IF_ERROR(CheckDefinitions(g));
  RETURN_IF_ERROR(CheckInitializers(g));
  return CheckTypes(g);
}

}  // namespace ampc
