// Stores every floating-point tensor of an inference graph in a 16-bit format (f16 or bf16):
// f32 initializers and constants are rounded once (nearest even), f32 graph inputs are cast on
// entry and outputs cast back to f32 on exit, Casts to f32 become Casts to the half type.
// Kernels still compute in fp32 and round once per op (runtime/cpu/kernel.h). This is the
// whole-graph storage precision of `ampc eval --precision`; op-by-op painting for training is
// the autocast pass's job.
#pragma once

#include "passes/pass.h"

namespace ampc {

class HalfStoragePass : public Pass {
 public:
  explicit HalfStoragePass(DType half) : half_(half) {}
  std::string name() const override {
    return half_ == DType::kBFloat16 ? "half-storage-bf16" : "half-storage-fp16";
  }
  StatusOr<bool> Run(Graph& g) override;

 private:
  DType half_;
};

}  // namespace ampc
