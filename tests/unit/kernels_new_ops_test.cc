// The numerics contract of runtime/cpu/kernel.h for the kernels of opsets 18-23 and their
// backward ops: f16/bf16 tensors are storage types, so each kernel run on half inputs must give
// exactly its fp32 result on the same (exactly widened) values, rounded once to the half type.
// The fp32 results themselves are checked against ONNX's reference outputs by the conformance
// run (tests/conformance/data/onnx-1.23) and the gradients against float64 finite differences
// (gradients_new_ops_test.cc). Plus hand-derived values where a definition is easy to state.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ir/float16.h"
#include "ir/op_registry.h"
#include "tests/unit/kernel_test_util.h"

namespace ampc {
namespace {

using testing::OwnedTensor;
using testing::RunKernelInDomain;
using V = std::vector<double>;

struct Operand {
  std::vector<int64_t> dims;
  double lo = -2.0, hi = 2.0;
};

struct KernelCase {
  std::string name, domain, op;
  AttributeMap attrs;
  std::vector<Operand> inputs;                // float inputs, random in [lo, hi]
  std::vector<std::vector<int64_t>> outputs;  // output dims, same dtype as the inputs
};

V Random(int64_t n, double lo, double hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  V v(static_cast<size_t>(n));
  for (double& x : v) x = u(rng);
  return v;
}

int64_t Count(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}

// Runs the case with inputs stored as `t` (values rounded into t first) and returns outputs.
std::vector<OwnedTensor> RunAs(const KernelCase& c, DType t, const std::vector<V>& values) {
  std::vector<OwnedTensor> in, out;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    in.push_back(OwnedTensor::From(t, c.inputs[i].dims, values[i]));
  }
  for (const auto& d : c.outputs) out.emplace_back(t, d);
  std::vector<const OwnedTensor*> ip;
  std::vector<OwnedTensor*> op;
  for (auto& x : in) ip.push_back(&x);
  for (auto& x : out) op.push_back(&x);
  Status s = RunKernelInDomain(c.domain, c.op, c.attrs, ip, op);
  EXPECT_TRUE(s.ok()) << c.name << " " << DTypeName(t) << ": " << s.message();
  return out;
}

double RoundTo(DType t, double v) {
  const float f = static_cast<float>(v);  // v is an fp32 result: exact
  return t == DType::kFloat16 ? HalfBitsToFloat(FloatToHalfBits(f))
                              : BFloat16BitsToFloat(FloatToBFloat16Bits(f));
}

class NewKernelContractTest : public ::testing::TestWithParam<KernelCase> {};

TEST_P(NewKernelContractTest, HalfTypesRoundTheFp32ResultOnce) {
  const KernelCase& c = GetParam();
  for (DType half : {DType::kFloat16, DType::kBFloat16}) {
    std::vector<V> values;
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      V v = Random(Count(c.inputs[i].dims), c.inputs[i].lo, c.inputs[i].hi, 11 + i);
      for (double& x : v) x = RoundTo(half, x);  // representable in the half type
      values.push_back(v);
    }
    const std::vector<OwnedTensor> f32 = RunAs(c, DType::kFloat32, values);
    const std::vector<OwnedTensor> h = RunAs(c, half, values);
    ASSERT_EQ(f32.size(), h.size());
    for (size_t o = 0; o < h.size(); ++o) {
      const V want = f32[o].values(), got = h[o].values();
      ASSERT_EQ(want.size(), got.size());
      for (size_t i = 0; i < got.size(); ++i) {
        const double w = RoundTo(half, want[i]);
        EXPECT_TRUE(got[i] == w || (std::isnan(got[i]) && std::isnan(w)))
            << c.name << " " << DTypeName(half) << " output " << o << "[" << i << "]: " << got[i]
            << " vs round(" << want[i] << ") = " << w;
      }
    }
  }
}

AttributeMap A(std::initializer_list<std::pair<const std::string, Attribute>> l) { return l; }

std::vector<KernelCase> Cases() {
  const std::string ampc = kAmpcDomain;
  return {
      {"Gelu", "", "Gelu", {}, {{{4, 8}, -4, 4}}, {{4, 8}}},
      {"GeluTanh",
       "",
       "Gelu",
       A({{"approximate", Attribute(std::string("tanh"))}}),
       {{{4, 8}, -4, 4}},
       {{4, 8}}},
      {"Mish", "", "Mish", {}, {{{4, 8}, -6, 6}}, {{4, 8}}},
      {"Sin", "", "Sin", {}, {{{4, 8}, -7, 7}}, {{4, 8}}},
      {"Cos", "", "Cos", {}, {{{4, 8}, -7, 7}}, {{4, 8}}},
      {"GeluGrad", ampc, "GeluGrad", {}, {{{3, 5}}, {{3, 5}, -4, 4}}, {{3, 5}}},
      {"GeluGradTanh",
       ampc,
       "GeluGrad",
       A({{"approximate", Attribute(std::string("tanh"))}}),
       {{{3, 5}}, {{3, 5}, -4, 4}},
       {{3, 5}}},
      {"MishGrad", ampc, "MishGrad", {}, {{{3, 5}}, {{3, 5}, -6, 6}}, {{3, 5}}},
      {"RMSNormalization", "", "RMSNormalization", {}, {{{3, 8}}, {{8}, 0.5, 1.5}}, {{3, 8}}},
      {"GroupNormalization",
       "",
       "GroupNormalization",
       A({{"num_groups", Attribute(int64_t{2})}}),
       {{{2, 4, 3}}, {{4}}, {{4}}},
       {{2, 4, 3}}},
      {"RotaryEmbedding",
       "",
       "RotaryEmbedding",
       {},
       {{{1, 2, 3, 4}}, {{1, 3, 2}}, {{1, 3, 2}}},
       {{1, 2, 3, 4}}},
      {"AttentionCausal",
       "",
       "Attention",
       A({{"is_causal", Attribute(int64_t{1})}}),
       {{{1, 2, 4, 8}}, {{1, 2, 4, 8}}, {{1, 2, 4, 8}}},
       {{1, 2, 4, 8}}},
      {"AttentionGradGrouped",
       ampc,
       "AttentionGrad",
       {},
       {{{1, 4, 3, 4}}, {{1, 4, 3, 4}}, {{1, 2, 5, 4}}, {{1, 2, 5, 4}}},
       {{1, 4, 3, 4}, {1, 2, 5, 4}, {1, 2, 5, 4}}},
  };
}

INSTANTIATE_TEST_SUITE_P(Kernels, NewKernelContractTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<KernelCase>& i) {
                           return i.param.name;
                         });

// Definitions evaluated by hand (f64 kernels compute in double).
TEST(NewKernels, GeluAndMishAtKnownPoints) {
  OwnedTensor x = OwnedTensor::From(DType::kFloat64, {3}, {0.0, 1.0, -1.0});
  OwnedTensor y(DType::kFloat64, {3});
  ASSERT_TRUE(RunKernelInDomain("", "Gelu", {}, {&x}, {&y}).ok());
  // x * Phi(x): Phi(1) = 0.841344746068543
  EXPECT_NEAR(y.values()[0], 0.0, 1e-15);
  EXPECT_NEAR(y.values()[1], 0.841344746068543, 1e-14);
  EXPECT_NEAR(y.values()[2], -(1 - 0.841344746068543), 1e-14);
  ASSERT_TRUE(RunKernelInDomain("", "Mish", {}, {&x}, {&y}).ok());
  // tanh(log(1 + e)) = ((1+e)^2 - 1) / ((1+e)^2 + 1)
  const double e1 = std::pow(1 + std::exp(1.0), 2);
  EXPECT_NEAR(y.values()[1], (e1 - 1) / (e1 + 1), 1e-14);
}

// One key per query and a value of ones: every attention output is 1 where a key is visible;
// a query row that sees no key (all-false bool mask) gives 0 (ONNX 1.23's convention).
TEST(NewKernels, AttentionFullyMaskedRowIsZero) {
  OwnedTensor q = OwnedTensor::From(DType::kFloat32, {1, 1, 2, 2}, {0.3, -1, 2, 0.5});
  OwnedTensor k = OwnedTensor::From(DType::kFloat32, {1, 1, 3, 2}, {1, 2, -1, 0, 0.5, 0.5});
  OwnedTensor v = OwnedTensor::From(DType::kFloat32, {1, 1, 3, 2}, {1, 1, 1, 1, 1, 1});
  OwnedTensor mask(DType::kBool, {2, 3});
  const std::vector<uint8_t> m = {1, 0, 1, 0, 0, 0};
  for (size_t i = 0; i < m.size(); ++i) mask.view().as<uint8_t>()[i] = m[i];
  OwnedTensor y(DType::kFloat32, {1, 1, 2, 2});
  ASSERT_TRUE(RunKernelInDomain("", "Attention", {}, {&q, &k, &v, &mask}, {&y}).ok());
  EXPECT_EQ(y.values(), (V{1, 1, 0, 0}));
}

}  // namespace
}  // namespace ampc
