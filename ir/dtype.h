// Element types of the IR. Names are short (f32, bf16, ...) because they appear on every value
// in the textual IR.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ir/status.h"

namespace ampc {

enum class DType : uint8_t {
  kUndefined = 0,
  kFloat32,
  kFloat16,
  kBFloat16,
  kFloat64,
  kInt64,
  kInt32,
  kInt8,
  kUInt8,
  kBool,
};

inline constexpr DType kAllDTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                       DType::kFloat64, DType::kInt64,   DType::kInt32,
                                       DType::kInt8,    DType::kUInt8,   DType::kBool};

std::string_view DTypeName(DType t);  // "f32", "bf16", ...; "?" for undefined
std::optional<DType> DTypeFromName(std::string_view name);
int DTypeSize(DType t);   // bytes per element; 0 for undefined
bool IsFloat(DType t);    // f16 bf16 f32 f64
bool IsHalf(DType t);     // f16 bf16
bool IsInteger(DType t);  // i64 i32 i8 u8

// ONNX's TensorProto.DataType numbers (1 float, 10 float16, 16 bfloat16, ...), part of the ONNX
// spec; Cast's `to` attribute and every serialized tensor use them. nullopt / 0 for types ampc
// does not have.
std::optional<DType> DTypeFromOnnxNumber(int64_t onnx_type);
int32_t DTypeToOnnxNumber(DType t);

// The precision names of the command line and of plans: "fp32" | "fp16" | "bf16" <-> f32, f16,
// bf16. The one parser every command and pass uses; the error names the flag.
StatusOr<DType> ParsePrecision(std::string_view name, std::string_view flag = "--precision");
// "fp32", "fp16", "bf16"; "?" for other types.
const char* PrecisionName(DType t);

}  // namespace ampc
