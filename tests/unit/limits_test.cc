// The input limits (ir/limits.h) at each reader: a limit refuses what exceeds it with a message
// naming the limit and its flag, and the same input passes when the limit is one higher. The
// command-line flags and the hostile files are covered by tests/bad_inputs (ctest bad_inputs).
#include "ir/limits.h"

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "frontend/onnx.h"
#include "ir/text.h"
#include "runtime/data/datasets.h"
#include "runtime/npy.h"
#include "tests/unit/onnx_builders.h"
#include "tests/unit/test_util.h"

namespace ampc {
namespace {

using testing::AddNode;
using testing::AddValueInfo;
using testing::EmptyModel;
using testing::Serialize;

// Sets one limit for the test's duration.
class ScopedLimits {
 public:
  explicit ScopedLimits(void (*edit)(InputLimits&)) : saved_(GetInputLimits()) {
    InputLimits l = saved_;
    edit(l);
    SetInputLimits(l);
  }
  ~ScopedLimits() { SetInputLimits(saved_); }

 private:
  InputLimits saved_;
};

// x: f32[2,3] -> `relus` Relu nodes -> y, with a [3] f32 initializer (12 bytes) if `weights`.
std::string ReluChain(int relus, bool weights = false) {
  onnx::ModelProto m = EmptyModel(17);
  auto* g = m.mutable_graph();
  AddValueInfo(g->add_input(), "x", onnx::TensorProto::FLOAT, {2, 3});
  for (int i = 0; i < relus; ++i) {
    AddNode(g, "Relu", {i ? "h" + std::to_string(i - 1) : "x"},
            {i + 1 == relus ? "y" : "h" + std::to_string(i)}, "r" + std::to_string(i));
  }
  if (weights) {
    auto* w = g->add_initializer();
    w->set_name("w");
    w->set_data_type(onnx::TensorProto::FLOAT);
    w->add_dims(3);
    w->set_raw_data(std::string(12, '\0'));
  }
  AddValueInfo(g->add_output(), "y", onnx::TensorProto::FLOAT, {2, 3});
  return Serialize(m);
}

std::string ImportError(const std::string& bytes) {
  auto g = ImportOnnxBytes(bytes, ".", "m.onnx");
  return g.ok() ? "" : g.status().message();
}

TEST(Limits, OnnxNodeCount) {
  const std::string model = ReluChain(3);
  {
    ScopedLimits l([](InputLimits& l) { l.max_nodes = 2; });
    EXPECT_EQ(ImportError(model),
              "m.onnx: the model: 3 nodes exceed the limit of 2 (--max-nodes raises it)");
  }
  ScopedLimits l([](InputLimits& l) { l.max_nodes = 3; });
  EXPECT_EQ(ImportError(model), "");
}

TEST(Limits, OnnxTensorBytesAreTheDeclaredOnes) {
  const std::string model = ReluChain(1, /*weights=*/true);
  {
    ScopedLimits l([](InputLimits& l) { l.max_tensor_bytes = 11; });
    EXPECT_NE(ImportError(model).find("initializer 'w'): 12 bytes of tensor data exceed the limit "
                                      "of 11 (--max-tensor-bytes raises it)"),
              std::string::npos);
  }
  ScopedLimits l([](InputLimits& l) { l.max_tensor_bytes = 12; });
  EXPECT_EQ(ImportError(model), "");
}

TEST(Limits, OnnxDimensionProductOverflow) {
  onnx::ModelProto m;
  m.ParseFromString(ReluChain(1));
  auto* w = m.mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  for (int i = 0; i < 3; ++i) w->add_dims(int64_t{1} << 40);  // 2^120 elements, no data
  EXPECT_NE(ImportError(Serialize(m)).find("its dimensions multiply beyond 2^63 bytes"),
            std::string::npos);
}

TEST(Limits, OnnxNestedGraphsAndStrings) {
  onnx::ModelProto m;
  m.ParseFromString(ReluChain(1));
  onnx::NodeProto* n = m.mutable_graph()->mutable_node(0);
  n->set_name(std::string(300, 'n'));
  for (int depth = 0; depth < 4; ++depth) {  // an If body nested 4 graphs below the main one
    auto* a = n->add_attribute();
    a->set_name("then_branch");
    a->set_type(onnx::AttributeProto::GRAPH);
    n = a->mutable_g()->add_node();
    n->set_op_type("If");
  }
  const std::string model = Serialize(m);
  {
    ScopedLimits l([](InputLimits& l) { l.max_nesting = 4; });
    EXPECT_NE(ImportError(model).find("5 levels of nesting exceed the limit of 4 (--max-nesting"),
              std::string::npos);
  }
  ScopedLimits l([](InputLimits& l) { l.max_string_bytes = 299; });
  EXPECT_NE(ImportError(model).find("300 bytes in one string exceed the limit of 299"),
            std::string::npos);
}

TEST(Limits, TextualIr) {
  const std::string text =
      "graph \"g\" opsets {\"\": 17} {\n  input %x: f32[2,3]\n"
      "  init %w: f32[1024,1024] = elided\n"
      "  %y: f32[2,3] = Relu(%x) name=\"relu\"\n  %z: f32[2,3] = Relu(%y)\n  output %z\n}\n";
  {
    ScopedLimits l([](InputLimits& l) { l.max_nodes = 1; });
    auto g = ParseGraph(text);
    ASSERT_FALSE(g.ok());
    EXPECT_NE(g.status().message().find("2 nodes exceed the limit of 1"), std::string::npos);
  }
  {
    ScopedLimits l([](InputLimits& l) { l.max_tensor_bytes = (4 << 20) - 1; });
    auto g = ParseGraph(text);
    ASSERT_FALSE(g.ok());
    EXPECT_NE(g.status().message().find("4194304 bytes of tensor data exceed"), std::string::npos);
  }
  EXPECT_TRUE(ParseGraph(text).ok());
}

TEST(Limits, Npy) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  header += std::string(117 - header.size() - 10, ' ') + "\n";
  const std::string npy = std::string("\x93NUMPY\x01\x00", 8) +
                          std::string(1, static_cast<char>(header.size())) + '\0' + header +
                          std::string(24, '\0');
  {
    ScopedLimits l([](InputLimits& l) { l.max_tensor_bytes = 23; });
    auto t = ParseNpy(npy, "x.npy");
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().message(),
              "x.npy: 24 bytes of tensor data exceed the limit of 23 (--max-tensor-bytes raises "
              "it)");
  }
  auto t = ParseNpy(npy, "x.npy");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->dims(), (std::vector<int64_t>{2, 3}));
}

TEST(Limits, SizeArithmetic) {
  int64_t r = 0;
  EXPECT_TRUE(MulSize(int64_t{1} << 31, int64_t{1} << 31, &r));
  EXPECT_EQ(r, int64_t{1} << 62);
  EXPECT_FALSE(MulSize(int64_t{1} << 32, int64_t{1} << 31, &r));
  EXPECT_FALSE(MulSize(-1, 2, &r));
  EXPECT_FALSE(AddSize(INT64_MAX, 1, &r));
}

}  // namespace
}  // namespace ampc
