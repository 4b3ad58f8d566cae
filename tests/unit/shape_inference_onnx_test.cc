// Unit tests for type and shape inference (ir/ops/*.cc).
//
// Every expected shape below was derived by hand from the ONNX operator specification
// (opset 17 semantics), not by running ampc: e.g. Conv output = floor((in + pad_begin + pad_end
// - ((k - 1) * dilation + 1)) / stride) + 1. The ShapeInferenceOnnx tests at the end also check
// a set of static-shape cases against ONNX's own shape inference (onnx 1.12).
//
// One deliberate difference from onnx 1.12: with ceil_mode=1 a pooling window that would start
// in the right padding is dropped (the rule of PyTorch and onnxruntime, since clarified in the
// ONNX spec), see ShapeInference.MaxPoolCeilMode.
//
// This file: cross-check against ONNX 1.12 shape inference.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include "tests/unit/shape_inference_fixture.h"

namespace ampc {
namespace {

using namespace testing_shapes;  // NOLINT: test helpers

// ---------------------------------------------------------------------------------------------
// Cross-check against ONNX's own shape inference (static shapes only).
// ---------------------------------------------------------------------------------------------

struct XCase {
  std::string op;
  std::vector<std::vector<int64_t>> float_inputs;  // shapes of f32 inputs, in order
  std::vector<std::vector<int64_t>> int_inputs;    // then 1-D i64 constant inputs
  AttributeMap attrs;
  int outputs = 1;
};

std::string OnnxInferred(const XCase& c) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(17);
  onnx::GraphProto* g = m.mutable_graph();
  g->set_name("x");
  onnx::NodeProto* n = g->add_node();
  n->set_op_type(c.op);
  int k = 0;
  for (const auto& shape : c.float_inputs) {
    onnx::ValueInfoProto* vi = g->add_input();
    vi->set_name("f" + std::to_string(k));
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : shape) tt->mutable_shape()->add_dim()->set_dim_value(d);
    n->add_input("f" + std::to_string(k++));
  }
  for (const auto& vals : c.int_inputs) {
    onnx::TensorProto* t = g->add_initializer();
    t->set_name("i" + std::to_string(k));
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(vals.size()));
    for (int64_t v : vals) t->add_int64_data(v);
    n->add_input("i" + std::to_string(k++));
  }
  for (int i = 0; i < c.outputs; ++i) n->add_output("y" + std::to_string(i));
  for (const auto& [key, a] : c.attrs) {
    onnx::AttributeProto* p = n->add_attribute();
    p->set_name(key);
    switch (a.kind()) {
      case AttrKind::kInt:
        p->set_type(onnx::AttributeProto::INT);
        p->set_i(a.i());
        break;
      case AttrKind::kFloat:
        p->set_type(onnx::AttributeProto::FLOAT);
        p->set_f(a.f());
        break;
      case AttrKind::kString:
        p->set_type(onnx::AttributeProto::STRING);
        p->set_s(a.s());
        break;
      case AttrKind::kInts:
        p->set_type(onnx::AttributeProto::INTS);
        for (int64_t v : a.ints()) p->add_ints(v);
        break;
      default:
        return "unsupported attribute";
    }
  }
  onnx::shape_inference::InferShapes(m);
  std::string out;
  for (const auto& vi : m.graph().value_info()) {
    if (vi.name() != "y0") continue;
    out = "f32[";
    const auto& dims = vi.type().tensor_type().shape().dim();
    for (int i = 0; i < dims.size(); ++i) {
      out += (i ? "," : "") + (dims[i].has_dim_value() ? std::to_string(dims[i].dim_value()) : "?");
    }
    out += "]";
  }
  return out;
}

std::string AmpcInferred(const XCase& c) {
  Graph g;
  std::vector<Value*> ins;
  int k = 0;
  for (const auto& shape : c.float_inputs) {
    ins.push_back(*g.AddInput("f" + std::to_string(k++), F32({shape.begin(), shape.end()})));
  }
  for (const auto& vals : c.int_inputs) {
    Value* v = *g.AddInitializer("i" + std::to_string(k++),
                                 Tensor::FromInt64s(vals, {static_cast<int64_t>(vals.size())}));
    v->set_known_ints(std::vector<Dim>(vals.begin(), vals.end()));
    ins.push_back(v);
  }
  std::vector<std::string> outs;
  for (int i = 0; i < c.outputs; ++i) outs.push_back("y" + std::to_string(i));
  Node* n = *g.AddNode(c.op, "", "n", ins, outs, c.attrs);
  Status st = InferNode(*n);
  return st.ok() ? n->output(0)->type().ToString() : "error: " + st.message();
}

TEST(ShapeInferenceOnnx, MatchesOnnxOnStaticShapes) {
  using V = std::vector<int64_t>;
  const int64_t kMax = INT64_MAX;
  std::vector<XCase> cases = {
      {"Conv",
       {{1, 3, 224, 224}, {64, 3, 7, 7}},
       {},
       A({{"pads", V{3, 3, 3, 3}}, {"strides", V{2, 2}}})},
      {"Conv",
       {{1, 32, 17, 13}, {32, 1, 3, 3}},
       {},
       A({{"group", int64_t{32}}, {"dilations", V{2, 1}}, {"pads", V{1, 0, 2, 1}}})},
      {"Conv",
       {{1, 3, 15, 15}, {4, 3, 3, 3}},
       {},
       A({{"auto_pad", std::string("SAME_UPPER")}, {"strides", V{2, 2}}})},
      {"ConvTranspose",
       {{1, 16, 14, 14}, {16, 8, 4, 4}},
       {},
       A({{"strides", V{2, 2}}, {"pads", V{1, 1, 1, 1}}})},
      {"MaxPool",
       {{1, 64, 112, 112}},
       {},
       A({{"kernel_shape", V{3, 3}}, {"strides", V{2, 2}}, {"pads", V{1, 1, 1, 1}}})},
      {"MaxPool",
       {{1, 1, 5, 5}},
       {},
       A({{"kernel_shape", V{2, 2}}, {"strides", V{2, 2}}, {"ceil_mode", int64_t{1}}})},
      {"AveragePool", {{1, 8, 7, 7}}, {}, A({{"kernel_shape", V{2, 2}}, {"strides", V{2, 2}}})},
      {"GlobalAveragePool", {{2, 512, 7, 7}}, {}, {}},
      {"Gemm", {{4, 784}, {512, 784}, {512}}, {}, A({{"transB", int64_t{1}}})},
      {"MatMul", {{3, 1, 5, 4}, {2, 4, 6}}, {}, {}},
      {"MatMul", {{4}, {2, 4, 6}}, {}, {}},
      {"Reshape", {{2, 3, 4}}, {{0, -1}}, {}},
      {"Reshape", {{2, 3, 4}}, {{4, -1, 3}}, {}},
      {"Slice", {{10, 20}}, {{-3, 1}, {kMax, 19}, {0, 1}, {1, 5}}, {}},
      {"Slice", {{10, 20}}, {{-1}, {INT64_MIN}, {1}, {-2}}, {}},
      {"Split", {{2, 9}}, {{2, 7}}, A({{"axis", int64_t{1}}}), 2},
      {"Transpose", {{2, 3, 4, 5}}, {}, A({{"perm", V{0, 2, 3, 1}}})},
      {"Concat", {{2, 3}, {2, 5}}, {}, A({{"axis", int64_t{-1}}})},
      {"Unsqueeze", {{3, 4}}, {{0, 3}}, {}},
      {"Squeeze", {{1, 3, 1, 4}}, {{0, 2}}, {}},
      {"Flatten", {{2, 3, 4, 5}}, {}, A({{"axis", int64_t{3}}})},
      {"Tile", {{2, 3}}, {{3, 2}}, {}},
      {"Expand", {{3, 1}}, {{2, 1, 4}}, {}},
      {"Pad", {{1, 3, 4, 4}}, {{0, 0, 1, 2, 0, 0, 3, 4}}, {}},
      {"ReduceSum", {{2, 3, 4}}, {{1}}, A({{"keepdims", int64_t{0}}})},
      {"ReduceMean", {{2, 3, 4}}, {}, A({{"axes", V{-1}}})},
      {"LayerNormalization", {{2, 5, 8}, {8}, {8}}, {}, A({{"axis", int64_t{-1}}})},
      {"BatchNormalization", {{2, 4, 5, 5}, {4}, {4}, {4}, {4}}, {}, {}},
      {"Softmax", {{2, 10}}, {}, {}},
      {"Add", {{2, 1, 4}, {3, 1}}, {}, {}},
  };
  for (const XCase& c : cases) {
    EXPECT_EQ(AmpcInferred(c), OnnxInferred(c)) << c.op;
  }
}

}  // namespace
}  // namespace ampc
