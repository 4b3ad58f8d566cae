#include "passes/autocast.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "ir/limits.h"
#include "ir/op_registry.h"
#include "ir/user_regex.h"
#include "passes/fold_casts.h"
#include "passes/insert_casts.h"
#include "passes/paint_precision.h"

namespace ampc {
namespace {

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

}  // namespace

AmpLists DefaultAmpLists() {
  AmpLists l;
  for (const OpSchema* s : OpRegistry::Global().All()) {
    if (!s->domain.empty()) continue;
    switch (s->autocast) {
      case AutocastClass::kAllow:
        l.allow.insert(s->op_type);
        break;
      case AutocastClass::kDeny:
        l.deny.insert(s->op_type);
        break;
      case AutocastClass::kInfer:
        l.infer.insert(s->op_type);
        break;
      case AutocastClass::kClear:
        l.clear.insert(s->op_type);
        break;
      case AutocastClass::kUnset:
        break;
    }
  }
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
      if (!l)
        return InvalidArgument("unknown autocast list '" + name + "' (allow, deny, infer, clear)");
      for (const std::string& op : ops) {
        if (!known.count(op)) {
          return InvalidArgument("--" + std::string(part == &edits.add ? "" : "no-") + name + " " +
                                 op + ": ampc knows no op named '" + op + "'");
        }
        if (part == &edits.remove) {
          l->erase(op);
        } else {
          for (auto* other : {&lists.allow, &lists.deny, &lists.infer, &lists.clear})
            other->erase(op);
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
  int deepest = 0;
  try {
    j = nlohmann::json::parse(in, [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      deepest = std::max(deepest, depth);
      return true;
    });
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument("--amp-config " + path + ": not valid JSON (" + e.what() + ")");
  }
  RETURN_IF_ERROR(CheckNesting(deepest, "--amp-config " + path));
  if (!j.is_object()) return InvalidArgument("--amp-config " + path + ": expected a JSON object");
  auto names = [&](const nlohmann::json& v, const std::string& key,
                   std::set<std::string>* out) -> Status {
    if (!v.is_array())
      return InvalidArgument("--amp-config " + path + ": '" + key + "' must be a list of op names");
    for (const auto& e : v) {
      if (!e.is_string())
        return InvalidArgument("--amp-config " + path + ": '" + key + "' holds a non-string");
      out->insert(e.get<std::string>());
    }
    return Status::Ok();
  };
  for (const auto& [key, v] : j.items()) {
    if (key == "allow" || key == "deny" || key == "infer" || key == "clear") {
      RETURN_IF_ERROR(names(v, key, &edits->add[key]));
    } else if (key == "remove") {
      if (!v.is_object())
        return InvalidArgument("--amp-config " + path + ": 'remove' must be an object of lists");
      for (const auto& [list, ops] : v.items())
        RETURN_IF_ERROR(names(ops, "remove." + list, &edits->remove[list]));
    } else if (key == "fp32_nodes") {
      if (!v.is_string())
        return InvalidArgument("--amp-config " + path + ": 'fp32_nodes' must be a regex string");
      *fp32_nodes = v.get<std::string>();
      if (!fp32_nodes->empty()) {
        RETURN_IF_ERROR(
            UserRegex::Compile(*fp32_nodes, "--amp-config " + path + ": 'fp32_nodes'").status());
      }
    } else {
      return InvalidArgument("--amp-config " + path + ": unknown key '" + key + "'");
    }
  }
  return Status::Ok();
}

StatusOr<bool> AutocastPass::Run(Graph& g) {
  stats_ = AutocastStats{};
  stats_.activation_bytes_fp32 = ActivationBytes(g, opts_.dims);
  PaintPrecisionPass paint(opts_);
  InsertCastsPass insert;
  FoldCastsPass fold;
  ASSIGN_OR_RETURN(bool painted, paint.Run(g));
  ASSIGN_OR_RETURN(bool inserted, insert.Run(g));
  ASSIGN_OR_RETURN(bool folded, fold.Run(g));
  stats_.half_nodes = paint.half_nodes();
  stats_.fp32_nodes = paint.fp32_nodes();
  stats_.casts_folded = insert.folded() + fold.folded();
  for (const Node* n : g.nodes()) {
    auto r = n->annotations().find("reason");
    stats_.casts_inserted += r != n->annotations().end() && r->second == "cast";
  }
  stats_.activation_bytes_mixed = ActivationBytes(g, opts_.dims);
  return painted || inserted || folded;
}

}  // namespace ampc
