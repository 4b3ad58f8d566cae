// What compute devices this process can use: the CPU always; CUDA GPUs when ampc was built
// with the CUDA toolkit and a driver and device are present.
#pragma once

#include <string>

namespace ampc {

struct CudaAvailability {
  bool built_with_cuda = false;
  int device_count = 0;
  std::string reason;  // why no device is usable, when device_count == 0
};

CudaAvailability ProbeCuda();
// Human-readable listing for `ampc devices`.
std::string DescribeDevices();

}  // namespace ampc
