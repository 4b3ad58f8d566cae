#include "runtime/cuda/executor.h"

#include <cstdlib>
#include <string>

#ifdef AMPC_HAVE_CUDA
#include <cstring>
#include <map>
#include <vector>

#include "runtime/cpu/convert.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/thread_pool.h"
#include "runtime/cuda/cuda_api.h"
#include "runtime/cuda/cuda_executor.h"
#include "runtime/cuda/gemm_layout.h"
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
  ASSIGN_OR_RETURN(std::vector<StepKind> kinds, ClassifySteps(p));
  // Before EvaluateHostSteps: only the constants are host values yet.
  const std::vector<GemmFold> gemm_folds =
      FoldGemmEpilogues(p, &kinds, [this](int id) { return HostValue(id); });
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
  RETURN_IF_ERROR(BindSteps(kinds, gemm_folds));
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

const uint8_t* CudaExecutor::HostValue(int id) const {
  const plan::Buffer& buf = plan_.proto.buffers(id);
  if (buf.kind() == plan::Buffer::CONSTANT) return BufferData(plan_, buf);
  auto it = host_values_.find(id);
  return it == host_values_.end() ? nullptr : it->second.data();
}

Status CudaExecutor::BindGemm(const plan::Step& s, const GemmFold& fold, GemmCall* g) {
  ASSIGN_OR_RETURN(GemmDesc d, DescribeGemmStep(plan_.proto, s));
  d = Folded(std::move(d), fold);
  std::vector<int> ids;
  for (int id : s.inputs()) {
    if (id >= 0) ids.push_back(id);
  }
  const void* c = d.c_matrix || HasBias(d.epilogue) ? Address(ids[2])
                  : fold.bias_grad >= 0             ? Address(fold.bias_grad)
                                                    : nullptr;
  return g->Bind(lt_, d, Address(ids[static_cast<size_t>(d.a_input)]),
                 Address(ids[static_cast<size_t>(d.b_input)]), c,
                 Address(fold.folded() ? fold.writes : s.outputs(0)), workspace_bytes_,
                 fold.aux >= 0 ? Address(fold.aux) : nullptr);
}

Status CudaExecutor::BindSteps(const std::vector<StepKind>& kinds,
                               const std::vector<GemmFold>& gemm_folds) {
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
  window.host_value = [this](int id) { return HostValue(id); };
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
        RETURN_IF_ERROR(
            BindGemm(s, gemm_folds[static_cast<size_t>(i)], b.gemm.get()).WithContext(what));
        break;
      case StepKind::kFolded:
        break;  // the GEMM before it writes its output
      case StepKind::kStridedCopy: {
        ASSIGN_OR_RETURN(auto copies, DescribeStridedCopies(p, s, window.host_value));
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

StatusOr<std::unique_ptr<Executor>> CreateCudaExecutor(Plan plan, const CudaExecutorOptions& o) {
  return CudaExecutor::Create(std::move(plan), o);
}

#endif  // AMPC_HAVE_CUDA

}  // namespace ampc::cuda
