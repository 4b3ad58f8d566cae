// Which initializers train (by meaning, not by name), the cross-entropy class axis, and the end
// of an fp32 run whose loss stops being finite. Expected values are derived by hand from the
// graphs below: which operand each initializer feeds, and what shapes the labels have.
#include <gtest/gtest.h>

#include <cmath>

#include "frontend/training/training_graph.h"
#include "ir/text.h"
#include "runtime/executor.h"
#include "tests/unit/compile_util.h"
#include "tests/unit/test_util.h"

namespace ampc {
namespace {

// w is a weight; e a Pow exponent (a vector, so not caught by the scalar rule); eps a scalar
// added like LayerNorm's epsilon; mask a causal-style mask with -inf; scale a learnable-looking
// vector; shape a Reshape target (integer, never a candidate).
const char* kGraph = R"(graph "g" opsets {"": 17} {
  input %x: f32[batch,2]
  init %w: f32[2,2] = [0.5, -0.25, 0.125, 0.75]
  init %e: f32[2] = [2.0, 2.0]
  init %eps: f32[] = [0.00001]
  init %mask: f32[2] = [0.0, -inf]
  init %scale: f32[2] = [1.0, 1.0]
  %h: f32[batch,2] = MatMul(%x, %w) name="fc"
  %p: f32[batch,2] = Pow(%h, %e) name="pow"
  %q: f32[batch,2] = Add(%p, %eps) name="add_eps"
  %m: f32[batch,2] = Add(%q, %mask) name="add_mask"
  %y: f32[batch,2] = Mul(%m, %scale) name="scale"
  output %y
}
)";

TrainingGraphInfo Build(TrainOptions o) {
  auto g = ParseGraph(kGraph);
  EXPECT_TRUE(g.ok()) << g.status().message();
  o.loss.kind = "mse";
  auto info = BuildTrainingGraph(**g, o);
  EXPECT_TRUE(info.ok()) << info.status().message();
  return info.ok() ? *info : TrainingGraphInfo{};
}

TEST(Trainable, ParametersAreFoundByWhatTheyFeed) {
  const TrainingGraphInfo info = Build({});
  EXPECT_EQ(info.params, (std::vector<std::string>{"w", "scale"}));
  EXPECT_EQ(info.frozen_reasons.at("e"),
            "reaches the loss through no trainable operand (an exponent, bound, shape...)");
  EXPECT_EQ(info.frozen_reasons.at("eps"), "a scalar constant (an epsilon or a scale)");
  EXPECT_EQ(info.frozen_reasons.at("mask"), "holds infinities or NaNs (a mask)");
}

TEST(Trainable, FreezeAndTrainableOverride) {
  TrainOptions o;
  o.freeze = "^scale$";
  TrainingGraphInfo info = Build(o);
  EXPECT_EQ(info.params, (std::vector<std::string>{"w"}));
  EXPECT_EQ(info.frozen_reasons.at("scale"), "--freeze");
  TrainOptions t;
  t.train = "^(w|eps)$";  // a scalar the user says is a parameter
  info = Build(t);
  EXPECT_EQ(info.params, (std::vector<std::string>{"w", "eps"}));
  EXPECT_EQ(info.frozen_reasons.at("scale"), "not matched by --trainable");
}

// Scores [B, C, T] vs [B, T, C]: the labels' shape decides, and says when it cannot.
TrainingGraphInfo WithLabels(const std::string& scores, const std::vector<int64_t>& labels,
                             int64_t axis, std::string* error) {
  auto g = ParseGraph(std::string(R"(graph "lm" opsets {"": 17} {
  input %x: )") + scores + R"(
  init %w: f32[] = [2.0]
  %y: )" + scores + R"( = Mul(%x, %w) name="logits"
  output %y
}
)");
  EXPECT_TRUE(g.ok()) << g.status().message();
  TrainOptions o;
  o.loss.labels_dims = labels;
  o.loss.class_axis = axis;
  o.train = "w";
  auto info = BuildTrainingGraph(**g, o);
  if (!info.ok()) *error = info.status().message();
  return info.ok() ? *info : TrainingGraphInfo{};
}

TEST(ClassAxis, InferredFromTheLabelsShape) {
  std::string err;
  EXPECT_EQ(WithLabels("f32[batch,16,100]", {50, 16}, 0, &err).class_axis, 2) << err;
  EXPECT_EQ(WithLabels("f32[batch,100,16]", {50, 16}, 0, &err).class_axis, 1) << err;
  EXPECT_EQ(WithLabels("f32[batch,10]", {50}, 0, &err).class_axis, 1) << err;
  // Without the data's shape: ONNX's and PyTorch's axis 1.
  EXPECT_EQ(WithLabels("f32[batch,16,100]", {}, 0, &err).class_axis, 1) << err;
  // --class-axis wins.
  EXPECT_EQ(WithLabels("f32[batch,16,16]", {50, 16}, -1, &err).class_axis, 2) << err;
}

TEST(ClassAxis, AmbiguousOrMismatchedShapesAreErrorsNamingBoth) {
  std::string err;
  WithLabels("f32[batch,16,16]", {50, 16}, 0, &err);
  EXPECT_NE(err.find("scores f32[batch,16,16] ('y') and labels [50,16] (the data's 'labels') fit "
                     "the classes on axis 1 and on axis 2; pass --class-axis"),
            std::string::npos)
      << err;
  err.clear();
  WithLabels("f32[batch,16,100]", {50, 7}, 0, &err);
  EXPECT_NE(err.find("do not fit"), std::string::npos) << err;
  EXPECT_NE(err.find("--class-axis"), std::string::npos) << err;
}

// fp32 has no finite check: a loss that overflows stops the step before any state changes,
// naming the first non-finite value and its producer (exp(1000) overflows in the Exp).
TEST(NonFiniteLoss, Fp32StepStopsNamingTheFirstNonFiniteValue) {
  const std::string text = R"(graph "exp" opsets {"": 17} {
  input %x: f32[batch,2]
  init %w: f32[2,2] = [1.0, 0.0, 0.0, 1.0]
  %h: f32[batch,2] = MatMul(%x, %w) name="fc"
  %y: f32[batch,2] = Exp(%h) name="exp"
  output %y
}
)";
  CompileOptions o;
  o.train.loss.kind = "mse";
  auto c = testing::CompileTraining([&] { return ParseGraph(text); }, o, 2,
                                    {{"x", {2, 2}}, {"labels", {2, 2}}});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->train.proto.training().stop_on_non_finite_loss());
  auto ex = CreateExecutor(std::move(c->train), ExecutorOptions{"cpu", 1});
  ASSERT_TRUE(ex.ok());
  auto inputs = [&](float v) {
    std::vector<Tensor> in;
    for (const auto& io : (*ex)->plan().inputs()) {
      if (io.name() == "x") in.push_back(Tensor::FromFloats({v, 0, 0, v}, {2, 2}));
      if (io.name() == "labels") in.push_back(Tensor::FromFloats({0, 0, 0, 0}, {2, 2}));
      if (io.name() == kLrInput) in.push_back(Tensor::Scalar(DType::kFloat32, 0.1));
    }
    return in;
  };
  const Tensor w0 = *(*ex)->GetState("w");
  Status st = (*ex)->Step(inputs(1000.0f));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInternal);  // exit code 1: a failure while running
  EXPECT_NE(st.message().find("the loss is infinite (fp32 training has no finite check"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("the first non-finite value is 'y', from node 'exp' (Exp)"),
            std::string::npos)
      << st.message();
  EXPECT_EQ((*ex)->GetState("w")->bytes(), w0.bytes());  // the step changed nothing
  EXPECT_EQ((*ex)->GetState(kStepState)->AsInt64s()->at(0), 0);
  // A NaN in the batch is named as such.
  st = (*ex)->Step(inputs(NAN));
  EXPECT_NE(st.message().find("the input 'x' holds non-finite values"), std::string::npos)
      << st.message();
  // Finite data trains on.
  EXPECT_TRUE((*ex)->Step(inputs(0.5f)).ok());
}

}  // namespace
}  // namespace ampc
