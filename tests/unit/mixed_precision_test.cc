// The mixed-precision training step: loss-scaler behaviour (GradScaler semantics, taken from
// torch.cuda.amp.GradScaler's documented update rule: x2 after 2000 finite steps, x0.5 and a
// skipped step on inf/NaN), and the classic pitfalls made impossible by construction.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "codegen/lower.h"
#include "compile_util.h"
#include "frontend/training/training_graph.h"
#include "ir/text.h"
#include "runtime/cpu/executor.h"
#include "test_util.h"

namespace ampc {
namespace {

// y = x W^T + b with 3 classes; cross entropy on y.
const char* kLinear = R"(graph "lin" opsets {"": 17} {
  input %x: f32[batch,4]
  init %w: f32[3,4] = [0.5, -0.25, 0.125, 0.75, 0.3, -0.6, 0.2, 0.1, -0.4, 0.05, 0.6, -0.2]
  init %b: f32[3] = [0.1, -0.2, 0.05]
  %y: f32[batch,3] = Gemm(%x, %w, %b) {transB=1} name="fc"
  output %y
}
)";

int OutputIndexForTest(const Plan& plan, const std::string& name) {
  const plan::PlanProto& p = plan.proto;
  for (int i = 0; i < p.outputs_size(); ++i) {
    if (p.outputs(i).name() == name) return i;
  }
  return -1;
}

struct Step {
  std::unique_ptr<cpu::CpuExecutor> ex;
  testing::CompiledTraining c;

  // One step on a fixed batch; `poison` puts a NaN into the input.
  std::vector<Tensor> Run(double lr = 0.1, bool poison = false, int variant = 0) {
    std::vector<float> x(16);
    for (int i = 0; i < 16; ++i) x[i] = 0.1f * static_cast<float>((i * 7 + variant) % 11) - 0.5f;
    if (poison) x[5] = std::numeric_limits<float>::quiet_NaN();
    std::vector<Tensor> in;
    for (const auto& n : c.train_inputs) {
      if (n == "x") in.push_back(Tensor::FromFloats(x, {4, 4}));
      if (n == "labels") in.push_back(Tensor::FromInt64s({0, 1, 2, 1}, {4}));
      if (n == kLrInput) in.push_back(Tensor::Scalar(DType::kFloat32, lr));
    }
    auto out = ex->Run(in);
    EXPECT_TRUE(out.ok()) << out.status().message();
    return out.ok() ? *out : std::vector<Tensor>{};
  }
  double State(const std::string& name) { return ex->GetState(name)->AsDoubles()->at(0); }
  Tensor Get(const std::string& name) { return *ex->GetState(name); }
};

Step Compile(const std::string& precision, const std::string& scale = "", TrainOptions o = {},
             const std::string& text = kLinear) {
  Step s;
  AmpArgs a;
  a.precision = precision;
  CompileOptions co;
  EXPECT_TRUE(ResolveAmp(a, &co).ok());
  co.narrow_inputs = false;  // Run feeds f32 batches (a NaN among them) to the step
  if (!scale.empty()) {
    if (scale == "none" || scale == "dynamic") {
      co.loss_scale.mode = scale;
    } else {
      co.loss_scale.mode = "static";
      co.loss_scale.init = std::stod(scale);
    }
  }
  if (o.optimizer.momentum == 0 && o.optimizer.kind == "sgd") o.optimizer.momentum = 0.9;
  co.train = o;
  auto make = [&]() -> StatusOr<std::unique_ptr<Graph>> { return ParseGraph(text); };
  auto c = testing::CompileTraining(make, co, 4, {{"x", {4, 4}}, {"labels", {4}}});
  EXPECT_TRUE(c.ok()) << c.status().message();
  if (!c.ok()) return s;
  s.c = std::move(*c);
  auto ex = cpu::CpuExecutor::Create(s.c.train, 1);
  EXPECT_TRUE(ex.ok()) << ex.status().message();
  s.ex = std::move(*ex);
  return s;
}

TEST(LossScaler, InjectedNanSkipsTheStepAndHalvesTheScale) {
  Step s = Compile("fp16");
  ASSERT_TRUE(s.ex);
  EXPECT_EQ(s.c.info.loss_scale_mode, "dynamic");
  EXPECT_EQ(s.State(kLossScaleState), 65536.0);
  for (int i = 0; i < 3; ++i) s.Run();
  EXPECT_EQ(s.State(kStepState), 3);
  const Tensor w = s.Get("w"), b = s.Get("b");
  const Tensor m = s.Get("ampc.momentum.w");
  auto out = s.Run(0.1, /*poison=*/true);
  EXPECT_TRUE(std::isnan(out[0].AsDoubles()->at(0)));
  // Parameters and optimizer state bit-identical, the step not counted, the scale halved.
  EXPECT_EQ(s.Get("w").bytes(), w.bytes());
  EXPECT_EQ(s.Get("b").bytes(), b.bytes());
  EXPECT_EQ(s.Get("ampc.momentum.w").bytes(), m.bytes());
  EXPECT_EQ(s.State(kStepState), 3);
  EXPECT_EQ(s.State(kSkippedState), 1);
  EXPECT_EQ(s.State(kLossScaleState), 32768.0);
  EXPECT_EQ(s.State(kGrowthTrackerState), 0);
  // Training continues from the same parameters (pitfall d: one bad batch poisons nothing).
  s.Run();
  EXPECT_NE(s.Get("w").bytes(), w.bytes());
  auto wv = s.Get("w").AsDoubles();
  for (double v : *wv) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(s.State(kStepState), 4);
  EXPECT_EQ(s.State(kGrowthTrackerState), 1);
}

TEST(LossScaler, GrowsAfter2000CleanSteps) {
  Step s = Compile("fp16");
  ASSERT_TRUE(s.ex);
  for (int i = 0; i < 1999; ++i) s.Run(1e-4, false, i % 5);
  EXPECT_EQ(s.State(kLossScaleState), 65536.0);
  EXPECT_EQ(s.State(kGrowthTrackerState), 1999);
  s.Run(1e-4);
  EXPECT_EQ(s.State(kLossScaleState), 131072.0);
  EXPECT_EQ(s.State(kGrowthTrackerState), 0);
  EXPECT_EQ(s.State(kSkippedState), 0);
}

TEST(LossScaler, StaticScaleNeverChangesButStillSkips) {
  Step s = Compile("fp16", "1024");
  ASSERT_TRUE(s.ex);
  EXPECT_EQ(s.c.info.loss_scale_mode, "static");
  s.Run();
  const Tensor w = s.Get("w");
  s.Run(0.1, true);
  EXPECT_EQ(s.Get("w").bytes(), w.bytes());
  EXPECT_EQ(s.State(kLossScaleState), 1024.0);
  EXPECT_EQ(s.State(kSkippedState), 1);
}

TEST(LossScaler, Bf16HasNoScalingButSkipsNonFiniteSteps) {
  Step s = Compile("bf16");
  ASSERT_TRUE(s.ex);
  EXPECT_EQ(s.c.info.loss_scale_mode, "none");
  s.Run();
  const Tensor w = s.Get("w");
  s.Run(0.1, true);
  EXPECT_EQ(s.Get("w").bytes(), w.bytes());
  EXPECT_EQ(s.State(kLossScaleState), 1.0);
  EXPECT_EQ(s.State(kSkippedState), 1);
}

TEST(LossScaler, Fp32IsUnchangedByDefault) {
  Step s = Compile("fp32");
  ASSERT_TRUE(s.ex);
  EXPECT_FALSE(s.c.info.finite_check);
  EXPECT_FALSE(s.ex->GetState(kLossScaleState).ok());
}

// Static and dynamic scaling change only the exponent of the gradients: with a power-of-two
// scale the fp32 master update equals the unscaled one up to half-precision rounding.
TEST(LossScaler, ScaledTrainingTracksFp32) {
  Step f = Compile("fp32");
  Step h = Compile("fp16");
  ASSERT_TRUE(f.ex && h.ex);
  for (int i = 0; i < 10; ++i) {
    auto a = f.Run(0.1, false, i);
    auto b = h.Run(0.1, false, i);
    EXPECT_NEAR(b[0].AsDoubles()->at(0), a[0].AsDoubles()->at(0),
                2e-3 * std::abs(a[0].AsDoubles()->at(0)));
  }
}

// Pitfall (c): fp16 without scaling is refused unless explicitly allowed (then it warns).
TEST(Pitfalls, UnscaledFp16IsRefusedUnlessAllowed) {
  auto g = ParseGraph(kLinear);
  ASSERT_TRUE(g.ok());
  CompileOptions o;
  o.precision = DType::kFloat16;
  o.loss_scale.mode = "none";
  auto info = BuildTrainingStep(**g, o);
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("--allow-unscaled-fp16"), std::string::npos);
  o.loss_scale.allow_unscaled_fp16 = true;
  auto g2 = ParseGraph(kLinear);
  auto ok = BuildTrainingStep(**g2, o);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  ASSERT_FALSE(ok->warnings.empty());
  EXPECT_NE(ok->warnings.back().find("flush to zero"), std::string::npos);
}

// Pitfall (a): log(sum(x)) over values far below fp16's smallest subnormal (6e-8). With the
// default lists the sum and the log run in fp32 and nothing is cast to half; forcing them into
// the allow list reproduces the failure (the input rounds to 0 in fp16, log(0) = -inf).
TEST(Pitfalls, LogOfSumOfTinyValuesStaysFinite) {
  const std::string text = R"(graph "tiny" opsets {"": 17} {
  input %x: f32[batch,64]
  init %w: f32[64] = [)" + [] {
    std::string s;
    for (int i = 0; i < 64; ++i) s += (i ? ", " : "") + std::string("1.0");
    return s;
  }() + R"(]
  %p: f32[batch,64] = Mul(%x, %w) name="weigh"
  %s: f32[] = ReduceSum(%p) {keepdims=0} name="sum"
  %l: f32[] = Log(%s) name="log"
  output %l
}
)";
  auto run = [&](const AmpListEdits& edits) {
    auto g = ParseGraph(text);
    EXPECT_TRUE(g.ok()) << g.status().message();
    CompileOptions o;
    o.train.loss.kind = "none";
    o.train.loss.loss_output = "l";
    AmpArgs a;
    a.precision = "fp16";
    a.edits = edits;
    auto amp = ResolveAmp(a, &o);
    EXPECT_TRUE(amp.ok()) << amp.message();
    o.narrow_inputs = false;  // fed f32 below
    auto make = [&]() -> StatusOr<std::unique_ptr<Graph>> { return ParseGraph(text); };
    auto c = testing::CompileTraining(make, o, 2, {{"x", {2, 64}}});
    EXPECT_TRUE(c.ok()) << c.status().message();
    auto ex = cpu::CpuExecutor::Create(c->train, 1);
    std::vector<Tensor> in;
    for (const auto& n : c->train_inputs) {
      if (n == "x") in.push_back(Tensor::FromFloats(std::vector<float>(128, 1e-9f), {2, 64}));
      if (n == kLrInput) in.push_back(Tensor::Scalar(DType::kFloat32, 1e-3));
    }
    auto out = (*ex)->Run(in);
    EXPECT_TRUE(out.ok());
    const double loss = (*out)[0].AsDoubles()->at(0);
    const double skipped = (*ex)->GetState(kSkippedState)->AsDoubles()->at(0);
    return std::make_pair(loss, skipped);
  };
  auto [loss, skipped] = run({});
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_NEAR(loss, std::log(128 * 1e-9), 1e-4);
  EXPECT_EQ(skipped, 0);
  AmpListEdits naive;
  naive.add["allow"] = {"Mul", "ReduceSum", "Log"};
  auto [bad_loss, bad_skipped] = run(naive);
  EXPECT_FALSE(std::isfinite(bad_loss));
  EXPECT_EQ(bad_skipped, 1);  // and even then the step is skipped, not applied
}

// Pitfall (b): clipping sees unscaled gradients. Under fp16 with a 65536 scale the reported
// norm and the clipped update match fp32's.
TEST(Pitfalls, ClippingActsOnUnscaledGradients) {
  TrainOptions o;
  o.optimizer.clip_grad_norm = 0.05;
  o.optimizer.momentum = 0.0;
  o.optimizer.kind = "adam";  // not sgd: keep the momentum default out of the way
  Step f = Compile("fp32", "", o);
  Step h = Compile("fp16", "", o);
  ASSERT_TRUE(f.ex && h.ex);
  const int ni = OutputIndexForTest(f.c.train, kGradNormOutput);
  ASSERT_GE(ni, 0);
  auto a = f.Run(0.1);
  auto b = h.Run(0.1);
  const double na = a[ni].AsDoubles()->at(0), nb = b[ni].AsDoubles()->at(0);
  EXPECT_GT(na, 0.05);  // the clip is active
  EXPECT_NEAR(nb, na, 5e-3 * na);
  auto wa = f.Get("w").AsDoubles(), wb = h.Get("w").AsDoubles();
  for (size_t i = 0; i < wa->size(); ++i) EXPECT_NEAR((*wb)[i], (*wa)[i], 1e-3) << i;
}

// Pitfall (e): a checkpoint (saved training plan) holds fp32 masters and fp32 optimizer state,
// plus the scaler's state; the half copies are per-step temporaries.
TEST(Pitfalls, CheckpointsHoldFp32Masters) {
  Step s = Compile("bf16", "dynamic");
  ASSERT_TRUE(s.ex);
  s.Run();
  testing::TempDir tmp;
  auto current = s.ex->CurrentPlan();
  ASSERT_TRUE(current.ok());
  ASSERT_TRUE(SavePlan(*current, tmp / "ckpt.ampc").ok());
  auto p = LoadPlan(tmp / "ckpt.ampc");
  ASSERT_TRUE(p.ok()) << p.status().message();
  std::map<std::string, std::string> states;
  for (const auto& b : p->proto.buffers()) {
    if (b.kind() == plan::Buffer::STATE) states[b.name()] = b.dtype();
  }
  EXPECT_EQ(states.at("w"), "f32");
  EXPECT_EQ(states.at("b"), "f32");
  EXPECT_EQ(states.at("ampc.momentum.w"), "f32");
  EXPECT_EQ(states.at(kLossScaleState), "f32");
  EXPECT_EQ(states.at(kGrowthTrackerState), "i64");
  EXPECT_EQ(states.at(kSkippedState), "i64");
  EXPECT_EQ(states.at(kStepState), "i64");
  for (const auto& [name, dt] : states) EXPECT_NE(dt, "bf16") << name;
  EXPECT_EQ(p->proto.precision(), "bf16");
}

}  // namespace
}  // namespace ampc
