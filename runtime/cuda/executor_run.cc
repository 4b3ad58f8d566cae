// Built only with the CUDA toolkit (the file is empty otherwise).
#ifdef AMPC_HAVE_CUDA
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/cpu/convert.h"
#include "runtime/cuda/copy_kernels.h"
#include "runtime/cuda/cuda_executor.h"

namespace ampc::cuda {

Status CudaExecutor::EnqueueStep(Bound& b) {
  switch (b.kind) {
    case StepKind::kHost:
      for (const Upload& u : b.uploads) {
        AMPC_CUDA(
            cudaMemcpyAsync(u.device, u.host->p, u.host->bytes, cudaMemcpyHostToDevice, stream_),
            "host value");
      }
      return Status::Ok();
    case StepKind::kAlias:
      if (b.src != b.dst) {
        AMPC_CUDA(cudaMemcpyAsync(b.dst, b.src, b.bytes, cudaMemcpyDeviceToDevice, stream_),
                  "copy");
      }
      return Status::Ok();
    case StepKind::kStridedCopy:
      for (const Copy& c : b.copies) {
        const int e = LaunchStridedCopy(c.desc, c.in, c.out, stream_);
        if (e != 0) return CudaFailure(static_cast<cudaError_t>(e), "strided copy");
      }
      return Status::Ok();
    case StepKind::kGather: {
      const int e = LaunchGather(b.gather, b.src, b.index, b.dst, stream_);
      if (e != 0) return CudaFailure(static_cast<cudaError_t>(e), "gather");
      return Status::Ok();
    }
    case StepKind::kKernel:
      if (b.launch.fill_bytes > 0) {
        AMPC_CUDA(
            cudaMemsetAsync(reinterpret_cast<void*>(b.launch.fill_address), b.launch.fill_byte,
                            static_cast<size_t>(b.launch.fill_bytes), stream_),
            "filling a kernel's output");
      }
      if (b.launch.grid == 0) return Status::Ok();
      if (CUresult r =
              driver_->launch_kernel(b.fn, b.launch.grid, 1, 1, b.launch.block, 1, 1, 0,
                                     reinterpret_cast<CUstream>(stream_), b.params.data(), nullptr);
          r != CUDA_SUCCESS) {
        return DriverFailure(r, "launching a generated kernel");
      }
      return Status::Ok();
    case StepKind::kGemm:
      return b.gemm->Enqueue(lt_, workspace_, workspace_bytes_, stream_);
    case StepKind::kFolded:
      return Status::Ok();
    case StepKind::kConv:
    case StepKind::kPool:
    case StepKind::kPad:
    case StepKind::kClip:
      return b.window->Enqueue(lt_, workspace_, workspace_bytes_, stream_);
  }
  return Status::Ok();
}

Status CudaExecutor::CopyInputs(const std::vector<Tensor>& inputs) {
  const plan::PlanProto& p = plan_.proto;
  RETURN_IF_ERROR(CheckPlanInputs(p, inputs));
  for (const ArgCheck& c : arg_checks_) {
    const Tensor& t = inputs[static_cast<size_t>(c.input)];
    auto values = t.AsInt64s();
    if (!values) continue;
    for (int64_t v : *values) {
      if ((v >= c.min && v <= c.max) || (c.has_except && v == c.except)) continue;
      return InvalidArgument("input '" + p.inputs(c.input).name() + "' holds " + std::to_string(v) +
                             ", outside [" + std::to_string(c.min) + ", " + std::to_string(c.max) +
                             "] (" + c.step + ")");
    }
  }
  const int set = next_set_;
  next_set_ ^= 1;
  AMPC_CUDA(cudaEventSynchronize(staged_[set]), "input staging");
  for (int i = 0; i < p.inputs_size(); ++i) {
    Pinned& host = *staging_[set][static_cast<size_t>(i)];
    const auto& bytes = inputs[static_cast<size_t>(i)].bytes();
    std::memcpy(host.p, bytes.data(), bytes.size());
    AMPC_CUDA(cudaMemcpyAsync(Address(p.inputs(i).buffer()), host.p, bytes.size(),
                              cudaMemcpyHostToDevice, stream_),
              "copying input '" + p.inputs(i).name() + "'");
  }
  AMPC_CUDA(cudaEventRecord(staged_[set], stream_), "input staging");
  return Status::Ok();
}

Status CudaExecutor::Enqueue(bool check_loss) {
  const bool profile = !profile_events_.empty();
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (profile) AMPC_CUDA(cudaEventRecord(profile_events_[i], stream_), "profile event");
    RETURN_IF_ERROR(
        EnqueueStep(steps_[i]).WithContext(DescribeStep(plan_.proto, static_cast<int>(i))));
    if (check_loss && static_cast<int>(i) == loss_step_) RETURN_IF_ERROR(CheckLoss());
  }
  if (profile) {
    AMPC_CUDA(cudaEventRecord(profile_events_.back(), stream_), "profile event");
    AMPC_CUDA(cudaEventSynchronize(profile_events_.back()), "the profiled step");
    for (size_t i = 0; i < steps_.size(); ++i) {
      float ms = 0;
      AMPC_CUDA(cudaEventElapsedTime(&ms, profile_events_[i], profile_events_[i + 1]),
                "profile event");
      profile_s_[i] += 1e-3 * ms;
    }
  }
  return Status::Ok();
}

// fp32 plans without a finite check stop before any state changes when the loss is not finite,
// as the CPU executor does: this waits for the loss (one synchronisation per step).
Status CudaExecutor::CheckLoss() {
  AMPC_CUDA(
      cudaMemcpyAsync(loss_host_->p, Address(loss_buffer_),
                      static_cast<size_t>(Bytes(loss_buffer_)), cudaMemcpyDeviceToHost, stream_),
      "reading the loss");
  AMPC_CUDA(cudaStreamSynchronize(stream_), "the step");
  cpu::TensorView v;
  v.dtype = DTypeFromName(plan_.proto.buffers(loss_buffer_).dtype()).value_or(DType::kFloat32);
  v.data = loss_host_->p;
  const double loss = cpu::Load<double>(v, 0);
  if (std::isfinite(loss)) return Status::Ok();
  return Internal("the loss is " + std::string(std::isnan(loss) ? "NaN" : "infinite") +
                  " (fp32 training has no finite check to skip a bad step); run the plan with "
                  "--device cpu to find the first non-finite value");
}

Status CudaExecutor::EnqueueStateUpdates() {
  for (const auto& u : plan_.proto.state_updates()) {
    if (u.state() == u.from()) continue;
    AMPC_CUDA(
        cudaMemcpyAsync(Address(u.state()), Address(u.from()),
                        static_cast<size_t>(Bytes(u.state())), cudaMemcpyDeviceToDevice, stream_),
        "state update");
  }
  return Status::Ok();
}

Status CudaExecutor::Step(const std::vector<Tensor>& inputs) {
  RETURN_IF_ERROR(CopyInputs(inputs));
  const plan::PlanProto& p = plan_.proto;
  // The step's metrics into metric_now_: outputs before the state updates, states after them
  // (the loss scale the next step uses).
  auto record = [&](bool states) -> Status {
    for (size_t k = 0; k < metric_ids_.size(); ++k) {
      const int id = metric_ids_[k];
      if ((p.buffers(id).kind() == plan::Buffer::STATE) != states) continue;
      AMPC_CUDA(cudaMemcpyAsync(metric_now_ + 8 * k, Address(id), static_cast<size_t>(Bytes(id)),
                                cudaMemcpyDeviceToDevice, stream_),
                "metric");
    }
    return Status::Ok();
  };
  auto body = [&]() -> Status {
    RETURN_IF_ERROR(Enqueue(/*check_loss=*/false));
    RETURN_IF_ERROR(record(false));
    RETURN_IF_ERROR(EnqueueStateUpdates());
    return record(true);
  };
  const bool check_loss = loss_step_ >= 0;
  if (check_loss || !use_graph_ || graph_failed_) {
    if (check_loss) {
      RETURN_IF_ERROR(Enqueue(true));
      RETURN_IF_ERROR(record(false));
      RETURN_IF_ERROR(EnqueueStateUpdates());
      RETURN_IF_ERROR(record(true));
    } else {
      RETURN_IF_ERROR(body());
    }
  } else {
    if (!graph_) {
      // Capture once: every address is fixed, so the same graph serves every step.
      AMPC_CUDA(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "graph capture");
      const Status st = body();
      cudaGraph_t graph = nullptr;
      const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
      if (!st.ok() || end != cudaSuccess ||
          cudaGraphInstantiate(&graph_, graph, 0) != cudaSuccess) {
        // Something in the step cannot be captured: run eagerly from now on (an error that is
        // not the capture's comes back from the eager run).
        graph_failed_ = true;
        graph_ = nullptr;
      }
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();  // clear a capture error
      if (graph_failed_) {
        RETURN_IF_ERROR(body());
      }
    }
    if (graph_) AMPC_CUDA(cudaGraphLaunch(graph_, stream_), "graph launch");
  }
  ++calls_;
  if (ring_used_ == kMetricsRing) {  // nobody read for a whole ring: fetch it now
    ASSIGN_OR_RETURN(auto early, ReadMetrics());
    for (auto& r : early) metrics_read_.push_back(std::move(r));
  }
  const size_t record_bytes = 8 * std::max<size_t>(1, metric_ids_.size());
  AMPC_CUDA(cudaMemcpyAsync(metric_ring_ + record_bytes * static_cast<size_t>(ring_used_),
                            metric_now_, record_bytes, cudaMemcpyDeviceToDevice, stream_),
            "metrics ring");
  ring_calls_.push_back(calls_);
  ++ring_used_;
  return Status::Ok();
}

StatusOr<std::vector<MetricsRecord>> CudaExecutor::ReadMetrics() {
  std::vector<MetricsRecord> out;
  out.swap(metrics_read_);
  const size_t record_bytes = 8 * std::max<size_t>(1, metric_ids_.size());
  std::vector<uint8_t> host(record_bytes * static_cast<size_t>(ring_used_));
  AMPC_CUDA(cudaStreamSynchronize(stream_), "the queued steps");
  if (!host.empty()) {
    AMPC_CUDA(cudaMemcpy(host.data(), metric_ring_, host.size(), cudaMemcpyDeviceToHost),
              "metrics");
  }
  for (int64_t r = 0; r < ring_used_; ++r) {
    MetricsRecord rec;
    rec.call = ring_calls_[static_cast<size_t>(r)];
    for (size_t k = 0; k < metric_ids_.size(); ++k) {
      cpu::TensorView v;
      v.dtype =
          DTypeFromName(plan_.proto.buffers(metric_ids_[k]).dtype()).value_or(DType::kFloat32);
      v.data = host.data() + record_bytes * static_cast<size_t>(r) + 8 * k;
      rec.values.push_back(cpu::Load<double>(v, 0));
    }
    out.push_back(std::move(rec));
  }
  ring_used_ = 0;
  ring_calls_.clear();
  return out;
}

StatusOr<std::vector<Tensor>> CudaExecutor::Run(const std::vector<Tensor>& inputs) {
  RETURN_IF_ERROR(CopyInputs(inputs));
  RETURN_IF_ERROR(Enqueue(false));
  const plan::PlanProto& p = plan_.proto;
  std::vector<Tensor> out;
  for (const auto& io : p.outputs()) {
    const plan::Buffer& b = p.buffers(io.buffer());
    std::vector<uint8_t> bytes(static_cast<size_t>(b.size_bytes()));
    AMPC_CUDA(cudaMemcpyAsync(bytes.data(), Address(io.buffer()), bytes.size(),
                              cudaMemcpyDeviceToHost, stream_),
              "output '" + io.name() + "'");
    AMPC_CUDA(cudaStreamSynchronize(stream_), "output '" + io.name() + "'");
    out.emplace_back(DTypeFromName(b.dtype()).value_or(DType::kUndefined),
                     std::vector<int64_t>(b.dims().begin(), b.dims().end()), std::move(bytes));
  }
  RETURN_IF_ERROR(EnqueueStateUpdates());
  ++calls_;
  return out;
}

std::vector<std::string> CudaExecutor::StateNames() const {
  std::vector<std::string> names;
  for (const auto& [name, id] : state_ids_) names.push_back(name);
  return names;
}

StatusOr<Tensor> CudaExecutor::GetState(const std::string& name) const {
  auto it = data_ids_.find(name);
  if (it == data_ids_.end()) return NotFound("the plan has no state '" + name + "'");
  const plan::Buffer& b = plan_.proto.buffers(it->second);
  std::vector<uint8_t> bytes(static_cast<size_t>(b.size_bytes()));
  AMPC_CUDA(cudaStreamSynchronize(stream_), "the queued steps");
  AMPC_CUDA(cudaMemcpy(bytes.data(), Address(it->second), bytes.size(), cudaMemcpyDeviceToHost),
            "reading state '" + name + "'");
  return Tensor(DTypeFromName(b.dtype()).value_or(DType::kUndefined),
                std::vector<int64_t>(b.dims().begin(), b.dims().end()), std::move(bytes));
}

Status CudaExecutor::SetState(const std::string& name, const Tensor& value) {
  auto it = data_ids_.find(name);
  if (it == data_ids_.end()) return NotFound("the plan has no state '" + name + "'");
  const plan::Buffer& b = plan_.proto.buffers(it->second);
  if (!BufferHolds(b, value)) {
    return InvalidArgument("state '" + name + "' is " + BufferType(b).ToString() + ", got " +
                           value.type().ToString());
  }
  AMPC_CUDA(cudaStreamSynchronize(stream_), "the queued steps");
  if (!value.bytes().empty()) {
    AMPC_CUDA(cudaMemcpy(Address(it->second), value.bytes().data(), value.bytes().size(),
                         cudaMemcpyHostToDevice),
              "writing state '" + name + "'");
  }
  const auto [first, last] = half_copies_.equal_range(it->second);
  for (auto c = first; c != last; ++c) {  // the optimizer's half copies of this parameter
    const plan::Buffer& h = plan_.proto.buffers(c->second);
    const Tensor half = value.ConvertFloat(DTypeFromName(h.dtype()).value_or(DType::kBFloat16));
    AMPC_CUDA(cudaMemcpy(Address(c->second), half.bytes().data(), half.bytes().size(),
                         cudaMemcpyHostToDevice),
              "writing the half copy of state '" + name + "'");
  }
  return Status::Ok();
}

StatusOr<Plan> CudaExecutor::CurrentPlan() const {
  AMPC_CUDA(cudaStreamSynchronize(stream_), "the queued steps");
  for (int id = 0; id < plan_.proto.buffers_size(); ++id) {  // named states and half copies
    const plan::Buffer& b = plan_.proto.buffers(id);
    if (b.kind() != plan::Buffer::STATE) continue;
    AMPC_CUDA(cudaMemcpy(BufferData(plan_, b), Address(id), static_cast<size_t>(b.size_bytes()),
                         cudaMemcpyDeviceToHost),
              "reading state '" + b.name() + "'");
  }
  return plan_;
}

}  // namespace ampc::cuda
#endif  // AMPC_HAVE_CUDA
