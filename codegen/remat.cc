#include "codegen/remat.h"

#include <algorithm>
#include <climits>
#include <functional>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "codegen/fused_kernel.h"

namespace ampc {
namespace {

bool IsBackward(const Node& n) { return n.annotations().count("grad_of") > 0; }

// A backward node that fuses with an elementwise producer (so reading a recomputed value costs
// no store).
bool FusesWithProducer(const Node& n) { return IsFusibleElementwise(n) || IsFusibleReduction(n); }

}  // namespace

int RematerializeForBackward(Graph& g, const RematOptions& o) {
  const std::vector<Node*> order = g.nodes();
  std::map<const Node*, int> pos;
  for (size_t i = 0; i < order.size(); ++i) pos[order[i]] = static_cast<int>(i);
  // A forward node the backward may recompute: elementwise, fusible, one output.
  auto recomputable = [](const Node* n) {
    return n && !IsBackward(*n) && n->num_outputs() == 1 && n->output(0) &&
           IsFusibleElementwise(*n);
  };
  // Roots: values of recomputable nodes whose backward readers all fuse with a producer (every
  // backward read can move to a copy, so the forward need not keep the value for the backward).
  // Also read by other backward nodes (a GEMM), the value is stored anyway and stays as it is.
  std::set<const Value*> roots;
  for (Node* n : order) {
    if (!recomputable(n)) continue;
    const Value* v = n->output(0);
    if (g.IsRoot(v)) continue;
    bool any = false, all = true;
    for (const Use& u : v->uses()) {
      if (!IsBackward(*u.user)) continue;
      any = true;
      all = all && FusesWithProducer(*u.user);
    }
    if (any && all) roots.insert(v);
  }
  // Values the backward holds anyway: initializers and constants, and values a backward node reads
  // that are not roots (they stay stored for it).
  auto held = [&](const Value* v) {
    if (v->kind() == ValueKind::kInitializer) return true;
    if (v->producer() && v->producer()->op_type() == "Constant") return true;  // plan constants
    if (roots.count(v)) return false;
    for (const Use& u : v->uses()) {
      if (IsBackward(*u.user)) return true;
    }
    return false;
  };
  // The forward nodes recomputing root v from held values, in order; empty when it would need a
  // value the backward does not hold (which would extend that value's life) or too many nodes.
  auto chain_of = [&](const Value* root) {
    std::vector<Node*> chain;
    std::set<const Node*> seen;
    bool ok = true;
    std::function<void(const Value*)> need = [&](const Value* v) {
      if (!ok || !v || (v != root && held(v))) return;
      Node* p = v->producer();
      if (!recomputable(p)) {
        ok = false;
        return;
      }
      if (!seen.insert(p).second) return;
      for (const Value* in : p->inputs()) need(in);
      chain.push_back(p);
      if (static_cast<int>(chain.size()) > o.max_chain) ok = false;
    };
    need(root);
    if (!ok) chain.clear();
    std::sort(chain.begin(), chain.end(), [&](Node* a, Node* b) { return pos[a] < pos[b]; });
    return chain;
  };
  // Roots in the order of their first backward reader, so that a copy made for an earlier
  // reader is defined before every later one and can be shared.
  // (first reader, producer): both positions, so the order does not depend on addresses.
  std::vector<std::tuple<int, int, const Value*>> by_reader;
  for (const Value* v : roots) {
    int first = INT_MAX;
    for (const Use& u : v->uses()) {
      if (IsBackward(*u.user)) first = std::min(first, pos[u.user]);
    }
    by_reader.push_back({first, pos[v->producer()], v});
  }
  std::sort(by_reader.begin(), by_reader.end());
  std::map<const Node*, Node*> copy;  // forward node -> its backward copy
  int done = 0;
  for (const auto& [first, producer_pos, root] : by_reader) {
    const std::vector<Node*> chain = chain_of(root);
    if (chain.empty()) continue;
    Node* at = order[first];
    for (Node* f : chain) {
      if (copy.count(f)) continue;
      std::vector<Value*> ins;
      for (Value* in : f->inputs()) {
        Node* p = in ? in->producer() : nullptr;
        ins.push_back(p && copy.count(p) ? copy[p]->output(0) : in);
      }
      auto c = g.AddNode(f->op_type(), f->domain(), g.UniqueName(f->name() + "_remat"), ins,
                         {g.UniqueName(f->output(0)->name() + "_remat")}, f->attrs());
      if (!c.ok()) return done;  // names are fresh: cannot happen
      Node* n = *c;
      n->output(0)->set_type(f->output(0)->type());
      n->annotations() = f->annotations();
      n->annotations()["grad_of"] = at->annotations().at("grad_of");
      n->annotations()["remat_of"] = f->name();
      g.MoveBefore(n, at);
      copy[f] = n;
    }
    Value* v = const_cast<Value*>(root);
    Value* c = copy[root->producer()]->output(0);
    std::vector<Use> uses = v->uses();
    for (const Use& u : uses) {
      if (IsBackward(*u.user) && !u.user->annotations().count("remat_of")) {
        u.user->SetInput(u.operand, c);
      }
    }
    ++done;
  }
  // A forward node only the backward read is now computed there alone: the original goes (in
  // reverse order, so a chain's nodes free each other).
  std::vector<Node*> originals;
  for (const auto& [f, c] : copy) originals.push_back(const_cast<Node*>(f));
  std::sort(originals.begin(), originals.end(), [&](Node* a, Node* b) { return pos[a] > pos[b]; });
  for (Node* f : originals) {
    if (f->output(0)->uses().empty() && !g.IsRoot(f->output(0))) g.RemoveNode(f);
  }
  return done;
}

}  // namespace ampc
