#include "passes/master_weights.h"

#include "ir/op_registry.h"

namespace ampc {

StatusOr<bool> MasterWeightsPass::Run(Graph& g) {
  promoted_.clear();
  std::vector<Value*> half;
  for (Value* v : g.initializers()) {
    if (IsHalf(v->dtype()) && (!v->uses().empty() || g.IsRoot(v))) half.push_back(v);
  }
  for (Value* v : half) {
    const DType stored = v->dtype();
    const Tensor& t = *v->initializer();
    auto values = t.AsDoubles();
    if (!values) return Internal("initializer '" + v->name() + "' cannot be read as numbers");
    std::vector<float> f(values->begin(), values->end());  // exact: half values are floats
    const std::vector<Use> uses = v->uses();
    v->set_initializer(Tensor::FromFloats(f, t.dims()));
    TensorType type = v->type();
    type.dtype = DType::kFloat32;
    v->set_type(type);
    const std::string name = g.UniqueName(v->name() + "_" + std::string(DTypeName(stored)));
    ASSIGN_OR_RETURN(
        Node * cast,
        g.AddNode("Cast", "", name, {v}, {name},
                  {{"to", Attribute(static_cast<int64_t>(DTypeToOnnxNumber(stored)))}}));
    RETURN_IF_ERROR(InferNode(*cast));
    for (const Use& u : uses) u.user->SetInput(u.operand, cast->output(0));
    // A graph output that was the half initializer stays the half value.
    std::vector<Value*> outputs = g.outputs();
    bool output = false;
    for (Value*& o : outputs) {
      if (o == v) {
        o = cast->output(0);
        output = true;
      }
    }
    if (output) g.SetOutputs(outputs);
    promoted_.push_back(v->name());
  }
  if (!half.empty()) RETURN_IF_ERROR(g.TopologicalSort());
  return !half.empty();
}

}  // namespace ampc
