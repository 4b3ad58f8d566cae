// Test helper: the compiler's training pipeline (BuildTrainingStep + LowerTrainingStep) for a
// graph factory, lowered for one batch size for the CPU backend, split into the step and its
// evaluation pass the way `ampc train` splits them.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "runtime/cpu/kernel.h"

namespace ampc::testing {

struct CompiledTraining {
  Plan train;  // without training.eval
  Plan eval;
  TrainingGraphInfo info;
  std::vector<std::string> train_inputs;  // plan input order
};

inline const BackendSupport& CpuSupport() {
  static const BackendSupport s = cpu::CpuBackendSupport();
  return s;
}

// `o.source` is filled in, and `o.support` when it is null (the CPU's).
inline StatusOr<CompiledTraining> CompileTraining(const ModelFactory& make, CompileOptions o,
                                                  int64_t batch, const SampleDims& dims) {
  if (!o.support) o.support = &CpuSupport();
  o.source = "test";
  ASSIGN_OR_RETURN(auto g, make());
  CompiledTraining c;
  ASSIGN_OR_RETURN(c.info, BuildTrainingStep(*g, o));
  ASSIGN_OR_RETURN(Plan p, LowerTrainingStep(std::move(g), c.info, make, o, batch, dims));
  c.eval = p.EvalPass();
  p.proto.mutable_training()->clear_eval();
  c.train = std::move(p);
  for (const auto& io : c.train.proto.inputs()) c.train_inputs.push_back(io.name());
  return c;
}

// A deep copy (its own data section): executors created from copies of one Plan share its data.
inline Plan ClonePlan(const Plan& p) {
  Plan out{p.proto, *PlanData::Allocate(p.data->size())};
  std::memcpy(out.data->data(), p.data->data(), static_cast<size_t>(p.data->size()));
  return out;
}

}  // namespace ampc::testing
