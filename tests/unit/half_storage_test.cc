// HalfStoragePass (passes/half_storage.h): whole-graph f16/bf16 storage for inference.
// Where the expected values come from:
// - the rounded bit patterns: numpy 1.24 (np.float32(x).astype(np.float16)) for f16 and torch 1.13
//   (torch.tensor(x).to(torch.bfloat16)) for bf16, both round to nearest even, copied below;
// - which values change type: the pass's contract in passes/half_storage.h;
// - the numeric check: the same small MLP evaluated in float64 by plain loops in this file; the
//   tolerance is the first-order bound of tests/unit/eval_test.cc, 2 (L + 1) u with L rounding
//   ops on the longest path and u = 2^-11 (f16) or 2^-8 (bf16).
#include "passes/half_storage.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "ir/op_registry.h"
#include "ir/text.h"
#include "runtime/cpu/executor.h"
#include "runtime/cpu/kernel.h"
#include "tests/unit/graph_test_util.h"

namespace ampc {
namespace {

using testing::Bits16;
using testing::Get;
using testing::ParseAndInfer;

// Every kind of value the pass treats differently, in one graph.
const char* kMixed = R"(graph "g" opsets {"": 17} {
  input %x: f32[2,3]
  input %unused: f32[4]
  input %n: i64[2]
  init %w: f32[3,2] = [0.1, -0.2, 0.3, 1e-05, 70000.0, 1.0]
  init %shape: i64[2] = [3, 2]
  init %d: f64[2] = [0.1, 0.2]
  %c: f32[2] = Constant() {value=tensor<f32[2]> [0.1, 2.0]} name="c"
  %y: f32[2,2] = MatMul(%x, %w) name="mm"
  %z: f32[2,2] = Add(%y, %c) name="add"
  %nf: f32[2] = Cast(%n) {to=1} name="cast"
  %zz: f32[2,2] = Add(%z, %nf) name="add2"
  %s: i64[2] = Shape(%zz) name="shape"
  %k: f32[2,2] = ConstantOfShape(%s) {value=tensor<f32[1]> [0.1]} name="fill"
  %dd: f64[2] = Mul(%d, %d) name="f64"
  output %zz
  output %s
  output %k
  output %dd
  output %x
}
)";

struct HalfCase {
  DType half;
  int64_t onnx_number;
  std::vector<uint16_t> w_bits, c_bits;
  uint16_t fill_bits;
};

const HalfCase kF16{DType::kFloat16,
                    10,
                    {0x2e66, 0xb266, 0x34cd, 0x00a8, 0x7c00, 0x3c00},
                    {0x2e66, 0x4000},
                    0x2e66};
const HalfCase kBf16{DType::kBFloat16,
                     16,
                     {0x3dcd, 0xbe4d, 0x3e9a, 0x3728, 0x4789, 0x3f80},
                     {0x3dcd, 0x4000},
                     0x3dcd};

void CheckMixed(const HalfCase& hc) {
  auto g = ParseAndInfer(kMixed);
  HalfStoragePass pass(hc.half);
  auto changed = pass.Run(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  // f32 initializer: rounded once to nearest even (1e-05 is an f16 subnormal, 70000 overflows f16).
  const Tensor* w = Get(*g, "w")->initializer();
  EXPECT_EQ(w->dtype(), hc.half);
  EXPECT_EQ(Bits16(*w), hc.w_bits);
  EXPECT_EQ(Get(*g, "w")->dtype(), hc.half);
  // Integers and f64 are left alone.
  EXPECT_EQ(Get(*g, "shape")->initializer()->type().ToString(), "i64[2]");
  EXPECT_EQ(Get(*g, "d")->initializer()->type().ToString(), "f64[2]");
  EXPECT_EQ(Get(*g, "dd")->type().ToString(), "f64[2]");
  EXPECT_EQ(Get(*g, "s")->type().ToString(), "i64[2]");
  EXPECT_EQ(Get(*g, "n")->type().ToString(), "i64[2]");
  // Constant data and Casts to f32 now produce the half type.
  for (const Node* node : g->nodes()) {
    if (node->name() == "c") {
      EXPECT_EQ(Bits16(node->attrs().at("value").t()), hc.c_bits);
    }
    if (node->name() == "fill") {
      EXPECT_EQ(Bits16(node->attrs().at("value").t()), std::vector<uint16_t>{hc.fill_bits});
    }
    if (node->name() == "cast") {
      EXPECT_EQ(node->attr_int("to", 0), hc.onnx_number);
    }
  }
  for (const char* v : {"c", "y", "z", "nf", "zz", "k"}) {
    EXPECT_EQ(Get(*g, v)->dtype(), hc.half) << v;
  }
  // Graph inputs keep their declared f32 type; a used one is read through one Cast to half.
  const Value* x = Get(*g, "x");
  EXPECT_EQ(x->type().ToString(), "f32[2,3]");
  ASSERT_EQ(x->uses().size(), 1u);
  const Node* entry = x->uses()[0].user;
  EXPECT_EQ(entry->op_type(), "Cast");
  EXPECT_EQ(entry->attr_int("to", 0), hc.onnx_number);
  EXPECT_EQ(Get(*g, "y")->producer()->input(0), entry->output(0));
  EXPECT_TRUE(Get(*g, "unused")->uses().empty());  // nothing to cast for
  // Outputs: half ones come back through a Cast to f32, the rest are the same values as before.
  ASSERT_EQ(g->outputs().size(), 5u);
  EXPECT_EQ(g->outputs()[0]->type().ToString(), "f32[2,2]");
  EXPECT_EQ(g->outputs()[0]->producer()->op_type(), "Cast");
  EXPECT_EQ(g->outputs()[0]->producer()->input(0), Get(*g, "zz"));
  EXPECT_EQ(g->outputs()[1], Get(*g, "s"));
  EXPECT_EQ(g->outputs()[2]->type().ToString(), "f32[2,2]");
  EXPECT_EQ(g->outputs()[2]->producer()->input(0), Get(*g, "k"));
  EXPECT_EQ(g->outputs()[3], Get(*g, "dd"));
  EXPECT_EQ(g->outputs()[4], x);
  const Status v = InferGraph(*g);
  EXPECT_TRUE(v.ok()) << v.message();
}

TEST(HalfStorage, F16StoresEveryFloatValueInHalfAndLeavesTheRest) { CheckMixed(kF16); }
TEST(HalfStorage, Bf16StoresEveryFloatValueInHalfAndLeavesTheRest) { CheckMixed(kBf16); }

// Nothing in f32: the pass reports no change and the text is the same.
TEST(HalfStorage, GraphWithoutF32IsUnchanged) {
  const std::string text = R"(graph "g" opsets {"": 17} {
  input %a: i64[3]
  input %b: f64[3]
  init %one: i64[3] = [1, 1, 1]
  %c: i64[3] = Add(%a, %one)
  %d: f64[3] = Mul(%b, %b)
  output %c
  output %d
}
)";
  for (DType half : {DType::kFloat16, DType::kBFloat16}) {
    auto g = ParseAndInfer(text);
    auto changed = HalfStoragePass(half).Run(*g);
    ASSERT_TRUE(changed.ok()) << changed.status().message();
    EXPECT_FALSE(*changed);
    EXPECT_EQ(PrintGraph(*g), text);
  }
}

// Initializer data that is not there (an `elided` text tensor) cannot be rounded: an error
// naming it rather than a silent f16 tensor of garbage.
TEST(HalfStorage, ElidedInitializerIsAnError) {
  auto g = ParseAndInfer(R"(graph "g" opsets {"": 17} {
  input %x: f32[2]
  init %w: f32[2] = elided
  %y: f32[2] = Add(%x, %w)
  output %y
}
)");
  auto changed = HalfStoragePass(DType::kFloat16).Run(*g);
  ASSERT_FALSE(changed.ok());
  EXPECT_NE(changed.status().message().find("initializer 'w' has elided data"), std::string::npos)
      << changed.status().message();
}

// ONNX ops whose f32 output comes from something other than a `value` tensor attribute: the
// default of ConstantOfShape (f32 zeros) and Constant's value_float / value_floats. Left f32, the
// consumer would see f16 and f32 inputs and inference would fail ("type mismatch").
TEST(HalfStorage, FloatConstantsWithoutTensorAttributesBecomeHalf) {
  for (const char* producer : {"ConstantOfShape(%s)", "Constant() {value_float=2.0}"}) {
    SCOPED_TRACE(producer);
    auto g = ParseAndInfer(std::string(R"(graph "g" opsets {"": 17} {
  input %x: f32[2,3]
  %s: i64[2] = Shape(%x)
  %k: f32[*] = )") + producer +
                           R"(
  %y: f32[2,3] = Add(%x, %k)
  output %y
}
)");
    auto changed = HalfStoragePass(DType::kFloat16).Run(*g);
    EXPECT_TRUE(changed.ok()) << changed.status().message();
    EXPECT_EQ(Get(*g, "k")->dtype(), DType::kFloat16);
  }
}

// A small MLP with a Shape -> Gather -> Concat -> Reshape chain and a softmax, compiled by
// CompileForInputs and run on the CPU in fp32, fp16 and bf16, against float64 loops.
const char* kMlp = R"(graph "mlp" opsets {"": 17} {
  input %x: f32[batch,8]
  init %w1: f32[8,16] = elided
  init %b1: f32[16] = elided
  init %w2: f32[16,4] = elided
  init %b2: f32[4] = elided
  init %i0: i64[1] = [0]
  init %two: i64[1] = [2]
  %h: f32[batch,16] = Gemm(%x, %w1, %b1)
  %r: f32[batch,16] = Relu(%h)
  %m: f32[batch,4] = MatMul(%r, %w2)
  %a: f32[batch,4] = Add(%m, %b2)
  %s: i64[2] = Shape(%x)
  %bs: i64[1] = Gather(%s, %i0) {axis=0}
  %t: i64[3] = Concat(%bs, %two, %two) {axis=0}
  %re: f32[batch,2,2] = Reshape(%a, %t)
  %y: f32[batch,2,2] = Softmax(%re) {axis=-1}
  output %y
}
)";
constexpr int kRoundingOpsOnLongestPath = 4;  // Gemm, MatMul, Add, Softmax (Relu etc. are exact)

struct Mlp {
  std::vector<float> w1, b1, w2, b2, x;
  int batch = 5;
};

std::vector<float> Uniform(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = u(rng);
  return v;
}

Mlp MakeMlp() {
  std::mt19937 rng(2024);
  Mlp m;
  m.w1 = Uniform(rng, 8 * 16, -0.5f, 0.5f);
  m.b1 = Uniform(rng, 16, -0.1f, 0.1f);
  m.w2 = Uniform(rng, 16 * 4, -0.5f, 0.5f);
  m.b2 = Uniform(rng, 4, -0.1f, 0.1f);
  m.x = Uniform(rng, static_cast<size_t>(m.batch) * 8, -2.0f, 2.0f);
  return m;
}

std::vector<double> ReferenceMlp(const Mlp& m) {
  std::vector<double> y;
  for (int b = 0; b < m.batch; ++b) {
    double h[16], a[4];
    for (int j = 0; j < 16; ++j) {
      h[j] = m.b1[j];
      for (int k = 0; k < 8; ++k) h[j] += double(m.x[b * 8 + k]) * m.w1[k * 16 + j];
      h[j] = std::max(h[j], 0.0);
    }
    for (int j = 0; j < 4; ++j) {
      a[j] = m.b2[j];
      for (int k = 0; k < 16; ++k) a[j] += h[k] * m.w2[k * 4 + j];
    }
    for (int pair = 0; pair < 2; ++pair) {  // softmax over the last axis of [2,2]
      const double e0 = std::exp(a[2 * pair]), e1 = std::exp(a[2 * pair + 1]);
      y.push_back(e0 / (e0 + e1));
      y.push_back(e1 / (e0 + e1));
    }
  }
  return y;
}

double RelativeError(DType p, const Mlp& m, const std::vector<double>& want) {
  auto g = ParseGraph(kMlp);
  EXPECT_TRUE(g.ok()) << g.status().message();
  Graph& graph = **g;
  graph.FindValue("w1")->set_initializer(Tensor::FromFloats(m.w1, {8, 16}));
  graph.FindValue("b1")->set_initializer(Tensor::FromFloats(m.b1, {16}));
  graph.FindValue("w2")->set_initializer(Tensor::FromFloats(m.w2, {16, 4}));
  graph.FindValue("b2")->set_initializer(Tensor::FromFloats(m.b2, {4}));
  const std::vector<Tensor> inputs = {Tensor::FromFloats(m.x, {m.batch, 8})};
  auto plan =
      CompileForInputs(std::move(*g), inputs, p, "half_storage_test", cpu::CpuBackendSupport());
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  if (!plan.ok()) return INFINITY;
  // The weights are stored in the requested format (fp16 -> f16, bf16 -> bf16).
  const std::string want_dtype = p == DType::kFloat32   ? "f32"
                                 : p == DType::kFloat16 ? "f16"
                                                        : "bf16";
  int weights = 0;
  for (const plan::Buffer& b : plan->proto.buffers()) {
    if (b.name() == "w1" || b.name() == "w2") {
      EXPECT_EQ(b.dtype(), want_dtype) << b.name();
      ++weights;
    }
  }
  EXPECT_EQ(weights, 2);
  auto exec = cpu::CpuExecutor::Create(std::move(*plan), 1);
  EXPECT_TRUE(exec.ok()) << exec.status().message();
  auto out = (*exec)->Run(inputs);
  EXPECT_TRUE(out.ok()) << out.status().message();
  if (!out.ok()) return INFINITY;
  EXPECT_EQ((*out)[0].type().ToString(), "f32[5,2,2]");  // the model's type, whatever the storage
  const std::vector<double> got = *(*out)[0].AsDoubles();
  EXPECT_EQ(got.size(), want.size());
  double err = 0, norm = 0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    err += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  return std::sqrt(err / norm);
}

TEST(HalfStorage, NumericsWithinTheBoundOfTheHalfFormat) {
  const Mlp m = MakeMlp();
  const std::vector<double> want = ReferenceMlp(m);
  const double bound = 2.0 * (kRoundingOpsOnLongestPath + 1);
  // fp32: the same bound at u = 2^-24 (plus the accumulation over K = 16 terms).
  EXPECT_LE(RelativeError(DType::kFloat32, m, want), (bound + 16) * std::ldexp(1.0, -24));
  const double f16 = RelativeError(DType::kFloat16, m, want);
  const double bf16 = RelativeError(DType::kBFloat16, m, want);
  EXPECT_LE(f16, bound * std::ldexp(1.0, -11));
  EXPECT_LE(bf16, bound * std::ldexp(1.0, -8));
  // Half storage must actually round: far more error than fp32 arithmetic would make.
  EXPECT_GT(f16, std::ldexp(1.0, -20));
  EXPECT_GT(bf16, std::ldexp(1.0, -17));
}

}  // namespace
}  // namespace ampc
