#include "runtime/cpu/kernel.h"

#include <algorithm>

namespace ampc::cpu {

const Attribute* KernelContext::attr(const std::string& key) const {
  if (!attrs) return nullptr;
  auto it = attrs->find(key);
  return it == attrs->end() ? nullptr : &it->second;
}
int64_t KernelContext::attr_int(const std::string& key, int64_t dflt) const {
  const Attribute* a = attr(key);
  return a && a->kind() == AttrKind::kInt ? a->i() : dflt;
}
float KernelContext::attr_float(const std::string& key, float dflt) const {
  const Attribute* a = attr(key);
  return a && a->kind() == AttrKind::kFloat ? a->f() : dflt;
}
std::string KernelContext::attr_string(const std::string& key, const std::string& dflt) const {
  const Attribute* a = attr(key);
  return a && a->kind() == AttrKind::kString ? a->s() : dflt;
}
std::vector<int64_t> KernelContext::attr_ints(const std::string& key) const {
  const Attribute* a = attr(key);
  return a && a->kind() == AttrKind::kInts ? a->ints() : std::vector<int64_t>{};
}
std::vector<float> KernelContext::attr_floats(const std::string& key) const {
  const Attribute* a = attr(key);
  return a && a->kind() == AttrKind::kFloats ? a->floats() : std::vector<float>{};
}

std::string DimsToString(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

KernelRegistry& KernelRegistry::Global() {
  static KernelRegistry* r = [] {
    auto* reg = new KernelRegistry();
    RegisterElementwiseKernels(*reg);
    RegisterShapeKernels(*reg);
    RegisterNNKernels(*reg);
    RegisterReductionKernels(*reg);
    RegisterTrainingKernels(*reg);
    RegisterGradKernels(*reg);
    RegisterOptimizerKernels(*reg);
    RegisterActivationKernels(*reg);
    RegisterGroupRMSNormKernels(*reg);
    RegisterAttentionKernels(*reg);
    return reg;
  }();
  return *r;
}

void KernelRegistry::Register(const std::string& domain, const std::string& op, KernelFn fn) {
  AMPC_CHECK(Find(domain, op) == nullptr);
  kernels_.push_back({{domain, op}, fn});
}

KernelFn KernelRegistry::Find(const std::string& domain, const std::string& op) const {
  for (const auto& [key, fn] : kernels_) {
    if (key.first == domain && key.second == op) return fn;
  }
  return nullptr;
}

std::vector<std::string> KernelRegistry::Ops() const {
  std::vector<std::string> out;
  for (const auto& [key, fn] : kernels_) {
    out.push_back(key.first.empty() ? key.second : key.first + "::" + key.second);
  }
  std::sort(out.begin(), out.end());
  return out;
}

BackendSupport CpuBackendSupport() { return CpuBackendSupportAs(Target{"cpu", ""}); }

BackendSupport CpuBackendSupportAs(const Target& target) {
  BackendSupport s(target);
  for (const auto& [key, fn] : KernelRegistry::Global().kernels_) s.Add(key.first, key.second);
  return s;
}

}  // namespace ampc::cpu
