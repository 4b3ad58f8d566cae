// Shared helpers for the shape-inference tests (shape_inference*_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <functional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/op_registry.h"

namespace ampc {
namespace testing_shapes {

inline Dim Sym(const char* s) { return Dim::Symbol(s); }
inline TensorType F32(std::vector<Dim> d) { return TensorType(DType::kFloat32, std::move(d)); }
inline TensorType F16(std::vector<Dim> d) { return TensorType(DType::kFloat16, std::move(d)); }
inline TensorType I64(std::vector<Dim> d) { return TensorType(DType::kInt64, std::move(d)); }
inline TensorType Bool(std::vector<Dim> d) { return TensorType(DType::kBool, std::move(d)); }
inline TensorType Unranked(DType t = DType::kFloat32) { return TensorType::UnknownShape(t); }

class ShapeInference : public ::testing::Test {
 protected:
  std::string Fresh(const char* stem) { return stem + std::to_string(counter_++); }

  Value* In(TensorType t) { return *g_.AddInput(Fresh("in"), std::move(t)); }
  // An i64 initializer (1-D, or a scalar) with its known ints set, as the importer does.
  Value* Ints(std::vector<int64_t> v, bool scalar = false) {
    std::vector<int64_t> dims;
    if (!scalar) dims.push_back(static_cast<int64_t>(v.size()));
    Value* x = *g_.AddInitializer(Fresh("init"), Tensor::FromInt64s(v, dims));
    x->set_known_ints(std::vector<Dim>(v.begin(), v.end()));
    return x;
  }
  // A 1-D i64 value whose elements are known (possibly symbolic), e.g. a shape tensor.
  Value* Known(std::vector<Dim> v) {
    Value* x = In(I64({static_cast<int64_t>(v.size())}));
    x->set_known_ints(std::move(v));
    return x;
  }
  Node* Make(const std::string& op, std::vector<Value*> ins, AttributeMap attrs = {},
             int nout = 1) {
    std::vector<std::string> outs;
    for (int i = 0; i < nout; ++i) outs.push_back(Fresh("out"));
    return *g_.AddNode(op, "", Fresh("n"), ins, outs, std::move(attrs));
  }
  // Infers a fresh node; returns output 0's type, or "error: <message>".
  std::string Infer(const std::string& op, std::vector<Value*> ins, AttributeMap attrs = {},
                    int nout = 1) {
    last_ = Make(op, std::move(ins), std::move(attrs), nout);
    Status st = InferNode(*last_);
    if (!st.ok()) return "error: " + st.message();
    return last_->output(0)->type().ToString();
  }
  // Type of output i of the last inferred node.
  std::string Out(int i) { return last_->output(i)->type().ToString(); }
  // Known ints of output 0 of the last node, as "[a,b]" or "none".
  std::string KnownOut() {
    const auto& k = last_->output(0)->known_ints();
    if (!k) return "none";
    std::string s = "[";
    for (size_t i = 0; i < k->size(); ++i) s += (i ? "," : "") + (*k)[i].ToString();
    return s + "]";
  }
  Status InferStatus(const std::string& op, std::vector<Value*> ins, AttributeMap attrs = {},
                     int nout = 1) {
    last_ = Make(op, std::move(ins), std::move(attrs), nout);
    return InferNode(*last_);
  }

  Graph g_;
  Node* last_ = nullptr;
  int counter_ = 0;
};

// Asserts that inference fails with InvalidArgument (or `code`) and the message contains `sub`.
#define EXPECT_INFER_ERROR(status_expr, sub)                              \
  do {                                                                    \
    ::ampc::Status _s = (status_expr);                                    \
    EXPECT_FALSE(_s.ok());                                                \
    EXPECT_NE(_s.message().find(sub), std::string::npos) << _s.message(); \
  } while (0)

inline AttributeMap A(std::initializer_list<std::pair<const std::string, Attribute>> l) {
  return l;
}

}  // namespace testing_shapes
}  // namespace ampc
