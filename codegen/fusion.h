// Fusion: groups elementwise nodes (codegen/fused_kernel.h's IsFusibleElementwise) into fusion
// groups, each computed by one generated kernel. A group is a maximal set of nodes with outputs
// of one static shape, connected through the values they pass each other (chains and trees, and
// DAGs with shared operands); inputs may broadcast. Values a group passes only between its own
// nodes are never stored; each keeps the dtype autocast gave it (the kernel rounds to it).
//
// Optimizer updates (com.ampc SGD / Adam) are node kernels: each a group of its own, or with
// FusionOptions::multi_tensor_args, groups of updates that share attributes, lr, step and apply
// flag, each group one multi-tensor kernel (one pass, one launch, for many parameters).
//
// Legality: the groups' kernels run where each group's last node stood. A group stays open to new
// members until a node outside it reads one of its values; after that it is closed, so no member
// follows an outside reader and no cycle through outside nodes can form.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"

namespace ampc {

inline constexpr const char* kFusionGroupAnnotation = "fusion_group";

struct FusionGroup {
  std::vector<const Node*> nodes;     // in execution order
  std::vector<const Value*> inputs;   // read from outside, in order of first use
  std::vector<const Value*> outputs;  // read outside, graph outputs or state updates
};

struct FusionOptions {
  int max_nodes = 64;           // per group
  bool allow_symbolic = false;  // group nodes of equal symbolic shapes too (for inspection only)
  // > 0: optimizer updates of one signature (fused_kernel.h's MultiTensorSignature) share a
  // multi-tensor kernel of at most this many buffers (at most plan.h's kMaxKernelArgs).
  int multi_tensor_args = 0;
};

// Annotates each fused node with #fusion_group="N" (N = 0, 1, ... in order of the groups' last
// nodes) and returns the number of groups. Nodes that were annotated before are regrouped.
int FuseElementwise(Graph& g, const FusionOptions& o = {});

// The groups recorded in `g`'s annotations, ordered by their last node.
StatusOr<std::vector<FusionGroup>> CollectFusionGroups(const Graph& g);

}  // namespace ampc
