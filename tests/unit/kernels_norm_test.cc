// CPU NN kernels (runtime/cpu/kernels_nn.cc, kernels_conv.cc, kernels_norm.cc, gemm.cc).
// Expected values come from naive float64 references written below from the ONNX operator spec
// formulas (direct nested-loop convolution, pooling, softmax, normalisation, losses), on random
// data with fixed seeds; half cases check that each output is the f64 reference rounded once;
// the last test replays ONNX's own backend test data (Debian's libonnx-testdata).
// This file: normalisations, softmax, losses, Einsum, ONNX backend data, timing.
#include "tests/unit/kernels_nn_test_util.h"

namespace ampc::testing {
namespace {

using namespace nn;  // NOLINT: test helpers

// ------------------------------------------------------------------- Normalisation

// BatchNormalization per the ONNX spec: y = scale * (x - mean) / sqrt(var + eps) + B; training
// mode uses the biased batch statistics and running = input * momentum + batch * (1 - momentum)
// (biased variance too: checked against ONNX's test_batchnorm_*_training_mode data below).
TEST(NnKernels, BatchNormalizationInferenceAndTraining) {
  const Dims xd = {3, 4, 5, 2};
  const int64_t N = 3, C = 4, S = 10;
  for (int training : {0, 1}) {
    for (DType t : {kF32, kF16}) {
      V x, sc, bi, mu, va;
      OwnedTensor X = Rand(t, xd, 80, &x, -2, 3), Sc = Rand(kF32, {C}, 81, &sc);
      OwnedTensor Bi = Rand(kF32, {C}, 82, &bi), Mu = Rand(kF32, {C}, 83, &mu);
      OwnedTensor Va = Rand(kF32, {C}, 84, &va, 0.5, 2);
      OwnedTensor Y(t, xd), RM(kF32, {C}), RV(kF32, {C});
      const double eps = 1e-3, mom = 0.8;
      RunOk("BatchNormalization",
            {{"epsilon", F(1e-3f)}, {"momentum", F(0.8f)}, {"training_mode", I(training)}},
            {&X, &Sc, &Bi, &Mu, &Va}, {&Y, training ? &RM : nullptr, training ? &RV : nullptr});
      V want(x.size()), rm(C), rv(C);
      for (int64_t c = 0; c < C; ++c) {
        double m = mu[c], v = va[c];
        if (training) {
          double s = 0, q = 0;
          for (int64_t n = 0; n < N; ++n)
            for (int64_t i = 0; i < S; ++i) s += x[(n * C + c) * S + i];
          m = s / (N * S);
          for (int64_t n = 0; n < N; ++n)
            for (int64_t i = 0; i < S; ++i) q += std::pow(x[(n * C + c) * S + i] - m, 2);
          v = q / (N * S);
        }
        rm[c] = mu[c] * mom + m * (1 - mom);
        rv[c] = va[c] * mom + v * (1 - mom);
        for (int64_t n = 0; n < N; ++n) {
          for (int64_t i = 0; i < S; ++i) {
            const int64_t k = (n * C + c) * S + i;
            want[k] = sc[c] * (x[k] - m) / std::sqrt(v + eps) + bi[c];
          }
        }
      }
      if (t == kF32) {
        ExpectNear(Y.values(), want, 1e-5, 1e-5);
      } else {
        ExpectRoundedOnce(Y, want, 1e-5);
      }
      if (training) {
        ExpectNear(RM.values(), rm);
        ExpectNear(RV.values(), rv);
      }
    }
  }
}

// LayerNormalization per the ONNX spec (opset 17 function body): Mean = mean(X over the axes
// >= axis), Var = mean((X - Mean)^2), InvStdDev = 1 / sqrt(Var + eps),
// Y = (X - Mean) * InvStdDev * Scale + B.
TEST(NnKernels, LayerNormalizationAxesAndOutputs) {
  struct Case {
    Dims xd;
    int64_t axis;
    Dims sd, bd;
  };
  const std::vector<Case> cases = {
      {{6, 20}, -1, {20}, {20}}, {{3, 4, 5}, 1, {4, 5}, {5}}, {{2, 3, 4}, 0, {1, 4}, {}}};
  for (const Case& c : cases) {
    for (DType t : {kF32, kF64, kBF16}) {
      V x, s, b;
      OwnedTensor X = Rand(t, c.xd, 90, &x, -3, 2), Sc = Rand(t, c.sd, 91, &s);
      OwnedTensor B = Rand(t, c.bd.empty() ? Dims{1} : c.bd, 92, &b);
      const int64_t axis = c.axis < 0 ? c.axis + c.xd.size() : c.axis;
      const int64_t outer = Prod(Dims(c.xd.begin(), c.xd.begin() + axis)), inner = Prod(c.xd, axis);
      Dims sd(c.xd.begin(), c.xd.begin() + axis);
      sd.resize(c.xd.size(), 1);
      OwnedTensor Y(t, c.xd), Mean(kF32, sd), Inv(kF32, sd);
      RunOk("LayerNormalization", {{"axis", I(c.axis)}, {"epsilon", F(1e-2f)}},
            {&X, &Sc, c.bd.empty() ? nullptr : &B}, {&Y, &Mean, &Inv});
      V want(x.size()), wm(outer), wi(outer);
      for (int64_t r = 0; r < outer; ++r) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < inner; ++i) m += x[r * inner + i] / inner;
        for (int64_t i = 0; i < inner; ++i) v += std::pow(x[r * inner + i] - m, 2) / inner;
        wm[r] = m;
        wi[r] = 1 / std::sqrt(v + 1e-2);
        for (int64_t i = 0; i < inner; ++i) {
          const double sv = s[i % Prod(c.sd)], bv = c.bd.empty() ? 0 : b[i % Prod(c.bd)];
          want[r * inner + i] = (x[r * inner + i] - m) * wi[r] * sv + bv;
        }
      }
      if (t == kBF16) {
        ExpectRoundedOnce(Y, want, 1e-5);
      } else {
        ExpectNear(Y.values(), want, 1e-5, 1e-5);
      }
      ExpectNear(Mean.values(), wm, 1e-5, 1e-6);
      ExpectNear(Inv.values(), wi, 1e-5, 1e-6);
    }
  }
}

// Softmax along one axis: exp(x - max) / sum; LogSoftmax: x - max - log(sum).
TEST(NnKernels, SoftmaxAndLogSoftmaxAxes) {
  const Dims xd = {3, 4, 5};
  for (int64_t axis : {-1, 1, 0}) {
    for (DType t : {kF32, kF16}) {
      for (bool log : {false, true}) {
        V x;
        OwnedTensor X = Rand(t, xd, 100, &x, -30, 30), Y(t, xd);  // wide range: needs the max shift
        RunOk(log ? "LogSoftmax" : "Softmax", {{"axis", I(axis)}}, {&X}, {&Y});
        const int64_t a = axis < 0 ? axis + 3 : axis;
        const int64_t outer = Prod(Dims(xd.begin(), xd.begin() + a)), C = xd[a],
                      inner = Prod(xd, a + 1);
        V want(x.size());
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t j = 0; j < inner; ++j) {
            double m = -INFINITY, s = 0;
            for (int64_t c = 0; c < C; ++c) m = std::max(m, x[(o * C + c) * inner + j]);
            for (int64_t c = 0; c < C; ++c) s += std::exp(x[(o * C + c) * inner + j] - m);
            for (int64_t c = 0; c < C; ++c) {
              const double v = x[(o * C + c) * inner + j] - m;
              want[(o * C + c) * inner + j] = log ? v - std::log(s) : std::exp(v) / s;
            }
          }
        }
        if (t == kF32) {
          ExpectNear(Y.values(), want, 1e-5, 1e-6);
        } else {
          ExpectRoundedOnce(Y, want, 1e-5, 1e-7);  // log(sum) ~ 1 carries fp32 error
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------- Losses

// loss_i = -w[y_i] * logp[n, y_i, d] (0 where y_i == ignore_index); none / sum / mean, where mean
// divides by the sum of the weights of the non-ignored labels (ONNX's softmaxcrossentropy.py).
void CheckLoss(bool sce, const Dims& xd, bool weights, bool ignore, const std::string& reduction) {
  const int64_t N = xd[0], C = xd[1], D = Prod(xd, 2);
  V x, w;
  OwnedTensor X = Rand(kF32, xd, 110, &x, -3, 3), W = Rand(kF32, {C}, 111, &w, 0.1, 2);
  V labels = RandomInts(N * D, 112, 0, C - 1);
  labels[0] = labels[3] = -1;  // ignored when ignore_index is given (out of range otherwise)
  if (!ignore) labels[0] = labels[3] = 1;
  Dims ld = {N};
  ld.insert(ld.end(), xd.begin() + 2, xd.end());
  OwnedTensor L = OwnedTensor::From(kI64, ld, labels);
  V logp(x.size());
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t d = 0; d < D; ++d) {
      double m = -INFINITY, s = 0;
      for (int64_t c = 0; c < C; ++c) m = std::max(m, x[(n * C + c) * D + d]);
      for (int64_t c = 0; c < C; ++c) s += std::exp(x[(n * C + c) * D + d] - m);
      for (int64_t c = 0; c < C; ++c) {
        const int64_t k = (n * C + c) * D + d;
        logp[k] = sce ? x[k] - m - std::log(s) : x[k];
      }
    }
  }
  V per(N * D);
  double sum = 0, wsum = 0;
  for (int64_t i = 0; i < N * D; ++i) {
    if (ignore && labels[i] == -1) continue;
    const int64_t y = static_cast<int64_t>(labels[i]);
    const double wy = weights ? w[y] : 1;
    per[i] = -wy * logp[((i / D) * C + y) * D + i % D];
    sum += per[i];
    wsum += wy;
  }
  const V want = reduction == "none" ? per : V{reduction == "sum" ? sum : sum / wsum};
  OwnedTensor Out(kF32, reduction == "none" ? ld : Dims{}), LogP(kF32, xd);
  AttributeMap attrs = {{"reduction", Attribute(reduction)}};
  if (ignore) attrs["ignore_index"] = I(-1);
  std::vector<OwnedTensor*> outs = {&Out};
  if (sce) outs.push_back(&LogP);
  RunOk(sce ? "SoftmaxCrossEntropyLoss" : "NegativeLogLikelihoodLoss", attrs,
        {&X, &L, weights ? &W : nullptr}, outs);
  ExpectNear(Out.values(), want, 1e-5, 1e-6);
  if (sce) ExpectNear(LogP.values(), logp, 1e-5, 1e-6);
}

TEST(NnKernels, SoftmaxCrossEntropyAndNllLosses) {
  for (bool sce : {true, false}) {
    for (const char* red : {"mean", "sum", "none"}) {
      CheckLoss(sce, {8, 10}, false, false, red);
      CheckLoss(sce, {8, 10}, true, true, red);
      CheckLoss(sce, {3, 5, 2, 3}, true, true, red);
      CheckLoss(sce, {3, 5, 4}, false, true, red);
    }
  }
  // A label outside [0, C) that is not ignore_index is an error, never a read out of bounds.
  OwnedTensor X(kF32, {2, 10}), L = OwnedTensor::From(kI64, {2}, {3, 12}), Out(kF32, {});
  Status st = RunKernel("SoftmaxCrossEntropyLoss", {}, {&X, &L}, {&Out});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "label 12 is out of range [0, 10)");
  L = OwnedTensor::From(DType::kInt32, {2}, {-1, 0});
  EXPECT_FALSE(RunKernel("NegativeLogLikelihoodLoss", {}, {&X, &L}, {&Out}).ok());
  EXPECT_TRUE(
      RunKernel("NegativeLogLikelihoodLoss", {{"ignore_index", I(-1)}}, {&X, &L}, {&Out}).ok());
}

// ------------------------------------------------------------------------------- Einsum

TEST(NnKernels, EinsumTwoOperandAndSingleOperand) {
  V a, b;
  OwnedTensor A = Rand(kF32, {2, 3, 4}, 120, &a), B = Rand(kF32, {2, 4, 5}, 121, &b);
  OwnedTensor Y(kF32, {2, 3, 5});
  RunOk("Einsum", {{"equation", Str("bij,bjk->bik")}}, {&A, &B}, {&Y});
  ExpectNear(Y.values(), RefMatMul(a, {2, 3, 4}, b, {2, 4, 5}));
  // "bij,bjk->kib": output permuted; and a label summed out of one operand only ("bij,bjk->ik").
  OwnedTensor P(kF32, {5, 3, 2}), Q(kF32, {3, 5});
  RunOk("Einsum", {{"equation", Str("bij, bjk -> kib")}}, {&A, &B}, {&P});
  RunOk("Einsum", {{"equation", Str("bij,bjk->ik")}}, {&A, &B}, {&Q});
  const V mm = RefMatMul(a, {2, 3, 4}, b, {2, 4, 5});
  V wp(30), wq(15, 0.0);
  for (int64_t bb = 0; bb < 2; ++bb) {
    for (int64_t i = 0; i < 3; ++i) {
      for (int64_t k = 0; k < 5; ++k) {
        wp[(k * 3 + i) * 2 + bb] = mm[(bb * 3 + i) * 5 + k];
        wq[i * 5 + k] += mm[(bb * 3 + i) * 5 + k];
      }
    }
  }
  ExpectNear(P.values(), wp);
  ExpectNear(Q.values(), wq);
  // Implicit output ("ij,jk" -> "ik"), a single-operand sum and transpose.
  OwnedTensor M1 = Rand(kF64, {3, 4}, 122, &a), M2 = Rand(kF64, {4, 2}, 123, &b), R(kF64, {3, 2});
  RunOk("Einsum", {{"equation", Str("ij,jk")}}, {&M1, &M2}, {&R});
  ExpectNear(R.values(), RefMatMul(a, {3, 4}, b, {4, 2}));
  OwnedTensor T(kF64, {4, 3}), Sum(kF64, {3});
  RunOk("Einsum", {{"equation", Str("ij->ji")}}, {&M1}, {&T});
  RunOk("Einsum", {{"equation", Str("ij->i")}}, {&M1}, {&Sum});
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_DOUBLE_EQ(Sum.values()[i], a[i * 4] + a[i * 4 + 1] + a[i * 4 + 2] + a[i * 4 + 3]);
    for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(T.values()[j * 3 + i], a[i * 4 + j]);
  }
  OwnedTensor Sq(kF32, {3, 3}), Diag(kF32, {3});
  EXPECT_EQ(RunKernel("Einsum", {{"equation", Str("ii->i")}}, {&Sq}, {&Diag}).code(),
            StatusCode::kUnimplemented);
}

// -------------------------------------------------------------- ONNX backend test data

// Replays ONNX's backend node tests for these ops: model attributes through the importer,
// inputs and expected outputs from test_data_set_0 (computed by ONNX's numpy references).
TEST(NnKernels, OnnxBackendNodeData) {
  const std::string root = "/usr/share/libonnx-testdata/data/node";
  if (!std::filesystem::exists(root)) GTEST_SKIP() << "libonnx-testdata is not installed";
  const std::vector<std::string> prefixes = {"test_averagepool_",
                                             "test_maxpool_",
                                             "test_basic_conv_",
                                             "test_conv_with_",
                                             "test_convtranspose",
                                             "test_batchnorm_",
                                             "test_layer_normalization_",
                                             "test_softmax_",
                                             "test_logsoftmax_",
                                             "test_nllloss_",
                                             "test_sce_",
                                             "test_gemm_",
                                             "test_matmul_",
                                             "test_einsum_"};
  int ran = 0;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    bool match = false;
    for (const auto& p : prefixes) match = match || name.rfind(p, 0) == 0;
    if (!match || name.find("_expanded") != std::string::npos) continue;
    if (name == "test_convtranspose_with_kernel" || name == "test_einsum_batch_diagonal") continue;
    SCOPED_TRACE(name);
    auto g = ImportOnnxFile((entry.path() / "model.onnx").string());
    ASSERT_TRUE(g.ok()) << g.status().message();
    ASSERT_EQ((*g)->num_nodes(), 1);
    const Node& node = *(*g)->nodes()[0];
    auto load = [&](const std::string& file) {
      auto t = ReadTensorFile((entry.path() / "test_data_set_0" / file).string());
      EXPECT_TRUE(t.ok()) << file;
      OwnedTensor o(t->dtype(), t->dims());
      std::memcpy(o.view().data, t->bytes().data(), t->bytes().size());
      return o;
    };
    std::vector<OwnedTensor> ins, want, outs;
    for (size_t k = 0; k < (*g)->inputs().size(); ++k)
      ins.push_back(load("input_" + std::to_string(k) + ".pb"));
    for (size_t k = 0; k < (*g)->outputs().size(); ++k) {
      want.push_back(load("output_" + std::to_string(k) + ".pb"));
      outs.push_back(OwnedTensor(want.back().view().dtype, want.back().view().dims));
    }
    std::vector<const OwnedTensor*> in_ptrs;
    for (const Value* v : node.inputs()) {
      const OwnedTensor* p = nullptr;
      for (size_t k = 0; k < (*g)->inputs().size(); ++k) {
        if ((*g)->inputs()[k] == v) p = &ins[k];
      }
      in_ptrs.push_back(p);
    }
    std::vector<OwnedTensor*> out_ptrs;
    for (const Value* v : node.outputs()) {
      OwnedTensor* p = nullptr;
      for (size_t k = 0; k < (*g)->outputs().size(); ++k) {
        if ((*g)->outputs()[k] == v) p = &outs[k];
      }
      out_ptrs.push_back(p);
    }
    RunOk(node.op_type(), node.attrs(), in_ptrs, out_ptrs);
    for (size_t k = 0; k < outs.size(); ++k)
      ExpectNear(outs[k].values(), want[k].values(), 1e-5, 1e-5);
    ++ran;
  }
  EXPECT_GE(ran, 150);
}

// ------------------------------------------------------------------------------- Timing

// Run with --gtest_also_run_disabled_tests; prints the best of 100 single calls (2 threads).
double BestMs(const std::function<void()>& fn) {
  double best = 1e30;
  for (int i = 0; i < 100; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(
        best,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

TEST(NnKernelsPerf, DISABLED_GemmAndConvTimings) {
  for (DType t : {kF32, kBF16}) {
    V a, b, c;
    OwnedTensor A = Rand(t, {256, 784}, 1, &a), B = Rand(t, {784, 256}, 2, &b),
                C = Rand(t, {256}, 3, &c);
    OwnedTensor Y(t, {256, 256});
    std::printf("Gemm 256x784 @ 784x256 + bias %s: %.3f ms\n", std::string(DTypeName(t)).c_str(),
                BestMs([&] {
                  RunOk("Gemm", {}, {&A, &B, &C}, {&Y});
                }));
  }
  V x, w, b;
  OwnedTensor X = Rand(kF32, {64, 8, 28, 28}, 4, &x), W = Rand(kF32, {16, 8, 3, 3}, 5, &w);
  OwnedTensor B = Rand(kF32, {16}, 6, &b), Y(kF32, {64, 16, 28, 28});
  std::printf("Conv 64x8x28x28 -> 16, 3x3 pad 1, f32: %.3f ms\n", BestMs([&] {
                RunOk("Conv", {{"pads", Ints({1, 1, 1, 1})}}, {&X, &W, &B}, {&Y});
              }));
  OwnedTensor P(kF32, {64, 16, 14, 14});
  std::printf(
      "MaxPool 2x2/2 on 64x16x28x28 f32: %.3f ms\n", BestMs([&] {
        RunOk("MaxPool", {{"kernel_shape", Ints({2, 2})}, {"strides", Ints({2, 2})}}, {&Y}, {&P});
      }));
}

}  // namespace
}  // namespace ampc::testing
