// The CPU executor: runs a Plan step by step with the CPU kernels (the numerics oracle). The plan
// was checked by VerifyPlan when it was loaded or lowered; Create checks what is specific to this
// backend (every op has a CPU kernel), keeps one activation arena, binds CONSTANT and STATE
// buffers straight into the plan's data section (a mapped plan file is never copied) and binds
// every step's tensor views once, so a call points the input views at the caller's tensors (no
// copy), runs kernels, and copies outputs out.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codegen/plan.h"
#include "ir/status.h"
#include "ir/tensor.h"
#include "runtime/cpu/generated.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/thread_pool.h"
#include "runtime/executor.h"

namespace ampc::cpu {

class CpuExecutor : public Executor {
 public:
  // threads <= 0: one per hardware thread.
  // generated_kernels = false: run every fusion group's per-op fallback (the reference the
  // generated kernels are tested against) even where a kernel image fits this CPU.
  static StatusOr<std::unique_ptr<CpuExecutor>> Create(Plan plan, int threads = 0,
                                                       bool generated_kernels = true);
  // How many steps run a generated kernel (the rest run per-op kernels).
  int generated_steps() const { return generated_steps_; }
  ~CpuExecutor() override;

  const plan::PlanProto& plan() const override { return plan_.proto; }
  std::string device() const override { return "cpu"; }
  StatusOr<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs) override;
  Status Step(const std::vector<Tensor>& inputs) override;
  StatusOr<std::vector<MetricsRecord>> ReadMetrics() override;
  int64_t metrics_interval() const override { return 1; }  // reading is free on the host

  std::vector<std::string> StateNames() const override;
  bool HasData(const std::string& name) const override { return data_ids_.count(name) > 0; }
  StatusOr<Tensor> GetState(const std::string& name) const override;
  Status SetState(const std::string& name, const Tensor& value) override;
  StatusOr<Plan> CurrentPlan() const override { return plan_; }

 private:
  struct BoundStep {
    KernelFn fn = nullptr;
    AttributeMap attrs;
    KernelContext ctx;
    const GeneratedKernel* gen = nullptr;  // a generated kernel's step, when it runs here
    std::vector<TensorView*> gen_buffers;  // its inputs then outputs
    KernelCall gen_call;
    struct ArgCheck {  // plan.proto's ArgCheck on a bound input
      const TensorView* view;
      int64_t min, max;
      bool has_except;
      int64_t except;
    };
    std::vector<ArgCheck> gen_checks;  // checked before the kernel runs
    std::vector<BoundStep> fallback;   // a kernel step without a usable image: its op steps
  };
  Status BindOp(const plan::Step& s, const std::string& what, BoundStep* bs);
  Status RunStep(BoundStep& bs);
  CpuExecutor() = default;
  Status CheckKernels() const;
  Status Bind();
  // `check_loss`: stop after the loss's step if the loss is not finite (training steps of plans
  // with stop_on_non_finite_loss), before any state changes.
  Status Execute(const std::vector<Tensor>& inputs, bool check_loss = false);
  // After a non-finite loss: runs the steps up to the loss again, checking every output, and
  // names the first non-finite value, its producer and the inputs that were already bad.
  Status DiagnoseNonFiniteLoss(double loss);

  Plan plan_;
  std::unique_ptr<ThreadPool> pool_;
  uint8_t* arena_ = nullptr;
  std::vector<TensorView> views_;  // one per buffer
  std::vector<BoundStep> steps_;
  std::vector<std::unique_ptr<GeneratedKernel>> kernels_;  // per plan kernel; null: not usable
  bool use_generated_ = true;
  int generated_steps_ = 0;
  std::map<std::string, int> state_ids_;  // STATE buffers by name
  std::map<std::string, int> data_ids_;   // STATE and CONSTANT buffers by name
  std::multimap<int, int> half_copies_;   // f32 state -> its half copies (Buffer.half_copy_of)
  std::vector<int> metric_ids_;           // buffers of plan().metrics()
  std::vector<MetricsRecord> metrics_;    // recorded since the last read
  int64_t calls_ = 0;
  int loss_buffer_ = -1;  // with stop_on_non_finite_loss: the loss output and its step
  int loss_step_ = -1;
  // AMPC_PROFILE in the environment: wall time per step, printed to stderr by the destructor
  // (the slowest steps first); off by default, two clock reads per step when on. Summed over the
  // calls after the first, and over the first (the warm-up: oneDNN primitives created, the
  // arena's pages first touched), which the table leaves out when later calls follow.
  std::vector<double> profile_s_, profile_first_s_;
  void PrintProfile() const;
};

}  // namespace ampc::cpu
