// The CPU executor: runs a Plan step by step with the CPU kernels. It validates the whole plan
// when it is created (a .ampc file is user input), keeps one activation arena, and binds every
// step's tensor views once, so a call only copies inputs in, runs kernels, and copies outputs out.
#pragma once

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
};

}  // namespace ampc::cpu
