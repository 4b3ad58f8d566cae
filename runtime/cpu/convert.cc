#include "runtime/cpu/convert.h"

namespace ampc::cpu {

void LoadFloats(const TensorView& v, int64_t offset, int64_t n, float* dst) {
  switch (v.dtype) {
    case DType::kFloat32:
      std::memcpy(dst, v.as<const float>() + offset, n * sizeof(float));
      return;
    case DType::kFloat16: {
      const uint16_t* p = v.as<const uint16_t>() + offset;
      for (int64_t i = 0; i < n; ++i) dst[i] = HalfBitsToFloat(p[i]);
      return;
    }
    case DType::kBFloat16: {
      const uint16_t* p = v.as<const uint16_t>() + offset;
      for (int64_t i = 0; i < n; ++i) dst[i] = BFloat16BitsToFloat(p[i]);
      return;
    }
    default:
      for (int64_t i = 0; i < n; ++i) dst[i] = Load<float>(v, offset + i);
  }
}

void StoreFloats(const float* src, int64_t n, TensorView& v, int64_t offset) {
  switch (v.dtype) {
    case DType::kFloat32:
      std::memcpy(v.as<float>() + offset, src, n * sizeof(float));
      return;
    case DType::kFloat16: {
      uint16_t* p = v.as<uint16_t>() + offset;
      for (int64_t i = 0; i < n; ++i) p[i] = FloatToHalfBits(src[i]);
      return;
    }
    case DType::kBFloat16: {
      uint16_t* p = v.as<uint16_t>() + offset;
      for (int64_t i = 0; i < n; ++i) p[i] = FloatToBFloat16Bits(src[i]);
      return;
    }
    default:
      for (int64_t i = 0; i < n; ++i) Store<float>(v, offset + i, src[i]);
  }
}

}  // namespace ampc::cpu
