// Stable topological ordering of n items given each item's predecessors (used for Graph nodes
// and for ONNX NodeProtos before they become Nodes).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ir/status.h"

namespace ampc {

// Returns the items in an order where every item comes after its predecessors; among ready
// items the lowest index goes first, so an already sorted list is returned unchanged.
// `preds[i]` may repeat an item. On a cycle, fails with "the graph has a cycle through " +
// describe(k) for an item k that lies on the cycle.
StatusOr<std::vector<int>> TopologicalOrder(const std::vector<std::vector<int>>& preds,
                                            const std::function<std::string(int)>& describe);

}  // namespace ampc
