// ONNX export: Graph -> ModelProto (ai.onnx opset 17, IR version 8, raw_data tensors, a
// value_info entry for every intermediate value so viewers such as Netron show shapes).
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <set>

#include "frontend/onnx.h"
#include "frontend/onnx_tensor.h"
#include "ir/file_io.h"

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

}  // namespace

StatusOr<std::string> ExportOnnxBytes(const Graph& g) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("ampc");
  m.set_producer_version("0.1.0");
  for (const auto& [domain, version] : g.opsets()) {
    auto* os = m.add_opset_import();
    os->set_domain(domain);
    os->set_version(domain.empty() ? kMaxOnnxOpset : version);
  }
  if (!g.opsets().count("")) {
    auto* os = m.add_opset_import();
    os->set_domain("");
    os->set_version(kMaxOnnxOpset);
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
  }
  for (const Value* v : graph_outputs) ValueInfo(v, gp->add_output());
  try {
    onnx::checker::check_model(m);
  } catch (const std::exception& e) {
    return Internal(std::string("the exported model fails the ONNX checker: ") + e.what());
  }
  std::string bytes;
  if (!m.SerializeToString(&bytes)) {
    return Internal("the exported model is too large for protobuf (over 2 GiB)");
  }
  return bytes;
}

Status ExportOnnxFile(const Graph& g, const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ExportOnnxBytes(g));
  return WriteFileAtomically(path, bytes);
}

}  // namespace ampc
