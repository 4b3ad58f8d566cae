// Node kernels: one node emitted as a kernel of its own from a template per op (a fusion group of
// one node; codegen/fused_kernel.h's IsNodeKernel and FusedKernel::NodeOp). Internal to codegen/:
// fused_kernel.cc dispatches here for groups of one such node.
//
// Numerics are those of the per-op kernels, operation for operation:
// - SGD / Adam (runtime/cpu/kernels_optimizer.cc): coefficients that depend only on attributes
//   are formed in double here and embedded as f32 constants; those that depend on the lr and step
//   inputs (Adam's bias corrections, pow in double) are formed in the kernel, once per unit of a
//   block of elements; the element update in f32 in the per-op kernel's order; `apply` false
//   stores the inputs' bits unchanged. A negative step is the per-op kernel's error: the kernel
//   lists the step as a non-negative argument, and the executor runs the per-op fallback instead
//   when it is negative (which reports the error).
// - AllFinite: whether any element has all exponent bits set (the per-op kernel's test).
// - UpdateLossScale: GradScaler's update on scalars.
#pragma once

#include <string>
#include <vector>

#include "codegen/fused_kernel.h"

namespace ampc::node_kernels {

bool Supported(const Node& n, bool allow_symbolic);

// The kernel of node n, whose group reads `inputs` and stores `outputs`.
StatusOr<FusedKernel> Build(const Node& n, const std::vector<const Value*>& inputs,
                            const std::vector<const Value*>& outputs);

std::string Key(const FusedKernel& k);
std::string EmitMlir(const FusedKernel& k, const std::string& name);

}  // namespace ampc::node_kernels
