#include "ir/op_registry.h"
namespace ampc {
void RegisterElementwiseOps(OpRegistry&) {}
void RegisterShapeOps(OpRegistry&) {}
void RegisterNNOps(OpRegistry&) {}
void RegisterReductionOps(OpRegistry&) {}
}  // namespace ampc
