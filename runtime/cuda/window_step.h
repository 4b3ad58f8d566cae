// A Conv, ConvGrad, pool, pool-gradient, Pad or Clip step of a plan bound to device addresses
// (CUDA toolkit builds only): window_steps.h's description, the convolution's cuBLASLt calls, and
// the kernel launches of window_kernels.h, enqueued in order on the executor's stream.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "codegen/plan.pb.h"
#include "ir/status.h"
#include "runtime/cuda/gemm_call.h"
#include "runtime/cuda/step_plan.h"
#include "runtime/cuda/window_steps.h"

namespace ampc::cuda {

struct WindowBinding {
  cublasLtHandle_t lt = nullptr;
  size_t workspace_bytes = 0;
  uint8_t* scratch = nullptr;            // at least ScratchBytes(plan) bytes, 256-aligned
  std::function<uint8_t*(int)> address;  // a plan buffer's device address
  // A host value's bytes (a constant or a host step's output), or null when it has none.
  HostValueFn host_value;
};

class WindowStep {
 public:
  static StatusOr<std::unique_ptr<WindowStep>> Bind(const plan::PlanProto& p, const plan::Step& s,
                                                    StepKind kind, const WindowBinding& b);
  Status Enqueue(cublasLtHandle_t lt, void* workspace, size_t workspace_bytes,
                 cudaStream_t stream) const;

 private:
  StepKind kind_ = StepKind::kConv;
  std::optional<ConvStep> conv_;
  std::vector<std::unique_ptr<GemmCall>> gemms_;
  std::optional<PoolStep> pool_;
  PadDesc pad_;
  FloatType clip_type_ = FloatType::kF32;
  int64_t clip_n_ = 0;
  // Operands: the step's inputs and outputs (null where omitted) and the scratch matrices.
  std::vector<const uint8_t*> in_;
  std::vector<uint8_t*> out_;
  uint8_t *col_ = nullptr, *yt_ = nullptr, *dyt_ = nullptr, *dcol_ = nullptr;
};

}  // namespace ampc::cuda
