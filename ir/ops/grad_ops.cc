// com.ampc backward ops used by gradient rules (frontend/training/gradients.cc).
#include "ir/op_registry.h"

namespace ampc {

void RegisterGradOps(OpRegistry& r) { (void)r; }

}  // namespace ampc
