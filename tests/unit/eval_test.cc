// `ampc eval` and the CPU runtime end to end on the fixture models.
// Golden values: tests/fixtures/*_data/output_0.pb is PyTorch 1.13's output of the same model
// for input_0.pb (fp32), and output_0_f64.pb the same model run by PyTorch in float64; both
// written by tools/gen_fixtures.py.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <unordered_map>

#include "codegen/lower.h"
#include "compiler/compiler.h"
#include "frontend/onnx.h"
#include "ir/op_registry.h"
#include "runtime/cpu/executor.h"
#include "tests/unit/test_util.h"

namespace ampc {
namespace {

using testing::Fixture;
using testing::RunAmpc;
using testing::TempDir;

const std::vector<std::string> kModels = {
    "mlp_opset13",         "mlp_opset17",         "cnn_opset13",         "cnn_opset17",
    "cnn_bn_eval_opset17", "transformer_opset11", "transformer_opset13", "transformer_opset17"};

std::vector<double> Values(const Tensor& t) {
  auto v = t.AsDoubles();
  EXPECT_TRUE(v.has_value());
  return v ? *v : std::vector<double>{};
}

Tensor ReadTensor(const std::string& path) {
  auto t = ReadTensorFile(path);
  EXPECT_TRUE(t.ok()) << t.status().message();
  return t.ok() ? *t : Tensor();
}

class EvalTest : public ::testing::TestWithParam<std::string> {};

// fp32 through the CLI: every output element within rtol 1e-4 (+ atol 1e-6 for values near 0)
// of PyTorch's fp32 output.
TEST_P(EvalTest, Fp32MatchesPyTorch) {
  TempDir out;
  const std::string model = Fixture(GetParam() + ".onnx");
  const std::string data = Fixture(GetParam() + "_data");
  auto r = RunAmpc("eval " + model + " --inputs " + data + " --out " + out.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto got = Values(ReadTensor(out / "output_0.pb"));
  const auto want = Values(ReadTensor(data + "/output_0.pb"));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 1e-4 * std::fabs(want[i]) + 1e-6) << "element " << i;
  }
}

// Ops whose output is exactly representable given their inputs (data movement, max, select):
// they add no rounding error.
bool IsExact(const std::string& op) {
  static const std::set<std::string> exact = {
      "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten",         "Identity", "Concat",
      "Split",   "Slice",     "Gather",  "Expand",    "Shape",           "Relu",     "MaxPool",
      "Where",   "Pad",       "Dropout", "Constant",  "ConstantOfShape", "Clip",     "Cast",
      "Equal",   "Range",     "Trilu"};
  return exact.count(op) > 0;
}

// Number of rounding ops (float-valued, not exact) on the longest path to an output.
int RoundingDepth(const Graph& g) {
  std::unordered_map<const Value*, int> depth;
  int deepest = 0;
  for (const Node* n : g.nodes()) {
    int d = 0;
    for (const Value* in : n->inputs()) {
      if (in && depth.count(in)) d = std::max(d, depth[in]);
    }
    const bool float_out = n->output(0) && IsFloat(n->output(0)->dtype());
    if (float_out && !IsExact(n->op_type())) ++d;
    for (const Value* o : n->outputs()) {
      if (o) depth[o] = d;
    }
    deepest = std::max(deepest, d);
  }
  return deepest;
}

// Half storage against PyTorch's float64 run. Tolerance derivation: every op computes in fp32 and
// rounds its result once to the storage type, a relative perturbation of at most u (2^-8 for
// bf16, 2^-11 for fp16); weights and inputs are rounded once too. To first order, and for
// these well-conditioned ops (normalisations, fp32-accumulated GEMMs, smooth activations), the
// perturbations add up along the longest path, so the normwise relative error is bounded by
// about (L + 1) * u with L rounding ops on that path; we allow 2 (L + 1) u. An implementation
// that accumulated GEMMs in half precision would exceed this (error ~ K u with K = 784).
void CheckHalf(const std::string& name, DType precision) {
  const std::string model = Fixture(name + ".onnx");
  const std::string data = Fixture(name + "_data");
  auto g = ImportOnnxFile(model);
  ASSERT_TRUE(g.ok()) << g.status().message();
  const int depth = RoundingDepth(**g);
  std::vector<Tensor> inputs = {ReadTensor(data + "/input_0.pb")};
  auto plan = CompileForInputs(std::move(*g), inputs, precision, model, cpu::CpuBackendSupport());
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  auto exec = cpu::CpuExecutor::Create(std::move(*plan));
  ASSERT_TRUE(exec.ok()) << exec.status().message();
  auto out = (*exec)->Run(inputs);
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ((*out)[0].dtype(), DType::kFloat32);  // cast back to the model's output type
  const auto got = Values((*out)[0]);
  const auto want = Values(ReadTensor(data + "/output_0_f64.pb"));
  ASSERT_EQ(got.size(), want.size());
  double err = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  const double rel = std::sqrt(err / norm);
  const double u = precision == DType::kBFloat16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
  const double bound = 2.0 * (depth + 1) * u;
  std::printf("%s %s: normwise relative error %.3g, bound %.3g (L=%d)\n", name.c_str(),
              PrecisionName(precision), rel, bound, depth);
  EXPECT_LE(rel, bound);
  EXPECT_GT(rel, 0.0) << "half storage must actually round";
}

TEST_P(EvalTest, Bf16StorageWithinHalfPrecisionBound) { CheckHalf(GetParam(), DType::kBFloat16); }
TEST_P(EvalTest, Fp16StorageWithinHalfPrecisionBound) { CheckHalf(GetParam(), DType::kFloat16); }

INSTANTIATE_TEST_SUITE_P(Fixtures, EvalTest, ::testing::ValuesIn(kModels));

// The CPU runtime is the default executor: every op the importer accepts must run on it.
TEST(Runtime, EveryImportableOpHasACpuKernel) {
  int checked = 0;
  for (const OpSchema* s : OpRegistry::Global().All()) {
    EXPECT_NE(cpu::KernelRegistry::Global().Find(s->domain, s->op_type), nullptr)
        << s->domain << "::" << s->op_type;
    ++checked;
  }
  EXPECT_GT(checked, 90);
}

TEST(Eval, SavedPlanGivesIdenticalOutputs) {
  TempDir dir;
  const std::string data = Fixture("cnn_opset17_data");
  const std::string plan = dir / "cnn.ampc";
  auto r = RunAmpc("eval " + Fixture("cnn_opset17.onnx") + " --inputs " + data + " --out " +
                   (dir / "a") + " --save-plan " + plan);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("arena"), std::string::npos);
  r = RunAmpc("eval " + plan + " --inputs " + data + " --out " + (dir / "b"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::ReadBytes(dir / "a/output_0.pb"), testing::ReadBytes(dir / "b/output_0.pb"));
}

TEST(Eval, ExistingOutputsAreNotOverwrittenWithoutForce) {
  TempDir dir;
  const std::string data = Fixture("mlp_opset17_data");
  testing::WriteBytes(dir / "output_0.pb", "mine");
  auto r =
      RunAmpc("eval " + Fixture("mlp_opset17.onnx") + " --inputs " + data + " --out " + dir.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("already exists; pass --force"), std::string::npos) << r.err;
  EXPECT_EQ(testing::ReadBytes(dir / "output_0.pb"), "mine");
  r = RunAmpc("eval " + Fixture("mlp_opset17.onnx") + " --inputs " + data + " --out " + dir.path() +
              " --force");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(Eval, BadPlansAndInputsAreCleanErrors) {
  TempDir dir;
  const std::string data = Fixture("mlp_opset17_data");
  const std::string plan_path = dir / "mlp.ampc";
  auto r = RunAmpc("eval " + Fixture("mlp_opset17.onnx") + " --inputs " + data + " --out " +
                   (dir / "o") + " --save-plan " + plan_path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Corrupt / truncated plan.
  const std::string bytes = testing::ReadBytes(plan_path);
  testing::WriteBytes(dir / "cut.ampc", bytes.substr(0, bytes.size() / 3));
  r = RunAmpc("eval " + (dir / "cut.ampc") + " --inputs " + data + " --out " + (dir / "o2"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  // Not a plan at all.
  testing::WriteBytes(dir / "text.ampc", "hello");
  r = RunAmpc("eval " + (dir / "text.ampc") + " --inputs " + data + " --out " + (dir / "o2"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not an ampc plan"), std::string::npos) << r.err;
  // A plan from a newer ampc: the header's format number (bytes 8..11, little-endian) is higher.
  std::string newer = bytes;
  newer[8] = static_cast<char>(kPlanFormatVersion + 1);
  testing::WriteBytes(dir / "new.ampc", newer);
  r = RunAmpc("eval " + (dir / "new.ampc") + " --inputs " + data + " --out " + (dir / "o3"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("newer than this ampc reads"), std::string::npos) << r.err;
  // A plan whose buffer lies outside the arena.
  auto loaded = LoadPlan(plan_path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  Plan plan = *loaded;
  plan::PlanProto* p = &plan.proto;
  p->mutable_buffers(p->inputs(0).buffer())->set_offset(p->arena_bytes());
  ASSERT_TRUE(SavePlan(plan, dir / "bad.ampc").ok());
  r = RunAmpc("eval " + (dir / "bad.ampc") + " --inputs " + data + " --out " + (dir / "o4"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("lies outside the arena"), std::string::npos) << r.err;
  // A step output whose recorded shape was edited (size kept consistent): kernels would write
  // past it, so loading re-runs type inference and refuses.
  p->mutable_buffers(p->inputs(0).buffer())->set_offset(0);
  int out_id = p->steps(0).outputs(0);
  for (const auto& st : p->steps()) {  // a step whose output is a fresh arena buffer
    if (p->buffers(st.outputs(0)).kind() == plan::Buffer::ARENA) {
      out_id = st.outputs(0);
      break;
    }
  }
  auto* b = p->mutable_buffers(out_id);
  b->set_dims(0, b->dims(0) / 2);
  b->set_size_bytes(b->size_bytes() / 2);
  ASSERT_TRUE(SavePlan(plan, dir / "shape.ampc").ok());
  r = RunAmpc("eval " + (dir / "shape.ampc") + " --inputs " + data + " --out " + (dir / "o7"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("but the op produces"), std::string::npos) << r.err;
  // The plan was compiled for batch 4: another batch is refused, naming both shapes.
  auto other = RunAmpc("eval " + plan_path + " --inputs " + Fixture("cnn_opset17_data") +
                       " --out " + (dir / "o5"));
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.err.find("but the plan was compiled for f32[4,784]"), std::string::npos)
      << other.err;
  // Missing input data.
  r = RunAmpc("eval " + Fixture("mlp_opset17.onnx") + " --inputs " + dir.path() + " --out " +
              (dir / "o6"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no data for input 'input'"), std::string::npos) << r.err;
}

// The profile table: slowest first; steps under 0.2% of the call are left out unless `all`;
// times are per call. The values are chosen here (0.1% is under the 0.2% cut, 0 never shown).
TEST(Runtime, StepProfileListsStepsByTimeAndAllOfThemWhenAsked) {
  plan::PlanProto p;
  for (const char* op : {"MatMul", "Relu", "Add", "Mul"}) {
    plan::Step* s = p.add_steps();
    s->set_name(std::string("n_") + op);
    s->mutable_op()->set_op(op);
  }
  const std::vector<double> seconds = {0.8e-3, 0.199e-3, 0.001e-3, 0.0};  // 2 calls: 0.5 ms each
  const std::string some = FormatStepProfile(p, seconds, 2, {}, false);
  const std::string all = FormatStepProfile(p, seconds, 2, {}, true);
  EXPECT_NE(some.find("2 calls, 0.500 ms per call in 4 steps"), std::string::npos) << some;
  EXPECT_NE(some.find("400.0 us  80.0%  step 0 node 'n_MatMul' (MatMul)"), std::string::npos)
      << some;
  EXPECT_LT(some.find("(MatMul)"), some.find("(Relu)"));
  EXPECT_EQ(some.find("(Add)"), std::string::npos) << some;
  EXPECT_NE(all.find("0.5 us   0.1%  step 2 node 'n_Add' (Add)"), std::string::npos) << all;
  EXPECT_EQ(all.find("(Mul)"), std::string::npos) << all;
}

}  // namespace
}  // namespace ampc
