// Targets a Plan is compiled for, and what each backend can execute (BackendSupport): which ops,
// and in which floating-point compute types. The compiler consults it twice, the way XLA consults
// its FloatSupport: autocast keeps an op in fp32 where the backend has no half-precision kernel
// for it, and lowering rejects an op the backend cannot run at all, naming the node, at compile
// time rather than when the plan is loaded. Each runtime backend derives its table from its own
// kernel registry (runtime/cpu: cpu::CpuBackendSupport()), so there is one list per backend.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "codegen/plan.pb.h"
#include "ir/dtype.h"
#include "ir/status.h"

namespace ampc {

struct Target {
  std::string kind = "cpu";  // cpu | cuda
  std::string arch;          // cuda: sm_80 | sm_90
  bool operator==(const Target&) const = default;
};

// "cpu", "cuda" (sm_90, the H200), "cuda:sm_80", "cuda:sm_90".
StatusOr<Target> ParseTarget(const std::string& name);
std::string TargetName(const Target& t);  // "cpu", "cuda:sm_90"
void TargetToPlan(const Target& t, plan::Target* out);
StatusOr<Target> TargetFromPlan(const plan::Target& t);

// A set of DTypes as bits (1 << DType).
using DTypeMask = uint32_t;
constexpr DTypeMask MaskOf(DType t) { return DTypeMask{1} << static_cast<int>(t); }
inline constexpr DTypeMask kAllFloatTypes = MaskOf(DType::kFloat32) | MaskOf(DType::kFloat16) |
                                            MaskOf(DType::kBFloat16) | MaskOf(DType::kFloat64);

class BackendSupport {
 public:
  explicit BackendSupport(Target target) : target_(std::move(target)) {}
  const Target& target() const { return target_; }

  // `floats`: the floating-point types the op computes in (its float inputs and outputs).
  void Add(const std::string& domain, const std::string& op, DTypeMask floats = kAllFloatTypes);
  void Remove(const std::string& domain, const std::string& op);
  bool SupportsOp(const std::string& domain, const std::string& op) const;
  bool SupportsFloat(const std::string& domain, const std::string& op, DType t) const;
  size_t size() const { return ops_.size(); }

 private:
  Target target_;
  std::map<std::pair<std::string, std::string>, DTypeMask> ops_;
};

}  // namespace ampc
