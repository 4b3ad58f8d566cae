#include "codegen/plan.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>

#include "ir/file_io.h"
#include "ir/graph.h"
#include "ir/limits.h"
#include "ir/op_registry.h"

namespace ampc {
namespace {

constexpr char kMagic[8] = {'A', 'M', 'P', 'C', 'P', 'L', 'A', 'N'};
constexpr int64_t kHeaderBytes = 64;

struct Header {
  uint32_t format = 0, header_bytes = 0;
  uint64_t message_offset = 0, message_bytes = 0, data_offset = 0, data_bytes = 0;
};

void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t Get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

int64_t RoundUp(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

Status ReadFileRange(const std::string& path, int64_t offset, int64_t bytes, uint8_t* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound(path + ": cannot open the plan: " + std::strerror(errno));
  int64_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::pread(fd, out + done, static_cast<size_t>(bytes - done),
                              static_cast<off_t>(offset + done));
    if (n <= 0) {
      ::close(fd);
      return InvalidArgument(path + ": truncated plan data section");
    }
    done += n;
  }
  ::close(fd);
  return Status::Ok();
}

void SetTensor(const Tensor& t, plan::TensorData* out) {
  out->set_dtype(std::string(DTypeName(t.dtype())));
  for (int64_t d : t.dims()) out->add_dims(d);
  out->set_data(std::string(t.bytes().begin(), t.bytes().end()));
}

StatusOr<Tensor> TensorFromPlan(const plan::TensorData& t) {
  auto dt = DTypeFromName(t.dtype());
  if (!dt) return InvalidArgument("unknown dtype '" + t.dtype() + "'");
  int64_t n = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || d > kMaxDim || (d && n > kMaxElements / d)) {
      return InvalidArgument("tensor attribute has a bad dimension");
    }
    n *= d;
  }
  if (static_cast<int64_t>(t.data().size()) != n * DTypeSize(*dt)) {
    return InvalidArgument("tensor data size disagrees with its shape");
  }
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  return Tensor(*dt, dims, std::vector<uint8_t>(t.data().begin(), t.data().end()));
}

// The graph a plan describes, rebuilt from its buffers and steps and re-inferred (VerifyPlan).
Status VerifyTypes(const Plan& plan) {
  const plan::PlanProto& p = plan.proto;
  Graph g;
  const int nbuf = p.buffers_size();
  std::vector<Value*> values(nbuf, nullptr);
  auto buffer_type = [&](const plan::Buffer& b) -> TensorType {
    std::vector<Dim> dims(b.dims().begin(), b.dims().end());
    return TensorType(*DTypeFromName(b.dtype()), std::move(dims));  // dtypes checked already
  };
  for (const auto& io : p.inputs()) {
    ASSIGN_OR_RETURN(Value * v, g.AddInput("b" + std::to_string(io.buffer()),
                                           buffer_type(p.buffers(io.buffer()))));
    values[io.buffer()] = v;
    for (const auto& s : p.specializations()) {
      if (s.input() == io.name()) {
        v->set_known_ints(std::vector<Dim>(s.values().begin(), s.values().end()));
      }
    }
  }
  for (int i = 0; i < nbuf; ++i) {
    const plan::Buffer& b = p.buffers(i);
    if (b.kind() == plan::Buffer::ARENA) continue;
    const TensorType t = buffer_type(b);
    const std::string name = "b" + std::to_string(i);
    const int64_t n = *t.NumElements();
    if (IsInteger(t.dtype) && t.rank() <= 1 && n <= 64) {
      // Shape values: inference needs them (Reshape targets, Slice bounds, ...).
      const uint8_t* d = BufferData(plan, b);
      std::vector<int64_t> dims(b.dims().begin(), b.dims().end());
      Tensor data(t.dtype, dims, std::vector<uint8_t>(d, d + b.size_bytes()));
      ASSIGN_OR_RETURN(Value * v, g.AddInitializer(name, std::move(data)));
      auto ints = v->initializer()->AsInt64s();
      v->set_known_ints(std::vector<Dim>(ints->begin(), ints->end()));
      values[i] = v;
    } else {
      // Weights: only their type matters, and reading them would page in the whole section.
      ASSIGN_OR_RETURN(values[i], g.AddInput(name, t));
    }
  }
  for (int k = 0; k < p.steps_size(); ++k) {
    const plan::Step& s = p.steps(k);
    const std::string what = DescribeStep(p, k);
    std::vector<Value*> inputs;
    for (int id : s.inputs()) {
      if (id == -1) {
        inputs.push_back(nullptr);
        continue;
      }
      if (!values[id])
        return InvalidArgument(what + ": reads buffer " + std::to_string(id) +
                               " before it is written");
      inputs.push_back(values[id]);
    }
    if (s.has_kernel()) {
      // A generated kernel's outputs are what its fusion group computes; until kernels are
      // generated ([codegen]) they take their declared types.
      for (int id : s.outputs()) {
        if (id < 0) continue;
        const std::string name = "b" + std::to_string(id) + "_k" + std::to_string(k);
        ASSIGN_OR_RETURN(values[id], g.AddInput(name, buffer_type(p.buffers(id))));
      }
      continue;
    }
    std::vector<std::string> outputs;
    for (int id : s.outputs()) {
      // An output is a fresh arena buffer, or a state written in place (a new version of it).
      const bool state = id != -1 && p.buffers(id).kind() == plan::Buffer::STATE;
      if (id != -1 && !state && (values[id] || p.buffers(id).kind() != plan::Buffer::ARENA)) {
        return InvalidArgument(what + ": writes buffer " + std::to_string(id) +
                               ", which is not a fresh arena buffer");
      }
      outputs.push_back(id == -1 ? ""
                        : state  ? "b" + std::to_string(id) + "_s" + std::to_string(k)
                                 : "b" + std::to_string(id));
    }
    AttributeMap attrs;
    for (const plan::Attr& a : s.op().attrs()) {
      ASSIGN_OR_RETURN(Attribute attr, AttributeFromPlan(a));
      attrs[a.name()] = std::move(attr);
    }
    ASSIGN_OR_RETURN(Node * n, g.AddNode(s.op().op(), s.op().domain(), s.name(), inputs, outputs,
                                         std::move(attrs)));
    RETURN_IF_ERROR(InferNode(*n).WithContext(what));
    for (int j = 0; j < n->num_outputs(); ++j) {
      if (!n->output(j)) continue;
      const int id = s.outputs(j);
      const TensorType declared = buffer_type(p.buffers(id));
      if (n->output(j)->type() != declared) {
        return InvalidArgument(what + ": buffer '" + p.buffers(id).name() + "' is " +
                               declared.ToString() + " but the op produces " +
                               n->output(j)->type().ToString());
      }
      values[id] = n->output(j);
    }
  }
  for (const plan::StateUpdate& u : p.state_updates()) {
    if (!values[u.from()]) {
      return InvalidArgument("the update of state '" + p.buffers(u.state()).name() +
                             "' reads a buffer no step writes");
    }
  }
  for (const auto& io : p.outputs()) {
    if (!values[io.buffer()]) return InvalidArgument("output '" + io.name() + "' is never written");
  }
  return Status::Ok();
}

}  // namespace

// --- PlanData -------------------------------------------------------------------------------

StatusOr<std::shared_ptr<PlanData>> PlanData::Allocate(int64_t bytes) {
  if (bytes < 0) return InvalidArgument("negative data section size");
  std::shared_ptr<PlanData> d(new PlanData());
  const size_t n = static_cast<size_t>(RoundUp(std::max<int64_t>(bytes, 1), 64));
  d->data_ = static_cast<uint8_t*>(std::aligned_alloc(64, n));
  if (!d->data_)
    return Internal("cannot allocate a " + std::to_string(bytes) + "-byte data section");
  std::memset(d->data_, 0, n);
  d->size_ = bytes;
  return d;
}

StatusOr<std::shared_ptr<PlanData>> PlanData::MapFile(const std::string& path, int64_t offset,
                                                      int64_t bytes) {
  if (offset < 0 || bytes < 0 || offset % kDataSectionAlignment != 0) {
    return InvalidArgument(path + ": bad data section offset");
  }
  if (bytes == 0) return Allocate(0);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < offset || st.st_size - offset < bytes) {
    ::close(fd);
    return InvalidArgument(path + ": truncated plan: the data section needs " +
                           std::to_string(offset + bytes) + " bytes, the file has " +
                           std::to_string(static_cast<int64_t>(st.st_size)));
  }
  void* m = ::mmap(nullptr, static_cast<size_t>(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd,
                   static_cast<off_t>(offset));
  ::close(fd);  // the mapping keeps the file alive
  if (m == MAP_FAILED)
    return Internal(path + ": cannot map the data section: " + std::strerror(errno));
  std::shared_ptr<PlanData> d(new PlanData());
  d->data_ = static_cast<uint8_t*>(m);
  d->size_ = bytes;
  d->mapped_ = true;
  return d;
}

PlanData::~PlanData() {
  if (mapped_) {
    ::munmap(data_, static_cast<size_t>(size_));
  } else {
    std::free(data_);
  }
}

int64_t PlanDataBuilder::Append(const void* bytes, int64_t n) {
  const int64_t at = RoundUp(size_, kPlanAlignment);
  pieces_.push_back({bytes, at, n});
  size_ = at + n;
  return at;
}

StatusOr<std::shared_ptr<PlanData>> PlanDataBuilder::Finish() const {
  ASSIGN_OR_RETURN(std::shared_ptr<PlanData> d, PlanData::Allocate(size_));
  for (const Piece& p : pieces_) {
    if (p.n > 0) std::memcpy(d->data() + p.offset, p.bytes, static_cast<size_t>(p.n));
  }
  return d;
}

StatusOr<Plan> AttachEvalPass(Plan step, const Plan& eval) {
  if (eval.data == step.data) {  // already one data section (the executors of a loaded plan)
    step.proto.mutable_training()->mutable_eval()->CopyFrom(eval.proto);
    return step;
  }
  std::map<std::string, const plan::Buffer*> by_name;
  for (const plan::Buffer& b : step.proto.buffers()) {
    if (b.kind() != plan::Buffer::ARENA) by_name[b.name()] = &b;
  }
  plan::PlanProto e = eval.proto;
  PlanDataBuilder data;
  data.Append(step.data->data(), step.data->size());
  for (plan::Buffer& b : *e.mutable_buffers()) {
    if (b.kind() == plan::Buffer::ARENA) continue;
    auto it = by_name.find(b.name());
    if (it != by_name.end() && it->second->dtype() == b.dtype() &&
        std::equal(b.dims().begin(), b.dims().end(), it->second->dims().begin(),
                   it->second->dims().end())) {
      b.set_data_offset(it->second->data_offset());
    } else {
      b.set_data_offset(data.Append(eval.data->data() + b.data_offset(), b.size_bytes()));
    }
  }
  Plan out;
  ASSIGN_OR_RETURN(out.data, data.Finish());
  out.proto = std::move(step.proto);
  out.proto.set_data_bytes(out.data->size());
  e.set_data_bytes(out.data->size());
  *out.proto.mutable_training()->mutable_eval() = std::move(e);
  return out;
}

// --- files ----------------------------------------------------------------------------------

Status SavePlan(const Plan& p, const std::string& path, PlanDataOnDisk how) {
  plan::PlanProto proto = p.proto;
  const int64_t data_bytes = p.data ? p.data->size() : 0;
  proto.set_data_bytes(data_bytes);
  if (how == PlanDataOnDisk::kWhole || proto.data_fills().empty()) {
    proto.clear_data_fills();
    proto.set_stored_data_bytes(0);
  }
  const int64_t stored = proto.data_fills().empty() ? data_bytes : proto.stored_data_bytes();
  if (stored < 0 || stored > data_bytes) return Internal("the plan's stored data exceeds its data");
  std::string message;
  if (!proto.SerializeToString(&message)) {
    return Internal("the plan's message is too large to serialise (over 2 GiB without its data)");
  }
  const int64_t data_offset =
      RoundUp(kHeaderBytes + static_cast<int64_t>(message.size()), kDataSectionAlignment);
  uint8_t header[kHeaderBytes] = {};
  std::memcpy(header, kMagic, sizeof(kMagic));
  Put32(header + 8, kPlanFormatVersion);
  Put32(header + 12, kHeaderBytes);
  Put64(header + 16, kHeaderBytes);
  Put64(header + 24, message.size());
  Put64(header + 32, static_cast<uint64_t>(data_offset));
  Put64(header + 40, static_cast<uint64_t>(stored));
  const std::string pad(
      static_cast<size_t>(data_offset - kHeaderBytes - static_cast<int64_t>(message.size())), '\0');
  std::vector<std::string_view> pieces{
      std::string_view(reinterpret_cast<const char*>(header), kHeaderBytes), message, pad};
  if (stored > 0) {
    pieces.emplace_back(reinterpret_cast<const char*>(p.data->data()), static_cast<size_t>(stored));
  }
  return WriteFileAtomically(path, pieces);
}

StatusOr<Plan> LoadPlan(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return NotFound(path + ": cannot open the plan: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(path + ": not a regular file");
  }
  const int64_t file_bytes = st.st_size;
  uint8_t header[kHeaderBytes] = {};
  const ssize_t got = ::pread(fd, header, kHeaderBytes, 0);
  ::close(fd);
  if (got < static_cast<ssize_t>(sizeof(kMagic)) ||
      std::memcmp(header, kMagic, sizeof(kMagic)) != 0) {
    // Format 2 and older were a bare message; say so rather than "corrupt".
    plan::PlanProto old;
    if (file_bytes > 0 && file_bytes < (int64_t{1} << 31)) {
      auto bytes = ReadFile(path);
      if (bytes.ok() && old.ParseFromString(*bytes) && old.format_version() >= 1 &&
          old.format_version() < kPlanFormatVersion) {
        return InvalidArgument(path + ": plan format " + std::to_string(old.format_version()) +
                               " was written by an older ampc; recompile the model with this one");
      }
    }
    return InvalidArgument(path + ": not an ampc plan (no AMPCPLAN header)");
  }
  if (got < kHeaderBytes) return InvalidArgument(path + ": truncated plan header");
  Header h;
  h.format = Get32(header + 8);
  h.header_bytes = Get32(header + 12);
  h.message_offset = Get64(header + 16);
  h.message_bytes = Get64(header + 24);
  h.data_offset = Get64(header + 32);
  h.data_bytes = Get64(header + 40);
  if (h.format > kPlanFormatVersion) {
    return Unimplemented(path + ": plan format " + std::to_string(h.format) +
                         " is newer than this ampc reads (" + std::to_string(kPlanFormatVersion) +
                         "); recompile the model or update ampc");
  }
  if (h.format < kPlanFormatVersion) {
    return InvalidArgument(path + ": plan format " + std::to_string(h.format) +
                           " was written by an older ampc; recompile the model with this one");
  }
  const uint64_t size = static_cast<uint64_t>(file_bytes);
  if (h.header_bytes != kHeaderBytes || h.message_offset < kHeaderBytes ||
      h.message_offset > size || h.message_bytes > size - h.message_offset ||
      h.message_bytes >= (uint64_t{1} << 31) ||
      h.data_offset < h.message_offset + h.message_bytes || h.data_offset > size ||
      h.data_bytes > size - h.data_offset) {
    return InvalidArgument(path +
                           ": truncated or corrupt plan (its header's sections do not fit the " +
                           std::to_string(file_bytes) + "-byte file)");
  }
  std::string message(h.message_bytes, '\0');
  {
    const int mfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (mfd < 0) return NotFound(path + ": cannot open the plan");
    const ssize_t n =
        ::pread(mfd, message.data(), message.size(), static_cast<off_t>(h.message_offset));
    ::close(mfd);
    if (n != static_cast<ssize_t>(message.size()))
      return InvalidArgument(path + ": truncated plan message");
  }
  Plan p;
  if (!p.proto.ParseFromString(message)) {
    return InvalidArgument(path + ": not an ampc plan (corrupt message)");
  }
  if (p.proto.format_version() != kPlanFormatVersion) {
    return InvalidArgument(path + ": the plan message's format version (" +
                           std::to_string(p.proto.format_version()) +
                           ") disagrees with its header");
  }
  RETURN_IF_ERROR(VerifyDataFills(p.proto).WithContext(path));
  const bool filled = !p.proto.data_fills().empty();
  if ((filled ? p.proto.stored_data_bytes() : p.proto.data_bytes()) !=
      static_cast<int64_t>(h.data_bytes)) {
    return InvalidArgument(path + ": the plan's data section size disagrees with its header");
  }
  // The input limits (ir/limits.h): an executor allocates the arena the plan declares.
  RETURN_IF_ERROR(CheckTensorBytes(p.proto.arena_bytes(), "the plan's arena").WithContext(path));
  RETURN_IF_ERROR(
      CheckTensorBytes(p.proto.data_bytes(), "the plan's data section").WithContext(path));
  RETURN_IF_ERROR(CheckNodeCount(p.proto.steps_size(), "the plan's steps").WithContext(path));
  if (filled) {  // synthetic data: read what the file stores, make the rest
    ASSIGN_OR_RETURN(p.data, PlanData::Allocate(p.proto.data_bytes()));
    RETURN_IF_ERROR(ReadFileRange(path, static_cast<int64_t>(h.data_offset),
                                  p.proto.stored_data_bytes(), p.data->data()));
    MaterializeFills(p.proto, *p.data);
  } else {
    ASSIGN_OR_RETURN(p.data, PlanData::MapFile(path, static_cast<int64_t>(h.data_offset),
                                               static_cast<int64_t>(h.data_bytes)));
  }
  RETURN_IF_ERROR(VerifyPlan(p).WithContext(path));
  if (p.proto.has_training() && p.proto.training().has_eval()) {
    RETURN_IF_ERROR(VerifyPlan(p.EvalPass()).WithContext(path + " (evaluation pass)"));
  }
  return p;
}

// --- verification ---------------------------------------------------------------------------

std::string DescribeStep(const plan::PlanProto& p, int index) {
  const plan::Step& s = p.steps(index);
  std::string what;
  if (s.has_kernel()) {
    const int k = s.kernel().kernel();
    what = "kernel " + (k >= 0 && k < p.kernels_size() ? p.kernels(k).name() : std::to_string(k));
  } else {
    what = s.op().domain().empty() ? s.op().op() : s.op().domain() + "::" + s.op().op();
  }
  return "step " + std::to_string(index) + " node '" + s.name() + "' (" + what + ")";
}

Status VerifyPlan(const Plan& plan) {
  const plan::PlanProto& p = plan.proto;
  if (p.format_version() != kPlanFormatVersion) {
    return InvalidArgument("plan format " + std::to_string(p.format_version()) + ", expected " +
                           std::to_string(kPlanFormatVersion));
  }
  const int64_t align = p.alignment();
  if (align < 1 || align > kDataSectionAlignment || (align & (align - 1)) != 0) {
    return InvalidArgument("plan: alignment " + std::to_string(align) +
                           " is not a power of two up to 64 KiB");
  }
  RETURN_IF_ERROR(VerifyDataFills(p));
  const int64_t data_bytes = plan.data ? plan.data->size() : 0;
  const int nbuf = p.buffers_size();
  const int64_t arena = p.arena_bytes();
  if (arena < 0) return InvalidArgument("plan: negative arena size");
  if (p.arena_kernel_bytes() < 0 || p.arena_kernel_bytes() > arena)
    return InvalidArgument("plan: arena_kernel_bytes outside [0, arena_bytes]");
  for (int i = 0; i < nbuf; ++i) {
    const plan::Buffer& b = p.buffers(i);
    const std::string what = "plan buffer " + std::to_string(i) + " ('" + b.name() + "')";
    auto dt = DTypeFromName(b.dtype());
    if (!dt || *dt == DType::kUndefined)
      return InvalidArgument(what + ": unknown dtype '" + b.dtype() + "'");
    int64_t n = 1;
    for (int64_t d : b.dims()) {
      if (d < 0 || d > kMaxDim || (d && n > kMaxElements / d)) {
        return InvalidArgument(what + ": bad dimension " + std::to_string(d));
      }
      n *= d;
    }
    if (b.size_bytes() != n * DTypeSize(*dt))
      return InvalidArgument(what + ": size disagrees with its shape");
    if (b.half_copy_of() != 0) {
      const int src = b.half_copy_of() - 1;
      if (src < 0 || src >= nbuf || src == i || b.kind() != plan::Buffer::STATE || !IsHalf(*dt) ||
          p.buffers(src).kind() != plan::Buffer::STATE || p.buffers(src).dtype() != "f32" ||
          p.buffers(src).half_copy_of() != 0 ||
          !std::equal(b.dims().begin(), b.dims().end(), p.buffers(src).dims().begin(),
                      p.buffers(src).dims().end())) {
        return InvalidArgument(what +
                               ": a half copy must be an f16/bf16 state of an f32 state "
                               "buffer of its shape");
      }
    }
    if (b.kind() == plan::Buffer::ARENA) {
      if (b.offset() < 0 || b.offset() > arena - b.size_bytes() || b.offset() % align != 0) {
        return InvalidArgument(what + ": lies outside the arena or is misaligned");
      }
    } else if (b.data_offset() < 0 || b.data_offset() > data_bytes - b.size_bytes() ||
               b.data_offset() % align != 0) {
      return InvalidArgument(what + ": its data lies outside the plan's " +
                             std::to_string(data_bytes) + "-byte data section or is misaligned");
    }
  }
  auto check_id = [&](int id, bool allow_omitted, const std::string& what) -> Status {
    if ((allow_omitted && id == -1) || (id >= 0 && id < nbuf)) return Status::Ok();
    return InvalidArgument(what + ": refers to buffer " + std::to_string(id) + " of " +
                           std::to_string(nbuf));
  };
  for (int i = 0; i < p.kernels_size(); ++i) {
    if (p.kernels(i).entry().empty())
      return InvalidArgument("plan kernel " + std::to_string(i) + " has no entry point");
  }
  for (int i = 0; i < p.steps_size(); ++i) {
    const plan::Step& s = p.steps(i);
    const std::string what = "plan " + DescribeStep(p, i);
    if (s.impl_case() == plan::Step::IMPL_NOT_SET)
      return InvalidArgument(what + ": neither an op nor a kernel");
    if (s.has_kernel() && (s.kernel().kernel() < 0 || s.kernel().kernel() >= p.kernels_size())) {
      return InvalidArgument(what + ": names kernel " + std::to_string(s.kernel().kernel()) +
                             " of " + std::to_string(p.kernels_size()));
    }
    if (s.fusion_group() < 0 || s.fusion_group() > p.fusion_groups_size()) {
      return InvalidArgument(what + ": names a fusion group the plan does not have");
    }
    if (s.has_kernel()) {
      if (s.fusion_group() == 0) return InvalidArgument(what + ": a kernel step without its group");
      if (s.inputs_size() + s.outputs_size() > kMaxKernelArgs) {
        return InvalidArgument(what + ": more than " + std::to_string(kMaxKernelArgs) +
                               " kernel arguments");
      }
      for (int id : s.inputs()) {
        if (id < 0) return InvalidArgument(what + ": a kernel step with an omitted input");
      }
      for (int id : s.outputs()) {
        if (id < 0) return InvalidArgument(what + ": a kernel step with an omitted output");
      }
      for (const plan::ArgCheck& c : p.kernels(s.kernel().kernel()).arg_checks()) {
        const int id = c.arg() >= 0 && c.arg() < s.inputs_size() ? s.inputs(c.arg()) : -1;
        if (id < 0 || id >= p.buffers_size() ||
            (p.buffers(id).dtype() != "i64" && p.buffers(id).dtype() != "i32")) {
          return InvalidArgument(what + ": its kernel checks argument " + std::to_string(c.arg()) +
                                 ", which is not an i64 or i32 input");
        }
      }
      const plan::FusionGroup& fg = p.fusion_groups(s.fusion_group() - 1);
      if (fg.kernel() != s.kernel().kernel()) {
        return InvalidArgument(what + ": its fusion group names another kernel");
      }
      for (const plan::Step& f : fg.fallback()) {
        if (!f.has_op()) return InvalidArgument(what + ": a fallback step that is not an op");
        for (int id : f.inputs()) RETURN_IF_ERROR(check_id(id, true, what + " (fallback)"));
        for (int id : f.outputs()) RETURN_IF_ERROR(check_id(id, true, what + " (fallback)"));
      }
    }
    for (int id : s.inputs()) RETURN_IF_ERROR(check_id(id, true, what));
    for (int id : s.outputs()) {
      RETURN_IF_ERROR(check_id(id, true, what));
      if (id >= 0 && p.buffers(id).kind() == plan::Buffer::CONSTANT) {
        return InvalidArgument(what + ": writes a constant buffer");
      }
    }
  }
  for (const auto& io : p.inputs()) {
    RETURN_IF_ERROR(check_id(io.buffer(), false, "plan input '" + io.name() + "'"));
    if (p.buffers(io.buffer()).kind() != plan::Buffer::ARENA) {
      return InvalidArgument("plan input '" + io.name() + "' is not an arena buffer");
    }
  }
  for (const auto& io : p.outputs())
    RETURN_IF_ERROR(check_id(io.buffer(), false, "plan output '" + io.name() + "'"));
  for (const auto& u : p.state_updates()) {
    RETURN_IF_ERROR(check_id(u.state(), false, "plan state update"));
    RETURN_IF_ERROR(check_id(u.from(), false, "plan state update"));
    const plan::Buffer& st = p.buffers(u.state());
    const plan::Buffer& from = p.buffers(u.from());
    if (st.kind() != plan::Buffer::STATE || st.dtype() != from.dtype() ||
        st.size_bytes() != from.size_bytes() ||
        !std::equal(st.dims().begin(), st.dims().end(), from.dims().begin(), from.dims().end())) {
      return InvalidArgument("plan state update of '" + st.name() + "' from '" + from.name() +
                             "': not a state buffer of the same type");
    }
  }
  for (const std::string& m : p.metrics()) {
    bool found = false;
    for (const auto& io : p.outputs()) found = found || io.name() == m;
    for (const auto& b : p.buffers())
      found = found || (b.kind() == plan::Buffer::STATE && b.name() == m);
    if (!found) return InvalidArgument("plan metric '" + m + "' is neither an output nor a state");
  }
  return VerifyTypes(plan);
}

// --- attributes -----------------------------------------------------------------------------

void AttributeToPlan(const std::string& name, const Attribute& a, plan::Attr* out) {
  out->set_name(name);
  switch (a.kind()) {
    case AttrKind::kInt:
      out->set_i(a.i());
      break;
    case AttrKind::kFloat:
      out->set_f(a.f());
      break;
    case AttrKind::kString:
      out->set_s(a.s());
      break;
    case AttrKind::kTensor:
      SetTensor(a.t(), out->mutable_t());
      break;
    case AttrKind::kInts:
      for (int64_t v : a.ints()) out->mutable_ints()->add_v(v);
      break;
    case AttrKind::kFloats:
      for (float v : a.floats()) out->mutable_floats()->add_v(v);
      break;
    case AttrKind::kStrings:
      for (const auto& v : a.strings()) out->mutable_strings()->add_v(v);
      break;
  }
}

StatusOr<Attribute> AttributeFromPlan(const plan::Attr& a) {
  switch (a.value_case()) {
    case plan::Attr::kI:
      return Attribute(static_cast<int64_t>(a.i()));
    case plan::Attr::kF:
      return Attribute(a.f());
    case plan::Attr::kS:
      return Attribute(a.s());
    case plan::Attr::kT: {
      ASSIGN_OR_RETURN(Tensor t, TensorFromPlan(a.t()));
      return Attribute(std::move(t));
    }
    case plan::Attr::kInts:
      return Attribute(std::vector<int64_t>(a.ints().v().begin(), a.ints().v().end()));
    case plan::Attr::kFloats:
      return Attribute(std::vector<float>(a.floats().v().begin(), a.floats().v().end()));
    case plan::Attr::kStrings:
      return Attribute(std::vector<std::string>(a.strings().v().begin(), a.strings().v().end()));
    case plan::Attr::VALUE_NOT_SET:
      break;
  }
  return InvalidArgument("attribute '" + a.name() + "' has no value");
}

int64_t KernelUnits(const plan::Kernel& k, int64_t range_output_elements) {
  if (k.launch().units() > 0) return k.launch().units();
  const int64_t row = std::max<int64_t>(1, k.launch().row_elements());
  return range_output_elements % row == 0 ? range_output_elements / row : -1;
}

}  // namespace ampc
