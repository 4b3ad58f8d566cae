// ONNX import: ModelProto -> Graph.
//
// Order of work, chosen so that each bad input gets the most precise message:
//   1. bytes -> ModelProto (protobuf); the IR features the model uses (the protobuf fields it
//      sets, onnx_import_checks.h) and its opsets (ai.onnx 6 to 23) are checked;
//   2. graph inputs and initializers (types, dims, data sizes, external data);
//   3. NodeProtos sorted topologically by name (undefined values and cycles are found here),
//      each resolved to its op version (ir/ops/onnx_versions.h; unknown ops, versions and
//      attributes are errors), converted, rewritten to ampc's canonical form (onnx_rewrite.h)
//      and shape-inferred as it is added (ai.onnx.preview.training::Gradient is expanded into
//      backward nodes, gradient_op.h);
//   4. declared types (value_info, graph outputs) reconciled with the inferred ones;
//   5. each training_info entry: its algorithm graph appended by steps 2-4, its update_binding
//      turned into state updates (onnx_training_info.h);
//   6. ONNX 1.12's own checker, for models up to opset 17 (the opsets it knows), for anything
//      the steps above do not look at.
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "frontend/gradient_op.h"
#include "frontend/onnx.h"
#include "frontend/onnx_import_checks.h"
#include "frontend/onnx_rewrite.h"
#include "frontend/onnx_tensor.h"
#include "frontend/onnx_training_info.h"
#include "ir/file_io.h"
#include "ir/op_registry.h"
#include "ir/ops/infer_util.h"
#include "ir/topo_sort.h"
#include "ir/verifier.h"

namespace ampc {
namespace {

using onnx_conv::TensorFromProto;
using onnx_conv::TypeFromProto;

bool IsDefaultDomain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

bool IsGradientOp(const onnx::NodeProto& n) {
  return n.domain() == kOnnxTrainingDomain && n.op_type() == "Gradient";
}

std::string DescribeProto(const onnx::NodeProto& n) { return onnx_check::DescribeNode(n); }

// Merges a type declared in the model (value_info / graph output) into the inferred one.
StatusOr<TensorType> Reconcile(const TensorType& inferred, const TensorType& declared,
                               const std::string& what) {
  TensorType out = inferred;
  if (declared.dtype != DType::kUndefined) {
    if (out.dtype == DType::kUndefined) {
      out.dtype = declared.dtype;
    } else if (out.dtype != declared.dtype) {
      return InvalidArgument("type mismatch: " + what + " is declared " +
                             std::string(DTypeName(declared.dtype)) + " but computes " +
                             std::string(DTypeName(out.dtype)));
    }
  }
  if (!declared.has_rank) return out;
  if (!out.has_rank) {
    out.has_rank = true;
    out.dims = declared.dims;
    return out;
  }
  if (out.rank() != declared.rank()) {
    return InvalidArgument("shape mismatch: " + what + " is declared " + declared.ToString() +
                           " but computes " + out.ToString());
  }
  for (size_t i = 0; i < out.dims.size(); ++i) {
    const Dim& d = declared.dims[i];
    Dim& o = out.dims[i];
    if (o.is_static() && d.is_static() && o.value() != d.value()) {
      return InvalidArgument("shape mismatch: " + what + " is declared " + declared.ToString() +
                             " but computes " + out.ToString());
    }
    if (o.is_unknown() || (o.is_symbolic() && d.is_static())) o = d;
  }
  return out;
}

class Importer {
 public:
  Importer(const onnx::ModelProto& m, std::string model_dir, Graph& g)
      : model_(m), graph_proto_(&m.graph()), model_dir_(std::move(model_dir)), g_(g) {}

  Status Run() {
    RETURN_IF_ERROR(CheckOpsets());
    g_.set_name(graph_proto_->name());
    RETURN_IF_ERROR(ImportGraph());
    RETURN_IF_ERROR(ImportAmpcStateUpdates());
    if (model_.training_info_size() == 0) return Status::Ok();
    std::unordered_set<std::string> outputs;
    for (const auto& o : graph_proto_->output()) outputs.insert(o.name());
    TrainingInfoImport training(g_, g_.nodes(), std::move(outputs));
    for (int k = 0; k < model_.training_info_size(); ++k) {
      RETURN_IF_ERROR(
          ImportTrainingInfo(k, training).WithContext("training_info[" + std::to_string(k) + "]"));
    }
    return Status::Ok();
  }

 private:
  // The lists of *graph_proto_, appended to the Graph.
  Status ImportGraph() {
    RETURN_IF_ERROR(CollectDeclaredTypes());
    RETURN_IF_ERROR(AddInitializers());
    RETURN_IF_ERROR(AddInputs());
    ASSIGN_OR_RETURN(std::vector<int> order, SortNodes());
    for (int i : order) RETURN_IF_ERROR(AddNode(graph_proto_->node(i)));
    return AddOutputs();
  }

  // A training step exported by ampc (`inspect --format onnx`) records its state updates as
  // metadata "ampc.state_update.<initializer>" = "<value>" (the value is also a graph output).
  Status ImportAmpcStateUpdates() {
    const std::string prefix = "ampc.state_update.";
    for (const auto& md : model_.metadata_props()) {
      if (md.key().rfind(prefix, 0) != 0) continue;
      const std::string state = md.key().substr(prefix.size());
      Value* s = g_.FindValue(state);
      Value* next = g_.FindValue(md.value());
      if (!s || !next || s->kind() != ValueKind::kInitializer || s->type() != next->type()) {
        return InvalidArgument("metadata '" + md.key() + "' = '" + md.value() +
                               "' does not bind an initializer to a value of its type");
      }
      g_.AddStateUpdate(s, next);
    }
    return Status::Ok();
  }

  // ONNX defines a training step as the inference graph with the algorithm graph's lists
  // appended; that is what is built here, in the same Graph. update_binding become state updates
  // (frontend/onnx_training_info.h).
  Status ImportTrainingInfo(int k, TrainingInfoImport& training) {
    const onnx::TrainingInfoProto& ti = model_.training_info(k);
    AlgorithmImport a;
    a.index = k;
    for (const auto& t : model_.graph().initializer()) a.bindable.insert(t.name());
    for (const auto& t : ti.algorithm().initializer()) a.bindable.insert(t.name());
    RETURN_IF_ERROR(training.CheckInitialization(ti, a));
    const std::vector<Node*> before_nodes = g_.nodes();
    const std::unordered_set<const Node*> before(before_nodes.begin(), before_nodes.end());
    const size_t inputs_before = g_.inputs().size(), inits_before = g_.initializers().size();
    const size_t outputs_before = g_.outputs().size();
    graph_proto_ = &ti.algorithm();
    RETURN_IF_ERROR(ImportGraph().WithContext("algorithm"));
    a.defined.assign(g_.inputs().begin() + inputs_before, g_.inputs().end());
    a.defined.insert(a.defined.end(), g_.initializers().begin() + inits_before,
                     g_.initializers().end());
    for (Node* n : g_.nodes()) {
      if (before.count(n)) continue;
      a.nodes.push_back(n);
      for (Value* o : n->outputs()) {
        if (o) a.defined.push_back(o);
      }
    }
    a.outputs.assign(g_.outputs().begin() + outputs_before, g_.outputs().end());
    return training.ApplyUpdateBindings(ti, a);
  }

  Status CheckOpsets() {
    bool have_default = false;
    for (const auto& os : model_.opset_import()) {
      const std::string domain = IsDefaultDomain(os.domain()) ? "" : os.domain();
      if (domain.empty()) {
        have_default = true;
        opset_ = os.version();
        if (opset_ > kMaxOnnxOpset) {
          return Unimplemented("opset " + std::to_string(opset_) +
                               " of domain ai.onnx is newer than the newest supported (" +
                               std::to_string(kMaxOnnxOpset) + ")");
        }
        if (opset_ < kMinOnnxOpset) {
          return Unimplemented("opset " + std::to_string(opset_) +
                               " of domain ai.onnx is older than the oldest supported (" +
                               std::to_string(kMinOnnxOpset) +
                               "); convert it with onnx.version_converter");
        }
      } else if ((domain == kOnnxTrainingDomain || domain == kAmpcDomain) && os.version() > 1) {
        return Unimplemented("opset " + std::to_string(os.version()) + " of domain " + domain +
                             " is newer than supported (1)");
      }
      g_.opsets()[domain] = domain.empty() ? std::max(kCanonicalOnnxOpset, opset_) : os.version();
    }
    if (!have_default) {
      // Only needed when a node lives in the default domain (a graph of, say, only
      // ai.onnx.preview.training ops imports no ai.onnx opset).
      for (const auto& n : graph_proto_->node()) {
        if (IsDefaultDomain(n.domain())) {
          return InvalidArgument("node '" + n.name() + "' (" + n.op_type() +
                                 ") is in domain ai.onnx, which the model does not import");
        }
      }
      opset_ = kCanonicalOnnxOpset;
    }
    return Status::Ok();
  }

  Status CollectDeclaredTypes() {
    auto collect = [&](const onnx::ValueInfoProto& vi, const char* kind) -> Status {
      if (!vi.has_type()) return Status::Ok();
      ASSIGN_OR_RETURN(TensorType t,
                       TypeFromProto(vi.type(), std::string(kind) + " '" + vi.name() + "'"));
      declared_[vi.name()] = std::move(t);
      return Status::Ok();
    };
    for (const auto& vi : graph_proto_->value_info()) RETURN_IF_ERROR(collect(vi, "value"));
    for (const auto& vi : graph_proto_->output()) RETURN_IF_ERROR(collect(vi, "graph output"));
    return Status::Ok();
  }

  Status AddInitializers() {
    for (const auto& t : graph_proto_->initializer()) {
      const std::string what = "initializer '" + t.name() + "'";
      ASSIGN_OR_RETURN(Tensor data, TensorFromProto(t, model_dir_, what));
      ASSIGN_OR_RETURN(Value * v, g_.AddInitializer(t.name(), std::move(data)));
      SetKnownIntsFromInitializer(v);
    }
    if (graph_proto_->sparse_initializer_size() > 0) {
      return Unimplemented("sparse initializers are not supported");
    }
    return Status::Ok();
  }

  Status AddInputs() {
    for (const auto& in : graph_proto_->input()) {
      const std::string what = "graph input '" + in.name() + "'";
      if (!in.has_type()) return InvalidArgument(what + " has no type");
      ASSIGN_OR_RETURN(TensorType t, TypeFromProto(in.type(), what));
      if (Value* init = g_.FindValue(in.name())) {
        // Older exporters list initializers among the inputs too; the initializer wins.
        if (init->kind() == ValueKind::kInitializer) {
          auto r = Reconcile(init->type(), t, what);
          if (!r.ok()) return r.status();
          continue;
        }
      }
      if (t.dtype == DType::kUndefined) return InvalidArgument(what + " has no element type");
      RETURN_IF_ERROR(g_.AddInput(in.name(), std::move(t)).status());
    }
    return Status::Ok();
  }

  // Orders NodeProtos so that every value is defined before it is used.
  StatusOr<std::vector<int>> SortNodes() {
    const int n = graph_proto_->node_size();
    std::unordered_map<std::string, int> producer;
    producer.reserve(static_cast<size_t>(n) * 2);
    for (int i = 0; i < n; ++i) {
      for (const std::string& o : graph_proto_->node(i).output()) {
        if (o.empty()) continue;
        if (producer.count(o) || g_.FindValue(o)) {
          return InvalidArgument("value '" + o + "' is defined twice (again by " +
                                 DescribeProto(graph_proto_->node(i)) + ")");
        }
        producer[o] = i;
      }
    }
    std::vector<std::vector<int>> preds(n);
    for (int i = 0; i < n; ++i) {
      const auto& node = graph_proto_->node(i);
      std::vector<std::string> reads(node.input().begin(), node.input().end());
      if (IsGradientOp(node)) {
        for (const auto& a : node.attribute()) {
          if (a.name() == "y" && a.type() == onnx::AttributeProto::STRING) reads.push_back(a.s());
        }
      }
      for (const std::string& in : reads) {
        if (in.empty()) continue;
        auto it = producer.find(in);
        if (it != producer.end()) {
          preds[i].push_back(it->second);
        } else if (!g_.FindValue(in)) {
          return InvalidArgument("use of undefined value '" + in + "' by " + DescribeProto(node));
        }
      }
    }
    return TopologicalOrder(preds, [&](int k) { return DescribeProto(graph_proto_->node(k)); });
  }

  StatusOr<AttributeMap> ConvertAttributes(const onnx::NodeProto& node) {
    AttributeMap attrs;
    for (const auto& a : node.attribute()) {
      const std::string what = DescribeProto(node) + " attribute '" + a.name() + "'";
      if (!a.ref_attr_name().empty()) {
        return Unimplemented(what + " refers to a function attribute");
      }
      using AP = onnx::AttributeProto;
      switch (a.type()) {
        case AP::INT:
          attrs[a.name()] = Attribute(static_cast<int64_t>(a.i()));
          break;
        case AP::FLOAT:
          attrs[a.name()] = Attribute(a.f());
          break;
        case AP::STRING:
          attrs[a.name()] = Attribute(a.s());
          break;
        case AP::INTS:
          attrs[a.name()] = Attribute(std::vector<int64_t>(a.ints().begin(), a.ints().end()));
          break;
        case AP::FLOATS:
          attrs[a.name()] = Attribute(std::vector<float>(a.floats().begin(), a.floats().end()));
          break;
        case AP::STRINGS:
          attrs[a.name()] =
              Attribute(std::vector<std::string>(a.strings().begin(), a.strings().end()));
          break;
        case AP::TENSOR: {
          ASSIGN_OR_RETURN(Tensor t, TensorFromProto(a.t(), model_dir_, what));
          attrs[a.name()] = Attribute(std::move(t));
          break;
        }
        default:
          return Unimplemented(what + " has unsupported attribute type " +
                               AP::AttributeType_Name(a.type()));
      }
    }
    return attrs;
  }

  Status AddNode(const onnx::NodeProto& node) {
    if (IsGradientOp(node)) return AddGradientOp(node);
    std::string op = node.op_type();
    const std::string domain = IsDefaultDomain(node.domain()) ? "" : node.domain();
    const bool imported_as_others = domain.empty() && OpRewriter::ImportsAsOtherOps(op);
    if (!imported_as_others && !OpRegistry::Global().Find(domain, op)) {
      auto it = g_.opsets().find(domain);
      const std::string version = it == g_.opsets().end()
                                      ? "not imported"
                                      : std::to_string(domain.empty() ? opset_ : it->second);
      return Unimplemented("unknown op '" + op + "' (domain '" +
                           (domain.empty() ? std::string("ai.onnx") : domain) + "', opset " +
                           version + ") at node '" + node.name() + "'");
    }
    ASSIGN_OR_RETURN(AttributeMap attrs, ConvertAttributes(node));
    ASSIGN_OR_RETURN(const OnnxOpVersion* version, CheckSchema(node, domain, attrs));
    OpRewriter rewriter = Rewriter();
    if (imported_as_others) {
      return rewriter.AddInPlaceOf(node, *version, std::move(attrs), *graph_proto_)
          .WithContext(DescribeProto(node));
    }
    std::vector<Value*> inputs;
    for (const std::string& in : node.input()) {
      inputs.push_back(in.empty() ? nullptr : g_.FindValue(in));
    }
    std::vector<std::string> outputs(node.output().begin(), node.output().end());
    RETURN_IF_ERROR(rewriter.NormaliseOlder(node, op, attrs, inputs, outputs));
    if (version) {
      RETURN_IF_ERROR(rewriter.NormaliseNewer(node, version->since, attrs, inputs, outputs));
    }
    ASSIGN_OR_RETURN(bool rewritten, rewriter.RewriteOldSoftmax(node, op, attrs, inputs, outputs));
    if (rewritten) return Status::Ok();
    ASSIGN_OR_RETURN(Node * n,
                     g_.AddNode(op, domain, node.name(), inputs, outputs, std::move(attrs)));
    RETURN_IF_ERROR(InferNode(*n));
    if (version) RETURN_IF_ERROR(onnx_check::CheckRequiredAttributes(node, *version));
    for (Value* o : n->outputs()) {
      if (o) RETURN_IF_ERROR(ApplyDeclared(o));
    }
    return Status::Ok();
  }

  // The version of the node's op in force at the model's opset of its domain, with the node's
  // attributes checked against it (ops of ampc's own domain have one version and no table:
  // nullptr).
  StatusOr<const OnnxOpVersion*> CheckSchema(const onnx::NodeProto& node, const std::string& domain,
                                             AttributeMap& attrs) {
    if (domain == kAmpcDomain) return nullptr;
    int64_t opset = opset_;
    if (!domain.empty()) {
      auto it = g_.opsets().find(domain);
      if (it == g_.opsets().end()) {
        return InvalidArgument(DescribeProto(node) + " is in domain " + domain +
                               ", which the model does not import");
      }
      opset = it->second;
    }
    ASSIGN_OR_RETURN(const OnnxOpVersion* v, onnx_check::ResolveVersion(node, domain, opset));
    RETURN_IF_ERROR(onnx_check::CheckAttributes(node, domain, *v, attrs));
    return v;
  }

  // Gradient is expanded into backward nodes here (frontend/gradient_op.h); no Gradient node
  // reaches the IR.
  Status AddGradientOp(const onnx::NodeProto& node) {
    ASSIGN_OR_RETURN(AttributeMap attrs, ConvertAttributes(node));
    ASSIGN_OR_RETURN(const OnnxOpVersion* version, CheckSchema(node, kOnnxTrainingDomain, attrs));
    RETURN_IF_ERROR(onnx_check::CheckRequiredAttributes(node, *version));
    std::vector<Value*> inputs;
    for (const std::string& in : node.input()) {
      inputs.push_back(in.empty() ? nullptr : g_.FindValue(in));
    }
    std::vector<std::string> outputs(node.output().begin(), node.output().end());
    auto outs = ExpandGradientOp(g_, node.name(), attrs, inputs, outputs);
    if (!outs.ok()) return outs.status().WithContext(DescribeProto(node));
    for (Value* o : *outs) {
      if (o) RETURN_IF_ERROR(ApplyDeclared(o));
    }
    return Status::Ok();
  }

  OpRewriter Rewriter() {
    return OpRewriter(g_, opset_, used_names_, sequences_,
                      [this](Value* v) { return ApplyDeclared(v); });
  }

  Status ApplyDeclared(Value* v) {
    auto it = declared_.find(v->name());
    if (it == declared_.end()) return Status::Ok();
    std::string what = "value '" + v->name() + "'";
    if (Node* p = v->producer()) what += " (output of " + p->Describe() + ")";
    ASSIGN_OR_RETURN(TensorType t, Reconcile(v->type(), it->second, what));
    v->set_type(std::move(t));
    return Status::Ok();
  }

  Status AddOutputs() {
    for (const auto& out : graph_proto_->output()) {
      Value* v = g_.FindValue(out.name());
      if (!v) {
        return InvalidArgument("graph output '" + out.name() +
                               "' is not defined by any node, input or initializer");
      }
      if (v->kind() != ValueKind::kNodeOutput) RETURN_IF_ERROR(ApplyDeclared(v));
      if (std::find(g_.outputs().begin(), g_.outputs().end(), v) != g_.outputs().end()) {
        return InvalidArgument("graph output '" + out.name() + "' is listed twice");
      }
      g_.AddOutput(v);
    }
    return Status::Ok();
  }

 public:
  int64_t opset() const { return opset_; }  // of ai.onnx, after Run

  void NoteUsedNames() {
    std::vector<const onnx::GraphProto*> graphs = {graph_proto_};
    for (const auto& ti : model_.training_info()) graphs.push_back(&ti.algorithm());
    size_t values = 0, nodes = 0;
    for (const onnx::GraphProto* gp : graphs) {
      values += gp->input_size() + gp->initializer_size();
      for (const auto& n : gp->node()) values += n.output_size();
      nodes += gp->node_size();
    }
    g_.Reserve(values, nodes);
    used_names_.reserve(values);
    for (const onnx::GraphProto* gp : graphs) {
      for (const auto& n : gp->node()) {
        for (const std::string& in : n.input()) used_names_.insert(in);
      }
      for (const auto& o : gp->output()) used_names_.insert(o.name());
    }
    for (const auto& ti : model_.training_info()) {
      for (const auto& b : ti.update_binding()) used_names_.insert(b.value());
    }
  }

 private:
  const onnx::ModelProto& model_;
  const onnx::GraphProto* graph_proto_;  // the graph being imported: main, then algorithms
  std::string model_dir_;
  Graph& g_;
  int64_t opset_ = 0;
  std::unordered_map<std::string, TensorType> declared_;
  std::unordered_set<std::string> used_names_;
  // SplitToSequence outputs -> the parts of the Split that replaced them (OpRewriter).
  std::unordered_map<std::string, std::vector<Value*>> sequences_;
};

}  // namespace

StatusOr<std::unique_ptr<Graph>> ImportOnnxBytes(std::string_view bytes,
                                                 const std::string& model_dir,
                                                 const std::string& display_name,
                                                 const ImportOptions& opts) {
  auto fail = [&](const Status& s) { return s.WithContext(display_name); };
  if (bytes.empty()) return fail(InvalidArgument("the file is empty, not an ONNX model"));
  onnx::ModelProto model;
  if (bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return fail(InvalidArgument(
        "not a valid ONNX model: the protobuf does not parse (truncated or corrupt file?)"));
  }
  if (!model.has_graph()) return fail(InvalidArgument("not a valid ONNX model: it has no graph"));
  if (model.ir_version() <= 0) {
    return fail(InvalidArgument("not a valid ONNX model: ir_version is missing"));
  }
  RETURN_IF_ERROR(fail(onnx_check::CheckLimits(model)));
  RETURN_IF_ERROR(fail(onnx_check::CheckProtoFeatures(model)));
  auto graph = std::make_unique<Graph>();
  Importer importer(model, model_dir, *graph);
  importer.NoteUsedNames();
  RETURN_IF_ERROR(fail(importer.Run()));
  RETURN_IF_ERROR(fail(Verify(*graph)));
  if (opts.run_onnx_checker && importer.opset() <= kMaxCheckerOpset) {
    try {
      // ONNX 1.12's checker knows opsets up to 17 and IR version 8. A newer IR version is only a
      // number here: CheckProtoFeatures refused every newer feature but the harmless fields, so
      // the checker reads a copy without them, stamped IR 8. It also looks for external data
      // files relative to the working directory: the copy's external tensors carry the bytes
      // ampc already read and checked.
      std::optional<onnx::ModelProto> inlined;
      if (model.ir_version() > onnx::IR_VERSION) {
        inlined = model;
        onnx_check::DiscardHarmlessFields(*inlined);
        inlined->set_ir_version(onnx::IR_VERSION);
      }
      for (int i = 0; i < model.graph().initializer_size(); ++i) {
        const auto& t = model.graph().initializer(i);
        if (t.data_location() != onnx::TensorProto::EXTERNAL) continue;
        if (!inlined) inlined = model;
        auto* c = inlined->mutable_graph()->mutable_initializer(i);
        const Tensor* data = graph->FindValue(t.name())->initializer();
        c->clear_external_data();
        c->set_data_location(onnx::TensorProto::DEFAULT);
        c->set_raw_data(std::string(data->bytes().begin(), data->bytes().end()));
      }
      onnx::checker::check_model(inlined ? *inlined : model);
    } catch (const std::exception& e) {
      std::string msg = e.what();
      std::replace(msg.begin(), msg.end(), '\n', ' ');
      return fail(InvalidArgument("rejected by the ONNX checker: " + msg));
    }
  }
  return graph;
}

StatusOr<std::unique_ptr<Graph>> ImportOnnxFile(const std::string& path,
                                                const ImportOptions& opts) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  return ImportOnnxBytes(bytes, dir, path, opts);
}

}  // namespace ampc
