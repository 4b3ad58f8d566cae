// InsertCastsPass (passes/insert_casts.h): autocast's second stage. The inputs are painted by
// hand (#precision annotations written in the text), so these tests do not depend on
// paint-precision's rules; the expected casts follow from the contract in the header.
#include "passes/insert_casts.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "ir/text.h"
#include "passes/paint_precision.h"
#include "tests/unit/graph_test_util.h"

namespace ampc {
namespace {

using testing::Fp16TrainingStep;
using testing::Get;
using testing::NodeNamed;
using testing::NodesOfType;
using testing::Parse;
using testing::RunVerified;

StatusOr<bool> Insert(Graph& g, int64_t* folded = nullptr) {
  InsertCastsPass pass;
  auto r = RunVerified(pass, g);
  if (folded) *folded = pass.folded();
  return r;
}

TEST(InsertCasts, UnpaintedGraphIsANoOp) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[2,4]
  input %h: f16[2,4]
  init %w: f32[4,4] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
  %a: f32[2,4] = MatMul(%x, %w) name="mm"
  %b: f16[2,4] = Relu(%h) name="relu"
  output %a
  output %b
}
)");
  const std::string before = PrintGraph(*g);
  auto changed = Insert(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_FALSE(*changed);
  EXPECT_EQ(PrintGraph(*g), before);
}

// Two half matmuls read x and w: one Cast each, shared. Their f16 results meet in an fp32 Add:
// one Cast each back to f32, and the Add's two operands of the same value share one.
TEST(InsertCasts, OneCastPerValueAndTypeSharedByItsConsumers) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[2,4]
  init %w: f32[4,4] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
  %a: f32[2,4] = MatMul(%x, %w) name="mm1" #precision="f16" #reason="allow-list"
  %b: f32[2,4] = MatMul(%x, %w) name="mm2" #precision="f16" #reason="allow-list"
  %s: f32[2,4] = Add(%a, %b) name="add" #precision="f32" #reason="deny-list"
  %t: f32[2,4] = Mul(%a, %a) name="square" #precision="f32" #reason="deny-list"
  output %s
  output %t
}
)");
  auto changed = Insert(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  for (const char* v : {"x", "w"}) {
    const Value* in = Get(*g, v);
    ASSERT_EQ(in->uses().size(), 1u) << v;
    const Node* cast = in->uses()[0].user;
    EXPECT_EQ(cast->op_type(), "Cast");
    EXPECT_EQ(cast->attr_int("to", 0), 10);
    EXPECT_EQ(cast->output(0)->name(), std::string(v) + "_f16");
    EXPECT_EQ(cast->annotations().at("precision"), "f16");
    EXPECT_EQ(cast->annotations().at("reason"), "cast");
    EXPECT_EQ(cast->output(0)->uses().size(), 2u) << v;  // mm1 and mm2
  }
  // The matmuls were re-inferred: they produce f16 now.
  EXPECT_EQ(Get(*g, "a")->type().ToString(), "f16[2,4]");
  EXPECT_EQ(Get(*g, "b")->type().ToString(), "f16[2,4]");
  // a is read in f32 by add and twice by square: one Cast(a -> f32) serves all three operands.
  ASSERT_EQ(Get(*g, "a")->uses().size(), 1u);
  const Value* a32 = Get(*g, "a")->uses()[0].user->output(0);
  EXPECT_EQ(a32->type().ToString(), "f32[2,4]");
  EXPECT_EQ(a32->uses().size(), 3u);
  EXPECT_EQ(NodeNamed(*g, "add")->input(0), a32);
  EXPECT_EQ(NodeNamed(*g, "square")->input(0), a32);
  EXPECT_EQ(NodeNamed(*g, "square")->input(1), a32);
  EXPECT_EQ(NodesOfType(*g, "Cast").size(), 4u);  // x, w -> f16; a, b -> f32
  EXPECT_EQ(Get(*g, "s")->type().ToString(), "f32[2,4]");
}

// Integer and f64 values are never cast, nor are the inputs that carry no precision: Shape's,
// Cast's, Dropout's ratio. Only the float data input of each node is.
TEST(InsertCasts, IntegerF64AndPrecisionFreeInputsAreNeverCast) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[2,4]
  input %d: f64[2,4]
  init %s: i64[2] = [4, 2]
  init %ratio: f32[] = [0.5]
  %r: f32[4,2] = Reshape(%x, %s) name="reshape" #precision="f16" #reason="clear"
  %sh: i64[2] = Shape(%x) name="shape" #precision="f16" #reason="clear"
  %e: f64[2,4] = Add(%d, %d) name="f64" #precision="f16" #reason="infer"
  %c: bf16[2,4] = Cast(%x) {to=16} name="model_cast" #precision="bf16" #reason="cast in the model"
  %o: f32[2,4] = Dropout(%x, %ratio) name="dropout" #precision="f16" #reason="clear"
  output %r
  output %sh
  output %e
  output %c
  output %o
}
)");
  auto changed = Insert(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  const Value* x16 = NodeNamed(*g, "reshape")->input(0);
  ASSERT_NE(x16->producer(), nullptr);
  EXPECT_EQ(x16->producer()->op_type(), "Cast");
  EXPECT_EQ(NodeNamed(*g, "reshape")->input(1), Get(*g, "s"));
  EXPECT_EQ(NodeNamed(*g, "shape")->input(0), Get(*g, "x"));
  EXPECT_EQ(NodeNamed(*g, "f64")->input(0), Get(*g, "d"));
  EXPECT_EQ(NodeNamed(*g, "f64")->input(1), Get(*g, "d"));
  EXPECT_EQ(Get(*g, "e")->type().ToString(), "f64[2,4]");
  EXPECT_EQ(NodeNamed(*g, "model_cast")->input(0), Get(*g, "x"));
  EXPECT_EQ(NodeNamed(*g, "dropout")->input(0), x16);  // the same shared Cast as reshape's
  EXPECT_EQ(NodeNamed(*g, "dropout")->input(1), Get(*g, "ratio"));
  EXPECT_EQ(NodesOfType(*g, "Cast").size(), 2u);  // x -> f16, and the model's own
}

// Exact-widening reuse: h32 = Cast(h) is h exactly, so a half consumer of h32 reads h itself.
TEST(InsertCasts, ReusesTheHalfValueAnExactWideningCameFrom) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %h: f16[2,4]
  %h32: f32[2,4] = Cast(%h) {to=1} name="widen" #precision="f32" #reason="cast in the model"
  %r: f32[2,4] = Relu(%h32) name="relu" #precision="f16" #reason="clear"
  %q: f32[2,4] = Sigmoid(%h32) name="sigmoid" #precision="f32" #reason="deny"
  output %r
  output %q
}
)");
  int64_t folded = -1;
  auto changed = Insert(*g, &folded);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(folded, 1);
  EXPECT_EQ(NodeNamed(*g, "relu")->input(0), Get(*g, "h"));
  EXPECT_EQ(Get(*g, "r")->type().ToString(), "f16[2,4]");
  EXPECT_EQ(NodeNamed(*g, "sigmoid")->input(0), Get(*g, "h32"));
  EXPECT_EQ(NodesOfType(*g, "Cast").size(), 1u);  // only the model's widen
}

// ... but not after a narrowing: x16 = Cast(x) rounds, so an f32 consumer of x16 must not read x.
TEST(InsertCasts, DoesNotReuseTheValueBeforeANarrowing) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[2,4]
  %x16: f16[2,4] = Cast(%x) {to=10} name="narrow" #precision="f16" #reason="cast in the model"
  %q: f16[2,4] = Sigmoid(%x16) name="sigmoid" #precision="f32" #reason="deny"
  output %q
}
)");
  int64_t folded = -1;
  ASSERT_TRUE(Insert(*g, &folded).ok());
  EXPECT_EQ(folded, 0);
  const Value* in = NodeNamed(*g, "sigmoid")->input(0);
  EXPECT_NE(in, Get(*g, "x"));
  ASSERT_NE(in->producer(), nullptr);
  EXPECT_EQ(in->producer()->op_type(), "Cast");
  EXPECT_EQ(in->producer()->input(0), Get(*g, "x16"));
  EXPECT_EQ(Get(*g, "q")->type().ToString(), "f32[2,4]");
}

TEST(InsertCasts, SecondRunIsANoOp) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[2,4]
  %a: f32[2,4] = Relu(%x) name="relu" #precision="bf16" #reason="clear"
  %b: f32[2,4] = Softmax(%a) {axis=1} name="softmax" #precision="f32" #reason="deny-list"
  output %b
}
)");
  ASSERT_TRUE(Insert(*g).ok());
  const std::string once = PrintGraph(*g);
  auto again = Insert(*g);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(PrintGraph(*g), once);
}

// After paint-precision on a real training step (clip and fp16 loss scaling included), every
// painted node reads each castable float input in its paint, f64 aside, and the graph verifies.
TEST(InsertCasts, MakesAPaintedTrainingStepTrue) {
  auto g = Fp16TrainingStep(/*clip=*/1.0);
  AutocastOptions a;
  a.half = DType::kFloat16;
  ASSERT_TRUE(PaintPrecisionPass(a).Run(*g).ok());
  auto changed = Insert(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  int half_reads = 0;
  for (const Node* n : g->nodes()) {
    const auto p = n->annotations().find("precision");
    if (p == n->annotations().end() || p->second == "-" || n->op_type() == "Cast") continue;
    if (n->op_type() == "Shape" || n->op_type() == "AllFinite") continue;
    for (const Value* v : n->inputs()) {
      if (!v || !IsFloat(v->dtype()) || v->dtype() == DType::kFloat64) continue;
      EXPECT_EQ(DTypeName(v->dtype()), p->second) << n->name() << " reads " << v->name();
      half_reads += v->dtype() == DType::kFloat16;
    }
  }
  EXPECT_GT(half_reads, 0);
  // The optimizers still update f32 masters from f32 gradients.
  for (const StateUpdate& u : g->state_updates()) {
    EXPECT_EQ(u.next->dtype(), u.state->dtype()) << u.state->name();
  }
}

// Error: a node that has to be re-typed but cannot be re-inferred (an op ampc does not know).
// The pass itself reports it (not only the verifier after it).
TEST(InsertCasts, FailsWhenARetypedNodeCannotBeInferred) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[2,4]
  %y: f32[2,4] = Mystery(%x) name="mystery" #precision="f16" #reason="allow-list"
  output %y
}
)");
  InsertCastsPass pass;
  auto r = pass.Run(*g);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("Mystery"), std::string::npos) << r.status().message();
}

TEST(InsertCasts, ExactWideningTable) {
  EXPECT_TRUE(IsExactWidening(DType::kFloat16, DType::kFloat32));
  EXPECT_TRUE(IsExactWidening(DType::kBFloat16, DType::kFloat64));
  EXPECT_TRUE(IsExactWidening(DType::kFloat32, DType::kFloat64));
  EXPECT_TRUE(IsExactWidening(DType::kFloat16, DType::kFloat16));
  EXPECT_FALSE(IsExactWidening(DType::kFloat32, DType::kFloat16));
  EXPECT_FALSE(IsExactWidening(DType::kFloat16, DType::kBFloat16));  // f16 has more mantissa
  EXPECT_FALSE(IsExactWidening(DType::kBFloat16, DType::kFloat16));  // bf16 has more range
  EXPECT_FALSE(IsExactWidening(DType::kFloat64, DType::kFloat32));
}

}  // namespace
}  // namespace ampc
