// Small builders for hand-made ONNX models in tests (ONNX's own protobuf classes).
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

namespace ampc::testing {

inline void AddValueInfo(onnx::ValueInfoProto* vi, const std::string& name, int elem,
                         std::vector<int64_t> dims) {
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* shape = tt->mutable_shape();
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

inline onnx::NodeProto* AddNode(onnx::GraphProto* g, const std::string& op,
                                std::vector<std::string> in, std::vector<std::string> out,
                                const std::string& name) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (auto& s : in) n->add_input(s);
  for (auto& s : out) n->add_output(s);
  return n;
}

// A model with one ai.onnx opset import and an empty graph named "g".
inline onnx::ModelProto EmptyModel(int64_t opset) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* os = m.add_opset_import();
  os->set_domain("");
  os->set_version(opset);
  m.mutable_graph()->set_name("g");
  return m;
}

inline std::string Serialize(const onnx::ModelProto& m) {
  std::string s;
  m.SerializeToString(&s);
  return s;
}

}  // namespace ampc::testing
