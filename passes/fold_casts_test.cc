// FoldCastsPass (passes/fold_casts.h): autocast's third stage.
// Where the expected results come from: the header's contract (an exact first cast folds; the
// f16 -> f32 -> f16 round trip is the identity, f32 -> f16 -> f32 is not), and, for the lossy
// case, a hand-picked value: 0.1 is not an f16 value (f16(0.1) = 0.0999755859375), so a fold
// there would change results. The numeric check runs both graphs on the CPU runtime and compares
// the outputs bit for bit.
#include "passes/fold_casts.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "ir/text.h"
#include "runtime/cpu/executor.h"
#include "tests/unit/compile_util.h"
#include "tests/unit/graph_test_util.h"

namespace ampc {
namespace {

using testing::CountNodes;
using testing::Get;
using testing::NodeNamed;
using testing::Parse;
using testing::RunVerified;

StatusOr<bool> Fold(Graph& g, int64_t* folded = nullptr) {
  FoldCastsPass pass;
  auto r = RunVerified(pass, g);
  if (folded) *folded = pass.folded();
  return r;
}

TEST(FoldCasts, GraphWithoutCastsIsANoOp) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[2]
  %dead: f32[2] = Relu(%x) name="dead"
  %y: f32[2] = Sigmoid(%x) name="live"
  output %y
}
)");
  const std::string before = PrintGraph(*g);
  auto changed = Fold(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_FALSE(*changed);
  EXPECT_EQ(PrintGraph(*g), before);  // dead non-Cast nodes are dead-code elimination's job
}

// f16 -> f32 -> f16 is the identity: the consumer reads h, and both casts, now unused, go.
TEST(FoldCasts, HalfRoundTripFoldsToTheIdentity) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %h: f16[2,4]
  %h32: f32[2,4] = Cast(%h) {to=1} name="widen"
  %h16: f16[2,4] = Cast(%h32) {to=10} name="narrow"
  %t: f16[2,4] = Relu(%h16) name="relu"
  output %t
}
)");
  int64_t folded = -1;
  auto changed = Fold(*g, &folded);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(folded, 1);
  EXPECT_EQ(NodeNamed(*g, "relu")->input(0), Get(*g, "h"));
  EXPECT_EQ(CountNodes(*g, "Cast"), 0);
  EXPECT_EQ(g->num_nodes(), 1);
}

// f32 -> f16 -> f32 rounds (0.1 becomes 0.0999755859375): nothing folds, both casts stay.
TEST(FoldCasts, LossyRoundTripIsKept) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[2,4]
  %x16: f16[2,4] = Cast(%x) {to=10} name="narrow"
  %x32: f32[2,4] = Cast(%x16) {to=1} name="widen"
  %s: f32[2,4] = Softmax(%x32) {axis=1} name="softmax"
  output %s
}
)");
  const std::string before = PrintGraph(*g);
  int64_t folded = -1;
  auto changed = Fold(*g, &folded);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
  EXPECT_EQ(folded, 0);
  EXPECT_EQ(PrintGraph(*g), before);
}

// Another exact first cast: f16 -> f32 -> f64 becomes one Cast(f16 -> f64); the middle cast
// stays while something else reads it.
TEST(FoldCasts, ExactFirstCastIsSkipped) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %h: f16[2]
  %h32: f32[2] = Cast(%h) {to=1} name="widen"
  %h64: f64[2] = Cast(%h32) {to=11} name="widen_more"
  %r: f32[2] = Relu(%h32) name="relu"
  output %h64
  output %r
}
)");
  ASSERT_TRUE(Fold(*g).ok());
  const Node* more = NodeNamed(*g, "widen_more");
  ASSERT_NE(more, nullptr);
  EXPECT_EQ(more->input(0), Get(*g, "h"));
  EXPECT_EQ(Get(*g, "h64")->type().ToString(), "f64[2]");
  EXPECT_NE(NodeNamed(*g, "widen"), nullptr);  // relu still reads it
  EXPECT_EQ(CountNodes(*g, "Cast"), 2);
}

TEST(FoldCasts, UnusedCastsAreRemovedGraphOutputsAreNot) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[2]
  init %w: f32[2] = [1.0, 2.0]
  %unused: f16[2] = Cast(%x) {to=10} name="unused"
  %chain1: f16[2] = Cast(%w) {to=10} name="chain1"
  %chain2: f32[2] = Cast(%chain1) {to=1} name="chain2"
  %out: f16[2] = Cast(%x) {to=10} name="out"
  %next: f32[2] = Cast(%out) {to=1} name="next"
  output %out
  update %w <- %next
}
)");
  auto changed = Fold(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  // Unused, and a chain of casts that became unused from its end: gone.
  EXPECT_EQ(NodeNamed(*g, "unused"), nullptr);
  EXPECT_EQ(NodeNamed(*g, "chain2"), nullptr);
  EXPECT_EQ(NodeNamed(*g, "chain1"), nullptr);
  // A graph output and a state update's new value are kept although no node reads them.
  EXPECT_NE(NodeNamed(*g, "out"), nullptr);
  EXPECT_NE(NodeNamed(*g, "next"), nullptr);
  EXPECT_EQ(g->outputs()[0], Get(*g, "out"));
}

// Edge: the round trip's result is a graph output. It cannot be replaced by h (the output is a
// named value of its own), so it stays as a Cast of h, the widening skipped.
TEST(FoldCasts, RoundTripIntoAGraphOutputKeepsTheOutput) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %h: f16[2]
  %h32: f32[2] = Cast(%h) {to=1} name="widen"
  %h16: f16[2] = Cast(%h32) {to=10} name="narrow"
  output %h16
}
)");
  int64_t folded = -1;
  ASSERT_TRUE(Fold(*g, &folded).ok());
  EXPECT_EQ(folded, 1);
  ASSERT_EQ(g->outputs().size(), 1u);
  EXPECT_EQ(g->outputs()[0]->name(), "h16");
  EXPECT_EQ(g->outputs()[0]->type().ToString(), "f16[2]");
  const Node* narrow = NodeNamed(*g, "narrow");
  ASSERT_NE(narrow, nullptr);
  EXPECT_EQ(narrow->input(0), Get(*g, "h"));
  EXPECT_EQ(NodeNamed(*g, "widen"), nullptr);
}

TEST(FoldCasts, SecondRunIsANoOp) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %h: f16[2]
  %h32: f32[2] = Cast(%h) {to=1} name="widen"
  %h16: f16[2] = Cast(%h32) {to=10} name="narrow"
  %r: f16[2] = Relu(%h16) name="relu"
  output %r
  output %h16
}
)");
  ASSERT_TRUE(Fold(*g).ok());
  const std::string once = PrintGraph(*g);
  auto again = Fold(*g);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(PrintGraph(*g), once);
}

// Numeric: folding changes no result. The graph runs before and after folding on the CPU
// runtime with values that f16 cannot hold (0.1, 1/3, 70000), bit for bit the same outputs.
TEST(FoldCasts, FoldedGraphComputesTheSameBits) {
  const char* text = R"(graph "g" opsets {"": 17} {
  input %x: f32[4]
  %x16: f16[4] = Cast(%x) {to=10} name="narrow"
  %x32: f32[4] = Cast(%x16) {to=1} name="widen"
  %back: f16[4] = Cast(%x32) {to=10} name="narrow_again"
  %r: f16[4] = Relu(%back) name="relu"
  %s: f32[4] = Sigmoid(%x32) name="sigmoid"
  %rr: f32[4] = Cast(%r) {to=1} name="out_cast"
  output %rr
  output %s
}
)";
  const Tensor x = Tensor::FromFloats({0.1f, 1.0f / 3.0f, 70000.0f, -2.5f}, {4});
  auto run = [&](bool fold) -> std::vector<Tensor> {
    auto g = Parse(text);
    if (fold) {
      int64_t folded = -1;
      EXPECT_TRUE(Fold(*g, &folded).ok());
      EXPECT_EQ(folded, 1);
      EXPECT_EQ(NodeNamed(*g, "narrow_again"), nullptr);
    }
    auto plan = CompileForInputs(std::move(g), {x}, DType::kFloat32, "test", testing::CpuSupport());
    EXPECT_TRUE(plan.ok()) << plan.status().message();
    if (!plan.ok()) return {};
    auto ex = cpu::CpuExecutor::Create(std::move(*plan), 1);
    EXPECT_TRUE(ex.ok());
    auto out = (*ex)->Run({x});
    EXPECT_TRUE(out.ok()) << out.status().message();
    return out.ok() ? *out : std::vector<Tensor>{};
  };
  const auto plain = run(false), folded = run(true);
  ASSERT_EQ(plain.size(), 2u);
  ASSERT_EQ(folded.size(), 2u);
  EXPECT_EQ(plain[0].bytes(), folded[0].bytes());
  EXPECT_EQ(plain[1].bytes(), folded[1].bytes());
  // And the relu path saw the rounded value: f16(0.1) = 0.0999755859375, 70000 -> inf.
  EXPECT_EQ(folded[0].AsDoubles()->at(0), 0.0999755859375);
  EXPECT_TRUE(std::isinf(folded[0].AsDoubles()->at(2)));
}

// An optimizer update whose gradient is an exact widening Cast reads the half gradient; the
// Cast goes when nothing else reads it, and stays for its other readers. The kernels widen the
// gradient exactly as the Cast did, so the update's outputs are the same bits (run on the CPU
// runtime before and after, on gradients with bf16 values 0.1 and 1/3 cannot be).
TEST(FoldCasts, OptimizerReadsTheHalfGradientDirectly) {
  const char* text = R"(graph "g" opsets {"": 17, "com.ampc": 1} {
  input %lr: f32[]
  input %t: i64[]
  input %g: bf16[4]
  init %w: f32[4] = [0.5, -1.0, 2.0, 0.25]
  init %m: f32[4] = [0.0, 0.1, 0.0, -0.1]
  init %v: f32[4] = [0.0, 0.01, 0.0, 0.02]
  init %p: f32[4] = [1.0, 2.0, 3.0, 4.0]
  %g32: f32[4] = Cast(%g) {to=1} name="widen"
  %w2: f32[4], %m2: f32[4], %v2: f32[4] = com.ampc::Adam(%lr, %t, %w, %g32, %m, %v) {beta1=0.9, beta2=0.999, epsilon=1e-08, weight_decay=0.01, decoupled=1} name="adam"
  %p2: f32[4] = com.ampc::SGD(%lr, %t, %p, %g32) name="sgd"
  output %w2
  output %m2
  output %v2
  output %p2
}
)";
  const std::vector<Tensor> in = {
      Tensor::Scalar(DType::kFloat32, 0.01), Tensor::Scalar(DType::kInt64, 3),
      Tensor::FromFloats({0.1f, 1.0f / 3.0f, -7.0f, 1e-3f}, {4}).ConvertFloat(DType::kBFloat16)};
  auto run = [&](bool fold) -> std::vector<Tensor> {
    auto g = Parse(text);
    if (fold) {
      int64_t folded = -1;
      EXPECT_TRUE(Fold(*g, &folded).ok());
      EXPECT_EQ(folded, 2);
      EXPECT_EQ(NodeNamed(*g, "widen"), nullptr);
      EXPECT_EQ(NodeNamed(*g, "adam")->input(3)->dtype(), DType::kBFloat16);
      EXPECT_EQ(NodeNamed(*g, "sgd")->input(3)->dtype(), DType::kBFloat16);
    }
    auto plan = CompileForInputs(std::move(g), in, DType::kFloat32, "test", testing::CpuSupport());
    EXPECT_TRUE(plan.ok()) << plan.status().message();
    if (!plan.ok()) return {};
    auto ex = cpu::CpuExecutor::Create(std::move(*plan), 1);
    EXPECT_TRUE(ex.ok());
    auto out = (*ex)->Run(in);
    EXPECT_TRUE(out.ok()) << out.status().message();
    return out.ok() ? *out : std::vector<Tensor>{};
  };
  const auto plain = run(false), folded = run(true);
  ASSERT_EQ(plain.size(), 4u);
  ASSERT_EQ(folded.size(), 4u);
  for (size_t k = 0; k < 4; ++k) EXPECT_EQ(plain[k].bytes(), folded[k].bytes()) << k;

  // A Cast another node also reads stays for it.
  auto g = Parse(R"(graph "g" opsets {"": 17, "com.ampc": 1} {
  input %lr: f32[]
  input %t: i64[]
  input %g: bf16[2]
  init %w: f32[2] = [1.0, 2.0]
  %g32: f32[2] = Cast(%g) {to=1} name="widen"
  %w2: f32[2] = com.ampc::SGD(%lr, %t, %w, %g32) name="sgd"
  %n: f32[2] = Neg(%g32) name="other_reader"
  output %w2
  output %n
}
)");
  ASSERT_TRUE(Fold(*g).ok());
  ASSERT_NE(NodeNamed(*g, "widen"), nullptr);
  EXPECT_EQ(NodeNamed(*g, "sgd")->input(3)->dtype(), DType::kBFloat16);
  EXPECT_EQ(NodeNamed(*g, "other_reader")->input(0)->dtype(), DType::kFloat32);
}

// fold-casts has no failure of its own: the only error path is the topological sort, which a
// parsed graph (defined-before-use) cannot make fail; an odd but valid input folds cleanly.
TEST(FoldCasts, CastOfAnIntegerIsNotTreatedAsExact) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %n: i64[2]
  %f: f32[2] = Cast(%n) {to=1} name="to_float"
  %i: i64[2] = Cast(%f) {to=7} name="to_int"
  output %i
}
)");
  const std::string before = PrintGraph(*g);
  auto changed = Fold(*g);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
  EXPECT_EQ(PrintGraph(*g), before);
}

}  // namespace
}  // namespace ampc
