// The training loop (runtime/train.h) runs over the Executor interface alone: here it drives an
// executor that forwards to the CPU one and counts every call, so the test sees exactly what the
// loop asks of a backend — one Step per step, metrics read in batches, no outputs copied back.
#include "runtime/train.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "ir/text.h"
#include "runtime/cpu/executor.h"
#include "tests/unit/compile_util.h"
#include "tests/unit/test_util.h"

namespace ampc {
namespace {

class CountingExecutor : public Executor {
 public:
  explicit CountingExecutor(std::unique_ptr<Executor> inner, int64_t interval)
      : inner_(std::move(inner)), interval_(interval) {}
  const plan::PlanProto& plan() const override { return inner_->plan(); }
  std::string device() const override { return "counting"; }
  StatusOr<std::vector<Tensor>> Run(const std::vector<Tensor>& in) override {
    ++runs;
    return inner_->Run(in);
  }
  Status Step(const std::vector<Tensor>& in) override {
    ++steps;
    return inner_->Step(in);
  }
  StatusOr<std::vector<MetricsRecord>> ReadMetrics() override {
    ++reads;
    return inner_->ReadMetrics();
  }
  int64_t metrics_interval() const override { return interval_; }
  std::vector<std::string> StateNames() const override { return inner_->StateNames(); }
  bool HasData(const std::string& n) const override { return inner_->HasData(n); }
  StatusOr<Tensor> GetState(const std::string& n) const override { return inner_->GetState(n); }
  Status SetState(const std::string& n, const Tensor& v) override { return inner_->SetState(n, v); }
  StatusOr<Plan> CurrentPlan() const override { return inner_->CurrentPlan(); }

  int runs = 0, steps = 0, reads = 0;

 private:
  std::unique_ptr<Executor> inner_;
  int64_t interval_;
};

const char* kModel = R"(graph "lin" opsets {"": 17} {
  input %x: f32[batch,3]
  init %w: f32[2,3] = [0.5, -0.25, 0.125, 0.75, 0.3, -0.6]
  init %b: f32[2] = [0.1, -0.2]
  %y: f32[batch,2] = Gemm(%x, %w, %b) {transB=1} name="fc"
  output %y
}
)";

Dataset Data(int64_t n) {
  Dataset d;
  std::vector<float> x(n * 3);
  std::vector<int64_t> labels(n);
  for (int64_t i = 0; i < n * 3; ++i) x[i] = static_cast<float>((i * 37) % 11) / 11.0f - 0.5f;
  for (int64_t i = 0; i < n; ++i) labels[i] = (i * 5) % 2;
  d.arrays["x"] = Tensor::FromFloats(x, {n, 3});
  d.arrays["labels"] = Tensor::FromInt64s(labels, {n});
  d.size = n;
  return d;
}

struct LoopRun {
  std::vector<double> losses;
  int steps = 0, reads = 0, runs = 0;
  TrainSummary summary;
};

LoopRun TrainWith(const std::string& precision, int64_t interval, int64_t steps) {
  CompileOptions o;
  o.precision = *ParsePrecision(precision);
  o.train.optimizer.momentum = 0.9;
  auto c = testing::CompileTraining([] { return ParseGraph(kModel); }, o, 4,
                                    {{"x", {4, 3}}, {"labels", {4}}});
  EXPECT_TRUE(c.ok()) << c.status().message();
  TrainSession s;
  s.batch = 4;
  auto step = cpu::CpuExecutor::Create(std::move(c->train), 1);
  EXPECT_TRUE(step.ok());
  auto counting = std::make_unique<CountingExecutor>(std::move(*step), interval);
  CountingExecutor* seen = counting.get();
  s.step = std::move(counting);
  auto eval = cpu::CpuExecutor::Create(std::move(c->eval), 1);
  EXPECT_TRUE(eval.ok());
  s.eval = std::move(*eval);
  testing::TempDir tmp;
  TrainLoopConfig cfg;
  cfg.steps = steps;
  cfg.shuffle = false;
  cfg.quiet = true;
  cfg.metrics = tmp / "m.jsonl";
  const Dataset train = Data(16);
  auto sum = ampc::Train(s, train, Data(8), cfg);
  EXPECT_TRUE(sum.ok()) << sum.status().message();
  LoopRun r;
  if (sum.ok()) r.summary = *sum;
  std::ifstream in(cfg.metrics);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) r.losses.push_back(j["loss"].get<double>());
  }
  r.steps = seen->steps;
  r.reads = seen->reads;
  r.runs = seen->runs;
  return r;
}

TEST(TrainLoop, RunsThroughTheExecutorInterfaceAndReadsMetricsInBatches) {
  const LoopRun every = TrainWith("fp16", 1, 10);
  const LoopRun batched = TrainWith("fp16", 4, 10);
  ASSERT_EQ(every.losses.size(), 10u);
  EXPECT_EQ(batched.losses, every.losses);  // the same steps, the same record
  EXPECT_EQ(every.steps, 10);
  EXPECT_EQ(batched.steps, 10);
  EXPECT_EQ(every.runs, 0);  // training never copies the step's outputs back
  EXPECT_EQ(batched.runs, 0);
  // Reads at steps 4 and 8 and at each epoch end (every 4 steps of 16 samples / 4) and the end.
  EXPECT_EQ(every.reads, 10);
  EXPECT_LE(batched.reads, 4);
  EXPECT_TRUE(every.summary.finite_check);
  EXPECT_EQ(every.summary.loss_scale, 65536.0);
  EXPECT_TRUE(every.summary.val_loss.has_value());
}

TEST(TrainLoop, SnapshotAndRestoreReplayTheSameSteps) {
  CompileOptions o;
  o.precision = DType::kBFloat16;
  o.train.optimizer.kind = "adamw";
  auto c = testing::CompileTraining([] { return ParseGraph(kModel); }, o, 4,
                                    {{"x", {4, 3}}, {"labels", {4}}});
  ASSERT_TRUE(c.ok()) << c.status().message();
  auto ex = CreateExecutor(std::move(c->train), ExecutorOptions{"cpu", 1});
  ASSERT_TRUE(ex.ok()) << ex.status().message();
  const Dataset d = Data(4);
  auto batch = [&](int k) {
    std::vector<Tensor> in;
    for (const auto& io : (*ex)->plan().inputs()) {
      if (io.name() == "x") in.push_back(d.arrays.at("x"));
      if (io.name() == "labels") in.push_back(d.arrays.at("labels"));
      if (io.name() == kLrInput) in.push_back(Tensor::Scalar(DType::kFloat32, 0.01 * (k + 1)));
    }
    return in;
  };
  ASSERT_TRUE((*ex)->Step(batch(0)).ok());
  auto snap = (*ex)->SnapshotState();
  ASSERT_TRUE(snap.ok());
  for (int k = 1; k < 3; ++k) ASSERT_TRUE((*ex)->Step(batch(k)).ok());
  auto first = (*ex)->ReadMetrics();
  ASSERT_TRUE((*ex)->RestoreState(*snap).ok());
  for (int k = 1; k < 3; ++k) ASSERT_TRUE((*ex)->Step(batch(k)).ok());
  auto second = (*ex)->ReadMetrics();
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_EQ(first->size(), 3u);
  ASSERT_EQ(second->size(), 2u);
  EXPECT_EQ((*first)[1].values, (*second)[0].values);
  EXPECT_EQ((*first)[2].values, (*second)[1].values);
}

TEST(TrainLoop, ExecutorsRefuseAPlanOfAnotherTargetOrDevice) {
  CompileOptions o;
  auto c = testing::CompileTraining([] { return ParseGraph(kModel); }, o, 4,
                                    {{"x", {4, 3}}, {"labels", {4}}});
  ASSERT_TRUE(c.ok());
  auto cuda = CreateExecutor(c->train, ExecutorOptions{"cuda", 0});
  ASSERT_FALSE(cuda.ok());
  EXPECT_NE(cuda.status().message().find("the plan was compiled for cpu; --device cuda runs "
                                         "plans compiled with --target cuda"),
            std::string::npos)
      << cuda.status().message();
  auto bad = CreateExecutor(c->train, ExecutorOptions{"cuda:two", 0});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("cuda:two"), std::string::npos);
  Plan other = testing::ClonePlan(c->train);
  other.proto.mutable_target()->set_kind("cuda");
  other.proto.mutable_target()->set_arch("sm_90");
  auto wrong = CreateExecutor(std::move(other), ExecutorOptions{"cpu", 0});
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("compiled for cuda:sm_90"), std::string::npos)
      << wrong.status().message();
}

}  // namespace
}  // namespace ampc
