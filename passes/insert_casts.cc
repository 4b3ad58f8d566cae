#include "passes/insert_casts.h"

#include <map>
#include <optional>

#include "ir/op_registry.h"

namespace ampc {
namespace {

// Inputs a precision change must not touch: type-agnostic inputs (Shape), an op's own target
// type (Cast), control scalars with their own type constraint (Dropout's ratio), and checks that
// read any float type (AllFinite).
bool CastsInput(const Node& n, int i) {
  const std::string& op = n.op_type();
  if (op == "Shape" || op == "Size" || op == "Cast" || op == "CastLike" || op == "AllFinite")
    return false;
  if (op == "Dropout" || op == "Resize") return i == 0;
  if (op == "BatchNormalization") return i < 3;
  return true;
}

}  // namespace

bool IsExactWidening(DType from, DType to) {
  if (from == to) return true;
  if (from == DType::kFloat16 || from == DType::kBFloat16) {
    return to == DType::kFloat32 || to == DType::kFloat64;
  }
  return from == DType::kFloat32 && to == DType::kFloat64;
}

StatusOr<bool> InsertCastsPass::Run(Graph& g) {
  folded_ = 0;
  const std::vector<Node*> nodes = g.nodes();
  auto precision_of = [](const Node& n) -> std::optional<DType> {
    auto it = n.annotations().find("precision");
    if (it == n.annotations().end() || it->second == "-") return std::nullopt;
    return DTypeFromName(it->second);
  };
  // Casts: one per (value, type), shared by every consumer.
  std::map<std::pair<const Value*, DType>, Value*> cast_of;
  auto cast = [&](Value* v, DType to) -> StatusOr<Value*> {
    auto key = std::make_pair(static_cast<const Value*>(v), to);
    if (auto it = cast_of.find(key); it != cast_of.end()) return it->second;
    // v = Cast(u) with u already of type `to` and the first cast exact: use u.
    if (Node* p = v->producer(); p && p->op_type() == "Cast" && p->domain().empty() &&
                                 p->input(0) && p->input(0)->dtype() == to &&
                                 IsExactWidening(to, v->dtype())) {
      ++folded_;
      return cast_of[key] = p->input(0);
    }
    const std::string name = g.UniqueName(v->name() + "_" + std::string(DTypeName(to)));
    ASSIGN_OR_RETURN(Node * c,
                     g.AddNode("Cast", "", name, {v}, {name},
                               {{"to", Attribute(static_cast<int64_t>(DTypeToOnnxNumber(to)))}}));
    c->annotations()["precision"] = std::string(DTypeName(to));
    c->annotations()["reason"] = "cast";
    if (const Node* p = v->producer()) {  // a cast of a backward value belongs to the backward
      auto gi = p->annotations().find("grad_of");
      if (gi != p->annotations().end()) c->annotations()["grad_of"] = gi->second;
    }
    RETURN_IF_ERROR(InferNode(*c));
    return cast_of[key] = c->output(0);
  };
  bool changed = false;
  for (Node* n : nodes) {
    const std::optional<DType> precision = precision_of(*n);
    if (!precision || !IsFloat(*precision)) continue;
    if (n->op_type() == "Cast" && n->domain().empty()) continue;
    bool touched = false;
    for (int i = 0; i < n->num_inputs(); ++i) {
      Value* v = n->input(i);
      if (!v || !IsFloat(v->dtype()) || v->dtype() == DType::kFloat64 || v->dtype() == *precision ||
          !CastsInput(*n, i)) {
        continue;
      }
      ASSIGN_OR_RETURN(Value * c, cast(v, *precision));
      n->SetInput(i, c);
      touched = true;
    }
    if (touched || changed) RETURN_IF_ERROR(InferNode(*n).WithContext("insert-casts"));
    changed = changed || touched;
  }
  RETURN_IF_ERROR(g.TopologicalSort());
  return changed;
}

}  // namespace ampc
