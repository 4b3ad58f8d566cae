// The CUDA executor: runs a Plan compiled for a CUDA target (`ampc compile --target cuda`) on one
// GPU. It owns one device arena laid out by the plan's memory planner and a device copy of the
// data section (parameters, fp32 masters, optimizer moments, loss-scaler state stay there); per
// step only the batch travels (pinned, asynchronous, two staging sets), metrics are appended to a
// device ring read every metrics_interval() steps, and a training step is captured once into a
// CUDA Graph and replayed. Steps run as step_plan.h classifies them: generated kernels through
// the driver API (entry points from cudart, so no libcuda link), GEMMs through cuBLASLt with the
// algorithm chosen once per step by its heuristic, data movement by copy_kernels.cu, and values
// of constants and shapes computed once on the host.
//
// Built only with the CUDA toolkit (AMPC_HAVE_CUDA); without it, or without a usable GPU,
// CreateCudaExecutor returns an error saying why.
#pragma once

#include <memory>
#include <string>

#include "codegen/plan.h"
#include "ir/status.h"
#include "runtime/executor.h"

namespace ampc::cuda {

struct CudaExecutorOptions {
  int device = 0;
  bool cuda_graph = true;  // capture the training step once and replay it
};

StatusOr<std::unique_ptr<Executor>> CreateCudaExecutor(Plan plan, const CudaExecutorOptions& o);

// "cuda" -> 0, "cuda:N" -> N; anything else is an error naming the flag value.
StatusOr<int> ParseCudaDevice(const std::string& device);

}  // namespace ampc::cuda
