#include "passes/paint_precision.h"

#include <functional>
#include <optional>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "ir/user_regex.h"

namespace ampc {
namespace {

enum class Cls { kAllow, kDeny, kInfer, kClear, kNone };

struct Paint {
  DType dtype = DType::kUndefined;  // kUndefined: integer-only node, not painted
  std::string reason;
};

bool HasFloatIO(const Node& n) {
  for (const Value* v : n.inputs()) {
    if (v && IsFloat(v->dtype())) return true;
  }
  for (const Value* v : n.outputs()) {
    if (v && IsFloat(v->dtype())) return true;
  }
  return false;
}

std::string PaintName(DType t) {
  if (t == DType::kUndefined) return "-";
  return std::string(DTypeName(t));
}

}  // namespace

StatusOr<bool> PaintPrecisionPass::Run(Graph& g) {
  if (opts_.half != DType::kFloat16 && opts_.half != DType::kBFloat16) {
    return InvalidArgument("autocast needs f16 or bf16 as the half type");
  }
  std::optional<UserRegex> pin_re;
  if (!opts_.fp32_nodes.empty()) {
    ASSIGN_OR_RETURN(pin_re, UserRegex::Compile(opts_.fp32_nodes, "--fp32-nodes"));
  }
  const AmpLists& L = opts_.lists;
  auto cls = [&](const Node& n) {
    const std::string& op = n.op_type();
    if (L.allow.count(op)) return Cls::kAllow;
    if (L.deny.count(op)) return Cls::kDeny;
    if (L.infer.count(op)) return Cls::kInfer;
    if (L.clear.count(op)) return Cls::kClear;
    return Cls::kNone;
  };
  const std::vector<Node*> nodes = g.nodes();
  std::unordered_map<std::string, Node*> by_name;
  for (Node* n : nodes) by_name.emplace(n->name(), n);
  std::unordered_map<const Node*, Paint> paint;
  std::unordered_set<Node*> forward, pinned, deny, half;

  for (Node* n : nodes) {
    const auto& a = n->annotations();
    if (!HasFloatIO(*n)) {
      paint[n] = {DType::kUndefined, "integer"};
      continue;
    }
    if (auto r = a.find("role"); r != a.end()) {
      paint[n] = {DType::kFloat32,
                  r->second == "loss" ? "loss" : r->second + ": fp32 master update"};
      continue;
    }
    if (n->op_type() == "Cast" && n->domain().empty()) {
      paint[n] = {n->output(0) ? n->output(0)->dtype() : DType::kFloat32, "cast in the model"};
      continue;
    }
    if (a.count("grad_of")) continue;
    forward.insert(n);
    if (pin_re && pin_re->Search(n->name())) {
      pinned.insert(n);
      deny.insert(n);
      paint[n] = {DType::kFloat32, "user: --fp32-nodes"};
    } else if (opts_.supports && cls(*n) != Cls::kDeny && cls(*n) != Cls::kNone &&
               !opts_.supports(*n, opts_.half)) {
      // The target's veto acts like the deny list: it spreads through infer and clear ops, so
      // nothing is narrowed to half only to be widened again.
      deny.insert(n);
      paint[n] = {DType::kFloat32,
                  "target: no " + std::string(DTypeName(opts_.half)) + " " + n->op_type()};
    } else if (opts_.half_cost && cls(*n) == Cls::kAllow) {
      if (std::string why = opts_.half_cost(*n); !why.empty()) {
        deny.insert(n);
        paint[n] = {DType::kFloat32, why};
      }
    }
  }
  auto consumers = [&](const Node* n, const std::function<void(Node*)>& f) {
    for (const Value* o : n->outputs()) {
      if (!o || !IsFloat(o->dtype())) continue;
      for (const Use& u : o->uses()) f(u.user);
    }
  };
  auto producers = [&](const Node* n, const std::function<void(Node*)>& f) {
    for (const Value* v : n->inputs()) {
      if (v && IsFloat(v->dtype()) && v->producer()) f(v->producer());
    }
  };
  // How n's float inputs vote for half: a produced value by its producer's paint, a graph input
  // or initializer that already is half votes half, an fp32 one abstains (it is cast anyway).
  auto votes = [&](const Node* n, const std::function<bool(const Node*)>& is_half, bool* any,
                   bool* all, std::string* from) {
    for (const Value* v : n->inputs()) {
      if (!v || !IsFloat(v->dtype())) continue;
      bool h;
      const Node* p = v->producer();
      if (p && p->domain().empty() &&
          (p->op_type() == "Constant" || p->op_type() == "ConstantOfShape")) {
        p = nullptr;  // constants are data, like initializers
      }
      if (p) {
        h = is_half(p);
        if (from->empty()) *from = p->name();
      } else if (v->dtype() == opts_.half) {
        h = true;
        if (from->empty()) *from = v->name();
      } else {
        continue;
      }
      *any = *any || h;
      *all = *all && h;
    }
  };
  // Casts in the model that produce the half type count as half producers.
  for (Node* n : nodes) {
    if (n->op_type() == "Cast" && n->domain().empty() && n->output(0) &&
        n->output(0)->dtype() == opts_.half) {
      half.insert(n);
    }
  }
  // 1. allow.
  for (Node* n : forward) {
    if (!deny.count(n) && cls(*n) == Cls::kAllow) {
      half.insert(n);
      paint[n] = {opts_.half, "allow-list"};
    }
  }
  // 2. deny, spread forward through infer and clear.
  std::queue<Node*> q;
  for (Node* n : forward) {
    if (!deny.count(n) && cls(*n) == Cls::kDeny) {
      deny.insert(n);
      paint[n] = {DType::kFloat32, "deny-list"};
    }
    if (deny.count(n)) q.push(n);
  }
  while (!q.empty()) {
    Node* n = q.front();
    q.pop();
    consumers(n, [&](Node* c) {
      const Cls k = cls(*c);
      if (!forward.count(c) || deny.count(c) || half.count(c) ||
          (k != Cls::kInfer && k != Cls::kClear))
        return;
      deny.insert(c);
      paint[c] = {DType::kFloat32, "deny: after " + n->name()};
      q.push(c);
    });
  }
  auto flexible = [&](Node* n) {
    const Cls k = cls(*n);
    return forward.count(n) && !deny.count(n) && !half.count(n) &&
           (k == Cls::kInfer || k == Cls::kClear);
  };
  // 3. infer/clear between two half ops.
  auto reach = [&](bool down) {
    std::unordered_set<Node*> seen;
    std::queue<Node*> w;
    for (Node* n : half) {
      auto push = [&](Node* m) {
        if (flexible(m) && seen.insert(m).second) w.push(m);
      };
      down ? consumers(n, push) : producers(n, push);
    }
    while (!w.empty()) {
      Node* n = w.front();
      w.pop();
      auto push = [&](Node* m) {
        if (flexible(m) && seen.insert(m).second) w.push(m);
      };
      down ? consumers(n, push) : producers(n, push);
    }
    return seen;
  };
  const auto down = reach(true), up = reach(false);
  for (Node* n : nodes) {
    if (down.count(n) && up.count(n)) {
      half.insert(n);
      paint[n] = {opts_.half, "between half ops"};
    }
  }
  // 4. clear ops connected to half ops through clear ops.
  for (Node* n : nodes) {
    if (half.count(n)) q.push(n);
  }
  while (!q.empty()) {
    Node* n = q.front();
    q.pop();
    auto visit = [&](Node* m) {
      if (!flexible(m) || cls(*m) != Cls::kClear) return;
      half.insert(m);
      paint[m] = {opts_.half, "clear: follows " + n->name()};
      q.push(m);
    };
    consumers(n, visit);
    producers(n, visit);
  }
  // 5. infer ops whose producing inputs are all half; 6. the rest is fp32.
  for (Node* n : nodes) {
    if (!forward.count(n) || paint.count(n)) continue;
    const Cls k = cls(*n);
    if (k == Cls::kInfer || k == Cls::kClear) {
      bool any = false, all = true;
      std::string from;
      votes(
          n, [&](const Node* p) { return half.count(const_cast<Node*>(p)) > 0; }, &any, &all,
          &from);
      if (any && all) {
        half.insert(n);
        paint[n] = {opts_.half, k == Cls::kInfer ? "infer: inputs half" : "clear: follows " + from};
      } else {
        paint[n] = {DType::kFloat32,
                    k == Cls::kInfer ? "infer: an input is fp32" : "clear: inputs fp32"};
      }
      continue;
    }
    paint[n] = {DType::kFloat32, "not in any list"};
  }
  // Backward nodes follow their forward node unless allow or deny names their own op.
  for (Node* n : nodes) {
    if (paint.count(n)) continue;
    const std::string& of = n->annotations().at("grad_of");
    auto it = by_name.find(of);
    Node* f = it == by_name.end() ? nullptr : it->second;
    if (f && pinned.count(f)) {
      paint[n] = {DType::kFloat32, "user: --fp32-nodes (grad_of " + of + ")"};
    } else if (cls(*n) == Cls::kAllow) {
      const std::string why = opts_.half_cost ? opts_.half_cost(*n) : "";
      paint[n] = why.empty() ? Paint{opts_.half, "allow-list"} : Paint{DType::kFloat32, why};
    } else if (cls(*n) == Cls::kDeny) {
      paint[n] = {DType::kFloat32, "deny-list"};
    } else if (cls(*n) == Cls::kClear) {  // data movement keeps whatever precision it is given
      bool any = false, all = true;
      std::string from;
      votes(
          n, [&](const Node* p) { return paint.count(p) && paint[p].dtype == opts_.half; }, &any,
          &all, &from);
      paint[n] = {any && all ? opts_.half : DType::kFloat32,
                  "clear: follows " + (from.empty() ? of : from)};
    } else if (f && paint.count(f) && paint[f].dtype != DType::kUndefined) {
      paint[n] = {paint[f].dtype == opts_.half ? opts_.half : DType::kFloat32, "grad_of " + of};
    } else {
      paint[n] = {DType::kFloat32, "grad_of " + of};
    }
  }

  // Annotate; report whether any annotation changed.
  bool changed = false;
  half_nodes_ = fp32_nodes_ = 0;
  for (Node* n : nodes) {
    Paint& p = paint[n];
    if (p.dtype == opts_.half && opts_.supports && !opts_.supports(*n, opts_.half)) {
      p = {DType::kFloat32,
           "target: no " + std::string(DTypeName(opts_.half)) + " " + n->op_type()};
    }
    auto& a = n->annotations();
    const std::string precision = PaintName(p.dtype);
    changed = changed || a["precision"] != precision || a["reason"] != p.reason;
    a["precision"] = precision;
    a["reason"] = p.reason;
    if (p.dtype == DType::kUndefined) continue;
    if (p.dtype == opts_.half) {
      ++half_nodes_;
    } else {
      ++fp32_nodes_;
    }
  }
  return changed;
}

}  // namespace ampc
