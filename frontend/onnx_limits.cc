// onnx_check::CheckLimits: a model's declared sizes against the input limits (ir/limits.h).
// The graphs are walked with an explicit stack, so a deeply nested model cannot exhaust the
// C++ stack before its depth is refused.
#include <algorithm>
#include <vector>

#include "frontend/onnx_import_checks.h"
#include "ir/limits.h"

namespace ampc::onnx_check {
namespace {

// Bytes per element of an ONNX TensorProto data type (strings count by their own bytes).
int64_t ElementBytes(int32_t type) {
  using T = onnx::TensorProto;
  switch (type) {
    case T::UINT8:
    case T::INT8:
    case T::BOOL:
    case T::STRING:
      return 1;
    case T::UINT16:
    case T::INT16:
    case T::FLOAT16:
    case T::BFLOAT16:
      return 2;
    case T::FLOAT:
    case T::INT32:
    case T::UINT32:
      return 4;
    case T::COMPLEX128:
      return 16;
    default:
      return 8;  // int64, double, complex64, and types newer than ONNX 1.12 (at most 8)
  }
}

class LimitWalk {
 public:
  Status Run(const onnx::ModelProto& m) {
    std::vector<std::pair<const onnx::GraphProto*, int64_t>> stack = {{&m.graph(), 1}};
    for (const auto& ti : m.training_info()) {
      stack.push_back({&ti.algorithm(), 1});
      stack.push_back({&ti.initialization(), 1});
    }
    for (const auto& f : m.functions()) {
      RETURN_IF_ERROR(Name(f.name(), "function name"));
      for (const auto& n : f.node()) RETURN_IF_ERROR(Node(n, 1, &stack));
    }
    while (!stack.empty()) {
      auto [g, depth] = stack.back();
      stack.pop_back();
      RETURN_IF_ERROR(CheckNesting(depth, "graph '" + g->name() + "'"));
      for (const auto& t : g->initializer()) RETURN_IF_ERROR(TensorDecl(t, "initializer"));
      for (const auto& t : g->sparse_initializer()) {
        RETURN_IF_ERROR(TensorDecl(t.values(), "sparse initializer values"));
        RETURN_IF_ERROR(TensorDecl(t.indices(), "sparse initializer indices"));
      }
      for (const auto& n : g->node()) RETURN_IF_ERROR(Node(n, depth, &stack));
    }
    return Status::Ok();
  }

 private:
  Status Name(const std::string& s, const std::string& what) {
    return CheckStringBytes(static_cast<int64_t>(s.size()), what + " '" + s.substr(0, 40) + "'");
  }

  // Declared bytes: the product of the dims (the data itself is compared with them later).
  Status TensorDecl(const onnx::TensorProto& t, const std::string& what) {
    RETURN_IF_ERROR(Name(t.name(), what + " name"));
    const std::string desc = what + " '" + t.name().substr(0, 40) + "'";
    int64_t n = ElementBytes(t.data_type());
    for (int64_t d : t.dims()) {
      if (d < 0) return InvalidArgument(desc + " has negative dimension " + std::to_string(d));
      if (!MulSize(n, d, &n)) {
        return InvalidArgument(desc + ": its dimensions multiply beyond 2^63 bytes");
      }
    }
    for (const std::string& s : t.string_data()) n += static_cast<int64_t>(s.size());
    if (!AddSize(total_bytes_, n, &total_bytes_)) total_bytes_ = INT64_MAX;
    return CheckTensorBytes(total_bytes_, "the model's tensors (at " + desc + ")");
  }

  Status Node(const onnx::NodeProto& n, int64_t depth,
              std::vector<std::pair<const onnx::GraphProto*, int64_t>>* stack) {
    RETURN_IF_ERROR(CheckNodeCount(++nodes_, "the model"));
    RETURN_IF_ERROR(Name(n.name(), "node name"));
    RETURN_IF_ERROR(Name(n.op_type(), "op type"));
    for (const std::string& s : n.input()) RETURN_IF_ERROR(Name(s, "input name"));
    for (const std::string& s : n.output()) RETURN_IF_ERROR(Name(s, "output name"));
    for (const auto& a : n.attribute()) {
      const std::string what = DescribeNode(n) + " attribute '" + a.name().substr(0, 40) + "'";
      RETURN_IF_ERROR(Name(a.name(), "attribute name"));
      RETURN_IF_ERROR(CheckStringBytes(static_cast<int64_t>(a.s().size()), what));
      const int64_t elements =
          std::max({a.ints_size(), a.floats_size(), a.strings_size(), a.tensors_size()});
      RETURN_IF_ERROR(CheckAttributeElements(elements, what));
      for (const std::string& s : a.strings())
        RETURN_IF_ERROR(CheckStringBytes(static_cast<int64_t>(s.size()), what));
      if (a.has_t()) RETURN_IF_ERROR(TensorDecl(a.t(), what));
      for (const auto& t : a.tensors()) RETURN_IF_ERROR(TensorDecl(t, what));
      if (a.has_g()) stack->push_back({&a.g(), depth + 1});
      for (const auto& g : a.graphs()) stack->push_back({&g, depth + 1});
    }
    return Status::Ok();
  }

  int64_t nodes_ = 0;
  int64_t total_bytes_ = 0;
};

}  // namespace

Status CheckLimits(const onnx::ModelProto& m) { return LimitWalk().Run(m); }

}  // namespace ampc::onnx_check
