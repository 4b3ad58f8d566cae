// One GemmDesc bound to cuBLASLt (CUDA toolkit builds only): the operation and matrix layouts,
// the bias epilogue, and the algorithm cuBLASLt's heuristic picks for the matrices' alignment
// and the workspace, chosen once; Enqueue runs the description's calls on a stream.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "ir/status.h"
#include "runtime/cuda/gemm_layout.h"

namespace ampc::cuda {

class GemmCall {
 public:
  GemmCall() = default;
  GemmCall(const GemmCall&) = delete;
  GemmCall& operator=(const GemmCall&) = delete;
  ~GemmCall();

  // A, B, D: the base addresses of cuBLASLt's A, B and D (the calls' offsets are added); C: the
  // C matrix (c_matrix), the bias vector (HasBias) or the bias gradient (kDGeluBgrad), else
  // unused; aux: the aux matrix of a GELU_AUX / DGELU epilogue (one call, laid out as D).
  Status Bind(cublasLtHandle_t lt, const GemmDesc& desc, const void* A, const void* B,
              const void* C, void* D, size_t workspace_bytes, const void* aux = nullptr);
  Status Enqueue(cublasLtHandle_t lt, void* workspace, size_t workspace_bytes,
                 cudaStream_t stream) const;
  const GemmDesc& desc() const { return desc_; }

 private:
  GemmDesc desc_;
  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr, d_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  const uint8_t *A_ = nullptr, *B_ = nullptr, *C_ = nullptr;
  uint8_t* D_ = nullptr;
  int64_t a_elem_ = 0, b_elem_ = 0, d_elem_ = 0;
};

}  // namespace ampc::cuda
