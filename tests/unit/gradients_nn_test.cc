// Finite-difference checks (tests/unit/gradient_check.h) of the gradient rules in
// frontend/training/gradients_nn.cc and gradients_tensor.cc, plus the conventions that finite
// differences cannot see (Clip at its bounds, ties, Cast, training-mode Dropout's mask).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "frontend/training/batchnorm_ops.h"
#include "tests/unit/gradient_check.h"

namespace ampc {
namespace {

using namespace ::ampc::testing::gradcheck;  // NOLINT: the gradient-check harness
using V = std::vector<Value*>;
using Ints64 = std::vector<int64_t>;

Attribute I(int64_t v) { return Attribute(v); }
Attribute Is(Ints64 v) { return Attribute(std::move(v)); }
Attribute Str(const char* s) { return Attribute(std::string(s)); }

Value* BoolConst(Builder& b, const std::vector<uint8_t>& v, Ints64 dims) {
  return *b.g.AddInitializer(b.g.UniqueName("cond"), Tensor(DType::kBool, std::move(dims), v));
}
Value* Labels(Builder& b, const Ints64& v, Ints64 dims) {
  return *b.g.AddInitializer(b.g.UniqueName("labels"), Tensor::FromInt64s(v, std::move(dims)));
}

// Conv(p[0], p[1]) with bias p[2] when `bias`.
BuildFn ConvOf(AttributeMap attrs, bool bias) {
  return [=](Builder& b, const V& p) {
    V in = {p[0], p[1]};
    if (bias) in.push_back(p[2]);
    return b.Op("Conv", in, attrs);
  };
}

BuildFn PoolOf(const char* op, AttributeMap attrs, int outputs = 1) {
  return [=](Builder& b, const V& p) { return b.Op(op, {p[0]}, attrs, outputs); };
}

// NegativeLogLikelihoodLoss on LogSoftmax(p[0]) (so values are log-probabilities).
BuildFn Nll(Ints64 labels, Ints64 label_dims, AttributeMap attrs, std::vector<double> weight = {}) {
  return [=](Builder& b, const V& p) {
    Value* lp = b.Op("LogSoftmax", {p[0]}, A({{"axis", I(1)}}));
    V in = {lp, Labels(b, labels, label_dims)};
    if (!weight.empty()) in.push_back(b.Const(weight, {static_cast<int64_t>(weight.size())}));
    return b.Op("NegativeLogLikelihoodLoss", in, attrs);
  };
}

std::vector<GradCase> ConvAndPoolCases() {
  std::vector<GradCase> c = {
      {"Conv1DStridePad", {{2, 2, 7}, {3, 2, 3}, {3}},
       ConvOf(A({{"strides", Is({2})}, {"pads", Is({1, 0})}}), true)},
      {"Conv2D", {{1, 2, 4, 4}, {3, 2, 3, 3}, {3}}, ConvOf({}, true)},
      {"Conv2DStridePadDilation", {{2, 2, 5, 6}, {2, 2, 2, 3}},
       ConvOf(A({{"strides", Is({2, 1})}, {"pads", Is({1, 0, 0, 2})},
                     {"dilations", Is({2, 1})}}), false)},
      {"Conv2DGroups", {{1, 4, 4, 4}, {4, 2, 3, 3}, {4}},
       ConvOf(A({{"group", I(2)}, {"pads", Is({1, 1, 1, 1})}}), true)},
      {"Conv2DDepthwise", {{2, 3, 4, 4}, {3, 1, 2, 2}, {3}},
       ConvOf(A({{"group", I(3)}, {"strides", Is({2, 2})}}), true)},
      {"Conv2DPointwise", {{2, 3, 3, 3}, {2, 3, 1, 1}}, ConvOf({}, false)},
      {"Conv2DSameUpper", {{1, 1, 5, 5}, {2, 1, 3, 3}, {2}},
       ConvOf(A({{"auto_pad", Str("SAME_UPPER")}, {"strides", Is({2, 2})}}), true)},
      {"Conv3D", {{1, 2, 3, 3, 3}, {2, 2, 2, 2, 2}}, ConvOf(A({{"pads", Is({1, 0, 0, 0, 1, 0})}}), false)},
      {"MaxPool2D", {{1, 2, 4, 4}}, PoolOf("MaxPool", A({{"kernel_shape", Is({2, 2})},
                                                          {"strides", Is({2, 2})}}))},
      {"MaxPoolOverlapPad", {{2, 1, 5, 5}}, PoolOf("MaxPool", A({{"kernel_shape", Is({3, 3})},
                                                                 {"pads", Is({1, 1, 1, 1})}}), 2)},
      {"MaxPoolDilationCeil", {{1, 1, 6, 7}},
       PoolOf("MaxPool", A({{"kernel_shape", Is({2, 2})}, {"strides", Is({2, 2})},
                            {"dilations", Is({1, 2})}, {"ceil_mode", I(1)}}))},
      {"MaxPool1D", {{2, 2, 7}}, PoolOf("MaxPool", A({{"kernel_shape", Is({3})},
                                                      {"strides", Is({2})},
                                                      {"pads", Is({1, 1})}}))},
      {"AveragePoolExcludePad", {{1, 2, 5, 5}},
       PoolOf("AveragePool", A({{"kernel_shape", Is({3, 3})}, {"strides", Is({2, 2})},
                                {"pads", Is({1, 1, 1, 1})}}))},
      {"AveragePoolIncludePad", {{1, 1, 4, 5}},
       PoolOf("AveragePool", A({{"kernel_shape", Is({2, 3})}, {"pads", Is({1, 0, 0, 1})},
                                {"count_include_pad", I(1)}}))},
      {"AveragePool1DCeil", {{2, 1, 6}},
       PoolOf("AveragePool", A({{"kernel_shape", Is({3})}, {"strides", Is({2})},
                                {"ceil_mode", I(1)}}))},
      {"GlobalAveragePool", {{2, 3, 3, 4}}, Unary("GlobalAveragePool")},
      {"SmallCnn", {{2, 1, 3, 3}, {2}, {8, 3}, {3}}, [](Builder& b, const V& p) {
         Value* x = b.Const(Random(72, -1.0, 1.0, 11), {2, 1, 6, 6});
         Value* h = b.Op("Conv", {x, p[0], p[1]});
         Value* r = b.Op("Relu", {h});
         Value* m = b.Op("MaxPool", {r}, A({{"kernel_shape", Is({2, 2})}, {"strides", Is({2, 2})}}));
         Value* f = b.Op("Flatten", {m});
         Value* o = b.Op("Gemm", {f, p[2], p[3]});
         return b.Op("SoftmaxCrossEntropyLoss", {o, Labels(b, {2, 0}, {2})});
       }},
  };
  // Symbolic batch: the backward ops get runtime shapes (Shape) and are specialised later.
  const TensorType img(DType::kFloat64, {Dim::Symbol("batch"), 2, 5, 5});
  const Tensor img_data = F64(Random(150, -1.0, 1.0, 21), {3, 2, 5, 5});
  auto x = [](Builder& b) { return b.g.inputs()[0]; };
  c.push_back({"SymbolicConvPool",
               {{3, 2, 3, 3}, {3}},
               [x](Builder& b, const V& p) {
                 Value* h = b.Op("Conv", {x(b), p[0], p[1]}, A({{"pads", Is({1, 1, 1, 1})}}));
                 Value* a = b.Op("AveragePool", {h},
                                 A({{"kernel_shape", Is({2, 2})}, {"strides", Is({2, 2})}}));
                 Value* m = b.Op("MaxPool", {h},
                                 A({{"kernel_shape", Is({3, 3})}, {"strides", Is({2, 2})}}));
                 Value* s = b.Op("Add", {a, m});
                 return b.Op("GlobalAveragePool", {s});
               },
               -1.0,
               1.0,
               {{"x", img}},
               {img_data}});
  return c;
}

std::vector<GradCase> NormAndLossCases() {
  std::vector<GradCase> c = {
      {"BatchNormTraining",
       {{3, 2, 2}, {2}, {2}},
       [](Builder& b, const V& p) {
         return b.Op("BatchNormalization",
                     {p[0], p[1], p[2], b.Const({0.1, -0.2}, {2}), b.Const({1.0, 0.5}, {2})},
                     A({{"training_mode", I(1)}}), 3);
       }},
      {"BatchNormTraining2D",
       {{4, 3}, {3}, {3}},
       [](Builder& b, const V& p) {
         return b.Op("BatchNormalization",
                     {p[0], p[1], p[2], b.Const({0, 0, 0}, {3}), b.Const({1, 1, 1}, {3})},
                     A({{"training_mode", I(1)}, {"epsilon", Attribute(1e-3f)}}));
       }},
      {"BatchNormTraining4D",
       {{2, 3, 2, 2}, {3}, {3}},
       [](Builder& b, const V& p) {
         return b.Op("BatchNormalization",
                     {p[0], p[1], p[2], b.Const({0, 0, 0}, {3}), b.Const({1, 1, 1}, {3})},
                     A({{"training_mode", I(1)}}), 3);
       }},
      {"BatchNormInference",
       {{2, 3, 2}, {3}, {3}, {3}, {3}},
       [](Builder& b, const V& p) {
         Value* var = b.Op("Add", {b.Op("Mul", {p[4], p[4]}), b.Scalar(0.5)});
         return b.Op("BatchNormalization", {p[0], p[1], p[2], p[3], var});
       }},
      {"NllMean", {{3, 4}}, Nll({0, 3, 1}, {3}, {})},
      {"NllSum", {{3, 4}}, Nll({2, 2, 1}, {3}, A({{"reduction", Str("sum")}}))},
      {"NllNone", {{3, 4}}, Nll({1, 0, 3}, {3}, A({{"reduction", Str("none")}}))},
      {"NllWeightedMean", {{3, 4}}, Nll({1, 0, 1}, {3}, {}, {0.5, 2.0, 1.0, 3.0})},
      {"NllWeightedIgnoreMean",
       {{4, 3}},
       Nll({0, -1, 2, 0}, {4}, A({{"ignore_index", I(-1)}}), {0.5, 2.0, 1.5})},
      {"NllIgnoreNone",
       {{4, 3}},
       Nll({0, 7, 2, 1}, {4}, A({{"ignore_index", I(7)}, {"reduction", Str("none")}}))},
      {"NllSpatial", {{2, 3, 2}}, Nll({0, 2, 1, 1}, {2, 2}, {})},
      {"NllSpatialWeightedSum",
       {{2, 3, 2}},
       Nll({0, 2, 1, 1}, {2, 2}, A({{"reduction", Str("sum")}}), {1.0, 2.0, 3.0})},
      {"DropoutInference", {{2, 3}}, Unary("Dropout")},
      {"DropoutModeFalse",
       {{2, 3}},
       [](Builder& b, const V& p) {
         return b.Op("Dropout", {p[0], b.Scalar(0.3), BoolConst(b, {0}, {})}, {}, 2);
       }},
      {"DropoutTrainingRatio0",
       {{2, 3}},
       [](Builder& b, const V& p) {
         return b.Op("Dropout", {p[0], b.Scalar(0.0), BoolConst(b, {1}, {})}, {}, 2);
       }},
  };
  const TensorType x2(DType::kFloat64, {Dim::Symbol("batch"), 3});
  const Tensor x2_data = F64(Random(12, -1.0, 1.0, 9), {4, 3});
  const TensorType labels_t(DType::kInt64, {Dim::Symbol("batch")});
  const Tensor labels_data = Tensor::FromInt64s({0, 3, 1, 2}, {4});
  auto x = [](Builder& b) { return b.g.inputs()[0]; };
  c.push_back({"SymbolicNllMean",
               {{3, 4}},
               [x](Builder& b, const V& p) {
                 Value* s = b.Op("LogSoftmax", {b.Op("MatMul", {x(b), p[0]})});
                 return b.Op("NegativeLogLikelihoodLoss", {s, b.g.inputs()[1]});
               },
               -1.0,
               1.0,
               {{"x", x2}, {"labels", labels_t}},
               {x2_data, labels_data}});
  const TensorType x3(DType::kFloat64, {Dim::Symbol("batch"), 2, 3});
  c.push_back({"SymbolicBatchNormTraining",
               {{2}, {2}},
               [x](Builder& b, const V& p) {
                 return b.Op("BatchNormalization",
                             {x(b), p[0], p[1], b.Const({0, 0}, {2}), b.Const({1, 1}, {2})},
                             A({{"training_mode", I(1)}}));
               },
               -1.0,
               1.0,
               {{"x", x3}},
               {F64(Random(18, -1.0, 1.0, 4), {3, 2, 3})}});
  return c;
}

std::vector<GradCase> TensorCases() {
  std::vector<GradCase> c = {
      {"Abs", {{2, 3}}, Unary("Abs")},
      {"ClipBoth",
       {{3, 4}},
       [](Builder& b, const V& p) {
         return b.Op("Clip", {p[0], b.Scalar(-0.5), b.Scalar(0.4)});
       }},
      {"ClipMinOnly",
       {{3, 4}},
       [](Builder& b, const V& p) {
         return b.Op("Clip", {p[0], b.Scalar(-0.2)});
       }},
      {"ClipBoundParams",
       {{3, 4}, {}, {}},
       [](Builder& b, const V& p) {
         // lo in [-1, 0), hi in [0, 1): lo <= hi
         Value* lo = b.Op("Sub", {b.Op("Mul", {p[1], b.Scalar(0.5)}), b.Scalar(0.5)});
         Value* hi = b.Op("Add", {b.Op("Mul", {p[2], b.Scalar(0.5)}), b.Scalar(0.5)});
         return b.Op("Clip", {p[0], lo, hi});
       },
       -1.0,
       1.0},
      {"MaxBroadcast", {{2, 3}, {3}}, Binary("Max")},
      {"MinBroadcast", {{2, 1}, {1, 3}}, Binary("Min")},
      {"MaxTied",
       {{2, 3}},
       [](Builder& b, const V& p) {
         return b.Op("Max", {p[0], p[0]});
       }},
      {"MinSingle", {{2, 3}}, Unary("Min")},
      {"Where",
       {{2, 3}, {3}},
       [](Builder& b, const V& p) {
         return b.Op("Where", {BoolConst(b, {1, 0, 0, 1, 1, 0}, {2, 3}), p[0], p[1]});
       }},
      {"WhereBroadcastAll",
       {{2, 1}, {}},
       [](Builder& b, const V& p) {
         return b.Op("Where", {BoolConst(b, {0, 1, 1}, {1, 3}), p[0], p[1]});
       }},
      {"ExpandInner",
       {{3, 1}},
       [](Builder& b, const V& p) {
         return b.Op("Expand", {p[0], b.Ints({2, 3, 4})});
       }},
      {"ExpandLeading",
       {{4}},
       [](Builder& b, const V& p) {
         return b.Op("Expand", {p[0], b.Ints({2, 1})});
       }},
      {"Pad",
       {{2, 3}},
       [](Builder& b, const V& p) {
         return b.Op("Pad", {p[0], b.Ints({0, 1, 2, 0})});
       }},
      {"PadValue",
       {{3, 4}, {}},
       [](Builder& b, const V& p) {
         return b.Op("Pad", {p[0], b.Ints({1, 1, 0, 2}), p[1]});
       }},
      {"PadNegative",
       {{3, 4}},
       [](Builder& b, const V& p) {
         return b.Op("Pad", {p[0], b.Ints({1, -1, -1, 2})});
       }},
      {"Slice",
       {{4, 5}},
       [](Builder& b, const V& p) {
         return b.Op("Slice", {p[0], b.Ints({1, -3}), b.Ints({3, 100}), b.Ints({0, 1})});
       }},
      {"SliceDefaultAxes",
       {{3, 4, 2}},
       [](Builder& b, const V& p) {
         return b.Op("Slice", {p[0], b.Ints({1}), b.Ints({-1})});
       }},
      {"SliceNegativeAxisUnitStep",
       {{3, 4}},
       [](Builder& b, const V& p) {
         return b.Op("Slice", {p[0], b.Ints({0}), b.Ints({2}), b.Ints({-1}), b.Ints({1})});
       }},
      {"SliceStep2",
       {{7}},
       [](Builder& b, const V& p) {
         return b.Op("Slice", {p[0], b.Ints({1}), b.Ints({7}), b.Ints({0}), b.Ints({2})});
       }},
      {"SliceNegativeStepsTwoAxes",
       {{4, 5, 2}},
       [](Builder& b, const V& p) {
         return b.Op("Slice",
                     {p[0], b.Ints({-1, 4}), b.Ints({-100, 0}), b.Ints({0, 1}), b.Ints({-2, -1})});
       }},
      {"ConcatTwo",
       {{2, 3}, {2, 1}},
       [](Builder& b, const V& p) {
         return b.Op("Concat", {p[0], p[1]}, A({{"axis", I(1)}}));
       }},
      {"ConcatThreeNegativeAxis",
       {{1, 2}, {3, 2}, {2, 2}},
       [](Builder& b, const V& p) {
         return b.Op("Concat", {p[0], p[1], p[2]}, A({{"axis", I(-2)}}));
       }},
      {"SplitBothUsed",
       {{2, 6}},
       [](Builder& b, const V& p) {
         Value* a = b.Op("Split", {p[0]}, A({{"axis", I(1)}}), 2);
         return b.Op("Mul", {a, a->producer()->output(1)});
       }},
      {"SplitOneUsed",
       {{5, 2}},
       [](Builder& b, const V& p) {
         Value* a = b.Op("Split", {p[0], b.Ints({2, 3})}, {}, 2);
         return a->producer()->output(1);
       }},
      {"GatherRepeated",
       {{5, 3}},
       [](Builder& b, const V& p) {
         return b.Op("Gather", {p[0], Labels(b, {0, 4, -1, 0}, {2, 2})});
       }},
      {"GatherAxis1",
       {{2, 4, 3}},
       [](Builder& b, const V& p) {
         return b.Op("Gather", {p[0], Labels(b, {3, -4, 0}, {3})}, A({{"axis", I(1)}}));
       }},
      {"GatherScalarIndex",
       {{3, 4}},
       [](Builder& b, const V& p) {
         return b.Op("Gather", {p[0], *b.g.AddInitializer("idx", Tensor::ScalarInt64(-1))},
                     A({{"axis", I(-1)}}));
       }},
      {"ReduceSumSquare",
       {{2, 3, 2}},
       Unary("ReduceSumSquare", A({{"axes", Is({1})}, {"keepdims", I(0)}}))},
      {"ReduceSumSquareAll", {{2, 3}}, Unary("ReduceSumSquare")},
      {"ReduceMax", {{3, 4}}, Unary("ReduceMax", A({{"axes", Is({1})}, {"keepdims", I(0)}}))},
      {"ReduceMinAll", {{2, 3}}, Unary("ReduceMin")},
      {"ReduceMaxTied",
       {{2, 3}},
       [](Builder& b, const V& p) {
         Value* twice = b.Op("Concat", {p[0], p[0]}, A({{"axis", I(0)}}));
         return b.Op("ReduceMax", {twice}, A({{"axes", Is({0})}}));
       }},
  };
  const TensorType x2(DType::kFloat64, {Dim::Symbol("batch"), 3});
  const Tensor x2_data = F64(Random(12, -1.0, 1.0, 9), {4, 3});
  const TensorType ids_t(DType::kInt64, {Dim::Symbol("batch")});
  auto x = [](Builder& b) { return b.g.inputs()[0]; };
  c.push_back({"SymbolicConcatSplit",
               {{2, 3}},
               [x](Builder& b, const V& p) {
                 Value* cat = b.Op("Concat", {x(b), p[0]}, A({{"axis", I(0)}}));
                 Value* t = b.Op("Tanh", {cat});
                 return b.Op("ReduceSum", {t, b.Ints({0})});
               },
               -1.0,
               1.0,
               {{"x", x2}},
               {x2_data}});
  c.push_back({"SymbolicGatherEmbedding",
               {{5, 3}},
               [](Builder& b, const V& p) {
                 return b.Op("Gather", {p[0], b.g.inputs()[0]});
               },
               -1.0,
               1.0,
               {{"ids", ids_t}},
               {Tensor::FromInt64s({4, 0, -1, 2}, {4})}});
  c.push_back({"SymbolicWhereClipMax",
               {{3}},
               [x](Builder& b, const V& p) {
                 Value* cond = b.Op("Greater", {x(b), b.Scalar(0.0)});
                 Value* w = b.Op("Where", {cond, x(b), p[0]});
                 Value* m = b.Op("Max", {w, p[0]});
                 return b.Op("Clip", {m, b.Scalar(-0.3), b.Scalar(0.6)});
               },
               -1.0,
               1.0,
               {{"x", x2}},
               {x2_data}});
  return c;
}

// The BatchNormalization cases with every BatchNormalization decomposed into ONNX ops
// (frontend/training/batchnorm_ops.h; training_mode picks the form), as for the CUDA target.
std::vector<GradCase> DecomposedBatchNormCases() {
  std::vector<GradCase> cases;
  for (GradCase& c : NormAndLossCases()) {
    if (c.name.find("BatchNorm") == std::string::npos) continue;
    c.name += "Decomposed";
    c.rewrite = [](Graph& g) {
      std::vector<Node*> bns;
      for (Node* n : g.nodes()) {
        if (n->op_type() == "BatchNormalization") bns.push_back(n);
      }
      ASSERT_FALSE(bns.empty());
      for (Node* n : bns) {
        auto r = DecomposeBatchNorm(g, n, n->attr_int("training_mode", 0) != 0);
        ASSERT_TRUE(r.ok()) << r.status().message();
      }
      ASSERT_TRUE(g.TopologicalSort().ok());
      for (const Node* n : g.nodes()) EXPECT_NE(n->op_type(), "BatchNormalization");
    };
    cases.push_back(std::move(c));
  }
  return cases;
}

// The decomposition computes what the BatchNormalization kernel computes (f64: to rounding).
TEST(DecomposeBatchNorm, MatchesTheKernel) {
  const std::vector<GradCase> cases = DecomposedBatchNormCases();
  EXPECT_EQ(cases.size(), 5u);
  for (const GradCase& c : cases) ExpectRewriteKeepsLoss(c, 9);
}

// The training form's running statistics, against torch.nn.BatchNorm's documented rule computed
// here in double: running * momentum + batch * (1 - momentum), the variance unbiased (n - 1).
// n = 2 * 2 = 4 elements per channel, so the unbiased factor 4/3 is far from 1.
TEST(DecomposeBatchNorm, RunningStatisticsFollowTorch) {
  auto g = std::make_unique<Graph>();
  g->opsets()[""] = 17;
  Builder b{*g};
  const std::vector<double> x = Random(12, -1.0, 1.0, 21), rm = {0.1, -0.2, 0.3},
                            rv = {1.0, 0.5, 2.0};
  Value* y = b.Op("BatchNormalization",
                  {b.Const(x, {2, 3, 2}), b.Const({1, 2, 3}, {3}), b.Const({0, 0, 0}, {3}),
                   b.Const(rm, {3}), b.Const(rv, {3})},
                  A({{"momentum", Attribute(0.75f)}}));
  auto ops = DecomposeBatchNorm(*g, y->producer(), true);
  ASSERT_TRUE(ops.ok()) << ops.status().message();
  g->SetOutputs({ops->running_mean, ops->running_var});
  ASSERT_TRUE(g->TopologicalSort().ok());
  std::vector<Tensor> out = RunGraph(std::move(g));
  ASSERT_EQ(out.size(), 2u);
  const std::vector<double> mean = *out[0].AsDoubles(), var = *out[1].AsDoubles();
  const double m = static_cast<double>(0.75f);
  for (int c = 0; c < 3; ++c) {
    double sum = 0, sq = 0;
    for (int n = 0; n < 2; ++n) {
      for (int i = 0; i < 2; ++i) sum += x[static_cast<size_t>(n * 6 + c * 2 + i)];
    }
    const double mu = sum / 4;
    for (int n = 0; n < 2; ++n) {
      for (int i = 0; i < 2; ++i) {
        const double d = x[static_cast<size_t>(n * 6 + c * 2 + i)] - mu;
        sq += d * d;
      }
    }
    EXPECT_NEAR(mean[static_cast<size_t>(c)], rm[static_cast<size_t>(c)] * m + mu * (1 - m), 1e-12)
        << c;
    EXPECT_NEAR(var[static_cast<size_t>(c)], rv[static_cast<size_t>(c)] * m + sq / 3 * (1 - m),
                1e-12)
        << c;
  }
}

class NnGradientTest : public ::testing::TestWithParam<GradCase> {};
TEST_P(NnGradientTest, MatchesFiniteDifferences) { CheckGradients(GetParam()); }
INSTANTIATE_TEST_SUITE_P(ConvPool, NnGradientTest, ::testing::ValuesIn(ConvAndPoolCases()),
                         [](const ::testing::TestParamInfo<GradCase>& i) { return i.param.name; });
INSTANTIATE_TEST_SUITE_P(NormLoss, NnGradientTest, ::testing::ValuesIn(NormAndLossCases()),
                         [](const ::testing::TestParamInfo<GradCase>& i) { return i.param.name; });
INSTANTIATE_TEST_SUITE_P(BatchNormOps, NnGradientTest,
                         ::testing::ValuesIn(DecomposedBatchNormCases()),
                         [](const ::testing::TestParamInfo<GradCase>& i) { return i.param.name; });
INSTANTIATE_TEST_SUITE_P(Tensor, NnGradientTest, ::testing::ValuesIn(TensorCases()),
                         [](const ::testing::TestParamInfo<GradCase>& i) { return i.param.name; });

// d(sum(op(x)))/dx for x given as a parameter, computed by autodiff and run.
std::vector<double> GradOfSum(const std::vector<double>& x, Ints64 dims,
                              const std::function<Value*(Builder&, Value*)>& op) {
  auto g = std::make_unique<Graph>();
  g->opsets()[""] = 17;
  Value* p = *g->AddInitializer("p", F64(x, dims));
  Builder b{*g};
  Value* y = op(b, p);
  Value* loss = b.Op("ReduceSum", {y}, A({{"keepdims", I(0)}}));
  auto r = BuildBackward(*g, loss, {p});
  EXPECT_TRUE(r.ok()) << r.status().message();
  if (!r.ok()) return {};
  g->SetOutputs({r->grads.at(p)});
  std::vector<Tensor> out = RunGraph(std::move(g));
  return out.size() == 1 ? *out[0].AsDoubles() : std::vector<double>{};
}

// torch.clamp semantics: the gradient passes where min <= x <= max, bounds included
// (hardtanh / ReLU6 would exclude them).
TEST(GradientConventions, ClipPassesGradientAtItsBounds) {
  std::vector<double> g = GradOfSum({0.0, 6.0, 3.0, -1.0, 7.0}, {5}, [](Builder& b, Value* p) {
    return b.Op("Clip", {p, b.Scalar(0.0), b.Scalar(6.0)});
  });
  EXPECT_EQ(g, (std::vector<double>{1, 1, 1, 0, 0}));
}

// torch.maximum: ties split the gradient in half between the inputs.
TEST(GradientConventions, MaxSplitsTiesInHalf) {
  auto g = std::make_unique<Graph>();
  g->opsets()[""] = 17;
  Value* a = *g->AddInitializer("a", F64({1.0, 2.0, 3.0}, {3}));
  Value* c = *g->AddInitializer("c", F64({1.0, 5.0, 0.0}, {3}));
  Builder b{*g};
  Value* loss = b.Op("ReduceSum", {b.Op("Max", {a, c})}, A({{"keepdims", I(0)}}));
  auto r = BuildBackward(*g, loss, {a, c});
  ASSERT_TRUE(r.ok()) << r.status().message();
  g->SetOutputs({r->grads.at(a), r->grads.at(c)});
  std::vector<Tensor> out = RunGraph(std::move(g));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(*out[0].AsDoubles(), (std::vector<double>{0.5, 0, 1}));
  EXPECT_EQ(*out[1].AsDoubles(), (std::vector<double>{0.5, 1, 0}));
}

// The gradient of a Cast is cast back: f64 -> f32 -> f64 passes dy rounded to f32.
TEST(GradientConventions, CastCastsTheGradientBack) {
  const std::vector<double> w = {0.1, 1.0 / 3.0, -2.7};
  auto g = std::make_unique<Graph>();
  g->opsets()[""] = 17;
  Value* p = *g->AddInitializer("p", F64({1, 2, 3}, {3}));
  Builder b{*g};
  Value* f = b.Op("Cast", {p}, A({{"to", I(1)}}));
  Value* wf = b.Op("Cast", {b.Const(w, {3})}, A({{"to", I(1)}}));
  Value* loss = b.Op("ReduceSum", {b.Op("Mul", {f, wf})}, A({{"keepdims", I(0)}}));
  auto r = BuildBackward(*g, loss, {p});
  ASSERT_TRUE(r.ok()) << r.status().message();
  Value* grad = r->grads.at(p);
  EXPECT_EQ(grad->dtype(), DType::kFloat64);
  g->SetOutputs({grad});
  std::vector<Tensor> out = RunGraph(std::move(g));
  ASSERT_EQ(out.size(), 1u);
  std::vector<double> got = *out[0].AsDoubles();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i], static_cast<double>(static_cast<float>(w[i])));
}

// Training-mode Dropout: dy * mask / (1 - ratio), checked against a mask chosen by hand: the
// mask output's uses are rewired to a known mask and the forward node is left dead.
TEST(GradientConventions, TrainingDropoutScalesTheMaskedGradient) {
  auto g = std::make_unique<Graph>();
  g->opsets()[""] = 17;
  Value* p = *g->AddInitializer("p", F64({1, 2, 3, 4}, {4}));
  Builder b{*g};
  Value* y = b.Op("Dropout", {p, b.Scalar(0.25), BoolConst(b, {1}, {})}, {}, 2);
  Value* loss = b.Op("ReduceSum", {y}, A({{"keepdims", I(0)}}));
  auto r = BuildBackward(*g, loss, {p});
  ASSERT_TRUE(r.ok()) << r.status().message();
  Value* known = BoolConst(b, {1, 0, 0, 1}, {4});
  g->ReplaceAllUsesWith(y->producer()->output(1), known);
  g->SetOutputs({r->grads.at(p)});
  std::vector<Tensor> out = RunGraph(std::move(g));
  ASSERT_EQ(out.size(), 1u);
  const double s = 1.0 / (1.0 - 0.25);
  EXPECT_EQ(*out[0].AsDoubles(), (std::vector<double>{s, 0, 0, s}));
}

TEST(GradientConventions, TrainingDropoutWithoutMaskIsUnimplemented) {
  Graph g;
  g.opsets()[""] = 17;
  Value* p = *g.AddInitializer("p", F64({1, 2}, {2}));
  Builder b{g};
  Value* y = b.Op("Dropout", {p, b.Scalar(0.5), BoolConst(b, {1}, {})});
  Value* loss = b.Op("ReduceSum", {y}, A({{"keepdims", I(0)}}));
  auto r = BuildBackward(g, loss, {p});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("mask"), std::string::npos) << r.status().message();
}

TEST(GradientConventions, SliceWithStepsOfASymbolicInputIsUnimplemented) {
  Graph g;
  g.opsets()[""] = 17;
  Value* x = *g.AddInput("x", TensorType(DType::kFloat64, {Dim::Symbol("batch"), 4}));
  Value* p = *g.AddInitializer("p", F64({1, 2, 3, 4}, {4}));
  Builder b{g};
  Value* m = b.Op("Mul", {x, p});
  Value* y = b.Op("Slice", {m, b.Ints({0}), b.Ints({4}), b.Ints({1}), b.Ints({2})});
  Value* loss = b.Op("ReduceSum", {y}, A({{"keepdims", I(0)}}));
  auto r = BuildBackward(g, loss, {p});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace ampc
