// RematerializeForBackward (codegen/remat.h). Expected structure follows the header's contract:
// on a GELU block's training step, the backward's elementwise readers of the forward's erf term
// and scaled input read recomputed copies (made from the block's input, which the backward reads
// anyway, and constants), and the forward keeps only the values other nodes need. That the
// recomputed step trains to the same bits as the per-op step is generated_training_test's
// SameLossesAndWeightsAsPerOp on the MLP and transformer fixtures, whose lowering runs this pass.
#include "codegen/remat.h"

#include <gtest/gtest.h>

#include <string>

#include "compiler/compiler.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "tests/unit/graph_test_util.h"

namespace ampc {
namespace {

using testing::NodeNamed;

// y = gelu(x W^T) with torch's exported erf form, then logits = y V^T.
const char* kGelu = R"(graph "gelu" opsets {"": 17} {
  input %x: f32[4,6]
  init %w: f32[6,6] = [0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, 0.8, -0.9, 1.0, 0.1, 0.2, 0.3, -0.4, 0.5, 0.6, 0.7, -0.8, 0.9, 0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8, 0.9, -0.1, 0.2, 0.3, 0.4, -0.5, 0.6, 0.7, 0.8]
  init %v: f32[3,6] = [0.5, -0.25, 0.125, 0.75, 0.3, -0.6, 0.2, 0.1, -0.4, 0.05, 0.6, -0.2, 0.3, 0.3, 0.3, -0.3, 0.1, 0.2]
  init %sqrt2: f32[] = [1.4142135]
  init %one: f32[] = [1.0]
  init %half: f32[] = [0.5]
  %h: f32[4,6] = Gemm(%x, %w) {transB=1} name="fc"
  %d: f32[4,6] = Div(%h, %sqrt2) name="div"
  %e: f32[4,6] = Erf(%d) name="erf"
  %a: f32[4,6] = Add(%e, %one) name="add"
  %m: f32[4,6] = Mul(%h, %a) name="mul"
  %y: f32[4,6] = Mul(%m, %half) name="mul_1"
  %logits: f32[4,3] = Gemm(%y, %v) {transB=1} name="out"
  output %logits
}
)";

TEST(Remat, BackwardReadsRecomputedGeluTerms) {
  auto g = ParseGraph(kGelu);
  ASSERT_TRUE(g.ok()) << g.status().message();
  CompileOptions o;
  ASSERT_TRUE(BuildTrainingStep(**g, o).ok());
  Graph& t = **g;
  auto backward_readers = [&](const std::string& value) {
    int n = 0;
    for (const Use& u : t.FindValue(value)->uses()) n += u.user->annotations().count("grad_of");
    return n;
  };
  ASSERT_GT(backward_readers("a"), 0);  // Mul's gradient reads the erf term
  ASSERT_GT(backward_readers("d"), 0);  // Erf's gradient reads its input
  const int64_t before = t.num_nodes();
  const int done = RematerializeForBackward(t);
  EXPECT_EQ(done, 2);
  const Status verified = Verify(t);
  ASSERT_TRUE(verified.ok()) << verified.message();
  EXPECT_EQ(backward_readers("a"), 0);
  EXPECT_EQ(backward_readers("d"), 0);
  EXPECT_EQ(t.num_nodes(), before + 3);  // div, erf and add once each, shared by both readers
  for (const char* f : {"div", "erf", "add"}) {
    int copies = 0;
    for (const Node* n : t.nodes()) {
      auto it = n->annotations().find("remat_of");
      if (it == n->annotations().end() || it->second != f) continue;
      ++copies;
      EXPECT_EQ(n->op_type(), NodeNamed(t, f)->op_type());
      EXPECT_EQ(n->output(0)->type(), NodeNamed(t, f)->output(0)->type());
      EXPECT_TRUE(n->annotations().count("grad_of"));
    }
    EXPECT_EQ(copies, 1) << f;
  }
  // The copies read the block's input h (which Mul's gradient reads anyway) and constants.
  EXPECT_EQ(NodeNamed(t, "div")->output(0)->uses().size(), 1u);  // forward erf only
  // The GELU output feeds a GEMM in the backward (the output layer's weight gradient): it is not
  // recomputed.
  bool gemm_reads_y = false;
  for (const Use& u : t.FindValue("y")->uses()) {
    gemm_reads_y |= u.user->op_type() == "Gemm" && u.user->annotations().count("grad_of");
  }
  EXPECT_TRUE(gemm_reads_y);
  EXPECT_EQ(RematerializeForBackward(t), 0);  // nothing left to do
}

// A value whose recomputation would need a forward value the backward does not otherwise hold is
// left stored: Erf's gradient reads s = h * 2, but recomputing s needs the GEMM output h, which no
// backward node reads (the weight gradient reads x), so h would have to live longer.
TEST(Remat, NothingRecomputedFromValuesTheBackwardDoesNotHold) {
  auto g = ParseGraph(R"(graph "erf" opsets {"": 17} {
  input %x: f32[4,6]
  init %w: f32[6,6] = [0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, 0.8, -0.9, 1.0, 0.1, 0.2, 0.3, -0.4, 0.5, 0.6, 0.7, -0.8, 0.9, 0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8, 0.9, -0.1, 0.2, 0.3, 0.4, -0.5, 0.6, 0.7, 0.8]
  init %two: f32[] = [2.0]
  %h: f32[4,6] = Gemm(%x, %w) {transB=1} name="fc"
  %s: f32[4,6] = Mul(%h, %two) name="scale"
  %e: f32[4,6] = Erf(%s) name="erf"
  output %e
}
)");
  ASSERT_TRUE(g.ok()) << g.status().message();
  CompileOptions o;
  o.train.loss.kind = "mse";
  o.train.loss.labels_dims = {4, 6};
  auto info = BuildTrainingStep(**g, o);
  ASSERT_TRUE(info.ok()) << info.status().message();
  int s_backward = 0, h_backward = 0;
  for (const Use& u : (*g)->FindValue("s")->uses())
    s_backward += u.user->annotations().count("grad_of");
  for (const Use& u : (*g)->FindValue("h")->uses())
    h_backward += u.user->annotations().count("grad_of");
  ASSERT_GT(s_backward, 0);
  ASSERT_EQ(h_backward, 0);
  EXPECT_EQ(RematerializeForBackward(**g), 0);
  s_backward = 0;
  for (const Use& u : (*g)->FindValue("s")->uses())
    s_backward += u.user->annotations().count("grad_of");
  EXPECT_GT(s_backward, 0);
}

}  // namespace
}  // namespace ampc
