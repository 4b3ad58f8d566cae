#include "ir/dtype.h"

namespace ampc {

std::string_view DTypeName(DType t) {
  switch (t) {
    case DType::kFloat32:
      return "f32";
    case DType::kFloat16:
      return "f16";
    case DType::kBFloat16:
      return "bf16";
    case DType::kFloat64:
      return "f64";
    case DType::kInt64:
      return "i64";
    case DType::kInt32:
      return "i32";
    case DType::kInt8:
      return "i8";
    case DType::kUInt8:
      return "u8";
    case DType::kBool:
      return "bool";
    case DType::kUndefined:
      break;
  }
  return "?";
}

std::optional<DType> DTypeFromName(std::string_view name) {
  for (DType t : kAllDTypes) {
    if (DTypeName(t) == name) return t;
  }
  return std::nullopt;
}

int DTypeSize(DType t) {
  switch (t) {
    case DType::kFloat64:
    case DType::kInt64:
      return 8;
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kBool:
      return 1;
    case DType::kUndefined:
      break;
  }
  return 0;
}

bool IsFloat(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 ||
         t == DType::kFloat64;
}
std::optional<DType> DTypeFromOnnxNumber(int64_t onnx_type) {
  for (DType t : kAllDTypes) {
    if (DTypeToOnnxNumber(t) == onnx_type) return t;
  }
  return std::nullopt;
}

int32_t DTypeToOnnxNumber(DType t) {
  switch (t) {
    case DType::kFloat32:
      return 1;
    case DType::kUInt8:
      return 2;
    case DType::kInt8:
      return 3;
    case DType::kInt32:
      return 6;
    case DType::kInt64:
      return 7;
    case DType::kBool:
      return 9;
    case DType::kFloat16:
      return 10;
    case DType::kFloat64:
      return 11;
    case DType::kBFloat16:
      return 16;
    case DType::kUndefined:
      break;
  }
  return 0;
}

bool IsHalf(DType t) { return t == DType::kFloat16 || t == DType::kBFloat16; }
bool IsInteger(DType t) {
  return t == DType::kInt64 || t == DType::kInt32 || t == DType::kInt8 || t == DType::kUInt8;
}

StatusOr<DType> ParsePrecision(std::string_view name, std::string_view flag) {
  if (name == "fp32") return DType::kFloat32;
  if (name == "fp16") return DType::kFloat16;
  if (name == "bf16") return DType::kBFloat16;
  return InvalidArgument(std::string(flag) + " " + std::string(name) +
                         ": expected fp32, fp16 or bf16");
}

const char* PrecisionName(DType t) {
  switch (t) {
    case DType::kFloat32:
      return "fp32";
    case DType::kFloat16:
      return "fp16";
    case DType::kBFloat16:
      return "bf16";
    default:
      return "?";
  }
}

}  // namespace ampc
