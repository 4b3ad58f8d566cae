// Lowering: a Graph whose shapes are all static becomes a Plan (codegen/plan.proto) — one
// buffer per value, one step per node, graph inputs/outputs bound by name, and arena offsets
// assigned by the memory planner (codegen/memory_plan.h).
#pragma once

#include <string>

#include "codegen/plan.pb.h"
#include "ir/graph.h"
#include "ir/status.h"

namespace ampc {

// 2: training plans (STATE outputs written in place, the `training` message).
inline constexpr uint32_t kPlanFormatVersion = 2;

struct LowerOptions {
  std::string source;             // recorded in the plan (the model path)
  std::string precision = "fp32";
};

StatusOr<plan::Plan> LowerToPlan(const Graph& g, const LowerOptions& opts = {});

// .ampc files: the serialised Plan. Loading rejects corrupt files and newer format versions.
Status SavePlan(const plan::Plan& p, const std::string& path);
StatusOr<plan::Plan> LoadPlan(const std::string& path);

// Rebuilds the graph a plan describes and re-runs type inference over it: every buffer a step
// writes must have exactly the dtype and shape its op produces. LoadPlan calls this, so a
// hand-edited plan cannot make a kernel write outside its buffer.
Status VerifyPlanTypes(const plan::Plan& p);

// Attribute conversions shared by lowering and the executors.
void AttributeToPlan(const std::string& name, const Attribute& a, plan::Attr* out);
StatusOr<Attribute> AttributeFromPlan(const plan::Attr& a);

}  // namespace ampc
