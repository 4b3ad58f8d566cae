// Tests of the ai.onnx.preview.training optimizer ops (Adagrad, Momentum, Adam): CPU kernels
// against a float64 transcription of the ONNX operator formulas written out below, shape/type
// inference (arity, shape and dtype errors), and import of ONNX's seven conformance models.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "frontend/onnx.h"
#include "ir/graph.h"
#include "ir/op_registry.h"
#include "tests/unit/kernel_test_util.h"

namespace ampc {
namespace {

using testing::OwnedTensor;
using Vec = std::vector<double>;

constexpr const char* kDomain = "ai.onnx.preview.training";

// RunKernel for domain ai.onnx.preview.training.
Status RunTraining(const std::string& op, const AttributeMap& attrs,
                   std::vector<const OwnedTensor*> inputs, std::vector<OwnedTensor*> outputs,
                   cpu::ThreadPool* pool = nullptr) {
  return testing::RunKernelInDomain(kDomain, op, attrs, std::move(inputs), std::move(outputs),
                                    pool);
}

OwnedTensor R(double r, DType t = DType::kFloat32) { return OwnedTensor::From(t, {}, {r}); }
OwnedTensor T(int64_t t) {
  OwnedTensor o(DType::kInt64, {});
  o.view().as<int64_t>()[0] = t;
  return o;
}

void ExpectNear(const Vec& got, const Vec& want, double rtol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-12 + rtol * std::fabs(want[i])) << what << " [" << i << "]";
  }
}

// ---- float64 transcriptions of the ONNX formulas (ai.onnx.preview.training opset 1) ----------

// Adagrad: r = R / (1 + T * decay_factor); G_reg = nc * X + G; H_new = H + G_reg^2;
// X_new = X - r * G_reg / (sqrt(H_new) + epsilon).
void RefAdagrad(double r, int64_t t, double decay, double eps, double nc, const Vec& x,
                const Vec& g, const Vec& h, Vec* x_new, Vec* h_new) {
  const double rr = r / (1 + static_cast<double>(t) * decay);
  x_new->resize(x.size());
  h_new->resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double gr = nc * x[i] + g[i];
    (*h_new)[i] = h[i] + gr * gr;
    (*x_new)[i] = x[i] - rr * gr / (std::sqrt((*h_new)[i]) + eps);
  }
}

// Momentum: G_reg = nc * X + G; beta_adj = T > 0 ? beta : 1; V_new = alpha * V + beta_adj * G_reg;
// standard: X_new = X - R * V_new; nesterov: X_new = X - R * (G_reg + alpha * V_new).
void RefMomentum(double r, int64_t t, double alpha, double beta, double nc, bool nesterov,
                 const Vec& x, const Vec& g, const Vec& v, Vec* x_new, Vec* v_new) {
  const double b = t > 0 ? beta : 1.0;
  x_new->resize(x.size());
  v_new->resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double gr = nc * x[i] + g[i];
    (*v_new)[i] = alpha * v[i] + b * gr;
    (*x_new)[i] = nesterov ? x[i] - r * (gr + alpha * (*v_new)[i]) : x[i] - r * (*v_new)[i];
  }
}

// Adam: G_reg = nc * X + G; V_new = alpha * V + (1 - alpha) * G_reg;
// H_new = beta * H + (1 - beta) * G_reg^2; H_sqrt = sqrt(H_new) + epsilon;
// R_adj = T > 0 ? R * sqrt(1 - beta^T) / (1 - alpha^T) : R;
// X_final = (1 - nc_post) * (X - R_adj * V_new / H_sqrt).
void RefAdam(double r, int64_t t, double alpha, double beta, double eps, double nc, double post,
             const Vec& x, const Vec& g, const Vec& v, const Vec& h, Vec* x_new, Vec* v_new,
             Vec* h_new) {
  double ra = r;
  if (t > 0) {
    ra = r * std::sqrt(1 - std::pow(beta, static_cast<double>(t))) /
         (1 - std::pow(alpha, static_cast<double>(t)));
  }
  x_new->resize(x.size());
  v_new->resize(x.size());
  h_new->resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double gr = nc * x[i] + g[i];
    (*v_new)[i] = alpha * v[i] + (1 - alpha) * gr;
    (*h_new)[i] = beta * h[i] + (1 - beta) * gr * gr;
    (*x_new)[i] = (1 - post) * (x[i] - ra * ((*v_new)[i] / (std::sqrt((*h_new)[i]) + eps)));
  }
}

// Attribute values as the kernel sees them (float), widened for the reference.
double F(float v) { return static_cast<double>(v); }

// ---- kernels --------------------------------------------------------------------------------

TEST(TrainingKernels, AdagradF32MatchesFormula) {
  for (int64_t t : {0, 3}) {
    const float decay = 0.1f, eps = 1e-5f, nc = 0.001f;
    const Vec x = {1.0, -2.5, 0.25}, g = {-1.0, 0.5, 3.0}, h = {2.0, 0.0, 1.5};
    auto X = OwnedTensor::From(DType::kFloat32, {3}, x);
    auto G = OwnedTensor::From(DType::kFloat32, {3}, g);
    auto H = OwnedTensor::From(DType::kFloat32, {3}, h);
    auto r = R(0.1), tt = T(t);
    OwnedTensor xo(DType::kFloat32, {3}), ho(DType::kFloat32, {3});
    AttributeMap a = {{"decay_factor", decay}, {"epsilon", eps}, {"norm_coefficient", nc}};
    ASSERT_TRUE(RunTraining("Adagrad", a, {&r, &tt, &X, &G, &H}, {&xo, &ho}).ok());
    Vec wx, wh;
    RefAdagrad(F(0.1f), t, F(decay), F(eps), F(nc), X.values(), G.values(), H.values(), &wx, &wh);
    ExpectNear(xo.values(), wx, 1e-6, "X_new");
    ExpectNear(ho.values(), wh, 1e-6, "H_new");
  }
}

TEST(TrainingKernels, AdagradDefaultsF64TwoTensors) {
  const Vec x1 = {1.0}, x2 = {1.0, 2.0}, g1 = {-1.0}, g2 = {-1.0, -3.0}, h1 = {2.0},
            h2 = {4.0, 1.0};
  auto X1 = OwnedTensor::From(DType::kFloat64, {1}, x1);
  auto X2 = OwnedTensor::From(DType::kFloat64, {2}, x2);
  auto G1 = OwnedTensor::From(DType::kFloat64, {1}, g1);
  auto G2 = OwnedTensor::From(DType::kFloat64, {2}, g2);
  auto H1 = OwnedTensor::From(DType::kFloat64, {1}, h1);
  auto H2 = OwnedTensor::From(DType::kFloat64, {2}, h2);
  auto r = R(0.25, DType::kFloat64), t = T(7);
  OwnedTensor xo1(DType::kFloat64, {1}), xo2(DType::kFloat64, {2}), ho1(DType::kFloat64, {1}),
      ho2(DType::kFloat64, {2});
  ASSERT_TRUE(
      RunTraining("Adagrad", {}, {&r, &t, &X1, &X2, &G1, &G2, &H1, &H2}, {&xo1, &xo2, &ho1, &ho2})
          .ok());
  // Defaults: decay_factor 0, epsilon 1e-6, norm_coefficient 0.
  Vec wx, wh;
  RefAdagrad(0.25, 7, 0.0, F(1e-6f), 0.0, x1, g1, h1, &wx, &wh);
  ExpectNear(xo1.values(), wx, 1e-14, "X1_new");
  ExpectNear(ho1.values(), wh, 1e-14, "H1_new");
  RefAdagrad(0.25, 7, 0.0, F(1e-6f), 0.0, x2, g2, h2, &wx, &wh);
  ExpectNear(xo2.values(), wx, 1e-14, "X2_new");
  ExpectNear(ho2.values(), wh, 1e-14, "H2_new");
}

TEST(TrainingKernels, MomentumStandardAndNesterov) {
  const float alpha = 0.95f, beta = 0.85f, nc = 0.01f;
  const Vec x = {1.2, 2.8, -0.5}, g = {-0.94, -2.5, 0.125}, v = {1.7, 3.6, -0.75};
  for (bool nesterov : {false, true}) {
    for (int64_t t : {0, 1, 9}) {
      for (DType dt : {DType::kFloat32, DType::kFloat64}) {
        auto X = OwnedTensor::From(dt, {3}, x);
        auto G = OwnedTensor::From(dt, {3}, g);
        auto V = OwnedTensor::From(dt, {3}, v);
        auto r = R(0.1), tt = T(t);
        OwnedTensor xo(dt, {3}), vo(dt, {3});
        AttributeMap a = {{"alpha", alpha},
                          {"beta", beta},
                          {"norm_coefficient", nc},
                          {"mode", std::string(nesterov ? "nesterov" : "standard")}};
        ASSERT_TRUE(RunTraining("Momentum", a, {&r, &tt, &X, &G, &V}, {&xo, &vo}).ok());
        Vec wx, wv;
        RefMomentum(F(0.1f), t, F(alpha), F(beta), F(nc), nesterov, X.values(), G.values(),
                    V.values(), &wx, &wv);
        const double tol = dt == DType::kFloat32 ? 1e-6 : 1e-14;
        const std::string what = std::string(nesterov ? "nesterov" : "standard") +
                                 " T=" + std::to_string(t) +
                                 (dt == DType::kFloat32 ? " f32" : " f64");
        ExpectNear(xo.values(), wx, tol, "X_new " + what);
        ExpectNear(vo.values(), wv, tol, "V_new " + what);
      }
    }
  }
}

TEST(TrainingKernels, MomentumRejectsBadModeAndMissingAttributes) {
  auto X = OwnedTensor::From(DType::kFloat32, {1}, {1.0});
  auto r = R(0.1), t = T(0);
  OwnedTensor xo(DType::kFloat32, {1}), vo(DType::kFloat32, {1});
  AttributeMap a = {
      {"alpha", 0.9f}, {"beta", 0.5f}, {"norm_coefficient", 0.0f}, {"mode", std::string("heavy")}};
  Status st = RunTraining("Momentum", a, {&r, &t, &X, &X, &X}, {&xo, &vo});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("heavy"), std::string::npos) << st.message();
  a.erase("alpha");
  a["mode"] = std::string("standard");
  st = RunTraining("Momentum", a, {&r, &t, &X, &X, &X}, {&xo, &vo});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("alpha"), std::string::npos) << st.message();
}

TEST(TrainingKernels, AdamMatchesFormula) {
  const Vec x = {1.2, 2.8}, g = {-0.94, -2.5}, v = {1.7, 3.6}, h = {0.1, 0.1};
  struct Case {
    AttributeMap attrs;
    double alpha, beta, eps, nc, post;
    int64_t t;
  };
  const std::vector<Case> cases = {
      {{}, F(0.9f), F(0.999f), F(1e-6f), 0, 0, 0},  // defaults
      {{}, F(0.9f), F(0.999f), F(1e-6f), 0, 0, 5},  // bias correction
      {{{"alpha", 0.95f}, {"beta", 0.1f}, {"epsilon", 1e-7f}, {"norm_coefficient", 0.001f}},
       F(0.95f),
       F(0.1f),
       F(1e-7f),
       F(0.001f),
       0,
       0},
      {{{"alpha", 0.8f}, {"beta", 0.7f}, {"norm_coefficient_post", 0.05f}},
       F(0.8f),
       F(0.7f),
       F(1e-6f),
       0,
       F(0.05f),
       3},
  };
  for (const Case& c : cases) {
    for (DType dt : {DType::kFloat32, DType::kFloat64}) {
      auto X = OwnedTensor::From(dt, {2}, x);
      auto G = OwnedTensor::From(dt, {2}, g);
      auto V = OwnedTensor::From(dt, {2}, v);
      auto H = OwnedTensor::From(dt, {2}, h);
      auto r = R(0.1), tt = T(c.t);
      OwnedTensor xo(dt, {2}), vo(dt, {2}), ho(dt, {2});
      ASSERT_TRUE(RunTraining("Adam", c.attrs, {&r, &tt, &X, &G, &V, &H}, {&xo, &vo, &ho}).ok());
      Vec wx, wv, wh;
      RefAdam(F(0.1f), c.t, c.alpha, c.beta, c.eps, c.nc, c.post, X.values(), G.values(),
              V.values(), H.values(), &wx, &wv, &wh);
      const double tol = dt == DType::kFloat32 ? 2e-6 : 1e-13;
      ExpectNear(xo.values(), wx, tol, "X_new T=" + std::to_string(c.t));
      ExpectNear(vo.values(), wv, tol, "V_new T=" + std::to_string(c.t));
      ExpectNear(ho.values(), wh, tol, "H_new T=" + std::to_string(c.t));
    }
  }
}

TEST(TrainingKernels, LargeTensorOnThreadPoolAndOmittedOutput) {
  const int64_t n = 100003;
  Vec x(n), g(n), v(n), h(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::sin(0.001 * i);
    g[i] = std::cos(0.003 * i);
    v[i] = 0.5 * std::sin(0.007 * i);
    h[i] = 1.0 + 0.25 * std::cos(0.002 * i);
  }
  auto X = OwnedTensor::From(DType::kFloat32, {n}, x);
  auto G = OwnedTensor::From(DType::kFloat32, {n}, g);
  auto V = OwnedTensor::From(DType::kFloat32, {n}, v);
  auto H = OwnedTensor::From(DType::kFloat32, {n}, h);
  auto r = R(0.01), t = T(2);
  OwnedTensor xo(DType::kFloat32, {n}), ho(DType::kFloat32, {n});
  cpu::ThreadPool pool(2);
  // The new V is omitted (nullptr); X and H are still produced.
  ASSERT_TRUE(RunTraining("Adam", {}, {&r, &t, &X, &G, &V, &H}, {&xo, nullptr, &ho}, &pool).ok());
  Vec wx, wv, wh;
  RefAdam(F(0.01f), 2, F(0.9f), F(0.999f), F(1e-6f), 0, 0, X.values(), G.values(), V.values(),
          H.values(), &wx, &wv, &wh);
  ExpectNear(xo.values(), wx, 1e-5, "X_new");
  ExpectNear(ho.values(), wh, 1e-5, "H_new");
}

TEST(TrainingKernels, RejectsBadInputs) {
  auto r = R(0.1), t = T(1);
  auto X = OwnedTensor::From(DType::kFloat32, {2}, {1, 2});
  auto X3 = OwnedTensor::From(DType::kFloat32, {3}, {1, 2, 3});
  auto X64 = OwnedTensor::From(DType::kFloat64, {2}, {1, 2});
  auto I = OwnedTensor::From(DType::kInt32, {2}, {1, 2});
  auto Hf = OwnedTensor::From(DType::kFloat16, {2}, {1, 2});
  OwnedTensor xo(DType::kFloat32, {2}), ho(DType::kFloat32, {2});
  auto code = [&](std::vector<const OwnedTensor*> in, std::vector<OwnedTensor*> out) {
    return RunTraining("Adagrad", {}, std::move(in), std::move(out)).code();
  };
  EXPECT_EQ(code({&r, &t, &X, &X, &X}, {&xo, &ho}), StatusCode::kOk);
  EXPECT_EQ(code({&r, &t, &X, &X3, &X}, {&xo, &ho}), StatusCode::kInvalidArgument);     // shape
  EXPECT_EQ(code({&r, &t, &X, &X, &X64}, {&xo, &ho}), StatusCode::kInvalidArgument);    // dtype
  EXPECT_EQ(code({&r, &t, &I, &I, &I}, {&xo, &ho}), StatusCode::kInvalidArgument);      // int
  EXPECT_EQ(code({&r, &t, &Hf, &Hf, &Hf}, {&xo, &ho}), StatusCode::kInvalidArgument);   // f16
  EXPECT_EQ(code({&r, &t, &X, &X, &X, &X}, {&xo, &ho}), StatusCode::kInvalidArgument);  // count
  EXPECT_EQ(code({&r, &t, &X, &X, &X}, {&xo}), StatusCode::kInvalidArgument);           // outputs
  EXPECT_EQ(code({&r, &r, &X, &X, &X}, {&xo, &ho}), StatusCode::kInvalidArgument);      // T not i64
  EXPECT_EQ(code({&t, &t, &X, &X, &X}, {&xo, &ho}), StatusCode::kInvalidArgument);  // R not float
  EXPECT_EQ(code({&r, &t, &X, nullptr, &X}, {&xo, &ho}), StatusCode::kInvalidArgument);
  OwnedTensor bad_out(DType::kFloat32, {3});
  EXPECT_EQ(code({&r, &t, &X, &X, &X}, {&xo, &bad_out}), StatusCode::kInvalidArgument);
  Status st = RunTraining("Adagrad", {}, {&r, &t, &I, &I, &I}, {&xo, &ho});
  EXPECT_NE(st.message().find("f32 and f64"), std::string::npos) << st.message();
}

// ---- shape inference ------------------------------------------------------------------------

class TrainingInference : public ::testing::Test {
 protected:
  Value* In(DType t, std::vector<Dim> d) {
    return *g_.AddInput("in" + std::to_string(counter_++), TensorType(t, std::move(d)));
  }
  Value* F32(std::vector<Dim> d) { return In(DType::kFloat32, std::move(d)); }
  Value* Rs() { return F32({}); }
  Value* Ts() { return In(DType::kInt64, {}); }
  Status Infer(const std::string& op, std::vector<Value*> ins, int nout, AttributeMap attrs = {}) {
    std::vector<std::string> outs;
    for (int i = 0; i < nout; ++i) outs.push_back("out" + std::to_string(counter_++));
    last_ = *g_.AddNode(op, kDomain, "n" + std::to_string(counter_++), ins, outs, std::move(attrs));
    return InferNode(*last_);
  }
  std::string Out(int i) { return last_->output(i)->type().ToString(); }
  static AttributeMap MomentumAttrs() {
    return {{"alpha", 0.9f},
            {"beta", 0.1f},
            {"norm_coefficient", 0.0f},
            {"mode", std::string("standard")}};
  }

  Graph g_;
  Node* last_ = nullptr;
  int counter_ = 0;
};

TEST_F(TrainingInference, OutputsFollowInputs) {
  Dim b = Dim::Symbol("b");
  ASSERT_TRUE(Infer("Adam",
                    {Rs(), Ts(), F32({2, 3}), F32({b}), F32({2, b}), F32({b}), F32({Dim(), 3}),
                     F32({b}), F32({2, Dim()}), F32({b})},
                    6)
                  .ok());
  EXPECT_EQ(Out(0), "f32[2,3]");
  EXPECT_EQ(Out(1), "f32[b]");
  EXPECT_EQ(Out(2), "f32[2,3]");
  EXPECT_EQ(Out(3), "f32[b]");
  EXPECT_EQ(Out(4), "f32[2,3]");
  EXPECT_EQ(Out(5), "f32[b]");
  ASSERT_TRUE(Infer("Adagrad",
                    {Rs(), Ts(), In(DType::kFloat64, {4}), In(DType::kFloat64, {4}),
                     In(DType::kFloat64, {4})},
                    2)
                  .ok());
  EXPECT_EQ(Out(0), "f64[4]");
  EXPECT_EQ(Out(1), "f64[4]");
  ASSERT_TRUE(
      Infer("Momentum", {Rs(), Ts(), F32({5}), F32({5}), F32({5})}, 2, MomentumAttrs()).ok());
  EXPECT_EQ(Out(1), "f32[5]");
  // An unranked X takes its shape from G.
  Value* unranked = *g_.AddInput("u", TensorType::UnknownShape(DType::kFloat32));
  ASSERT_TRUE(Infer("Adagrad", {Rs(), Ts(), unranked, F32({7}), F32({7})}, 2).ok());
  EXPECT_EQ(Out(0), "f32[7]");
}

TEST_F(TrainingInference, ArityErrors) {
  // 7 inputs: 5 tensors after R and T is not a multiple of 3.
  Status st = Infer("Adagrad", {Rs(), Ts(), F32({1}), F32({1}), F32({1}), F32({1}), F32({1})}, 2);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("multiple of 3"), std::string::npos) << st.message();
  // Adam needs 4 groups: 8 inputs is 6 tensors.
  st = Infer("Adam", {Rs(), Ts(), F32({1}), F32({1}), F32({1}), F32({1}), F32({1}), F32({1})}, 3);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  // Too few inputs (schema arity).
  st = Infer("Adam", {Rs(), Ts(), F32({1}), F32({1})}, 3);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  // Wrong number of outputs.
  st = Infer("Adagrad", {Rs(), Ts(), F32({1}), F32({1}), F32({1})}, 3);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("outputs"), std::string::npos) << st.message();
  st = Infer("Adam", {Rs(), Ts(), F32({1}), F32({1}), F32({1}), F32({1})}, 2);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
}

TEST_F(TrainingInference, ShapeAndTypeErrors) {
  Status st = Infer("Adagrad", {Rs(), Ts(), F32({2}), F32({3}), F32({2})}, 2);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  st = Infer("Adagrad", {Rs(), Ts(), F32({2}), F32({2}), F32({2, 1})}, 2);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("shape mismatch"), std::string::npos) << st.message();
  // Second group mismatched: X2 [2] vs H2 [4].
  st =
      Infer("Adagrad", {Rs(), Ts(), F32({1}), F32({2}), F32({1}), F32({2}), F32({1}), F32({4})}, 4);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  // f16 and integer tensors are rejected, as are mixed f32/f64 groups.
  st = Infer(
      "Adagrad",
      {Rs(), Ts(), In(DType::kFloat16, {2}), In(DType::kFloat16, {2}), In(DType::kFloat16, {2})},
      2);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("f32 or f64"), std::string::npos) << st.message();
  st = Infer("Adam", {Rs(), Ts(), F32({2}), F32({2}), In(DType::kFloat64, {2}), F32({2})}, 3);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  // R must be a float scalar, T an i64 scalar.
  st = Infer("Adagrad", {F32({1}), Ts(), F32({2}), F32({2}), F32({2})}, 2);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  st = Infer("Adagrad", {Rs(), Rs(), F32({2}), F32({2}), F32({2})}, 2);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  // Momentum: required attributes and a valid mode.
  st = Infer("Momentum", {Rs(), Ts(), F32({2}), F32({2}), F32({2})}, 2);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  AttributeMap a = MomentumAttrs();
  a["mode"] = std::string("adam");
  st = Infer("Momentum", {Rs(), Ts(), F32({2}), F32({2}), F32({2})}, 2, a);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
}

// ---- the ONNX conformance models ------------------------------------------------------------

TEST(TrainingImport, ConformanceModelsInfer) {
  const std::filesystem::path root = "/usr/share/libonnx-testdata/data/node";
  if (!std::filesystem::exists(root / "test_adam")) GTEST_SKIP() << "no ONNX test data";
  struct Case {
    const char* dir;
    const char* op;
    std::vector<std::string> outputs;
  };
  const std::vector<Case> cases = {
      {"test_adagrad", "Adagrad", {"f32[1]", "f32[1]"}},
      {"test_adagrad_multiple", "Adagrad", {"f32[1]", "f32[2]", "f32[1]", "f32[2]"}},
      {"test_momentum", "Momentum", {"f32[2]", "f32[2]"}},
      {"test_momentum_multiple", "Momentum", {"f32[1]", "f32[2]", "f32[1]", "f32[2]"}},
      {"test_nesterov_momentum", "Momentum", {"f32[2]", "f32[2]"}},
      {"test_adam", "Adam", {"f32[2]", "f32[2]", "f32[2]"}},
      {"test_adam_multiple", "Adam", {"f32[1]", "f32[2]", "f32[1]", "f32[2]", "f32[1]", "f32[2]"}},
  };
  for (const Case& c : cases) {
    auto g = ImportOnnxFile((root / c.dir / "model.onnx").string());
    ASSERT_TRUE(g.ok()) << c.dir << ": " << g.status().message();
    ASSERT_EQ((*g)->nodes().size(), 1u) << c.dir;
    const Node* n = (*g)->nodes()[0];
    EXPECT_EQ(n->domain(), kDomain) << c.dir;
    EXPECT_EQ(n->op_type(), c.op) << c.dir;
    ASSERT_EQ((*g)->outputs().size(), c.outputs.size()) << c.dir;
    for (size_t i = 0; i < c.outputs.size(); ++i) {
      EXPECT_EQ((*g)->outputs()[i]->type().ToString(), c.outputs[i]) << c.dir << " output " << i;
      EXPECT_EQ(n->output(static_cast<int>(i))->type().ToString(), c.outputs[i]) << c.dir;
    }
  }
}

}  // namespace
}  // namespace ampc
