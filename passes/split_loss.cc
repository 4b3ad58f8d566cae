#include "passes/split_loss.h"

#include <optional>
#include <vector>

#include "ir/node_emitter.h"
#include "ir/op_registry.h"

namespace ampc {

StatusOr<bool> SplitLossPass::Run(Graph& g) {
  std::vector<Node*> losses;
  for (Node* n : g.nodes()) {
    if (n->domain().empty() && n->op_type() == "SoftmaxCrossEntropyLoss") losses.push_back(n);
  }
  bool changed = false;
  for (Node* n : losses) {
    const std::string reduction = n->attr_string("reduction", "mean");
    if (reduction == "none" || n->num_inputs() < 2 || (n->num_inputs() > 2 && n->input(2))) {
      continue;
    }
    Value* scores = n->input(0);
    Value* labels = n->input(1);
    Value* loss = n->output(0);
    if (!scores || !labels || !loss || scores->dtype() != DType::kFloat32 ||
        !labels->type().NumElements()) {
      continue;
    }
    const int64_t rows = *labels->type().NumElements();
    const Attribute* ignore_attr = n->attr("ignore_index");
    const std::optional<int64_t> ignore =
        ignore_attr ? std::optional<int64_t>(ignore_attr->i()) : std::nullopt;
    if (ignore && labels->dtype() != DType::kInt64) continue;
    // The node becomes the per-row loss where it stands (a new node would run at the end of
    // the step, keeping the scores alive through the backward pass); its scalar is now the sums
    // below, under the loss's name.
    std::vector<Use> uses = loss->uses();
    const std::string loss_name = loss->name();
    n->attrs()["reduction"] = Attribute(std::string("none"));
    RETURN_IF_ERROR(InferNode(*n));
    RETURN_IF_ERROR(g.RenameValue(loss, g.UniqueName(loss_name + "_rows")));
    NodeEmitter e(g, RoleOf(*n).empty() ? "loss" : RoleOf(*n));
    AttributeMap all{{"keepdims", Attribute(int64_t{0})}};
    ASSIGN_OR_RETURN(Value * result, e.One("ReduceSum", n->name() + "_sum", {loss}, all));
    if (reduction == "mean") {
      Value* count = nullptr;
      if (ignore) {
        ASSIGN_OR_RETURN(Value * ig,
                         e.Init(n->name() + "_ignore_index", Tensor::ScalarInt64(*ignore)));
        ASSIGN_OR_RETURN(Value * eq, e.One("Equal", n->name() + "_ignored", {labels, ig}));
        ASSIGN_OR_RETURN(Value * kept, e.One("Not", n->name() + "_kept", {eq}));
        ASSIGN_OR_RETURN(Value * w, e.One("Cast", n->name() + "_kept_f32", {kept},
                                          {{"to", Attribute(int64_t{1})}}));
        ASSIGN_OR_RETURN(count, e.One("ReduceSum", n->name() + "_count", {w}, all));
      } else {
        ASSIGN_OR_RETURN(count, e.Init(n->name() + "_count",
                                       Tensor::FromFloats({static_cast<float>(rows)}, {})));
      }
      ASSIGN_OR_RETURN(result, e.One("Div", n->name() + "_mean", {result, count}));
    }
    RETURN_IF_ERROR(g.RenameValue(result, loss_name));
    for (const Use& u : uses) u.user->SetInput(u.operand, result);
    std::vector<Value*> outputs = g.outputs();
    for (Value*& o : outputs) {
      if (o == loss) o = result;
    }
    g.SetOutputs(std::move(outputs));
    changed = true;
  }
  if (changed) RETURN_IF_ERROR(g.TopologicalSort());
  return changed;
}

}  // namespace ampc
