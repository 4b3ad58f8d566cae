#include "runtime/cpu/executor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>

#include "runtime/cpu/convert.h"

namespace ampc::cpu {

CpuExecutor::~CpuExecutor() {
  if (!profile_s_.empty() && calls_ > 0) PrintProfile();
  std::free(arena_);
}

void CpuExecutor::PrintProfile() const {
  if (calls_ == 1) {
    std::fputs(FormatStepProfile(plan_.proto, profile_first_s_, 1).c_str(), stderr);
    return;
  }
  const double first = std::accumulate(profile_first_s_.begin(), profile_first_s_.end(), 0.0);
  std::fprintf(stderr, "ampc profile: the first call (%.3f ms: warm-up) is left out\n",
               1e3 * first);
  std::fputs(FormatStepProfile(plan_.proto, profile_s_, calls_ - 1).c_str(), stderr);
}

StatusOr<std::unique_ptr<CpuExecutor>> CpuExecutor::Create(Plan plan, int threads,
                                                           bool generated_kernels) {
  if (!plan.data) return InvalidArgument("plan: no data section");
  std::unique_ptr<CpuExecutor> e(new CpuExecutor());
  e->plan_ = std::move(plan);
  e->use_generated_ = generated_kernels;
  RETURN_IF_ERROR(e->CheckKernels());
  e->pool_ = std::make_unique<ThreadPool>(threads);
  RETURN_IF_ERROR(e->Bind());
  if (ProfilingRequested()) {
    e->profile_s_.assign(e->steps_.size(), 0.0);
    e->profile_first_s_.assign(e->steps_.size(), 0.0);
  }
  return e;
}

// VerifyPlan checked the plan's structure; here, only what this backend needs.
Status CpuExecutor::CheckKernels() const {
  const plan::PlanProto& p = plan_.proto;
  if (p.target().kind() != "cpu") {
    return InvalidArgument("plan: compiled for target '" + p.target().kind() + "', not cpu");
  }
  auto check_op = [](const plan::Step& s, const std::string& what) -> Status {
    if (!KernelRegistry::Global().Find(s.op().domain(), s.op().op())) {
      return Unimplemented(what + ": the CPU runtime has no kernel for " + s.op().op());
    }
    return Status::Ok();
  };
  for (int i = 0; i < p.steps_size(); ++i) {
    const plan::Step& s = p.steps(i);
    if (s.has_kernel()) {
      // Every generated kernel keeps its per-op fallback (for CPUs its images do not fit).
      for (const plan::Step& f : p.fusion_groups(s.fusion_group() - 1).fallback()) {
        RETURN_IF_ERROR(check_op(f, "plan " + DescribeStep(p, i) + " (fallback " + f.name() + ")"));
      }
      continue;
    }
    RETURN_IF_ERROR(check_op(s, "plan " + DescribeStep(p, i)));
  }
  return Status::Ok();
}

Status CpuExecutor::Bind() {
  const plan::PlanProto& p = plan_.proto;
  const int64_t arena = std::max<int64_t>(p.arena_bytes(), 64);
  arena_ = static_cast<uint8_t*>(std::aligned_alloc(64, (arena + 63) / 64 * 64));
  if (!arena_) return Internal("cannot allocate a " + std::to_string(arena) + "-byte arena");
  std::memset(arena_, 0, arena);
  views_.resize(p.buffers_size());
  for (int i = 0; i < p.buffers_size(); ++i) {
    const plan::Buffer& b = p.buffers(i);
    TensorView& v = views_[i];
    v.dtype = *DTypeFromName(b.dtype());
    v.dims.assign(b.dims().begin(), b.dims().end());
    v.data = b.kind() == plan::Buffer::ARENA ? static_cast<void*>(arena_ + b.offset())
                                             : static_cast<void*>(BufferData(plan_, b));
    if (b.half_copy_of() != 0) {  // derived state: kept equal to its source, not named
      half_copies_.emplace(b.half_copy_of() - 1, i);
      continue;
    }
    if (b.kind() == plan::Buffer::STATE) state_ids_[b.name()] = i;
    if (b.kind() != plan::Buffer::ARENA) data_ids_[b.name()] = i;
  }
  kernels_.resize(p.kernels_size());
  if (use_generated_) {
    for (int k = 0; k < p.kernels_size(); ++k) {
      ASSIGN_OR_RETURN(kernels_[k], GeneratedKernel::Load(p.kernels(k)));
    }
  }
  steps_.resize(p.steps_size());
  for (int i = 0; i < p.steps_size(); ++i) {
    const plan::Step& s = p.steps(i);
    BoundStep& bs = steps_[i];
    const std::string what = "plan " + DescribeStep(p, i);
    if (!s.has_kernel()) {
      RETURN_IF_ERROR(BindOp(s, what, &bs));
      continue;
    }
    if (const GeneratedKernel* k = kernels_[s.kernel().kernel()].get()) {
      bs.gen = k;
      for (int id : s.inputs()) bs.gen_buffers.push_back(&views_[id]);
      for (int id : s.outputs()) bs.gen_buffers.push_back(&views_[id]);
      std::vector<TensorView*> outs;
      for (int id : s.outputs()) outs.push_back(id < 0 ? nullptr : &views_[id]);
      auto call = PlanKernelCall(p.kernels(s.kernel().kernel()), outs);
      if (!call.ok()) return call.status().WithContext(what);
      bs.gen_call = *call;
      for (const plan::ArgCheck& c : p.kernels(s.kernel().kernel()).arg_checks()) {
        bs.gen_checks.push_back(
            {&views_[s.inputs(c.arg())], c.min(), c.max(), c.has_except(), c.except()});
      }
      ++generated_steps_;
      if (bs.gen_checks.empty()) continue;  // else the fallback reports a failed check
    }
    const auto& fallback = p.fusion_groups(s.fusion_group() - 1).fallback();
    bs.fallback.resize(fallback.size());
    for (int f = 0; f < fallback.size(); ++f) {
      RETURN_IF_ERROR(BindOp(fallback[f], what + " (fallback)", &bs.fallback[f]));
    }
  }
  for (BoundStep& bs : steps_) {  // after the vectors stopped moving
    bs.ctx.attrs = &bs.attrs;
    for (BoundStep& f : bs.fallback) f.ctx.attrs = &f.attrs;
  }
  if (p.has_training() && p.training().stop_on_non_finite_loss()) {
    for (const auto& io : p.outputs()) {
      if (io.name() == p.training().loss()) loss_buffer_ = io.buffer();
    }
    for (int i = 0; i < p.steps_size(); ++i) {
      for (int id : p.steps(i).outputs()) {
        if (loss_buffer_ >= 0 && id == loss_buffer_) loss_step_ = i;
      }
    }
  }
  for (const std::string& m : p.metrics()) {
    int id = -1;
    for (const auto& io : p.outputs()) {
      if (io.name() == m) id = io.buffer();
    }
    if (id < 0 && state_ids_.count(m)) id = state_ids_.at(m);
    if (id < 0 || views_[id].NumElements() != 1) {
      return InvalidArgument("plan metric '" + m + "' is not a scalar output or state");
    }
    metric_ids_.push_back(id);
  }
  return Status::Ok();
}

Status CpuExecutor::BindOp(const plan::Step& s, const std::string& what, BoundStep* bs) {
  bs->fn = KernelRegistry::Global().Find(s.op().domain(), s.op().op());
  if (!bs->fn) return Unimplemented(what + ": the CPU runtime has no kernel for " + s.op().op());
  for (const plan::Attr& a : s.op().attrs()) {
    auto attr = AttributeFromPlan(a);
    if (!attr.ok()) return attr.status().WithContext(what);
    bs->attrs[a.name()] = std::move(*attr);
  }
  bs->ctx.op = s.op().op();
  bs->ctx.node_name = s.name();
  bs->ctx.pool = pool_.get();
  for (int id : s.inputs()) bs->ctx.inputs.push_back(id < 0 ? nullptr : &views_[id]);
  for (int id : s.outputs()) bs->ctx.outputs.push_back(id < 0 ? nullptr : &views_[id]);
  return Status::Ok();
}

Status CpuExecutor::RunStep(BoundStep& bs) {
  bool ok_args = true;
  for (const BoundStep::ArgCheck& c : bs.gen_checks) {
    const int64_t n = c.view->NumElements();
    for (int64_t i = 0; i < n && ok_args; ++i) {
      const int64_t v = Load<int64_t>(*c.view, i);
      ok_args = (v >= c.min && v <= c.max) || (c.has_except && v == c.except);
    }
  }
  if (bs.gen && ok_args) {
    bs.gen->Call(bs.gen_call, bs.gen_buffers, pool_.get());
    return Status::Ok();
  }
  if (!bs.fallback.empty()) {
    for (BoundStep& f : bs.fallback) RETURN_IF_ERROR(f.fn(f.ctx).WithContext(f.ctx.node_name));
    return Status::Ok();
  }
  return bs.fn(bs.ctx);
}

Status CpuExecutor::Execute(const std::vector<Tensor>& inputs, bool check_loss) {
  const plan::PlanProto& p = plan_.proto;
  RETURN_IF_ERROR(CheckPlanInputs(p, inputs));
  // Inputs are read where the caller holds them (no copy into the arena): every step reads the
  // view, and nothing writes a plan input. The arena keeps the input's slot, which other buffers
  // reuse after the input's last reader as before.
  for (int i = 0; i < p.inputs_size(); ++i) {
    views_[p.inputs(i).buffer()].data = const_cast<uint8_t*>(inputs[i].bytes().data());
  }
  for (size_t i = 0; i < steps_.size(); ++i) {
    const bool prof = !profile_s_.empty();
    const auto t0 =
        prof ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    Status st = RunStep(steps_[i]);
    if (prof) {
      (calls_ == 0 ? profile_first_s_ : profile_s_)[i] +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    if (!st.ok()) return st.WithContext(DescribeStep(p, static_cast<int>(i)));
    if (check_loss && static_cast<int>(i) == loss_step_) {
      const double loss = Load<double>(views_[loss_buffer_], 0);
      if (!std::isfinite(loss)) return DiagnoseNonFiniteLoss(loss);
    }
  }
  ++calls_;
  return Status::Ok();
}

namespace {

bool HasNonFinite(const TensorView& v) {
  if (!IsFloat(v.dtype)) return false;
  for (int64_t i = 0; i < v.NumElements(); ++i) {
    if (!std::isfinite(Load<double>(v, i))) return true;
  }
  return false;
}

}  // namespace

Status CpuExecutor::DiagnoseNonFiniteLoss(double loss) {
  const plan::PlanProto& p = plan_.proto;
  const std::string head = "the loss is " + std::string(std::isnan(loss) ? "NaN" : "infinite") +
                           " (fp32 training has no finite check to skip a bad step); ";
  // The input views still point at the caller's tensors (Execute bound them).
  for (int i = 0; i < p.inputs_size(); ++i) {
    if (HasNonFinite(views_[p.inputs(i).buffer()])) {
      return Internal(head + "the input '" + p.inputs(i).name() + "' holds non-finite values");
    }
  }
  for (const auto& [name, id] : state_ids_) {  // constants may hold -inf masks on purpose
    if (HasNonFinite(views_[id])) {
      return Internal(head + "the parameter or state '" + name + "' holds non-finite values");
    }
  }
  // Inputs and parameters are finite: replay the forward pass, checking each output. States
  // written in place before the loss (BatchNorm's running statistics) move once more, but the
  // run ends here anyway.
  for (int i = 0; i <= loss_step_; ++i) {
    RETURN_IF_ERROR(RunStep(steps_[i]).WithContext(DescribeStep(p, i)));
    for (int id : p.steps(i).outputs()) {
      if (id >= 0 && HasNonFinite(views_[id])) {
        const plan::Buffer& b = p.buffers(id);
        return Internal(head + "the first non-finite value is '" + b.name() + "', from " +
                        DescribeStep(p, i).substr(DescribeStep(p, i).find("node")));
      }
    }
  }
  return Internal(head + "no earlier value is non-finite");
}

StatusOr<std::vector<Tensor>> CpuExecutor::Run(const std::vector<Tensor>& inputs) {
  RETURN_IF_ERROR(Execute(inputs));
  std::vector<Tensor> out;
  for (const auto& io : plan_.proto.outputs()) {
    const TensorView& v = views_[io.buffer()];
    const auto* p = static_cast<const uint8_t*>(v.data);
    out.emplace_back(v.dtype, v.dims,
                     std::vector<uint8_t>(p, p + v.NumElements() * DTypeSize(v.dtype)));
  }
  // State updates read arena buffers kept live to the end, so the order of the copies is free.
  for (const auto& u : plan_.proto.state_updates()) {
    if (u.state() == u.from()) continue;  // written in place by its step
    std::memcpy(views_[u.state()].data, views_[u.from()].data,
                plan_.proto.buffers(u.state()).size_bytes());
  }
  return out;
}

Status CpuExecutor::Step(const std::vector<Tensor>& inputs) {
  RETURN_IF_ERROR(Execute(inputs, /*check_loss=*/loss_step_ >= 0));
  // Metrics first: a metric may be an output that a state update is about to overwrite.
  MetricsRecord r;
  r.call = calls_;
  for (int id : metric_ids_) r.values.push_back(Load<double>(views_[id], 0));
  for (const auto& u : plan_.proto.state_updates()) {
    if (u.state() == u.from()) continue;
    std::memcpy(views_[u.state()].data, views_[u.from()].data,
                plan_.proto.buffers(u.state()).size_bytes());
  }
  // States named as metrics are recorded after their update (the scale the next step uses).
  for (size_t k = 0; k < metric_ids_.size(); ++k) {
    if (plan_.proto.buffers(metric_ids_[k]).kind() == plan::Buffer::STATE) {
      r.values[k] = Load<double>(views_[metric_ids_[k]], 0);
    }
  }
  metrics_.push_back(std::move(r));
  return Status::Ok();
}

StatusOr<std::vector<MetricsRecord>> CpuExecutor::ReadMetrics() {
  std::vector<MetricsRecord> out;
  out.swap(metrics_);
  return out;
}

std::vector<std::string> CpuExecutor::StateNames() const {
  std::vector<std::string> names;
  for (const auto& [name, id] : state_ids_) names.push_back(name);
  return names;
}

StatusOr<Tensor> CpuExecutor::GetState(const std::string& name) const {
  auto it = data_ids_.find(name);
  if (it == data_ids_.end()) return NotFound("the plan has no state '" + name + "'");
  const TensorView& v = views_[it->second];
  const auto* p = static_cast<const uint8_t*>(v.data);
  return Tensor(v.dtype, v.dims,
                std::vector<uint8_t>(p, p + plan_.proto.buffers(it->second).size_bytes()));
}

Status CpuExecutor::SetState(const std::string& name, const Tensor& value) {
  auto it = data_ids_.find(name);
  if (it == data_ids_.end()) return NotFound("the plan has no state '" + name + "'");
  const TensorView& v = views_[it->second];
  if (!BufferHolds(plan_.proto.buffers(it->second), value)) {
    return InvalidArgument("state '" + name + "' is " +
                           BufferType(plan_.proto.buffers(it->second)).ToString() + ", got " +
                           value.type().ToString());
  }
  if (!value.bytes().empty()) std::memmove(v.data, value.bytes().data(), value.bytes().size());
  const auto [first, last] = half_copies_.equal_range(it->second);
  for (auto c = first; c != last; ++c) {  // the optimizer's half copies of this parameter
    TensorView& h = views_[c->second];
    StoreFloats(v.as<const float>(), h.NumElements(), h, 0);
  }
  return Status::Ok();
}

}  // namespace ampc::cpu
