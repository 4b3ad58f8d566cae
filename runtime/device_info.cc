#include "runtime/device_info.h"

#include <thread>

#include "runtime/cuda/executor.h"

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
  if (err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice) {
    // What a machine without an NVIDIA GPU reports (no driver, or a driver without devices).
    a.reason = err == cudaErrorNoDevice
                   ? "no CUDA device found"
                   : "no NVIDIA driver loaded, or one older than this CUDA runtime";
  } else if (err != cudaSuccess) {
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

StatusOr<std::string> CudaTargetFor(int major, int minor) {
  if (major == 8) return std::string("cuda:sm_80");
  if (major >= 9) return std::string("cuda:sm_90");
  return Unimplemented("a GPU of compute capability " + std::to_string(major) + "." +
                       std::to_string(minor) + ": ampc's CUDA kernels need 8.0 (Ampere) or newer");
}

StatusOr<DeviceChoice> ResolveDevice(const std::string& flag) {
  DeviceChoice c;
  if (flag == "cpu") {
    c.device = "cpu";
    return c;
  }
  int index = 0;
  if (flag != "auto") {
    ASSIGN_OR_RETURN(index, cuda::ParseCudaDevice(flag));
  }
  const CudaAvailability a = ProbeCuda();
  if (a.device_count == 0) {
    if (flag == "auto") {
      c.device = "cpu";
      c.notice = "no usable GPU (" + a.reason + "); running on the CPU";
      return c;
    }
    return InvalidArgument("--device " + flag + ": no usable GPU (" + a.reason + ")");
  }
  if (index >= a.device_count) {
    return InvalidArgument("--device " + flag + ": this machine has " +
                           std::to_string(a.device_count) + " GPU(s)");
  }
#ifdef AMPC_HAVE_CUDA
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, index) != cudaSuccess) {
    return InvalidArgument("--device " + flag + ": cannot read GPU " + std::to_string(index));
  }
  auto target = CudaTargetFor(p.major, p.minor);
  if (!target.ok()) {
    if (flag != "auto") return target.status();
    c.device = "cpu";
    c.notice = target.status().message() + "; running on the CPU";
    return c;
  }
  c.cuda_target = *target;
#endif
  c.device = "cuda:" + std::to_string(index);
  return c;
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
