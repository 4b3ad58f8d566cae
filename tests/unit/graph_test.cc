// ir/graph: Graph::ReplaceValue, the rewrite step the decompositions share (a value's readers,
// graph-output place and name move to its replacement).
#include <gtest/gtest.h>

#include "ir/graph.h"
#include "ir/text.h"

namespace ampc {
namespace {

TEST(Graph, ReplaceValueMovesReadersOutputsAndName) {
  auto g = ParseGraph(R"(graph "g" opsets {"": 17} {
  input %x: f32[2]
  %y: f32[2] = Relu(%x) name="old"
  %z: f32[2] = Neg(%y) name="reader"
  output %y
  output %z
})");
  ASSERT_TRUE(g.ok()) << g.status().message();
  Graph& graph = **g;
  Value* y = graph.FindValue("y");
  auto n = graph.AddNode("Abs", "", "new", {graph.FindValue("x")}, {"fresh"});
  ASSERT_TRUE(n.ok()) << n.status().message();
  Value* fresh = (*n)->output(0);
  ASSERT_TRUE(graph.ReplaceValue(y, fresh).ok());
  EXPECT_EQ(fresh->name(), "y");
  EXPECT_NE(y->name(), "y");
  EXPECT_EQ(graph.FindValue("y"), fresh);
  EXPECT_EQ(graph.outputs()[0], fresh);
  EXPECT_EQ(graph.FindValue("z")->producer()->input(0), fresh);
  EXPECT_TRUE(y->uses().empty());
}

}  // namespace
}  // namespace ampc
