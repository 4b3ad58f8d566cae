// com.ampc optimizer and training-state ops.
#include "ir/op_registry.h"

namespace ampc {

void RegisterOptimizerOps(OpRegistry& r) { (void)r; }

}  // namespace ampc
