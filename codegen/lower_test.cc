// Lowering checks the target's BackendSupport: an op the backend cannot run, or cannot run in a
// floating type, fails at compile time naming the node.
#include "codegen/lower.h"

#include <gtest/gtest.h>

#include "ir/text.h"
#include "runtime/cpu/kernel.h"

namespace ampc {
namespace {

const char* kGraph = R"(graph "g" opsets {"": 17} {
  input %x: f32[2,3]
  init %w: f32[3,4] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2]
  %y: f32[2,4] = MatMul(%x, %w) name="fc"
  %z: f32[2,4] = Relu(%y) name="act"
  output %z
}
)";

// fp32, per-op, for `support`.
LowerOptions Options(const BackendSupport* support) {
  LowerOptions o;
  o.source = "test";
  o.support = support;
  return o;
}

TEST(LowerSupport, EveryOpOfTheCpuTableLowers) {
  auto g = ParseGraph(kGraph);
  ASSERT_TRUE(g.ok()) << g.status().message();
  const BackendSupport cpu = cpu::CpuBackendSupport();
  auto p = LowerToPlan(**g, Options(&cpu));
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->proto.target().kind(), "cpu");
  EXPECT_EQ(p->proto.steps_size(), 2);
  EXPECT_TRUE(VerifyPlan(*p).ok());
}

TEST(LowerSupport, AnOpMissingFromTheTableFailsNamingTheNode) {
  auto g = ParseGraph(kGraph);
  ASSERT_TRUE(g.ok());
  BackendSupport partial = cpu::CpuBackendSupport();
  partial.Remove("", "Relu");
  auto p = LowerToPlan(**g, Options(&partial));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(p.status().message(), "node 'act' (Relu): the cpu target has no kernel for Relu");
}

TEST(LowerSupport, AnUnsupportedFloatTypeFailsNamingTheValue) {
  auto g = ParseGraph(kGraph);
  ASSERT_TRUE(g.ok());
  BackendSupport s(Target{"cuda", "sm_90"});
  for (const char* op : {"MatMul", "Relu"}) {
    s.Add("", op, MaskOf(DType::kFloat16) | MaskOf(DType::kBFloat16));  // no f32
  }
  auto p = LowerToPlan(**g, Options(&s));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find(
                "node 'fc' (MatMul): the cuda:sm_90 target does not run MatMul in f32 (value 'x')"),
            std::string::npos)
      << p.status().message();
}

// The CPU table is derived from the CPU kernel registry: the two cannot disagree.
TEST(LowerSupport, CpuTableMatchesTheKernelRegistry) {
  const BackendSupport s = cpu::CpuBackendSupport();
  const auto ops = cpu::KernelRegistry::Global().Ops();
  EXPECT_EQ(s.size(), ops.size());
  for (const std::string& name : ops) {
    const size_t sep = name.find("::");
    const std::string domain = sep == std::string::npos ? "" : name.substr(0, sep);
    const std::string op = sep == std::string::npos ? name : name.substr(sep + 2);
    EXPECT_TRUE(s.SupportsOp(domain, op)) << name;
    EXPECT_TRUE(s.SupportsFloat(domain, op, DType::kBFloat16)) << name;
  }
}

TEST(Targets, ParseAndName) {
  EXPECT_EQ(TargetName(*ParseTarget("cpu")), "cpu");
  EXPECT_EQ(TargetName(*ParseTarget("cuda")), "cuda:sm_90");
  EXPECT_EQ(TargetName(*ParseTarget("cuda:sm_80")), "cuda:sm_80");
  auto bad = ParseTarget("tpu");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("expected cpu, cuda, cuda:sm_80 or cuda:sm_90"),
            std::string::npos);
}

}  // namespace
}  // namespace ampc
