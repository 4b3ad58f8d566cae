// Dimensions and tensor types. A dimension is static (a number), symbolic (a name such as
// "batch", from ONNX dim_param) or unknown. The same Dim also carries element values during
// shape-data propagation (Shape -> Gather -> Concat -> Reshape), where negative numbers occur.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ir/dtype.h"

namespace ampc {

// Largest accepted static dimension and element count; larger values in a model are rejected
// as absurd rather than overflowing size computations.
inline constexpr int64_t kMaxDim = int64_t{1} << 40;
inline constexpr int64_t kMaxElements = int64_t{1} << 44;

class Dim {
 public:
  Dim() = default;                                     // unknown
  Dim(int64_t v) : kind_(Kind::kStatic), value_(v) {}  // NOLINT: numbers convert naturally
  static Dim Symbol(std::string name) {
    Dim d;
    d.kind_ = Kind::kSymbolic;
    d.symbol_ = std::move(name);
    return d;
  }
  static Dim Unknown() { return Dim(); }

  bool is_static() const { return kind_ == Kind::kStatic; }
  bool is_symbolic() const { return kind_ == Kind::kSymbolic; }
  bool is_unknown() const { return kind_ == Kind::kUnknown; }
  int64_t value() const { return value_; }
  const std::string& symbol() const { return symbol_; }

  bool operator==(const Dim& o) const {
    return kind_ == o.kind_ && value_ == o.value_ && symbol_ == o.symbol_;
  }
  bool operator!=(const Dim& o) const { return !(*this == o); }
  std::string ToString() const;  // "4", "batch", "?"

 private:
  enum class Kind : uint8_t { kUnknown, kStatic, kSymbolic };
  Kind kind_ = Kind::kUnknown;
  int64_t value_ = 0;
  std::string symbol_;
};

// dtype + shape. `has_rank == false` means nothing is known about the shape.
struct TensorType {
  DType dtype = DType::kUndefined;
  bool has_rank = false;
  std::vector<Dim> dims;

  TensorType() = default;
  TensorType(DType t, std::vector<Dim> d) : dtype(t), has_rank(true), dims(std::move(d)) {}
  static TensorType UnknownShape(DType t) {
    TensorType r;
    r.dtype = t;
    return r;
  }

  int64_t rank() const { return static_cast<int64_t>(dims.size()); }
  bool is_fully_static() const;
  // Number of elements when every dim is static, else nullopt.
  std::optional<int64_t> NumElements() const;
  bool operator==(const TensorType& o) const {
    return dtype == o.dtype && has_rank == o.has_rank && dims == o.dims;
  }
  bool operator!=(const TensorType& o) const { return !(*this == o); }
  std::string ToString() const;  // "f32[batch,784]", "f32[]", "f32[*]"
};

}  // namespace ampc
