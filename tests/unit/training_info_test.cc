// Import of ONNX training information: the ai.onnx.preview.training::Gradient op (expanded into
// backward nodes, checked against gradients derived by hand) and TrainingInfoProto (algorithm
// graphs, update bindings as state updates run by the CPU executor, and the errors for
// malformed entries).
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "frontend/onnx.h"
#include "runtime/cpu/executor.h"
#include "tests/unit/gradient_check.h"
#include "tests/unit/onnx_builders.h"

namespace ampc {
namespace {

using testing::AddBinding;
using testing::AddInitializerF64;
using testing::AddInitializerI64;
using testing::AddNode;
using testing::AddValueInfo;
using testing::SetStringAttr;
using testing::SetStringsAttr;
using testing::gradcheck::F64;
using testing::gradcheck::RunGraph;

constexpr int kF64 = onnx::TensorProto::DOUBLE;
constexpr int kI64 = onnx::TensorProto::INT64;
constexpr const char* kTraining = "ai.onnx.preview.training";

onnx::ModelProto ModelWithTraining() {
  onnx::ModelProto m = testing::EmptyModel(17);
  auto* os = m.add_opset_import();
  os->set_domain(kTraining);
  os->set_version(1);
  return m;
}

onnx::NodeProto* AddGradient(onnx::GraphProto* g, std::vector<std::string> inputs,
                             std::vector<std::string> outputs, std::vector<std::string> xs,
                             std::vector<std::string> zs, const std::string& y) {
  auto* n = AddNode(g, "Gradient", std::move(inputs), std::move(outputs), "grad");
  n->set_domain(kTraining);
  SetStringsAttr(n, "xs", xs);
  if (!zs.empty()) SetStringsAttr(n, "zs", zs);
  SetStringAttr(n, "y", y);
  return n;
}

void SetIntAttr(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

StatusOr<std::unique_ptr<Graph>> Import(const onnx::ModelProto& m) {
  return ImportOnnxBytes(testing::Serialize(m), "", "model.onnx");
}

// The import fails with `code`, on one line that names the model and contains `what`.
void ExpectImportError(const onnx::ModelProto& m, StatusCode code, const std::string& what) {
  auto g = Import(m);
  ASSERT_FALSE(g.ok()) << "expected an error containing: " << what;
  const std::string msg = g.status().message();
  EXPECT_EQ(g.status().code(), code) << msg;
  EXPECT_EQ(msg.rfind("model.onnx: ", 0), 0u) << msg;
  EXPECT_NE(msg.find(what), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

// ---- Gradient ---------------------------------------------------------------------------------

const std::vector<double> kX = {0.5, -1.0, 0.25, 2.0, 0.1, -0.3};  // [2, 3]
const std::vector<double> kW = {0.2, -0.4, 0.7, 0.1, -0.5, 0.3};   // [3, 2]
const std::vector<double> kZ = {1.5, -2.0, 0.5, 3.0};              // [2, 2]

// Y = tanh(X W) * Z with Gradient(xs = [X, W], zs = [Z], y = Y) listed before the nodes it
// differentiates (it depends on them through its `y` attribute, not an input).
onnx::ModelProto TanhMatMulModel() {
  onnx::ModelProto m = ModelWithTraining();
  auto* g = m.mutable_graph();
  AddValueInfo(g->add_input(), "X", kF64, {2, 3});
  AddValueInfo(g->add_input(), "Z", kF64, {2, 2});
  AddInitializerF64(g, "W", {3, 2}, kW);
  AddGradient(g, {"X", "W", "Z"}, {"dX", "dW"}, {"X", "W"}, {"Z"}, "Y");
  AddNode(g, "MatMul", {"X", "W"}, {"H"}, "mm");
  AddNode(g, "Tanh", {"H"}, {"T"}, "tanh");
  AddNode(g, "Mul", {"T", "Z"}, {"Y"}, "mul");
  AddValueInfo(g->add_output(), "Y", kF64, {2, 2});
  AddValueInfo(g->add_output(), "dX", kF64, {2, 3});
  AddValueInfo(g->add_output(), "dW", kF64, {3, 2});
  return m;
}

TEST(GradientOp, ExpandsToTheAnalyticGradientOfTheSum) {
  auto g = Import(TanhMatMulModel());
  ASSERT_TRUE(g.ok()) << g.status().message();
  for (const Node* n : (*g)->nodes()) EXPECT_NE(n->op_type(), "Gradient");
  std::vector<Tensor> out = RunGraph(std::move(*g), {F64(kX, {2, 3}), F64(kZ, {2, 2})});
  ASSERT_EQ(out.size(), 3u);
  // d sum(tanh(XW) * Z): G = (1 - tanh(XW)^2) * Z, dX = G W^T, dW = X^T G.
  double G[2][2];
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      double h = 0;
      for (int k = 0; k < 3; ++k) h += kX[i * 3 + k] * kW[k * 2 + j];
      G[i][j] = (1 - std::tanh(h) * std::tanh(h)) * kZ[i * 2 + j];
    }
  }
  std::vector<double> dx(6, 0.0), dw(6, 0.0);
  for (int i = 0; i < 2; ++i) {
    for (int k = 0; k < 3; ++k) {
      for (int j = 0; j < 2; ++j) {
        dx[i * 3 + k] += G[i][j] * kW[k * 2 + j];
        dw[k * 2 + j] += kX[i * 3 + k] * G[i][j];
      }
    }
  }
  const std::vector<double> got_dx = *out[1].AsDoubles(), got_dw = *out[2].AsDoubles();
  for (int i = 0; i < 6; ++i) {
    EXPECT_NEAR(got_dx[i], dx[i], 1e-12) << "dX " << i;
    EXPECT_NEAR(got_dw[i], dw[i], 1e-12) << "dW " << i;
  }
}

TEST(GradientOp, InputThatDoesNotReachYGetsZeros) {
  onnx::ModelProto m = ModelWithTraining();
  auto* g = m.mutable_graph();
  AddValueInfo(g->add_input(), "A", kF64, {3});
  AddValueInfo(g->add_input(), "B", kF64, {2});
  AddNode(g, "Mul", {"A", "A"}, {"Y"}, "sq");
  AddGradient(g, {"A", "B"}, {"dA", "dB"}, {"A", "B"}, {}, "Y");
  AddValueInfo(g->add_output(), "dA", kF64, {3});
  AddValueInfo(g->add_output(), "dB", kF64, {2});
  auto graph = Import(m);
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  std::vector<Tensor> out = RunGraph(std::move(*graph), {F64({1, -2, 3}, {3}), F64({4, 5}, {2})});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(*out[0].AsDoubles(), (std::vector<double>{2, -4, 6}));
  EXPECT_EQ(*out[1].AsDoubles(), (std::vector<double>{0, 0}));
}

TEST(GradientOp, RejectsWhatItCannotExpand) {
  {
    onnx::ModelProto m = TanhMatMulModel();  // xs entry computed by a node
    auto* n = m.mutable_graph()->mutable_node(0);
    n->set_input(0, "H");
    n->mutable_attribute(0)->set_strings(0, "H");
    ExpectImportError(m, StatusCode::kInvalidArgument, "xs must be graph inputs or initializers");
  }
  {
    onnx::ModelProto m = TanhMatMulModel();  // input is not the value xs names
    m.mutable_graph()->mutable_node(0)->set_input(0, "Z");
    ExpectImportError(m, StatusCode::kUnimplemented, "input 0 is not xs[0] 'X'");
  }
  {
    onnx::ModelProto m = TanhMatMulModel();
    auto* n = m.mutable_graph()->mutable_node(0);
    n->set_input(1, "X");
    n->mutable_attribute(0)->set_strings(1, "X");
    ExpectImportError(m, StatusCode::kInvalidArgument, "xs[1] 'X' is listed twice");
  }
  {
    onnx::ModelProto m = TanhMatMulModel();
    m.mutable_graph()->mutable_node(0)->set_input(2, "X");
    ExpectImportError(m, StatusCode::kUnimplemented, "input 2 is not zs[0] 'Z'");
  }
  {
    onnx::ModelProto m = TanhMatMulModel();  // y names nothing
    m.mutable_graph()->mutable_node(0)->mutable_attribute(2)->set_s("nothing");
    ExpectImportError(m, StatusCode::kInvalidArgument, "undefined value 'nothing'");
  }
  {
    onnx::ModelProto m = TanhMatMulModel();  // a z computed from an x
    auto* n = m.mutable_graph()->mutable_node(0);
    n->set_input(2, "T");
    n->mutable_attribute(1)->set_strings(0, "T");
    ExpectImportError(m, StatusCode::kUnimplemented, "stop-gradient");
  }
  {
    onnx::ModelProto m = TanhMatMulModel();  // one output for two xs
    m.mutable_graph()->mutable_node(0)->mutable_output()->RemoveLast();
    m.mutable_graph()->mutable_output()->RemoveLast();
    ExpectImportError(m, StatusCode::kInvalidArgument, "1 outputs but 2 xs");
  }
}

// ---- TrainingInfoProto ------------------------------------------------------------------------

const std::vector<double> kXs = {1, 0, 2, -1, 1, 0, 0.5, 0.5, 1, 2, -1, 0};  // [4, 3]
const std::vector<double> kYt = {1, -1, 2, 0.5};                             // [4, 1]
const std::vector<double> kW0 = {0.1, -0.2, 0.3}, kB0 = {0.05};
constexpr double kLr = 0.1;

// Inference: Y = X W + B. Algorithm: L = mean((Y - Yt)^2), one SGD step on W and B with
// learning rate R, and an iteration count T (5; the initialization graph would reset it to 0).
onnx::ModelProto SgdModel() {
  onnx::ModelProto m = ModelWithTraining();
  auto* g = m.mutable_graph();
  AddValueInfo(g->add_input(), "X", kF64, {4, 3});
  AddInitializerF64(g, "W", {3, 1}, kW0);
  AddInitializerF64(g, "B", {1}, kB0);
  AddNode(g, "MatMul", {"X", "W"}, {"XW"}, "mm");
  AddNode(g, "Add", {"XW", "B"}, {"Y"}, "bias");
  AddValueInfo(g->add_output(), "Y", kF64, {4, 1});

  auto* ti = m.add_training_info();
  auto* a = ti->mutable_algorithm();
  a->set_name("sgd");
  AddValueInfo(a->add_input(), "R", kF64, {});
  AddValueInfo(a->add_input(), "Yt", kF64, {4, 1});
  AddInitializerI64(a, "T", {}, {5});
  AddInitializerI64(a, "one", {}, {1});
  AddNode(a, "Sub", {"Y", "Yt"}, {"D"}, "diff");
  AddNode(a, "Mul", {"D", "D"}, {"D2"}, "sq");
  SetIntAttr(AddNode(a, "ReduceMean", {"D2"}, {"L"}, "mean"), "keepdims", 0);
  AddGradient(a, {"W", "B"}, {"gW", "gB"}, {"W", "B"}, {}, "L");
  AddNode(a, "Mul", {"R", "gW"}, {"RgW"}, "scale_w");
  AddNode(a, "Sub", {"W", "RgW"}, {"W_new"}, "step_w");
  AddNode(a, "Mul", {"R", "gB"}, {"RgB"}, "scale_b");
  AddNode(a, "Sub", {"B", "RgB"}, {"B_new"}, "step_b");
  AddNode(a, "Add", {"T", "one"}, {"T_new"}, "count");
  AddValueInfo(a->add_output(), "L", kF64, {});
  AddValueInfo(a->add_output(), "W_new", kF64, {3, 1});
  AddValueInfo(a->add_output(), "B_new", kF64, {1});
  AddValueInfo(a->add_output(), "T_new", kI64, {});
  AddBinding(ti->mutable_update_binding(), "W", "W_new");
  AddBinding(ti->mutable_update_binding(), "B", "B_new");
  AddBinding(ti->mutable_update_binding(), "T", "T_new");

  auto* init = ti->mutable_initialization();
  init->set_name("reset");
  auto* c = AddNode(init, "Constant", {}, {"T0"}, "zero");
  auto* v = c->add_attribute();
  v->set_name("value");
  v->set_type(onnx::AttributeProto::TENSOR);
  v->mutable_t()->set_data_type(onnx::TensorProto::INT64);
  v->mutable_t()->add_int64_data(0);
  AddValueInfo(init->add_output(), "T0", kI64, {});
  AddBinding(ti->mutable_initialization_binding(), "T", "T0");
  return m;
}

// Loss and SGD step of SgdModel computed by hand.
struct SgdStep {
  double loss;
  std::vector<double> w, b;
};
SgdStep HandSgd(const std::vector<double>& w, const std::vector<double>& b) {
  SgdStep s{0, w, b};
  std::vector<double> gw(3, 0.0);
  double gb = 0;
  for (int i = 0; i < 4; ++i) {
    double r = b[0] - kYt[i];
    for (int k = 0; k < 3; ++k) r += kXs[i * 3 + k] * w[k];
    s.loss += r * r / 4;
    for (int k = 0; k < 3; ++k) gw[k] += 2 * r * kXs[i * 3 + k] / 4;
    gb += 2 * r / 4;
  }
  for (int k = 0; k < 3; ++k) s.w[k] -= kLr * gw[k];
  s.b[0] -= kLr * gb;
  return s;
}

std::unique_ptr<cpu::CpuExecutor> Compile(std::unique_ptr<Graph> g, const std::vector<Tensor>& in) {
  auto plan = CompileForInputs(std::move(g), in, DType::kFloat32, "training_info_test",
                               cpu::CpuBackendSupport());
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  if (!plan.ok()) return nullptr;
  auto exec = cpu::CpuExecutor::Create(std::move(*plan), 1);
  EXPECT_TRUE(exec.ok()) << exec.status().message();
  return exec.ok() ? std::move(*exec) : nullptr;
}

std::vector<double> State(const cpu::CpuExecutor& ex, const std::string& name) {
  auto t = ex.GetState(name);
  EXPECT_TRUE(t.ok()) << t.status().message();
  return t.ok() ? *t->AsDoubles() : std::vector<double>{};
}

TEST(TrainingInfo, AlgorithmRunsAndUpdatesTheBoundInitializers) {
  auto g = Import(SgdModel());
  ASSERT_TRUE(g.ok()) << g.status().message();
  std::vector<std::string> ins, outs;
  for (const Value* v : (*g)->inputs()) ins.push_back(v->name());
  for (const Value* v : (*g)->outputs()) outs.push_back(v->name());
  EXPECT_EQ(ins, (std::vector<std::string>{"X", "R", "Yt"}));
  EXPECT_EQ(outs, (std::vector<std::string>{"Y", "L", "W_new", "B_new", "T_new"}));
  ASSERT_EQ((*g)->state_updates().size(), 3u);
  const std::vector<Tensor> in = {F64(kXs, {4, 3}), F64({kLr}, {}), F64(kYt, {4, 1})};
  auto ex = Compile(std::move(*g), in);
  ASSERT_TRUE(ex);
  SgdStep want{0, kW0, kB0};
  for (int step = 0; step < 3; ++step) {
    const SgdStep next = HandSgd(want.w, want.b);
    auto out = ex->Run(in);
    ASSERT_TRUE(out.ok()) << out.status().message();
    EXPECT_NEAR((*(*out)[1].AsDoubles())[0], next.loss, 1e-12) << "step " << step;
    const std::vector<double> w = State(*ex, "W"), b = State(*ex, "B");
    ASSERT_EQ(w.size(), 3u);
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(w[k], next.w[k], 1e-12) << "step " << step;
    EXPECT_NEAR(b[0], next.b[0], 1e-12) << "step " << step;
    // The initialization graph is not run: the count continues from the stored 5.
    EXPECT_EQ(State(*ex, "T"), std::vector<double>{6.0 + step});
    if (step > 0) {
      EXPECT_LT(next.loss, want.loss);
    }
    want = next;
  }
}

TEST(TrainingInfo, IndependentEntriesApplyInOrder) {
  onnx::ModelProto m = SgdModel();
  auto* ti = m.add_training_info();
  auto* a = ti->mutable_algorithm();
  AddInitializerI64(a, "C", {}, {10});
  AddInitializerI64(a, "two", {}, {2});
  AddNode(a, "Add", {"C", "two"}, {"C_new"}, "count2");
  AddValueInfo(a->add_output(), "C_new", kI64, {});
  AddBinding(ti->mutable_update_binding(), "C", "C_new");
  auto g = Import(m);
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ((*g)->state_updates().size(), 4u);
  EXPECT_EQ((*g)->outputs().back()->name(), "C_new");
  const std::vector<Tensor> in = {F64(kXs, {4, 3}), F64({kLr}, {}), F64(kYt, {4, 1})};
  auto ex = Compile(std::move(*g), in);
  ASSERT_TRUE(ex);
  ASSERT_TRUE(ex->Run(in).ok());
  EXPECT_EQ(State(*ex, "C"), std::vector<double>{12});
  EXPECT_EQ(State(*ex, "T"), std::vector<double>{6});
}

TEST(TrainingInfo, MalformedEntriesGiveOneLineErrors) {
  auto binding = [](onnx::ModelProto& m, int i) {
    return m.mutable_training_info(0)->mutable_update_binding(i);
  };
  const auto kBad = StatusCode::kInvalidArgument;
  {
    onnx::ModelProto m = SgdModel();
    binding(m, 0)->set_key("X");  // a graph input
    ExpectImportError(m, kBad,
                      "training_info[0]: update_binding 'X' <- 'W_new': 'X' is not an "
                      "initializer");
  }
  {
    onnx::ModelProto m = SgdModel();
    binding(m, 0)->set_key("nowhere");
    ExpectImportError(m, kBad, "'nowhere' is not an initializer");
  }
  {
    onnx::ModelProto m = SgdModel();
    binding(m, 0)->set_value("RgW");  // computed, but not an output
    ExpectImportError(m, kBad, "'RgW' is not an output of the algorithm or of the inference graph");
  }
  {
    onnx::ModelProto m = SgdModel();
    binding(m, 1)->set_value("W_new");  // B is [1], W_new [3, 1]
    ExpectImportError(m, kBad,
                      "type mismatch, the initializer is f64[1] but the value is f64[3,1]");
  }
  {
    onnx::ModelProto m = SgdModel();
    AddBinding(m.mutable_training_info(0)->mutable_update_binding(), "W", "W_new");
    ExpectImportError(m, kBad, "'W' is bound twice");
  }
  {
    onnx::ModelProto m = SgdModel();
    m.mutable_training_info(0)->mutable_algorithm()->mutable_node(0)->set_input(1, "ghost");
    ExpectImportError(m, kBad, "training_info[0]: algorithm: use of undefined value 'ghost'");
  }
  {
    onnx::ModelProto m = SgdModel();
    m.mutable_training_info(0)->mutable_initialization_binding(0)->set_value("T1");
    ExpectImportError(m, kBad, "'T1' is not an output of the initialization graph");
  }
  {
    onnx::ModelProto m = SgdModel();  // the algorithm redefines an inference value
    m.mutable_training_info(0)->mutable_algorithm()->mutable_node(0)->set_output(0, "Y");
    ExpectImportError(m, kBad, "'Y' is defined twice");
  }
}

TEST(TrainingInfo, DependentEntriesAreRejected) {
  {
    onnx::ModelProto m = SgdModel();  // reads Y, which the first entry's update of W changes
    auto* a = m.add_training_info()->mutable_algorithm();
    AddNode(a, "Mul", {"Y", "Y"}, {"Y2"}, "sq2");
    AddValueInfo(a->add_output(), "Y2", kF64, {4, 1});
    ExpectImportError(m, StatusCode::kUnimplemented,
                      "training_info[1]: reads 'Y' (computed from an initializer), which "
                      "training_info[0]'s update_binding changes");
  }
  {
    onnx::ModelProto m = SgdModel();  // reads a value of the first entry's algorithm
    auto* a = m.add_training_info()->mutable_algorithm();
    AddNode(a, "Identity", {"RgW"}, {"copy"}, "copy");
    AddValueInfo(a->add_output(), "copy", kF64, {3, 1});
    ExpectImportError(m, StatusCode::kInvalidArgument,
                      "reads 'RgW', a value of training_info[0]'s algorithm");
  }
}

}  // namespace
}  // namespace ampc
