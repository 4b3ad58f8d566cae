// CPU elementwise kernels (runtime/cpu/kernels_elementwise.cc, kernels_unary.cc) run one at a
// time through RunKernel. Where each expected value comes from is noted per test: "by hand"
// (small exact values), "std::" (the C++ math library evaluated in the stated precision, with
// the ONNX formula), or "naive loop" (an index loop in the test).
#include "runtime/cpu/kernels_elementwise.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "ir/float16.h"
#include "ir/float_math.h"
#include "tests/unit/kernel_test_util.h"

namespace ampc {
namespace {

using testing::OwnedTensor;
using testing::RunKernel;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

OwnedTensor T(DType t, std::vector<int64_t> dims, const std::vector<double>& v) {
  return OwnedTensor::From(t, std::move(dims), v);
}
OwnedTensor F32(std::vector<int64_t> dims, const std::vector<double>& v) {
  return T(DType::kFloat32, std::move(dims), v);
}

// Runs op and returns its single output (of dtype t, shape dims); a failure is a test failure.
OwnedTensor Exec(const std::string& op, const AttributeMap& attrs,
                 std::vector<const OwnedTensor*> in, DType t, std::vector<int64_t> dims,
                 cpu::ThreadPool* pool = nullptr) {
  OwnedTensor out(t, std::move(dims));
  const Status st = RunKernel(op, attrs, std::move(in), {&out}, pool);
  EXPECT_TRUE(st.ok()) << op << ": " << st.message();
  return out;
}

// Exact comparison; NaN matches NaN.
void ExpectValues(const OwnedTensor& got, const std::vector<double>& want,
                  const std::string& what) {
  const std::vector<double> g = got.values();
  ASSERT_EQ(g.size(), want.size()) << what;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(g[i])) << what << " [" << i << "] = " << g[i];
    } else {
      EXPECT_EQ(g[i], want[i]) << what << " [" << i << "]";
    }
  }
}
void ExpectNear(const OwnedTensor& got, const std::vector<double>& want, double rel,
                const std::string& what) {
  const std::vector<double> g = got.values();
  ASSERT_EQ(g.size(), want.size()) << what;
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_NEAR(g[i], want[i], rel * std::fabs(want[i]) + 1e-30) << what << " [" << i << "]";
  }
}
std::vector<uint16_t> Bits16(const OwnedTensor& t) {
  const auto* p = t.view().as<const uint16_t>();
  return {p, p + t.view().NumElements()};
}

// ---- arithmetic --------------------------------------------------------------------------------

TEST(ElementwiseKernels, ArithmeticF32) {  // by hand (all values exact in binary)
  OwnedTensor a = F32({4}, {1.5, -2, 3, 0.25}), b = F32({4}, {0.5, 4, -1.5, 8});
  ExpectValues(Exec("Add", {}, {&a, &b}, DType::kFloat32, {4}), {2, 2, 1.5, 8.25}, "Add");
  ExpectValues(Exec("Sub", {}, {&a, &b}, DType::kFloat32, {4}), {1, -6, 4.5, -7.75}, "Sub");
  ExpectValues(Exec("Mul", {}, {&a, &b}, DType::kFloat32, {4}), {0.75, -8, -4.5, 2}, "Mul");
  ExpectValues(Exec("Div", {}, {&a, &b}, DType::kFloat32, {4}), {3, -0.5, -2, 0.03125}, "Div");
  OwnedTensor z = F32({2}, {1, -1}), zero = F32({}, {0});  // IEEE: x/0 = +-inf
  ExpectValues(Exec("Div", {}, {&z, &zero}, DType::kFloat32, {2}), {kInf, -kInf}, "Div by 0");
  OwnedTensor d1 = T(DType::kFloat64, {2}, {0.1, 1e300}),
              d2 = T(DType::kFloat64, {2}, {0.2, 1e300});
  ExpectValues(Exec("Add", {}, {&d1, &d2}, DType::kFloat64, {2}), {0.1 + 0.2, 2e300}, "f64 Add");
}

TEST(ElementwiseKernels, BroadcastScalarRowAndMiddleAxis) {
  OwnedTensor x = F32({2, 3}, {1, 2, 3, 4, 5, 6});
  OwnedTensor s = F32({}, {10}), row = F32({3}, {1, 10, 100}), col = F32({2, 1}, {-1, 1});
  // by hand
  ExpectValues(Exec("Add", {}, {&x, &s}, DType::kFloat32, {2, 3}), {11, 12, 13, 14, 15, 16},
               "scalar");
  ExpectValues(Exec("Sub", {}, {&s, &x}, DType::kFloat32, {2, 3}), {9, 8, 7, 6, 5, 4},
               "scalar first");
  ExpectValues(Exec("Mul", {}, {&x, &row}, DType::kFloat32, {2, 3}), {1, 20, 300, 4, 50, 600},
               "row");
  ExpectValues(Exec("Mul", {}, {&col, &row}, DType::kFloat32, {2, 3}), {-1, -10, -100, 1, 10, 100},
               "outer");
  // naive loop: [2,3,4] + [3,1] (middle axis) and [2,1,4] * [3,1] (both sides broadcast)
  std::vector<double> av(24), bv = {100, 200, 300}, cv(8);
  for (int i = 0; i < 24; ++i) av[i] = i;
  for (int i = 0; i < 8; ++i) cv[i] = i + 1;
  OwnedTensor a = F32({2, 3, 4}, av), b = F32({3, 1}, bv), c = F32({2, 1, 4}, cv);
  std::vector<double> want_ab(24), want_cb(24);
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j) {
      for (int k = 0; k < 4; ++k) {
        want_ab[(i * 3 + j) * 4 + k] = av[(i * 3 + j) * 4 + k] + bv[j];
        want_cb[(i * 3 + j) * 4 + k] = cv[i * 4 + k] * bv[j];
      }
    }
  }
  ExpectValues(Exec("Add", {}, {&a, &b}, DType::kFloat32, {2, 3, 4}), want_ab, "middle axis");
  ExpectValues(Exec("Mul", {}, {&c, &b}, DType::kFloat32, {2, 3, 4}), want_cb, "both sides");
  // empty output: nothing to do, no crash
  OwnedTensor e = F32({0, 3}, {});
  EXPECT_EQ(Exec("Add", {}, {&e, &row}, DType::kFloat32, {0, 3}).values().size(), 0u);
  // shapes that do not broadcast to the output are an error
  OwnedTensor bad(DType::kFloat32, {2, 3}), four = F32({4}, {1, 2, 3, 4});
  EXPECT_EQ(RunKernel("Add", {}, {&x, &four}, {&bad}).code(), StatusCode::kInvalidArgument);
}

TEST(ElementwiseKernels, LargeBroadcastOnThreadPoolMatchesNaiveLoop) {  // naive loop
  cpu::ThreadPool pool(2);
  // 613 * 1001 elements: large enough for every op here to split across the pool; the chunk
  // boundary falls inside a row and rows are not a multiple of the 64-element blocks.
  const int64_t rows = 613, cols = 1001, n = rows * cols;
  std::vector<double> xv(n), bv(cols), want(n), sum3(n), relu(n), tanh(n);
  for (int64_t i = 0; i < n; ++i) xv[i] = static_cast<double>((i * 37) % 1001) - 500;
  for (int64_t j = 0; j < cols; ++j) bv[j] = 0.5 * static_cast<double>(j % 17);
  for (int64_t i = 0; i < n; ++i) {
    want[i] = xv[i] + bv[i % cols];
    sum3[i] = want[i] + 0.25;
    relu[i] = xv[i] < 0 ? 0 : xv[i];
    tanh[i] = fmath::Tanh(static_cast<float>(xv[i] / 256));  // the kernel's own tanh
  }
  OwnedTensor x = F32({rows, cols}, xv), b = F32({cols}, bv), q = F32({}, {0.25});
  const DType kF = DType::kFloat32;
  ExpectValues(Exec("Add", {}, {&x, &b}, kF, {rows, cols}, &pool), want, "Add");
  ExpectValues(Exec("Sum", {}, {&x, &b, &q}, kF, {rows, cols}, &pool), sum3, "Sum");
  ExpectValues(Exec("Relu", {}, {&x}, kF, {rows, cols}, &pool), relu, "Relu");
  OwnedTensor xh = T(DType::kFloat16, {rows, cols}, xv), bh = T(DType::kFloat16, {cols}, bv);
  ExpectValues(Exec("Add", {}, {&xh, &bh}, DType::kFloat16, {rows, cols}, &pool), want, "f16");
  std::vector<double> scaled(n);  // |x| / 256 <= 2: exact in f32
  for (int64_t i = 0; i < n; ++i) scaled[i] = xv[i] / 256;
  OwnedTensor s = F32({rows, cols}, scaled);
  ExpectValues(Exec("Tanh", {}, {&s}, kF, {rows, cols}, &pool), tanh, "Tanh (fmath::Tanh)");
}

TEST(ElementwiseKernels, IntegerArithmeticWrapsAndTruncates) {  // by hand
  // Div truncates toward zero, as C++ and ONNX's reference (numpy's quotient cast back to int).
  OwnedTensor a = T(DType::kInt64, {4}, {7, -7, 7, -7}), b = T(DType::kInt64, {4}, {2, 2, -2, -2});
  ExpectValues(Exec("Div", {}, {&a, &b}, DType::kInt64, {4}), {3, -3, -3, 3}, "i64 Div");
  OwnedTensor a32 = T(DType::kInt32, {3}, {9, -9, 2147483647}), b32 = T(DType::kInt32, {}, {4});
  ExpectValues(Exec("Div", {}, {&a32, &b32}, DType::kInt32, {3}), {2, -2, 536870911}, "i32 Div");
  ExpectValues(Exec("Mul", {}, {&a32, &b32}, DType::kInt32, {3}), {36, -36, -4}, "i32 Mul wraps");
  OwnedTensor u1 = T(DType::kUInt8, {2}, {3, 200}), u2 = T(DType::kUInt8, {2}, {5, 100});
  ExpectValues(Exec("Sub", {}, {&u1, &u2}, DType::kUInt8, {2}), {254, 100}, "u8 Sub wraps");
  ExpectValues(Exec("Add", {}, {&u1, &u2}, DType::kUInt8, {2}), {8, 44}, "u8 Add wraps");
  OwnedTensor i1 = T(DType::kInt8, {2}, {100, -100}), i2 = T(DType::kInt8, {2}, {100, 3});
  ExpectValues(Exec("Add", {}, {&i1, &i2}, DType::kInt8, {2}), {-56, -97}, "i8 Add wraps");
  ExpectValues(Exec("Div", {}, {&i1, &i2}, DType::kInt8, {2}), {1, -33}, "i8 Div");
  // INT64_MIN / -1 and INT64_MIN * -1 wrap to INT64_MIN instead of trapping.
  OwnedTensor m(DType::kInt64, {1}), neg1 = T(DType::kInt64, {1}, {-1});
  m.view().as<int64_t>()[0] = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(Exec("Div", {}, {&m, &neg1}, DType::kInt64, {1}).view().as<int64_t>()[0],
            std::numeric_limits<int64_t>::min());
  EXPECT_EQ(Exec("Mul", {}, {&m, &neg1}, DType::kInt64, {1}).view().as<int64_t>()[0],
            std::numeric_limits<int64_t>::min());
  // integer division by zero is an error, not a crash
  OwnedTensor zero = T(DType::kInt64, {4}, {1, 0, 1, 1}), out(DType::kInt64, {4});
  const Status st = RunKernel("Div", {}, {&a, &zero}, {&out});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("division by zero"), std::string::npos) << st.message();
  OwnedTensor z8 = T(DType::kUInt8, {}, {0}), o8(DType::kUInt8, {2});
  EXPECT_EQ(RunKernel("Div", {}, {&u1, &z8}, {&o8}).code(), StatusCode::kInvalidArgument);
}

TEST(ElementwiseKernels, Pow) {
  // f32 (std::pow in float)
  OwnedTensor a = F32({3}, {2, 3, 4}), b = F32({3}, {2, 0.5, -1});
  ExpectValues(Exec("Pow", {}, {&a, &b}, DType::kFloat32, {3}), {4, std::pow(3.0f, 0.5f), 0.25},
               "f32");
  OwnedTensor e64 = T(DType::kInt64, {}, {3}), f = F32({2}, {1.5, -2});  // by hand
  ExpectValues(Exec("Pow", {}, {&f, &e64}, DType::kFloat32, {2}), {3.375, -8}, "f32 ^ i64");
  // int32 base, float exponent (ONNX test_pow_types_int32_float32): by hand
  OwnedTensor ib = T(DType::kInt32, {3}, {1, 2, 3}), fe = F32({3}, {4, 5, 6});
  ExpectValues(Exec("Pow", {}, {&ib, &fe}, DType::kInt32, {3}), {1, 32, 729}, "i32 ^ f32");
  // integer ^ integer is exact; negative exponents truncate (by hand)
  OwnedTensor lb = T(DType::kInt64, {6}, {2, -3, 5, 2, 1, -1}),
              le = T(DType::kInt64, {6}, {62, 3, 0, -1, -5, -3});
  ExpectValues(Exec("Pow", {}, {&lb, &le}, DType::kInt64, {6}),
               {4611686018427387904.0, -27, 1, 0, 1, -1}, "i64 ^ i64");
  OwnedTensor zb = T(DType::kInt64, {1}, {0}), ne = T(DType::kInt64, {1}, {-1}),
              o(DType::kInt64, {1});
  EXPECT_EQ(RunKernel("Pow", {}, {&zb, &ne}, {&o}).code(), StatusCode::kInvalidArgument);
  // f16 base: fp32 pow then one rounding (std::pow in float, rounded by ir/float16.h)
  OwnedTensor hb = T(DType::kFloat16, {2}, {1.5, 10}), he = T(DType::kFloat16, {2}, {0.5, 3});
  ExpectValues(Exec("Pow", {}, {&hb, &he}, DType::kFloat16, {2}),
               {RoundToHalf(std::pow(1.5f, 0.5f)), 1000}, "f16");
}

// ---- variadic ----------------------------------------------------------------------------------

TEST(ElementwiseKernels, SumMeanMaxMin) {  // by hand
  OwnedTensor a = F32({2, 2}, {1, 2, 3, 4}), b = F32({2}, {10, 20}), c = F32({}, {100});
  ExpectValues(Exec("Sum", {}, {&a, &b, &c}, DType::kFloat32, {2, 2}), {111, 122, 113, 124}, "Sum");
  // Mean: the fp32 sum divided by 3 in fp32
  ExpectValues(Exec("Mean", {}, {&a, &b, &c}, DType::kFloat32, {2, 2}),
               {111.0f / 3.0f, 122.0f / 3.0f, 113.0f / 3.0f, 124.0f / 3.0f}, "Mean");
  ExpectValues(Exec("Sum", {}, {&a}, DType::kFloat32, {2, 2}), {1, 2, 3, 4}, "Sum of one");
  OwnedTensor m1 = F32({4}, {1, kNaN, -3, 5}), m2 = F32({4}, {2, 0, kNaN, -5}), m3 = F32({}, {4});
  ExpectValues(Exec("Max", {}, {&m1, &m2, &m3}, DType::kFloat32, {4}), {4, kNaN, kNaN, 5}, "Max");
  ExpectValues(Exec("Min", {}, {&m1, &m2, &m3}, DType::kFloat32, {4}), {1, kNaN, kNaN, -5}, "Min");
  OwnedTensor i1 = T(DType::kInt32, {3}, {5, -7, 0}), i2 = T(DType::kInt32, {3}, {-5, 7, 1});
  ExpectValues(Exec("Max", {}, {&i1, &i2}, DType::kInt32, {3}), {5, 7, 1}, "i32 Max");
  ExpectValues(Exec("Min", {}, {&i1, &i2}, DType::kInt32, {3}), {-5, -7, 0}, "i32 Min");
  // f16 Sum rounds once: 2048 + 1 + 1 = 2050 exactly in fp32 (pairwise f16 rounding would give
  // 2048 + 1 -> 2048 (tie to even), + 1 -> 2048).
  OwnedTensor h1 = T(DType::kFloat16, {1}, {2048}), h2 = T(DType::kFloat16, {1}, {1});
  ExpectValues(Exec("Sum", {}, {&h1, &h2, &h2}, DType::kFloat16, {1}), {2050}, "f16 Sum");
  ExpectValues(Exec("Mean", {}, {&h1, &h2, &h2}, DType::kFloat16, {1}),
               {RoundToHalf(2050.0f / 3.0f)}, "f16 Mean");
}

// ---- comparisons, logic, Where -----------------------------------------------------------------

TEST(ElementwiseKernels, Comparisons) {  // by hand (IEEE: NaN compares false, -0 == 0)
  OwnedTensor a = F32({5}, {1, 2, kNaN, -0.0, 3}), b = F32({5}, {2, 2, kNaN, 0, 1});
  const DType kB = DType::kBool;
  ExpectValues(Exec("Equal", {}, {&a, &b}, kB, {5}), {0, 1, 0, 1, 0}, "Equal");
  ExpectValues(Exec("Less", {}, {&a, &b}, kB, {5}), {1, 0, 0, 0, 0}, "Less");
  ExpectValues(Exec("Greater", {}, {&a, &b}, kB, {5}), {0, 0, 0, 0, 1}, "Greater");
  ExpectValues(Exec("LessOrEqual", {}, {&a, &b}, kB, {5}), {1, 1, 0, 1, 0}, "LessOrEqual");
  ExpectValues(Exec("GreaterOrEqual", {}, {&a, &b}, kB, {5}), {0, 1, 0, 1, 1}, "GreaterOrEqual");
  // int64 compares exactly (2^53 + 1 vs 2^53 differ, though equal as doubles)
  OwnedTensor i(DType::kInt64, {2}), j(DType::kInt64, {});
  i.view().as<int64_t>()[0] = (int64_t{1} << 53) + 1;
  i.view().as<int64_t>()[1] = int64_t{1} << 53;
  j.view().as<int64_t>()[0] = int64_t{1} << 53;
  ExpectValues(Exec("Equal", {}, {&i, &j}, kB, {2}), {0, 1}, "i64 Equal");
  ExpectValues(Exec("Greater", {}, {&i, &j}, kB, {2}), {1, 0}, "i64 Greater");
  OwnedTensor h = T(DType::kFloat16, {2}, {0.5, -1}), hs = T(DType::kFloat16, {}, {0.5});
  ExpectValues(Exec("GreaterOrEqual", {}, {&h, &hs}, kB, {2}), {1, 0}, "f16");
  OwnedTensor p = T(kB, {4}, {0, 0, 1, 1}), q = T(kB, {4}, {0, 1, 0, 1});
  ExpectValues(Exec("Equal", {}, {&p, &q}, kB, {4}), {1, 0, 0, 1}, "bool Equal");
}

TEST(ElementwiseKernels, LogicOps) {  // truth tables, by hand
  const DType kB = DType::kBool;
  OwnedTensor p = T(kB, {4}, {0, 0, 1, 1}), q = T(kB, {4}, {0, 1, 0, 1});
  ExpectValues(Exec("And", {}, {&p, &q}, kB, {4}), {0, 0, 0, 1}, "And");
  ExpectValues(Exec("Or", {}, {&p, &q}, kB, {4}), {0, 1, 1, 1}, "Or");
  ExpectValues(Exec("Xor", {}, {&p, &q}, kB, {4}), {0, 1, 1, 0}, "Xor");
  ExpectValues(Exec("Not", {}, {&p}, kB, {4}), {1, 1, 0, 0}, "Not");
  OwnedTensor col = T(kB, {2, 1}, {1, 0}), row = T(kB, {3}, {1, 0, 1});
  ExpectValues(Exec("And", {}, {&col, &row}, kB, {2, 3}), {1, 0, 1, 0, 0, 0}, "And broadcast");
  OwnedTensor f = F32({1}, {1}), out(kB, {1});
  EXPECT_FALSE(RunKernel("And", {}, {&f, &f}, {&out}).ok());  // only bool
}

TEST(ElementwiseKernels, Where) {  // by hand
  OwnedTensor c = T(DType::kBool, {2, 1}, {1, 0}), x = F32({2, 3}, {1, 2, 3, 4, 5, 6}),
              y = F32({}, {-1});
  ExpectValues(Exec("Where", {}, {&c, &x, &y}, DType::kFloat32, {2, 3}), {1, 2, 3, -1, -1, -1},
               "f32");
  // f16 moves bits unchanged, NaN payload included
  OwnedTensor hx(DType::kFloat16, {2}), hy(DType::kFloat16, {2}), hc = T(DType::kBool, {2}, {1, 0});
  hx.view().as<uint16_t>()[0] = 0x7e01;
  hx.view().as<uint16_t>()[1] = 0x3c00;
  hy.view().as<uint16_t>()[0] = 0x0001;
  hy.view().as<uint16_t>()[1] = 0x8000;
  EXPECT_EQ(Bits16(Exec("Where", {}, {&hc, &hx, &hy}, DType::kFloat16, {2})),
            (std::vector<uint16_t>{0x7e01, 0x8000}));
  OwnedTensor ix = T(DType::kInt64, {3}, {1, 2, 3}), iy = T(DType::kInt64, {3}, {-1, -2, -3}),
              ic = T(DType::kBool, {3}, {0, 1, 0});
  ExpectValues(Exec("Where", {}, {&ic, &ix, &iy}, DType::kInt64, {3}), {-1, 2, -3}, "i64");
}

// ---- unary math
// ----------------------------------------------------------------------------------

TEST(ElementwiseKernels, ActivationsF32) {  // std:: in float, ONNX formulas
  const std::vector<float> xs = {-2.5f, -0.5f, 0.0f, 0.5f, 3.0f};
  const std::vector<double> xd(xs.begin(), xs.end());
  OwnedTensor x = F32({5}, xd);
  auto expect = [&](const std::string& op, const AttributeMap& attrs, float (*f)(float)) {
    std::vector<double> want;
    for (float v : xs) want.push_back(f(v));
    ExpectNear(Exec(op, attrs, {&x}, DType::kFloat32, {5}), want, 1e-6, op);
  };
  expect("Relu", {}, [](float v) { return std::max(v, 0.0f); });
  expect("LeakyRelu", {}, [](float v) { return v < 0 ? 0.01f * v : v; });
  expect("LeakyRelu", {{"alpha", 0.2f}}, [](float v) { return v < 0 ? 0.2f * v : v; });
  expect("Elu", {}, [](float v) { return v < 0 ? std::exp(v) - 1.0f : v; });
  expect("Elu", {{"alpha", 2.0f}}, [](float v) { return v < 0 ? 2.0f * (std::exp(v) - 1.0f) : v; });
  expect("Selu", {}, [](float v) {
    const float alpha = 1.67326319217681884765625f, gamma = 1.05070102214813232421875f;
    return v <= 0 ? gamma * (alpha * std::exp(v) - alpha) : gamma * v;
  });
  expect("Tanh", {}, [](float v) { return std::tanh(v); });
  expect("Sigmoid", {}, [](float v) { return 1.0f / (1.0f + std::exp(-v)); });
  expect("HardSigmoid", {}, [](float v) { return std::clamp(0.2f * v + 0.5f, 0.0f, 1.0f); });
  expect("HardSigmoid", {{"alpha", 0.5f}, {"beta", 0.25f}},
         [](float v) { return std::clamp(0.5f * v + 0.25f, 0.0f, 1.0f); });
  expect("Softplus", {}, [](float v) { return std::log(std::exp(v) + 1.0f); });
  expect("Erf", {}, [](float v) { return std::erf(v); });
  expect("Exp", {}, [](float v) { return std::exp(v); });
  expect("Neg", {}, [](float v) { return -v; });
  expect("Abs", {}, [](float v) { return std::fabs(v); });
  expect("Floor", {}, [](float v) { return std::floor(v); });
  expect("Ceil", {}, [](float v) { return std::ceil(v); });
  expect("Sign", {}, [](float v) { return v > 0 ? 1.0f : v < 0 ? -1.0f : 0.0f; });
  expect("Identity", {}, [](float v) { return v; });
  OwnedTensor pos = F32({4}, {0.25, 1, 2, 9});  // Sqrt / Log / Reciprocal: std:: in float
  ExpectValues(Exec("Sqrt", {}, {&pos}, DType::kFloat32, {4}), {0.5, 1, std::sqrt(2.0f), 3},
               "Sqrt");
  ExpectValues(Exec("Log", {}, {&pos}, DType::kFloat32, {4}),
               {std::log(0.25f), 0, std::log(2.0f), std::log(9.0f)}, "Log");
  ExpectValues(Exec("Reciprocal", {}, {&pos}, DType::kFloat32, {4}), {4, 1, 0.5, 1.0f / 9.0f},
               "Reciprocal");
  // Stable forms at the extremes (by hand): no overflow to NaN / inf.
  OwnedTensor big = F32({2}, {-100, 100});
  ExpectValues(Exec("Sigmoid", {}, {&big}, DType::kFloat32, {2}), {std::exp(-100.0f), 1},
               "Sigmoid");
  ExpectValues(Exec("Softplus", {}, {&big}, DType::kFloat32, {2}), {std::exp(-100.0f), 100},
               "Softplus");
  // NaN passes through Relu (numpy maximum) and Abs
  OwnedTensor n = F32({1}, {kNaN});
  ExpectValues(Exec("Relu", {}, {&n}, DType::kFloat32, {1}), {kNaN}, "Relu NaN");
}

TEST(ElementwiseKernels, UnaryOtherTypes) {
  // f64: std:: in double
  OwnedTensor d = T(DType::kFloat64, {2}, {0.1, -1.3});
  ExpectValues(Exec("Exp", {}, {&d}, DType::kFloat64, {2}), {std::exp(0.1), std::exp(-1.3)},
               "f64 Exp");
  ExpectValues(Exec("Tanh", {}, {&d}, DType::kFloat64, {2}), {std::tanh(0.1), std::tanh(-1.3)},
               "f64 Tanh");
  // f16 / bf16: std:: in float, rounded once (ir/float16.h)
  OwnedTensor h = T(DType::kFloat16, {2}, {0.5, -3});
  ExpectValues(Exec("Exp", {}, {&h}, DType::kFloat16, {2}),
               {RoundToHalf(std::exp(0.5f)), RoundToHalf(std::exp(-3.0f))}, "f16 Exp");
  OwnedTensor bh = T(DType::kBFloat16, {2}, {0.5, -3});
  ExpectValues(Exec("Erf", {}, {&bh}, DType::kBFloat16, {2}),
               {RoundToBFloat16(std::erf(0.5f)), RoundToBFloat16(std::erf(-3.0f))}, "bf16 Erf");
  // integers (by hand): Relu / Neg / Abs / Sign
  OwnedTensor i = T(DType::kInt32, {4}, {-5, 0, 7, -2147483648.0});
  ExpectValues(Exec("Relu", {}, {&i}, DType::kInt32, {4}), {0, 0, 7, 0}, "i32 Relu");
  ExpectValues(Exec("Neg", {}, {&i}, DType::kInt32, {4}), {5, 0, -7, -2147483648.0}, "i32 Neg");
  ExpectValues(Exec("Abs", {}, {&i}, DType::kInt32, {4}), {5, 0, 7, -2147483648.0}, "i32 Abs");
  ExpectValues(Exec("Sign", {}, {&i}, DType::kInt32, {4}), {-1, 0, 1, -1}, "i32 Sign");
  OwnedTensor u = T(DType::kUInt8, {2}, {0, 200});
  ExpectValues(Exec("Abs", {}, {&u}, DType::kUInt8, {2}), {0, 200}, "u8 Abs");
  ExpectValues(Exec("Sign", {}, {&u}, DType::kUInt8, {2}), {0, 1}, "u8 Sign");
  OwnedTensor bad_out(DType::kInt32, {4});
  EXPECT_FALSE(RunKernel("Tanh", {}, {&i}, {&bad_out}).ok());  // float-only op
}

TEST(ElementwiseKernels, IsNaNAndIsInf) {  // by hand
  OwnedTensor x = F32({5}, {1, kNaN, kInf, -kInf, -0.0});
  const DType kB = DType::kBool;
  ExpectValues(Exec("IsNaN", {}, {&x}, kB, {5}), {0, 1, 0, 0, 0}, "IsNaN");
  ExpectValues(Exec("IsInf", {}, {&x}, kB, {5}), {0, 0, 1, 1, 0}, "IsInf");
  ExpectValues(Exec("IsInf", {{"detect_negative", int64_t{0}}}, {&x}, kB, {5}), {0, 0, 1, 0, 0},
               "IsInf +");
  ExpectValues(Exec("IsInf", {{"detect_positive", int64_t{0}}}, {&x}, kB, {5}), {0, 0, 0, 1, 0},
               "IsInf -");
  OwnedTensor h = T(DType::kFloat16, {3}, {kNaN, 70000, 1});  // 70000 -> inf in f16
  ExpectValues(Exec("IsInf", {}, {&h}, kB, {3}), {0, 1, 0}, "f16 IsInf");
  ExpectValues(Exec("IsNaN", {}, {&h}, kB, {3}), {1, 0, 0}, "f16 IsNaN");
}

// ---- f16 / bf16 rounding of results ------------------------------------------------------------

// The kernels' branch-free f16 conversions equal ir/float16.h's (float16_test checks those
// against CUDA and numpy): every half decoded; encoded: every half value, every midpoint between
// neighbours and the floats one ulp either side, and every 4099th float bit pattern.
TEST(ElementwiseKernels, FastHalfConversionsMatchFloat16H) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const auto h = static_cast<uint16_t>(b);
    ASSERT_EQ(FloatToBits(cpu::ew::HalfToFloatFast(h)), FloatToBits(HalfBitsToFloat(h))) << b;
  }
  int64_t bad = 0;
  auto check = [&bad](float f) {
    if (cpu::ew::FloatToHalfFast(f) != FloatToHalfBits(f) && bad++ < 5) {
      ADD_FAILURE() << "float bits " << std::hex << FloatToBits(f);
    }
  };
  for (uint32_t b = 0; b < 0x7c00; ++b) {
    const float lo = HalfBitsToFloat(static_cast<uint16_t>(b));
    const float hi = b == 0x7bff ? 65536.0f : HalfBitsToFloat(static_cast<uint16_t>(b + 1));
    const float mid = (lo + hi) / 2;  // exact
    for (float f : {lo, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) {
      check(f);
      check(-f);
    }
  }
  for (uint64_t b = 0; b < (uint64_t{1} << 32); b += 4099) {
    check(BitsToFloat(static_cast<uint32_t>(b)));
  }
  EXPECT_EQ(bad, 0);
}

TEST(ElementwiseKernels, HalfResultsRoundOnceToNearestEven) {  // by hand
  // f16 ulp is 2 on [2048, 4096): 2048+1 = 2049 is a tie -> 2048 (even); 2050+1 -> 2052 (even).
  OwnedTensor a = T(DType::kFloat16, {4}, {2048, 2050, 60000, 65504}),
              b = T(DType::kFloat16, {4}, {1, 1, 10000, 16});
  // 60000+10000 = 70000 > 65504 -> inf; 65504+16 = 65520, the overflow tie -> inf (even).
  ExpectValues(Exec("Add", {}, {&a, &b}, DType::kFloat16, {4}), {2048, 2052, kInf, kInf}, "f16");
  OwnedTensor c = T(DType::kFloat16, {1}, {65504}), d = T(DType::kFloat16, {1}, {8});
  ExpectValues(Exec("Add", {}, {&c, &d}, DType::kFloat16, {1}), {65504}, "below the tie");
  // bf16 ulp is 2 on [256, 512): 256+1 -> 256, 258+1 -> 260; bf16 keeps fp32's range.
  OwnedTensor e = T(DType::kBFloat16, {3}, {256, 258, 1e38}),
              f = T(DType::kBFloat16, {3}, {1, 1, 2});
  ExpectValues(Exec("Add", {}, {&e, &f}, DType::kBFloat16, {3}),
               {256, 260, RoundToBFloat16(RoundToBFloat16(1e38f) + 2)}, "bf16 Add");
  ExpectValues(Exec("Mul", {}, {&e, &f}, DType::kBFloat16, {3}),
               {256, 258, RoundToBFloat16(RoundToBFloat16(1e38f) * 2)}, "bf16 Mul");
  EXPECT_TRUE(std::isfinite(RoundToBFloat16(RoundToBFloat16(1e38f) * 2)));
}

// ---- Cast
// ----------------------------------------------------------------------------------------

// Reference for a value to f16 / bf16 bits: the nearest pattern by value (binary search over the
// monotone positive patterns, decoded by ir/float16.h's exact decoders, which float16_test checks
// exhaustively), ties to the even pattern, and infinity from the overflow midpoint upward.
uint16_t NearestBits(double v, bool bf16) {
  const uint16_t inf = bf16 ? 0x7f80 : 0x7c00;
  if (std::isnan(v)) return inf | 1;  // some NaN: compared by NaN-ness
  const auto sign = static_cast<uint16_t>(std::signbit(v) ? 0x8000 : 0);
  auto val = [bf16](uint32_t b) {
    return double{bf16 ? BFloat16BitsToFloat(static_cast<uint16_t>(b))
                       : HalfBitsToFloat(static_cast<uint16_t>(b))};
  };
  const double a = std::fabs(v), beyond = bf16 ? std::ldexp(1.0, 128) : 65536.0;
  if (a >= (val(inf - 1u) + beyond) / 2) return sign | inf;
  uint32_t lo = 0, hi = inf - 1u;  // largest pattern with value <= a
  while (lo < hi) {
    const uint32_t mid = (lo + hi + 1) / 2;
    if (val(mid) <= a)
      lo = mid;
    else
      hi = mid - 1;
  }
  uint32_t best = lo;
  if (lo + 1 < inf) {
    const double dl = a - val(lo), du = val(lo + 1) - a;
    if (du < dl || (du == dl && (lo & 1))) best = lo + 1;
  }
  return static_cast<uint16_t>(sign | best);
}

// Source values for each dtype (stored with rounding into it; the stored values are what the
// reference converts): NaN, infinities, -0.0, subnormals, ties, out-of-range values.
std::vector<double> CastSources(DType t) {
  switch (t) {
    case DType::kFloat32:
      return {kNaN,   kInf,   -kInf,    -0.0,  1e-40, 2.5,  -2.5,
              300.75, -129.5, 65519.99, 70000, 3e9,   1e20, 0.1};
    case DType::kFloat16:
      return {kNaN,   kInf,   -kInf, -0.0, 5.9604644775390625e-08, 3e-5, 2.5, -2.5,
              300.75, -129.5, 65504, 0.1};
    case DType::kBFloat16:
      return {kNaN, kInf, -kInf, -0.0, 1e-39, 2.5, -2.5, 300, -129, 1e30, 3e38, 0.1};
    case DType::kFloat64:
      return {kNaN,   kInf,   -kInf, -0.0,  1e-310, 1e-8, 2.5, -2.5,
              300.75, -129.5, 65520, 1e300, 3e9,    -3e9, 0.1};
    case DType::kInt64:
      return {0,
              1,
              -1,
              127,
              128,
              -129,
              255,
              256,
              65504,
              65520,
              2147483648.0,
              -1099511627776.0,
              16842753,
              9007199254740992.0};
    case DType::kInt32:
      return {0, 1, -1, 127, 128, -129, 255, 256, 2049, 2051, 2147483647, -2147483648.0};
    case DType::kInt8:
      return {0, 1, -1, 127, -128, 100};
    case DType::kUInt8:
      return {0, 1, 127, 128, 255};
    case DType::kBool:
      return {0, 1};
    case DType::kUndefined:
      break;
  }
  return {};
}

// Integer target: floats truncate toward zero, saturate, NaN -> 0 (ampc's rule; ONNX leaves
// out-of-range values undefined); integers wrap modulo 2^bits.
double IntRef(double v, DType src, DType dst) {
  const int bits = DTypeSize(dst) * 8;
  const bool is_unsigned = dst == DType::kUInt8;
  const double lo = is_unsigned ? 0 : -std::ldexp(1.0, bits - 1);
  const double hi = is_unsigned ? std::ldexp(1.0, bits) - 1 : std::ldexp(1.0, bits - 1) - 1;
  if (IsFloat(src)) {
    if (std::isnan(v)) return 0;
    return std::clamp(std::trunc(v), lo, hi);
  }
  if (bits == 64) return v;
  const double m = std::ldexp(1.0, bits);
  double r = std::fmod(v, m);  // exact
  if (r < lo) r += m;
  if (r > hi) r -= m;
  return r;
}

TEST(ElementwiseKernels, CastEveryPairAgainstReference) {  // reference: NearestBits / IntRef / C++
  for (DType src : kAllDTypes) {
    OwnedTensor in = T(src, {static_cast<int64_t>(CastSources(src).size())}, CastSources(src));
    const std::vector<double> sv = in.values();  // exact stored values
    for (DType dst : kAllDTypes) {
      const std::string what = std::string(DTypeName(src)) + " -> " + std::string(DTypeName(dst));
      OwnedTensor out(dst, in.view().dims);
      const Status st = RunKernel("Cast", {}, {&in}, {&out});
      ASSERT_TRUE(st.ok()) << what << ": " << st.message();
      const std::vector<double> got = out.values();
      for (size_t i = 0; i < sv.size(); ++i) {
        const double v = sv[i];
        const std::string at = what + " of " + std::to_string(v);
        if (IsHalf(dst)) {
          const uint16_t want = NearestBits(v, dst == DType::kBFloat16);
          const uint16_t g = out.view().as<const uint16_t>()[i];
          const uint16_t inf = dst == DType::kBFloat16 ? 0x7f80 : 0x7c00;
          if ((want & 0x7fff) > inf) {
            EXPECT_GT(g & 0x7fff, inf) << at << " (NaN)";
          } else {
            EXPECT_EQ(g, want) << at;
          }
        } else if (IsFloat(dst)) {
          const double want = dst == DType::kFloat32 ? double{static_cast<float>(v)} : v;
          if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(got[i])) << at;
          } else {
            EXPECT_EQ(got[i], want) << at;
            EXPECT_EQ(std::signbit(got[i]), std::signbit(want)) << at << " (sign of zero)";
          }
        } else if (dst == DType::kBool) {
          EXPECT_EQ(got[i], v != 0 ? 1.0 : 0.0) << at;  // NaN != 0
        } else {
          EXPECT_EQ(got[i], IntRef(v, src, dst)) << at;
        }
      }
    }
  }
}

TEST(ElementwiseKernels, CastSpecialValuesByHand) {
  // f32 -> f16 bits: quiet NaN, inf, -0, 2^-25 (tie with 0 -> 0), 3*2^-26 (-> 2^-24),
  // 65520 (overflow tie -> inf), -65519 (-> -65504)
  OwnedTensor f =
      F32({7}, {kNaN, kInf, -0.0, std::ldexp(1.0, -25), 3 * std::ldexp(1.0, -26), 65520, -65519});
  OwnedTensor h = Exec("Cast", {{"to", int64_t{10}}}, {&f}, DType::kFloat16, {7});
  const std::vector<uint16_t> hb = Bits16(h);
  EXPECT_EQ(hb[0] & 0x7e00, 0x7e00);  // quiet NaN
  EXPECT_EQ(std::vector<uint16_t>(hb.begin() + 1, hb.end()),
            (std::vector<uint16_t>{0x7c00, 0x8000, 0x0000, 0x0001, 0x7c00, 0xfbff}));
  // one rounding from f64: 2049 + 2^-30 -> 2050 (through fp32 it would be the tie 2049 -> 2048)
  OwnedTensor d = T(DType::kFloat64, {1}, {2049 + std::ldexp(1.0, -30)});
  ExpectValues(Exec("Cast", {{"to", int64_t{10}}}, {&d}, DType::kFloat16, {1}), {2050}, "f64->f16");
  // and from int64: 2^24 + 2^16 + 1 -> bf16 2^24 + 2^17 (through fp32: 2^24 + 2^16, a tie -> 2^24)
  OwnedTensor i = T(DType::kInt64, {1}, {16842753});
  ExpectValues(Exec("Cast", {{"to", int64_t{16}}}, {&i}, DType::kBFloat16, {1}), {16908288},
               "i64->bf16");
  // f32 -> i8 saturates, truncates, NaN -> 0; i64 -> i8 wraps; -> bool is != 0
  OwnedTensor g = F32({4}, {300.7, -1e9, kNaN, -2.9});
  ExpectValues(Exec("Cast", {{"to", int64_t{3}}}, {&g}, DType::kInt8, {4}), {127, -128, 0, -2},
               "f32->i8");
  OwnedTensor w = T(DType::kInt64, {2}, {300, -129});
  ExpectValues(Exec("Cast", {{"to", int64_t{3}}}, {&w}, DType::kInt8, {2}), {44, 127}, "i64->i8");
  OwnedTensor z = F32({3}, {kNaN, -0.0, 0.5});
  ExpectValues(Exec("Cast", {{"to", int64_t{9}}}, {&z}, DType::kBool, {3}), {1, 0, 1}, "f32->bool");
  // CastLike takes the type of its second input
  OwnedTensor like = T(DType::kInt32, {1}, {0}), x = F32({2}, {-1.5, 7.9});
  ExpectValues(Exec("CastLike", {}, {&x, &like}, DType::kInt32, {2}), {-1, 7}, "CastLike");
  // 'to' disagreeing with the planned output dtype is an error
  OwnedTensor o(DType::kInt32, {2});
  EXPECT_FALSE(RunKernel("Cast", {{"to", int64_t{1}}}, {&x}, {&o}).ok());
}

// ---- Clip, Dropout, Trilu ----------------------------------------------------------------------

TEST(ElementwiseKernels, Clip) {  // by hand (numpy.clip semantics: max(x, lo) then min(., hi))
  OwnedTensor x = F32({6}, {-3, -1, 0, 2, 5, kNaN});
  OwnedTensor lo = F32({}, {0}), hi = F32({}, {3}), big = F32({}, {5}), one = F32({}, {1});
  const DType kF = DType::kFloat32;
  ExpectValues(Exec("Clip", {}, {&x, &lo, &hi}, kF, {6}), {0, 0, 0, 2, 3, kNaN}, "both");
  ExpectValues(Exec("Clip", {}, {&x, nullptr, &hi}, kF, {6}), {-3, -1, 0, 2, 3, kNaN}, "max only");
  ExpectValues(Exec("Clip", {}, {&x, &lo}, kF, {6}), {0, 0, 0, 2, 5, kNaN}, "min only");
  ExpectValues(Exec("Clip", {}, {&x}, kF, {6}), {-3, -1, 0, 2, 5, kNaN}, "none");
  ExpectValues(Exec("Clip", {}, {&x, &big, &one}, kF, {6}), {1, 1, 1, 1, 1, kNaN}, "min > max");
  ExpectValues(Exec("Clip", {{"min", -1.5f}, {"max", 1.5f}}, {&x}, kF, {6}),
               {-1.5, -1, 0, 1.5, 1.5, kNaN}, "opset-6 attributes");
  OwnedTensor xi = T(DType::kInt32, {3}, {-5, 0, 5}), li = T(DType::kInt32, {}, {-1}),
              hi32 = T(DType::kInt32, {}, {1});
  ExpectValues(Exec("Clip", {}, {&xi, &li, &hi32}, DType::kInt32, {3}), {-1, 0, 1}, "i32");
  OwnedTensor xh = T(DType::kFloat16, {2}, {-7, 7}), lh = T(DType::kFloat16, {}, {-0.5});
  ExpectValues(Exec("Clip", {}, {&xh, &lh}, DType::kFloat16, {2}), {-0.5, 7}, "f16");
}

TEST(ElementwiseKernels, DropoutInference) {  // by hand
  OwnedTensor x = F32({2, 2}, {1, -2, 3, kNaN});
  OwnedTensor y(DType::kFloat32, {2, 2}), mask(DType::kBool, {2, 2});
  ASSERT_TRUE(RunKernel("Dropout", {}, {&x}, {&y, &mask}).ok());
  ExpectValues(y, {1, -2, 3, kNaN}, "output");
  ExpectValues(mask, {1, 1, 1, 1}, "mask");
  OwnedTensor ratio = F32({}, {0.5}), off = T(DType::kBool, {}, {0}), on = T(DType::kBool, {}, {1});
  OwnedTensor zero = F32({}, {0});
  ASSERT_TRUE(RunKernel("Dropout", {}, {&x, &ratio, &off}, {&y, nullptr}).ok());
  ExpectValues(y, {1, -2, 3, kNaN}, "training off");
  ASSERT_TRUE(RunKernel("Dropout", {}, {&x, &zero, &on}, {&y, &mask}).ok());  // ratio 0: identity
  ExpectValues(y, {1, -2, 3, kNaN}, "ratio 0");
  // Training mode with ratio > 0: tests/unit/dropout_test.cc.
}

TEST(ElementwiseKernels, Trilu) {  // by hand
  std::vector<double> v(12);
  for (int i = 0; i < 12; ++i) v[i] = i + 1;
  OwnedTensor x = F32({3, 4}, v);
  auto k = [](double kv) { return T(DType::kInt64, {}, {kv}); };
  const DType kF = DType::kFloat32;
  ExpectValues(Exec("Trilu", {}, {&x}, kF, {3, 4}), {1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12},
               "upper");
  ExpectValues(Exec("Trilu", {{"upper", int64_t{0}}}, {&x}, kF, {3, 4}),
               {1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0}, "lower");
  OwnedTensor k1 = k(1), km1 = k(-1), k100 = k(100), km100 = k(-100);
  ExpectValues(Exec("Trilu", {}, {&x, &k1}, kF, {3, 4}), {0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12},
               "upper k=1");
  ExpectValues(Exec("Trilu", {{"upper", int64_t{0}}}, {&x, &km1}, kF, {3, 4}),
               {0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0}, "lower k=-1");
  ExpectValues(Exec("Trilu", {}, {&x, &k100}, kF, {3, 4}), std::vector<double>(12, 0),
               "upper k=100");
  ExpectValues(Exec("Trilu", {}, {&x, &km100}, kF, {3, 4}), v, "upper k=-100");
  ExpectValues(Exec("Trilu", {{"upper", int64_t{0}}}, {&x, &k100}, kF, {3, 4}), v, "lower k=100");
  OwnedTensor b = T(DType::kInt64, {2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  ExpectValues(Exec("Trilu", {}, {&b}, DType::kInt64, {2, 2, 2}), {1, 2, 0, 4, 5, 6, 0, 8},
               "batch");
}

}  // namespace
}  // namespace ampc
