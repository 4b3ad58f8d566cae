#include <gtest/gtest.h>
#include "ir/graph.h"
TEST(Smoke, GraphBuilds) {
  ampc::Graph g;
  auto v = g.AddInput("x", ampc::TensorType(ampc::DType::kFloat32, {2, 3}));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)->type().ToString(), "f32[2,3]");
}
