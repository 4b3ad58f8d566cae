// CPU kernels for the com.ampc optimizer ops (ir/ops/optimizer_ops.cc).
#include "runtime/cpu/kernel.h"

namespace ampc::cpu {

void RegisterOptimizerKernels(KernelRegistry& r) { (void)r; }

}  // namespace ampc::cpu
