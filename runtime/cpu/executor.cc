#include "runtime/cpu/executor.h"

#include <cstdlib>
#include <cstring>

#include "runtime/cpu/convert.h"

namespace ampc::cpu {

CpuExecutor::~CpuExecutor() { std::free(arena_); }

StatusOr<std::unique_ptr<CpuExecutor>> CpuExecutor::Create(Plan plan, int threads) {
  if (!plan.data) return InvalidArgument("plan: no data section");
  std::unique_ptr<CpuExecutor> e(new CpuExecutor());
  e->plan_ = std::move(plan);
  RETURN_IF_ERROR(e->CheckKernels());
  e->pool_ = std::make_unique<ThreadPool>(threads);
  RETURN_IF_ERROR(e->Bind());
  return e;
}

// VerifyPlan checked the plan's structure; here, only what this backend needs.
Status CpuExecutor::CheckKernels() const {
  const plan::PlanProto& p = plan_.proto;
  if (p.target().kind() != "cpu") {
    return InvalidArgument("plan: compiled for target '" + p.target().kind() + "', not cpu");
  }
  for (int i = 0; i < p.steps_size(); ++i) {
    const plan::Step& s = p.steps(i);
    if (s.has_kernel()) {
      return Unimplemented("plan " + DescribeStep(p, i) +
                           ": this runtime does not load generated kernels yet");
    }
    if (!KernelRegistry::Global().Find(s.op().domain(), s.op().op())) {
      return Unimplemented("plan " + DescribeStep(p, i) +
                           ": the CPU runtime has no kernel for this op");
    }
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
    if (b.kind() == plan::Buffer::STATE) state_ids_[b.name()] = i;
    if (b.kind() != plan::Buffer::ARENA) data_ids_[b.name()] = i;
  }
  steps_.resize(p.steps_size());
  for (int i = 0; i < p.steps_size(); ++i) {
    const plan::Step& s = p.steps(i);
    BoundStep& bs = steps_[i];
    bs.fn = KernelRegistry::Global().Find(s.op().domain(), s.op().op());
    for (const plan::Attr& a : s.op().attrs()) {
      auto attr = AttributeFromPlan(a);
      if (!attr.ok()) return attr.status().WithContext("plan " + DescribeStep(p, i));
      bs.attrs[a.name()] = std::move(*attr);
    }
    bs.ctx.op = s.op().op();
    bs.ctx.node_name = s.name();
    bs.ctx.pool = pool_.get();
    for (int id : s.inputs()) bs.ctx.inputs.push_back(id < 0 ? nullptr : &views_[id]);
    for (int id : s.outputs()) bs.ctx.outputs.push_back(id < 0 ? nullptr : &views_[id]);
  }
  for (BoundStep& bs : steps_) bs.ctx.attrs = &bs.attrs;  // after the vector stopped moving
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

Status CpuExecutor::Execute(const std::vector<Tensor>& inputs) {
  const plan::PlanProto& p = plan_.proto;
  if (static_cast<int>(inputs.size()) != p.inputs_size()) {
    return InvalidArgument("the plan takes " + std::to_string(p.inputs_size()) + " inputs, got " +
                           std::to_string(inputs.size()));
  }
  for (int i = 0; i < p.inputs_size(); ++i) {
    const auto& io = p.inputs(i);
    const TensorView& v = views_[io.buffer()];
    const Tensor& t = inputs[i];
    if (t.dtype() != v.dtype || t.dims() != v.dims) {
      std::vector<Dim> want(v.dims.begin(), v.dims.end());
      return InvalidArgument("input '" + io.name() + "' is " + t.type().ToString() +
                             " but the plan was compiled for " +
                             TensorType(v.dtype, want).ToString());
    }
    if (!t.bytes().empty()) std::memcpy(v.data, t.bytes().data(), t.bytes().size());
  }
  for (const auto& s : p.specializations()) {
    for (int i = 0; i < p.inputs_size(); ++i) {
      if (p.inputs(i).name() != s.input()) continue;
      auto got = inputs[i].AsInt64s();
      if (!got || !std::equal(got->begin(), got->end(), s.values().begin(), s.values().end())) {
        return InvalidArgument("input '" + s.input() +
                               "' must hold the values the plan was compiled for");
      }
    }
  }
  for (size_t i = 0; i < steps_.size(); ++i) {
    Status st = steps_[i].fn(steps_[i].ctx);
    if (!st.ok()) return st.WithContext(DescribeStep(p, static_cast<int>(i)));
  }
  ++calls_;
  return Status::Ok();
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
  RETURN_IF_ERROR(Execute(inputs));
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
  if (value.dtype() != v.dtype || value.dims() != v.dims) {
    std::vector<Dim> want(v.dims.begin(), v.dims.end());
    return InvalidArgument("state '" + name + "' is " + TensorType(v.dtype, want).ToString() +
                           ", got " + value.type().ToString());
  }
  if (!value.bytes().empty()) std::memmove(v.data, value.bytes().data(), value.bytes().size());
  return Status::Ok();
}

}  // namespace ampc::cpu
