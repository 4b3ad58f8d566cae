// Temporary: empty registration functions until the kernel files land.
#include "runtime/cpu/kernel.h"
namespace ampc::cpu {
void RegisterElementwiseKernels(KernelRegistry&) {}
void RegisterShapeKernels(KernelRegistry&) {}
void RegisterNNKernels(KernelRegistry&) {}
void RegisterReductionKernels(KernelRegistry&) {}
}  // namespace ampc::cpu
