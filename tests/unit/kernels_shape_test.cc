// CPU shape kernels (runtime/cpu/kernels_shape*.cc) run one at a time through RunKernel.
// Expected values are either written by hand (small cases, noted "by hand") or computed by a
// naive index loop in the test (noted "naive loop"); the data movers must be bit-exact.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "ir/float16.h"
#include "tests/unit/kernel_test_util.h"

namespace ampc {
namespace {

using testing::OwnedTensor;
using testing::RunKernel;

OwnedTensor T(DType t, std::vector<int64_t> dims, const std::vector<double>& v) {
  return OwnedTensor::From(t, std::move(dims), v);
}
OwnedTensor F32(std::vector<int64_t> dims, const std::vector<double>& v) {
  return T(DType::kFloat32, std::move(dims), v);
}
OwnedTensor I64(std::vector<int64_t> dims, const std::vector<double>& v) {
  return T(DType::kInt64, std::move(dims), v);
}
OwnedTensor I64s(const std::vector<double>& v) { return I64({static_cast<int64_t>(v.size())}, v); }
// 0, 1, 2, ... in dtype t.
OwnedTensor Iota(DType t, std::vector<int64_t> dims) {
  OwnedTensor o(t, std::move(dims));
  for (int64_t i = 0; i < o.view().NumElements(); ++i) cpu::Store<double>(o.view(), i, double(i));
  return o;
}
// f16 tensor of distinct bit patterns (some NaN payloads and subnormals too): bit-exactness.
OwnedTensor HalfBits(std::vector<int64_t> dims) {
  OwnedTensor o(DType::kFloat16, std::move(dims));
  uint16_t* p = o.view().as<uint16_t>();
  for (int64_t i = 0; i < o.view().NumElements(); ++i) {
    p[i] = static_cast<uint16_t>(i * 7919 + 13);
  }
  return o;
}
std::vector<uint8_t> Bytes(const OwnedTensor& t) {
  const auto* p = static_cast<const uint8_t*>(t.view().data);
  return {p, p + t.view().NumElements() * DTypeSize(t.view().dtype)};
}
std::vector<int64_t> Strides(const std::vector<int64_t>& d) {
  std::vector<int64_t> s(d.size(), 1);
  for (size_t a = d.size(); a-- > 1;) s[a - 1] = s[a] * d[a];
  return s;
}
// Multi-index of linear index i in dims.
std::vector<int64_t> Unravel(int64_t i, const std::vector<int64_t>& d) {
  std::vector<int64_t> idx(d.size());
  for (size_t a = d.size(); a-- > 0;) {
    idx[a] = i % d[a];
    i /= d[a];
  }
  return idx;
}

Status Run1(const std::string& op, const AttributeMap& attrs, std::vector<const OwnedTensor*> in,
            OwnedTensor* out, cpu::ThreadPool* pool = nullptr) {
  return RunKernel(op, attrs, std::move(in), {out}, pool);
}

// ---- shapes and constants --------------------------------------------------------------------

TEST(ShapeKernelTest, ShapeWithStartEnd) {  // by hand
  OwnedTensor x(DType::kFloat16, {2, 3, 4});
  OwnedTensor out(DType::kInt64, {3});
  ASSERT_TRUE(Run1("Shape", {}, {&x}, &out).ok());
  EXPECT_EQ(out.values(), (std::vector<double>{2, 3, 4}));
  OwnedTensor o2(DType::kInt64, {2});
  ASSERT_TRUE(Run1("Shape", {{"start", int64_t{1}}}, {&x}, &o2).ok());
  EXPECT_EQ(o2.values(), (std::vector<double>{3, 4}));
  OwnedTensor o3(DType::kInt64, {1});
  ASSERT_TRUE(Run1("Shape", {{"start", int64_t{-2}}, {"end", int64_t{-1}}}, {&x}, &o3).ok());
  EXPECT_EQ(o3.values(), (std::vector<double>{3}));
  OwnedTensor o4(DType::kInt64, {0});  // start past end: empty
  ASSERT_TRUE(Run1("Shape", {{"start", int64_t{5}}}, {&x}, &o4).ok());
}

TEST(ShapeKernelTest, Size) {  // by hand
  OwnedTensor x(DType::kBool, {2, 3, 5});
  OwnedTensor out(DType::kInt64, {});
  ASSERT_TRUE(Run1("Size", {}, {&x}, &out).ok());
  EXPECT_EQ(out.values(), (std::vector<double>{30}));
}

TEST(ShapeKernelTest, ConstantAllAttributeKinds) {  // by hand
  // value: an f16 tensor's raw bytes are copied.
  const std::vector<uint8_t> bytes = {0x00, 0x3c, 0x00, 0xc0, 0x01, 0x7e};  // 1, -2, NaN payload
  AttributeMap a1 = {{"value", Tensor(DType::kFloat16, {3}, bytes)}};
  OwnedTensor o1(DType::kFloat16, {3});
  ASSERT_TRUE(Run1("Constant", a1, {}, &o1).ok());
  EXPECT_EQ(Bytes(o1), bytes);

  OwnedTensor o2(DType::kFloat32, {});
  ASSERT_TRUE(Run1("Constant", {{"value_float", 2.5f}}, {}, &o2).ok());
  EXPECT_EQ(o2.values(), (std::vector<double>{2.5}));

  OwnedTensor o3(DType::kFloat32, {2});
  ASSERT_TRUE(Run1("Constant", {{"value_floats", std::vector<float>{1.5f, -3}}}, {}, &o3).ok());
  EXPECT_EQ(o3.values(), (std::vector<double>{1.5, -3}));

  OwnedTensor o4(DType::kInt64, {});
  ASSERT_TRUE(Run1("Constant", {{"value_int", int64_t{-7}}}, {}, &o4).ok());
  EXPECT_EQ(o4.values(), (std::vector<double>{-7}));

  OwnedTensor o5(DType::kInt64, {3});
  ASSERT_TRUE(Run1("Constant", {{"value_ints", std::vector<int64_t>{4, 5, -6}}}, {}, &o5).ok());
  EXPECT_EQ(o5.values(), (std::vector<double>{4, 5, -6}));

  OwnedTensor bad(DType::kInt64, {2});  // planned shape disagrees with the value
  EXPECT_FALSE(Run1("Constant", {{"value_ints", std::vector<int64_t>{4, 5, -6}}}, {}, &bad).ok());
}

TEST(ShapeKernelTest, ConstantOfShape) {  // by hand
  OwnedTensor shape = I64s({2, 3});
  OwnedTensor o1(DType::kFloat32, {2, 3});
  cpu::Store<double>(o1.view(), 4, 9.0);  // must be overwritten
  ASSERT_TRUE(Run1("ConstantOfShape", {}, {&shape}, &o1).ok());
  EXPECT_EQ(o1.values(), std::vector<double>(6, 0.0));

  AttributeMap a = {{"value", Tensor::FromInt64s({7}, {1})}};
  OwnedTensor o2(DType::kInt64, {2, 3});
  ASSERT_TRUE(Run1("ConstantOfShape", a, {&shape}, &o2).ok());
  EXPECT_EQ(o2.values(), std::vector<double>(6, 7.0));

  AttributeMap ah = {{"value", Tensor(DType::kFloat16, {1}, {0x00, 0xbc})}};  // -1.0
  OwnedTensor o3(DType::kFloat16, {2, 3});
  ASSERT_TRUE(Run1("ConstantOfShape", ah, {&shape}, &o3).ok());
  EXPECT_EQ(o3.values(), std::vector<double>(6, -1.0));

  OwnedTensor wrong(DType::kInt64, {3, 2});
  EXPECT_FALSE(Run1("ConstantOfShape", a, {&shape}, &wrong).ok());
}

TEST(ShapeKernelTest, Range) {  // by hand
  OwnedTensor s = I64({}, {0}), l = I64({}, {10}), d = I64({}, {3});
  OwnedTensor o1(DType::kInt64, {4});
  ASSERT_TRUE(RunKernel("Range", {}, {&s, &l, &d}, {&o1}).ok());
  EXPECT_EQ(o1.values(), (std::vector<double>{0, 3, 6, 9}));

  OwnedTensor fs = F32({}, {5}), fl = F32({}, {1}), fd = F32({}, {-1.5});
  OwnedTensor o2(DType::kFloat32, {3});
  ASSERT_TRUE(RunKernel("Range", {}, {&fs, &fl, &fd}, {&o2}).ok());
  EXPECT_EQ(o2.values(), (std::vector<double>{5, 3.5, 2}));

  OwnedTensor zero = I64({}, {0}), o3(DType::kInt64, {0});
  EXPECT_FALSE(RunKernel("Range", {}, {&s, &l, &zero}, {&o3}).ok());
}

// ---- reinterpreting copies -------------------------------------------------------------------

TEST(ShapeKernelTest, ReshapeFlattenSqueezeUnsqueezeIdentityAreByteCopies) {
  const OwnedTensor x = HalfBits({2, 3, 4});
  OwnedTensor shape = I64s({0, -1, 2});  // 0 copies dim 0, -1 infers 6
  OwnedTensor r(DType::kFloat16, {2, 6, 2});
  ASSERT_TRUE(RunKernel("Reshape", {}, {&x, &shape}, {&r}).ok());
  EXPECT_EQ(Bytes(r), Bytes(x));
  OwnedTensor bad_shape = I64s({5, -1});
  EXPECT_FALSE(RunKernel("Reshape", {}, {&x, &bad_shape}, {&r}).ok());

  OwnedTensor f(DType::kFloat16, {6, 4});
  ASSERT_TRUE(Run1("Flatten", {{"axis", int64_t{-1}}}, {&x}, &f).ok());
  EXPECT_EQ(Bytes(f), Bytes(x));

  const OwnedTensor y = HalfBits({1, 3, 1, 2});
  OwnedTensor axes = I64s({-2, 0});
  OwnedTensor sq(DType::kFloat16, {3, 2});
  ASSERT_TRUE(RunKernel("Squeeze", {}, {&y, &axes}, {&sq}).ok());
  EXPECT_EQ(Bytes(sq), Bytes(y));
  OwnedTensor sq_all(DType::kFloat16, {3, 2});
  ASSERT_TRUE(RunKernel("Squeeze", {}, {&y, nullptr}, {&sq_all}).ok());
  EXPECT_EQ(Bytes(sq_all), Bytes(y));
  OwnedTensor bad_axes = I64s({1});  // size 3 cannot be squeezed
  OwnedTensor sq_bad(DType::kFloat16, {1, 1, 2});
  EXPECT_FALSE(RunKernel("Squeeze", {}, {&y, &bad_axes}, {&sq_bad}).ok());

  OwnedTensor uaxes = I64s({-1, 1});
  OwnedTensor us(DType::kFloat16, {2, 1, 3, 4, 1});
  ASSERT_TRUE(RunKernel("Unsqueeze", {}, {&x, &uaxes}, {&us}).ok());
  EXPECT_EQ(Bytes(us), Bytes(x));

  OwnedTensor b = T(DType::kBool, {4}, {1, 0, 0, 1}), bo(DType::kBool, {4});
  ASSERT_TRUE(Run1("Identity", {}, {&b}, &bo).ok());
  EXPECT_EQ(Bytes(bo), Bytes(b));
}

// ---- gathers ---------------------------------------------------------------------------------

TEST(ShapeKernelTest, GatherAxis0NegativeIndices) {  // by hand
  OwnedTensor x = F32({3, 2}, {1, 2, 3, 4, 5, 6});
  OwnedTensor idx = I64({2, 2}, {-1, 0, 1, -3});
  OwnedTensor out(DType::kFloat32, {2, 2, 2});
  ASSERT_TRUE(RunKernel("Gather", {}, {&x, &idx}, {&out}).ok());
  EXPECT_EQ(out.values(), (std::vector<double>{5, 6, 1, 2, 3, 4, 1, 2}));
}

TEST(ShapeKernelTest, GatherInnerAxisInt32IndicesAndScalarIndex) {  // by hand
  OwnedTensor x = Iota(DType::kBFloat16, {2, 3, 2});
  OwnedTensor idx = T(DType::kInt32, {2}, {2, -3});
  OwnedTensor out(DType::kBFloat16, {2, 2, 2});
  ASSERT_TRUE(Run1("Gather", {{"axis", int64_t{-2}}}, {&x, &idx}, &out).ok());
  EXPECT_EQ(out.values(), (std::vector<double>{4, 5, 0, 1, 10, 11, 6, 7}));
  OwnedTensor s = I64({}, {1});  // a scalar index drops the axis
  OwnedTensor o2(DType::kBFloat16, {2, 2});
  ASSERT_TRUE(Run1("Gather", {{"axis", int64_t{1}}}, {&x, &s}, &o2).ok());
  EXPECT_EQ(o2.values(), (std::vector<double>{2, 3, 8, 9}));
}

TEST(ShapeKernelTest, GatherOutOfRangeIndexIsAnError) {
  OwnedTensor x = F32({3, 2}, {1, 2, 3, 4, 5, 6});
  OwnedTensor idx = I64s({0, 3});
  OwnedTensor out(DType::kFloat32, {2, 2});
  Status st = RunKernel("Gather", {}, {&x, &idx}, {&out});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("index 3"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("[-3, 3)"), std::string::npos) << st.message();
  OwnedTensor neg = I64s({-4, 0});
  st = RunKernel("Gather", {}, {&x, &neg}, {&out});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("index -4"), std::string::npos) << st.message();
}

TEST(ShapeKernelTest, GatherElements) {  // by hand (ONNX doc example plus a negative index)
  OwnedTensor x = F32({2, 2}, {1, 2, 3, 4});
  OwnedTensor idx = I64({2, 2}, {0, 0, 1, -2});
  OwnedTensor out(DType::kFloat32, {2, 2});
  ASSERT_TRUE(Run1("GatherElements", {{"axis", int64_t{1}}}, {&x, &idx}, &out).ok());
  EXPECT_EQ(out.values(), (std::vector<double>{1, 1, 4, 3}));

  OwnedTensor y = F32({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  OwnedTensor idx0 = I64({2, 3}, {1, 2, 0, 2, 0, -3});
  OwnedTensor o0(DType::kFloat32, {2, 3});
  ASSERT_TRUE(Run1("GatherElements", {{"axis", int64_t{0}}}, {&y, &idx0}, &o0).ok());
  EXPECT_EQ(o0.values(), (std::vector<double>{4, 8, 3, 7, 2, 3}));

  OwnedTensor bad = I64({2, 3}, {1, 2, 3, 0, 0, 0});
  EXPECT_FALSE(Run1("GatherElements", {{"axis", int64_t{0}}}, {&y, &bad}, &o0).ok());
}

// ---- transpose -------------------------------------------------------------------------------

// Naive loop: out[i] = x[sum(idx[a] * xstride[perm[a]])].
void CheckTranspose(const std::vector<int64_t>& dims, const std::vector<int64_t>& perm,
                    cpu::ThreadPool* pool) {
  const OwnedTensor x = HalfBits(dims);
  std::vector<int64_t> od;
  for (int64_t p : perm) od.push_back(dims[p]);
  OwnedTensor out(DType::kFloat16, od);
  ASSERT_TRUE(Run1("Transpose", {{"perm", perm}}, {&x}, &out, pool).ok());
  const std::vector<int64_t> xs = Strides(dims);
  const uint16_t* xp = x.view().as<const uint16_t>();
  const uint16_t* op = out.view().as<const uint16_t>();
  for (int64_t i = 0; i < out.view().NumElements(); ++i) {
    const std::vector<int64_t> idx = Unravel(i, od);
    int64_t src = 0;
    for (size_t a = 0; a < perm.size(); ++a) src += idx[a] * xs[perm[a]];
    ASSERT_EQ(op[i], xp[src]) << "element " << i;
  }
}

TEST(ShapeKernelTest, TransposeF16BitIdentical) {
  CheckTranspose({37, 45}, {1, 0}, nullptr);            // 2-D, partial tiles
  CheckTranspose({2, 5, 3, 8}, {0, 2, 1, 3}, nullptr);  // attention's head swap
  CheckTranspose({4, 6, 5}, {2, 0, 1}, nullptr);
  CheckTranspose({3, 1, 4, 5, 2}, {4, 2, 0, 3, 1}, nullptr);
  cpu::ThreadPool pool(3);
  CheckTranspose({130, 257}, {1, 0}, &pool);
  CheckTranspose({4, 64, 12, 32}, {0, 2, 1, 3}, &pool);
  CheckTranspose({3, 40, 50, 6}, {0, 3, 2, 1}, &pool);
}

TEST(ShapeKernelTest, TransposeDefaultPermReverses) {  // by hand
  OwnedTensor x = F32({2, 3}, {1, 2, 3, 4, 5, 6});
  OwnedTensor out(DType::kFloat32, {3, 2});
  ASSERT_TRUE(Run1("Transpose", {}, {&x}, &out).ok());
  EXPECT_EQ(out.values(), (std::vector<double>{1, 4, 2, 5, 3, 6}));
  OwnedTensor i8 = T(DType::kInt8, {2, 2}, {1, -2, 3, -4}), o8(DType::kInt8, {2, 2});
  ASSERT_TRUE(Run1("Transpose", {}, {&i8}, &o8).ok());
  EXPECT_EQ(o8.values(), (std::vector<double>{1, 3, -2, -4}));
  EXPECT_FALSE(Run1("Transpose", {{"perm", std::vector<int64_t>{0, 0}}}, {&x}, &out).ok());
}

// ---- split / concat --------------------------------------------------------------------------

TEST(ShapeKernelTest, SplitWithSplitInput) {  // by hand
  OwnedTensor x = Iota(DType::kInt32, {2, 5});
  OwnedTensor split = I64s({1, 4});
  OwnedTensor a(DType::kInt32, {2, 1}), b(DType::kInt32, {2, 4});
  ASSERT_TRUE(RunKernel("Split", {{"axis", int64_t{-1}}}, {&x, &split}, {&a, &b}).ok());
  EXPECT_EQ(a.values(), (std::vector<double>{0, 5}));
  EXPECT_EQ(b.values(), (std::vector<double>{1, 2, 3, 4, 6, 7, 8, 9}));
  OwnedTensor bad = I64s({2, 4});
  EXPECT_FALSE(RunKernel("Split", {{"axis", int64_t{-1}}}, {&x, &bad}, {&a, &b}).ok());
}

TEST(ShapeKernelTest, SplitEqualWithoutSplitInput) {  // by hand
  OwnedTensor x = Iota(DType::kFloat16, {6, 2});
  OwnedTensor a(DType::kFloat16, {2, 2}), b(DType::kFloat16, {2, 2}), c(DType::kFloat16, {2, 2});
  ASSERT_TRUE(RunKernel("Split", {}, {&x}, {&a, &b, &c}).ok());
  EXPECT_EQ(a.values(), (std::vector<double>{0, 1, 2, 3}));
  EXPECT_EQ(b.values(), (std::vector<double>{4, 5, 6, 7}));
  EXPECT_EQ(c.values(), (std::vector<double>{8, 9, 10, 11}));
  OwnedTensor d(DType::kFloat16, {3, 2}), e(DType::kFloat16, {3, 2});
  OwnedTensor y = Iota(DType::kFloat16, {5, 2});  // 5 rows do not split in two
  EXPECT_FALSE(RunKernel("Split", {}, {&y}, {&d, &e}).ok());
}

TEST(ShapeKernelTest, Concat) {  // by hand
  OwnedTensor a = F32({2, 1}, {1, 2}), b = F32({2, 2}, {3, 4, 5, 6}), c = F32({2, 0}, {});
  OwnedTensor out(DType::kFloat32, {2, 3});
  ASSERT_TRUE(RunKernel("Concat", {{"axis", int64_t{-1}}}, {&a, &c, &b}, {&out}).ok());
  EXPECT_EQ(out.values(), (std::vector<double>{1, 3, 4, 2, 5, 6}));
  OwnedTensor o0(DType::kFloat32, {4, 1});
  OwnedTensor a2 = F32({2, 1}, {7, 8});
  ASSERT_TRUE(RunKernel("Concat", {{"axis", int64_t{0}}}, {&a, &a2}, {&o0}).ok());
  EXPECT_EQ(o0.values(), (std::vector<double>{1, 2, 7, 8}));
  EXPECT_FALSE(RunKernel("Concat", {{"axis", int64_t{0}}}, {&a, &b}, {&o0}).ok());
}

// ---- slice -----------------------------------------------------------------------------------

TEST(ShapeKernelTest, SliceNegativeStepsAndClamping) {  // by hand
  OwnedTensor x = Iota(DType::kFloat32, {10});
  auto slice = [&](std::vector<double> s, std::vector<double> e, std::vector<double> st,
                   int64_t n) {
    OwnedTensor starts = I64s(s), ends = I64s(e), axes = I64s({0}), steps = I64s(st);
    OwnedTensor out(DType::kFloat32, {n});
    EXPECT_TRUE(RunKernel("Slice", {}, {&x, &starts, &ends, &axes, &steps}, {&out}).ok());
    return out.values();
  };
  const double kMin = -9.223372036854775808e18;  // INT64_MIN, exact as a double
  EXPECT_EQ(slice({-1}, {kMin}, {-1}, 10), (std::vector<double>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
  EXPECT_EQ(slice({8}, {1}, {-3}, 3), (std::vector<double>{8, 5, 2}));
  EXPECT_EQ(slice({2}, {1000}, {3}, 3), (std::vector<double>{2, 5, 8}));     // clamped end
  EXPECT_EQ(slice({-100}, {3}, {1}, 3), (std::vector<double>{0, 1, 2}));     // clamped start
  EXPECT_EQ(slice({100}, {-100}, {-4}, 3), (std::vector<double>{9, 5, 1}));  // both clamped
  EXPECT_EQ(slice({5}, {5}, {1}, 0), (std::vector<double>{}));               // empty
}

TEST(ShapeKernelTest, SliceInt64MaxEndsAndAxes) {  // by hand
  OwnedTensor x = Iota(DType::kFloat32, {3, 4});
  OwnedTensor starts = I64s({1, 0}), axes = I64s({-1, 0});
  OwnedTensor ends(DType::kInt64, {2});
  ends.view().as<int64_t>()[0] = std::numeric_limits<int64_t>::max();
  ends.view().as<int64_t>()[1] = std::numeric_limits<int64_t>::max();
  OwnedTensor out(DType::kFloat32, {3, 3});
  ASSERT_TRUE(RunKernel("Slice", {}, {&x, &starts, &ends, &axes}, {&out}).ok());
  EXPECT_EQ(out.values(), (std::vector<double>{1, 2, 3, 5, 6, 7, 9, 10, 11}));

  OwnedTensor zero_step = I64s({0, 1});
  EXPECT_FALSE(RunKernel("Slice", {}, {&x, &starts, &ends, &axes, &zero_step}, {&out}).ok());
}

TEST(ShapeKernelTest, SliceMultiAxisMatchesNaiveLoop) {  // naive loop
  cpu::ThreadPool pool(2);
  const std::vector<int64_t> dims = {6, 7, 40};
  const OwnedTensor x = HalfBits(dims);
  // axis 0: 5..0 step -2 -> {5,3,1}; axis 2: 1..39 step 3 -> 13; axis 1 untouched.
  OwnedTensor starts = I64s({5, 1}), ends = I64s({-100, -1}), axes = I64s({0, 2}),
              steps = I64s({-2, 3});
  OwnedTensor out(DType::kFloat16, {3, 7, 13});
  ASSERT_TRUE(RunKernel("Slice", {}, {&x, &starts, &ends, &axes, &steps}, {&out}, &pool).ok());
  const uint16_t* xp = x.view().as<const uint16_t>();
  const uint16_t* op = out.view().as<const uint16_t>();
  for (int64_t i = 0; i < out.view().NumElements(); ++i) {
    const auto idx = Unravel(i, {3, 7, 13});
    const int64_t src = (5 - 2 * idx[0]) * 7 * 40 + idx[1] * 40 + (1 + 3 * idx[2]);
    ASSERT_EQ(op[i], xp[src]) << i;
  }
}

// ---- expand / tile / pad ---------------------------------------------------------------------

TEST(ShapeKernelTest, Expand) {  // by hand
  OwnedTensor x = F32({3, 1}, {1, 2, 3});
  OwnedTensor shape = I64s({2, 1, 2});
  OwnedTensor out(DType::kFloat32, {2, 3, 2});
  ASSERT_TRUE(RunKernel("Expand", {}, {&x, &shape}, {&out}).ok());
  EXPECT_EQ(out.values(), (std::vector<double>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}));
  OwnedTensor small = I64s({1});  // a shorter shape of ones keeps the input's shape
  OwnedTensor o2(DType::kFloat32, {3, 1});
  ASSERT_TRUE(RunKernel("Expand", {}, {&x, &small}, {&o2}).ok());
  EXPECT_EQ(o2.values(), (std::vector<double>{1, 2, 3}));
  OwnedTensor bad = I64s({2, 2});
  OwnedTensor o3(DType::kFloat32, {3, 2});
  EXPECT_FALSE(RunKernel("Expand", {}, {&x, &bad}, {&o3}).ok());
}

TEST(ShapeKernelTest, Tile) {  // by hand
  OwnedTensor x = T(DType::kBFloat16, {2, 2}, {1, 2, 3, 4});
  OwnedTensor reps = I64s({2, 3});
  OwnedTensor out(DType::kBFloat16, {4, 6});
  ASSERT_TRUE(RunKernel("Tile", {}, {&x, &reps}, {&out}).ok());
  EXPECT_EQ(out.values(), (std::vector<double>{1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4,
                                               1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4}));
  OwnedTensor zero = I64s({0, 1});
  OwnedTensor empty(DType::kBFloat16, {0, 2});
  ASSERT_TRUE(RunKernel("Tile", {}, {&x, &zero}, {&empty}).ok());
}

TEST(ShapeKernelTest, PadConstant) {  // by hand
  OwnedTensor x = F32({2, 2}, {1, 2, 3, 4});
  OwnedTensor pads = I64s({1, 0, 0, 2});  // one row before, two columns after
  OwnedTensor cv = F32({}, {9});
  OwnedTensor out(DType::kFloat32, {3, 4});
  ASSERT_TRUE(RunKernel("Pad", {}, {&x, &pads, &cv}, {&out}).ok());
  EXPECT_EQ(out.values(), (std::vector<double>{9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9}));
  OwnedTensor o0(DType::kFloat32, {3, 4});  // no constant_value: zeros
  ASSERT_TRUE(RunKernel("Pad", {}, {&x, &pads}, {&o0}).ok());
  EXPECT_EQ(o0.values(), (std::vector<double>{0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0}));
  OwnedTensor crop = I64s({0, -1, 0, 1});  // negative pads crop
  OwnedTensor oc(DType::kFloat32, {2, 2});
  ASSERT_TRUE(RunKernel("Pad", {}, {&x, &crop, &cv}, {&oc}).ok());
  EXPECT_EQ(oc.values(), (std::vector<double>{2, 9, 4, 9}));
  OwnedTensor none = I64s({0, 0, 0, 0});  // nothing to pad: a copy (bit for bit, NaN and -0 too)
  OwnedTensor odd = F32({2, 2}, {-0.0, std::nan(""), -3, 4});
  OwnedTensor on(DType::kFloat32, {2, 2});
  ASSERT_TRUE(RunKernel("Pad", {{"mode", std::string("reflect")}}, {&odd, &none}, {&on}).ok());
  EXPECT_EQ(std::memcmp(on.view().data, odd.view().data, 16), 0);
}

TEST(ShapeKernelTest, PadReflectEdgeAndWrap) {  // by hand
  OwnedTensor x = F32({2, 3}, {1, 2, 3, 4, 5, 6});
  OwnedTensor pads = I64s({0, 2, 0, 1});
  OwnedTensor r(DType::kFloat32, {2, 6});
  ASSERT_TRUE(RunKernel("Pad", {{"mode", std::string("reflect")}}, {&x, &pads}, {&r}).ok());
  EXPECT_EQ(r.values(), (std::vector<double>{3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5}));
  OwnedTensor e(DType::kFloat32, {2, 6});
  ASSERT_TRUE(RunKernel("Pad", {{"mode", std::string("edge")}}, {&x, &pads}, {&e}).ok());
  EXPECT_EQ(e.values(), (std::vector<double>{1, 1, 1, 2, 3, 3, 4, 4, 4, 5, 6, 6}));
  OwnedTensor rows = I64s({1, 0, 1, 0});  // reflect rows: [4 5 6 / 1 2 3 / 4 5 6 / 1 2 3]
  OwnedTensor rr(DType::kFloat32, {4, 3});
  ASSERT_TRUE(RunKernel("Pad", {{"mode", std::string("reflect")}}, {&x, &rows}, {&rr}).ok());
  EXPECT_EQ(rr.values(), (std::vector<double>{4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2, 3}));
  // wrap (opset 19): [1 2 3] padded 2 before, 1 after reads ... 2 3 [1 2 3] 1.
  OwnedTensor w(DType::kFloat32, {2, 6});
  ASSERT_TRUE(RunKernel("Pad", {{"mode", std::string("wrap")}}, {&x, &pads}, {&w}).ok());
  EXPECT_EQ(w.values(), (std::vector<double>{2, 3, 1, 2, 3, 1, 5, 6, 4, 5, 6, 4}));
  EXPECT_FALSE(RunKernel("Pad", {{"mode", std::string("circular")}}, {&x, &pads}, {&e}).ok());
}

TEST(ShapeKernelTest, PadAxesInput) {  // by hand
  OwnedTensor x = T(DType::kInt64, {2, 2}, {1, 2, 3, 4});
  OwnedTensor pads = I64s({1, 2});  // axis -1: one before, two after
  OwnedTensor cv = I64({}, {-1});
  OwnedTensor axes = I64s({-1});
  OwnedTensor out(DType::kInt64, {2, 5});
  ASSERT_TRUE(RunKernel("Pad", {}, {&x, &pads, &cv, &axes}, {&out}).ok());
  EXPECT_EQ(out.values(), (std::vector<double>{-1, 1, 2, -1, -1, -1, 3, 4, -1, -1}));
}

TEST(ShapeKernelTest, LargeCopiesWithPoolMatchSerial) {  // naive comparison with the serial path
  cpu::ThreadPool pool(4);
  const OwnedTensor x = HalfBits({64, 33, 17});
  OwnedTensor pads = I64s({1, 2, 3, 2, 1, 0});
  OwnedTensor a(DType::kFloat16, {67, 36, 20}), b(DType::kFloat16, {67, 36, 20});
  for (const char* mode : {"constant", "reflect", "edge"}) {
    ASSERT_TRUE(RunKernel("Pad", {{"mode", std::string(mode)}}, {&x, &pads}, {&a}, &pool).ok());
    ASSERT_TRUE(RunKernel("Pad", {{"mode", std::string(mode)}}, {&x, &pads}, {&b}).ok());
    EXPECT_EQ(Bytes(a), Bytes(b)) << mode;
  }
  OwnedTensor reps = I64s({2, 1, 3});
  OwnedTensor t1(DType::kFloat16, {128, 33, 51}), t2(DType::kFloat16, {128, 33, 51});
  ASSERT_TRUE(RunKernel("Tile", {}, {&x, &reps}, {&t1}, &pool).ok());
  ASSERT_TRUE(RunKernel("Tile", {}, {&x, &reps}, {&t2}).ok());
  EXPECT_EQ(Bytes(t1), Bytes(t2));
  // Tile against a naive loop: out[i,j,k] = x[i % 64, j, k % 17].
  const uint16_t* xp = x.view().as<const uint16_t>();
  const uint16_t* tp = t1.view().as<const uint16_t>();
  for (int64_t i = 0; i < t1.view().NumElements(); ++i) {
    const auto idx = Unravel(i, {128, 33, 51});
    ASSERT_EQ(tp[i], xp[(idx[0] % 64) * 33 * 17 + idx[1] * 17 + idx[2] % 17]) << i;
  }
}

}  // namespace
}  // namespace ampc
