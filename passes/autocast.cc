#include "passes/autocast.h"

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <queue>
#include <regex>
#include <unordered_map>
#include <unordered_set>

#include "ir/op_registry.h"

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

// Inputs a precision change must not touch: type-agnostic inputs (Shape), an op's own target
// type (Cast), control scalars with their own type constraint (Dropout's ratio), and checks that
// read any float type (AllFinite).
bool CastsInput(const Node& n, int i) {
  const std::string& op = n.op_type();
  if (op == "Shape" || op == "Size" || op == "Cast" || op == "CastLike" || op == "AllFinite") return false;
  if (op == "Dropout" || op == "Resize") return i == 0;
  if (op == "BatchNormalization") return i < 3;
  return true;
}

bool ExactWidening(DType from, DType to) {
  if (from == to) return true;
  if (from == DType::kFloat16 || from == DType::kBFloat16) {
    return to == DType::kFloat32 || to == DType::kFloat64;
  }
  return from == DType::kFloat32 && to == DType::kFloat64;
}

// See AutocastStats: float outputs of forward nodes (not grad_of, no role) that depend on a
// graph input (weight casts are per-step copies, not activations), dynamic dims as 1.
int64_t ActivationBytes(const Graph& g, const std::map<std::string, int64_t>& dims) {
  int64_t total = 0;
  std::unordered_set<const Value*> data(g.inputs().begin(), g.inputs().end());
  for (const Node* n : g.nodes()) {
    bool fed = false;
    for (const Value* v : n->inputs()) fed = fed || (v && data.count(v));
    if (!fed) continue;
    for (const Value* v : n->outputs()) {
      if (v) data.insert(v);
    }
    const auto& a = n->annotations();
    if (a.count("grad_of") || a.count("role")) continue;
    for (const Value* v : n->outputs()) {
      if (!v || !IsFloat(v->dtype()) || !v->type().has_rank) continue;
      int64_t e = 1;
      for (const Dim& d : v->type().dims) {
        auto it = d.is_symbolic() ? dims.find(d.symbol()) : dims.end();
        e *= d.is_static() ? d.value() : it != dims.end() ? it->second : 1;
      }
      total += e * DTypeSize(v->dtype());
    }
  }
  return total;
}

std::string PrecisionName(DType t) {
  if (t == DType::kUndefined) return "-";
  return std::string(DTypeName(t));
}

}  // namespace

AmpLists DefaultAmpLists() {
  AmpLists l;
  l.allow = {"MatMul", "Gemm", "Conv", "ConvTranspose", "Einsum"};
  l.deny = {"Softmax", "LogSoftmax", "Exp", "Log", "Pow", "Reciprocal", "Sqrt", "Softplus",
            "Acos", "Asin", "Cosh", "Sinh", "Tan", "CumSum", "ReduceSum", "ReduceMean",
            "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
            "ReduceSumSquare", "LayerNormalization", "BatchNormalization",
            "InstanceNormalization", "GroupNormalization", "LpNormalization",
            "MeanVarianceNormalization", "SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss"};
  l.infer = {"Add", "Sub", "Mul", "Div", "Neg", "Abs", "Tanh", "Sigmoid", "Erf", "Clip", "Where",
             "AveragePool", "GlobalAveragePool", "Max", "Min", "Sum", "Mean", "LeakyRelu", "Elu",
             "Selu", "Celu", "HardSigmoid", "HardSwish", "Gelu", "PRelu", "Sin", "Cos", "Sign",
             "Floor", "Ceil", "Round", "Resize"};
  // Precision-transparent: data movement, and ops exact in any precision.
  l.clear = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Slice",
             "Split", "Concat", "Gather", "GatherElements", "GatherND", "Expand", "Tile", "Pad",
             "Relu", "MaxPool", "GlobalMaxPool", "Dropout", "Equal", "Less", "Greater",
             "LessOrEqual", "GreaterOrEqual", "ReduceMax", "ReduceMin", "TopK", "Trilu",
             "DepthToSpace", "SpaceToDepth"};
  return l;
}

StatusOr<AmpLists> ApplyListEdits(AmpLists lists, const AmpListEdits& edits) {
  std::set<std::string> known;
  for (const OpSchema* s : OpRegistry::Global().All()) known.insert(s->op_type);
  auto list = [&](const std::string& name) -> std::set<std::string>* {
    if (name == "allow") return &lists.allow;
    if (name == "deny") return &lists.deny;
    if (name == "infer") return &lists.infer;
    if (name == "clear") return &lists.clear;
    return nullptr;
  };
  for (const auto* part : {&edits.remove, &edits.add}) {
    for (const auto& [name, ops] : *part) {
      std::set<std::string>* l = list(name);
      if (!l) return InvalidArgument("unknown autocast list '" + name + "' (allow, deny, infer, clear)");
      for (const std::string& op : ops) {
        if (!known.count(op)) {
          return InvalidArgument("--" + std::string(part == &edits.add ? "" : "no-") + name + " " + op +
                                 ": ampc knows no op named '" + op + "'");
        }
        if (part == &edits.remove) {
          l->erase(op);
        } else {
          for (auto* other : {&lists.allow, &lists.deny, &lists.infer, &lists.clear}) other->erase(op);
          l->insert(op);
        }
      }
    }
  }
  return lists;
}

Status ReadAmpConfig(const std::string& path, AmpListEdits* edits, std::string* fp32_nodes) {
  std::ifstream in(path);
  if (!in) return NotFound("--amp-config " + path + ": cannot open the file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument("--amp-config " + path + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) return InvalidArgument("--amp-config " + path + ": expected a JSON object");
  auto names = [&](const nlohmann::json& v, const std::string& key,
                   std::set<std::string>* out) -> Status {
    if (!v.is_array()) return InvalidArgument("--amp-config " + path + ": '" + key + "' must be a list of op names");
    for (const auto& e : v) {
      if (!e.is_string()) return InvalidArgument("--amp-config " + path + ": '" + key + "' holds a non-string");
      out->insert(e.get<std::string>());
    }
    return Status::Ok();
  };
  for (const auto& [key, v] : j.items()) {
    if (key == "allow" || key == "deny" || key == "infer" || key == "clear") {
      RETURN_IF_ERROR(names(v, key, &edits->add[key]));
    } else if (key == "remove") {
      if (!v.is_object()) return InvalidArgument("--amp-config " + path + ": 'remove' must be an object of lists");
      for (const auto& [list, ops] : v.items()) RETURN_IF_ERROR(names(ops, "remove." + list, &edits->remove[list]));
    } else if (key == "fp32_nodes") {
      if (!v.is_string()) return InvalidArgument("--amp-config " + path + ": 'fp32_nodes' must be a regex string");
      *fp32_nodes = v.get<std::string>();
    } else {
      return InvalidArgument("--amp-config " + path + ": unknown key '" + key + "'");
    }
  }
  return Status::Ok();
}

StatusOr<bool> AutocastPass::Run(Graph& g) {
  if (opts_.half != DType::kFloat16 && opts_.half != DType::kBFloat16) {
    return InvalidArgument("autocast needs f16 or bf16 as the half type");
  }
  std::regex pin_re;
  const bool pin = !opts_.fp32_nodes.empty();
  if (pin) {
    try {
      pin_re = std::regex(opts_.fp32_nodes);
    } catch (const std::regex_error&) {
      return InvalidArgument("--fp32-nodes '" + opts_.fp32_nodes + "' is not a valid regular expression");
    }
  }
  const AmpLists& L = opts_.lists;
  stats_ = AutocastStats{};
  stats_.activation_bytes_fp32 = ActivationBytes(g, opts_.dims);
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
      paint[n] = {DType::kFloat32, r->second == "loss" ? "loss" : r->second + ": fp32 master update"};
      continue;
    }
    if (n->op_type() == "Cast" && n->domain().empty()) {
      paint[n] = {n->output(0) ? n->output(0)->dtype() : DType::kFloat32, "cast in the model"};
      continue;
    }
    if (a.count("grad_of")) continue;
    forward.insert(n);
    if (pin && std::regex_search(n->name(), pin_re)) {
      pinned.insert(n);
      deny.insert(n);
      paint[n] = {DType::kFloat32, "user: --fp32-nodes"};
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
      if (p && p->domain().empty() && (p->op_type() == "Constant" || p->op_type() == "ConstantOfShape")) {
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
    if (n->op_type() == "Cast" && n->domain().empty() && n->output(0) && n->output(0)->dtype() == opts_.half) {
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
      if (!forward.count(c) || deny.count(c) || half.count(c) || (k != Cls::kInfer && k != Cls::kClear)) return;
      deny.insert(c);
      paint[c] = {DType::kFloat32, "deny: after " + n->name()};
      q.push(c);
    });
  }
  auto flexible = [&](Node* n) {
    const Cls k = cls(*n);
    return forward.count(n) && !deny.count(n) && !half.count(n) && (k == Cls::kInfer || k == Cls::kClear);
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
      votes(n, [&](const Node* p) { return half.count(const_cast<Node*>(p)) > 0; }, &any, &all, &from);
      if (any && all) {
        half.insert(n);
        paint[n] = {opts_.half, k == Cls::kInfer ? "infer: inputs half" : "clear: follows " + from};
      } else {
        paint[n] = {DType::kFloat32, k == Cls::kInfer ? "infer: an input is fp32" : "clear: inputs fp32"};
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
      paint[n] = {opts_.half, "allow-list"};
    } else if (cls(*n) == Cls::kDeny) {
      paint[n] = {DType::kFloat32, "deny-list"};
    } else if (cls(*n) == Cls::kClear) {  // data movement keeps whatever precision it is given
      bool any = false, all = true;
      std::string from;
      votes(n, [&](const Node* p) { return paint.count(p) && paint[p].dtype == opts_.half; }, &any, &all, &from);
      paint[n] = {any && all ? opts_.half : DType::kFloat32, "clear: follows " + (from.empty() ? of : from)};
    } else if (f && paint.count(f) && paint[f].dtype != DType::kUndefined) {
      paint[n] = {paint[f].dtype == opts_.half ? opts_.half : DType::kFloat32, "grad_of " + of};
    } else {
      paint[n] = {DType::kFloat32, "grad_of " + of};
    }
  }

  // Casts: one per (value, type), shared by every consumer.
  std::map<std::pair<const Value*, DType>, Value*> cast_of;
  auto cast = [&](Value* v, DType to) -> StatusOr<Value*> {
    auto key = std::make_pair(static_cast<const Value*>(v), to);
    if (auto it = cast_of.find(key); it != cast_of.end()) return it->second;
    // v = Cast(u) with u already of type `to` and the first cast exact: use u.
    if (Node* p = v->producer(); p && p->op_type() == "Cast" && p->domain().empty() && p->input(0) &&
                                 p->input(0)->dtype() == to && ExactWidening(to, v->dtype())) {
      ++stats_.casts_folded;
      return cast_of[key] = p->input(0);
    }
    const std::string name = g.UniqueName(v->name() + "_" + std::string(DTypeName(to)));
    ASSIGN_OR_RETURN(Node * c, g.AddNode("Cast", "", name, {v}, {name},
                                         {{"to", Attribute(static_cast<int64_t>(DTypeToOnnxNumber(to)))}}));
    c->annotations()["precision"] = std::string(DTypeName(to));
    c->annotations()["reason"] = "cast";
    if (const Node* p = v->producer()) {  // a cast of a backward value belongs to the backward
      auto gi = p->annotations().find("grad_of");
      if (gi != p->annotations().end()) c->annotations()["grad_of"] = gi->second;
    }
    RETURN_IF_ERROR(InferNode(*c));
    return cast_of[key] = c->output(0);
  };
  bool changed = false;
  for (Node* n : nodes) {
    const Paint& p = paint[n];
    n->annotations()["precision"] = PrecisionName(p.dtype);
    n->annotations()["reason"] = p.reason;
    if (p.dtype == DType::kUndefined) continue;
    if (p.dtype == opts_.half) {
      ++stats_.half_nodes;
    } else {
      ++stats_.fp32_nodes;
    }
    if (n->op_type() == "Cast" && n->domain().empty()) continue;
    bool touched = false;
    for (int i = 0; i < n->num_inputs(); ++i) {
      Value* v = n->input(i);
      if (!v || !IsFloat(v->dtype()) || v->dtype() == DType::kFloat64 || v->dtype() == p.dtype ||
          !CastsInput(*n, i)) {
        continue;
      }
      ASSIGN_OR_RETURN(Value * c, cast(v, p.dtype));
      n->SetInput(i, c);
      touched = true;
    }
    if (touched || changed) RETURN_IF_ERROR(InferNode(*n).WithContext("autocast"));
    changed = changed || touched;
  }
  // Cast(Cast(x)) with an exact first cast: Cast(x) directly, or x when the types round-trip.
  for (Node* n : g.nodes()) {
    if (n->op_type() != "Cast" || !n->domain().empty() || !n->input(0)) continue;
    Node* p = n->input(0)->producer();
    if (!p || p->op_type() != "Cast" || !p->domain().empty() || !p->input(0)) continue;
    Value* x = p->input(0);
    if (!IsFloat(x->dtype()) || !ExactWidening(x->dtype(), p->output(0)->dtype())) continue;
    if (x->dtype() == n->output(0)->dtype() && !g.IsRoot(n->output(0))) {
      g.ReplaceAllUsesWith(n->output(0), x);
    } else {
      n->SetInput(0, x);
    }
    ++stats_.casts_folded;
    changed = true;
  }
  RETURN_IF_ERROR(g.TopologicalSort());
  // Drop casts (and other nodes) left without users.
  const std::vector<Node*> after = g.nodes();
  for (auto it = after.rbegin(); it != after.rend(); ++it) {
    Node* n = *it;
    if (n->op_type() != "Cast") continue;
    bool used = false;
    for (Value* o : n->outputs()) used = used || (o && (!o->uses().empty() || g.IsRoot(o)));
    if (!used) g.RemoveNode(n);
  }
  stats_.casts_inserted = 0;
  for (const Node* n : g.nodes()) {
    auto r = n->annotations().find("reason");
    stats_.casts_inserted += r != n->annotations().end() && r->second == "cast";
  }
  stats_.activation_bytes_mixed = ActivationBytes(g, opts_.dims);
  return changed;
}

}  // namespace ampc
