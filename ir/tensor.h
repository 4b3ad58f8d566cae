// Constant tensor data: initializers, Constant nodes and tensor attributes.
// Data is stored little-endian in the element type's natural layout (f16/bf16 as raw 16-bit
// patterns, bool as one byte per element), exactly as ONNX raw_data stores it.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "ir/dtype.h"
#include "ir/float16.h"
#include "ir/shape.h"

namespace ampc {

class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, std::vector<int64_t> dims, std::vector<uint8_t> bytes)
      : dtype_(dtype), dims_(std::move(dims)), bytes_(std::move(bytes)) {}

  // A tensor whose bytes were left out of a textual dump (`ampc inspect` elides large weights).
  static Tensor Elided(DType dtype, std::vector<int64_t> dims) {
    Tensor t(dtype, std::move(dims), {});
    t.elided_ = true;
    return t;
  }
  static Tensor FromInt64s(const std::vector<int64_t>& v, std::vector<int64_t> dims);
  static Tensor FromFloats(const std::vector<float>& v, std::vector<int64_t> dims);
  static Tensor ScalarInt64(int64_t v) { return FromInt64s({v}, {}); }
  // A rank-0 tensor of any numeric dtype holding v (rounded to nearest even for f16/bf16).
  static Tensor Scalar(DType dtype, double v);
  // All-zero bytes: 0 in every numeric type.
  static Tensor Zeros(DType dtype, std::vector<int64_t> dims);
  // A float tensor in another float type (`to` f32, f16, bf16 or f64): widening is exact,
  // narrowing to f16/bf16 goes through f32 and rounds to nearest even (ir/float16.h).
  Tensor ConvertFloat(DType to) const;

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& dims() const { return dims_; }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  bool elided() const { return elided_; }
  // Moves the bytes out (the tensor is left empty), e.g. to reuse their allocation.
  std::vector<uint8_t> TakeBytes() && { return std::move(bytes_); }
  int64_t NumElements() const;
  TensorType type() const;

  // Element values converted to int64 (integer and bool tensors) or double (any numeric type,
  // halves decoded exactly). nullopt when the tensor is elided or of another type.
  std::optional<std::vector<int64_t>> AsInt64s() const;
  std::optional<std::vector<double>> AsDoubles() const;

  bool operator==(const Tensor& o) const {
    return dtype_ == o.dtype_ && dims_ == o.dims_ && bytes_ == o.bytes_ && elided_ == o.elided_;
  }

 private:
  DType dtype_ = DType::kUndefined;
  std::vector<int64_t> dims_;
  std::vector<uint8_t> bytes_;
  bool elided_ = false;
};

}  // namespace ampc
