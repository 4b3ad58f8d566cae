#include "runtime/executor.h"

#include "codegen/plan_target.h"
#include "ir/limits.h"
#include "runtime/cpu/executor.h"

namespace ampc {

StatusOr<std::map<std::string, Tensor>> Executor::SnapshotState() const {
  std::map<std::string, Tensor> out;
  for (const std::string& name : StateNames()) {
    ASSIGN_OR_RETURN(out[name], GetState(name));
  }
  return out;
}

Status Executor::RestoreState(const std::map<std::string, Tensor>& states) {
  for (const auto& [name, t] : states) RETURN_IF_ERROR(SetState(name, t));
  return Status::Ok();
}

StatusOr<std::unique_ptr<Executor>> CreateExecutor(Plan plan, const ExecutorOptions& opts) {
  ASSIGN_OR_RETURN(Target target, TargetFromPlan(plan.proto.target()));
  // A model whose shapes ask for more activation memory than the input limits allow (a
  // ConstantOfShape of [2^20, 2^20]) is refused here rather than left to exhaust the machine.
  RETURN_IF_ERROR(CheckTensorBytes(plan.proto.arena_bytes(), "the compiled model's activations"));
  if (opts.device == "cpu") {
    if (target.kind != "cpu") {
      return InvalidArgument("the plan was compiled for " + TargetName(target) +
                             "; the cpu device runs plans compiled for cpu");
    }
    ASSIGN_OR_RETURN(auto e, cpu::CpuExecutor::Create(std::move(plan), opts.threads, opts.generated_kernels));
    return std::unique_ptr<Executor>(std::move(e));
  }
  if (opts.device == "cuda" || opts.device.rfind("cuda:", 0) == 0) {
    return Unimplemented("--device " + opts.device +
                         ": this ampc has no CUDA executor yet; use --device cpu");
  }
  return InvalidArgument("--device " + opts.device + ": expected cpu or cuda[:N]");
}

Status CopyStates(const Executor& from, Executor& to) {
  for (const std::string& name : from.StateNames()) {
    if (!to.HasData(name)) continue;
    ASSIGN_OR_RETURN(Tensor t, from.GetState(name));
    RETURN_IF_ERROR(to.SetState(name, t).WithContext("copying state '" + name + "'"));
  }
  return Status::Ok();
}

}  // namespace ampc
