// Tests of reverse-mode autodiff (frontend/training/autodiff.h): every gradient rule is checked
// against float64 central finite differences (tests/unit/gradient_check.h). The rules of
// gradients_nn.cc and gradients_tensor.cc are checked in gradients_nn_test.cc.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "tests/unit/gradient_check.h"

namespace ampc {
namespace {

using namespace ::ampc::testing::gradcheck;  // NOLINT: the gradient-check harness

// SoftmaxCrossEntropyLoss over scores p[0] with fixed labels.
BuildFn Sce(std::vector<int64_t> labels, std::vector<int64_t> label_dims, AttributeMap attrs) {
  return [=](Builder& b, const std::vector<Value*>& p) {
    Value* l =
        *b.g.AddInitializer(b.g.UniqueName("labels"), Tensor::FromInt64s(labels, label_dims));
    return b.Op("SoftmaxCrossEntropyLoss", {p[0], l}, attrs);
  };
}

Value* Gelu(Builder& b, Value* x) {  // 0.5 x (1 + erf(x / sqrt 2))
  Value* s = b.Op("Div", {x, b.Scalar(std::sqrt(2.0))});
  Value* e = b.Op("Erf", {s});
  Value* one = b.Op("Add", {e, b.Scalar(1.0)});
  Value* hx = b.Op("Mul", {x, b.Scalar(0.5)});
  return b.Op("Mul", {hx, one});
}

std::vector<GradCase> Cases() {
  using V = std::vector<Value*>;
  std::vector<GradCase> c = {
      {"Add", {{2, 3}, {2, 3}}, Binary("Add")},
      {"AddBroadcastRow", {{2, 3}, {3}}, Binary("Add")},
      {"AddBroadcastBoth", {{2, 1, 3}, {4, 1}}, Binary("Add")},
      {"AddScalar", {{2, 3}, {}}, Binary("Add")},
      {"Sub", {{2, 3}, {2, 3}}, Binary("Sub")},
      {"SubBroadcastCol", {{2, 3}, {2, 1}}, Binary("Sub")},
      {"Mul", {{2, 3}, {2, 3}}, Binary("Mul")},
      {"MulBroadcastOuter", {{3, 1}, {1, 4}}, Binary("Mul")},
      {"Div", {{2, 3}, {2, 3}}, Binary("Div"), 0.5, 2.0},
      {"DivBroadcast", {{2, 3}, {3}}, Binary("Div"), 0.5, 2.0},
      {"Neg", {{2, 3}}, Unary("Neg")},
      {"Identity", {{2, 3}}, Unary("Identity")},
      {"MatMul", {{2, 3}, {3, 4}}, Binary("MatMul")},
      {"MatMulBatched", {{2, 2, 3}, {2, 3, 2}}, Binary("MatMul")},
      {"MatMulBroadcastWeight", {{2, 2, 3}, {3, 2}}, Binary("MatMul")},
      {"Gemm", {{2, 3}, {3, 4}, {4}}, [](Builder& b, const V& p) {
         return b.Op("Gemm", {p[0], p[1], p[2]});
       }},
      {"GemmNoBias", {{2, 3}, {3, 4}}, [](Builder& b, const V& p) {
         return b.Op("Gemm", {p[0], p[1]});
       }},
      {"GemmTransA", {{3, 2}, {3, 4}, {2, 4}}, [](Builder& b, const V& p) {
         return b.Op("Gemm", {p[0], p[1], p[2]},
                     A({{"transA", Attribute(int64_t{1})}, {"alpha", Attribute(0.5f)},
                        {"beta", Attribute(2.0f)}}));
       }},
      {"GemmTransB", {{2, 3}, {4, 3}, {2, 1}}, [](Builder& b, const V& p) {
         return b.Op("Gemm", {p[0], p[1], p[2]},
                     A({{"transB", Attribute(int64_t{1})}, {"alpha", Attribute(1.5f)}}));
       }},
      {"GemmTransAB", {{3, 2}, {4, 3}, {1}}, [](Builder& b, const V& p) {
         return b.Op("Gemm", {p[0], p[1], p[2]},
                     A({{"transA", Attribute(int64_t{1})}, {"transB", Attribute(int64_t{1})},
                        {"beta", Attribute(0.25f)}}));
       }},
      {"Relu", {{3, 4}}, Unary("Relu")},
      {"Tanh", {{2, 3}}, Unary("Tanh")},
      {"Sigmoid", {{2, 3}}, Unary("Sigmoid")},
      {"Exp", {{2, 3}}, Unary("Exp")},
      {"Log", {{2, 3}}, Unary("Log"), 0.5, 2.0},
      {"Sqrt", {{2, 3}}, Unary("Sqrt"), 0.5, 2.0},
      {"Erf", {{2, 3}}, Unary("Erf")},
      {"PowConstant", {{2, 3}}, [](Builder& b, const V& p) {
         return b.Op("Pow", {p[0], b.Scalar(3.0)});
       }, 0.5, 2.0},
      {"PowFractional", {{2, 3}}, [](Builder& b, const V& p) {
         return b.Op("Pow", {p[0], b.Scalar(2.5)});
       }, 0.5, 2.0},
      {"PowBothParams", {{2, 3}, {3}}, Binary("Pow"), 0.5, 2.0},
      {"Reshape", {{2, 3}}, [](Builder& b, const V& p) {
         return b.Op("Reshape", {p[0], b.Ints({3, 2})});
       }},
      {"Flatten", {{2, 3, 2}}, Unary("Flatten", A({{"axis", Attribute(int64_t{2})}}))},
      {"SqueezeUnsqueeze", {{2, 1, 3}}, [](Builder& b, const V& p) {
         Value* s = b.Op("Squeeze", {p[0], b.Ints({1})});
         return b.Op("Unsqueeze", {s, b.Ints({0})});
       }},
      {"Transpose", {{2, 3, 4}}, Unary("Transpose", A({{"perm", Attribute(std::vector<int64_t>{1, 2, 0})}}))},
      {"TransposeDefault", {{2, 3}}, Unary("Transpose")},
      {"ReduceSumKeep", {{2, 3, 2}}, [](Builder& b, const V& p) {
         return b.Op("ReduceSum", {p[0], b.Ints({1})});
       }},
      {"ReduceSumNoKeep", {{2, 3, 2}}, [](Builder& b, const V& p) {
         return b.Op("ReduceSum", {p[0], b.Ints({-1, 0})}, A({{"keepdims", Attribute(int64_t{0})}}));
       }},
      {"ReduceMeanNoKeep", {{2, 3, 2}}, Unary("ReduceMean", A({{"axes", Attribute(std::vector<int64_t>{0, 2})}, {"keepdims", Attribute(int64_t{0})}}))},
      {"ReduceMeanAll", {{2, 3}}, Unary("ReduceMean")},
      {"Softmax", {{2, 4}}, Unary("Softmax")},
      {"SoftmaxAxis1", {{2, 3, 2}}, Unary("Softmax", A({{"axis", Attribute(int64_t{1})}}))},
      {"LogSoftmax", {{2, 4}}, Unary("LogSoftmax")},
      {"LayerNorm", {{3, 4}, {4}, {4}}, [](Builder& b, const V& p) {
         return b.Op("LayerNormalization", {p[0], p[1], p[2]});
       }},
      {"LayerNormAxis1NoBias", {{2, 3, 2}, {3, 2}}, [](Builder& b, const V& p) {
         return b.Op("LayerNormalization", {p[0], p[1]},
                     A({{"axis", Attribute(int64_t{1})}, {"epsilon", Attribute(1e-3f)}}));
       }},
      {"SoftmaxCrossEntropyMean", {{3, 4}}, Sce({0, 3, 1}, {3}, {})},
      {"SoftmaxCrossEntropySum", {{3, 4}}, Sce({2, 2, 1}, {3}, A({{"reduction", Attribute(std::string("sum"))}}))},
      {"SoftmaxCrossEntropyNone", {{3, 4}}, Sce({1, 0, 3}, {3}, A({{"reduction", Attribute(std::string("none"))}}))},
      {"SoftmaxCrossEntropyIgnore", {{4, 3}}, Sce({0, -100, 2, 1}, {4}, A({{"ignore_index", Attribute(int64_t{-100})}}))},
      {"SoftmaxCrossEntropySpatial", {{2, 3, 2}}, Sce({0, 2, 1, 1}, {2, 2}, {})},
      {"SoftmaxCrossEntropyLogProb", {{2, 3}}, [](Builder& b, const V& p) {
         Value* l = *b.g.AddInitializer("labels", Tensor::FromInt64s({2, 0}, {2}));
         Value* loss = b.Op("SoftmaxCrossEntropyLoss", {p[0], l}, {}, 2);
         Value* logp = loss->producer()->output(1);
         return b.Op("Add", {logp, loss});
       }},
      {"UsedTwice", {{2, 3}}, [](Builder& b, const V& p) {
         Value* sq = b.Op("Mul", {p[0], p[0]});
         return b.Op("Add", {sq, p[0]});
       }},
      {"Mlp", {{3, 5}, {5}, {5}, {5}, {5, 3}, {3}}, [](Builder& b, const V& p) {
         Value* x = b.Const(Random(12, -1.0, 1.0, 5), {4, 3});
         Value* h = b.Op("Gemm", {x, p[0], p[1]});
         Value* n = b.Op("LayerNormalization", {h, p[2], p[3]});
         Value* a = Gelu(b, n);
         Value* o = b.Op("Gemm", {a, p[4], p[5]});
         Value* l = *b.g.AddInitializer("labels", Tensor::FromInt64s({0, 2, 1, 2}, {4}));
         return b.Op("SoftmaxCrossEntropyLoss", {o, l});
       }},
  };
  // Symbolic batch dims: reductions and reshapes go through Shape / Size at run time.
  const TensorType x2(DType::kFloat64, {Dim::Symbol("batch"), 3});
  const Tensor x2_data = F64(Random(12, -1.0, 1.0, 9), {4, 3});
  const TensorType labels_t(DType::kInt64, {Dim::Symbol("batch")});
  const Tensor labels_data = Tensor::FromInt64s({0, 3, 1, 2}, {4});
  auto x = [](Builder& b) { return b.g.inputs()[0]; };
  c.push_back({"SymbolicLinear",
               {{3, 2}, {2}},
               [x](Builder& b, const V& p) {
                 return b.Op("Add", {b.Op("MatMul", {x(b), p[0]}), p[1]});
               },
               -1.0,
               1.0,
               {{"x", x2}},
               {x2_data}});
  c.push_back({"SymbolicReduceMean",
               {{3}},
               [x](Builder& b, const V& p) {
                 Value* m = b.Op("Mul", {x(b), p[0]});
                 return b.Op("ReduceMean", {m},
                             A({{"axes", Attribute(std::vector<int64_t>{0})},
                                {"keepdims", Attribute(int64_t{0})}}));
               },
               -1.0,
               1.0,
               {{"x", x2}},
               {x2_data}});
  c.push_back({"SymbolicFlatten",
               {{3}},
               [x](Builder& b, const V& p) {
                 Value* m = b.Op("Mul", {x(b), p[0]});
                 Value* r = b.Op("Reshape", {m, b.Ints({-1, 1, 3})});
                 return b.Op("Flatten", {r}, A({{"axis", Attribute(int64_t{1})}}));
               },
               -1.0,
               1.0,
               {{"x", x2}},
               {x2_data}});
  c.push_back({"SymbolicSoftmaxCrossEntropy",
               {{3, 4}},
               [x](Builder& b, const V& p) {
                 Value* s = b.Op("MatMul", {x(b), p[0]});
                 return b.Op("SoftmaxCrossEntropyLoss", {s, b.g.inputs()[1]});
               },
               -1.0,
               1.0,
               {{"x", x2}, {"labels", labels_t}},
               {x2_data, labels_data}});
  return c;
}

class AutodiffGradientTest : public ::testing::TestWithParam<GradCase> {};

TEST_P(AutodiffGradientTest, MatchesFiniteDifferences) { CheckGradients(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Ops, AutodiffGradientTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<GradCase>& i) { return i.param.name; });

TEST(AutodiffTest, ValueUsedTwiceGetsSummedGradient) {
  GradCase c{"twice", {{3}}, [](Builder& b, const std::vector<Value*>& p) {
               return b.Op("Mul", {p[0], p[0]});
             }};
  std::vector<double> x = {0.5, -1.5, 2.0};
  Model m = BuildModel(c, {x});
  auto r = BuildBackward(*m.graph, m.loss, m.params);
  ASSERT_TRUE(r.ok()) << r.status().message();
  int adds = 0;
  for (const Node* n : m.graph->nodes()) {
    if (n->op_type() == "Add" && n->annotations().count("grad_of")) ++adds;
  }
  EXPECT_EQ(adds, 1);
  m.graph->SetOutputs({r->grads.at(m.params[0])});
  std::vector<Tensor> out = RunGraph(std::move(m.graph));
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> w = Random(3, -1.0, 1.0, 1234);  // BuildModel's weights
  std::vector<double> g = *out[0].AsDoubles();
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(g[i], 2 * x[i] * w[i], 1e-12);
}

TEST(AutodiffTest, IntegerPathsGetNoGradient) {
  // out = p * Cast(Shape(p)): the integer Shape path carries no gradient (and needs no rule).
  Graph g;
  g.opsets()[""] = 17;
  Value* p = *g.AddInitializer("p", F64({1.0, 2.0, 3.0}, {3}));
  Value* idx = *g.AddInitializer("idx", Tensor::FromInt64s({0, 0}, {2}));
  Builder b{g};
  Value* shape = b.Op("Shape", {p});
  Value* cast = b.Op("Cast", {shape}, A({{"to", Attribute(int64_t{11})}}));
  Value* gathered = b.Op("Gather", {shape, idx});  // integer value, unused by the loss
  (void)gathered;
  Value* out = b.Op("Mul", {p, cast});
  Value* loss = b.Op("ReduceSum", {out}, A({{"keepdims", Attribute(int64_t{0})}}));
  auto r = BuildBackward(g, loss, {p, idx});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->grads.count(p));
  EXPECT_FALSE(r->grads.count(idx));
  for (const Node* n : g.nodes()) {
    auto it = n->annotations().find("grad_of");
    if (it != n->annotations().end()) {
      EXPECT_NE(it->second, shape->producer()->name());
      EXPECT_NE(it->second, cast->producer()->name());
    }
  }
  // The seed is a scalar initializer 1.0 of the loss dtype.
  ASSERT_NE(r->seed, nullptr);
  EXPECT_EQ(r->seed->kind(), ValueKind::kInitializer);
  EXPECT_EQ(r->seed->type(), TensorType(DType::kFloat64, {}));
  EXPECT_EQ((*r->seed->initializer()->AsDoubles())[0], 1.0);
}

TEST(AutodiffTest, PrunesGradientsNobodyAskedFor) {
  // Only dL/da is requested: no node computes dL/db (a MatMul with A^T).
  Graph g;
  g.opsets()[""] = 17;
  Value* a = *g.AddInitializer("a", F64(Random(6, -1, 1, 1), {2, 3}));
  Value* bb = *g.AddInitializer("b", F64(Random(6, -1, 1, 2), {3, 2}));
  Builder b{g};
  Value* y = b.Op("MatMul", {a, bb});
  Value* loss = b.Op("ReduceSum", {y}, A({{"keepdims", Attribute(int64_t{0})}}));
  auto r = BuildBackward(g, loss, {a});
  ASSERT_TRUE(r.ok()) << r.status().message();
  int matmuls = 0;
  for (const Node* n : g.nodes()) {
    if (n->annotations().count("grad_of") && n->op_type() == "MatMul") ++matmuls;
  }
  EXPECT_EQ(matmuls, 1);
  EXPECT_FALSE(r->grads.count(bb));
}

TEST(AutodiffTest, MissingRuleIsUnimplemented) {
  Graph g;
  g.opsets()[""] = 17;
  Value* p = *g.AddInitializer("p", F64({1.0, -2.0}, {2}));
  Builder b{g};
  Value* y = b.Op("CumSum", {p, *g.AddInitializer("axis", Tensor::ScalarInt64(0))});
  Value* loss = b.Op("ReduceSum", {y}, A({{"keepdims", Attribute(int64_t{0})}}));
  auto r = BuildBackward(g, loss, {p});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("CumSum"), std::string::npos) << r.status().message();
}

TEST(AutodiffTest, SymbolicDimsUseRuntimeShapes) {
  // ReduceMean over a symbolic batch divides by Size(x)/Size(y); the bias gradient of a
  // broadcast Add sums over the symbolic axis.
  auto owned = std::make_unique<Graph>();
  Graph& g = *owned;
  g.opsets()[""] = 17;
  Value* x = *g.AddInput("x", TensorType(DType::kFloat64, {Dim::Symbol("batch"), 3}));
  Value* bias = *g.AddInitializer("bias", F64({0.1, 0.2, 0.3}, {3}));
  Builder b{g};
  Value* y = b.Op("Add", {x, bias});
  Value* m =
      b.Op("ReduceMean", {y},
           A({{"axes", Attribute(std::vector<int64_t>{0})}, {"keepdims", Attribute(int64_t{0})}}));
  Value* loss = b.Op("ReduceSum", {m}, A({{"keepdims", Attribute(int64_t{0})}}));
  auto r = BuildBackward(g, loss, {bias});
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::multiset<std::string> ops;
  for (const Node* n : g.nodes()) {
    if (n->annotations().count("grad_of")) ops.insert(n->op_type());
  }
  EXPECT_EQ(ops.count("Size"), 1u);  // Size(x); the reduced [3] has a static count
  EXPECT_EQ(ops.count("ReduceSum"), 1u);
  EXPECT_EQ(r->grads.at(bias)->type(), TensorType(DType::kFloat64, {3}));
  g.SetOutputs({r->grads.at(bias)});
  // d/dbias of sum(mean over batch) is 1 whatever the batch size.
  std::vector<Tensor> out = RunGraph(std::move(owned), {F64(Random(15, -1, 1, 3), {5, 3})});
  ASSERT_EQ(out.size(), 1u);
  const std::vector<double> got = *out[0].AsDoubles();
  for (double v : got) EXPECT_NEAR(v, 1.0, 1e-12);
}

}  // namespace
}  // namespace ampc
