#include "ir/tensor.h"

#include <cmath>

namespace ampc {

namespace {
template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
}  // namespace

Tensor Tensor::FromInt64s(const std::vector<int64_t>& v, std::vector<int64_t> dims) {
  std::vector<uint8_t> b(v.size() * 8);
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return Tensor(DType::kInt64, std::move(dims), std::move(b));
}

Tensor Tensor::FromFloats(const std::vector<float>& v, std::vector<int64_t> dims) {
  std::vector<uint8_t> b(v.size() * 4);
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return Tensor(DType::kFloat32, std::move(dims), std::move(b));
}

Tensor Tensor::Zeros(DType dtype, std::vector<int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return Tensor(dtype, std::move(dims), std::vector<uint8_t>(n * DTypeSize(dtype), 0));
}

Tensor Tensor::Scalar(DType dtype, double v) {
  std::vector<uint8_t> b(DTypeSize(dtype));
  auto put = [&](auto x) { std::memcpy(b.data(), &x, sizeof(x)); };
  switch (dtype) {
    case DType::kFloat32:
      put(static_cast<float>(v));
      break;
    case DType::kFloat64:
      put(v);
      break;
    case DType::kFloat16:
      put(FloatToHalfBits(static_cast<float>(v)));
      break;
    case DType::kBFloat16:
      put(FloatToBFloat16Bits(static_cast<float>(v)));
      break;
    case DType::kInt64:
      put(static_cast<int64_t>(v));
      break;
    case DType::kInt32:
      put(static_cast<int32_t>(v));
      break;
    case DType::kInt8:
      put(static_cast<int8_t>(v));
      break;
    case DType::kUInt8:
      put(static_cast<uint8_t>(v));
      break;
    case DType::kBool:
      put(static_cast<uint8_t>(v != 0));
      break;
    case DType::kUndefined:
      break;
  }
  return Tensor(dtype, {}, std::move(b));
}

int64_t Tensor::NumElements() const {
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return n;
}

TensorType Tensor::type() const {
  std::vector<Dim> d(dims_.begin(), dims_.end());
  return TensorType(dtype_, std::move(d));
}

std::optional<std::vector<int64_t>> Tensor::AsInt64s() const {
  if (elided_) return std::nullopt;
  const int64_t n = NumElements();
  if (n * DTypeSize(dtype_) != static_cast<int64_t>(bytes_.size())) return std::nullopt;
  std::vector<int64_t> out(n);
  const uint8_t* p = bytes_.data();
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype_) {
      case DType::kInt64:
        out[i] = Load<int64_t>(p + 8 * i);
        break;
      case DType::kInt32:
        out[i] = Load<int32_t>(p + 4 * i);
        break;
      case DType::kInt8:
        out[i] = Load<int8_t>(p + i);
        break;
      case DType::kUInt8:
        out[i] = Load<uint8_t>(p + i);
        break;
      case DType::kBool:
        out[i] = p[i] != 0;
        break;
      default:
        return std::nullopt;
    }
  }
  return out;
}

std::optional<std::vector<double>> Tensor::AsDoubles() const {
  if (elided_) return std::nullopt;
  const int64_t n = NumElements();
  if (n * DTypeSize(dtype_) != static_cast<int64_t>(bytes_.size())) return std::nullopt;
  if (!IsFloat(dtype_)) {
    auto ints = AsInt64s();
    if (!ints) return std::nullopt;
    return std::vector<double>(ints->begin(), ints->end());
  }
  std::vector<double> out(n);
  const uint8_t* p = bytes_.data();
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype_) {
      case DType::kFloat32:
        out[i] = Load<float>(p + 4 * i);
        break;
      case DType::kFloat64:
        out[i] = Load<double>(p + 8 * i);
        break;
      case DType::kFloat16:
        out[i] = HalfBitsToFloat(Load<uint16_t>(p + 2 * i));
        break;
      case DType::kBFloat16:
        out[i] = BFloat16BitsToFloat(Load<uint16_t>(p + 2 * i));
        break;
      default:
        return std::nullopt;
    }
  }
  return out;
}

Tensor Tensor::ConvertFloat(DType to) const {
  AMPC_CHECK(IsFloat(dtype_) && IsFloat(to) && !elided_);
  const std::vector<double> v = *AsDoubles();
  std::vector<uint8_t> bytes(v.size() * static_cast<size_t>(DTypeSize(to)));
  for (size_t i = 0; i < v.size(); ++i) {
    const float f = static_cast<float>(v[i]);
    if (to == DType::kFloat32) {
      std::memcpy(bytes.data() + 4 * i, &f, 4);
    } else if (to == DType::kFloat64) {
      std::memcpy(bytes.data() + 8 * i, &v[i], 8);
    } else {
      const uint16_t h = to == DType::kFloat16 ? FloatToHalfBits(f) : FloatToBFloat16Bits(f);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
  }
  return Tensor(to, dims_, std::move(bytes));
}

}  // namespace ampc
