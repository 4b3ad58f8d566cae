// CPU kernels for the com.ampc backward ops (ir/ops/grad_ops.cc).
#include "runtime/cpu/kernel.h"

namespace ampc::cpu {

void RegisterGradKernels(KernelRegistry& r) { (void)r; }

}  // namespace ampc::cpu
