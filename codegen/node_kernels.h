// Node kernels: one node emitted as a kernel of its own from a template per op (a fusion group of
// one node; codegen/fused_kernel.h's IsNodeKernel and FusedKernel::NodeOp). Internal to codegen/:
// fused_kernel.cc dispatches here for groups of one such node.
//
// Numerics are those of the per-op kernels, operation for operation:
// - LayerNormalization (runtime/cpu/kernels_norm.cc) and RMSNormalization
//   (kernels_group_rms_norm.cc), one row per unit: mean and variance (mean square) summed in
//   double in runtime/cpu/sums.h's order (8 partial sums by index mod 8), then f32.
// - Softmax / LogSoftmax, one [outer, inner] position's C elements per unit: max and the f32 sum
//   of exp in element order, as the per-op SoftmaxSlab.
// - SoftmaxCrossEntropyLoss, one unit: per (n, d) in order the log-softmax, the term
//   -w[label] * logp[label] in f32 and the sums of terms and weights in double. The labels are
//   the kernel's argument checks (in [0, C) or the ignore_index): where one is not, the executor
//   runs the per-op fallback, which reports it.
// - SGD / Adam (runtime/cpu/kernels_optimizer.cc): coefficients that depend only on attributes
//   are formed in double here and embedded as f32 constants; those that depend on the lr and step
//   inputs (Adam's bias corrections, pow in double) are formed in the kernel, once per unit of a
//   block of elements; the element update in f32 in the per-op kernel's order; `apply` false
//   stores the inputs' bits unchanged. A negative step is the per-op kernel's error: the step is
//   an argument check (>= 0), so the executor runs the per-op fallback, which reports it.
// - GatherGrad (f32; kernels_grad.cc), one [outer, inner] position of dData per unit: zeroed,
//   then dY's rows added in index order. Indices are argument checks.
// - AllFinite: whether any element has all exponent bits set (the per-op kernel's test).
// - UpdateLossScale: GradScaler's update on scalars.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "codegen/fused_kernel.h"

namespace ampc::node_kernels {

bool Supported(const Node& n, bool allow_symbolic);

// The kernel of node n, whose group reads `inputs` and stores `outputs`.
StatusOr<FusedKernel> Build(const Node& n, const std::vector<const Value*>& inputs,
                            const std::vector<const Value*>& outputs);

bool Groupable(const Node& n);
std::string GroupSignature(const Node& n);
std::pair<int, int> GroupArgs(const Node& n);  // {own, shared} buffers

// One multi-tensor kernel for optimizer `nodes` of one signature (Groupable,
// GroupSignature), each member's update its single-node kernel's, element for element.
StatusOr<FusedKernel> BuildMulti(const std::vector<const Node*>& nodes,
                                 const std::vector<const Value*>& inputs,
                                 const std::vector<const Value*>& outputs);

std::string Key(const FusedKernel& k);
std::string EmitMlir(const FusedKernel& k, const std::string& name);

}  // namespace ampc::node_kernels
