// ONNX export: Graph -> ModelProto (raw_data tensors, a value_info entry for every intermediate
// value so viewers such as Netron show shapes). The ai.onnx opset is the graph's own (17 for
// models up to opset 17) or the oldest that has every op in ampc's form, whichever is newer;
// nodes are written in that opset's form (Reduce* axes as attribute before 18, as input from
// 18; Split's num_outputs from 18; GroupNormalization with one group per channel as
// InstanceNormalization before 21). Up to opset 17, ONNX 1.12's checker checks the result;
// newer models are checked by importing them back.
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <set>

#include "frontend/onnx.h"
#include "frontend/onnx_tensor.h"
#include "ir/file_io.h"
#include "ir/op_registry.h"
#include "ir/ops/infer_util.h"
#include "ir/ops/onnx_versions.h"

namespace ampc {
namespace {

Status AttributeToProto(const std::string& name, const Attribute& a, onnx::AttributeProto* p,
                        const std::string& where) {
  using AP = onnx::AttributeProto;
  p->set_name(name);
  switch (a.kind()) {
    case AttrKind::kInt:
      p->set_type(AP::INT);
      p->set_i(a.i());
      break;
    case AttrKind::kFloat:
      p->set_type(AP::FLOAT);
      p->set_f(a.f());
      break;
    case AttrKind::kString:
      p->set_type(AP::STRING);
      p->set_s(a.s());
      break;
    case AttrKind::kInts:
      p->set_type(AP::INTS);
      for (int64_t v : a.ints()) p->add_ints(v);
      break;
    case AttrKind::kFloats:
      p->set_type(AP::FLOATS);
      for (float v : a.floats()) p->add_floats(v);
      break;
    case AttrKind::kStrings:
      p->set_type(AP::STRINGS);
      for (const auto& v : a.strings()) p->add_strings(v);
      break;
    case AttrKind::kTensor:
      if (a.t().elided()) {
        return InvalidArgument(where + ": attribute '" + name + "' holds elided data");
      }
      p->set_type(AP::TENSOR);
      onnx_conv::TensorToProto(a.t(), p->mutable_t());
      break;
  }
  return Status::Ok();
}

void ValueInfo(const Value* v, onnx::ValueInfoProto* p) {
  p->set_name(v->name());
  onnx_conv::TypeToProto(v->type(), p->mutable_type());
}

bool IsReduceWithAxesAttribute(const std::string& op) {  // before opset 18 (ReduceSum: 13)
  return op.rfind("Reduce", 0) == 0 && op != "ReduceSum";
}

// The oldest ai.onnx opset whose version of n's op has ampc's form of it.
int64_t MinOpset(const Node& n) {
  if (!n.domain().empty()) return 0;
  const std::string& op = n.op_type();
  if (op == "GroupNormalization") {  // per-channel scale and bias; one group per channel is
    const TensorType& x = n.input(0)->type();  // InstanceNormalization, at any opset
    const bool per_channel = x.has_rank && x.rank() >= 3 && x.dims[1].is_static() &&
                             n.attr_int("num_groups", 0) == x.dims[1].value();
    return per_channel ? 0 : 21;
  }
  if (op == "Split" && n.attr("num_outputs")) return 18;
  if (op == "Pad" && n.attr_string("mode", "constant") == "wrap") return 19;
  if (op == "AveragePool" && n.attr("dilations")) return 19;
  if (IsReduceWithAxesAttribute(op) && n.input(1) && !infer::KnownStatic(n.input(1))) return 18;
  const OnnxOpSchema* s = FindOnnxOpSchema("", op);
  return s ? s->versions.front().since : 0;
}

// The IR version released with each opset (ONNX's VERSION_TABLE), so that readers as old as
// that opset can open the file.
int64_t IrVersionFor(int64_t opset) {
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

// Writes node n in the form of ai.onnx `opset` where ampc's form differs.
Status WriteNodeForOpset(const Node& n, int64_t opset, onnx::NodeProto* np, onnx::GraphProto* gp,
                         std::set<std::string>& names) {
  const std::string& op = n.op_type();
  if (!n.domain().empty()) return Status::Ok();
  if (IsReduceWithAxesAttribute(op) && opset < 18 && n.input(1)) {
    auto axes = infer::KnownStatic(n.input(1));
    if (!axes) return Internal(n.Describe() + ": axes are not constant");
    np->mutable_input()->DeleteSubrange(1, np->input_size() - 1);
    auto* a = np->add_attribute();
    a->set_name("axes");
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : *axes) a->add_ints(v);
  }
  if (IsReduceWithAxesAttribute(op) && opset >= 18 && n.attr("axes")) {
    std::string name = n.name() + "_axes";
    while (!names.insert(name).second) name += "_";
    const std::vector<int64_t> axes = n.attr_ints("axes");
    onnx_conv::TensorToProto(Tensor::FromInt64s(axes, {static_cast<int64_t>(axes.size())}),
                             gp->add_initializer());
    gp->mutable_initializer(gp->initializer_size() - 1)->set_name(name);
    while (np->input_size() < 1) np->add_input("");
    np->mutable_input()->DeleteSubrange(1, np->input_size() - 1);
    np->add_input(name);
    for (int i = 0; i < np->attribute_size(); ++i) {
      if (np->attribute(i).name() == "axes") np->mutable_attribute()->DeleteSubrange(i, 1);
    }
  }
  if (op == "GroupNormalization" && opset < 21) {  // one group per channel (MinOpset)
    np->set_op_type("InstanceNormalization");
    for (int i = np->attribute_size() - 1; i >= 0; --i) {
      if (np->attribute(i).name() != "epsilon") np->mutable_attribute()->DeleteSubrange(i, 1);
    }
  }
  if (op == "Split" && opset >= 18 && !n.input(1) && !n.attr("num_outputs")) {
    auto* a = np->add_attribute();
    a->set_name("num_outputs");
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(n.num_outputs());
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::string> ExportOnnxBytes(const Graph& g) {
  int64_t opset = g.opsets().count("") ? g.opsets().at("") : kCanonicalOnnxOpset;
  opset = std::max(opset, kCanonicalOnnxOpset);
  for (const Node* n : g.nodes()) opset = std::max(opset, MinOpset(*n));
  if (opset > kMaxOnnxOpset) {
    return Internal("the graph needs ai.onnx opset " + std::to_string(opset) +
                    ", newer than ampc writes (" + std::to_string(kMaxOnnxOpset) + ")");
  }
  onnx::ModelProto m;
  m.set_ir_version(IrVersionFor(opset));
  m.set_producer_name("ampc");
  m.set_producer_version("0.1.0");
  for (const auto& [domain, version] : g.opsets()) {
    auto* os = m.add_opset_import();
    os->set_domain(domain);
    os->set_version(domain.empty() ? opset : version);
  }
  if (!g.opsets().count("")) {
    auto* os = m.add_opset_import();
    os->set_domain("");
    os->set_version(opset);
  }
  std::set<std::string> names;  // value names, for initializers the opset's forms add
  for (const Value* v : g.inputs()) names.insert(v->name());
  for (const Value* v : g.initializers()) names.insert(v->name());
  for (const Node* n : g.nodes()) {
    for (const Value* o : n->outputs()) {
      if (o) names.insert(o->name());
    }
  }
  // Domains used by nodes but not declared (com.ampc ops added by the training builder).
  std::set<std::string> declared;
  for (const auto& os : m.opset_import()) declared.insert(os.domain());
  for (const Node* n : g.nodes()) {
    if (declared.insert(n->domain()).second) {
      auto* os = m.add_opset_import();
      os->set_domain(n->domain());
      os->set_version(1);
    }
  }
  onnx::GraphProto* gp = m.mutable_graph();
  gp->set_name(g.name().empty() ? "ampc_graph" : g.name());
  for (const Value* v : g.inputs()) ValueInfo(v, gp->add_input());
  for (const Value* v : g.initializers()) {
    const Tensor* t = v->initializer();
    if (t->elided()) {
      return InvalidArgument("initializer '" + v->name() +
                             "' has elided data (a graph parsed from an abbreviated text dump)");
    }
    auto* tp = gp->add_initializer();
    tp->set_name(v->name());
    onnx_conv::TensorToProto(*t, tp);
  }
  std::vector<const Value*> graph_outputs(g.outputs().begin(), g.outputs().end());
  // Training state: each update's new value becomes a graph output (so the update computation
  // is part of the model) and the binding is recorded in the model's metadata.
  for (const StateUpdate& u : g.state_updates()) {
    if (std::find(graph_outputs.begin(), graph_outputs.end(), u.next) == graph_outputs.end() &&
        u.next->kind() == ValueKind::kNodeOutput) {
      graph_outputs.push_back(u.next);
    }
    auto* md = m.add_metadata_props();
    md->set_key("ampc.state_update." + u.state->name());
    md->set_value(u.next->name());
  }
  for (const Node* n : g.nodes()) {
    auto* np = gp->add_node();
    np->set_op_type(n->op_type());
    np->set_domain(n->domain());
    np->set_name(n->name());
    std::string doc;
    for (const auto& [k, v] : n->annotations()) doc += (doc.empty() ? "" : "; ") + k + "=" + v;
    if (!doc.empty()) np->set_doc_string(doc);
    for (const Value* in : n->inputs()) np->add_input(in ? in->name() : "");
    for (const Value* out : n->outputs()) {
      np->add_output(out ? out->name() : "");
      if (out &&
          std::find(graph_outputs.begin(), graph_outputs.end(), out) == graph_outputs.end()) {
        ValueInfo(out, gp->add_value_info());
      }
    }
    for (const auto& [key, a] : n->attrs()) {
      RETURN_IF_ERROR(AttributeToProto(key, a, np->add_attribute(), n->Describe()));
    }
    RETURN_IF_ERROR(WriteNodeForOpset(*n, opset, np, gp, names));
  }
  for (const Value* v : graph_outputs) ValueInfo(v, gp->add_output());
  if (opset <= kMaxCheckerOpset) {
    try {
      onnx::checker::check_model(m);
    } catch (const std::exception& e) {
      return Internal(std::string("the exported model fails the ONNX checker: ") + e.what());
    }
  }
  std::string bytes;
  if (!m.SerializeToString(&bytes)) {
    return Internal("the exported model is too large for protobuf (over 2 GiB)");
  }
  if (opset > kMaxCheckerOpset) {
    // ONNX 1.12's checker does not know this opset: ampc's own importer (version, attribute,
    // type and shape checks) reads the model back instead.
    ImportOptions no_checker;
    no_checker.run_onnx_checker = false;
    auto back = ImportOnnxBytes(bytes, ".", "the exported model", no_checker);
    if (!back.ok()) return Internal("export failed its own import: " + back.status().message());
  }
  return bytes;
}

Status ExportOnnxFile(const Graph& g, const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ExportOnnxBytes(g));
  return WriteFileAtomically(path, bytes);
}

}  // namespace ampc
