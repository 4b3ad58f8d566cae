#include "passes/half_storage.h"

#include "ir/op_registry.h"

namespace ampc {

StatusOr<bool> HalfStoragePass::Run(Graph& g) {
  bool changed = false;
  // Initializers: replaced by half copies under the same name.
  for (Value* v : g.initializers()) {
    const Tensor* t = v->initializer();
    if (t->dtype() != DType::kFloat32) continue;
    if (t->elided()) return InvalidArgument("initializer '" + v->name() + "' has elided data");
    v->set_initializer(t->ConvertFloat(half_));
    v->set_type(v->initializer()->type());
    changed = true;
  }
  // Node attributes that carry an f32 type or f32 data.
  const int64_t half_number = DTypeToOnnxNumber(half_);
  for (Node* n : g.nodes()) {
    if (n->op_type() == "Cast" && n->attr_int("to", 0) == DTypeToOnnxNumber(DType::kFloat32)) {
      n->attrs()["to"] = Attribute(half_number);
      changed = true;
    }
    const bool constant = n->domain().empty() && n->op_type() == "Constant";
    const bool fill = n->domain().empty() && n->op_type() == "ConstantOfShape";
    for (auto& [key, a] : n->attrs()) {
      if (a.kind() == AttrKind::kTensor && a.t().dtype() == DType::kFloat32 && (constant || fill)) {
        a = Attribute(a.t().ConvertFloat(half_));
        changed = true;
      }
    }
    // f32 values given another way: Constant's value_float / value_floats, and ConstantOfShape
    // without `value` (ONNX: f32 zeros). Both become a half `value` tensor.
    if (constant && (n->attr("value_float") || n->attr("value_floats"))) {
      const bool scalar = n->attr("value_float") != nullptr;
      std::vector<float> v = scalar ? std::vector<float>{n->attr_float("value_float", 0)}
                                    : n->attr("value_floats")->floats();
      const std::vector<int64_t> dims =
          scalar ? std::vector<int64_t>{} : std::vector<int64_t>{static_cast<int64_t>(v.size())};
      n->attrs().erase(scalar ? "value_float" : "value_floats");
      n->attrs()["value"] = Attribute(Tensor::FromFloats(v, dims).ConvertFloat(half_));
      changed = true;
    }
    if (fill && !n->attr("value")) {
      n->attrs()["value"] = Attribute(Tensor::FromFloats({0.0f}, {1}).ConvertFloat(half_));
      changed = true;
    }
  }
  // f32 graph inputs: consumers read a half copy.
  for (Value* in : g.inputs()) {
    if (in->dtype() != DType::kFloat32 || in->uses().empty()) continue;
    std::vector<Use> uses = in->uses();
    ASSIGN_OR_RETURN(Node * cast, g.AddNode("Cast", "", g.UniqueName(in->name() + "_to_half"), {in},
                                            {g.UniqueName(in->name() + "_half")},
                                            {{"to", Attribute(half_number)}}));
    for (const Use& u : uses) u.user->SetInput(u.operand, cast->output(0));
    changed = true;
  }
  RETURN_IF_ERROR(g.TopologicalSort());
  RETURN_IF_ERROR(InferGraph(g));
  // Half graph outputs are cast back to f32 so callers see the model's declared types.
  std::vector<Value*> outputs = g.outputs();
  for (Value*& out : outputs) {
    if (out->dtype() != half_) continue;
    ASSIGN_OR_RETURN(Node * cast,
                     g.AddNode("Cast", "", g.UniqueName(out->name() + "_to_f32"), {out},
                               {g.UniqueName(out->name() + "_f32")},
                               {{"to", Attribute(int64_t{DTypeToOnnxNumber(DType::kFloat32)})}}));
    RETURN_IF_ERROR(InferNode(*cast));
    out = cast->output(0);
    changed = true;
  }
  g.SetOutputs(outputs);
  return changed;
}

}  // namespace ampc
