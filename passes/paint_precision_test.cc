// PaintPrecisionPass (passes/paint_precision.h): autocast's first stage, annotations only.
// Where the expected paints come from: the rules in passes/paint_precision.h applied by hand to
// each small graph below, with the default lists (PyTorch's CUDA autocast policy, from the op
// registry: MatMul and Gemm allow, Softmax deny, Add infer, Relu and Reshape clear).
#include "passes/paint_precision.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ir/text.h"
#include "tests/unit/graph_test_util.h"

namespace ampc {
namespace {

using testing::Fp16TrainingStep;
using testing::Parse;

// allow -> infer -> clear -> clear -> (integer Shape, deny).
const char* kChain = R"(graph "g" opsets {"": 17} {
  input %x: f32[2,4]
  init %w: f32[4,4] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
  init %c: f32[4] = [1, 2, 3, 4]
  init %s: i64[2] = [4, 2]
  %a: f32[2,4] = MatMul(%x, %w) name="mm"
  %b: f32[2,4] = Add(%a, %c) name="add"
  %r: f32[2,4] = Relu(%b) name="relu"
  %t: f32[4,2] = Reshape(%r, %s) name="reshape"
  %n: i64[] = Size(%s) name="size"
  %p: f32[4,2] = Softmax(%t) {axis=1} name="softmax"
  output %p
  output %n
}
)";

AutocastOptions Opts(DType half = DType::kFloat16) {
  AutocastOptions o;
  o.half = half;
  return o;
}

std::string Paint(const Graph& g, const std::string& node) {
  for (const Node* n : g.nodes()) {
    if (n->name() != node) continue;
    auto p = n->annotations().find("precision"), r = n->annotations().find("reason");
    if (p == n->annotations().end() || r == n->annotations().end()) return "(unpainted)";
    return p->second + " " + r->second;
  }
  return "(no node " + node + ")";
}

// The graph's text without paint-precision's annotations.
std::string Unpainted(const Graph& g) {
  auto copy = Parse(PrintGraph(g));
  for (Node* n : copy->nodes()) {
    n->annotations().erase("precision");
    n->annotations().erase("reason");
  }
  return PrintGraph(*copy);
}

TEST(PaintPrecision, EmptyGraphIsANoOp) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[2]
  output %x
}
)");
  PaintPrecisionPass pass(Opts());
  auto changed = pass.Run(*g);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
  EXPECT_EQ(pass.half_nodes() + pass.fp32_nodes(), 0);
}

TEST(PaintPrecision, PaintsByTheListsAndChangesNothingElse) {
  auto g = Parse(kChain);
  const std::string before = PrintGraph(*g);
  PaintPrecisionPass pass(Opts());
  auto changed = pass.Run(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(Paint(*g, "mm"), "f16 allow-list");
  EXPECT_EQ(Paint(*g, "add"), "f16 infer: inputs half");
  EXPECT_EQ(Paint(*g, "relu"), "f16 clear: follows add");
  EXPECT_EQ(Paint(*g, "reshape"), "f16 clear: follows relu");
  EXPECT_EQ(Paint(*g, "size"), "- integer");
  EXPECT_EQ(Paint(*g, "softmax"), "f32 deny-list");
  EXPECT_EQ(pass.half_nodes(), 4);
  EXPECT_EQ(pass.fp32_nodes(), 1);
  // No node inserted, no type changed: without the annotations the graph is what it was.
  EXPECT_EQ(Unpainted(*g), before);
}

TEST(PaintPrecision, Bf16PaintsTheSameNodesBf16) {
  auto g = Parse(kChain);
  ASSERT_TRUE(PaintPrecisionPass(Opts(DType::kBFloat16)).Run(*g).ok());
  EXPECT_EQ(Paint(*g, "mm"), "bf16 allow-list");
  EXPECT_EQ(Paint(*g, "reshape"), "bf16 clear: follows relu");
  EXPECT_EQ(Paint(*g, "softmax"), "f32 deny-list");
}

TEST(PaintPrecision, PaintingTwiceChangesNothingTheSecondTime) {
  for (auto* make : {+[] { return Parse(kChain); }, +[] { return Fp16TrainingStep(1.0); }}) {
    auto g = make();
    PaintPrecisionPass pass(Opts());
    auto first = pass.Run(*g);
    ASSERT_TRUE(first.ok()) << first.status().message();
    EXPECT_TRUE(*first);
    const std::string once = PrintGraph(*g);
    auto second = pass.Run(*g);
    ASSERT_TRUE(second.ok());
    EXPECT_FALSE(*second);
    EXPECT_EQ(PrintGraph(*g), once);
  }
}

// Loss, clipping, loss-scaling, optimizer and state nodes keep fp32 masters whatever their op;
// those without a floating value are not painted.
TEST(PaintPrecision, RoleNodesAreFp32) {
  auto g = Fp16TrainingStep(/*clip=*/1.0);
  const std::string before = PrintGraph(*g);
  ASSERT_TRUE(PaintPrecisionPass(Opts()).Run(*g).ok());
  std::set<std::string> roles;
  for (const Node* n : g->nodes()) {
    auto role = n->annotations().find("role");
    if (role == n->annotations().end()) continue;
    roles.insert(role->second);
    bool floating = false;
    for (const Value* v : n->inputs()) floating = floating || (v && IsFloat(v->dtype()));
    for (const Value* v : n->outputs()) floating = floating || (v && IsFloat(v->dtype()));
    const std::string want = !floating ? "- integer"
                             : role->second == "loss"
                                 ? "f32 loss"
                                 : "f32 " + role->second + ": fp32 master update";
    EXPECT_EQ(Paint(*g, n->name()), want) << n->name();
  }
  EXPECT_EQ(roles, (std::set<std::string>{"loss", "clip", "loss-scale", "optimizer", "state"}));
  // The model's Gemm is half; its backward follows.
  EXPECT_EQ(Paint(*g, "fc"), "f16 allow-list");
  // fc_grad is the bias's gradient (an fp32 ReduceSum), fc_grad_2 the weight's GEMM.
  EXPECT_EQ(Paint(*g, "fc_grad_2"), "f16 allow-list");
  EXPECT_EQ(Unpainted(*g), before);
}

// --fp32-nodes pins a forward node and, through grad_of, its backward nodes.
TEST(PaintPrecision, Fp32NodesPinsAForwardNodeAndItsGradients) {
  auto g = Fp16TrainingStep();
  AutocastOptions o = Opts();
  o.fp32_nodes = "^fc$";
  ASSERT_TRUE(PaintPrecisionPass(o).Run(*g).ok());
  EXPECT_EQ(Paint(*g, "fc"), "f32 user: --fp32-nodes");
  int grads = 0;
  for (const Node* n : g->nodes()) {
    auto of = n->annotations().find("grad_of");
    if (of == n->annotations().end() || of->second != "fc") continue;
    ++grads;
    if (Paint(*g, n->name()).rfind("- ", 0) == 0) continue;  // an integer-only helper
    EXPECT_EQ(Paint(*g, n->name()), "f32 user: --fp32-nodes (grad_of fc)") << n->name();
  }
  EXPECT_GE(grads, 2);  // dW and db
  // Another pin leaves fc alone: the regex is all that pins a forward node.
  auto h = Fp16TrainingStep();
  o.fp32_nodes = "relu";
  ASSERT_TRUE(PaintPrecisionPass(o).Run(*h).ok());
  EXPECT_EQ(Paint(*h, "relu"), "f32 user: --fp32-nodes");
  EXPECT_EQ(Paint(*h, "fc"), "f16 allow-list");
}

// The target's veto: an op it cannot run in the half type stays fp32, with the reason.
TEST(PaintPrecision, TargetVetoKeepsAnUnsupportedOpFp32) {
  auto g = Parse(kChain);
  AutocastOptions o = Opts();
  std::set<std::string> asked;
  o.supports = [&](const Node& n, DType t) {
    EXPECT_EQ(t, DType::kFloat16);
    asked.insert(n.name());
    return n.op_type() != "Relu";
  };
  PaintPrecisionPass pass(o);
  ASSERT_TRUE(pass.Run(*g).ok());
  EXPECT_EQ(Paint(*g, "relu"), "f32 target: no f16 Relu");
  EXPECT_EQ(Paint(*g, "mm"), "f16 allow-list");
  EXPECT_EQ(Paint(*g, "softmax"), "f32 deny-list");
  // Only nodes painted half are put to the target.
  EXPECT_EQ(asked, (std::set<std::string>{"mm", "add", "relu", "reshape"}));
  // The veto spreads like a deny: reshape, a clear op after the vetoed relu, stays fp32 too.
  EXPECT_EQ(Paint(*g, "reshape"), "f32 deny: after relu");
  EXPECT_EQ(pass.half_nodes(), 2);
  EXPECT_EQ(pass.fp32_nodes(), 3);
}

// The veto is seen by the nodes that follow: with MatMul vetoed, `add` and what follows it are
// fp32 (otherwise insert-casts would narrow the fp32 MatMul result to f16 for nothing).
TEST(PaintPrecision, TargetVetoIsSeenByTheNodesThatFollow) {
  auto g = Parse(kChain);
  AutocastOptions o = Opts();
  o.supports = [](const Node& n, DType) { return n.op_type() != "MatMul"; };
  ASSERT_TRUE(PaintPrecisionPass(o).Run(*g).ok());
  EXPECT_EQ(Paint(*g, "mm"), "f32 target: no f16 MatMul");
  // fp32, whatever the reason a fix gives ("infer: an input is fp32", "deny: after mm", ...).
  EXPECT_EQ(Paint(*g, "add").substr(0, 4), "f32 ") << Paint(*g, "add");
  EXPECT_EQ(Paint(*g, "relu").substr(0, 4), "f32 ") << Paint(*g, "relu");
}

TEST(PaintPrecision, RejectsAHalfTypeThatIsNotHalf) {
  for (DType t : {DType::kFloat32, DType::kFloat64, DType::kInt64}) {
    auto g = Parse(kChain);
    const std::string before = PrintGraph(*g);
    auto r = PaintPrecisionPass(Opts(t)).Run(*g);
    ASSERT_FALSE(r.ok()) << DTypeName(t);
    EXPECT_NE(r.status().message().find("f16 or bf16"), std::string::npos);
    EXPECT_EQ(PrintGraph(*g), before);
  }
}

TEST(PaintPrecision, RejectsAnInvalidFp32NodesRegex) {
  auto g = Parse(kChain);
  AutocastOptions o = Opts();
  o.fp32_nodes = "fc(";
  auto r = PaintPrecisionPass(o).Run(*g);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--fp32-nodes 'fc('"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace ampc
