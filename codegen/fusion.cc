#include "codegen/fusion.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include "codegen/fused_kernel.h"

namespace ampc {
namespace {

bool NonEmpty(const Value* v) {
  for (const Dim& d : v->type().dims) {
    if (d.is_static() && d.value() == 0) return false;
  }
  return true;
}

}  // namespace

int FuseElementwise(Graph& g, const FusionOptions& o) {
  // Union-find over group ids; a group is open until an outside node reads one of its values.
  std::vector<int> parent;
  std::vector<bool> closed;
  std::vector<int> size;
  std::vector<std::vector<Dim>> shape;
  std::vector<bool> optimizer;  // a group of optimizer updates (nothing else joins it)
  std::vector<int> args;        // an optimizer group's buffers
  auto find = [&](int x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  auto new_group = [&](const std::vector<Dim>& dims) {  // an open group of one node
    const int id = static_cast<int>(parent.size());
    parent.push_back(id);
    closed.push_back(false);
    size.push_back(1);
    shape.push_back(dims);
    optimizer.push_back(false);
    args.push_back(0);
    return id;
  };
  std::unordered_map<std::string, int> open_optimizer;  // signature -> its latest group
  std::unordered_map<const Node*, int> group;
  for (Node* n : g.nodes()) {
    n->annotations().erase(kFusionGroupAnnotation);
    // Groups whose values n reads.
    std::vector<int> read;
    for (const Value* in : n->inputs()) {
      if (!in || !in->producer()) continue;
      auto it = group.find(in->producer());
      if (it != group.end()) read.push_back(find(it->second));
    }
    std::sort(read.begin(), read.end());
    read.erase(std::unique(read.begin(), read.end()), read.end());
    const bool fusible = IsFusibleElementwise(*n, o.allow_symbolic) && NonEmpty(n->output(0));
    int joined = -1;
    if (o.multi_tensor_args > 0 && IsMultiTensorOptimizer(*n)) {
      const std::string sig = MultiTensorSignature(*n);
      const auto [own, shared] = MultiTensorArgs(*n);
      auto it = open_optimizer.find(sig);
      const int g0 = it == open_optimizer.end() ? -1 : find(it->second);
      if (g0 >= 0 && !closed[g0] && args[g0] + own <= o.multi_tensor_args) {
        joined = g0;
        ++size[g0];
        args[g0] += own;
      } else {
        joined = new_group({});
        optimizer[joined] = true;
        args[joined] = own + shared;
        open_optimizer[sig] = joined;
      }
      group[n] = joined;
    } else if (IsNodeKernel(*n, o.allow_symbolic)) {
      joined = new_group({});  // a kernel of its own
      closed[joined] = true;
      group[n] = joined;
    } else if (IsFusibleReduction(*n, o.allow_symbolic)) {
      // The end of a group: the open group computing its input takes it as its last node.
      const Node* p = n->input(0)->producer();
      auto it = p ? group.find(p) : group.end();
      const int g0 = it == group.end() ? -1 : find(it->second);
      if (g0 >= 0 && !closed[g0] && !optimizer[g0] && shape[g0] == n->input(0)->type().dims &&
          size[g0] < o.max_nodes) {
        joined = g0;
        ++size[g0];
      } else {
        joined = new_group(n->input(0)->type().dims);
      }
      closed[joined] = true;  // nothing joins after the reduction
      group[n] = joined;
    } else if (fusible) {
      const std::vector<Dim>& d = n->output(0)->type().dims;
      int total = 1;
      std::vector<int> join;
      for (int r : read) {
        if (!closed[r] && !optimizer[r] && shape[r] == d) {
          join.push_back(r);
          total += size[r];
        }
      }
      if (!join.empty() && total <= o.max_nodes) {
        joined = join[0];
        for (size_t i = 1; i < join.size(); ++i) {
          parent[join[i]] = joined;
          size[joined] += size[join[i]];
        }
        ++size[joined];
      } else {
        joined = new_group(d);
      }
      group[n] = joined;
    }
    for (int r : read) {
      if (r != joined) closed[r] = true;  // an outside reader
    }
  }
  // Number the groups by their last node.
  std::map<int, int> number;
  std::vector<Node*> nodes(g.nodes().begin(), g.nodes().end());
  std::unordered_map<int, size_t> last;
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto it = group.find(nodes[i]);
    if (it != group.end()) last[find(it->second)] = i;
  }
  std::vector<std::pair<size_t, int>> order;
  for (const auto& [root, pos] : last) order.push_back({pos, root});
  std::sort(order.begin(), order.end());
  for (const auto& [pos, root] : order) number[root] = static_cast<int>(number.size());
  for (Node* n : nodes) {
    auto it = group.find(n);
    if (it != group.end()) {
      n->annotations()[kFusionGroupAnnotation] = std::to_string(number.at(find(it->second)));
    }
  }
  return static_cast<int>(number.size());
}

StatusOr<std::vector<FusionGroup>> CollectFusionGroups(const Graph& g) {
  std::map<int, FusionGroup> groups;
  std::unordered_map<const Node*, int> of;
  for (const Node* n : g.nodes()) {
    auto it = n->annotations().find(kFusionGroupAnnotation);
    if (it == n->annotations().end()) continue;
    int id = -1;
    try {
      id = std::stoi(it->second);
    } catch (...) {
    }
    if (id < 0) {
      return InvalidArgument(n->Describe() + ": bad fusion_group annotation '" + it->second + "'");
    }
    groups[id].nodes.push_back(n);
    of[n] = id;
  }
  std::unordered_set<const Value*> escapes(g.outputs().begin(), g.outputs().end());
  for (const StateUpdate& u : g.state_updates()) escapes.insert(u.next);
  for (auto& [id, grp] : groups) {
    std::unordered_set<const Value*> seen;
    for (const Node* n : grp.nodes) {
      const bool reduction = IsFusibleReduction(*n);
      for (int i = 0; i < n->num_inputs(); ++i) {
        const Value* in = n->input(i);
        if (!in || (reduction && i > 0)) continue;  // a reduction's axes are compiled in
        const Node* p = in->producer();
        const bool inside = p && of.count(p) && of.at(p) == id;
        if (!inside && seen.insert(in).second) grp.inputs.push_back(in);
      }
    }
    for (const Node* n : grp.nodes) {
      for (const Value* out : n->outputs()) {  // several only for a node kernel
        if (!out) continue;
        bool outside = escapes.count(out) > 0;
        for (const Use& u : out->uses()) {
          outside = outside || !of.count(u.user) || of.at(u.user) != id;
        }
        if (outside) grp.outputs.push_back(out);
      }
    }
  }
  std::vector<FusionGroup> out;
  for (auto& [id, grp] : groups) {
    if (id != static_cast<int>(out.size())) {
      return InvalidArgument("fusion groups are not numbered 0.." + std::to_string(groups.size()));
    }
    out.push_back(std::move(grp));
  }
  return out;
}

}  // namespace ampc
