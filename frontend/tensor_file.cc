#include <onnx/onnx_pb.h>

#include <filesystem>

#include "frontend/onnx.h"
#include "frontend/onnx_tensor.h"
#include "ir/file_io.h"

namespace ampc {

StatusOr<Tensor> ReadTensorFile(const std::string& path, std::string* name) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  onnx::TensorProto p;
  if (!p.ParseFromString(bytes)) {
    return InvalidArgument(path + ": not an ONNX TensorProto (corrupt or truncated file)");
  }
  if (name) *name = p.name();
  // External data in a loose tensor file is resolved next to it, under the same rules.
  std::string dir = std::filesystem::path(path).parent_path().string();
  auto t = onnx_conv::TensorFromProto(p, dir.empty() ? "." : dir, "tensor");
  if (!t.ok()) return t.status().WithContext(path);
  return t;
}

Status WriteTensorFile(const Tensor& t, const std::string& name, const std::string& path) {
  onnx::TensorProto p;
  p.set_name(name);
  onnx_conv::TensorToProto(t, &p);
  std::string bytes;
  if (!p.SerializeToString(&bytes)) return Internal(path + ": tensor too large to serialise");
  return WriteFileAtomically(path, bytes);
}

}  // namespace ampc
