// Helpers for CPU kernel unit tests: owned tensors and running one kernel by op name.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "runtime/cpu/convert.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/thread_pool.h"

namespace ampc::testing {

// A tensor that owns its bytes; view() is what kernels see.
class OwnedTensor {
 public:
  OwnedTensor() = default;
  OwnedTensor(DType t, std::vector<int64_t> dims) {
    view_.dtype = t;
    view_.dims = std::move(dims);
    bytes_.assign(static_cast<size_t>(view_.NumElements() * DTypeSize(t)) + 1, 0);
    view_.data = bytes_.data();
  }
  // From values given as doubles, stored with round-to-nearest-even into `t`.
  static OwnedTensor From(DType t, std::vector<int64_t> dims, const std::vector<double>& v) {
    OwnedTensor o(t, std::move(dims));
    EXPECT_EQ(static_cast<int64_t>(v.size()), o.view_.NumElements());
    for (size_t i = 0; i < v.size(); ++i)
      cpu::Store<double>(o.view_, static_cast<int64_t>(i), v[i]);
    return o;
  }
  OwnedTensor(const OwnedTensor& o) : view_(o.view_), bytes_(o.bytes_) {
    view_.data = bytes_.data();
  }
  OwnedTensor& operator=(const OwnedTensor& o) {
    view_ = o.view_;
    bytes_ = o.bytes_;
    view_.data = bytes_.data();
    return *this;
  }
  cpu::TensorView& view() { return view_; }
  const cpu::TensorView& view() const { return view_; }
  std::vector<double> values() const {
    std::vector<double> out(view_.NumElements());
    for (int64_t i = 0; i < view_.NumElements(); ++i) out[i] = cpu::Load<double>(view_, i);
    return out;
  }

 private:
  cpu::TensorView view_;
  std::vector<uint8_t> bytes_;
};

// Runs kernel `op` of `domain` with the given attributes on `inputs` (nullptr entries are
// omitted inputs), writing into `outputs` (preallocated by the caller with the expected shapes).
inline Status RunKernelInDomain(const std::string& domain, const std::string& op,
                                const AttributeMap& attrs, std::vector<const OwnedTensor*> inputs,
                                std::vector<OwnedTensor*> outputs,
                                cpu::ThreadPool* pool = nullptr) {
  cpu::KernelFn fn = cpu::KernelRegistry::Global().Find(domain, op);
  if (!fn) return Unimplemented("no CPU kernel for " + op);
  cpu::KernelContext ctx;
  ctx.op = op;
  ctx.node_name = "test";
  ctx.attrs = &attrs;
  ctx.pool = pool;
  for (const OwnedTensor* t : inputs) ctx.inputs.push_back(t ? &t->view() : nullptr);
  for (OwnedTensor* t : outputs) ctx.outputs.push_back(t ? &t->view() : nullptr);
  return fn(ctx);
}

// The same for the default (ai.onnx) domain.
inline Status RunKernel(const std::string& op, const AttributeMap& attrs,
                        std::vector<const OwnedTensor*> inputs, std::vector<OwnedTensor*> outputs,
                        cpu::ThreadPool* pool = nullptr) {
  return RunKernelInDomain("", op, attrs, std::move(inputs), std::move(outputs), pool);
}

}  // namespace ampc::testing
