#include "runtime/cuda/executor.h"

#include <cstdlib>
#include <string>

#ifdef AMPC_HAVE_CUDA
#include <cmath>
#include <cstring>
#include <map>
#include <vector>

#include "runtime/cpu/convert.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/thread_pool.h"
#include "runtime/cuda/copy_kernels.h"
#include "runtime/cuda/cuda_api.h"
#include "runtime/cuda/gemm_call.h"
#include "runtime/cuda/gemm_layout.h"
#include "runtime/cuda/launch.h"
#include "runtime/cuda/step_plan.h"
#include "runtime/cuda/window_step.h"
#include "runtime/device_info.h"
#endif

namespace ampc::cuda {

StatusOr<int> ParseCudaDevice(const std::string& device) {
  if (device == "cuda") return 0;
  if (device.rfind("cuda:", 0) == 0 && device.size() > 5 && device.size() <= 8) {
    int n = 0;
    for (char c : device.substr(5)) {
      if (c < '0' || c > '9') n = -1;
      if (n >= 0) n = n * 10 + (c - '0');
    }
    if (n >= 0) return n;
  }
  return InvalidArgument("--device " + device + ": expected auto, cpu, cuda or cuda:N");
}

#ifndef AMPC_HAVE_CUDA

StatusOr<std::unique_ptr<Executor>> CreateCudaExecutor(Plan, const CudaExecutorOptions&) {
  return Unimplemented("this ampc was built without the CUDA toolkit: it has no CUDA runtime");
}

#else

namespace {

// cuBLASLt's workspace, shared by every GEMM: 32 MiB (what NVIDIA suggests for Hopper's large
// GEMMs) for plans whose activations pass 256 MiB, else 4 MiB, so that a small model's footprint
// is not mostly workspace.
size_t WorkspaceBytes(int64_t arena) {
  return arena > (int64_t{256} << 20) ? size_t{32} << 20 : size_t{4} << 20;
}
constexpr int64_t kMetricsRing = 64;  // steps between metric reads

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
  Status BindSteps(const std::vector<StepKind>& kinds);
  Status BindGemm(const plan::Step& s, GemmCall* g);
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

CudaExecutor::~CudaExecutor() {
  if (stream_) cudaStreamSynchronize(stream_);
  if (!profile_s_.empty() && calls_ > 0) {
    std::fputs(FormatStepProfile(plan_.proto, profile_s_, calls_, profile_tags_).c_str(), stderr);
  }
  for (cudaEvent_t e : profile_events_) cudaEventDestroy(e);
  if (graph_) cudaGraphExecDestroy(graph_);
  steps_.clear();  // their cuBLASLt descriptors, before the handle
  if (driver_) {
    for (CUmodule m : modules_) {
      if (m) driver_->module_unload(m);
    }
  }
  for (cudaEvent_t e : staged_) {
    if (e) cudaEventDestroy(e);
  }
  for (void* p : {static_cast<void*>(arena_), static_cast<void*>(data_), workspace_,
                  static_cast<void*>(scratch_), static_cast<void*>(metric_now_),
                  static_cast<void*>(metric_ring_)}) {
    if (p) cudaFree(p);
  }
  if (lt_) LtApi().Destroy(lt_);
  if (stream_) cudaStreamDestroy(stream_);
}

StatusOr<std::unique_ptr<Executor>> CudaExecutor::Create(Plan plan, const CudaExecutorOptions& o) {
  if (!plan.data) return InvalidArgument("plan: no data section");
  std::unique_ptr<CudaExecutor> e(new CudaExecutor());
  e->plan_ = std::move(plan);
  e->device_ = o.device;
  RETURN_IF_ERROR(e->Init(o));
  return std::unique_ptr<Executor>(std::move(e));
}

Status CudaExecutor::Init(const CudaExecutorOptions& o) {
  const plan::PlanProto& p = plan_.proto;
  if (p.target().kind() != "cuda") {
    return InvalidArgument("plan: compiled for target '" + p.target().kind() + "', not cuda");
  }
  // Everything the plan needs that can be refused without touching the GPU comes first.
  ASSIGN_OR_RETURN(const std::vector<StepKind> kinds, ClassifySteps(p));
  const CudaAvailability avail = ProbeCuda();
  if (avail.device_count == 0)
    return Unimplemented("--device cuda: no usable GPU (" + avail.reason + ")");
  if (o.device < 0 || o.device >= avail.device_count) {
    return InvalidArgument("--device cuda:" + std::to_string(o.device) + ": this machine has " +
                           std::to_string(avail.device_count) + " GPU(s)");
  }
  AMPC_CUDA(cudaSetDevice(o.device), "selecting GPU " + std::to_string(o.device));
  cudaDeviceProp prop{};
  AMPC_CUDA(cudaGetDeviceProperties(&prop, o.device), "device properties");
  ASSIGN_OR_RETURN(driver_, GetDriver());
  AMPC_CUDA(cudaFree(nullptr), "creating the context");  // the primary context, current now
  AMPC_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
  RETURN_IF_ERROR(LoadCublasLt());
  AMPC_CUBLASLT(LtApi().Create(&lt_), "handle");
  use_graph_ = o.cuda_graph && !ProfilingRequested();

  ASSIGN_OR_RETURN(const int64_t arena_bytes, KernelArenaBytes(p));
  const int64_t arena = std::max<int64_t>(arena_bytes, 256);
  AMPC_CUDA(cudaMalloc(reinterpret_cast<void**>(&arena_), static_cast<size_t>(arena)),
            "a " + std::to_string(arena) + "-byte arena");
  AMPC_CUDA(cudaMemsetAsync(arena_, 0, static_cast<size_t>(arena), stream_), "clearing the arena");
  const int64_t data = std::max<int64_t>(plan_.data->size(), 256);
  AMPC_CUDA(cudaMalloc(reinterpret_cast<void**>(&data_), static_cast<size_t>(data)),
            "the " + std::to_string(data) + "-byte data section");
  AMPC_CUDA(cudaMemcpy(data_, plan_.data->data(), static_cast<size_t>(plan_.data->size()),
                       cudaMemcpyHostToDevice),
            "uploading the weights and states");
  workspace_bytes_ = WorkspaceBytes(arena);
  AMPC_CUDA(cudaMalloc(&workspace_, workspace_bytes_), "the cuBLASLt workspace");
  addr_.resize(static_cast<size_t>(p.buffers_size()));
  for (int i = 0; i < p.buffers_size(); ++i) {
    const plan::Buffer& b = p.buffers(i);
    addr_[static_cast<size_t>(i)] =
        b.kind() == plan::Buffer::ARENA ? arena_ + b.offset() : data_ + b.data_offset();
    if (b.half_copy_of() != 0) {  // derived state: kept equal to its source, not named
      half_copies_.emplace(b.half_copy_of() - 1, i);
      continue;
    }
    if (b.kind() == plan::Buffer::STATE) state_ids_[b.name()] = i;
    if (b.kind() != plan::Buffer::ARENA) data_ids_[b.name()] = i;
  }
  RETURN_IF_ERROR(LoadKernels(prop.major, prop.minor));
  RETURN_IF_ERROR(EvaluateHostSteps(kinds));
  RETURN_IF_ERROR(BindSteps(kinds));
  if (ProfilingRequested()) {
    profile_events_.resize(steps_.size() + 1, nullptr);
    for (cudaEvent_t& e : profile_events_) AMPC_CUDA(cudaEventCreate(&e), "profile event");
    profile_s_.assign(steps_.size(), 0.0);
    for (StepKind k : kinds) profile_tags_.emplace_back(StepKindName(k));
  }

  for (int set = 0; set < 2; ++set) {
    AMPC_CUDA(cudaEventCreateWithFlags(&staged_[set], cudaEventDisableTiming), "event");
    for (const auto& io : p.inputs()) {
      staging_[set].push_back(std::make_unique<Pinned>());
      RETURN_IF_ERROR(staging_[set].back()->Allocate(static_cast<size_t>(Bytes(io.buffer()))));
    }
  }
  for (const std::string& m : p.metrics()) {
    int id = -1;
    for (const auto& io : p.outputs()) {
      if (io.name() == m) id = io.buffer();
    }
    if (id < 0 && state_ids_.count(m)) id = state_ids_.at(m);
    if (id < 0 || Bytes(id) > 8) {
      return InvalidArgument("plan metric '" + m + "' is not a scalar output or state");
    }
    metric_ids_.push_back(id);
  }
  const size_t record = 8 * std::max<size_t>(1, metric_ids_.size());
  AMPC_CUDA(cudaMalloc(reinterpret_cast<void**>(&metric_now_), record), "metrics");
  AMPC_CUDA(cudaMalloc(reinterpret_cast<void**>(&metric_ring_), record * kMetricsRing),
            "the metrics ring");
  if (p.has_training() && p.training().stop_on_non_finite_loss()) {
    for (const auto& io : p.outputs()) {
      if (io.name() == p.training().loss()) loss_buffer_ = io.buffer();
    }
    for (int i = 0; i < p.steps_size(); ++i) {
      for (int id : p.steps(i).outputs()) {
        if (loss_buffer_ >= 0 && id == loss_buffer_) loss_step_ = i;
      }
    }
    loss_host_ = std::make_unique<Pinned>();
    RETURN_IF_ERROR(loss_host_->Allocate(8));
  }
  AMPC_CUDA(cudaStreamSynchronize(stream_), "binding the plan");
  return Status::Ok();
}

// A CUBIN for exactly this architecture's major version (SASS of sm_80 runs on sm_8x), else the
// PTX, which the driver compiles for this GPU when it is at least the PTX's architecture.
Status CudaExecutor::LoadKernels(int major, int minor) {
  const plan::PlanProto& p = plan_.proto;
  modules_.assign(static_cast<size_t>(p.kernels_size()), nullptr);
  functions_.assign(static_cast<size_t>(p.kernels_size()), nullptr);
  for (int k = 0; k < p.kernels_size(); ++k) {
    const plan::Kernel& kernel = p.kernels(k);
    auto chosen = ChooseKernelImage(kernel, major, minor);
    if (!chosen.ok()) return chosen.status().WithContext("plan for " + p.target().arch());
    // PTX goes to the JIT NUL-terminated (the plan's bytes may not be).
    const std::string ptx_text =
        (*chosen)->format() == plan::KernelImage::PTX ? (*chosen)->data() : std::string();
    const void* image = ptx_text.empty() ? static_cast<const void*>((*chosen)->data().data())
                                         : static_cast<const void*>(ptx_text.c_str());
    CUmodule m = nullptr;
    if (CUresult r = driver_->module_load_data(&m, image); r != CUDA_SUCCESS) {
      return DriverFailure(r, "loading kernel " + kernel.name());
    }
    modules_[static_cast<size_t>(k)] = m;
    CUfunction f = nullptr;
    if (CUresult r = driver_->module_get_function(&f, m, kernel.entry().c_str());
        r != CUDA_SUCCESS) {
      return DriverFailure(r, "kernel " + kernel.name() + " has no entry " + kernel.entry());
    }
    functions_[static_cast<size_t>(k)] = f;
  }
  return Status::Ok();
}

// Host steps: computed once with the CPU runtime's kernels on host memory (constants read from the
// plan's data section; Shape and Size read only their input's dims), kept pinned, and copied into
// their arena slots at their place in every call.
Status CudaExecutor::EvaluateHostSteps(const std::vector<StepKind>& kinds) {
  const plan::PlanProto& p = plan_.proto;
  std::vector<cpu::TensorView> views(static_cast<size_t>(p.buffers_size()));
  std::map<int, std::vector<uint8_t>> values;
  for (int i = 0; i < p.buffers_size(); ++i) {
    const plan::Buffer& b = p.buffers(i);
    cpu::TensorView& v = views[static_cast<size_t>(i)];
    v.dtype = DTypeFromName(b.dtype()).value_or(DType::kUndefined);
    v.dims.assign(b.dims().begin(), b.dims().end());
    if (b.kind() == plan::Buffer::CONSTANT) v.data = BufferData(plan_, b);
  }
  cpu::ThreadPool pool(1);
  steps_.resize(static_cast<size_t>(p.steps_size()));
  for (int i = 0; i < p.steps_size(); ++i) {
    if (kinds[static_cast<size_t>(i)] != StepKind::kHost) continue;
    const plan::Step& s = p.steps(i);
    const std::string what = "plan " + DescribeStep(p, i);
    cpu::KernelFn fn = cpu::KernelRegistry::Global().Find(s.op().domain(), s.op().op());
    if (!fn) return Unimplemented(what + ": no host kernel for " + s.op().op());
    AttributeMap attrs;
    for (const plan::Attr& a : s.op().attrs()) {
      auto attr = AttributeFromPlan(a);
      if (!attr.ok()) return attr.status().WithContext(what);
      attrs[a.name()] = std::move(*attr);
    }
    cpu::KernelContext ctx;
    ctx.op = s.op().op();
    ctx.node_name = s.name();
    ctx.attrs = &attrs;
    ctx.pool = &pool;
    for (int id : s.inputs())
      ctx.inputs.push_back(id < 0 ? nullptr : &views[static_cast<size_t>(id)]);
    for (int id : s.outputs()) {
      if (id < 0) {
        ctx.outputs.push_back(nullptr);
        continue;
      }
      std::vector<uint8_t>& bytes = values[id];
      bytes.assign(static_cast<size_t>(Bytes(id)), 0);
      views[static_cast<size_t>(id)].data = bytes.data();
      ctx.outputs.push_back(&views[static_cast<size_t>(id)]);
    }
    RETURN_IF_ERROR(fn(ctx).WithContext(what));
    Bound& b = steps_[static_cast<size_t>(i)];
    b.kind = StepKind::kHost;
    for (int id : s.outputs()) {
      if (id < 0) continue;
      Upload u;
      u.device = Address(id);
      u.host = std::make_unique<Pinned>();
      RETURN_IF_ERROR(u.host->Allocate(values[id].size()));
      std::memcpy(u.host->p, values[id].data(), values[id].size());
      b.uploads.push_back(std::move(u));
    }
  }
  host_values_ = std::move(values);
  return Status::Ok();
}

Status CudaExecutor::BindGemm(const plan::Step& s, GemmCall* g) {
  const plan::PlanProto& p = plan_.proto;
  AttributeMap attrs;
  for (const plan::Attr& a : s.op().attrs()) {
    ASSIGN_OR_RETURN(attrs[a.name()], AttributeFromPlan(a));
  }
  std::vector<GemmOperand> in;
  std::vector<int> ids;
  for (int id : s.inputs()) {
    if (id < 0) continue;
    const plan::Buffer& b = p.buffers(id);
    in.push_back(
        {DTypeFromName(b.dtype()).value_or(DType::kUndefined), {b.dims().begin(), b.dims().end()}});
    ids.push_back(id);
  }
  const plan::Buffer& ob = p.buffers(s.outputs(0));
  const GemmOperand out{DTypeFromName(ob.dtype()).value_or(DType::kUndefined),
                        {ob.dims().begin(), ob.dims().end()}};
  ASSIGN_OR_RETURN(const GemmDesc d, DescribeGemm(s.op().domain(), s.op().op(), attrs, in, out));
  const void* c = d.c_matrix || d.epilogue == GemmEpilogue::kBias ? Address(ids[2]) : nullptr;
  return g->Bind(lt_, d, Address(ids[static_cast<size_t>(d.a_input)]),
                 Address(ids[static_cast<size_t>(d.b_input)]), c, Address(s.outputs(0)),
                 workspace_bytes_);
}

Status CudaExecutor::BindSteps(const std::vector<StepKind>& kinds) {
  const plan::PlanProto& p = plan_.proto;
  std::map<int, int> input_of;  // buffer -> the plan input whose values it holds
  ASSIGN_OR_RETURN(const int64_t scratch, ScratchBytes(p, kinds));
  if (scratch > 0) {
    AMPC_CUDA(cudaMalloc(reinterpret_cast<void**>(&scratch_), static_cast<size_t>(scratch)),
              "the convolutions' " + std::to_string(scratch) + "-byte scratch");
  }
  WindowBinding window;
  window.lt = lt_;
  window.workspace_bytes = workspace_bytes_;
  window.scratch = scratch_;
  window.address = [this](int id) { return Address(id); };
  window.host_value = [this](int id) -> const uint8_t* {
    const plan::Buffer& buf = plan_.proto.buffers(id);
    if (buf.kind() == plan::Buffer::CONSTANT) return BufferData(plan_, buf);
    auto it = host_values_.find(id);
    return it == host_values_.end() ? nullptr : it->second.data();
  };
  for (int i = 0; i < p.inputs_size(); ++i) input_of[p.inputs(i).buffer()] = i;
  for (int i = 0; i < p.steps_size(); ++i) {
    const plan::Step& s = p.steps(i);
    Bound& b = steps_[static_cast<size_t>(i)];
    const std::string what = "plan " + DescribeStep(p, i);
    b.kind = kinds[static_cast<size_t>(i)];
    switch (b.kind) {
      case StepKind::kHost:
        break;  // EvaluateHostSteps
      case StepKind::kAlias:
        // The same values as the input: a plan input's checks apply through it (labels
        // unsqueezed for the loss).
        if (input_of.count(s.inputs(0))) input_of[s.outputs(0)] = input_of.at(s.inputs(0));
        b.src = Address(s.inputs(0));
        b.dst = Address(s.outputs(0));
        b.bytes = static_cast<size_t>(Bytes(s.outputs(0)));
        if (Bytes(s.inputs(0)) != Bytes(s.outputs(0))) {
          return InvalidArgument(what + ": the output's size differs from the input's");
        }
        break;
      case StepKind::kGemm:
        b.gemm = std::make_unique<GemmCall>();
        RETURN_IF_ERROR(BindGemm(s, b.gemm.get()).WithContext(what));
        break;
      case StepKind::kStridedCopy: {
        ASSIGN_OR_RETURN(auto copies, DescribeStridedCopies(p, s));
        for (const StridedCopy& c : copies) {
          b.copies.push_back({c, Address(s.inputs(c.input)), Address(s.outputs(c.output))});
        }
        break;
      }
      case StepKind::kConv:
      case StepKind::kPool:
      case StepKind::kPad:
      case StepKind::kClip: {
        auto w = WindowStep::Bind(p, s, b.kind, window);
        if (!w.ok()) return w.status().WithContext(what);
        b.window = std::move(*w);
        break;
      }
      case StepKind::kGather: {
        auto g = DescribeGather(p, s);
        if (!g.ok()) return g.status().WithContext(what);
        b.gather = *g;
        b.src = Address(s.inputs(0));
        b.index = Address(s.inputs(1));
        b.dst = Address(s.outputs(0));
        break;
      }
      case StepKind::kKernel: {
        const int k = s.kernel().kernel();
        const plan::Kernel& kernel = p.kernels(k);
        auto operand = [&](int id) -> DeviceOperand {
          if (id < 0) return {};
          const int64_t size = static_cast<int64_t>(
              DTypeSize(DTypeFromName(p.buffers(id).dtype()).value_or(DType::kUInt8)));
          return {reinterpret_cast<uint64_t>(Address(id)), Bytes(id) / size, Bytes(id)};
        };
        std::vector<DeviceOperand> in, out;
        for (int id : s.inputs()) in.push_back(operand(id));
        for (int id : s.outputs()) out.push_back(operand(id));
        auto l = PlanKernelLaunch(kernel, in, out);
        if (!l.ok()) return l.status().WithContext(what);
        b.launch = std::move(*l);
        b.fn = functions_[static_cast<size_t>(k)];
        for (uint64_t& slot : b.launch.slots) b.params.push_back(&slot);
        for (const plan::ArgCheck& c : kernel.arg_checks()) {
          const int id = s.inputs(c.arg());
          // Values the kernel assumes valid: checked on the host where they come from the
          // caller (labels, directly or reshaped); other integer operands (an optimizer's step
          // count) are the plan's own, kept in range by construction.
          if (input_of.count(id)) {
            arg_checks_.push_back(
                {input_of.at(id), c.min(), c.max(), c.has_except(), c.except(), what});
          }
        }
        break;
      }
    }
  }
  return Status::Ok();
}

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

}  // namespace

StatusOr<std::unique_ptr<Executor>> CreateCudaExecutor(Plan plan, const CudaExecutorOptions& o) {
  return CudaExecutor::Create(std::move(plan), o);
}

#endif  // AMPC_HAVE_CUDA

}  // namespace ampc::cuda
