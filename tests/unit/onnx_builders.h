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

inline void AddTensor(onnx::TensorProto* t, const std::string& name, std::vector<int64_t> dims,
                      const std::vector<double>& v) {
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::DOUBLE);
  for (int64_t d : dims) t->add_dims(d);
  for (double x : v) t->add_double_data(x);
}

// A float64 (or int64) initializer of graph g.
inline void AddInitializerF64(onnx::GraphProto* g, const std::string& name,
                              std::vector<int64_t> dims, const std::vector<double>& v) {
  AddTensor(g->add_initializer(), name, std::move(dims), v);
}
inline void AddInitializerI64(onnx::GraphProto* g, const std::string& name,
                              std::vector<int64_t> dims, const std::vector<int64_t>& v) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : dims) t->add_dims(d);
  for (int64_t x : v) t->add_int64_data(x);
}

inline void SetStringsAttr(onnx::NodeProto* n, const std::string& name,
                           const std::vector<std::string>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRINGS);
  for (const auto& s : v) a->add_strings(s);
}
inline void SetStringAttr(onnx::NodeProto* n, const std::string& name, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}

// key <- value in a TrainingInfoProto binding list.
inline void AddBinding(google::protobuf::RepeatedPtrField<onnx::StringStringEntryProto>* list,
                       const std::string& key, const std::string& value) {
  auto* b = list->Add();
  b->set_key(key);
  b->set_value(value);
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
