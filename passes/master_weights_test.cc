// MasterWeightsPass (passes/master_weights.h): fp32 masters for f16/bf16 initializers.
// Where the expected values come from:
// - the f32 bit patterns of the masters: derived by hand from the half bit patterns (half -> f32
//   is exact: f16 rebias the exponent by 127 - 15 and shift the mantissa by 13; bf16 is the top
//   16 bits of an f32), written next to each value;
// - the training step: a closed-form SGD step in float64 for y = x W^T + b with MSE (dL/dy =
//   2 (y - t) / N), computed by plain loops in this file. The data are dyadic numbers with few
//   significant bits, so the model's f16 forward and backward are exact and the only rounding
//   left is fp32's in lr * g and the subtraction: the tolerance is 2 ulp of fp32 at 1.
#include "passes/master_weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "ir/op_registry.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "runtime/cpu/executor.h"
#include "tests/unit/compile_util.h"
#include "tests/unit/graph_test_util.h"

namespace ampc {
namespace {

using testing::Bits16;
using testing::Bits32;
using testing::Get;
using testing::Parse;

// Half initializers with awkward values: f16 1/3, the smallest subnormal, the largest finite,
// -0, inf and -2; bf16 1/3, -1.5, the largest finite and the smallest subnormal.
const char* kHalf = R"(graph "g" opsets {"": 17} {
  input %x: f16[6]
  input %xb: bf16[4]
  init %h: f16[6] = [0.33325195, 5.9604645e-08, 65504.0, -0.0, inf, -2.0]
  init %hb: bf16[4] = [0.333984375, -1.5, 3.3895314e+38, 9.1835496e-41]
  %y: f16[6] = Add(%x, %h) name="add"
  %z: f16[6] = Mul(%h, %h) name="square"
  %yb: bf16[4] = Mul(%xb, %hb) name="mulb"
  output %y
  output %z
  output %yb
}
)";

TEST(MasterWeights, NoHalfInitializerIsANoOp) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[2]
  init %w: f32[2] = [0.1, 0.2]
  init %d: f64[2] = [0.1, 0.2]
  init %s: i64[1] = [2]
  %y: f32[2] = Add(%x, %w) name="add"
  %e: f64[2] = Mul(%d, %d) name="f64"
  %r: f32[2] = Reshape(%y, %s) name="reshape"
  output %r
  output %e
}
)");
  const std::string before = PrintGraph(*g);
  MasterWeightsPass pass;
  auto changed = pass.Run(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_FALSE(*changed);
  EXPECT_TRUE(pass.promoted().empty());
  EXPECT_EQ(PrintGraph(*g), before);
}

TEST(MasterWeights, HalfInitializersBecomeF32WithBitExactValues) {
  auto g = Parse(kHalf);
  // Preconditions: the parser stored the bit patterns the expectations below are derived from.
  ASSERT_EQ(Bits16(*Get(*g, "h")->initializer()),
            (std::vector<uint16_t>{0x3555, 0x0001, 0x7bff, 0x8000, 0x7c00, 0xc000}));
  ASSERT_EQ(Bits16(*Get(*g, "hb")->initializer()),
            (std::vector<uint16_t>{0x3eab, 0xbfc0, 0x7f7f, 0x0001}));
  MasterWeightsPass pass;
  auto changed = pass.Run(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(pass.promoted(), (std::vector<std::string>{"h", "hb"}));
  const Value* h = Get(*g, "h");
  EXPECT_EQ(h->kind(), ValueKind::kInitializer);
  EXPECT_EQ(h->type().ToString(), "f32[6]");
  EXPECT_EQ(h->initializer()->type().ToString(), "f32[6]");
  // f16 -> f32 by hand: 0x3555 = 2^-2 * (1 + 341/1024) -> exponent 125, mantissa 341 << 13;
  // 0x0001 = 2^-24 (a normal f32); 0x7bff = 65504 -> exponent 142, mantissa 0x3ff << 13;
  // -0 keeps its sign bit; inf stays inf; -2 -> exponent 128 with the sign.
  EXPECT_EQ(Bits32(*h->initializer()), (std::vector<uint32_t>{0x3eaaa000, 0x33800000, 0x477fe000,
                                                              0x80000000, 0x7f800000, 0xc0000000}));
  const Value* hb = Get(*g, "hb");
  EXPECT_EQ(hb->type().ToString(), "f32[4]");
  // bf16 -> f32 by hand: the same 16 bits followed by 16 zero bits (the subnormal stays one).
  EXPECT_EQ(Bits32(*hb->initializer()),
            (std::vector<uint32_t>{0x3eab0000, 0xbfc00000, 0x7f7f0000, 0x00010000}));
}

TEST(MasterWeights, EveryReaderReadsOneCastToTheStoredType) {
  auto g = Parse(kHalf);
  MasterWeightsPass pass;
  ASSERT_TRUE(pass.Run(*g).ok());
  for (const auto& [name, stored, onnx] :
       {std::tuple<std::string, std::string, int64_t>{"h", "f16[6]", 10}, {"hb", "bf16[4]", 16}}) {
    const Value* master = Get(*g, name);
    // The master's only reader is one Cast back to the stored type ...
    ASSERT_EQ(master->uses().size(), 1u) << name;
    const Node* cast = master->uses()[0].user;
    EXPECT_EQ(cast->op_type(), "Cast");
    EXPECT_EQ(cast->attr_int("to", 0), onnx);
    EXPECT_EQ(cast->output(0)->type().ToString(), stored);
    // ... and every former reader (both operands of `square` included) reads that Cast.
    for (const Node* n : g->nodes()) {
      if (n == cast) continue;
      for (const Value* in : n->inputs()) EXPECT_NE(in, master) << n->name() << " reads " << name;
    }
  }
  const Value* h16 = Get(*g, "h")->uses()[0].user->output(0);
  EXPECT_EQ(h16->uses().size(), 3u);  // add, and square's two operands
  // The forward types are what they were: the outputs are still half.
  EXPECT_EQ(Get(*g, "y")->type().ToString(), "f16[6]");
  EXPECT_EQ(Get(*g, "z")->type().ToString(), "f16[6]");
  EXPECT_EQ(Get(*g, "yb")->type().ToString(), "bf16[4]");
  const Status v = Verify(*g);
  EXPECT_TRUE(v.ok()) << v.message();
}

TEST(MasterWeights, UnusedHalfAndFullPrecisionInitializersAreUntouched) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[2]
  init %unused: f16[2] = [0.5, 0.25]
  init %unused_b: bf16[2] = [0.5, 0.25]
  init %w: f32[2] = [0.1, 0.2]
  init %d: f64[2] = [0.1, 0.2]
  %y: f32[2] = Add(%x, %w) name="add"
  %e: f64[2] = Mul(%d, %d) name="f64"
  output %y
  output %e
}
)");
  const Tensor unused = *Get(*g, "unused")->initializer();
  const Tensor w = *Get(*g, "w")->initializer();
  const Tensor d = *Get(*g, "d")->initializer();
  MasterWeightsPass pass;
  auto changed = pass.Run(*g);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);  // an unused half initializer needs no master
  EXPECT_EQ(*Get(*g, "unused")->initializer(), unused);
  EXPECT_EQ(Get(*g, "unused")->type().ToString(), "f16[2]");
  EXPECT_EQ(Get(*g, "unused_b")->type().ToString(), "bf16[2]");
  EXPECT_EQ(*Get(*g, "w")->initializer(), w);
  EXPECT_EQ(*Get(*g, "d")->initializer(), d);
  ASSERT_NE(Get(*g, "y")->producer(), nullptr);
  ASSERT_NE(Get(*g, "e")->producer(), nullptr);
  EXPECT_EQ(Get(*g, "y")->producer()->input(1), Get(*g, "w"));
  EXPECT_EQ(Get(*g, "e")->producer()->input(0), Get(*g, "d"));
  EXPECT_EQ(g->num_nodes(), 2);
}

// A second run finds only f32 masters: nothing to do.
TEST(MasterWeights, SecondRunIsANoOp) {
  auto g = Parse(kHalf);
  MasterWeightsPass pass;
  ASSERT_TRUE(pass.Run(*g).ok());
  const std::string once = PrintGraph(*g);
  auto again = pass.Run(*g);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_TRUE(pass.promoted().empty());
  EXPECT_EQ(PrintGraph(*g), once);
}

// Edge: the cast's natural name (<init>_f16) is taken by a model value; the cast gets another.
TEST(MasterWeights, CastNameDoesNotCollideWithModelValues) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %h_f16: f16[2]
  init %h: f16[2] = [0.5, 0.25]
  %y: f16[2] = Add(%h_f16, %h) name="add"
  output %y
}
)");
  MasterWeightsPass pass;
  auto changed = pass.Run(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  const Node* add = Get(*g, "y")->producer();
  EXPECT_EQ(add->input(0), Get(*g, "h_f16"));  // the model's input, still read as it was
  EXPECT_EQ(add->input(0)->kind(), ValueKind::kInput);
  ASSERT_NE(add->input(1)->producer(), nullptr);
  EXPECT_EQ(add->input(1)->producer()->op_type(), "Cast");
  EXPECT_NE(add->input(1)->name(), "h_f16");
  EXPECT_TRUE(Verify(*g).ok());
}

// An f16 initializer that a node reads *and* the graph returns keeps the graph's output type:
// the output is the Cast of the master ("the forward pass computes what it did before").
TEST(MasterWeights, HalfInitializerThatIsAGraphOutputKeepsItsOutputType) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f16[2]
  init %h: f16[2] = [0.5, 2.0]
  %y: f16[2] = Add(%x, %h) name="add"
  output %y
  output %h
}
)");
  MasterWeightsPass pass;
  ASSERT_TRUE(pass.Run(*g).ok());
  ASSERT_EQ(g->outputs().size(), 2u);
  EXPECT_EQ(g->outputs()[1]->type().ToString(), "f16[2]");
}

// Error: a half initializer whose data was elided (`ampc inspect` dumps) cannot get a master.
TEST(MasterWeights, ElidedHalfInitializerIsAnError) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f16[20]
  init %big: f16[20] = elided
  %y: f16[20] = Add(%x, %big) name="add"
  output %y
}
)");
  MasterWeightsPass pass;
  auto changed = pass.Run(*g);
  ASSERT_FALSE(changed.ok());
  EXPECT_NE(changed.status().message().find("'big'"), std::string::npos)
      << changed.status().message();
}

// ---- In the training pipeline ----

// y = x W^T + b with MSE; the model was exported after model.half() (everything f16).
const char* kHalfModel = R"(graph "lin" opsets {"": 17} {
  input %x: f16[2,3]
  init %w: f16[2,3] = [0.5, -0.25, 0.125, 0.75, 0.375, -0.625]
  init %b: f16[2] = [0.125, -0.25]
  %y: f16[2,2] = Gemm(%x, %w, %b) {transB=1} name="fc"
  output %y
}
)";
// The same model with its weights given as f32 copies of the same half values, cast to f16.
const char* kCastModel = R"(graph "lin" opsets {"": 17} {
  input %x: f16[2,3]
  init %w: f32[2,3] = [0.5, -0.25, 0.125, 0.75, 0.375, -0.625]
  init %b: f32[2] = [0.125, -0.25]
  %w16: f16[2,3] = Cast(%w) {to=10} name="cast_w"
  %b16: f16[2] = Cast(%b) {to=10} name="cast_b"
  %y: f16[2,2] = Gemm(%x, %w16, %b16) {transB=1} name="fc"
  output %y
}
)";
const std::vector<double> kW0 = {0.5, -0.25, 0.125, 0.75, 0.375, -0.625}, kB0 = {0.125, -0.25};
const std::vector<double> kX = {1, 0.5, -1, 0.25, -0.5, 2}, kT = {0.5, -1, 1, 0.25};

// Closed-form SGD step in float64: y = x W^T + b, L = mean((y - t)^2) over the 4 elements,
// dL/dy = (y - t) / 2, dW = dY^T x, db = sum over the batch of dY; W' = W - lr dW.
void ClosedFormStep(double lr, std::vector<double>* w, std::vector<double>* b) {
  std::vector<double> dw(6, 0.0), db(2, 0.0);
  for (int n = 0; n < 2; ++n) {
    for (int o = 0; o < 2; ++o) {
      double y = kB0[o];
      for (int i = 0; i < 3; ++i) y += kX[n * 3 + i] * kW0[o * 3 + i];
      const double dy = (y - kT[n * 2 + o]) / 2.0;
      for (int i = 0; i < 3; ++i) dw[o * 3 + i] += dy * kX[n * 3 + i];
      db[o] += dy;
    }
  }
  *w = kW0;
  *b = kB0;
  for (int k = 0; k < 6; ++k) (*w)[k] -= lr * dw[k];
  for (int k = 0; k < 2; ++k) (*b)[k] -= lr * db[k];
}

Tensor HalfTensor(const std::vector<double>& v, std::vector<int64_t> dims) {
  std::vector<uint8_t> bytes(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = FloatToHalfBits(static_cast<float>(v[i]));
    std::memcpy(bytes.data() + 2 * i, &h, 2);
  }
  return Tensor(DType::kFloat16, std::move(dims), std::move(bytes));
}

CompileOptions Options(DType precision) {
  CompileOptions o;
  o.precision = precision;
  // fp16: a static power-of-two scale small enough for the model's own f16 backward (the default
  // 65536 would overflow dL/dy there and skip the step); exact, so the step is the unscaled one.
  if (precision == DType::kFloat16) {
    o.loss_scale.mode = "static";
    o.loss_scale.init = 1024;
  }
  o.train.loss.kind = "mse";
  o.train.optimizer.kind = "sgd";
  return o;
}

TEST(MasterWeights, TrainingStepTrainsAHalfStoredParameterAsAnFp32State) {
  auto g = Parse(kHalfModel);
  auto info = BuildTrainingStep(*g, Options(DType::kFloat32));
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->params, (std::vector<std::string>{"w", "b"}));
  for (const char* p : {"w", "b"}) {
    const Value* master = Get(*g, p);
    EXPECT_EQ(master->dtype(), DType::kFloat32) << p;
    bool updated = false;
    for (const StateUpdate& u : g->state_updates()) {
      if (u.state != master) continue;
      updated = true;
      // The optimizer updates the f32 master with an f32 gradient.
      const Node* opt = u.next->producer();
      ASSERT_NE(opt, nullptr);
      EXPECT_EQ(opt->annotations().at("role"), "optimizer");
      EXPECT_EQ(opt->input(2), master);
      EXPECT_EQ(opt->input(3)->dtype(), DType::kFloat32);
      EXPECT_EQ(u.next->dtype(), DType::kFloat32);
    }
    EXPECT_TRUE(updated) << p;
  }
}

// One step of the f16-stored model and of its f32-copies-plus-Cast twin, each against the
// closed form. lr = 1e-3 makes some updates smaller than half an f16 ulp of the weight: an f16
// parameter would not move at all; the fp32 master does (Micikevicius et al. 2018).
void CheckOneStep(const char* text, DType precision) {
  const double lr = static_cast<double>(1e-3f);  // what the f32 ampc.lr input holds
  auto make = [&]() -> StatusOr<std::unique_ptr<Graph>> { return ParseGraph(text); };
  auto c =
      testing::CompileTraining(make, Options(precision), 2, {{"x", {2, 3}}, {"labels", {2, 2}}});
  ASSERT_TRUE(c.ok()) << c.status().message();
  auto ex = cpu::CpuExecutor::Create(c->train, 1);
  ASSERT_TRUE(ex.ok()) << ex.status().message();
  std::vector<Tensor> in;
  for (const auto& n : c->train_inputs) {
    if (n == "x") in.push_back(HalfTensor(kX, {2, 3}));
    if (n == "labels") in.push_back(HalfTensor(kT, {2, 2}));
    if (n == kLrInput) in.push_back(Tensor::Scalar(DType::kFloat32, lr));
  }
  ASSERT_EQ(in.size(), c->train_inputs.size());
  auto out = (*ex)->Run(in);
  ASSERT_TRUE(out.ok()) << out.status().message();
  std::vector<double> want_w, want_b;
  ClosedFormStep(lr, &want_w, &want_b);
  auto w = (*ex)->GetState("w");
  auto b = (*ex)->GetState("b");
  ASSERT_TRUE(w.ok() && b.ok());
  EXPECT_EQ(w->dtype(), DType::kFloat32);
  EXPECT_EQ(b->dtype(), DType::kFloat32);
  const double tol = std::ldexp(1.0, -22);  // 2 ulp of fp32 at 1
  auto wv = *w->AsDoubles(), bv = *b->AsDoubles();
  ASSERT_EQ(wv.size(), 6u);
  ASSERT_EQ(bv.size(), 2u);
  int sub_ulp = 0;
  for (int k = 0; k < 6; ++k) {
    EXPECT_NEAR(wv[k], want_w[k], tol) << "w[" << k << "]";
    const double half_ulp = std::ldexp(1.0, std::ilogb(kW0[k]) - 11);
    if (wv[k] != kW0[k] && std::abs(wv[k] - kW0[k]) < half_ulp) ++sub_ulp;
  }
  for (int k = 0; k < 2; ++k) EXPECT_NEAR(bv[k], want_b[k], tol) << "b[" << k << "]";
  EXPECT_GT(sub_ulp, 0) << "no update below half an f16 ulp: the check proves nothing";
}

TEST(MasterWeights, OneStepOfAnF16StoredModelMatchesTheClosedForm) {
  CheckOneStep(kHalfModel, DType::kFloat32);
}
TEST(MasterWeights, OneStepOfTheF32CopiesPlusCastModelMatchesTheClosedForm) {
  CheckOneStep(kCastModel, DType::kFloat32);
}

// With --precision fp16 (dynamic loss scaling, the default) the f16-stored model's f16 autodiff
// seed reads the f32 scale through a Cast.
TEST(MasterWeights, OneStepOfAnF16StoredModelInFp16Precision) {
  CheckOneStep(kHalfModel, DType::kFloat16);
}

}  // namespace
}  // namespace ampc
