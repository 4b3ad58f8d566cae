// Conversions between ONNX protobuf tensors/types and ampc's IR (internal to frontend/).
#pragma once

#include <onnx/onnx_pb.h>

#include <optional>
#include <string>

#include "ir/shape.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace ampc::onnx_conv {

// "FLOAT16", "STRING", ... for error messages.
std::string OnnxTypeName(int32_t onnx_type);

// Reads a TensorProto (typed fields, raw_data or external data in `model_dir`).
// `what` names the tensor in errors ("initializer 'w'"). External data paths must stay inside
// model_dir; an empty model_dir rejects external data.
StatusOr<Tensor> TensorFromProto(const onnx::TensorProto& p, const std::string& model_dir,
                                 const std::string& what);
// Writes raw_data (little-endian), the form every ONNX reader accepts.
void TensorToProto(const Tensor& t, onnx::TensorProto* p);

// A value_info / graph input type. `what` names the value in errors.
StatusOr<TensorType> TypeFromProto(const onnx::TypeProto& p, const std::string& what);
void TypeToProto(const TensorType& t, onnx::TypeProto* p);

}  // namespace ampc::onnx_conv
