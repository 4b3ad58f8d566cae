// Finite-difference checks (tests/unit/gradient_check.h: float64 central differences of a
// random linear functional of the output) of the gradient rules for the ops of opsets 18-23 and
// the activations today's PyTorch exports use: Gelu (both forms), Mish, Sin, Cos, Reciprocal,
// RMSNormalization, GroupNormalization, RotaryEmbedding, Attention, and the opset-18 Reduce* form
// with axes as an input. The golden values are the finite differences; nothing is taken from
// ampc's own output.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "passes/decompose_attention.h"
#include "tests/unit/gradient_check.h"

namespace ampc {
namespace {

using namespace ::ampc::testing::gradcheck;  // NOLINT: the gradient-check harness
using V = std::vector<Value*>;
using Ints64 = std::vector<int64_t>;

Attribute I(int64_t v) { return Attribute(v); }
Attribute F(float v) { return Attribute(v); }
Attribute Str(const char* s) { return Attribute(std::string(s)); }

Value* BoolConst(Builder& b, const std::vector<uint8_t>& v, Ints64 dims) {
  return *b.g.AddInitializer(b.g.UniqueName("mask"), Tensor(DType::kBool, std::move(dims), v));
}

// cos/sin caches for positions 0..p-1 and frequencies 1/(2+i) (any angles do for the check).
std::pair<Value*, Value*> Caches(Builder& b, Ints64 lead, int64_t half) {
  int64_t n = half;
  for (int64_t d : lead) n *= d;
  std::vector<double> c(n), s(n);
  for (int64_t i = 0; i < n; ++i) {
    const double angle = static_cast<double>(i / half) / (2.0 + static_cast<double>(i % half));
    c[i] = std::cos(angle);
    s[i] = std::sin(angle);
  }
  lead.push_back(half);
  return {b.Const(c, lead), b.Const(s, lead)};
}

std::vector<GradCase> ActivationCases() {
  return {
      {"Gelu", {{3, 4}}, Unary("Gelu"), -3.0, 3.0},
      {"GeluTanh", {{3, 4}}, Unary("Gelu", A({{"approximate", Str("tanh")}})), -3.0, 3.0},
      {"Mish", {{3, 4}}, Unary("Mish"), -4.0, 4.0},
      {"Sin", {{2, 5}}, Unary("Sin"), -4.0, 4.0},
      {"Cos", {{2, 5}}, Unary("Cos"), -4.0, 4.0},
      {"Reciprocal", {{2, 3}}, Unary("Reciprocal"), 0.5, 2.0},
      {"RsqrtAsReciprocalSqrt",  // what dynamo writes for torch.rsqrt
       {{6}},
       [](Builder& b, const V& p) { return b.Op("Reciprocal", {b.Op("Sqrt", {p[0]})}); },
       0.5,
       3.0},
      {"ReduceMeanAxesInput",  // opset 18: axes as input 1
       {{2, 3, 4}},
       [](Builder& b, const V& p) {
         return b.Op("ReduceMean", {p[0], b.Ints({0, -1})}, A({{"keepdims", I(0)}}));
       }},
      {"ReduceMaxAxesInput",
       {{3, 4}},
       [](Builder& b, const V& p) {
         return b.Op("ReduceMax", {p[0], b.Ints({1})});
       }},
      {"CastLike",  // dynamo writes scalar constants as CastLike(constant, x)
       {{2, 3}, {3}},
       [](Builder& b, const V& p) {
         return b.Op("Mul", {b.Op("CastLike", {p[0], p[1]}), p[1]});
       }},
      {"SplitNumOutputsUneven",  // opset 18: sizes 3, 3, 1
       {{2, 7}},
       [](Builder& b, const V& p) {
         Value* a = b.Op("Split", {p[0]}, A({{"axis", I(1)}, {"num_outputs", I(3)}}), 3);
         Value* c = a->producer()->output(2);
         return b.Op("Concat", {c, a, c}, A({{"axis", I(1)}}));
       }},
      {"AveragePoolDilations",  // opset 19
       {{1, 2, 5, 5}},
       [](Builder& b, const V& p) {
         return b.Op("AveragePool", {p[0]},
                     A({{"kernel_shape", Attribute(Ints64{2, 2})},
                        {"dilations", Attribute(Ints64{2, 1})},
                        {"pads", Attribute(Ints64{1, 0, 0, 1})}}));
       }},
      {"ReduceSumSquareNoopEmptyAxes",
       {{2, 3}},
       [](Builder& b, const V& p) {
         return b.Op("ReduceSumSquare", {p[0], b.Ints({})}, A({{"noop_with_empty_axes", I(1)}}));
       }},
  };
}

std::vector<GradCase> NormCases() {
  return {
      {"RMSNormLastAxis", {{3, 4}, {4}}, Binary("RMSNormalization"), 0.2, 1.5},
      {"RMSNormTwoAxesBroadcastScale",
       {{2, 3, 4}, {1, 4}},
       [](Builder& b, const V& p) {
         return b.Op("RMSNormalization", {p[0], p[1]}, A({{"axis", I(1)}, {"epsilon", F(1e-3f)}}));
       },
       -1.0,
       1.0},
      {"GroupNorm4D",
       {{2, 4, 2, 3}, {4}, {4}},
       [](Builder& b, const V& p) {
         return b.Op("GroupNormalization", {p[0], p[1], p[2]}, A({{"num_groups", I(2)}}));
       }},
      {"GroupNorm3DOneGroup",
       {{2, 3, 4}, {3}, {3}},
       [](Builder& b, const V& p) {
         return b.Op("GroupNormalization", {p[0], p[1], p[2]},
                     A({{"num_groups", I(1)}, {"epsilon", F(1e-2f)}}));
       }},
      {"GroupNormPerChannelGroups",  // = InstanceNormalization
       {{1, 3, 5}, {3}, {3}},
       [](Builder& b, const V& p) {
         return b.Op("GroupNormalization", {p[0], p[1], p[2]}, A({{"num_groups", I(3)}}));
       }},
  };
}

std::vector<GradCase> RotaryCases() {
  return {
      {"Rotary4D",
       {{2, 2, 3, 4}},
       [](Builder& b, const V& p) {
         auto [c, s] = Caches(b, {2, 3}, 2);
         return b.Op("RotaryEmbedding", {p[0], c, s});
       }},
      {"Rotary4DInterleavedPartial",
       {{1, 2, 3, 6}},
       [](Builder& b, const V& p) {
         auto [c, s] = Caches(b, {1, 3}, 2);
         return b.Op("RotaryEmbedding", {p[0], c, s},
                     A({{"interleaved", I(1)}, {"rotary_embedding_dim", I(4)}}));
       }},
      {"Rotary3DPositionIds",
       {{2, 3, 8}},
       [](Builder& b, const V& p) {
         auto [c, s] = Caches(b, {5}, 2);
         Value* pos = *b.g.AddInitializer("pos", Tensor::FromInt64s({4, 0, 2, 1, 1, 3}, {2, 3}));
         return b.Op("RotaryEmbedding", {p[0], c, s, pos}, A({{"num_heads", I(2)}}));
       }},
  };
}

BuildFn AttentionOf(AttributeMap attrs) {
  return [attrs](Builder& b, const V& p) { return b.Op("Attention", {p[0], p[1], p[2]}, attrs); };
}

std::vector<GradCase> AttentionCases() {
  return {
      {"Attention4D", {{2, 2, 3, 4}, {2, 2, 5, 4}, {2, 2, 5, 3}}, AttentionOf({})},
      {"Attention4DCausalScale",
       {{1, 2, 4, 4}, {1, 2, 4, 4}, {1, 2, 4, 2}},
       AttentionOf(A({{"is_causal", I(1)}, {"scale", F(0.3f)}}))},
      {"AttentionGroupedQuery",  // 4 query heads share 2 key/value heads
       {{1, 4, 3, 2}, {1, 2, 3, 2}, {1, 2, 3, 2}},
       AttentionOf({})},
      {"Attention3DHeads",
       {{2, 3, 4}, {2, 5, 4}, {2, 5, 6}},
       AttentionOf(A({{"q_num_heads", I(2)}, {"kv_num_heads", I(2)}}))},
      {"AttentionSoftcap",
       {{1, 1, 3, 4}, {1, 1, 3, 4}, {1, 1, 3, 4}},
       AttentionOf(A({{"softcap", F(0.7f)}})),
       -2.0,
       2.0},
      {"AttentionBoolMaskFullyMaskedRow",  // row 1 sees no key: Y = 0 there, no gradient
       {{1, 1, 3, 2}, {1, 1, 4, 2}, {1, 1, 4, 2}},
       [](Builder& b, const V& p) {
         Value* m = BoolConst(b, {1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0}, {3, 4});
         return b.Op("Attention", {p[0], p[1], p[2], m});
       }},
      {"AttentionFloatMaskAndCausal",
       {{1, 2, 3, 2}, {1, 2, 3, 2}, {1, 2, 3, 2}},
       [](Builder& b, const V& p) {
         Value* m = b.Const({0.5, -1.0, 0.0, 0.25, 2.0, -0.5}, {1, 2, 1, 3});
         return b.Op("Attention", {p[0], p[1], p[2], m}, A({{"is_causal", I(1)}}));
       }},
  };
}

// The same cases with the Attention node decomposed into ONNX ops (passes/decompose_attention),
// plus the features only the decomposition treats differently: grouped-query heads in 3-D with
// a bool mask and causal, and a float mask whose -inf entries hide every key of a row.
std::vector<GradCase> DecomposedAttentionCases() {
  std::vector<GradCase> cases = AttentionCases();
  cases.push_back({"Attention3DGroupedCausalBoolMask",  // 4 query heads, 2 kv heads, width 2
                   {{2, 3, 8}, {2, 3, 4}, {2, 3, 6}},
                   [](Builder& b, const V& p) {
                     Value* m = BoolConst(b, {1, 1, 0, 0, 1, 1, 1, 0, 1}, {3, 3});
                     return b.Op(
                         "Attention", {p[0], p[1], p[2], m},
                         A({{"q_num_heads", I(4)}, {"kv_num_heads", I(2)}, {"is_causal", I(1)}}));
                   }});
  cases.push_back({"AttentionFloatMaskInfinityRow",  // row 0 sees no key: Y = 0 there
                   {{1, 2, 2, 3}, {1, 2, 4, 3}, {1, 2, 4, 2}},
                   [](Builder& b, const V& p) {
                     const double inf = std::numeric_limits<double>::infinity();
                     Value* m = b.Const({-inf, -inf, -inf, -inf, 0.5, -inf, 0.0, -1.0}, {2, 4});
                     return b.Op("Attention", {p[0], p[1], p[2], m}, A({{"scale", F(0.6f)}}));
                   }});
  for (GradCase& c : cases) {
    c.name += "Decomposed";
    c.rewrite = [](Graph& g) {
      auto changed = DecomposeAttentionPass().Run(g);
      ASSERT_TRUE(changed.ok()) << changed.status().message();
      EXPECT_TRUE(*changed);
      for (const Node* n : g.nodes()) EXPECT_NE(n->op_type(), "Attention");
    };
  }
  return cases;
}

// The decomposition computes what the Attention kernel computes (f64: to rounding).
TEST(DecomposeAttention, MatchesTheKernel) {
  for (const GradCase& c : DecomposedAttentionCases()) ExpectRewriteKeepsLoss(c, 5);
}

TEST(DecomposeAttention, RefusesAMaskNarrowerThanTheKeys) {
  GradCase c = AttentionCases()[0];  // keys: 5
  Graph g;
  g.opsets()[""] = 23;
  Builder b{g};
  std::vector<Value*> p;
  for (size_t i = 0; i < c.shapes.size(); ++i) {
    p.push_back(b.Const(Random(Count(c.shapes[i]), -1, 1, 3), c.shapes[i]));
  }
  Value* m = BoolConst(b, {1, 1, 1, 1}, {4});
  g.SetOutputs({b.Op("Attention", {p[0], p[1], p[2], m})});
  auto r = DecomposeAttentionPass().Run(g);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("attn_mask bool[4] must have the key length 5 as its last "
                                      "dimension"),
            std::string::npos)
      << r.status().message();
}

class NewOpGradientTest : public ::testing::TestWithParam<GradCase> {};
TEST_P(NewOpGradientTest, MatchesFiniteDifferences) { CheckGradients(GetParam()); }
auto Name = [](const ::testing::TestParamInfo<GradCase>& i) { return i.param.name; };
INSTANTIATE_TEST_SUITE_P(Activation, NewOpGradientTest, ::testing::ValuesIn(ActivationCases()),
                         Name);
INSTANTIATE_TEST_SUITE_P(Norm, NewOpGradientTest, ::testing::ValuesIn(NormCases()), Name);
INSTANTIATE_TEST_SUITE_P(Rotary, NewOpGradientTest, ::testing::ValuesIn(RotaryCases()), Name);
INSTANTIATE_TEST_SUITE_P(Attention, NewOpGradientTest, ::testing::ValuesIn(AttentionCases()), Name);
INSTANTIATE_TEST_SUITE_P(AttentionOps, NewOpGradientTest,
                         ::testing::ValuesIn(DecomposedAttentionCases()), Name);

}  // namespace
}  // namespace ampc
