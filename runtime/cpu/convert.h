// Element loads and stores across dtypes for CPU kernels. Floats are computed in `float` (f32,
// f16, bf16) or `double` (f64); stores round once, to nearest even, into f16/bf16.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "ir/float16.h"
#include "runtime/cpu/kernel.h"

namespace ampc::cpu {

// Compute type for a float dtype: double for f64, float for the rest.
template <DType T>
struct ComputeOf {
  using type = float;
};
template <>
struct ComputeOf<DType::kFloat64> {
  using type = double;
};

// Element i of `data` (of dtype t) as C (C = float, double or int64_t).
template <typename C>
inline C Load(const void* data, DType t, int64_t i) {
  switch (t) {
    case DType::kFloat32:
      return static_cast<C>(static_cast<const float*>(data)[i]);
    case DType::kFloat64:
      return static_cast<C>(static_cast<const double*>(data)[i]);
    case DType::kFloat16:
      return static_cast<C>(HalfBitsToFloat(static_cast<const uint16_t*>(data)[i]));
    case DType::kBFloat16:
      return static_cast<C>(BFloat16BitsToFloat(static_cast<const uint16_t*>(data)[i]));
    case DType::kInt64:
      return static_cast<C>(static_cast<const int64_t*>(data)[i]);
    case DType::kInt32:
      return static_cast<C>(static_cast<const int32_t*>(data)[i]);
    case DType::kInt8:
      return static_cast<C>(static_cast<const int8_t*>(data)[i]);
    case DType::kUInt8:
      return static_cast<C>(static_cast<const uint8_t*>(data)[i]);
    case DType::kBool:
      return static_cast<C>(static_cast<const uint8_t*>(data)[i] != 0);
    case DType::kUndefined:
      break;
  }
  return C{};
}

// Stores v as element i of `data` (dtype t), rounding to nearest even for f16/bf16.
// Float -> integer stores truncate toward zero (ONNX Cast semantics for in-range values).
template <typename C>
inline void Store(void* data, DType t, int64_t i, C v) {
  switch (t) {
    case DType::kFloat32:
      static_cast<float*>(data)[i] = static_cast<float>(v);
      break;
    case DType::kFloat64:
      static_cast<double*>(data)[i] = static_cast<double>(v);
      break;
    case DType::kFloat16:
      static_cast<uint16_t*>(data)[i] = FloatToHalfBits(static_cast<float>(v));
      break;
    case DType::kBFloat16:
      static_cast<uint16_t*>(data)[i] = FloatToBFloat16Bits(static_cast<float>(v));
      break;
    case DType::kInt64:
      static_cast<int64_t*>(data)[i] = static_cast<int64_t>(v);
      break;
    case DType::kInt32:
      static_cast<int32_t*>(data)[i] = static_cast<int32_t>(v);
      break;
    case DType::kInt8:
      static_cast<int8_t*>(data)[i] = static_cast<int8_t>(v);
      break;
    case DType::kUInt8:
      static_cast<uint8_t*>(data)[i] = static_cast<uint8_t>(v);
      break;
    case DType::kBool:
      static_cast<uint8_t*>(data)[i] = v != C{} ? 1 : 0;
      break;
    case DType::kUndefined:
      break;
  }
}

template <typename C>
inline C Load(const TensorView& v, int64_t i) {
  return Load<C>(v.data, v.dtype, i);
}
template <typename C>
inline void Store(TensorView& v, int64_t i, C x) {
  Store<C>(v.data, v.dtype, i, x);
}

// Bulk conversions between fp32 and 16-bit floats, bit-identical to the scalar functions of
// ir/float16.h (round to nearest even, subnormals, the same NaN patterns) but vectorised: F16C
// + AVX2 when the CPU has them (checked once at run time), AVX2 loops for bfloat16.
void HalfToFloatN(const uint16_t* src, float* dst, int64_t n);
void FloatToHalfN(const float* src, uint16_t* dst, int64_t n);
void BFloat16ToFloatN(const uint16_t* src, float* dst, int64_t n);
void FloatToBFloat16N(const float* src, uint16_t* dst, int64_t n);

// Bulk conversions of n elements starting at element `offset`.
void LoadFloats(const TensorView& v, int64_t offset, int64_t n, float* dst);
void StoreFloats(const float* src, int64_t n, TensorView& v, int64_t offset);

}  // namespace ampc::cpu
