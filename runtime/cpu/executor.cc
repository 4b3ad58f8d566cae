#include "runtime/cpu/executor.h"

#include <cstdlib>
#include <cstring>

#include "codegen/lower.h"

namespace ampc::cpu {
namespace {

std::string DescribeStep(const plan::Step& s, int index) {
  std::string op = s.domain().empty() ? s.op() : s.domain() + "::" + s.op();
  return "step " + std::to_string(index) + " node '" + s.name() + "' (" + op + ")";
}

}  // namespace

CpuExecutor::~CpuExecutor() { std::free(arena_); }

StatusOr<std::unique_ptr<CpuExecutor>> CpuExecutor::Create(plan::Plan plan, int threads) {
  std::unique_ptr<CpuExecutor> e(new CpuExecutor());
  e->plan_ = std::move(plan);
  RETURN_IF_ERROR(e->Validate());
  e->pool_ = std::make_unique<ThreadPool>(threads);
  RETURN_IF_ERROR(e->Bind());
  return e;
}

// Everything a corrupt or hand-edited plan could get wrong is checked here, once.
Status CpuExecutor::Validate() {
  const int nbuf = plan_.buffers_size();
  const int64_t arena = plan_.arena_bytes();
  if (arena < 0) return InvalidArgument("plan: negative arena size");
  for (int i = 0; i < nbuf; ++i) {
    const plan::Buffer& b = plan_.buffers(i);
    const std::string what = "plan buffer " + std::to_string(i) + " ('" + b.name() + "')";
    auto dt = DTypeFromName(b.dtype());
    if (!dt) return InvalidArgument(what + ": unknown dtype '" + b.dtype() + "'");
    int64_t n = 1;
    for (int64_t d : b.dims()) {
      if (d < 0 || d > kMaxDim || (d && n > kMaxElements / d)) {
        return InvalidArgument(what + ": bad dimension " + std::to_string(d));
      }
      n *= d;
    }
    if (b.size_bytes() != n * DTypeSize(*dt)) {
      return InvalidArgument(what + ": size disagrees with its shape");
    }
    if (b.kind() == plan::Buffer::ARENA) {
      if (b.offset() < 0 || b.offset() > arena - b.size_bytes()) {
        return InvalidArgument(what + ": lies outside the arena");
      }
    } else if (static_cast<int64_t>(b.data().size()) != b.size_bytes()) {
      return InvalidArgument(what + ": has " + std::to_string(b.data().size()) +
                             " bytes of data, expects " + std::to_string(b.size_bytes()));
    }
  }
  auto check_id = [&](int id, bool allow_omitted, const std::string& what) -> Status {
    if ((allow_omitted && id == -1) || (id >= 0 && id < nbuf)) return Status::Ok();
    return InvalidArgument(what + ": refers to buffer " + std::to_string(id) + " of " +
                           std::to_string(nbuf));
  };
  for (int i = 0; i < plan_.steps_size(); ++i) {
    const plan::Step& s = plan_.steps(i);
    const std::string what = "plan " + DescribeStep(s, i);
    for (int id : s.inputs()) RETURN_IF_ERROR(check_id(id, true, what));
    for (int id : s.outputs()) {
      RETURN_IF_ERROR(check_id(id, true, what));
      if (id >= 0 && plan_.buffers(id).kind() == plan::Buffer::CONSTANT) {
        return InvalidArgument(what + ": writes a constant buffer");
      }
    }
    if (!KernelRegistry::Global().Find(s.domain(), s.op())) {
      return Unimplemented(what + ": the CPU runtime has no kernel for this op");
    }
  }
  for (const auto& io : plan_.inputs()) RETURN_IF_ERROR(check_id(io.buffer(), false, "plan input '" + io.name() + "'"));
  for (const auto& io : plan_.outputs()) RETURN_IF_ERROR(check_id(io.buffer(), false, "plan output '" + io.name() + "'"));
  for (const auto& u : plan_.state_updates()) {
    RETURN_IF_ERROR(check_id(u.state(), false, "plan state update"));
    RETURN_IF_ERROR(check_id(u.from(), false, "plan state update"));
    const plan::Buffer& st = plan_.buffers(u.state());
    const plan::Buffer& from = plan_.buffers(u.from());
    if (st.kind() != plan::Buffer::STATE || st.dtype() != from.dtype() ||
        st.size_bytes() != from.size_bytes()) {
      return InvalidArgument("plan state update of '" + st.name() + "' from '" + from.name() +
                             "': not a state buffer of the same type");
    }
  }
  for (const auto& io : plan_.inputs()) {
    if (plan_.buffers(io.buffer()).kind() != plan::Buffer::ARENA) {
      return InvalidArgument("plan input '" + io.name() + "' is not an arena buffer");
    }
  }
  return Status::Ok();
}

Status CpuExecutor::Bind() {
  const int64_t arena = std::max<int64_t>(plan_.arena_bytes(), 64);
  arena_ = static_cast<uint8_t*>(std::aligned_alloc(64, (arena + 63) / 64 * 64));
  if (!arena_) return Internal("cannot allocate a " + std::to_string(arena) + "-byte arena");
  std::memset(arena_, 0, arena);
  views_.resize(plan_.buffers_size());
  for (int i = 0; i < plan_.buffers_size(); ++i) {
    plan::Buffer* b = plan_.mutable_buffers(i);
    TensorView& v = views_[i];
    v.dtype = *DTypeFromName(b->dtype());
    v.dims.assign(b->dims().begin(), b->dims().end());
    v.data = b->kind() == plan::Buffer::ARENA ? static_cast<void*>(arena_ + b->offset())
                                              : static_cast<void*>(b->mutable_data()->data());
    if (b->kind() == plan::Buffer::STATE) state_ids_[b->name()] = i;
    if (b->kind() != plan::Buffer::ARENA) data_ids_[b->name()] = i;
  }
  steps_.resize(plan_.steps_size());
  for (int i = 0; i < plan_.steps_size(); ++i) {
    const plan::Step& s = plan_.steps(i);
    BoundStep& bs = steps_[i];
    bs.fn = KernelRegistry::Global().Find(s.domain(), s.op());
    for (const plan::Attr& a : s.attrs()) {
      auto attr = AttributeFromPlan(a);
      if (!attr.ok()) return attr.status().WithContext("plan " + DescribeStep(s, i));
      bs.attrs[a.name()] = std::move(*attr);
    }
    bs.ctx.op = s.op();
    bs.ctx.node_name = s.name();
    bs.ctx.pool = pool_.get();
    for (int id : s.inputs()) bs.ctx.inputs.push_back(id < 0 ? nullptr : &views_[id]);
    for (int id : s.outputs()) bs.ctx.outputs.push_back(id < 0 ? nullptr : &views_[id]);
  }
  for (BoundStep& bs : steps_) bs.ctx.attrs = &bs.attrs;  // after the vector stopped moving
  return Status::Ok();
}

StatusOr<std::vector<Tensor>> CpuExecutor::Run(const std::vector<Tensor>& inputs) {
  if (static_cast<int>(inputs.size()) != plan_.inputs_size()) {
    return InvalidArgument("the plan takes " + std::to_string(plan_.inputs_size()) +
                           " inputs, got " + std::to_string(inputs.size()));
  }
  for (int i = 0; i < plan_.inputs_size(); ++i) {
    const auto& io = plan_.inputs(i);
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
  for (const auto& s : plan_.specializations()) {
    for (int i = 0; i < plan_.inputs_size(); ++i) {
      if (plan_.inputs(i).name() != s.input()) continue;
      auto got = inputs[i].AsInt64s();
      if (!got || !std::equal(got->begin(), got->end(), s.values().begin(), s.values().end())) {
        return InvalidArgument("input '" + s.input() +
                               "' must hold the values the plan was compiled for");
      }
    }
  }
  for (size_t i = 0; i < steps_.size(); ++i) {
    Status st = steps_[i].fn(steps_[i].ctx);
    if (!st.ok()) return st.WithContext(DescribeStep(plan_.steps(static_cast<int>(i)), static_cast<int>(i)));
  }
  std::vector<Tensor> out;
  for (const auto& io : plan_.outputs()) {
    const TensorView& v = views_[io.buffer()];
    const auto* p = static_cast<const uint8_t*>(v.data);
    out.emplace_back(v.dtype, v.dims,
                     std::vector<uint8_t>(p, p + v.NumElements() * DTypeSize(v.dtype)));
  }
  // State updates read arena buffers kept live to the end, so the order of the copies is free.
  for (const auto& u : plan_.state_updates()) {
    if (u.state() == u.from()) continue;  // written in place by its step
    std::memcpy(views_[u.state()].data, views_[u.from()].data,
                plan_.buffers(u.state()).size_bytes());
  }
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
  const plan::Buffer& b = plan_.buffers(it->second);
  return Tensor(views_[it->second].dtype, views_[it->second].dims,
                std::vector<uint8_t>(b.data().begin(), b.data().end()));
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
  if (!value.bytes().empty()) std::memcpy(v.data, value.bytes().data(), value.bytes().size());
  return Status::Ok();
}

}  // namespace ampc::cpu
