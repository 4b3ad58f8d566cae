// Import, export and text round trips over every fixture model, checked against ONNX's own
// shape inference, plus a no-crash sweep over the ONNX backend test models.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <filesystem>

#include "frontend/onnx.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "tests/unit/onnx_builders.h"
#include "tests/unit/test_util.h"

namespace ampc {
namespace {

using testing::Fixture;
using testing::ReadBytes;
using testing::TempDir;

std::vector<std::string> SmallFixtures() {
  return {"mlp_opset13.onnx",         "mlp_opset17.onnx",         "cnn_opset13.onnx",
          "cnn_opset17.onnx",         "cnn_train_opset13.onnx",   "cnn_train_opset17.onnx",
          "cnn_bn_eval_opset17.onnx", "transformer_opset11.onnx", "transformer_opset13.onnx",
          "transformer_opset17.onnx", "legacy_ops_opset11.onnx",  "extdata/model.onnx"};
}

std::vector<std::string> AllFixturePaths() {
  std::vector<std::string> out;
  for (const auto& f : SmallFixtures()) out.push_back(Fixture(f));
  // Exported at test time by the generate_big_fixtures ctest fixture (tools/gen_fixtures.py).
  for (const char* m : {"resnet18", "mobilenet_v2"}) {
    for (int opset : {13, 17}) {
      out.push_back(std::string(AMPC_GEN_DIR) + "/" + m + "_opset" + std::to_string(opset) +
                    ".onnx");
    }
  }
  return out;
}

class FixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureTest, ImportsAndVerifies) {
  auto g = ImportOnnxFile(GetParam());
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_GT((*g)->num_nodes(), 0);
  EXPECT_TRUE(Verify(**g).ok());
  for (const Value* out : (*g)->outputs()) {
    EXPECT_TRUE(out->type().has_rank) << out->name();
    EXPECT_EQ(out->dtype(), DType::kFloat32) << out->name();
  }
}

TEST_P(FixtureTest, TextRoundTripIsIdentity) {
  auto g = ImportOnnxFile(GetParam());
  ASSERT_TRUE(g.ok()) << g.status().message();
  const std::string text = PrintGraph(**g);
  auto parsed = ParseGraph(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(PrintGraph(**parsed), text);
}

TEST_P(FixtureTest, ExportRoundTripIsStructurallyIdentical) {
  auto g = ImportOnnxFile(GetParam());
  ASSERT_TRUE(g.ok()) << g.status().message();
  TempDir dir;
  const std::string path = dir / "exported.onnx";
  ASSERT_TRUE(ExportOnnxFile(**g, path).ok());
  auto again = ImportOnnxFile(path);
  ASSERT_TRUE(again.ok()) << again.status().message();
  PrintOptions all;
  all.max_inline_elements = INT64_MAX;  // compare every weight, not only the small ones
  EXPECT_EQ(PrintGraph(**again, all), PrintGraph(**g, all));
}

// Our inferred types against ONNX's shape inference wherever ONNX gives a dimension value.
TEST_P(FixtureTest, ShapesAgreeWithOnnxShapeInference) {
  if (GetParam().find("legacy_ops") != std::string::npos) GTEST_SKIP() << "covered by LegacyOps";
  auto g = ImportOnnxFile(GetParam());
  ASSERT_TRUE(g.ok()) << g.status().message();
  onnx::ModelProto m;
  const std::string bytes = ReadBytes(GetParam());
  ASSERT_TRUE(m.ParseFromString(bytes));
  m.mutable_graph()->clear_value_info();
  onnx::shape_inference::InferShapes(m);
  int compared = 0;
  std::vector<onnx::ValueInfoProto> infos(m.graph().value_info().begin(),
                                          m.graph().value_info().end());
  infos.insert(infos.end(), m.graph().output().begin(), m.graph().output().end());
  for (const auto& vi : infos) {
    const Value* v = (*g)->FindValue(vi.name());
    if (!v || !vi.type().tensor_type().has_shape()) continue;
    const auto& dims = vi.type().tensor_type().shape().dim();
    ASSERT_TRUE(v->type().has_rank) << vi.name();
    ASSERT_EQ(v->type().rank(), dims.size()) << vi.name() << " ours " << v->type().ToString();
    for (int i = 0; i < dims.size(); ++i) {
      if (!dims[i].has_dim_value()) continue;
      ASSERT_TRUE(v->type().dims[i].is_static()) << vi.name() << " ours " << v->type().ToString();
      EXPECT_EQ(v->type().dims[i].value(), dims[i].dim_value()) << vi.name();
      ++compared;
    }
  }
  EXPECT_GT(compared, 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureTest, ::testing::ValuesIn(AllFixturePaths()),
                         [](const auto& info) {
                           std::string n = std::filesystem::path(info.param).stem().string();
                           if (info.param.find("extdata") != std::string::npos) n = "extdata";
                           for (char& c : n) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

TEST(Import, ExternalDataIsRead) {
  auto g = ImportOnnxFile(Fixture("extdata/model.onnx"));
  ASSERT_TRUE(g.ok()) << g.status().message();
  const Value* w = (*g)->FindValue("w");
  ASSERT_NE(w, nullptr);
  auto values = w->initializer()->AsDoubles();
  ASSERT_TRUE(values.has_value());
  ASSERT_EQ(values->size(), 12u);
  for (int i = 0; i < 12; ++i) EXPECT_EQ((*values)[i], i);  // np.arange(12) in gen_fixtures.py
  EXPECT_EQ((*g)->outputs()[0]->type().ToString(), "f32[2,4]");
}

TEST(Import, LegacyOpsAreNormalisedToOpset17Form) {
  auto g = ImportOnnxFile(Fixture("legacy_ops_opset11.onnx"));
  ASSERT_TRUE(g.ok()) << g.status().message();
  for (const Node* n : (*g)->nodes()) {
    const std::string& op = n->op_type();
    if (op == "Split" || op == "Squeeze" || op == "Unsqueeze" || op == "ReduceSum") {
      EXPECT_EQ(n->attr(op == "Split" ? "split" : "axes"), nullptr) << op;
      ASSERT_GE(n->num_inputs(), 2) << op;
      EXPECT_EQ(n->input(1)->kind(), ValueKind::kInitializer) << op;
    }
  }
  EXPECT_EQ((*g)->opsets().at(""), 17);
  // The exported model must be valid opset 17 and import again.
  auto bytes = ExportOnnxBytes(**g);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  auto again = ImportOnnxBytes(*bytes, "", "exported");
  ASSERT_TRUE(again.ok()) << again.status().message();
  // ONNX's shape inference on the original opset-11 model agrees on every output.
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(ReadBytes(Fixture("legacy_ops_opset11.onnx"))));
  onnx::shape_inference::InferShapes(m);
  for (const auto& vi : m.graph().value_info()) {
    const Value* v = (*g)->FindValue(vi.name());
    ASSERT_NE(v, nullptr) << vi.name();
    const auto& dims = vi.type().tensor_type().shape().dim();
    ASSERT_EQ(v->type().rank(), dims.size()) << vi.name();
    for (int i = 0; i < dims.size(); ++i) EXPECT_EQ(v->type().dims[i].value(), dims[i].dim_value());
  }
}

TEST(Import, SymbolicDimsFlowThroughTheTransformer) {
  auto g = ImportOnnxFile(Fixture("transformer_opset17.onnx"));
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ((*g)->inputs()[0]->type().ToString(), "i64[batch,seq]");
  EXPECT_EQ((*g)->outputs()[0]->type().ToString(), "f32[batch,seq,64]");
  int reshapes = 0;
  for (const Node* n : (*g)->nodes()) {
    if (n->op_type() != "Reshape") continue;
    ++reshapes;
    const TensorType& t = n->output(0)->type();
    ASSERT_TRUE(t.has_rank) << n->name();
    for (const Dim& d : t.dims) EXPECT_FALSE(d.is_unknown()) << n->name() << " " << t.ToString();
  }
  EXPECT_GT(reshapes, 0);
}

const Node* FindOp(const Graph& g, const std::string& op) {
  for (const Node* n : g.nodes()) {
    if (n->op_type() == op) return n;
  }
  return nullptr;
}

// Softmax before opset 13 normalises over the flattened [axis:] block; over a non-last axis
// that becomes Flatten -> Softmax(-1) -> Reshape back (semantics from the ONNX operator docs).
TEST(Import, OldSoftmaxOverANonLastAxisIsRewritten) {
  auto m = testing::EmptyModel(11);
  auto* g = m.mutable_graph();
  testing::AddValueInfo(g->add_input(), "x", onnx::TensorProto::FLOAT, {2, 3, 4});
  auto* sm = testing::AddNode(g, "Softmax", {"x"}, {"y"}, "sm");
  auto* axis = sm->add_attribute();
  axis->set_name("axis");
  axis->set_type(onnx::AttributeProto::INT);
  axis->set_i(1);
  testing::AddValueInfo(g->add_output(), "y", onnx::TensorProto::FLOAT, {2, 3, 4});
  auto graph = ImportOnnxBytes(testing::Serialize(m), "", "softmax11");
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  const Node* flat = FindOp(**graph, "Flatten");
  ASSERT_NE(flat, nullptr);
  EXPECT_EQ(flat->attr_int("axis", 0), 1);
  EXPECT_EQ(flat->output(0)->type().ToString(), "f32[2,12]");
  const Node* soft = FindOp(**graph, "Softmax");
  ASSERT_NE(soft, nullptr);
  EXPECT_EQ(soft->attr_int("axis", 0), -1);
  EXPECT_EQ((*graph)->outputs()[0]->producer()->op_type(), "Reshape");
  EXPECT_EQ((*graph)->outputs()[0]->type().ToString(), "f32[2,3,4]");

  // Over the last axis the old and new semantics agree: no rewrite.
  axis->set_i(2);
  graph = ImportOnnxBytes(testing::Serialize(m), "", "softmax11");
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  EXPECT_EQ((*graph)->num_nodes(), 1);
}

// Dropout before opset 12 had `ratio` as an attribute; opset 12 made it an input.
TEST(Import, OldDropoutRatioBecomesAnInput) {
  auto m = testing::EmptyModel(11);
  auto* g = m.mutable_graph();
  testing::AddValueInfo(g->add_input(), "x", onnx::TensorProto::FLOAT, {4});
  auto* d = testing::AddNode(g, "Dropout", {"x"}, {"y", "mask"}, "drop");
  auto* ratio = d->add_attribute();
  ratio->set_name("ratio");
  ratio->set_type(onnx::AttributeProto::FLOAT);
  ratio->set_f(0.25f);
  testing::AddValueInfo(g->add_output(), "y", onnx::TensorProto::FLOAT, {4});
  auto graph = ImportOnnxBytes(testing::Serialize(m), "", "dropout11");
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  const Node* n = FindOp(**graph, "Dropout");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->attr("ratio"), nullptr);
  ASSERT_EQ(n->num_inputs(), 2);
  auto r = n->input(1)->initializer()->AsDoubles();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)[0], 0.25);
  EXPECT_EQ(n->output(1)->type().ToString(), "bool[4]");
}

// BatchNormalization opsets 9-13 ask for running statistics to signal training (5 outputs).
TEST(Import, OldTrainingBatchNormBecomesTrainingMode) {
  auto g = ImportOnnxFile(Fixture("cnn_train_opset13.onnx"));
  ASSERT_TRUE(g.ok()) << g.status().message();
  const Node* bn = FindOp(**g, "BatchNormalization");
  ASSERT_NE(bn, nullptr);
  EXPECT_EQ(bn->attr_int("training_mode", 0), 1);
  EXPECT_EQ(bn->num_outputs(), 3);
}

// Every model of the ONNX backend test suite (Debian's libonnx-testdata): importing must end in
// success or a clean error, never a crash.
TEST(Import, OnnxBackendModelsNeverCrash) {
  const std::string root = "/usr/share/libonnx-testdata/data";
  ASSERT_TRUE(std::filesystem::exists(root)) << "install libonnx-testdata (tools/setup.sh)";
  int ok = 0, rejected = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (e.path().filename() != "model.onnx") continue;
    auto g = ImportOnnxFile(e.path().string());
    if (g.ok()) {
      ++ok;
      EXPECT_TRUE(Verify(**g).ok()) << e.path();
    } else {
      ++rejected;
      const std::string msg = g.status().message();
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      EXPECT_EQ(msg.rfind(e.path().string(), 0), 0u) << msg;
    }
  }
  std::printf("ONNX backend models: %d imported, %d rejected cleanly\n", ok, rejected);
  EXPECT_GT(ok, 300);
}

}  // namespace
}  // namespace ampc
