#include "runtime/cuda/step_plan.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <optional>
#include <set>

#include "codegen/plan.h"
#include "ir/dtype.h"
#include "ir/ops/infer_util.h"
#include "runtime/cuda/window_steps.h"

namespace ampc::cuda {

const plan::Attr* FindAttr(const plan::Step& s, const std::string& name) {
  for (const plan::Attr& a : s.op().attrs()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

namespace {

std::vector<int64_t> Dims(const plan::PlanProto& p, int id) {
  const auto& d = p.buffers(id).dims();
  return {d.begin(), d.end()};
}

std::vector<int64_t> Contiguous(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) s[i - 1] = s[i] * dims[i];
  return s;
}

int64_t Product(const std::vector<int64_t>& d, size_t from, size_t to) {
  int64_t n = 1;
  for (size_t i = from; i < to; ++i) n *= d[i];
  return n;
}

StatusOr<int> ElemBytes(const plan::PlanProto& p, int id) {
  auto t = DTypeFromName(p.buffers(id).dtype());
  if (!t) return InvalidArgument("buffer '" + p.buffers(id).name() + "': unknown dtype");
  return static_cast<int>(DTypeSize(*t));
}

int64_t IntAttr(const plan::Step& s, const std::string& name, int64_t dflt) {
  const plan::Attr* a = FindAttr(s, name);
  return a && a->value_case() == plan::Attr::kI ? a->i() : dflt;
}

StatusOr<int64_t> Axis(const plan::Step& s, int64_t rank, int64_t dflt) {
  int64_t axis = IntAttr(s, "axis", dflt);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= std::max<int64_t>(rank, 1)) {
    return InvalidArgument("axis " + std::to_string(IntAttr(s, "axis", dflt)) + " of a rank-" +
                           std::to_string(rank) + " tensor");
  }
  return axis;
}

// A copy over `dims` (at most kMaxCopyRank axes; a scalar as one element).
StatusOr<StridedCopy> MakeCopy(int input, int output, int elem_bytes,
                               const std::vector<int64_t>& dims,
                               const std::vector<int64_t>& in_strides, int64_t in_offset,
                               const std::vector<int64_t>& out_strides, int64_t out_offset) {
  if (dims.size() > static_cast<size_t>(kMaxCopyRank)) {
    return Unimplemented("a copy of rank " + std::to_string(dims.size()) + " (at most " +
                         std::to_string(kMaxCopyRank) + ")");
  }
  StridedCopy c;
  c.input = input;
  c.output = output;
  c.elem_bytes = elem_bytes;
  c.in_offset = in_offset;
  c.out_offset = out_offset;
  c.rank = std::max<int>(1, static_cast<int>(dims.size()));
  c.dims[0] = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    c.dims[i] = dims[i];
    c.in_strides[i] = in_strides[i];
    c.out_strides[i] = out_strides[i];
  }
  return c;
}

const std::set<std::string>& AliasOps() {
  static const std::set<std::string> ops = {"Reshape", "Flatten", "Squeeze", "Unsqueeze",
                                            "Identity"};
  return ops;
}

const std::set<std::string>& CopyOps() {
  static const std::set<std::string> ops = {"Transpose", "Split", "Concat", "Expand", "Slice"};
  return ops;
}

const std::set<std::string>& PoolOps() {
  static const std::set<std::string> ops = {"MaxPool", "AveragePool", "GlobalAveragePool"};
  return ops;
}

// Ops whose result is not a function of their inputs: never computed once on the host.
const std::set<std::string>& RandomOps() {
  static const std::set<std::string> ops = {"RandomNormal",     "RandomUniform",     "Bernoulli",
                                            "RandomNormalLike", "RandomUniformLike", "Multinomial",
                                            "Dropout"};
  return ops;
}

}  // namespace

const char* StepKindName(StepKind k) {
  switch (k) {
    case StepKind::kHost:
      return "host";
    case StepKind::kAlias:
      return "alias";
    case StepKind::kGemm:
      return "gemm";
    case StepKind::kKernel:
      return "kernel";
    case StepKind::kStridedCopy:
      return "strided-copy";
    case StepKind::kGather:
      return "gather";
    case StepKind::kConv:
      return "conv";
    case StepKind::kPool:
      return "pool";
    case StepKind::kPad:
      return "pad";
    case StepKind::kClip:
      return "clip";
    case StepKind::kFolded:
      return "folded";
  }
  return "?";
}

StatusOr<std::vector<StepKind>> ClassifySteps(const plan::PlanProto& p) {
  std::vector<bool> host_value(static_cast<size_t>(p.buffers_size()), false);
  for (int i = 0; i < p.buffers_size(); ++i) {
    host_value[static_cast<size_t>(i)] = p.buffers(i).kind() == plan::Buffer::CONSTANT;
  }
  std::vector<StepKind> kinds;
  for (int i = 0; i < p.steps_size(); ++i) {
    const plan::Step& s = p.steps(i);
    if (s.has_kernel()) {
      kinds.push_back(StepKind::kKernel);
      continue;
    }
    const std::string& op = s.op().op();
    const bool std_domain = s.op().domain().empty();
    const bool ampc_domain = s.op().domain() == "com.ampc";
    auto what = [&] { return "plan " + DescribeStep(p, i); };
    // Inputs 1... of a step whose index operands the CUDA runtime reads on the host.
    auto inputs_on_host = [&](const char* operands) -> Status {
      for (int k = 1; k < s.inputs_size(); ++k) {
        const int id = s.inputs(k);
        if (id >= 0 && !host_value[static_cast<size_t>(id)]) {
          return Unimplemented(what() + ": " + op + " input " + std::to_string(k) +
                               " is computed on the device (the CUDA runtime reads " + operands +
                               " on the host)");
        }
      }
      return Status::Ok();
    };
    bool host = std_domain && (op == "Shape" || op == "Size");
    if (!host && !RandomOps().count(op)) {
      host = true;
      for (int id : s.inputs()) host = host && (id < 0 || host_value[static_cast<size_t>(id)]);
    }
    for (int id : s.outputs()) {
      if (id >= 0 && p.buffers(id).kind() != plan::Buffer::ARENA) host = false;
    }
    if (host) {
      for (int id : s.outputs()) {
        if (id >= 0) host_value[static_cast<size_t>(id)] = true;
      }
      kinds.push_back(StepKind::kHost);
    } else if (std_domain && AliasOps().count(op)) {
      kinds.push_back(StepKind::kAlias);
    } else if ((op == "MatMul" && (std_domain || s.op().domain() == "com.ampc")) ||
               (op == "Gemm" && std_domain)) {
      kinds.push_back(StepKind::kGemm);
    } else if (std_domain && CopyOps().count(op)) {
      if (op == "Slice") RETURN_IF_ERROR(inputs_on_host("starts, ends, axes and steps"));
      kinds.push_back(StepKind::kStridedCopy);
    } else if (std_domain && op == "Gather") {
      kinds.push_back(StepKind::kGather);
    } else if ((std_domain && op == "Conv") || (ampc_domain && op == "ConvGrad")) {
      if (auto c = DescribeConv(p, s); !c.ok()) return c.status().WithContext(what());
      kinds.push_back(StepKind::kConv);
    } else if ((std_domain && PoolOps().count(op)) ||
               (ampc_domain && (op == "MaxPoolGrad" || op == "AveragePoolGrad"))) {
      if (auto c = DescribePool(p, s); !c.ok()) return c.status().WithContext(what());
      kinds.push_back(StepKind::kPool);
    } else if (std_domain && op == "Pad") {
      RETURN_IF_ERROR(inputs_on_host("pads, the constant value and axes"));
      kinds.push_back(StepKind::kPad);
    } else if (std_domain && op == "Clip") {
      if (FindAttr(s, "min") || FindAttr(s, "max")) {
        return Unimplemented(what() + ": Clip with min / max attributes (opset < 11)");
      }
      const plan::Buffer& x = p.buffers(s.inputs(0));
      auto t = FloatTypeOf(DTypeFromName(x.dtype()).value_or(DType::kUndefined));
      if (!t.ok()) return t.status().WithContext(what());
      for (int k = 1; k < s.inputs_size(); ++k) {
        const int id = s.inputs(k);
        if (id >= 0 && (p.buffers(id).dtype() != x.dtype() ||
                        p.buffers(id).size_bytes() != FloatTypeBytes(*t))) {
          return Unimplemented(what() + ": Clip bound " + std::to_string(k) +
                               " is not a scalar of the input's dtype");
        }
      }
      kinds.push_back(StepKind::kClip);
    } else {
      return Unimplemented("plan " + DescribeStep(p, i) + ": the CUDA runtime has no kernel for " +
                           (std_domain ? op : s.op().domain() + "::" + op));
    }
  }
  return kinds;
}

StatusOr<std::vector<int64_t>> HostInts(const plan::PlanProto& p, int id,
                                        const HostValueFn& host_value, const std::string& what) {
  const uint8_t* v = host_value ? host_value(id) : nullptr;
  if (!v) return Unimplemented(what + " is not known before the step runs");
  const plan::Buffer& b = p.buffers(id);
  if (b.dtype() != "i64" && b.dtype() != "i32") {
    return InvalidArgument(what + " is " + b.dtype() + ", not i64 or i32");
  }
  const int64_t n = Product(Dims(p, id), 0, static_cast<size_t>(b.dims_size()));
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (b.dtype() == "i64") {
      std::memcpy(&out[static_cast<size_t>(i)], v + 8 * i, 8);
    } else {
      int32_t w;
      std::memcpy(&w, v + 4 * i, 4);
      out[static_cast<size_t>(i)] = w;
    }
  }
  return out;
}

namespace {

// Slice as one strided copy: per sliced axis the first element (infer::SliceRange, the CPU
// kernel's) and the stride times the step (negative steps walk backwards).
StatusOr<StridedCopy> DescribeSlice(const plan::PlanProto& p, const plan::Step& s, int bytes,
                                    const HostValueFn& host_value) {
  const std::vector<int64_t> in0 = Dims(p, s.inputs(0)), od = Dims(p, s.outputs(0));
  const int64_t rank = static_cast<int64_t>(in0.size());
  // Input k's ints, nullopt where the step omits it.
  auto ints = [&](int k, const char* what) -> StatusOr<std::optional<std::vector<int64_t>>> {
    if (k >= s.inputs_size() || s.inputs(k) < 0) return std::optional<std::vector<int64_t>>();
    ASSIGN_OR_RETURN(std::vector<int64_t> v, HostInts(p, s.inputs(k), host_value, what));
    return std::optional<std::vector<int64_t>>(std::move(v));
  };
  ASSIGN_OR_RETURN(auto starts, ints(1, "Slice's starts"));
  ASSIGN_OR_RETURN(auto ends, ints(2, "Slice's ends"));
  ASSIGN_OR_RETURN(auto axes, ints(3, "Slice's axes"));
  ASSIGN_OR_RETURN(auto steps, ints(4, "Slice's steps"));
  if (!starts || !ends) return InvalidArgument("Slice: no starts or ends");
  const size_t n = starts->size();
  if (!axes) {
    axes.emplace();
    for (size_t i = 0; i < n; ++i) axes->push_back(static_cast<int64_t>(i));
  }
  if (!steps) steps.emplace(n, 1);
  if (ends->size() != n || axes->size() != n || steps->size() != n) {
    return InvalidArgument("Slice: starts, ends, axes and steps have different lengths");
  }
  const std::vector<int64_t> sin = Contiguous(in0);
  std::vector<int64_t> dims = in0, strides = sin;
  int64_t offset = 0;
  for (size_t i = 0; i < n; ++i) {
    int64_t a = (*axes)[i];
    if (a < 0) a += rank;
    const int64_t step = (*steps)[i];
    if (a < 0 || a >= rank || step == 0) return InvalidArgument("Slice: bad axis or step");
    const size_t u = static_cast<size_t>(a);
    int64_t first = 0, count = 0;
    infer::SliceRange(in0[u], (*starts)[i], (*ends)[i], step, &first, &count);
    dims[u] = count;
    strides[u] = sin[u] * step;
    offset += first * sin[u];
  }
  if (dims != od) return InvalidArgument("Slice: the output's shape differs from the slice's");
  return MakeCopy(0, 0, bytes, od, strides, offset, Contiguous(od), 0);
}

}  // namespace

StatusOr<std::vector<StridedCopy>> DescribeStridedCopies(const plan::PlanProto& p,
                                                         const plan::Step& s,
                                                         const HostValueFn& host_value) {
  const std::string& op = s.op().op();
  std::vector<StridedCopy> out;
  if (s.inputs_size() < 1 || s.inputs(0) < 0) return InvalidArgument(op + ": no input");
  const std::vector<int64_t> in0 = Dims(p, s.inputs(0));
  const int64_t rank = static_cast<int64_t>(in0.size());
  ASSIGN_OR_RETURN(const int bytes, ElemBytes(p, s.inputs(0)));
  if (op == "Transpose") {
    std::vector<int64_t> perm(in0.size());
    if (const plan::Attr* a = FindAttr(s, "perm"); a && a->value_case() == plan::Attr::kInts) {
      perm.assign(a->ints().v().begin(), a->ints().v().end());
    } else {
      for (int64_t i = 0; i < rank; ++i) perm[static_cast<size_t>(i)] = rank - 1 - i;
    }
    if (static_cast<int64_t>(perm.size()) != rank) return InvalidArgument("Transpose: bad perm");
    const std::vector<int64_t> sin = Contiguous(in0), od = Dims(p, s.outputs(0));
    std::vector<int64_t> strides;
    for (int64_t v : perm) {
      if (v < 0 || v >= rank) return InvalidArgument("Transpose: bad perm");
      strides.push_back(sin[static_cast<size_t>(v)]);
    }
    ASSIGN_OR_RETURN(StridedCopy c, MakeCopy(0, 0, bytes, od, strides, 0, Contiguous(od), 0));
    out.push_back(c);
  } else if (op == "Split") {
    ASSIGN_OR_RETURN(const int64_t axis, Axis(s, rank, 0));
    const std::vector<int64_t> sin = Contiguous(in0);
    int64_t start = 0;
    for (int k = 0; k < s.outputs_size(); ++k) {
      if (s.outputs(k) < 0) return InvalidArgument("Split: an omitted output");
      const std::vector<int64_t> od = Dims(p, s.outputs(k));
      ASSIGN_OR_RETURN(StridedCopy c,
                       MakeCopy(0, k, bytes, od, sin, start * sin[static_cast<size_t>(axis)],
                                Contiguous(od), 0));
      start += od[static_cast<size_t>(axis)];
      if (c.elements() > 0) out.push_back(c);
    }
    if (start != in0[static_cast<size_t>(axis)]) return InvalidArgument("Split: sizes differ");
  } else if (op == "Concat") {
    const std::vector<int64_t> od = Dims(p, s.outputs(0));
    ASSIGN_OR_RETURN(const int64_t axis, Axis(s, static_cast<int64_t>(od.size()), 0));
    const std::vector<int64_t> sout = Contiguous(od);
    int64_t start = 0;
    for (int k = 0; k < s.inputs_size(); ++k) {
      const std::vector<int64_t> id = Dims(p, s.inputs(k));
      ASSIGN_OR_RETURN(StridedCopy c, MakeCopy(k, 0, bytes, id, Contiguous(id), 0, sout,
                                               start * sout[static_cast<size_t>(axis)]));
      start += id[static_cast<size_t>(axis)];
      if (c.elements() > 0) out.push_back(c);
    }
    if (start != od[static_cast<size_t>(axis)]) return InvalidArgument("Concat: sizes differ");
  } else if (op == "Slice") {
    ASSIGN_OR_RETURN(StridedCopy c, DescribeSlice(p, s, bytes, host_value));
    if (c.elements() > 0) out.push_back(c);
  } else if (op == "Expand") {
    const std::vector<int64_t> od = Dims(p, s.outputs(0));
    if (in0.size() > od.size()) return InvalidArgument("Expand: input of higher rank");
    const std::vector<int64_t> sin = Contiguous(in0);
    std::vector<int64_t> strides(od.size(), 0);
    const size_t pad = od.size() - in0.size();
    for (size_t i = 0; i < in0.size(); ++i) {
      if (in0[i] != 1 && in0[i] != od[i + pad]) return InvalidArgument("Expand: bad shape");
      strides[i + pad] = in0[i] == 1 ? 0 : sin[i];
    }
    ASSIGN_OR_RETURN(StridedCopy c, MakeCopy(0, 0, bytes, od, strides, 0, Contiguous(od), 0));
    out.push_back(c);
  } else {
    return InvalidArgument(op + " is not a strided copy");
  }
  return out;
}

StatusOr<GatherDesc> DescribeGather(const plan::PlanProto& p, const plan::Step& s) {
  if (s.inputs_size() != 2 || s.inputs(0) < 0 || s.inputs(1) < 0) {
    return InvalidArgument("Gather: expected data and indices");
  }
  const std::vector<int64_t> d = Dims(p, s.inputs(0)), idx = Dims(p, s.inputs(1));
  ASSIGN_OR_RETURN(const int64_t axis, Axis(s, static_cast<int64_t>(d.size()), 0));
  GatherDesc g;
  g.outer = Product(d, 0, static_cast<size_t>(axis));
  g.axis_dim = d[static_cast<size_t>(axis)];
  g.inner = Product(d, static_cast<size_t>(axis) + 1, d.size());
  g.indices = Product(idx, 0, idx.size());
  ASSIGN_OR_RETURN(g.elem_bytes, ElemBytes(p, s.inputs(0)));
  const std::string& it = p.buffers(s.inputs(1)).dtype();
  if (it != "i64" && it != "i32") return InvalidArgument("Gather: indices of type " + it);
  g.index_bytes = it == "i64" ? 8 : 4;
  if (Product(Dims(p, s.outputs(0)), 0, Dims(p, s.outputs(0)).size()) !=
      g.outer * g.indices * g.inner) {
    return InvalidArgument("Gather: the output does not hold outer x indices x inner elements");
  }
  return g;
}

StatusOr<int64_t> KernelArenaBytes(const plan::PlanProto& p) {
  const int64_t bytes = p.arena_kernel_bytes() > 0 ? p.arena_kernel_bytes() : p.arena_bytes();
  if (bytes > p.arena_bytes()) {
    return InvalidArgument("plan: arena_kernel_bytes " + std::to_string(bytes) +
                           " exceeds the arena's " + std::to_string(p.arena_bytes()));
  }
  auto check = [&](int id, const std::string& where) -> Status {
    if (id < 0 || id >= p.buffers_size()) return Status::Ok();  // VerifyPlan's to report
    const plan::Buffer& b = p.buffers(id);
    if (b.kind() != plan::Buffer::ARENA || b.offset() + b.size_bytes() <= bytes)
      return Status::Ok();
    return InvalidArgument(where + ": buffer '" + b.name() + "' lies in the fallback region of " +
                           "the arena (above byte " + std::to_string(bytes) + ")");
  };
  for (int i = 0; i < p.steps_size(); ++i) {
    for (int id : p.steps(i).inputs()) RETURN_IF_ERROR(check(id, DescribeStep(p, i)));
    for (int id : p.steps(i).outputs()) RETURN_IF_ERROR(check(id, DescribeStep(p, i)));
  }
  for (const auto& io : p.inputs()) RETURN_IF_ERROR(check(io.buffer(), "plan input"));
  for (const auto& io : p.outputs()) RETURN_IF_ERROR(check(io.buffer(), "plan output"));
  for (const auto& u : p.state_updates()) RETURN_IF_ERROR(check(u.from(), "plan state update"));
  return bytes;
}

StatusOr<int64_t> ScratchBytes(const plan::PlanProto& p, const std::vector<StepKind>& kinds) {
  int64_t bytes = 0;
  for (int i = 0; i < p.steps_size() && static_cast<size_t>(i) < kinds.size(); ++i) {
    if (kinds[static_cast<size_t>(i)] != StepKind::kConv) continue;
    auto c = DescribeConv(p, p.steps(i));
    if (!c.ok()) return c.status().WithContext("plan " + DescribeStep(p, i));
    bytes = std::max(bytes, c->scratch_bytes);
  }
  return bytes;
}

StatusOr<GemmDesc> DescribeGemmStep(const plan::PlanProto& p, const plan::Step& s) {
  AttributeMap attrs;
  for (const plan::Attr& a : s.op().attrs()) {
    ASSIGN_OR_RETURN(attrs[a.name()], AttributeFromPlan(a));
  }
  auto operand = [&](int id) {
    const plan::Buffer& b = p.buffers(id);
    return GemmOperand{DTypeFromName(b.dtype()).value_or(DType::kUndefined), Dims(p, id)};
  };
  std::vector<GemmOperand> in;
  for (int id : s.inputs()) {
    if (id >= 0) in.push_back(operand(id));
  }
  return DescribeGemm(s.op().domain(), s.op().op(), attrs, in, operand(s.outputs(0)));
}

}  // namespace ampc::cuda
