#include "compiler/inference_export.h"

#include <cstring>
#include <set>

#include "codegen/plan.h"
#include "frontend/onnx.h"
#include "frontend/training/training_graph.h"
#include "ir/float16.h"
#include "ir/op_registry.h"
#include "ir/safetensors.h"
#include "ir/verifier.h"
#include "passes/dead_code.h"
#include "passes/pass.h"

namespace ampc {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The trained parameters and running statistics of a training plan (STATE buffers named like the
// model's initializers); the optimizer's moments, the loss scale and the step counter are states
// too, but not weights.
StatusOr<std::map<std::string, Tensor>> ReadPlanWeights(const std::string& path) {
  ASSIGN_OR_RETURN(Plan p, LoadPlan(path));
  if (!p.proto.has_training()) {
    return InvalidArgument(path +
                           ": not a training plan, so it holds no trained weights (ampc train "
                           "--save-plan writes one)");
  }
  const plan::Training& t = p.proto.training();
  std::set<std::string> wanted(t.params().begin(), t.params().end());
  wanted.insert(t.running_stats().begin(), t.running_stats().end());
  if (wanted.empty()) return InvalidArgument(path + ": the training plan records no parameters");
  std::map<std::string, Tensor> out;
  for (const plan::Buffer& b : p.proto.buffers()) {
    if (b.kind() != plan::Buffer::STATE || !wanted.count(b.name())) continue;
    const std::optional<DType> dtype = DTypeFromName(b.dtype());
    if (!dtype) return InvalidArgument(path + ": buffer '" + b.name() + "' has dtype " + b.dtype());
    std::vector<int64_t> dims(b.dims().begin(), b.dims().end());
    int64_t bytes = DTypeSize(*dtype);
    for (int64_t d : dims) bytes *= d;
    if (bytes > b.size_bytes()) {
      return InvalidArgument(path + ": buffer '" + b.name() + "' is smaller than its shape");
    }
    const uint8_t* data = BufferData(p, b);
    out.emplace(b.name(),
                Tensor(*dtype, std::move(dims), std::vector<uint8_t>(data, data + bytes)));
  }
  for (const std::string& n : wanted) {
    if (!out.count(n)) {
      return InvalidArgument(path + ": the plan lists '" + n + "' as trained but holds no state");
    }
  }
  return out;
}

// Dropout is the identity at inference: removed unless its mask is read or its output is a graph
// output (whose name must stay).
void RemoveDropout(Graph& g) {
  for (Node* n : std::vector<Node*>(g.nodes())) {
    if (n->op_type() != "Dropout" || !n->domain().empty() || !n->input(0)) continue;
    Value* y = n->output(0);
    Value* mask = n->output(1);
    if (!y || g.IsRoot(y) || (mask && (!mask->uses().empty() || g.IsRoot(mask)))) continue;
    g.ReplaceAllUsesWith(y, n->input(0));
    g.RemoveNode(n);
  }
}

// ONNX allows BatchNormalization's running-statistics outputs only in training mode (shape
// inference, and so onnxruntime, refuses them otherwise): an inference-mode node keeps Y alone.
Status DropBatchNormStatOutputs(Graph& g) {
  for (Node* n : std::vector<Node*>(g.nodes())) {
    if (n->op_type() != "BatchNormalization" || !n->domain().empty() || n->num_outputs() < 2 ||
        n->attr_int("training_mode", 0) != 0) {
      continue;
    }
    for (int i = 1; i < n->num_outputs(); ++i) {
      const Value* o = n->output(i);
      if (o && (!o->uses().empty() || g.IsRoot(o))) {
        return Unimplemented(n->Describe() +
                             ": its running statistics are read by the model, "
                             "which an inference-mode BatchNormalization cannot "
                             "produce");
      }
    }
    Value* y = n->output(0);
    const std::string name = y->name();
    ASSIGN_OR_RETURN(Node * m, g.AddNode("BatchNormalization", "", n->name(), n->inputs(),
                                         {g.UniqueName(name + "_y")}, n->attrs()));
    m->annotations() = n->annotations();
    RETURN_IF_ERROR(InferNode(*m));
    g.ReplaceAllUsesWith(y, m->output(0));
    g.RemoveNode(n);
    RETURN_IF_ERROR(g.RenameValue(m->output(0), name));
  }
  return g.TopologicalSort();
}

// Casts of initializers are computed once here, so the model stores half weights as half
// tensors: a weight read only through the cast becomes half under its own name; one that fp32
// nodes read too keeps its f32 copy and the half copy takes the cast's name.
Status MaterializeWeightCasts(Graph& g) {
  for (Node* n : std::vector<Node*>(g.nodes())) {
    if (n->op_type() != "Cast" || !n->domain().empty()) continue;
    Value* src = n->input(0);
    Value* c = n->output(0);
    if (!src || !c || src->kind() != ValueKind::kInitializer || !IsFloat(src->dtype()) ||
        !IsFloat(c->dtype()) || g.IsRoot(c)) {
      continue;
    }
    Tensor converted = src->initializer()->ConvertFloat(c->dtype());
    if (src->uses().size() == 1 && !g.IsRoot(src)) {
      g.ReplaceAllUsesWith(c, src);
      g.RemoveNode(n);
      src->set_type(converted.type());
      src->set_initializer(std::move(converted));
      continue;
    }
    const std::vector<Use> uses = c->uses();
    const std::string name = c->name();
    for (const Use& u : uses) u.user->SetInput(u.operand, nullptr);
    g.RemoveNode(n);
    ASSIGN_OR_RETURN(Value * half, g.AddInitializer(name, std::move(converted)));
    for (const Use& u : uses) u.user->SetInput(u.operand, half);
  }
  return Status::Ok();
}

// Graph outputs that autocast left in half precision are cast back to their declared type under
// their own names (the half value is renamed), so callers see the model's interface unchanged.
Status CastOutputsBack(Graph& g, const std::vector<DType>& declared) {
  std::vector<Value*> outs = g.outputs();
  std::map<Value*, Value*> done;
  for (size_t i = 0; i < outs.size(); ++i) {
    Value* o = outs[i];
    if (auto it = done.find(o); it != done.end()) {
      outs[i] = it->second;
      continue;
    }
    if (o->dtype() == declared[i] || !IsFloat(o->dtype()) || !IsFloat(declared[i])) continue;
    const std::string name = o->name();
    RETURN_IF_ERROR(
        g.RenameValue(o, g.UniqueName(name + "_" + std::string(DTypeName(o->dtype())))));
    ASSIGN_OR_RETURN(
        Node * c,
        g.AddNode("Cast", "", name + "_to_" + std::string(DTypeName(declared[i])), {o}, {name},
                  {{"to", Attribute(static_cast<int64_t>(DTypeToOnnxNumber(declared[i])))}}));
    c->annotations()["precision"] = std::string(DTypeName(declared[i]));
    c->annotations()["reason"] = "graph output keeps its declared type";
    RETURN_IF_ERROR(InferNode(*c));
    done[o] = outs[i] = c->output(0);
  }
  g.SetOutputs(outs);
  return Status::Ok();
}

}  // namespace

StatusOr<std::map<std::string, Tensor>> ReadTrainedWeights(const std::string& path) {
  if (EndsWith(path, ".ampc")) return ReadPlanWeights(path);
  if (EndsWith(path, ".safetensors")) {
    ASSIGN_OR_RETURN(SafetensorsFile f, ReadSafetensors(path));
    return std::move(f.tensors);
  }
  return InvalidArgument("--weights " + path +
                         ": expected a training plan (.ampc) or a safetensors checkpoint "
                         "(.safetensors)");
}

StatusOr<int64_t> ApplyTrainedWeights(Graph& g, const std::map<std::string, Tensor>& weights,
                                      const std::string& weights_name,
                                      const std::string& model_name) {
  if (weights.empty()) return InvalidArgument(weights_name + ": holds no tensors");
  auto first_unknown = [&]() -> std::string {
    for (const auto& [name, t] : weights) {
      const Value* v = g.FindValue(name);
      if (!v || v->kind() != ValueKind::kInitializer) return name;
    }
    return "";
  };
  std::string unknown = first_unknown();
  if (!unknown.empty()) {
    // A plan trained with --untie-shared names the copies torch's exporter merged.
    RETURN_IF_ERROR(UntieSharedInitializers(g, true).status());
    unknown = first_unknown();
  }
  if (!unknown.empty()) {
    return InvalidArgument(weights_name + ": tensor '" + unknown + "' is not an initializer of " +
                           model_name + " (weights of another model?)");
  }
  for (const auto& [name, t] : weights) {
    Value* v = g.FindValue(name);
    const Tensor& want = *v->initializer();
    const bool same = t.dtype() == want.dtype();
    const bool master = t.dtype() == DType::kFloat32 && IsHalf(want.dtype());
    const bool widen = IsHalf(t.dtype()) && want.dtype() == DType::kFloat32;
    if (t.dims() != want.dims() || !(same || master || widen)) {
      return InvalidArgument(weights_name + ": tensor '" + name + "' is " + t.type().ToString() +
                             " but the initializer of " + model_name + " is " +
                             want.type().ToString());
    }
    v->set_initializer(same ? t : t.ConvertFloat(want.dtype()));
  }
  return static_cast<int64_t>(weights.size());
}

StatusOr<InferenceExportStats> ToInferenceModel(Graph& g, DType precision, AutocastOptions amp) {
  if (!g.state_updates().empty()) {
    return Unimplemented(
        "the model carries its own training algorithm (state updates); export needs the forward "
        "model");
  }
  if (precision != DType::kFloat32 && !IsHalf(precision)) {
    return InvalidArgument(std::string("export precision ") + PrecisionName(precision) +
                           ": expected fp32, fp16 or bf16");
  }
  InferenceExportStats stats;
  std::vector<DType> declared;
  for (const Value* v : g.outputs()) declared.push_back(v->dtype());
  RemoveDropout(g);
  RETURN_IF_ERROR(ToInferenceMode(g));
  RETURN_IF_ERROR(DropBatchNormStatOutputs(g));
  PassPipeline cleanup;
  cleanup.AddPass<DeadCodeElimination>();
  RETURN_IF_ERROR(cleanup.Run(g).status());
  // Dropout's ratio and training-mode constants, for one, are read by nothing now.
  for (Value* v : std::vector<Value*>(g.initializers())) {
    if (v->uses().empty() && !g.IsRoot(v)) RETURN_IF_ERROR(g.RemoveInitializer(v));
  }
  if (precision != DType::kFloat32) {
    amp.half = precision;
    PassPipeline pipeline;
    AutocastPass& pass = pipeline.AddPass<AutocastPass>(std::move(amp));
    RETURN_IF_ERROR(pipeline.Run(g).status());
    stats.half_nodes = pass.stats().half_nodes;
    stats.fp32_nodes = pass.stats().fp32_nodes;
    RETURN_IF_ERROR(MaterializeWeightCasts(g));
    RETURN_IF_ERROR(CastOutputsBack(g, declared));
    RETURN_IF_ERROR(g.TopologicalSort());
    for (const Node* n : g.nodes()) stats.casts += n->op_type() == "Cast";
  }
  RETURN_IF_ERROR(Verify(g).WithContext("inference model"));
  return stats;
}

StatusOr<InferenceExportStats> ExportInferenceModel(const std::string& model_path,
                                                    const std::string& weights_path,
                                                    DType precision, const std::string& out_path) {
  ASSIGN_OR_RETURN(auto weights, ReadTrainedWeights(weights_path));
  ASSIGN_OR_RETURN(std::unique_ptr<Graph> g, ImportOnnxFile(model_path));
  ASSIGN_OR_RETURN(int64_t replaced, ApplyTrainedWeights(*g, weights, weights_path, model_path));
  ASSIGN_OR_RETURN(InferenceExportStats stats, ToInferenceModel(*g, precision, AutocastOptions{}));
  stats.weights_replaced = replaced;
  RETURN_IF_ERROR(ExportOnnxFile(*g, out_path));
  return stats;
}

}  // namespace ampc
