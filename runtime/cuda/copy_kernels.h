// The CUDA executor's own kernels (copy_kernels.cu, compiled by nvcc for sm_80 and sm_90): the
// data movement the generated kernels do not cover. Each launch is asynchronous on `stream` (a
// cudaStream_t) and returns the launch's cudaError_t as an int (0: success).
#pragma once

#include "runtime/cuda/copy_desc.h"

namespace ampc::cuda {

int LaunchStridedCopy(const StridedCopy& c, const void* in, void* out, void* stream);
int LaunchGather(const GatherDesc& g, const void* data, const void* indices, void* out,
                 void* stream);

}  // namespace ampc::cuda
