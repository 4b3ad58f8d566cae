// ONNX import: ModelProto -> Graph.
//
// Order of work, chosen so that each bad input gets the most precise message:
//   1. bytes -> ModelProto (protobuf), IR version and opset checks;
//   2. graph inputs and initializers (types, dims, data sizes, external data);
//   3. NodeProtos sorted topologically by name (undefined values and cycles are found here),
//      each converted, normalised to opset-17 form and shape-inferred as it is added
//      (ai.onnx.preview.training::Gradient is expanded into backward nodes, gradient_op.h);
//   4. declared types (value_info, graph outputs) reconciled with the inferred ones;
//   5. each training_info entry: its algorithm graph appended by steps 2-4, its update_binding
//      turned into state updates (onnx_training_info.h);
//   6. ONNX's own checker, for anything the steps above do not look at.
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "frontend/gradient_op.h"
#include "frontend/onnx.h"
#include "frontend/onnx_import_checks.h"
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

constexpr int64_t kMaxKnownInts = 64;  // small integer initializers feed shape arithmetic

bool IsDefaultDomain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

bool IsGradientOp(const onnx::NodeProto& n) {
  return n.domain() == kOnnxTrainingDomain && n.op_type() == "Gradient";
}

std::string DescribeProto(const onnx::NodeProto& n) { return onnx_check::DescribeNode(n); }

void SetKnownIntsFromInitializer(Value* v) {
  const Tensor* t = v->initializer();
  if (!t || t->dims().size() > 1 || t->NumElements() > kMaxKnownInts) return;
  auto ints = t->AsInt64s();
  if (!ints || t->dtype() == DType::kBool) return;
  v->set_known_ints(std::vector<Dim>(ints->begin(), ints->end()));
}

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

  // Moves an attribute that later opsets turned into an input (Split's split, Squeeze's axes,
  // ...) into a fresh int64 initializer at input position `pos`.
  Status AttrToInput(const std::string& node_name, AttributeMap& attrs, const std::string& key,
                     size_t pos, std::vector<Value*>& inputs) {
    auto it = attrs.find(key);
    if (it == attrs.end()) return Status::Ok();
    if (it->second.kind() != AttrKind::kInts) {
      return InvalidArgument("attribute '" + key + "' of node '" + node_name +
                             "' must be a list of ints");
    }
    const std::vector<int64_t> v = it->second.ints();
    attrs.erase(it);
    ASSIGN_OR_RETURN(Value * init,
                     g_.AddInitializer(g_.UniqueName(node_name + "_" + key),
                                       Tensor::FromInt64s(v, {static_cast<int64_t>(v.size())})));
    SetKnownIntsFromInitializer(init);
    if (inputs.size() < pos) inputs.resize(pos, nullptr);
    inputs.insert(inputs.begin() + pos, init);
    return Status::Ok();
  }

  // Like AttrToInput for a float attribute that became a scalar input of input 0's dtype;
  // `dflt` is used when the attribute is absent.
  Status FloatAttrToInput(const std::string& node_name, AttributeMap& attrs, const std::string& key,
                          double dflt, size_t pos, std::vector<Value*>& inputs) {
    double v = dflt;
    auto it = attrs.find(key);
    const bool given = it != attrs.end();
    if (given) {
      if (it->second.kind() != AttrKind::kFloat) {
        return InvalidArgument("attribute '" + key + "' of node '" + node_name +
                               "' must be a float");
      }
      v = it->second.f();
      attrs.erase(it);
    }
    if (inputs.empty() || !inputs[0] || !IsFloat(inputs[0]->dtype())) {
      if (!given) return Status::Ok();
      return Unimplemented("node '" + node_name + "': attribute '" + key +
                           "' on a non-float input");
    }
    ASSIGN_OR_RETURN(Value * init, g_.AddInitializer(g_.UniqueName(node_name + "_" + key),
                                                     Tensor::Scalar(inputs[0]->dtype(), v)));
    if (inputs.size() < pos) inputs.resize(pos, nullptr);
    inputs.insert(inputs.begin() + pos, init);
    return Status::Ok();
  }

  Status Normalise(const onnx::NodeProto& node, std::string& op, AttributeMap& attrs,
                   std::vector<Value*>& inputs, std::vector<std::string>& outputs) {
    const std::string& name = node.name();
    if (opset_ < 13 && op == "Split") return AttrToInput(name, attrs, "split", 1, inputs);
    if (opset_ < 13 && (op == "Squeeze" || op == "Unsqueeze" || op == "ReduceSum")) {
      return AttrToInput(name, attrs, "axes", 1, inputs);
    }
    if (opset_ < 10 && op == "Slice") {
      RETURN_IF_ERROR(AttrToInput(name, attrs, "starts", 1, inputs));
      RETURN_IF_ERROR(AttrToInput(name, attrs, "ends", 2, inputs));
      return AttrToInput(name, attrs, "axes", 3, inputs);
    }
    if (opset_ < 11 && op == "Pad") {
      RETURN_IF_ERROR(AttrToInput(name, attrs, "pads", 1, inputs));
      return FloatAttrToInput(name, attrs, "value", 0.0, 2, inputs);
    }
    if (opset_ < 11 && op == "Clip") {
      RETURN_IF_ERROR(FloatAttrToInput(name, attrs, "min", -INFINITY, 1, inputs));
      return FloatAttrToInput(name, attrs, "max", INFINITY, 2, inputs);
    }
    if (opset_ < 9 && op == "BatchNormalization") {
      if (attrs.count("spatial") && attrs.at("spatial").kind() == AttrKind::kInt &&
          attrs.at("spatial").i() != 1) {
        return Unimplemented(DescribeProto(node) +
                             ": spatial=0 (per-activation statistics) is not supported");
      }
      attrs.erase("spatial");
    }
    if (opset_ < 7) {
      // Opset 6 still has is_test flags and the legacy `broadcast`/`axis` attributes; with no
      // axis, legacy broadcasting aligns trailing dims exactly like numpy broadcasting.
      attrs.erase("is_test");
      if (attrs.count("broadcast")) {
        if (attrs.count("axis") && op != "Concat" && op != "Softmax" && op != "LogSoftmax" &&
            op != "Flatten" && op != "Gather") {
          return Unimplemented(DescribeProto(node) +
                               ": legacy broadcasting with an axis (opset < 7)");
        }
        attrs.erase("broadcast");
      }
    }
    if (opset_ < 12 && op == "Dropout") {
      auto it = attrs.find("ratio");
      if (it != attrs.end() && it->second.kind() == AttrKind::kFloat) {
        ASSIGN_OR_RETURN(Value * r, g_.AddInitializer(g_.UniqueName(name + "_ratio"),
                                                      Tensor::FromFloats({it->second.f()}, {})));
        attrs.erase(it);
        inputs.resize(1);
        inputs.push_back(r);
      }
    }
    if (opset_ < 14 && op == "BatchNormalization" && outputs.size() > 1) {
      // Opsets 9-13 signal training by asking for the running statistics; outputs 4 and 5
      // (saved mean / inverse std) have no opset-17 equivalent.
      attrs["training_mode"] = Attribute(int64_t{1});
      for (size_t i = 3; i < outputs.size(); ++i) {
        if (!outputs[i].empty() && used_names_.count(outputs[i])) {
          return Unimplemented(DescribeProto(node) + " uses output " + std::to_string(i) +
                               " (saved statistics of opset < 14), which is not supported");
        }
      }
      outputs.resize(3);
    }
    return Status::Ok();
  }

  // Op versions newer than ampc's canonical form (ai.onnx opsets 18-23). Reduce* with axes as an
  // input (18) and Split's num_outputs (18) are canonical themselves; the rest is rewritten here.
  Status NormaliseNewer(const onnx::NodeProto& node, int64_t version, AttributeMap& attrs,
                        std::vector<Value*>& inputs, std::vector<std::string>& outputs) {
    const std::string& op = node.op_type();
    if (op == "Split" && version >= 18) {
      const bool split_input = inputs.size() > 1 && inputs[1];
      if (split_input == (attrs.count("num_outputs") > 0)) {
        return InvalidArgument(DescribeProto(node) +
                               ": Split version 18 takes either input 'split' or attribute "
                               "'num_outputs' (exactly one of them)");
      }
    }
    if (op == "GroupNormalization" && version < 21) return GroupNormScalePerChannel(node, inputs);
    if (op == "Attention") {
      // present_key / present_value / qk_matmul_output that nothing reads (torch's exporter
      // names them all) are dropped, so that only a model that uses them needs them supported.
      for (size_t i = 1; i < outputs.size(); ++i) {
        if (!used_names_.count(outputs[i])) outputs[i].clear();
      }
      while (outputs.size() > 1 && outputs.back().empty()) outputs.pop_back();
    }
    return Status::Ok();
  }

  // GroupNormalization 18 scales and shifts each group by scale[g], bias[g]; version 21 (ampc's
  // form) takes one value per channel. Each of the num_groups values is repeated C/num_groups
  // times, through Reshape/Expand/Reshape so that a trained scale stays the model's [G] tensor.
  Status GroupNormScalePerChannel(const onnx::NodeProto& node, std::vector<Value*>& inputs) {
    if (inputs.size() != 3 || !inputs[0] || !inputs[1] || !inputs[2]) return Status::Ok();
    const TensorType& x = inputs[0]->type();
    const int64_t groups = [&] {
      for (const auto& a : node.attribute()) {
        if (a.name() == "num_groups") return static_cast<int64_t>(a.i());
      }
      return int64_t{0};
    }();
    if (!x.has_rank || x.rank() < 2 || !x.dims[1].is_static() || groups <= 0 ||
        x.dims[1].value() % groups != 0) {
      return Unimplemented(DescribeProto(node) +
                           ": GroupNormalization version 18 needs a static channel count "
                           "divisible by num_groups (its per-group scale becomes per-channel)");
    }
    const int64_t c = x.dims[1].value();
    auto ints = [&](const std::vector<int64_t>& v) -> StatusOr<Value*> {
      ASSIGN_OR_RETURN(Value * init,
                       g_.AddInitializer(g_.UniqueName(node.name() + "_shape"),
                                         Tensor::FromInt64s(v, {static_cast<int64_t>(v.size())})));
      SetKnownIntsFromInitializer(init);
      return init;
    };
    ASSIGN_OR_RETURN(Value * grouped, ints({groups, 1}));
    ASSIGN_OR_RETURN(Value * repeated, ints({groups, c / groups}));
    ASSIGN_OR_RETURN(Value * channels, ints({c}));
    for (int i : {1, 2}) {
      const std::string stem = node.name() + (i == 1 ? "_scale" : "_bias");
      ASSIGN_OR_RETURN(Value * a, AddHelper("Reshape", stem + "_grouped", {inputs[i], grouped}));
      ASSIGN_OR_RETURN(Value * b, AddHelper("Expand", stem + "_repeated", {a, repeated}));
      ASSIGN_OR_RETURN(inputs[i], AddHelper("Reshape", stem + "_per_channel", {b, channels}));
    }
    return Status::Ok();
  }

  // Adds and infers a node the importer writes in place of part of a model's node.
  StatusOr<Value*> AddHelper(const std::string& op, const std::string& name,
                             std::vector<Value*> inputs, AttributeMap attrs = {}) {
    ASSIGN_OR_RETURN(Node * n,
                     g_.AddNode(op, "", name, inputs, {g_.UniqueName(name)}, std::move(attrs)));
    RETURN_IF_ERROR(InferNode(*n));
    return n->output(0);
  }

  // Softmax/LogSoftmax before opset 13 normalise over the flattened [axis:] block. Where that
  // is not just the last axis, rewrite as Flatten -> Softmax(-1) -> Reshape(original shape).
  StatusOr<bool> RewriteOldSoftmax(const onnx::NodeProto& node, const std::string& op,
                                   const AttributeMap& attrs, const std::vector<Value*>& inputs,
                                   const std::vector<std::string>& outputs) {
    if (opset_ >= 13 || (op != "Softmax" && op != "LogSoftmax") || inputs.size() != 1 ||
        !inputs[0] || outputs.size() != 1) {
      return false;
    }
    Value* x = inputs[0];
    const int64_t axis = attrs.count("axis") ? attrs.at("axis").i() : 1;
    const TensorType& t = x->type();
    if (t.has_rank && (axis == t.rank() - 1 || axis == -1)) return false;
    const std::string& name = node.name();
    auto add = [&](const std::string& o, const std::string& suffix, std::vector<Value*> in,
                   const std::string& out, AttributeMap a) -> StatusOr<Value*> {
      ASSIGN_OR_RETURN(Node * n, g_.AddNode(o, "", name + suffix, in, {out}, std::move(a)));
      RETURN_IF_ERROR(InferNode(*n));
      return n->output(0);
    };
    ASSIGN_OR_RETURN(Value * flat, add("Flatten", "_flatten", {x}, g_.UniqueName(name + "_flat"),
                                       {{"axis", Attribute(axis)}}));
    ASSIGN_OR_RETURN(Value * sm, add(op, "", {flat}, g_.UniqueName(name + "_2d"),
                                     {{"axis", Attribute(int64_t{-1})}}));
    ASSIGN_OR_RETURN(Value * shape,
                     add("Shape", "_shape", {x}, g_.UniqueName(name + "_shape"), {}));
    ASSIGN_OR_RETURN(Value * y, add("Reshape", "_reshape", {sm, shape}, outputs[0], {}));
    RETURN_IF_ERROR(ApplyDeclared(y));
    return true;
  }

  Status AddNode(const onnx::NodeProto& node) {
    if (IsGradientOp(node)) return AddGradientOp(node);
    std::string op = node.op_type();
    const std::string domain = IsDefaultDomain(node.domain()) ? "" : node.domain();
    if (domain.empty() && (op == "SplitToSequence" || op == "SequenceAt")) {
      return AddSequenceOp(node).WithContext(DescribeProto(node));
    }
    if (domain.empty() && op == "InstanceNormalization") {
      return AddInstanceNorm(node).WithContext(DescribeProto(node));
    }
    if (!OpRegistry::Global().Find(domain, op)) {
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
    std::vector<Value*> inputs;
    for (const std::string& in : node.input()) {
      inputs.push_back(in.empty() ? nullptr : g_.FindValue(in));
    }
    std::vector<std::string> outputs(node.output().begin(), node.output().end());
    RETURN_IF_ERROR(Normalise(node, op, attrs, inputs, outputs));
    if (version) RETURN_IF_ERROR(NormaliseNewer(node, version->since, attrs, inputs, outputs));
    ASSIGN_OR_RETURN(bool rewritten, RewriteOldSoftmax(node, op, attrs, inputs, outputs));
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

  // InstanceNormalization is GroupNormalization with one group per channel (version 21's
  // per-channel scale and bias): same statistics, same affine step, so it gets that op's kernel
  // and gradient. torch's exporter writes group_norm this way below opset 21.
  Status AddInstanceNorm(const onnx::NodeProto& node) {
    ASSIGN_OR_RETURN(AttributeMap attrs, ConvertAttributes(node));
    ASSIGN_OR_RETURN(const OnnxOpVersion* version, CheckSchema(node, "", attrs));
    std::vector<Value*> inputs;
    for (const std::string& in : node.input()) {
      inputs.push_back(in.empty() ? nullptr : g_.FindValue(in));
    }
    if (inputs.size() != 3 || !inputs[0] || node.output_size() != 1) {
      return InvalidArgument("InstanceNormalization takes input, scale, B and gives one output");
    }
    const TensorType& x = inputs[0]->type();
    if (!x.has_rank || x.rank() < 3 || !x.dims[1].is_static()) {
      return Unimplemented(
          "InstanceNormalization needs an input of rank >= 3 with a static "
          "channel count");
    }
    attrs["num_groups"] = Attribute(x.dims[1].value());
    ASSIGN_OR_RETURN(Node * n, g_.AddNode("GroupNormalization", "", node.name(), inputs,
                                          {node.output(0)}, std::move(attrs)));
    RETURN_IF_ERROR(InferNode(*n));
    RETURN_IF_ERROR(onnx_check::CheckRequiredAttributes(node, *version));
    return ApplyDeclared(n->output(0));
  }

  // torch's exporter writes split/chunk as SplitToSequence read by SequenceAt at constant
  // positions. ampc has no sequence values: the pair becomes one Split (its parts kept in
  // sequences_) and an Identity of the part each SequenceAt reads.
  Status AddSequenceOp(const onnx::NodeProto& node) {
    ASSIGN_OR_RETURN(AttributeMap attrs, ConvertAttributes(node));
    RETURN_IF_ERROR(CheckSchema(node, "", attrs).status());
    const std::string& name = node.name();
    if (node.op_type() == "SequenceAt") {
      auto it = node.input_size() == 2 ? sequences_.find(node.input(0)) : sequences_.end();
      if (it == sequences_.end())
        return Unimplemented("SequenceAt of a sequence ampc did not make");
      auto pos = infer::KnownStatic(g_.FindValue(node.input(1)));
      const int64_t n = static_cast<int64_t>(it->second.size());
      if (!pos || pos->size() != 1 || (*pos)[0] < -n || (*pos)[0] >= n) {
        return Unimplemented("SequenceAt needs a constant position in [-" + std::to_string(n) +
                             ", " + std::to_string(n) + ")");
      }
      Value* part = it->second[(*pos)[0] < 0 ? (*pos)[0] + n : (*pos)[0]];
      ASSIGN_OR_RETURN(Node * id, g_.AddNode("Identity", "", name, {part}, {node.output(0)}));
      RETURN_IF_ERROR(InferNode(*id));
      return ApplyDeclared(id->output(0));
    }
    const std::string& seq = node.output(0);
    for (const auto& other : graph_proto_->node()) {
      for (int i = 0; i < other.input_size(); ++i) {
        if (other.input(i) == seq && (other.op_type() != "SequenceAt" || i != 0)) {
          return Unimplemented("its sequence output is read by " + DescribeProto(other) +
                               "; ampc has no sequence values (not a tensor), only SequenceAt "
                               "at constant positions");
        }
      }
    }
    for (const auto& o : graph_proto_->output()) {
      if (o.name() == seq) {
        return Unimplemented(
            "its sequence output is a graph output; ampc has no sequence values "
            "(not a tensor)");
      }
    }
    Value* x = g_.FindValue(node.input(0));
    const int64_t axis_attr = attrs.count("axis") ? attrs.at("axis").i() : 0;
    const bool keepdims = !attrs.count("keepdims") || attrs.at("keepdims").i() != 0;
    const TensorType& xt = x->type();
    if (!xt.has_rank) return Unimplemented("SplitToSequence needs an input of known rank");
    ASSIGN_OR_RETURN(int64_t axis, infer::NormalizeAxis(axis_attr, xt.rank()));
    if (!xt.dims[axis].is_static()) {
      return Unimplemented("SplitToSequence needs a static size on axis " + std::to_string(axis));
    }
    const int64_t d = xt.dims[axis].value();
    std::vector<int64_t> sizes;
    const Value* split = node.input_size() > 1 ? g_.FindValue(node.input(1)) : nullptr;
    if (!split) {
      sizes.assign(static_cast<size_t>(d), 1);
    } else {
      auto k = infer::KnownStatic(split);
      if (!k) return Unimplemented("SplitToSequence needs constant split sizes");
      if (split->type().has_rank && split->type().rank() == 0) {  // a chunk size
        if (k->size() != 1 || (*k)[0] <= 0) return InvalidArgument("split must be positive");
        for (int64_t done = 0; done < d; done += (*k)[0])
          sizes.push_back(std::min((*k)[0], d - done));
      } else {
        sizes = *k;
      }
    }
    if (sizes.empty()) return Unimplemented("SplitToSequence of an empty axis");
    ASSIGN_OR_RETURN(
        Value * sizes_init,
        g_.AddInitializer(g_.UniqueName(name + "_sizes"),
                          Tensor::FromInt64s(sizes, {static_cast<int64_t>(sizes.size())})));
    SetKnownIntsFromInitializer(sizes_init);
    std::vector<std::string> outs;
    for (size_t i = 0; i < sizes.size(); ++i) {
      outs.push_back(g_.UniqueName(seq + "_" + std::to_string(i)));
    }
    ASSIGN_OR_RETURN(Node * sp, g_.AddNode("Split", "", name, {x, sizes_init}, outs,
                                           {{"axis", Attribute(axis)}}));
    RETURN_IF_ERROR(InferNode(*sp));
    std::vector<Value*> parts = sp->outputs();
    if (!split && !keepdims) {
      ASSIGN_OR_RETURN(Value * ax, g_.AddInitializer(g_.UniqueName(name + "_axis"),
                                                     Tensor::FromInt64s({axis}, {1})));
      SetKnownIntsFromInitializer(ax);
      for (Value*& p : parts) {
        ASSIGN_OR_RETURN(p, AddHelper("Squeeze", p->name() + "_squeeze", {p, ax}));
      }
    }
    sequences_[seq] = std::move(parts);
    return Status::Ok();
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
  // SplitToSequence outputs -> the parts of the Split that replaced them (AddSequenceOp).
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
