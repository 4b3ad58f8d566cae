// SplitLossPass (passes/split_loss.h). Where the expected values come from: the unsplit
// SoftmaxCrossEntropyLoss run by the CPU runtime's per-op kernel (ONNX's definition, checked
// against ONNX's conformance data in tests/conformance) on the same inputs. The split loss must
// give the same log_prob bit for bit, the same sum bit for bit, and a mean within one ulp (the
// division of the f32-rounded sum), equal when the count is a power of two.
#include "passes/split_loss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "runtime/cpu/executor.h"
#include "tests/unit/compile_util.h"
#include "tests/unit/graph_test_util.h"

namespace ampc {
namespace {

using testing::NodesOfType;
using testing::Parse;

std::string Loss(const std::string& reduction, const std::string& extra_attrs, int rows) {
  const std::string r = std::to_string(rows);
  return R"(graph "sce" opsets {"": 17} {
  input %x: f32[)" +
         r + R"(,7]
  input %y: i64[)" +
         r + R"(]
  %loss: f32[], %logp: f32[)" +
         r + R"(,7] = SoftmaxCrossEntropyLoss(%x, %y) {reduction=")" + reduction + "\"" +
         extra_attrs + R"(} name="ce"
  output %loss
  output %logp
})";
}

// Runs `g` per-op on the CPU; returns its outputs (loss, log_prob).
std::vector<Tensor> RunGraph(std::unique_ptr<Graph> g, const std::vector<Tensor>& in) {
  auto plan = CompileForInputs(std::move(g), in, DType::kFloat32, "test", testing::CpuSupport());
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  if (!plan.ok()) return {};
  auto ex = cpu::CpuExecutor::Create(std::move(*plan), 1);
  EXPECT_TRUE(ex.ok()) << ex.status().message();
  auto out = (*ex)->Run(in);
  EXPECT_TRUE(out.ok()) << out.status().message();
  return out.ok() ? *out : std::vector<Tensor>{};
}

std::vector<Tensor> Inputs(int rows, uint32_t seed, bool ignore_some) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 3.0f);
  std::vector<float> x(static_cast<size_t>(rows) * 7);
  for (float& v : x) v = n(rng);
  std::vector<int64_t> y(static_cast<size_t>(rows));
  for (int i = 0; i < rows; ++i) y[i] = (ignore_some && i % 4 == 1) ? -100 : (i * 5 + 3) % 7;
  return {Tensor::FromFloats(x, {rows, 7}), Tensor::FromInt64s(y, {rows})};
}

TEST(SplitLoss, TheNodeStaysAndItsSumsFollowUnderTheLossName) {
  auto g = Parse(Loss("mean", ", ignore_index=-100", 6));
  SplitLossPass pass;
  auto changed = testing::RunVerified(pass, *g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  const auto sce = NodesOfType(*g, "SoftmaxCrossEntropyLoss");
  ASSERT_EQ(sce.size(), 1u);
  EXPECT_EQ(sce[0]->name(), "ce");
  EXPECT_EQ(sce[0]->attr_string("reduction", ""), "none");
  EXPECT_EQ(sce[0]->output(0)->type().ToString(), "f32[6]");
  EXPECT_EQ(sce[0]->output(1)->name(), "logp");
  EXPECT_EQ(g->outputs()[0]->name(), "loss");
  EXPECT_EQ(g->outputs()[0]->producer()->op_type(), "Div");
  EXPECT_EQ(NodesOfType(*g, "ReduceSum").size(), 2u);  // the rows and the kept labels
}

TEST(SplitLoss, SameLogProbAndSumAndAMeanWithinOneUlp) {
  struct Case {
    std::string reduction, attrs;
    int rows;
    bool ignore_some;
  };
  const Case cases[] = {{"mean", ", ignore_index=-100", 13, true},   // count 10
                        {"mean", ", ignore_index=-100", 16, false},  // count 16: exact
                        {"mean", "", 11, false},
                        {"sum", ", ignore_index=-100", 9, true}};
  uint32_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.reduction + c.attrs + " rows " + std::to_string(c.rows));
    const auto in = Inputs(c.rows, ++seed, c.ignore_some);
    const auto want = RunGraph(Parse(Loss(c.reduction, c.attrs, c.rows)), in);
    auto g = Parse(Loss(c.reduction, c.attrs, c.rows));
    ASSERT_TRUE(SplitLossPass().Run(*g).ok());
    const auto got = RunGraph(std::move(g), in);
    ASSERT_EQ(want.size(), 2u);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(testing::Bits32(got[1]), testing::Bits32(want[1]));  // log_prob
    const float a = static_cast<float>(got[0].AsDoubles()->at(0));
    const float b = static_cast<float>(want[0].AsDoubles()->at(0));
    const bool exact = c.reduction == "sum" || c.rows == 16;
    if (exact) {
      EXPECT_EQ(a, b);
    } else {
      EXPECT_LE(std::fabs(a - b), std::nextafter(std::fabs(b), INFINITY) - std::fabs(b))
          << a << " vs " << b;
    }
  }
}

TEST(SplitLoss, WeightedOrAlreadyPerRowLossesAreLeftAlone) {
  for (const std::string& text : {std::string(R"(graph "w" opsets {"": 17} {
  input %x: f32[4,5]
  input %y: i64[4]
  input %w: f32[5]
  %loss: f32[] = SoftmaxCrossEntropyLoss(%x, %y, %w)
  output %loss
})"),
                                  std::string(R"(graph "n" opsets {"": 17} {
  input %x: f32[4,5]
  input %y: i64[4]
  %loss: f32[4] = SoftmaxCrossEntropyLoss(%x, %y) {reduction="none"}
  output %loss
})")}) {
    auto g = Parse(text);
    auto changed = SplitLossPass().Run(*g);
    ASSERT_TRUE(changed.ok());
    EXPECT_FALSE(*changed);
  }
}

}  // namespace
}  // namespace ampc
