// The inference rewrite behind `ampc export` (compiler/inference_export.h) on a small graph:
// which weights are accepted, what the fp16 model looks like. The rounded f16 bit patterns are
// numpy 1.24's (np.float32(x).astype(np.float16), round to nearest even), as in
// tests/unit/half_storage_test.cc; what the exported models compute is checked against
// onnxruntime in tests/interop.
#include "compiler/inference_export.h"

#include <gtest/gtest.h>

#include <cstring>

#include "ir/op_registry.h"
#include "ir/text.h"

namespace ampc {
namespace {

const char* kModel = R"(graph "g" opsets {"": 17} {
  input %x: f32[2,3]
  init %w: f32[3,2] = [0.1, -0.2, 0.3, 1e-05, 70000.0, 1.0]
  init %ratio: f32[] = [0.5]
  init %stored: f16[2] = [0.5, 0.25]
  %y: f32[2,2] = MatMul(%x, %w) name="mm"
  %d: f32[2,2] = Dropout(%y, %ratio) name="drop"
  %z: f32[2,2] = Softmax(%d) name="sm"
  %s: f16[2] = Neg(%stored) name="neg"
  output %z
  output %y
  output %s
}
)";

std::unique_ptr<Graph> Model() {
  auto g = ParseGraph(kModel);
  EXPECT_TRUE(g.ok()) << g.status().message();
  EXPECT_TRUE(InferGraph(**g).ok());
  return std::move(*g);
}

std::vector<uint16_t> Bits16(const Tensor& t) {
  std::vector<uint16_t> out(t.bytes().size() / 2);
  std::memcpy(out.data(), t.bytes().data(), t.bytes().size());
  return out;
}

TEST(ApplyTrainedWeights, ChecksNamesShapesAndTypes) {
  auto g = Model();
  auto r = ApplyTrainedWeights(*g, {{"v", Tensor::FromFloats({1}, {1})}}, "p.ampc", "m.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "p.ampc: tensor 'v' is not an initializer of m.onnx (weights of another model?)");
  r = ApplyTrainedWeights(*g, {{"w", Tensor::FromFloats({1, 2, 3, 4}, {2, 2})}}, "p", "m");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "p: tensor 'w' is f32[2,2] but the initializer of m is f32[3,2]");
  r = ApplyTrainedWeights(*g, {{"w", Tensor::FromInt64s({1, 2, 3, 4, 5, 6}, {3, 2})}}, "p", "m");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'w' is i64[3,2]"), std::string::npos);
  // y (a node output) is not an initializer either.
  r = ApplyTrainedWeights(*g, {{"y", Tensor::FromFloats({1, 2, 3, 4}, {2, 2})}}, "p", "m");
  EXPECT_FALSE(r.ok());
  r = ApplyTrainedWeights(*g, {}, "p", "m");
  EXPECT_FALSE(r.ok());
}

TEST(ApplyTrainedWeights, RoundsFp32MastersToTheStoredType) {
  auto g = Model();
  auto r = ApplyTrainedWeights(*g,
                               {{"stored", Tensor::FromFloats({0.1f, 70000.0f}, {2})},
                                {"w", Tensor::Zeros(DType::kFloat32, {3, 2})}},
                               "p", "m");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, 2);
  const Tensor& s = *g->FindValue("stored")->initializer();
  EXPECT_EQ(s.dtype(), DType::kFloat16);
  EXPECT_EQ(Bits16(s), (std::vector<uint16_t>{0x2e66, 0x7c00}));
  EXPECT_EQ(*g->FindValue("w")->initializer(), Tensor::Zeros(DType::kFloat32, {3, 2}));
}

TEST(ToInferenceModel, HalfWeightsCastsAndTheModelsInterface) {
  auto g = Model();
  auto st = ToInferenceModel(*g, DType::kFloat16, AutocastOptions{});
  ASSERT_TRUE(st.ok()) << st.status().message();
  for (const Node* n : g->nodes()) EXPECT_NE(n->op_type(), "Dropout");
  // Dropout's ratio was read by nothing any more.
  EXPECT_EQ(g->FindValue("ratio"), nullptr);
  // The weight MatMul reads is stored as f16 under its own name.
  const Value* w = g->FindValue("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype(), DType::kFloat16);
  EXPECT_EQ(Bits16(*w->initializer()),
            (std::vector<uint16_t>{0x2e66, 0xb266, 0x34cd, 0x00a8, 0x7c00, 0x3c00}));
  // Outputs keep their names and declared types; the half MatMul result is cast back.
  ASSERT_EQ(g->outputs().size(), 3u);
  EXPECT_EQ(g->outputs()[0]->name(), "z");
  EXPECT_EQ(g->outputs()[0]->dtype(), DType::kFloat32);
  const Value* y = g->outputs()[1];
  EXPECT_EQ(y->name(), "y");
  EXPECT_EQ(y->dtype(), DType::kFloat32);
  ASSERT_NE(y->producer(), nullptr);
  EXPECT_EQ(y->producer()->op_type(), "Cast");
  EXPECT_EQ(y->producer()->input(0)->dtype(), DType::kFloat16);
  EXPECT_EQ(y->producer()->input(0)->producer()->op_type(), "MatMul");
  EXPECT_EQ(g->outputs()[2]->dtype(), DType::kFloat16);  // declared f16: left alone
  EXPECT_EQ(g->inputs()[0]->dtype(), DType::kFloat32);
  EXPECT_GT(st->half_nodes, 0);
  EXPECT_GT(st->casts, 0);
}

TEST(ToInferenceModel, Fp32KeepsTheWeights) {
  auto g = Model();
  ASSERT_TRUE(ToInferenceModel(*g, DType::kFloat32, AutocastOptions{}).ok());
  EXPECT_EQ(g->FindValue("w")->dtype(), DType::kFloat32);
  for (const Node* n : g->nodes()) EXPECT_NE(n->op_type(), "Cast");
  EXPECT_EQ(g->outputs()[1]->producer()->op_type(), "MatMul");
}

}  // namespace
}  // namespace ampc
