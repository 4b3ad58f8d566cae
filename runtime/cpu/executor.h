// The CPU executor: runs a Plan step by step with the CPU kernels. It validates the whole plan
// when it is created (a .ampc file is user input), keeps one activation arena, and binds every
// step's tensor views once, so a call only copies inputs in, runs kernels, and copies outputs out.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codegen/plan.pb.h"
#include "ir/status.h"
#include "ir/tensor.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/thread_pool.h"

namespace ampc::cpu {

class CpuExecutor {
 public:
  // threads <= 0: one per hardware thread.
  static StatusOr<std::unique_ptr<CpuExecutor>> Create(plan::Plan plan, int threads = 0);
  ~CpuExecutor();

  // Inputs in the order of plan().inputs(); outputs in the order of plan().outputs().
  StatusOr<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs);
  const plan::Plan& plan() const { return plan_; }

  // Training state (STATE buffers: parameters, optimizer moments, running statistics, counters).
  // After every Run, each state takes the value its plan state update names.
  std::vector<std::string> StateNames() const;
  StatusOr<Tensor> GetState(const std::string& name) const;
  // Replaces a state's or a constant's (initializer's) value; the tensor must have its dtype and
  // shape. Setting constants is how an evaluation plan receives trained parameters.
  Status SetState(const std::string& name, const Tensor& value);
  bool HasData(const std::string& name) const { return data_ids_.count(name) > 0; }

 private:
  struct BoundStep {
    KernelFn fn;
    AttributeMap attrs;
    KernelContext ctx;
  };
  CpuExecutor() = default;
  Status Validate();
  Status Bind();

  plan::Plan plan_;
  std::unique_ptr<ThreadPool> pool_;
  uint8_t* arena_ = nullptr;
  std::vector<TensorView> views_;  // one per buffer
  std::vector<BoundStep> steps_;
  std::map<std::string, int> state_ids_;  // STATE buffers by name
  std::map<std::string, int> data_ids_;   // STATE and CONSTANT buffers by name
};

}  // namespace ampc::cpu
