#include "runtime/device_info.h"

#include <thread>

#ifdef AMPC_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace ampc {

CudaAvailability ProbeCuda() {
  CudaAvailability a;
#ifdef AMPC_HAVE_CUDA
  a.built_with_cuda = true;
  int count = 0;
  // Without a driver this returns an error (e.g. cudaErrorInsufficientDriver) and leaves the
  // count untouched, so the error code is what decides.
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    a.reason = std::string("CUDA unavailable: ") + cudaGetErrorString(err);
  } else if (count == 0) {
    a.reason = "no CUDA device found";
  } else {
    a.device_count = count;
  }
#else
  a.reason = "ampc was built without the CUDA toolkit";
#endif
  return a;
}

std::string DescribeDevices() {
  std::string s = "cpu: " + std::to_string(std::thread::hardware_concurrency()) + " threads\n";
  const CudaAvailability a = ProbeCuda();
#ifdef AMPC_HAVE_CUDA
  for (int i = 0; i < a.device_count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    s += "cuda:" + std::to_string(i) + ": " + p.name + ", sm_" + std::to_string(p.major) +
         std::to_string(p.minor) + ", " + std::to_string(p.totalGlobalMem >> 20) + " MiB\n";
  }
#endif
  if (a.device_count == 0) s += "cuda: none (" + a.reason + ")\n";
  return s;
}

}  // namespace ampc
