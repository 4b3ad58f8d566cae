// What compute devices this process can use: the CPU always; CUDA GPUs when ampc was built
// with the CUDA toolkit and a driver and device are present.
#pragma once

#include <string>

#include "ir/status.h"

namespace ampc {

struct CudaAvailability {
  bool built_with_cuda = false;
  int device_count = 0;
  std::string reason;  // why no device is usable, when device_count == 0
};

CudaAvailability ProbeCuda();

// The device a run uses, from `--device`: auto | cpu | cuda | cuda:N.
struct DeviceChoice {
  std::string device;       // "cpu" or "cuda:N"
  std::string notice;       // auto without a usable GPU: one line saying why the CPU runs it
  std::string cuda_target;  // cuda: the plan target for this GPU ("cuda:sm_80", "cuda:sm_90")
};
// auto is cuda:0 when a GPU is usable, else cpu with a notice; cuda or cuda:N without a usable
// GPU (or with fewer GPUs) is an error naming why.
StatusOr<DeviceChoice> ResolveDevice(const std::string& flag);
// The plan target whose kernels a GPU of compute capability major.minor runs: sm_80 SASS for
// 8.x, sm_90 for 9.0 and PTX JIT-compiled by the driver for anything newer; below 8.0, an error.
StatusOr<std::string> CudaTargetFor(int major, int minor);
// Human-readable listing for `ampc devices`.
std::string DescribeDevices();

}  // namespace ampc
