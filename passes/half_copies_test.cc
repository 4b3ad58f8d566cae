// HalfCopiesPass (passes/half_copies.h). The reference for every value is the same training step
// compiled without the pass, whose Casts compute the half copies each step: the outputs (loss,
// logits), every named state and the metrics must be the same bits, with per-op and with
// generated kernels, for bf16 and fp16 (including a step the loss scaler skips), SGD with
// momentum and AdamW. Then what the pass leaves to the executors: the copies are no state names,
// and setting a parameter recomputes its copy.
#include "passes/half_copies.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "codegen/mlir_compile.h"
#include "codegen/plan.h"
#include "compiler/compiler.h"
#include "ir/float16.h"
#include "ir/text.h"
#include "ir/training_names.h"
#include "runtime/cpu/executor.h"
#include "tests/unit/compile_util.h"
#include "tests/unit/graph_test_util.h"

namespace ampc {
namespace {

const char* kMlp = R"(graph "mlp" opsets {"": 17} {
  input %x: f32[batch,4]
  init %w1: f32[3,4] = [0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, 0.9, 1.0, -1.1, 1.2]
  init %b1: f32[3] = [0.0, 0.1, 0.2]
  %h: f32[batch,3] = Gemm(%x, %w1, %b1) {transB=1} name="fc1"
  %a: f32[batch,3] = Relu(%h) name="relu"
  output %a
}
)";

struct Case {
  DType precision;
  std::string optimizer;
  bool kernels;
  double loss_scale;  // fp16's initial scale; 1e30 overflows the first step's gradients
};

std::string Name(const Case& c) {
  return std::string(DTypeName(c.precision)) + "/" + c.optimizer +
         (c.kernels ? "/generated" : "/per-op") + "/scale " + std::to_string(c.loss_scale);
}

StatusOr<testing::CompiledTraining> CompileCase(const Case& c, bool half_copies) {
  CompileOptions o;
  o.precision = c.precision;
  o.half_copies = half_copies;
  o.train.optimizer.kind = c.optimizer;
  o.train.optimizer.lr = 0.05;
  if (c.optimizer == "sgd") o.train.optimizer.momentum = 0.9;
  o.loss_scale.init = c.loss_scale;
  o.kernels.enabled = c.kernels;
  o.kernels.cache_dir = std::string(AMPC_GEN_DIR) + "/kernel-cache-test";
  return testing::CompileTraining([] { return ParseGraph(kMlp); }, o, 4,
                                  {{"x", {4, 4}}, {"labels", {4}}});
}

std::vector<Tensor> Inputs(const testing::CompiledTraining& c, int step) {
  std::vector<float> x(16);  // values bf16 and f16 cannot hold, so the rounding matters
  for (int i = 0; i < 16; ++i) x[i] = 0.1f * static_cast<float>((i * 7 + step) % 13) - 0.55f;
  std::vector<Tensor> in;
  for (const auto& n : c.train_inputs) {
    if (n == "x") in.push_back(Tensor::FromFloats(x, {4, 4}));
    if (n == "labels") in.push_back(Tensor::FromInt64s({0, 1, 2, step % 3}, {4}));
    if (n == kLrInput) in.push_back(Tensor::Scalar(DType::kFloat32, 0.05));
  }
  return in;
}

int HalfCopyBuffers(const Plan& p) {
  int n = 0;
  for (const auto& b : p.proto.buffers()) n += b.half_copy_of() != 0;
  return n;
}

TEST(HalfCopies, TrainBitForBitLikeTheCastsTheyReplace) {
  std::vector<Case> cases;
  for (bool kernels : {false, true}) {
    if (kernels && !HaveMlir()) continue;
    for (const char* opt : {"sgd", "adamw"}) {
      cases.push_back({DType::kBFloat16, opt, kernels, 65536.0});
      cases.push_back({DType::kFloat16, opt, kernels, 65536.0});
      cases.push_back({DType::kFloat16, opt, kernels, 1e30});
    }
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(Name(c));
    auto with = CompileCase(c, true), without = CompileCase(c, false);
    ASSERT_TRUE(with.ok()) << with.status().message();
    ASSERT_TRUE(without.ok()) << without.status().message();
    EXPECT_EQ(HalfCopyBuffers(with->train), 2);  // w1 and b1, the Gemm's half operands
    EXPECT_EQ(HalfCopyBuffers(without->train), 0);
    auto a = cpu::CpuExecutor::Create(with->train, 2);
    auto b = cpu::CpuExecutor::Create(without->train, 2);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ((*a)->StateNames(), (*b)->StateNames());  // the copies are no named states
    auto run = [&](int step) {
      auto ra = (*a)->Run(Inputs(*with, step));
      auto rb = (*b)->Run(Inputs(*without, step));
      ASSERT_TRUE(ra.ok()) << ra.status().message();
      ASSERT_TRUE(rb.ok()) << rb.status().message();
      ASSERT_EQ(ra->size(), rb->size());
      for (size_t k = 0; k < ra->size(); ++k)
        EXPECT_EQ((*ra)[k].bytes(), (*rb)[k].bytes()) << "output " << k << ", step " << step;
    };
    for (int step = 0; step < 4; ++step) run(step);
    for (const std::string& s : (*b)->StateNames()) {
      EXPECT_EQ((*a)->GetState(s)->bytes(), (*b)->GetState(s)->bytes()) << s;
    }
    auto ma = (*a)->ReadMetrics(), mb = (*b)->ReadMetrics();
    ASSERT_TRUE(ma.ok() && mb.ok());
    ASSERT_EQ(ma->size(), mb->size());
    for (size_t k = 0; k < ma->size(); ++k) EXPECT_EQ((*ma)[k].values, (*mb)[k].values) << k;
    if (c.loss_scale > 1e20) {  // the overflowing first step was skipped, in both
      auto skipped = (*a)->GetState("ampc.skipped_steps");
      ASSERT_TRUE(skipped.ok());
      EXPECT_GE(skipped->AsInt64s()->at(0), 1);
    }
    // Setting a parameter (a checkpoint restored, states copied) recomputes its half copy: the
    // next step computes with the new values in both plans.
    const Tensor w = Tensor::FromFloats(
        {0.3f, 0.11f, -0.7f, 0.2f, 0.13f, 0.6f, -0.1f, 0.9f, 0.7f, -0.33f, 0.1f, 0.5f}, {3, 4});
    ASSERT_TRUE((*a)->SetState("w1", w).ok());
    ASSERT_TRUE((*b)->SetState("w1", w).ok());
    run(4);
    EXPECT_EQ((*a)->GetState("w1")->bytes(), (*b)->GetState("w1")->bytes());
  }
}

// A plan with synthetic weights (ampc compile --synthetic-weights) makes each weight from a seeded
// fill at load; the half copy is its parameter rounded (reference: ir/float16.h's rounding of the
// filled f32 values), not a fill of its own.
TEST(HalfCopies, SyntheticWeightsKeepEachCopyTheRoundingOfItsParameter) {
  for (DType precision : {DType::kBFloat16, DType::kFloat16}) {
    auto c = CompileCase({precision, "adamw", false, 65536.0}, true);
    ASSERT_TRUE(c.ok()) << c.status().message();
    Plan p = testing::ClonePlan(c->train);
    ASSERT_TRUE(SynthesizeData(p, {.replace_weights = true, .min_elements = 1, .seed = 7}).ok());
    int checked = 0;
    for (const auto& b : p.proto.buffers()) {
      if (b.half_copy_of() == 0) continue;
      const auto& src = p.proto.buffers(b.half_copy_of() - 1);
      const auto* f = reinterpret_cast<const float*>(p.data->data() + src.data_offset());
      const auto* h = reinterpret_cast<const uint16_t*>(p.data->data() + b.data_offset());
      for (int64_t i = 0; i < b.size_bytes() / 2; ++i) {
        EXPECT_EQ(h[i],
                  precision == DType::kFloat16 ? FloatToHalfBits(f[i]) : FloatToBFloat16Bits(f[i]))
            << b.name() << "[" << i << "]";
      }
      ++checked;
    }
    EXPECT_EQ(checked, 2);
  }
}

TEST(HalfCopies, OnlyParametersAnOptimizerUpdatesAndACastReads) {
  // w is cast and updated: a copy. f (frozen, no optimizer) keeps its Cast. v is updated but read
  // in f32: no copy.
  auto g = ParseGraph(R"(graph "g" opsets {"": 17, "com.ampc": 1} {
  input %x: bf16[2,3]
  input %lr: f32[]
  input %step: i64[]
  init %w: f32[3,3] = [1, 2, 3, 4, 5, 6, 7, 8, 9.1]
  init %f: f32[3,3] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
  init %v: f32[3] = [1, 2, 3]
  init %gw: f32[3,3] = [0, 0, 0, 0, 0, 0, 0, 0, 0]
  init %gv: f32[3] = [0, 0, 0]
  %wb: bf16[3,3] = Cast(%w) {to=16} name="w_cast"
  %fb: bf16[3,3] = Cast(%f) {to=16} name="f_cast"
  %y: bf16[2,3] = MatMul(%x, %wb) name="mm"
  %z: bf16[2,3] = MatMul(%y, %fb) name="mm2"
  %zf: f32[2,3] = Cast(%z) {to=1} name="z_f32"
  %o: f32[2,3] = Add(%zf, %v) name="add"
  %w2: f32[3,3] = com.ampc::SGD(%lr, %step, %w, %gw) name="sgd_w"
  %v2: f32[3] = com.ampc::SGD(%lr, %step, %v, %gv) name="sgd_v"
  output %o
  update %w <- %w2
  update %v <- %v2
}
)");
  ASSERT_TRUE(g.ok()) << g.status().message();
  HalfCopiesPass pass;
  auto changed = testing::RunVerified(pass, **g);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(pass.copies(), 1);
  const Value* copy = HalfCopyOf(**g, (*g)->FindValue("w"));
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(copy->name(), "wb");
  EXPECT_EQ(copy->kind(), ValueKind::kInitializer);
  EXPECT_EQ(copy->type().ToString(), "bf16[3,3]");
  // Its initial value is the Cast's: 9.1 rounds to 9.125 in bf16 (8 significant bits).
  EXPECT_EQ(copy->initializer()->AsDoubles()->back(), 9.125);
  EXPECT_EQ(testing::NodeNamed(**g, "mm")->input(1), copy);
  EXPECT_EQ(testing::NodeNamed(**g, "f_cast")->op_type(), "Cast");  // frozen: kept
  EXPECT_EQ(HalfCopyOf(**g, (*g)->FindValue("v")), nullptr);
  const Node* sgd = testing::NodeNamed(**g, "sgd_w");
  EXPECT_EQ(sgd->attr_int("half_copy", 0), 16);
  ASSERT_EQ(sgd->num_outputs(), 2);
  EXPECT_EQ(sgd->output(1)->type().ToString(), "bf16[3,3]");
  bool updated = false;
  for (const StateUpdate& u : (*g)->state_updates())
    updated = updated || (u.state == copy && u.next == sgd->output(1));
  EXPECT_TRUE(updated);
  // Idempotent: a second run finds nothing left to do.
  HalfCopiesPass again;
  auto second = testing::RunVerified(again, **g);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
}

}  // namespace
}  // namespace ampc
