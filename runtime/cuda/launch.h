// How the CUDA executor launches a plan's generated kernel: a pure function of the kernel's
// table entry (codegen: LaunchRule and params) and the step's operands, so everything about a
// launch except the device itself is decided and tested without a GPU.
//
// A generated CUDA kernel (codegen/mlir_compile.cc) computes the units [begin, end) of its range
// output, one unit per thread, in a 1-D grid of ceil(units / block_threads) blocks of
// block_threads threads. Its parameters, in `Kernel.params` order, are 8-byte values:
//   "begin", "end"  the unit range (here always [0, units));
//   "const:V"       the index constant V;
//   "arg:J"         the step's J-th operand (inputs then outputs) as the five fields of a 1-D
//                   memref descriptor: allocated pointer, aligned pointer, offset 0, size (the
//                   operand's element count), stride 1.
// Operands the kernel does not read are absent from params (MLIR's outlining drops them).
#pragma once

#include <cstdint>
#include <vector>

#include "codegen/plan.pb.h"
#include "ir/status.h"

namespace ampc::cuda {

// One operand of a step on the device.
struct DeviceOperand {
  uint64_t address = 0;  // device pointer
  int64_t elements = 0;
  int64_t bytes = 0;
};

struct KernelLaunch {
  int64_t units = 0;            // threads with work
  uint32_t grid = 0;            // blocks (x); 0 when there is no work
  uint32_t block = 0;           // threads per block (x)
  std::vector<uint64_t> slots;  // the kernel's parameters, in order, 8 bytes each
  // LaunchRule.fill_range_output: set these bytes to fill_byte before the launch.
  uint64_t fill_address = 0;
  int64_t fill_bytes = 0;
  uint8_t fill_byte = 0;
};

// The largest grid.x a launch may use (CUDA's limit for compute capability >= 3.0).
inline constexpr int64_t kMaxGridX = (int64_t{1} << 31) - 1;

// Errors name what does not fit: a param naming an operand the step does not have, a range
// output the rows do not divide, a grid over kMaxGridX.
StatusOr<KernelLaunch> PlanKernelLaunch(const plan::Kernel& k,
                                        const std::vector<DeviceOperand>& inputs,
                                        const std::vector<DeviceOperand>& outputs);

// The image of `k` a GPU of compute capability major.minor loads: a CUBIN of the same major
// version and no newer minor (SASS of sm_80 runs on sm_86; sm_90's only on sm_90), else a PTX of
// an architecture no newer than the GPU (the driver compiles it); else an error naming the target
// to compile for.
StatusOr<const plan::KernelImage*> ChooseKernelImage(const plan::Kernel& k, int major, int minor);

// The number of 8-byte kernel parameters `params` expands to (5 per operand): what the kernel's
// PTX declares.
StatusOr<int> KernelParamSlots(const plan::Kernel& k);

}  // namespace ampc::cuda
