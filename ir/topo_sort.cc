#include "ir/topo_sort.h"

#include <queue>

namespace ampc {

StatusOr<std::vector<int>> TopologicalOrder(const std::vector<std::vector<int>>& preds,
                                            const std::function<std::string(int)>& describe) {
  const int n = static_cast<int>(preds.size());
  std::vector<int> pending(n);
  std::vector<std::vector<int>> succs(n);
  for (int i = 0; i < n; ++i) {
    pending[i] = static_cast<int>(preds[i].size());
    for (int p : preds[i]) succs[p].push_back(i);
  }
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int i = 0; i < n; ++i) {
    if (pending[i] == 0) ready.push(i);
  }
  std::vector<int> order;
  order.reserve(n);
  while (!ready.empty()) {
    const int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int s : succs[i]) {
      if (--pending[s] == 0) ready.push(s);
    }
  }
  if (static_cast<int>(order.size()) == n) return order;
  // Walk backwards through unplaced predecessors until an item repeats: it is on a cycle.
  int k = 0;
  while (pending[k] == 0) ++k;
  std::vector<bool> seen(n, false);
  while (!seen[k]) {
    seen[k] = true;
    for (int p : preds[k]) {
      if (pending[p] > 0) {
        k = p;
        break;
      }
    }
  }
  return InvalidArgument("the graph has a cycle through " + describe(k));
}

}  // namespace ampc
