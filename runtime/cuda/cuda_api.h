// Access to the CUDA libraries for the CUDA executor (built with the CUDA toolkit only): errors
// as Status, cuBLASLt opened at run time, the driver API's entry points from cudart, the cuBLASLt
// type of a dtype, and pinned host memory.
#pragma once

#include <cublasLt.h>
#include <cuda.h>
#include <cuda_runtime.h>

#include <string>

#include "ir/dtype.h"
#include "ir/status.h"

namespace ampc::cuda {

Status CudaFailure(cudaError_t e, const std::string& what);
Status DriverFailure(CUresult r, const std::string& what);

#define AMPC_CUDA(expr, what)                                                    \
  do {                                                                           \
    const cudaError_t ampc_cuda_err_ = (expr);                                   \
    if (ampc_cuda_err_ != cudaSuccess) return CudaFailure(ampc_cuda_err_, what); \
  } while (0)

#define AMPC_CUBLASLT(expr, what)                                 \
  do {                                                            \
    const cublasStatus_t ampc_lt_st_ = (expr);                    \
    if (ampc_lt_st_ != CUBLAS_STATUS_SUCCESS) {                   \
      return Internal(std::string("cuBLASLt: ") + (what) + ": " + \
                      LtApi().GetStatusString(ampc_lt_st_));      \
    }                                                             \
  } while (0)

// cuBLASLt, opened when the first CUDA executor is created rather than linked: the library is
// half a gigabyte, and linking it costs every ampc process (compile, inspect, a CPU run) 70 ms
// and 200 MB of relocated pages at start. The bundle takes it from the GPU machine's toolkit.
struct CublasLt {
  decltype(&::cublasLtCreate) Create = nullptr;
  decltype(&::cublasLtDestroy) Destroy = nullptr;
  decltype(&::cublasLtGetStatusString) GetStatusString = nullptr;
  decltype(&::cublasLtMatmulDescCreate) MatmulDescCreate = nullptr;
  decltype(&::cublasLtMatmulDescDestroy) MatmulDescDestroy = nullptr;
  decltype(&::cublasLtMatmulDescSetAttribute) MatmulDescSetAttribute = nullptr;
  decltype(&::cublasLtMatrixLayoutCreate) MatrixLayoutCreate = nullptr;
  decltype(&::cublasLtMatrixLayoutDestroy) MatrixLayoutDestroy = nullptr;
  decltype(&::cublasLtMatrixLayoutSetAttribute) MatrixLayoutSetAttribute = nullptr;
  decltype(&::cublasLtMatmulPreferenceCreate) MatmulPreferenceCreate = nullptr;
  decltype(&::cublasLtMatmulPreferenceDestroy) MatmulPreferenceDestroy = nullptr;
  decltype(&::cublasLtMatmulPreferenceSetAttribute) MatmulPreferenceSetAttribute = nullptr;
  decltype(&::cublasLtMatmulAlgoGetHeuristic) MatmulAlgoGetHeuristic = nullptr;
  decltype(&::cublasLtMatmul) Matmul = nullptr;
};
// The loaded library's functions (valid once LoadCublasLt succeeded).
const CublasLt& LtApi();
Status LoadCublasLt();

// The driver-API functions ampc uses, from cudart's entry-point query: the binary never links
// libcuda (whose stub would stop it from starting on a machine without a driver).
struct Driver {
  using ModuleLoadData = CUresult (*)(CUmodule*, const void*);
  using ModuleGetFunction = CUresult (*)(CUfunction*, CUmodule, const char*);
  using ModuleUnload = CUresult (*)(CUmodule);
  using LaunchKernel = CUresult (*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                                    unsigned, unsigned, CUstream, void**, void**);
  ModuleLoadData module_load_data = nullptr;
  ModuleGetFunction module_get_function = nullptr;
  ModuleUnload module_unload = nullptr;
  LaunchKernel launch_kernel = nullptr;
};
StatusOr<const Driver*> GetDriver();

StatusOr<cudaDataType_t> CudaType(DType t);

// Pinned host memory (asynchronous copies and CUDA Graph memcpy nodes need it).
struct Pinned {
  void* p = nullptr;
  size_t bytes = 0;
  Pinned() = default;
  Pinned(const Pinned&) = delete;
  Pinned& operator=(const Pinned&) = delete;
  ~Pinned() {
    if (p) cudaFreeHost(p);
  }
  Status Allocate(size_t n) {
    bytes = n;
    AMPC_CUDA(cudaMallocHost(&p, n ? n : 1),
              "pinned host memory of " + std::to_string(n) + " bytes");
    return Status::Ok();
  }
};

}  // namespace ampc::cuda
