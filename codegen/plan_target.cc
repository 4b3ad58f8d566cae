#include "codegen/plan_target.h"

namespace ampc {

StatusOr<Target> ParseTarget(const std::string& name) {
  if (name == "cpu") return Target{"cpu", ""};
  if (name == "cuda" || name == "cuda:sm_90") return Target{"cuda", "sm_90"};
  if (name == "cuda:sm_80") return Target{"cuda", "sm_80"};
  return InvalidArgument("--target " + name + ": expected cpu, cuda, cuda:sm_80 or cuda:sm_90");
}

std::string TargetName(const Target& t) { return t.arch.empty() ? t.kind : t.kind + ":" + t.arch; }

void TargetToPlan(const Target& t, plan::Target* out) {
  out->set_kind(t.kind);
  out->set_arch(t.arch);
}

StatusOr<Target> TargetFromPlan(const plan::Target& t) {
  Target out{t.kind(), t.arch()};
  auto parsed = ParseTarget(TargetName(out));
  if (!parsed.ok()) return InvalidArgument("plan target '" + TargetName(out) + "' is unknown");
  return *parsed;
}

void BackendSupport::Add(const std::string& domain, const std::string& op, DTypeMask floats) {
  ops_[{domain, op}] = floats;
}

void BackendSupport::Remove(const std::string& domain, const std::string& op) {
  ops_.erase({domain, op});
}

bool BackendSupport::SupportsOp(const std::string& domain, const std::string& op) const {
  return ops_.count({domain, op}) > 0;
}

bool BackendSupport::SupportsFloat(const std::string& domain, const std::string& op,
                                   DType t) const {
  auto it = ops_.find({domain, op});
  return it != ops_.end() && (it->second & MaskOf(t)) != 0;
}

}  // namespace ampc
