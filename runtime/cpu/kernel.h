// The CPU kernel interface. A kernel reads its inputs and writes outputs whose buffers the
// executor has already placed (shapes are static in a Plan). Kernels validate data-dependent
// things (indices in range, ...) and return a Status; they never crash on user data.
//
// Numerics contract (the CPU runtime is the oracle for the CUDA one):
//  - f16/bf16 tensors are storage types: elementwise ops load to fp32, compute in fp32, and round
//    once to the output type (round to nearest even, see ir/float16.h);
//  - GEMM/MatMul/Conv read half inputs, multiply-accumulate in fp32 and round the result once
//    (cuBLASLt COMPUTE_32F);
//  - reductions accumulate in fp32 (f64 tensors compute in double throughout).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "codegen/plan_target.h"
#include "ir/attribute.h"
#include "ir/dtype.h"
#include "ir/status.h"

namespace ampc::cpu {

class ThreadPool;

struct TensorView {
  DType dtype = DType::kUndefined;
  std::vector<int64_t> dims;
  void* data = nullptr;

  int64_t NumElements() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
  int64_t rank() const { return static_cast<int64_t>(dims.size()); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

struct KernelContext {
  std::string op;
  std::string node_name;
  const AttributeMap* attrs = nullptr;
  std::vector<const TensorView*> inputs;  // nullptr: an omitted optional input
  std::vector<TensorView*> outputs;       // preallocated; nullptr: an omitted optional output
  ThreadPool* pool = nullptr;

  int num_inputs() const { return static_cast<int>(inputs.size()); }
  int num_outputs() const { return static_cast<int>(outputs.size()); }
  const TensorView* in(int i) const { return i < num_inputs() ? inputs[i] : nullptr; }
  TensorView* out(int i) const { return i < num_outputs() ? outputs[i] : nullptr; }

  const Attribute* attr(const std::string& key) const;
  int64_t attr_int(const std::string& key, int64_t dflt) const;
  float attr_float(const std::string& key, float dflt) const;
  std::string attr_string(const std::string& key, const std::string& dflt) const;
  std::vector<int64_t> attr_ints(const std::string& key) const;  // empty if absent
  std::vector<float> attr_floats(const std::string& key) const;  // empty if absent
};

using KernelFn = Status (*)(KernelContext& ctx);

// The product of d[begin, end): the row and column counts around an axis.
inline int64_t DimProduct(const std::vector<int64_t>& d, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= d[i];
  return p;
}

// Rows per parallel chunk, so that a chunk has at least ~16K elements of work.
inline int64_t RowGrain(int64_t row_len) {
  return std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, row_len));
}

// "[2,3,4]", for kernel error messages.
std::string DimsToString(const std::vector<int64_t>& dims);

class KernelRegistry {
 public:
  static KernelRegistry& Global();
  void Register(const std::string& domain, const std::string& op, KernelFn fn);
  KernelFn Find(const std::string& domain, const std::string& op) const;
  std::vector<std::string> Ops() const;  // "Op" or "domain::Op", sorted

 private:
  friend BackendSupport CpuBackendSupportAs(const Target& target);
  // The same op list for another target: what `ampc compile --target cuda` lowers against until the
  // CUDA runtime has its own kernel registry (it implements the CPU runtime's ops, the oracle's).
  BackendSupport CpuBackendSupportAs(const Target& target);
  std::vector<std::pair<std::pair<std::string, std::string>, KernelFn>> kernels_;
};

// What the CPU backend executes, for the compiler (codegen/plan_target.h): every registered op,
// in every floating-point type (f16/bf16 are storage types the kernels widen to fp32).
BackendSupport CpuBackendSupport();
// The same op list for another target: what `ampc compile --target cuda` lowers against until the
// CUDA runtime has its own kernel registry (it implements the CPU runtime's ops, the oracle's).
BackendSupport CpuBackendSupportAs(const Target& target);

// One registration function per kernel file (runtime/cpu/kernels_*.cc).
void RegisterElementwiseKernels(KernelRegistry& r);
void RegisterShapeKernels(KernelRegistry& r);
void RegisterNNKernels(KernelRegistry& r);
void RegisterReductionKernels(KernelRegistry& r);
void RegisterTrainingKernels(KernelRegistry& r);
void RegisterGradKernels(KernelRegistry& r);          // runtime/cpu/kernels_grad.cc
void RegisterOptimizerKernels(KernelRegistry& r);     // runtime/cpu/kernels_optimizer.cc
void RegisterActivationKernels(KernelRegistry& r);    // Gelu, Mish, Sin, Cos and their grads
void RegisterGroupRMSNormKernels(KernelRegistry& r);  // GroupNormalization, RMSNormalization
void RegisterAttentionKernels(KernelRegistry& r);     // Attention (+ grad), RotaryEmbedding

}  // namespace ampc::cpu
