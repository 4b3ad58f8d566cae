// Typed node attributes (the subset of ONNX AttributeProto that ampc's ops use).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "ir/tensor.h"

namespace ampc {

enum class AttrKind : uint8_t { kInt, kFloat, kString, kTensor, kInts, kFloats, kStrings };

class Attribute {
 public:
  using Storage = std::variant<int64_t, float, std::string, Tensor, std::vector<int64_t>,
                               std::vector<float>, std::vector<std::string>>;
  Attribute() = default;
  Attribute(int64_t v) : v_(v) {}                              // NOLINT
  Attribute(float v) : v_(v) {}                                // NOLINT
  Attribute(std::string v) : v_(std::move(v)) {}               // NOLINT
  Attribute(Tensor v) : v_(std::move(v)) {}                    // NOLINT
  Attribute(std::vector<int64_t> v) : v_(std::move(v)) {}      // NOLINT
  Attribute(std::vector<float> v) : v_(std::move(v)) {}        // NOLINT
  Attribute(std::vector<std::string> v) : v_(std::move(v)) {}  // NOLINT

  AttrKind kind() const { return static_cast<AttrKind>(v_.index()); }
  const Storage& storage() const { return v_; }
  int64_t i() const { return std::get<int64_t>(v_); }
  float f() const { return std::get<float>(v_); }
  const std::string& s() const { return std::get<std::string>(v_); }
  const Tensor& t() const { return std::get<Tensor>(v_); }
  const std::vector<int64_t>& ints() const { return std::get<std::vector<int64_t>>(v_); }
  const std::vector<float>& floats() const { return std::get<std::vector<float>>(v_); }
  const std::vector<std::string>& strings() const { return std::get<std::vector<std::string>>(v_); }
  bool operator==(const Attribute& o) const { return v_ == o.v_; }

 private:
  Storage v_;
};

const char* AttrKindName(AttrKind k);  // "int", "float", "string", "tensor", "ints", ...

// Attributes are kept sorted by name so that printing is canonical.
using AttributeMap = std::map<std::string, Attribute>;

}  // namespace ampc
