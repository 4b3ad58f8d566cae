// The CUDA executor (CUDA toolkit builds only; runtime/cuda/executor.h is the public entry):
// its state, shared by executor.cc (creating it: the arena, the data section, kernels, host
// values, binding every step) and executor_run.cc (running it: inputs, the step, CUDA Graph
// replay, metrics, states).
#pragma once

#include <cublasLt.h>
#include <cuda.h>
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codegen/plan.h"
#include "runtime/cuda/copy_desc.h"
#include "runtime/cuda/cuda_api.h"
#include "runtime/cuda/gemm_call.h"
#include "runtime/cuda/launch.h"
#include "runtime/cuda/step_plan.h"
#include "runtime/cuda/window_step.h"
#include "runtime/executor.h"

namespace ampc::cuda {

struct CudaExecutorOptions;  // runtime/cuda/executor.h

// cuBLASLt's workspace, shared by every GEMM: 32 MiB (what NVIDIA suggests for Hopper's large
// GEMMs) for plans whose activations pass 256 MiB, else 4 MiB, so that a small model's footprint
// is not mostly workspace.
inline size_t WorkspaceBytes(int64_t arena) {
  return arena > (int64_t{256} << 20) ? size_t{32} << 20 : size_t{4} << 20;
}
inline constexpr int64_t kMetricsRing = 64;  // steps between metric reads

class CudaExecutor final : public Executor {
 public:
  static StatusOr<std::unique_ptr<Executor>> Create(Plan plan, const CudaExecutorOptions& o);
  ~CudaExecutor() override;

  const plan::PlanProto& plan() const override { return plan_.proto; }
  std::string device() const override { return "cuda:" + std::to_string(device_); }
  StatusOr<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs) override;
  Status Step(const std::vector<Tensor>& inputs) override;
  StatusOr<std::vector<MetricsRecord>> ReadMetrics() override;
  int64_t metrics_interval() const override { return kMetricsRing; }

  std::vector<std::string> StateNames() const override;
  bool HasData(const std::string& name) const override { return data_ids_.count(name) > 0; }
  StatusOr<Tensor> GetState(const std::string& name) const override;
  Status SetState(const std::string& name, const Tensor& value) override;
  StatusOr<Plan> CurrentPlan() const override;

 private:
  struct Copy {
    StridedCopy desc;
    const void* in = nullptr;
    void* out = nullptr;
  };
  struct Upload {
    void* device = nullptr;
    std::unique_ptr<Pinned> host;
  };
  struct ArgCheck {  // a generated kernel's assumption about one of the plan's inputs
    int input;       // index into plan().inputs()
    int64_t min, max;
    bool has_except;
    int64_t except;
    std::string step;
  };
  struct Bound {
    StepKind kind = StepKind::kHost;
    CUfunction fn = nullptr;
    KernelLaunch launch;
    std::vector<void*> params;
    std::unique_ptr<GemmCall> gemm;
    std::unique_ptr<WindowStep> window;
    std::vector<Copy> copies;
    GatherDesc gather;
    const void *src = nullptr, *index = nullptr;
    void* dst = nullptr;
    size_t bytes = 0;
    std::vector<Upload> uploads;
  };

  CudaExecutor() = default;
  Status Init(const CudaExecutorOptions& o);
  Status LoadKernels(int major, int minor);
  Status EvaluateHostSteps(const std::vector<StepKind>& kinds);
  Status BindSteps(const std::vector<StepKind>& kinds, const std::vector<GemmFold>& gemm_folds);
  // Buffer `id`'s bytes on the host: a constant's data or a host step's value (HostValueFn).
  const uint8_t* HostValue(int id) const;
  // `fold`: the epilogue the GEMM takes over from the kernel after it (FoldGemmEpilogues).
  Status BindGemm(const plan::Step& s, const GemmFold& fold, GemmCall* g);
  Status CopyInputs(const std::vector<Tensor>& inputs);
  Status Enqueue(bool check_loss);
  Status EnqueueStep(Bound& b);
  Status EnqueueStateUpdates();
  Status CheckLoss();
  uint8_t* Address(int id) const { return addr_[static_cast<size_t>(id)]; }
  int64_t Bytes(int id) const { return plan_.proto.buffers(id).size_bytes(); }

  Plan plan_;
  int device_ = 0;
  bool use_graph_ = true;
  const Driver* driver_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  uint8_t* arena_ = nullptr;
  uint8_t* data_ = nullptr;
  void* workspace_ = nullptr;
  uint8_t* scratch_ = nullptr;  // the kConv steps' im2col and GEMM matrices (window_steps.h)
  std::map<int, std::vector<uint8_t>> host_values_;  // the host steps' outputs
  size_t workspace_bytes_ = 0;
  std::vector<uint8_t*> addr_;
  std::vector<CUmodule> modules_;
  std::vector<CUfunction> functions_;
  std::vector<Bound> steps_;
  std::vector<ArgCheck> arg_checks_;
  std::map<std::string, int> state_ids_, data_ids_;
  std::multimap<int, int> half_copies_;  // f32 state -> its half copies (Buffer.half_copy_of)
  // Inputs: two pinned staging sets, each reused once the event after its copies has passed.
  std::vector<std::unique_ptr<Pinned>> staging_[2];
  cudaEvent_t staged_[2] = {nullptr, nullptr};
  int next_set_ = 0;
  // Metrics: the step's values gathered into `metric_now_`, then appended to the device ring.
  std::vector<int> metric_ids_;
  uint8_t* metric_now_ = nullptr;   // 8 bytes per metric
  uint8_t* metric_ring_ = nullptr;  // kMetricsRing records
  int64_t ring_used_ = 0;
  std::vector<int64_t> ring_calls_;
  std::vector<MetricsRecord> metrics_read_;  // records fetched early (the ring was full)
  int64_t calls_ = 0;
  int loss_buffer_ = -1, loss_step_ = -1;
  std::unique_ptr<Pinned> loss_host_;
  cudaGraphExec_t graph_ = nullptr;
  bool graph_failed_ = false;
  // AMPC_PROFILE: the step runs eagerly between events, one before each step and one after the
  // last; each call waits for its last event and adds the times per step.
  std::vector<cudaEvent_t> profile_events_;
  std::vector<double> profile_s_;
  std::vector<std::string> profile_tags_;
};

}  // namespace ampc::cuda
