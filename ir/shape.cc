#include "ir/shape.h"

namespace ampc {

std::string Dim::ToString() const {
  switch (kind_) {
    case Kind::kStatic:
      return std::to_string(value_);
    case Kind::kSymbolic:
      return symbol_;
    case Kind::kUnknown:
      break;
  }
  return "?";
}

bool TensorType::is_fully_static() const {
  if (!has_rank) return false;
  for (const Dim& d : dims) {
    if (!d.is_static()) return false;
  }
  return true;
}

std::optional<int64_t> TensorType::NumElements() const {
  if (!is_fully_static()) return std::nullopt;
  int64_t n = 1;
  for (const Dim& d : dims) {
    if (d.value() < 0) return std::nullopt;
    if (d.value() != 0 && n > kMaxElements / d.value()) return std::nullopt;
    n *= d.value();
  }
  return n;
}

std::string TensorType::ToString() const {
  std::string s(DTypeName(dtype));
  if (!has_rank) return s + "[*]";
  s += "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ",";
    s += dims[i].ToString();
  }
  return s + "]";
}

}  // namespace ampc
