// The Executor interface: what every backend (runtime/cpu, later runtime/cuda) offers for running
// a Plan, and all the training loop (runtime/train.h), `ampc eval` and `ampc bench` use. An
// executor owns the plan's buffers on its device: inputs travel host -> device per call, states
// stay on the device, and nothing comes back unless asked for.
//
// Training steps never force a device-to-host wait: Step() returns once the step is queued, and
// the scalars the plan names as metrics (loss, gradient norm, loss scale, skipped steps) are
// appended to a small device-resident record that ReadMetrics() fetches every N steps
// (metrics_interval(), or at the end). The CPU executor runs synchronously and records on the host.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codegen/plan.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace ampc {

// The metrics of one training step, in the order of plan().metrics().
struct MetricsRecord {
  int64_t call = 0;  // the executor's Step count when it was recorded (1 = first step)
  std::vector<double> values;
};

class Executor {
 public:
  virtual ~Executor() = default;

  virtual const plan::PlanProto& plan() const = 0;
  virtual std::string device() const = 0;  // "cpu", "cuda:0"

  // One call; inputs in plan().inputs() order; outputs copied to the host in plan().outputs()
  // order. Waits for the device (evaluation, inference).
  virtual StatusOr<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs) = 0;
  // One training step: inputs in, states updated, the metrics recorded; no outputs come back.
  virtual Status Step(const std::vector<Tensor>& inputs) = 0;
  // The records of the steps since the last read (waits for them).
  virtual StatusOr<std::vector<MetricsRecord>> ReadMetrics() = 0;
  // How many steps may pass between reads without the record filling up or slowing the device.
  virtual int64_t metrics_interval() const = 0;

  // Training state (STATE buffers: parameters, optimizer moments, running statistics, counters)
  // and constants (CONSTANT buffers, e.g. the parameters of an evaluation pass).
  virtual std::vector<std::string> StateNames() const = 0;
  virtual bool HasData(const std::string& name) const = 0;
  virtual StatusOr<Tensor> GetState(const std::string& name) const = 0;
  // The tensor must have the buffer's dtype and shape.
  virtual Status SetState(const std::string& name, const Tensor& value) = 0;
  // The plan with its current data (every CONSTANT and STATE as it is now), for saving.
  virtual StatusOr<Plan> CurrentPlan() const = 0;

  // Every state, by name (a checkpoint), and back.
  StatusOr<std::map<std::string, Tensor>> SnapshotState() const;
  Status RestoreState(const std::map<std::string, Tensor>& states);
};

// A plan buffer's dtype and shape, and whether `t` has them (inputs, SetState).
TensorType BufferType(const plan::Buffer& b);
bool BufferHolds(const plan::Buffer& b, const Tensor& t);

// The checks every executor makes on a call's inputs: their count, each input's dtype and shape
// against its plan buffer, and the values of specialized inputs (plan.proto's Specialization).
Status CheckPlanInputs(const plan::PlanProto& p, const std::vector<Tensor>& inputs);

// AMPC_PROFILE=1 (any value but empty or 0): executors time every step and print, when they
// end, FormatStepProfile's table to stderr; AMPC_PROFILE=all lists every step that took any
// time (tests/bench/train_vs_peers.py sums them by op).
bool ProfilingRequested();
bool ProfileAllSteps();  // AMPC_PROFILE=all
// The time per call, then the steps taking at least 0.2% of it (every step with `all`), slowest
// first, each with its `tags` entry when given (the CUDA executor: how the step runs), then the
// time per tag.
std::string FormatStepProfile(const plan::PlanProto& p, const std::vector<double>& seconds,
                              int64_t calls, const std::vector<std::string>& tags = {},
                              bool all = ProfileAllSteps());

struct ExecutorOptions {
  std::string device = "cpu";     // cpu | cuda | cuda:N
  int threads = 0;                // cpu: worker threads (0 = one per hardware thread)
  bool generated_kernels = true;  // false: fusion groups run their per-op fallback steps
  bool cuda_graph = true;         // cuda: capture the training step once and replay it
};

// An executor for the plan's target on the requested device. A plan compiled for another target
// is refused with an error naming both.
StatusOr<std::unique_ptr<Executor>> CreateExecutor(Plan plan, const ExecutorOptions& opts);

// Copies every state of `from` whose name `to` holds (trained parameters and running statistics
// into an evaluation executor). Buffers of another dtype or shape are an error.
Status CopyStates(const Executor& from, Executor& to);

}  // namespace ampc
