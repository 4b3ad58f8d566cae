#include "ir/limits.h"

namespace ampc {
namespace {

InputLimits& Limits() {
  static InputLimits limits;
  return limits;
}

Status Exceeds(int64_t value, int64_t limit, const std::string& what, const char* unit,
               const char* flag) {
  if (value >= 0 && value <= limit) return Status::Ok();
  return InvalidArgument(what + ": " + std::to_string(value) + " " + unit +
                         " exceed the limit of " + std::to_string(limit) + " (" + flag +
                         " raises it)");
}

}  // namespace

const InputLimits& GetInputLimits() { return Limits(); }
void SetInputLimits(const InputLimits& limits) { Limits() = limits; }

Status CheckTensorBytes(int64_t bytes, const std::string& what) {
  return Exceeds(bytes, Limits().max_tensor_bytes, what, "bytes of tensor data",
                 "--max-tensor-bytes");
}
Status CheckNodeCount(int64_t nodes, const std::string& what) {
  return Exceeds(nodes, Limits().max_nodes, what, "nodes", "--max-nodes");
}
Status CheckNesting(int64_t depth, const std::string& what) {
  return Exceeds(depth, Limits().max_nesting, what, "levels of nesting", "--max-nesting");
}
Status CheckStringBytes(int64_t bytes, const std::string& what) {
  return Exceeds(bytes, Limits().max_string_bytes, what, "bytes in one string",
                 "--max-string-bytes");
}
Status CheckAttributeElements(int64_t elements, const std::string& what) {
  return Exceeds(elements, Limits().max_attribute_elements, what, "list elements",
                 "--max-attribute-elements");
}

}  // namespace ampc
