// Tests of the training-step builder (frontend/training/training_graph.h) and the training loop
// pieces of runtime/train.h. References: closed-form derivatives computed here in double
// (MSE of a linear model), mathematical identities (cross entropy on logits = NLL on
// LogSoftmax), and PyTorch's LR schedulers (written by tools/train_reference.py).
#include "frontend/training/training_graph.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "compile_util.h"
#include "ir/op_registry.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "runtime/cpu/executor.h"
#include "runtime/train_data.h"
#include "test_util.h"
#include "tests/unit/graph_test_util.h"

namespace ampc {
namespace {

using testing::Parse;

// y = x W^T + b, x: [batch, 3], W: [2, 3].
const char* kLinear = R"(graph "lin" opsets {"": 17} {
  input %x: f32[batch,3]
  init %w: f32[2,3] = [0.5, -0.25, 0.125, 0.75, 0.3, -0.6]
  init %b: f32[2] = [0.1, -0.2]
  %y: f32[batch,2] = Gemm(%x, %w, %b) {transB=1} name="fc"
  output %y
}
)";

std::map<std::string, std::vector<int64_t>> Dims(
    std::initializer_list<std::pair<std::string, std::vector<int64_t>>> l) {
  return {l.begin(), l.end()};
}

Tensor F32(std::vector<float> v, std::vector<int64_t> dims) {
  return Tensor::FromFloats(v, std::move(dims));
}

std::vector<float> Floats(const Tensor& t) {
  auto d = t.AsDoubles();
  return std::vector<float>(d->begin(), d->end());
}

// Compiles the training step for batch 4 and returns an executor.
std::unique_ptr<cpu::CpuExecutor> Compile(const std::string& text, const TrainOptions& o,
                                          std::map<std::string, std::vector<int64_t>> dims,
                                          testing::CompiledTraining* out = nullptr) {
  auto make = [&]() -> StatusOr<std::unique_ptr<Graph>> { return Parse(text); };
  CompileOptions co;
  co.train = o;
  auto c = testing::CompileTraining(make, co, 4, dims);
  EXPECT_TRUE(c.ok()) << c.status().message();
  if (!c.ok()) return nullptr;
  auto ex = cpu::CpuExecutor::Create(c->train, 1);
  EXPECT_TRUE(ex.ok()) << ex.status().message();
  if (out) *out = std::move(*c);
  return std::move(*ex);
}

TEST(TrainingGraph, MseSgdStepMatchesClosedForm) {
  TrainOptions o;
  o.loss.kind = "mse";
  o.optimizer.lr = 0.1;
  testing::CompiledTraining c;
  auto ex = Compile(kLinear, o, Dims({{"x", {4, 3}}, {"labels", {4, 2}}}), &c);
  ASSERT_TRUE(ex);
  const std::vector<float> x = {1, 2, 3, -1, 0.5, 0.25, 0, -2, 1, 0.3, 0.3, -0.7};
  const std::vector<float> t = {0.5, -1, 2, 0, 1, 1, -0.5, 0.25};
  std::vector<double> w = {0.5, -0.25, 0.125, 0.75, 0.3, -0.6}, b = {0.1, -0.2};
  // L = mean over 8 elements of (y - t)^2; dL/dy = 2 (y - t) / 8.
  std::vector<double> dw(6, 0), db(2, 0);
  double loss = 0;
  for (int n = 0; n < 4; ++n) {
    for (int j = 0; j < 2; ++j) {
      double y = b[j];
      for (int k = 0; k < 3; ++k) y += double(x[n * 3 + k]) * w[j * 3 + k];
      const double r = y - t[n * 2 + j];
      loss += r * r / 8;
      db[j] += 2 * r / 8;
      for (int k = 0; k < 3; ++k) dw[j * 3 + k] += 2 * r / 8 * x[n * 3 + k];
    }
  }
  std::vector<Tensor> in;
  for (const auto& name : c.train_inputs) {
    if (name == "x") in.push_back(F32(x, {4, 3}));
    if (name == "labels") in.push_back(F32(t, {4, 2}));
    if (name == kLrInput) in.push_back(Tensor::Scalar(DType::kFloat32, 0.1));
  }
  auto out = ex->Run(in);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_NEAR((*out)[0].AsDoubles()->at(0), loss, 1e-6);
  auto w1 = Floats(*ex->GetState("w"));
  auto b1 = Floats(*ex->GetState("b"));
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(w1[i], w[i] - 0.1 * dw[i], 1e-6) << i;
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(b1[i], b[i] - 0.1 * db[i], 1e-6) << i;
  EXPECT_EQ(ex->GetState(kStepState)->AsInt64s()->at(0), 1);
}

TEST(TrainingGraph, NllOnLogSoftmaxTrainsLikeCrossEntropyOnLogits) {
  const std::string logsoftmax = R"(graph "lin" opsets {"": 17} {
  input %x: f32[batch,3]
  init %w: f32[2,3] = [0.5, -0.25, 0.125, 0.75, 0.3, -0.6]
  init %b: f32[2] = [0.1, -0.2]
  %y: f32[batch,2] = Gemm(%x, %w, %b) {transB=1} name="fc"
  %lp: f32[batch,2] = LogSoftmax(%y) {axis=1} name="lsm"
  output %lp
}
)";
  TrainOptions ce, nll;
  ce.optimizer.kind = nll.optimizer.kind = "adam";
  ce.optimizer.lr = nll.optimizer.lr = 0.05;
  nll.loss.kind = "nll";
  auto dims = Dims({{"x", {4, 3}}, {"labels", {4}}});
  testing::CompiledTraining ca, cb;
  auto a = Compile(kLinear, ce, dims, &ca);
  auto b = Compile(logsoftmax, nll, dims, &cb);
  ASSERT_TRUE(a && b);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (int step = 0; step < 5; ++step) {
    std::vector<float> x(12);
    for (float& v : x) v = nd(rng);
    std::vector<int64_t> lab = {step % 2, 1, 0, (step + 1) % 2};
    auto feed = [&](const std::vector<std::string>& names) {
      std::vector<Tensor> in;
      for (const auto& n : names) {
        if (n == "x") in.push_back(F32(x, {4, 3}));
        if (n == "labels") in.push_back(Tensor::FromInt64s(lab, {4}));
        if (n == kLrInput) in.push_back(Tensor::Scalar(DType::kFloat32, 0.05));
      }
      return in;
    };
    auto la = a->Run(feed(ca.train_inputs));
    auto lb = b->Run(feed(cb.train_inputs));
    ASSERT_TRUE(la.ok() && lb.ok());
    EXPECT_NEAR((*la)[0].AsDoubles()->at(0), (*lb)[0].AsDoubles()->at(0), 1e-6) << step;
  }
  auto wa = Floats(*a->GetState("w")), wb = Floats(*b->GetState("w"));
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(wa[i], wb[i], 1e-6);
}

TEST(TrainingGraph, FrozenParametersStayBitIdentical) {
  TrainOptions o;
  o.loss.kind = "mse";
  o.freeze = "^w$";
  testing::CompiledTraining c;
  auto ex = Compile(kLinear, o, Dims({{"x", {4, 3}}, {"labels", {4, 2}}}), &c);
  ASSERT_TRUE(ex);
  EXPECT_EQ(c.info.params, std::vector<std::string>{"b"});
  EXPECT_EQ(c.info.frozen, std::vector<std::string>{"w"});
  const Tensor w0 = *ex->GetState("w");
  std::vector<Tensor> in;
  for (const auto& n : c.train_inputs) {
    if (n == "x") in.push_back(F32(std::vector<float>(12, 0.5f), {4, 3}));
    if (n == "labels") in.push_back(F32(std::vector<float>(8, 1.0f), {4, 2}));
    if (n == kLrInput) in.push_back(Tensor::Scalar(DType::kFloat32, 0.5));
  }
  ASSERT_TRUE(ex->Run(in).ok());
  EXPECT_EQ(ex->GetState("w")->bytes(), w0.bytes());
  EXPECT_NE(Floats(*ex->GetState("b"))[0], 0.1f);
}

TEST(TrainingGraph, ModelOwnLossOutput) {
  const std::string ordered = R"(graph "own" opsets {"": 17} {
  input %x: f32[batch,3]
  init %w: f32[2,3] = [0.5, -0.25, 0.125, 0.75, 0.3, -0.6]
  %wt: f32[3,2] = Transpose(%w) {perm=[1, 0]} name="tr"
  %y: f32[batch,2] = MatMul(%x, %wt) name="mm"
  %sq: f32[batch,2] = Mul(%y, %y) name="sq"
  %l: f32[] = ReduceSum(%sq) {keepdims=0} name="sum"
  output %y
  output %l
}
)";
  TrainOptions o;
  o.loss.kind = "none";
  o.loss.loss_output = "l";
  auto gg = Parse(ordered);
  auto info = BuildTrainingGraph(*gg, o);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->loss, "l");
  EXPECT_TRUE(info->labels.empty());
  EXPECT_EQ(gg->outputs()[0]->name(), "l");
  EXPECT_TRUE(Verify(*gg).ok());
}

struct BadCase {
  const char* what;
  TrainOptions opts;
  const char* message;
};

TEST(TrainingGraph, BadOptionsAreClearErrors) {
  auto opt = [](auto f) {
    TrainOptions o;
    f(o);
    return o;
  };
  const BadCase cases[] = {
      {"loss kind", opt([](TrainOptions& o) { o.loss.kind = "hinge"; }), "--loss 'hinge'"},
      {"optimizer", opt([](TrainOptions& o) { o.optimizer.kind = "lion"; }), "--optimizer 'lion'"},
      {"loss-on", opt([](TrainOptions& o) { o.loss.output = "nope"; }),
       "'nope' is not a model output"},
      {"loss-output", opt([](TrainOptions& o) { o.loss.loss_output = "nope"; }),
       "--loss-output 'nope'"},
      {"none without output", opt([](TrainOptions& o) { o.loss.kind = "none"; }),
       "--loss none needs"},
      {"nesterov", opt([](TrainOptions& o) { o.optimizer.nesterov = true; }), "--nesterov"},
      {"regex", opt([](TrainOptions& o) { o.freeze = "(("; }), "not a valid regular expression"},
      {"freeze all", opt([](TrainOptions& o) { o.freeze = "."; }), "nothing to train"},
      {"labels not input", opt([](TrainOptions& o) { o.loss.labels = "w"; }), "not a graph input"},
      {"negative lr", opt([](TrainOptions& o) { o.optimizer.lr = -1; }), "--lr"},
      {"beta", opt([](TrainOptions& o) { o.optimizer.beta2 = 1.0; }), "--beta2"},
  };
  for (const BadCase& c : cases) {
    auto g = Parse(kLinear);
    auto info = BuildTrainingGraph(*g, c.opts);
    ASSERT_FALSE(info.ok()) << c.what;
    EXPECT_NE(info.status().message().find(c.message), std::string::npos)
        << c.what << ": " << info.status().message();
    EXPECT_EQ(info.status().ExitCode(), 2) << c.what;
  }
}

TEST(TrainingGraph, CrossEntropyNeedsClassScores) {
  const std::string text = R"(graph "v" opsets {"": 17} {
  input %x: f32[batch]
  init %s: f32[] = [2.0]
  %y: f32[batch] = Mul(%x, %s) name="scale"
  output %y
}
)";
  auto g = Parse(text);
  auto info = BuildTrainingGraph(*g, TrainOptions{});
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("needs scores shaped [N, C, ...]"), std::string::npos)
      << info.status().message();
}

TEST(TrainingGraph, StateUpdatesCoverParamsMomentsAndStep) {
  TrainOptions o;
  o.loss.kind = "mse";
  o.optimizer.kind = "adamw";
  auto g = Parse(kLinear);
  auto info = BuildTrainingGraph(*g, o);
  ASSERT_TRUE(info.ok()) << info.status().message();
  std::set<std::string> states;
  for (const StateUpdate& u : g->state_updates()) states.insert(u.state->name());
  EXPECT_EQ(states, (std::set<std::string>{"w", "b", "ampc.exp_avg.w", "ampc.exp_avg_sq.w",
                                           "ampc.exp_avg.b", "ampc.exp_avg_sq.b", kStepState}));
  EXPECT_TRUE(Verify(*g).ok());
  // The text form carries the updates through a print/parse round trip.
  auto again = ParseGraph(PrintGraph(*g));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ((*again)->state_updates().size(), g->state_updates().size());
  EXPECT_EQ(PrintGraph(**again), PrintGraph(*g));
}

TEST(TrainingGraph, DropoutIsSeededPerStepAndReproducible) {
  const std::string text = R"(graph "drop" opsets {"": 17} {
  input %x: f32[batch,3]
  init %w: f32[2,3] = [0.5, -0.25, 0.125, 0.75, 0.3, -0.6]
  init %ratio: f32[] = [0.5]
  init %on: bool[] = [true]
  %d: f32[batch,3], %m: bool[batch,3] = Dropout(%x, %ratio, %on) name="drop"
  %y: f32[batch,2] = Gemm(%d, %w) {transB=1} name="fc"
  output %y
}
)";
  TrainOptions o;
  o.loss.kind = "mse";
  o.optimizer.lr = 0.1;
  auto g = Parse(text);
  auto info = BuildTrainingGraph(*g, o);
  ASSERT_TRUE(info.ok()) << info.status().message();
  int drops = 0;
  for (const Node* n : g->nodes()) {
    if (n->op_type() == "Dropout") {
      EXPECT_EQ(n->domain(), kAmpcDomain);
      EXPECT_EQ(n->input(2)->name(), kStepState);
      ++drops;
    }
  }
  EXPECT_EQ(drops, 1);
  auto dims = Dims({{"x", {4, 3}}, {"labels", {4, 2}}});
  testing::CompiledTraining ca, cb;
  auto a = Compile(text, o, dims, &ca);
  auto b = Compile(text, o, dims, &cb);
  ASSERT_TRUE(a && b);
  std::vector<double> losses;
  for (int step = 0; step < 4; ++step) {
    std::vector<Tensor> in;
    for (const auto& n : ca.train_inputs) {
      if (n == "x") in.push_back(F32(std::vector<float>(12, 1.0f), {4, 3}));
      if (n == "labels") in.push_back(F32(std::vector<float>(8, 0.5f), {4, 2}));
      if (n == kLrInput) in.push_back(Tensor::Scalar(DType::kFloat32, 0.0));  // masks only
    }
    auto ra = a->Run(in), rb = b->Run(in);
    ASSERT_TRUE(ra.ok() && rb.ok()) << ra.status().message();
    EXPECT_EQ((*ra)[0].bytes(), (*rb)[0].bytes()) << "step " << step;  // reproducible
    losses.push_back((*ra)[0].AsDoubles()->at(0));
  }
  // With lr 0 the parameters never move, so different losses mean different masks per step.
  std::sort(losses.begin(), losses.end());
  EXPECT_NE(losses.front(), losses.back());
  // The evaluation pass runs Dropout as the identity.
  int eval_drops = 0;
  for (const auto& st : ca.eval.proto.steps())
    eval_drops += st.op().op() == "Dropout" && st.op().domain() == kAmpcDomain;
  EXPECT_EQ(eval_drops, 0);
}

// tools/train_reference.py writes torch.optim.lr_scheduler's rates to schedules.json.
TEST(LrSchedule, MatchesPyTorchSchedulers) {
  std::ifstream in(std::string(AMPC_GEN_DIR) + "/train_refs/schedules.json");
  ASSERT_TRUE(in) << "schedules.json missing: the generate_train_references fixture did not run";
  const auto j = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& c : j) {
    LrSchedule s;
    s.kind = c["kind"].get<std::string>();
    s.base = c["base"].get<double>();
    s.warmup_steps = c.value("warmup_steps", 0);
    s.total_steps = c.value("total_steps", 0);
    s.step_size = c.value("step_size", 1);
    s.gamma = c.value("gamma", 0.1);
    s.min_lr = c.value("min_lr", 0.0);
    ASSERT_TRUE(s.Validate().ok());
    const auto& want = c["lrs"];
    for (size_t t = 0; t < want.size(); ++t) {
      EXPECT_NEAR(s.At(static_cast<int64_t>(t)), want[t].get<double>(), 1e-12 + 1e-9 * s.base)
          << c["name"] << " step " << t;
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
}

TEST(TrainData, ShuffledOrderIsAPermutationAndDeterministic) {
  auto a = ShuffledOrder(1000, 7), b = ShuffledOrder(1000, 7), c = ShuffledOrder(1000, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
}

TEST(TrainData, GatherBatchTakesRowsInOrder) {
  Dataset d;
  d.size = 4;
  d.arrays["x"] = Tensor::FromFloats({0, 1, 10, 11, 20, 21, 30, 31}, {4, 2});
  auto b = GatherBatch(d, {3, 0, 2, 1}, 1, 2);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(Floats(b->at("x")), (std::vector<float>{0, 1, 20, 21}));
  auto plain = GatherBatch(d, {}, 2, 2);
  EXPECT_EQ(Floats(plain->at("x")), (std::vector<float>{20, 21, 30, 31}));
  EXPECT_FALSE(GatherBatch(d, {}, 3, 2).ok());
}

// The prefetcher hands out the batches gathering each in turn would (the reference: GatherBatch
// with each epoch's ShuffledOrder), across epoch boundaries, when a run starts mid-way (a
// resumed run) and with used buffers handed back; without shuffling, in file order.
TEST(TrainData, PrefetchedBatchesAreTheBatchesInTurn) {
  Dataset d;
  d.size = 10;
  std::vector<float> x(20);
  std::vector<int64_t> y(10);
  for (int i = 0; i < 10; ++i) {
    x[2 * i] = static_cast<float>(i);
    x[2 * i + 1] = static_cast<float>(100 + i);
    y[i] = i * 7;
  }
  d.arrays["x"] = Tensor::FromFloats(x, {10, 2});
  d.arrays["y"] = Tensor::FromInt64s(y, {10});
  for (const bool shuffle : {true, false}) {
    SCOPED_TRACE(shuffle ? "shuffled" : "file order");
    const uint64_t seed = 11;
    const int64_t batch = 3, per_epoch = 3, end = 9;  // 3 epochs; sample 9 is never used
    for (const int64_t start : {int64_t{0}, int64_t{4}}) {
      BatchPrefetcher batches(d, batch, shuffle, seed);
      for (int64_t step = start; step < end; ++step) {
        auto got = batches.Take(step, end);
        ASSERT_TRUE(got.ok()) << got.status().message();
        const std::vector<int64_t> order =
            shuffle ? ShuffledOrder(d.size, seed + static_cast<uint64_t>(step / per_epoch))
                    : std::vector<int64_t>();
        auto want = GatherBatch(d, order, (step % per_epoch) * batch, batch);
        ASSERT_TRUE(want.ok());
        for (const char* name : {"x", "y"}) {
          EXPECT_EQ(got->at(name).bytes(), want->at(name).bytes()) << name << " step " << step;
          EXPECT_EQ(got->at(name).dims(), want->at(name).dims());
        }
        for (auto& [name, t] : *got) batches.Recycle(name, std::move(t).TakeBytes());
      }
    }
  }
}

}  // namespace
}  // namespace ampc
