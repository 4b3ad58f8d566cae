// The compiler driver: the pipeline's stages in order, the target's BackendSupport consulted by
// autocast and lowering, and what a lowered training plan carries (metadata, metrics record,
// evaluation pass sharing the step's parameters).
#include "compiler/compiler.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>

#include "ir/op_registry.h"
#include "ir/text.h"
#include "ir/training_names.h"
#include "runtime/cpu/executor.h"
#include "runtime/cpu/kernel.h"
#include "tests/unit/compile_util.h"
#include "tests/unit/graph_test_util.h"

namespace ampc {
namespace {

using testing::NodeNamed;

const char* kMlp = R"(graph "mlp" opsets {"": 17} {
  input %x: f32[batch,4]
  init %w1: f32[3,4] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2]
  init %b1: f32[3] = [0.0, 0.1, 0.2]
  %h: f32[batch,3] = Gemm(%x, %w1, %b1) {transB=1} name="fc1"
  %a: f32[batch,3] = Relu(%h) name="relu"
  output %a
}
)";

TEST(Compiler, StagesRunInOrderAndAfterStops) {
  CompileOptions o;
  o.precision = DType::kFloat16;
  auto count = [&](const std::string& after, const std::string& op) {
    auto g = ParseGraph(kMlp);
    EXPECT_TRUE(g.ok());
    auto info = BuildTrainingStep(**g, o, after);
    EXPECT_TRUE(info.ok()) << info.status().message();
    int n = 0;
    for (const Node* node : (*g)->nodes()) {
      // "cast": only the casts autocast inserts (the step counter's Cast is loss scaling's).
      auto r = node->annotations().find("reason");
      n += op == "cast" ? r != node->annotations().end() && r->second == "cast"
                        : node->op_type() == op;
    }
    return n;
  };
  EXPECT_EQ(count("master-weights", "SGD"), 0);  // before the training graph
  EXPECT_EQ(count("train", "SGD"), 2);
  EXPECT_EQ(count("train", "AllFinite"), 0);  // loss scaling comes after
  EXPECT_EQ(count("loss-scaling", "AllFinite"), 1);
  EXPECT_EQ(count("loss-scaling", "cast"), 0);  // autocast comes after
  EXPECT_GT(count("autocast", "cast"), 0);
  // fusion (last): elementwise nodes carry their group.
  int grouped = 0;
  {
    auto g = ParseGraph(kMlp);
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE(BuildTrainingStep(**g, o, "fusion").ok());
    for (const Node* node : (*g)->nodes()) grouped += node->annotations().count("fusion_group");
  }
  EXPECT_GT(grouped, 0);
  auto g = ParseGraph(kMlp);
  auto bad = BuildTrainingStep(**g, o, "codegen");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--after codegen: expected master-weights, train"),
            std::string::npos);
}

TEST(Compiler, AutocastKeepsOpsTheTargetCannotRunInHalfInFp32) {
  BackendSupport s = cpu::CpuBackendSupport();
  s.Add("", "Gemm", MaskOf(DType::kFloat32) | MaskOf(DType::kFloat64));  // no half Gemm
  CompileOptions o;
  o.precision = DType::kBFloat16;
  o.support = &s;
  auto g = ParseGraph(kMlp);
  ASSERT_TRUE(g.ok());
  auto info = BuildTrainingStep(**g, o);
  ASSERT_TRUE(info.ok()) << info.status().message();
  const Node* fc = NodeNamed(**g, "fc1");
  ASSERT_TRUE(fc);
  EXPECT_EQ(fc->annotations().at("precision"), "f32");
  EXPECT_EQ(fc->annotations().at("reason"), "target: no bf16 Gemm");
  // With the real CPU table the same Gemm is half.
  const BackendSupport cpu = cpu::CpuBackendSupport();
  o.support = &cpu;
  auto h = ParseGraph(kMlp);
  ASSERT_TRUE(BuildTrainingStep(**h, o).ok());
  EXPECT_EQ(NodeNamed(**h, "fc1")->annotations().at("precision"), "bf16");
}

// Two Linear layers, the batch symbolic: [batch,784] @ [784,256], at most 784*256 / (784 + 256)
// = 193 multiply-adds per element of operands and result whatever the batch (above the rule's
// 32), and [batch,256] @ [256,10], at most 256*10 / 266 = 9.6 (below).
const char* kTwoLayers = R"(graph "two" opsets {"": 17} {
  input %x: f32[batch,784]
  init %w1: f32[256,784] = elided
  init %w2: f32[10,256] = elided
  %h: f32[batch,256] = Gemm(%x, %w1) {transB=1} name="big"
  %r: f32[batch,256] = Relu(%h) name="relu"
  %y: f32[batch,10] = Gemm(%r, %w2) {transB=1} name="small"
  output %y
}
)";

TEST(Compiler, CpuCostRuleKeepsGemmsTooSmallForBf16InFp32) {
  auto paint_of = [](BackendSupport s, bool rule, int64_t batch = 0) {
    CompileOptions o;
    o.precision = DType::kBFloat16;
    o.half_cost_rule = rule;
    o.support = &s;
    if (batch > 0) o.amp.dims["batch"] = batch;
    auto g = ParseGraph(kTwoLayers);
    EXPECT_TRUE(g.ok()) << g.status().message();
    auto info = BuildTrainingStep(**g, o);
    EXPECT_TRUE(info.ok()) << info.status().message();
    std::map<std::string, std::pair<std::string, std::string>> out;  // name -> precision, reason
    for (const Node* n : (*g)->nodes()) {
      if (n->op_type() != "Gemm") continue;
      out[n->name()] = {n->annotations().at("precision"), n->annotations().at("reason")};
    }
    return out;
  };
  const BackendSupport native = cpu::CpuBackendSupport();
  auto p = paint_of(native, true, 256);
  EXPECT_EQ(p["big"].first, "bf16");
  EXPECT_EQ(p["small"].first, "f32");
  EXPECT_NE(p["small"].second.find("cpu: bf16 would not pay (?x256x10: at most 9.6"),
            std::string::npos)
      << p["small"].second;
  // The batch does not change the decision (inspect shows what train runs at any batch size).
  EXPECT_EQ(paint_of(native, true, 4)["small"].first, "f32");
  EXPECT_EQ(paint_of(native, true, 4)["big"].first, "bf16");
  int gemms = 0;  // the small layer's gradient GEMMs are just as small
  for (const auto& [name, pr] : p) {
    if (name.rfind("small_grad", 0) != 0) continue;
    ++gemms;
    EXPECT_EQ(pr.first, "f32") << name;
  }
  EXPECT_EQ(gemms, 2);
  // Rule off: allow-list as before.
  EXPECT_EQ(paint_of(native, false, 256)["small"].first, "bf16");
  // Not a CPU target: no rule.
  const BackendSupport cuda = cpu::CpuBackendSupportAs(Target{"cuda", "sm_90"});
  EXPECT_EQ(paint_of(cuda, true, 256)["small"].first, "bf16");
}

// passes/narrow_inputs on a whole step: the data input the step only casts to bf16 becomes a
// bf16 input of the step and of its evaluation pass, and training on the data converted once
// (f32 -> bf16, as the loader does) gives the same bits as casting every batch in the step: the
// reference is the same step compiled without narrowing, fed the f32 batches.
TEST(Compiler, NarrowedDataInputTrainsBitForBitLikeTheCastItReplaces) {
  auto compile = [](bool narrow) {
    CompileOptions o;
    o.precision = DType::kBFloat16;
    o.narrow_inputs = narrow;
    o.train.optimizer.kind = "adamw";
    auto c = testing::CompileTraining([] { return ParseGraph(kMlp); }, o, 4,
                                      {{"x", {4, 4}}, {"labels", {4}}});
    EXPECT_TRUE(c.ok()) << c.status().message();
    return c;
  };
  auto plain = compile(false), narrowed = compile(true);
  ASSERT_TRUE(plain.ok() && narrowed.ok());
  auto input_dtype = [](const Plan& p, const std::string& name) {
    for (const auto& io : p.proto.inputs()) {
      if (io.name() == name) return p.proto.buffers(io.buffer()).dtype();
    }
    return std::string("none");
  };
  EXPECT_EQ(input_dtype(plain->train, "x"), "f32");
  EXPECT_EQ(input_dtype(narrowed->train, "x"), "bf16");
  EXPECT_EQ(input_dtype(narrowed->eval, "x"), "bf16");
  EXPECT_EQ(input_dtype(narrowed->train, kLrInput), "f32");  // not a data input
  auto ex_plain = cpu::CpuExecutor::Create(plain->train, 1);
  auto ex_narrow = cpu::CpuExecutor::Create(narrowed->train, 1);
  ASSERT_TRUE(ex_plain.ok() && ex_narrow.ok());
  for (int step = 0; step < 4; ++step) {
    std::vector<float> x(16);  // values bf16 cannot hold (0.1 steps), so the rounding matters
    for (int i = 0; i < 16; ++i) x[i] = 0.1f * static_cast<float>((i * 7 + step) % 13) - 0.55f;
    const Tensor xf = Tensor::FromFloats(x, {4, 4});
    auto inputs = [&](const testing::CompiledTraining& c, const Tensor& xt) {
      std::vector<Tensor> in;
      for (const auto& n : c.train_inputs) {
        if (n == "x") in.push_back(xt);
        if (n == "labels") in.push_back(Tensor::FromInt64s({0, 1, 2, 1}, {4}));
        if (n == kLrInput) in.push_back(Tensor::Scalar(DType::kFloat32, 0.05));
      }
      return in;
    };
    auto a = (*ex_plain)->Run(inputs(*plain, xf));
    auto b = (*ex_narrow)->Run(inputs(*narrowed, xf.ConvertFloat(DType::kBFloat16)));
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->size(), b->size());
    for (size_t k = 0; k < a->size(); ++k) EXPECT_EQ((*a)[k].bytes(), (*b)[k].bytes()) << k;
  }
  for (const char* w : {"w1", "b1"}) {
    EXPECT_EQ((*ex_plain)->GetState(w)->bytes(), (*ex_narrow)->GetState(w)->bytes()) << w;
  }
}

TEST(Compiler, LoweringRejectsAnOpTheTargetLacksNamingTheNode) {
  BackendSupport s = cpu::CpuBackendSupport();
  s.Remove(kAmpcDomain, "ReluGrad");
  CompileOptions o;
  o.support = &s;
  o.source = "test";
  auto make = []() { return ParseGraph(kMlp); };
  auto g = make();
  ASSERT_TRUE(g.ok());
  auto info = BuildTrainingStep(**g, o);
  ASSERT_TRUE(info.ok());
  auto p = LowerTrainingStep(std::move(*g), *info, make, o, 2, {{"x", {2, 4}}, {"labels", {2}}});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("(com.ampc::ReluGrad): the cpu target has no kernel for "
                                      "com.ampc::ReluGrad"),
            std::string::npos)
      << p.status().message();
}

TEST(Compiler, TrainingPlanCarriesMetricsAndASharedEvaluationPass) {
  CompileOptions o;
  o.precision = DType::kFloat16;
  o.train.optimizer.clip_grad_norm = 1.0;
  auto c = testing::CompileTraining([] { return ParseGraph(kMlp); }, o, 2,
                                    {{"x", {2, 4}}, {"labels", {2}}});
  ASSERT_TRUE(c.ok()) << c.status().message();
  const plan::PlanProto& p = c->train.proto;
  EXPECT_EQ(
      std::vector<std::string>(p.metrics().begin(), p.metrics().end()),
      (std::vector<std::string>{c->info.loss, kGradNormOutput, kLossScaleState, kSkippedState}));
  EXPECT_EQ(p.training().loss_scale_mode(), "dynamic");
  EXPECT_EQ(p.precision(), "fp16");
  EXPECT_EQ(c->eval.data, c->train.data);  // one data section
  std::map<std::string, int64_t> step_offsets;
  for (const auto& b : p.buffers()) {
    if (b.kind() == plan::Buffer::STATE) step_offsets[b.name()] = b.data_offset();
  }
  for (const char* w : {"w1", "b1"}) {
    bool found = false;
    for (const auto& b : c->eval.proto.buffers()) {
      if (b.name() != w) continue;
      found = true;
      EXPECT_EQ(b.kind(), plan::Buffer::CONSTANT);
      EXPECT_EQ(b.data_offset(), step_offsets.at(w)) << w;  // the step's state, not a copy
    }
    EXPECT_TRUE(found) << w;
  }
}

TEST(Compiler, Fp32AutocastIsANoOp) {
  AmpArgs a;
  a.precision = "fp32";
  CompileOptions o;
  ASSERT_TRUE(ResolveAmp(a, &o).ok());
  EXPECT_EQ(o.precision, DType::kFloat32);
  auto g = ParseGraph(kMlp);
  ASSERT_TRUE(BuildTrainingStep(**g, o).ok());
  for (const Node* n : (*g)->nodes()) {
    EXPECT_EQ(n->annotations().count("precision"), 0u) << n->name();  // nothing painted or cast
  }
  a.precision = "fp8";
  auto bad = ResolveAmp(a, &o);
  EXPECT_EQ(bad.message(), "--precision fp8: expected fp32, fp16 or bf16");
}

}  // namespace
}  // namespace ampc
