// ONNX export: Graph -> ModelProto (ai.onnx opset 17, IR version 8, raw_data tensors, a
// value_info entry for every intermediate value so viewers such as Netron show shapes).
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>

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
    case AttrKind::kInt: p->set_type(AP::INT); p->set_i(a.i()); break;
    case AttrKind::kFloat: p->set_type(AP::FLOAT); p->set_f(a.f()); break;
    case AttrKind::kString: p->set_type(AP::STRING); p->set_s(a.s()); break;
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
  for (const Node* n : g.nodes()) {
    auto* np = gp->add_node();
    np->set_op_type(n->op_type());
    np->set_domain(n->domain());
    np->set_name(n->name());
    for (const Value* in : n->inputs()) np->add_input(in ? in->name() : "");
    for (const Value* out : n->outputs()) {
      np->add_output(out ? out->name() : "");
      if (out && std::find(graph_outputs.begin(), graph_outputs.end(), out) == graph_outputs.end()) {
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
