// NarrowInputsPass (passes/narrow_inputs.h). Expected results follow the header's contract: a
// listed f32 input whose every reader is a Cast to one half type becomes that type and the Casts
// go; any other reader, two half types, an unlisted input or an input that is also a graph
// output leaves the graph as it was. Numeric equivalence on a whole training step is
// compiler_test's NarrowedDataInputTrainsBitForBitLikeTheCastItReplaces.
#include "passes/narrow_inputs.h"

#include <gtest/gtest.h>

#include <string>

#include "ir/text.h"
#include "tests/unit/graph_test_util.h"

namespace ampc {
namespace {

using testing::CountNodes;
using testing::NodeNamed;
using testing::Parse;
using testing::RunVerified;

TEST(NarrowInputs, InputOnlyCastToBf16BecomesABf16Input) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[2,3]
  input %lr: f32[]
  init %w: bf16[3,3] = elided
  %xb: bf16[2,3] = Cast(%x) {to=16} name="x_bf16"
  %xc: bf16[2,3] = Cast(%x) {to=16} name="x_bf16_again"
  %y: bf16[2,3] = MatMul(%xb, %w) name="mm"
  %z: bf16[2,3] = Add(%y, %xc) name="add"
  %s: f32[] = Mul(%lr, %lr) name="lr2"
  output %z
  output %s
}
)");
  NarrowInputsPass pass({"x"});
  auto changed = RunVerified(pass, *g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(pass.narrowed(), std::vector<std::string>{"x"});
  EXPECT_EQ(g->FindValue("x")->dtype(), DType::kBFloat16);
  EXPECT_EQ(g->FindValue("x")->type().ToString(), "bf16[2,3]");
  EXPECT_EQ(CountNodes(*g, "Cast"), 0);
  EXPECT_EQ(NodeNamed(*g, "mm")->input(0)->name(), "x");
  EXPECT_EQ(NodeNamed(*g, "add")->input(1)->name(), "x");
  EXPECT_EQ(g->FindValue("lr")->dtype(), DType::kFloat32);  // not listed
}

TEST(NarrowInputs, AnyOtherReaderKeepsTheInputF32) {
  const char* cases[] = {
      // An f32 reader beside the Cast.
      R"(graph "g" opsets {"": 17} {
  input %x: f32[4]
  %xb: bf16[4] = Cast(%x) {to=16} name="c"
  %r: f32[4] = Relu(%x) name="relu"
  %rb: f32[4] = Cast(%xb) {to=1} name="back"
  %o: f32[4] = Add(%r, %rb) name="add"
  output %o
}
)",
      // Casts to two half types.
      R"(graph "g" opsets {"": 17} {
  input %x: f32[4]
  %xb: bf16[4] = Cast(%x) {to=16} name="c1"
  %xh: f16[4] = Cast(%x) {to=10} name="c2"
  %b: f32[4] = Cast(%xb) {to=1} name="w1"
  %h: f32[4] = Cast(%xh) {to=1} name="w2"
  %o: f32[4] = Add(%b, %h) name="add"
  output %o
}
)",
      // The input is also a graph output.
      R"(graph "g" opsets {"": 17} {
  input %x: f32[4]
  %xb: bf16[4] = Cast(%x) {to=16} name="c"
  %o: bf16[4] = Relu(%xb) name="relu"
  output %o
  output %x
}
)",
      // A Cast to f32 is not a narrowing.
      R"(graph "g" opsets {"": 17} {
  input %x: f32[4]
  %xf: f32[4] = Cast(%x) {to=1} name="c"
  %o: f32[4] = Relu(%xf) name="relu"
  output %o
}
)",
  };
  for (const char* text : cases) {
    SCOPED_TRACE(text);
    auto g = Parse(text);
    const std::string before = PrintGraph(*g);
    NarrowInputsPass pass({"x"});
    auto changed = RunVerified(pass, *g);
    ASSERT_TRUE(changed.ok()) << changed.status().message();
    EXPECT_FALSE(*changed);
    EXPECT_TRUE(pass.narrowed().empty());
    EXPECT_EQ(PrintGraph(*g), before);
  }
}

}  // namespace
}  // namespace ampc
