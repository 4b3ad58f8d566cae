// Lowering: a Graph whose shapes are all static becomes a Plan (codegen/plan.h) — one buffer per
// value, one step per node, graph inputs/outputs bound by name, weights and states laid out in
// the data section, and arena offsets assigned by the memory planner (codegen/memory_plan.h).
// Every node must be executable by the target backend (BackendSupport): an op it lacks is an
// error naming the node, here at compile time.
#pragma once

#include <string>

#include "codegen/kernel_compiler.h"
#include "codegen/plan.h"
#include "codegen/plan_target.h"
#include "ir/graph.h"
#include "ir/status.h"

namespace ampc {

struct LowerOptions {
  std::string source;                       // recorded in the plan (the model path)
  DType precision = DType::kFloat32;        // recorded: fp32 | fp16 | bf16
  const BackendSupport* support = nullptr;  // required: what the target executes
  // Generated kernels: the fusion groups annotated on the graph (codegen/fusion.h) become kernel
  // steps, each with its per-op fallback; without `kernels.enabled` the annotations are ignored.
  KernelOptions kernels;
  KernelBuildStats* kernel_stats = nullptr;
  std::vector<std::string>* warnings = nullptr;  // groups lowered per-op because no kernel built
};

StatusOr<Plan> LowerToPlan(const Graph& g, const LowerOptions& opts);

}  // namespace ampc
