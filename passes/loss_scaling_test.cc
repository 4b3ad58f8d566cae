// LossScalingPass (passes/loss_scaling.h): the finite check and, for fp16, loss scaling.
// Where the expected values come from:
// - the graph structure: the pass's contract in passes/loss_scaling.h (seed, unscale, finite
//   check, skip, scale update) and GradScaler's documented defaults (init 2^16, growth 2,
//   backoff 0.5, interval 2000);
// - the numeric step: a closed-form SGD step in float64 for y = x W^T + b with MSE (dL/dy =
//   2 (y - t) / N), by plain loops in this file. The data are dyadic with few significant bits
//   and the scale is a power of two, so the fp16 forward/backward and the scaling are exact; the
//   only rounding left is fp32's in lr * g and the subtraction (tolerance: 2 ulp of fp32 at 1).
#include "passes/loss_scaling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "frontend/training/training_graph.h"
#include "ir/node_emitter.h"
#include "ir/text.h"
#include "ir/training_names.h"
#include "ir/verifier.h"
#include "runtime/cpu/executor.h"
#include "tests/unit/compile_util.h"
#include "tests/unit/graph_test_util.h"

namespace ampc {
namespace {

using testing::NodesOfType;
using testing::Parse;

// y = x W^T + b, x: [2, 3], W: [2, 3], MSE against labels [2, 2].
const char* kLinear = R"(graph "lin" opsets {"": 17} {
  input %x: f32[2,3]
  init %w: f32[2,3] = [0.5, -0.25, 0.125, 0.75, 0.375, -0.625]
  init %b: f32[2] = [0.125, -0.25]
  %y: f32[2,2] = Gemm(%x, %w, %b) {transB=1} name="fc"
  output %y
}
)";

// The training step BuildTrainingGraph makes of `model` (SGD, MSE), before loss scaling.
std::unique_ptr<Graph> Step(const std::string& model = kLinear, double clip = 0.0) {
  auto g = Parse(model);
  TrainOptions o;
  o.loss.kind = "mse";
  o.optimizer.clip_grad_norm = clip;
  auto info = BuildTrainingGraph(*g, o);
  EXPECT_TRUE(info.ok()) << info.status().message();
  return g;
}

std::vector<const Node*> Optimizers(const Graph& g) {
  std::vector<const Node*> out;
  for (const Node* n : g.nodes()) {
    if (RoleOf(*n) == "optimizer") out.push_back(n);
  }
  return out;
}

StatusOr<bool> RunPass(Graph& g, DType precision, LossScaleOptions o = {}) {
  LossScalingPass pass(o, precision);
  return testing::RunVerified(pass, g);
}

double Scalar(const Graph& g, const std::string& name) {
  const Value* v = g.FindValue(name);
  EXPECT_NE(v, nullptr) << name;
  return v && v->initializer() ? v->initializer()->AsDoubles()->at(0) : std::nan("");
}

// The gating and step-counter checks shared by every precision that gets a finite check.
void CheckGatedStep(const Graph& g, const Value* finite) {
  ASSERT_NE(finite, nullptr);
  EXPECT_EQ(finite->dtype(), DType::kBool);
  for (const Node* opt : Optimizers(g)) {
    ASSERT_EQ(opt->num_inputs(), 6) << opt->name();  // SGD: apply after the optional momentum
    EXPECT_EQ(opt->input(4), nullptr) << opt->name();
    EXPECT_EQ(opt->input(5), finite) << opt->name();
  }
  const Value* next = nullptr;
  for (const StateUpdate& u : g.state_updates()) {
    if (u.state->name() == kStepState) next = u.next;
  }
  ASSERT_NE(next, nullptr);
  const Node* add = next->producer();
  ASSERT_NE(add, nullptr);
  ASSERT_EQ(add->op_type(), "Add");
  const Node* cast = add->input(1)->producer();
  ASSERT_NE(cast, nullptr);
  EXPECT_EQ(cast->op_type(), "Cast");
  EXPECT_EQ(cast->attr_int("to", 0), 7);  // int64
  EXPECT_EQ(cast->input(0), finite);
}

TEST(LossScaling, Fp32WithoutAScaleIsANoOp) {
  auto g = Step();
  const std::string before = PrintGraph(*g);
  LossScalingPass pass({}, DType::kFloat32);
  auto changed = pass.Run(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_FALSE(*changed);
  EXPECT_EQ(pass.mode(), "none");
  EXPECT_FALSE(pass.finite_check());
  EXPECT_EQ(PrintGraph(*g), before);
}

TEST(LossScaling, Bf16GetsTheFiniteCheckButKeepsTheSeed) {
  auto g = Step();
  LossScalingPass pass({}, DType::kBFloat16);
  auto changed = pass.Run(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(pass.mode(), "none");
  EXPECT_TRUE(pass.finite_check());
  ASSERT_TRUE(Verify(*g).ok());
  // The backward pass still starts from the seed 1; the scale state exists (checkpoints carry
  // it) with the value 1 but nothing multiplies by it.
  EXPECT_FALSE(g->FindValue(kLossSeed)->uses().empty());
  EXPECT_EQ(Scalar(*g, kLossSeed), 1.0);
  EXPECT_EQ(Scalar(*g, kLossScaleState), 1.0);
  EXPECT_TRUE(NodesOfType(*g, "Reciprocal").empty());
  // AllFinite over the loss and the raw gradients, in optimizer order.
  const auto finite = NodesOfType(*g, "AllFinite");
  ASSERT_EQ(finite.size(), 1u);
  std::vector<const Value*> checked(finite[0]->inputs().begin(), finite[0]->inputs().end());
  const auto opts = Optimizers(*g);
  ASSERT_EQ(opts.size(), 2u);
  EXPECT_EQ(checked,
            (std::vector<const Value*>{g->outputs()[0], opts[0]->input(3), opts[1]->input(3)}));
  const auto update = NodesOfType(*g, "UpdateLossScale");
  ASSERT_EQ(update.size(), 1u);
  EXPECT_EQ(update[0]->attr_int("dynamic", -1), 0);
  EXPECT_EQ(update[0]->input(3), finite[0]->output(0));
  CheckGatedStep(*g, finite[0]->output(0));
}

// 20 layers y = y W_i^T + b_i: 40 parameters, so the loss and 40 gradients to check.
std::string DeepLinear(int layers) {
  std::string s = "graph \"deep\" opsets {\"\": 17} {\n  input %x: f32[2,2]\n";
  std::string y = "%x";
  for (int i = 0; i < layers; ++i) {
    const std::string n = std::to_string(i);
    s += "  init %w" + n + ": f32[2,2] = [0.5, -0.25, 0.125, 0.75]\n";
    s += "  init %b" + n + ": f32[2] = [0.125, -0.25]\n";
    s += "  %y" + n + ": f32[2,2] = Gemm(" + y + ", %w" + n + ", %b" + n +
         ") {transB=1} name=\"fc" + n + "\"\n";
    y = "%y" + n;
  }
  return s + "  output " + y + "\n}\n";
}

TEST(LossScaling, ManyGradientsAreCheckedInGroupsJoinedByAnd) {
  // A generated kernel takes at most 32 buffers, so one AllFinite checks at most 31 values; the
  // flags are joined with And and the joined flag gates every optimizer and the scale update.
  auto g = Step(DeepLinear(20));
  ASSERT_TRUE(RunPass(*g, DType::kBFloat16).ok());
  const auto finite = NodesOfType(*g, "AllFinite");
  ASSERT_EQ(finite.size(), 2u);
  EXPECT_EQ(finite[0]->num_inputs() + finite[1]->num_inputs(), 41);
  EXPECT_EQ(finite[0]->num_inputs(), 31);
  // Together they check the loss and every optimizer's gradient, each once.
  std::vector<const Value*> checked(finite[0]->inputs().begin(), finite[0]->inputs().end());
  checked.insert(checked.end(), finite[1]->inputs().begin(), finite[1]->inputs().end());
  std::vector<const Value*> expected{g->outputs()[0]};
  for (const Node* opt : Optimizers(*g)) expected.push_back(opt->input(3));
  EXPECT_EQ(checked, expected);
  const auto ands = NodesOfType(*g, "And");
  ASSERT_EQ(ands.size(), 1u);
  EXPECT_EQ(ands[0]->input(0), finite[0]->output(0));
  EXPECT_EQ(ands[0]->input(1), finite[1]->output(0));
  const auto update = NodesOfType(*g, "UpdateLossScale");
  ASSERT_EQ(update.size(), 1u);
  EXPECT_EQ(update[0]->input(3), ands[0]->output(0));
  CheckGatedStep(*g, ands[0]->output(0));
}

TEST(LossScaling, Fp16ReplacesTheSeedAndUnscalesEachGradientOnce) {
  auto g = Step();
  LossScalingPass pass({}, DType::kFloat16);
  auto changed = pass.Run(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  ASSERT_TRUE(Verify(*g).ok());
  EXPECT_EQ(pass.mode(), "dynamic");
  EXPECT_TRUE(pass.warnings().empty());
  // Seed: nothing reads dL/dL = 1 any more; the backward pass starts from S = 2^16.
  EXPECT_TRUE(g->FindValue(kLossSeed)->uses().empty());
  const Value* scale = g->FindValue(kLossScaleState);
  EXPECT_EQ(Scalar(*g, kLossScaleState), 65536.0);
  const auto inv = NodesOfType(*g, "Reciprocal");
  ASSERT_EQ(inv.size(), 1u);
  EXPECT_EQ(inv[0]->input(0), scale);
  // Unscale: one Mul(raw gradient, 1/S) per gradient, read by the optimizer.
  const auto muls = NodesOfType(*g, "Mul");
  const auto opts = Optimizers(*g);
  ASSERT_EQ(opts.size(), 2u);
  std::vector<const Value*> unscaled;
  for (const Node* opt : opts) {
    const Node* m = opt->input(3)->producer();
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->op_type(), "Mul");
    EXPECT_EQ(RoleOf(*m), "loss-scale");
    EXPECT_EQ(m->input(1), inv[0]->output(0));
    ASSERT_NE(m->input(0)->producer(), nullptr);
    EXPECT_EQ(RoleOf(*m->input(0)->producer()), "") << "the raw gradient comes from backward";
    EXPECT_EQ(m->input(0)->dtype(), DType::kFloat32);  // already f32: no Cast needed
    EXPECT_EQ(m->input(0)->uses().size(), 1u);         // only the unscale reads it
    unscaled.push_back(opt->input(3));
  }
  int unscale_muls = 0;
  for (const Node* m : muls)
    unscale_muls += m->num_inputs() > 1 && m->input(1) == inv[0]->output(0);
  EXPECT_EQ(unscale_muls, 2);
  // The finite check sees the loss and the unscaled gradients; the scaler is dynamic with
  // GradScaler's defaults, and its three states are updated.
  const auto finite = NodesOfType(*g, "AllFinite");
  ASSERT_EQ(finite.size(), 1u);
  EXPECT_EQ(std::vector<const Value*>(finite[0]->inputs().begin(), finite[0]->inputs().end()),
            (std::vector<const Value*>{g->outputs()[0], unscaled[0], unscaled[1]}));
  const auto update = NodesOfType(*g, "UpdateLossScale");
  ASSERT_EQ(update.size(), 1u);
  EXPECT_EQ(update[0]->attr_int("dynamic", -1), 1);
  EXPECT_EQ(update[0]->attr_float("growth_factor", 0), 2.0f);
  EXPECT_EQ(update[0]->attr_float("backoff_factor", 0), 0.5f);
  EXPECT_EQ(update[0]->attr_int("growth_interval", 0), 2000);
  std::vector<std::string> states;
  for (const StateUpdate& u : g->state_updates()) {
    if (u.next->producer() == update[0]) states.push_back(u.state->name());
  }
  EXPECT_EQ(states,
            (std::vector<std::string>{kLossScaleState, kGrowthTrackerState, kSkippedState}));
  CheckGatedStep(*g, finite[0]->output(0));
}

// --clip-grad-norm: every clip node (the norm's ReduceSumSquare and the clipping Mul) reads the
// unscaled gradient, so the reported norm and the clipped update are those of true gradients.
TEST(LossScaling, ClipNodesReadUnscaledGradients) {
  auto g = Step(kLinear, /*clip=*/1.0);
  ASSERT_TRUE(RunPass(*g, DType::kFloat16).ok());
  const auto inv = NodesOfType(*g, "Reciprocal");
  ASSERT_EQ(inv.size(), 1u);
  int clip_reads = 0;
  for (const Node* n : g->nodes()) {
    if (RoleOf(*n) != "clip") continue;
    for (const Value* in : n->inputs()) {
      const Node* p = in ? in->producer() : nullptr;
      // No clip node reads a raw (scaled) gradient straight from the backward pass.
      if (p && p->annotations().count("grad_of")) ADD_FAILURE() << n->name() << " reads scaled";
      if (p && p->op_type() == "Mul" && RoleOf(*p) == "loss-scale") ++clip_reads;
    }
  }
  EXPECT_EQ(clip_reads, 4);  // per gradient: its ReduceSumSquare and its clipping Mul
  // The optimizer reads the clipped gradient, which starts from the unscaled one.
  for (const Node* opt : Optimizers(*g)) {
    const Node* clip = opt->input(3)->producer();
    ASSERT_NE(clip, nullptr);
    ASSERT_EQ(RoleOf(*clip), "clip");
    const Node* unscale = clip->input(0)->producer();
    ASSERT_NE(unscale, nullptr);
    EXPECT_EQ(unscale->op_type(), "Mul");
    EXPECT_EQ(unscale->input(1), inv[0]->output(0));
  }
}

TEST(LossScaling, StaticScaleIsFixedAndAskedScaleAppliesToFp32) {
  LossScaleOptions o;
  o.mode = "static";
  o.init = 1024;
  for (DType precision : {DType::kFloat16, DType::kFloat32}) {
    auto g = Step();
    LossScalingPass pass(o, precision);
    auto changed = pass.Run(*g);
    ASSERT_TRUE(changed.ok()) << changed.status().message();
    EXPECT_TRUE(*changed);
    EXPECT_EQ(pass.mode(), "static");
    EXPECT_EQ(Scalar(*g, kLossScaleState), 1024.0);
    EXPECT_TRUE(g->FindValue(kLossSeed)->uses().empty());
    const auto update = NodesOfType(*g, "UpdateLossScale");
    ASSERT_EQ(update.size(), 1u);
    EXPECT_EQ(update[0]->attr_int("dynamic", -1), 0);
  }
}

// Edge: an f64 parameter's gradient is unscaled in f64 (1/S cast to f64), not narrowed to f32.
TEST(LossScaling, F64GradientIsUnscaledInF64) {
  auto g = Step(R"(graph "lin" opsets {"": 17} {
  input %x: f32[2,3]
  init %w: f32[2,3] = [0.5, -0.25, 0.125, 0.75, 0.375, -0.625]
  init %d: f64[2] = [0.125, -0.25]
  %d32: f32[2] = Cast(%d) {to=1} name="cast_d"
  %y0: f32[2,2] = Gemm(%x, %w) {transB=1} name="fc"
  %y: f32[2,2] = Add(%y0, %d32) name="bias"
  output %y
}
)");
  ASSERT_TRUE(RunPass(*g, DType::kFloat16).ok());
  const Node* opt_d = nullptr;
  for (const Node* opt : Optimizers(*g)) {
    if (opt->input(2)->name() == "d") opt_d = opt;
  }
  ASSERT_NE(opt_d, nullptr);
  const Node* m = opt_d->input(3)->producer();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->op_type(), "Mul");
  EXPECT_EQ(m->output(0)->dtype(), DType::kFloat64);
  EXPECT_EQ(m->input(0)->dtype(), DType::kFloat64);
  const Node* k = m->input(1)->producer();
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->op_type(), "Cast");
  EXPECT_EQ(k->attr_int("to", 0), 11);
  ASSERT_NE(k->input(0)->producer(), nullptr);
  EXPECT_EQ(k->input(0)->producer()->op_type(), "Reciprocal");
}

// When the loss is not f32 the seed is not either (ampc.loss_seed has the loss's type: f16 for a
// model stored in f16, f64 for an f64 model): it reads the f32 scale through a Cast. (The
// default dynamic scale 2^16 is above f16's largest value, 65504: the first step overflows, is
// skipped, and the scale halves, as GradScaler's would.)
TEST(LossScaling, ScalesASeedThatIsNotF32) {
  for (const char* type : {"f16", "f64"}) {
    std::string model = R"(graph "lin" opsets {"": 17} {
  input %x: T[2,3]
  init %w: T[2,3] = [0.5, -0.25, 0.125, 0.75, 0.375, -0.625]
  %y: T[2,2] = Gemm(%x, %w) {transB=1} name="fc"
  output %y
}
)";
    for (size_t at; (at = model.find("T[")) != std::string::npos;) model.replace(at, 1, type);
    auto g = Parse(model);
    CompileOptions o;
    o.precision = DType::kFloat16;
    o.train.loss.kind = "mse";
    o.loss_scale.mode = "static";
    o.loss_scale.init = 1024;
    auto info = BuildTrainingStep(*g, o, "loss-scaling");
    EXPECT_TRUE(info.ok()) << type << ": " << info.status().message();
  }
}

// ---- Errors ----

TEST(LossScaling, FailsWithoutOptimizerNodes) {
  auto g = Parse(kLinear);
  auto r = RunPass(*g, DType::kFloat16);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("optimizer nodes"), std::string::npos)
      << r.status().message();
  // bf16 needs the finite check too, so it fails the same way.
  EXPECT_FALSE(RunPass(*Parse(kLinear), DType::kBFloat16).ok());
}

TEST(LossScaling, ScalingFailsWithoutTheSeedInitializer) {
  // The same step with the seed renamed: nothing is named ampc.loss_seed.
  std::string text = PrintGraph(*Step());
  for (size_t at; (at = text.find(kLossSeed)) != std::string::npos;) {
    text.replace(at, std::string(kLossSeed).size(), "my_seed");
  }
  auto r = RunPass(*Parse(text), DType::kFloat16);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(kLossSeed), std::string::npos) << r.status().message();
  // The finite check alone does not need the seed (edge): bf16 succeeds.
  auto g = Parse(text);
  EXPECT_TRUE(RunPass(*g, DType::kBFloat16).ok());
}

TEST(LossScaling, Fp16WithoutScalingNeedsTheOverride) {
  LossScaleOptions o;
  o.mode = "none";
  auto r = RunPass(*Step(), DType::kFloat16, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--allow-unscaled-fp16"), std::string::npos);
  // With the override: the finite check only, the seed kept, and a warning.
  o.allow_unscaled_fp16 = true;
  auto g = Step();
  LossScalingPass pass(o, DType::kFloat16);
  ASSERT_TRUE(pass.Run(*g).ok());
  EXPECT_EQ(pass.mode(), "none");
  EXPECT_TRUE(pass.finite_check());
  EXPECT_EQ(pass.warnings().size(), 1u);
  EXPECT_FALSE(g->FindValue(kLossSeed)->uses().empty());
  EXPECT_EQ(NodesOfType(*g, "AllFinite").size(), 1u);
}

TEST(LossScaling, BadOptionsAreRejected) {
  auto bad = [](auto edit) {
    LossScaleOptions o;
    o.mode = "dynamic";
    edit(o);
    return o;
  };
  const std::vector<std::pair<std::string, LossScaleOptions>> cases = {
      {"backoff 0", bad([](LossScaleOptions& o) { o.backoff = 0; })},
      {"backoff 1.5", bad([](LossScaleOptions& o) { o.backoff = 1.5; })},
      {"interval 0", bad([](LossScaleOptions& o) { o.interval = 0; })},
      {"negative init", bad([](LossScaleOptions& o) { o.init = -1024; })},
      {"zero init", bad([](LossScaleOptions& o) { o.init = 0; })},
      {"infinite init", bad([](LossScaleOptions& o) { o.init = INFINITY; })},
      {"growth 0.5", bad([](LossScaleOptions& o) { o.growth = 0.5; })},
      {"unknown mode", bad([](LossScaleOptions& o) { o.mode = "1024"; })},
  };
  for (const auto& [what, o] : cases) {
    EXPECT_FALSE(ValidateLossScale(o, DType::kFloat16).ok()) << what;
    auto g = Step();
    const std::string before = PrintGraph(*g);
    EXPECT_FALSE(RunPass(*g, DType::kFloat16, o).ok()) << what;
    EXPECT_EQ(PrintGraph(*g), before) << what << ": the graph was changed before failing";
  }
  EXPECT_FALSE(ValidateLossScale({}, DType::kInt64).ok());
  EXPECT_TRUE(ValidateLossScale({}, DType::kFloat16).ok());
}

TEST(LossScaling, ResolvesAutoByPrecision) {
  EXPECT_EQ(ResolveLossScaleMode({}, DType::kFloat16), "dynamic");
  EXPECT_EQ(ResolveLossScaleMode({}, DType::kBFloat16), "none");
  EXPECT_EQ(ResolveLossScaleMode({}, DType::kFloat32), "none");
  LossScaleOptions o;
  o.mode = "static";
  EXPECT_EQ(ResolveLossScaleMode(o, DType::kBFloat16), "static");
}

TEST(LossScaling, FailsOnAStepItCannotRecognise) {
  // Running twice would scale twice: the second run refuses (the states exist already).
  auto g = Step();
  ASSERT_TRUE(RunPass(*g, DType::kFloat16).ok());
  EXPECT_FALSE(RunPass(*g, DType::kFloat16).ok());
  // The first output must be the scalar loss.
  auto h = Step();
  std::vector<Value*> outs = h->outputs();
  std::swap(outs[0], outs[1]);
  h->SetOutputs(outs);
  auto r = RunPass(*h, DType::kFloat16);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("scalar loss"), std::string::npos) << r.status().message();
}

// ---- Numeric: a static scale of 1024 in fp16 gives the unscaled update ----

const std::vector<double> kW0 = {0.5, -0.25, 0.125, 0.75, 0.375, -0.625}, kB0 = {0.125, -0.25};
const std::vector<double> kX = {1, 0.5, -1, 0.25, -0.5, 2}, kT = {0.5, -1, 1, 0.25};

// Closed form in float64: dL/dy = (y - t) / 2, dW = dY^T x, db = sum_n dY; p' = p - lr dp.
void ClosedFormStep(double lr, std::vector<double>* w, std::vector<double>* b) {
  *w = kW0;
  *b = kB0;
  for (int n = 0; n < 2; ++n) {
    for (int o = 0; o < 2; ++o) {
      double y = kB0[o];
      for (int i = 0; i < 3; ++i) y += kX[n * 3 + i] * kW0[o * 3 + i];
      const double dy = (y - kT[n * 2 + o]) / 2.0;
      for (int i = 0; i < 3; ++i) (*w)[o * 3 + i] -= lr * dy * kX[n * 3 + i];
      (*b)[o] -= lr * dy;
    }
  }
}

void CheckStep(DType precision, const LossScaleOptions& scale) {
  CompileOptions co;
  co.precision = precision;
  co.train.loss.kind = "mse";
  co.loss_scale = scale;
  if (precision == DType::kFloat16) {
    // The check means something only if the CPU target really runs the Gemms in f16.
    auto g = Parse(kLinear);
    CompileOptions cpu = co;
    cpu.support = &testing::CpuSupport();
    ASSERT_TRUE(BuildTrainingStep(*g, cpu).ok());
    int half_gemms = 0;
    for (const Node* n : g->nodes()) {
      half_gemms += n->op_type() == "Gemm" && n->output(0)->dtype() == DType::kFloat16;
    }
    EXPECT_EQ(half_gemms, 2);  // fc and its dW
  }
  auto make = [&]() -> StatusOr<std::unique_ptr<Graph>> { return ParseGraph(kLinear); };
  auto c = testing::CompileTraining(make, co, 2, {{"x", {2, 3}}, {"labels", {2, 2}}});
  ASSERT_TRUE(c.ok()) << c.status().message();
  auto ex = cpu::CpuExecutor::Create(c->train, 1);
  ASSERT_TRUE(ex.ok()) << ex.status().message();
  const double lr = static_cast<double>(0.5f);
  std::vector<Tensor> in;
  for (const auto& n : c->train_inputs) {
    if (n == "x") in.push_back(Tensor::FromFloats({kX.begin(), kX.end()}, {2, 3}));
    if (n == "labels") in.push_back(Tensor::FromFloats({kT.begin(), kT.end()}, {2, 2}));
    if (n == kLrInput) in.push_back(Tensor::Scalar(DType::kFloat32, lr));
  }
  ASSERT_EQ(in.size(), c->train_inputs.size());
  ASSERT_TRUE((*ex)->Run(in).ok());
  std::vector<double> want_w, want_b;
  ClosedFormStep(lr, &want_w, &want_b);
  const double tol = std::ldexp(1.0, -22);
  auto w = *(*ex)->GetState("w")->AsDoubles(), b = *(*ex)->GetState("b")->AsDoubles();
  for (int k = 0; k < 6; ++k) EXPECT_NEAR(w[k], want_w[k], tol) << "w[" << k << "]";
  for (int k = 0; k < 2; ++k) EXPECT_NEAR(b[k], want_b[k], tol) << "b[" << k << "]";
  EXPECT_EQ((*ex)->GetState(kStepState)->AsDoubles()->at(0), 1);
  if (scale.mode == "static") {  // the step was applied under the scale, which stays fixed
    EXPECT_EQ((*ex)->GetState(kLossScaleState)->AsDoubles()->at(0), scale.init);
    EXPECT_EQ((*ex)->GetState(kSkippedState)->AsDoubles()->at(0), 0);
  }
}

TEST(LossScaling, Fp16StaticScaleStepEqualsTheUnscaledClosedForm) {
  LossScaleOptions o;
  o.mode = "static";
  o.init = 1024;
  CheckStep(DType::kFloat16, o);
}
TEST(LossScaling, Fp32UnscaledStepEqualsTheClosedForm) { CheckStep(DType::kFloat32, {}); }

}  // namespace
}  // namespace ampc
