// CPU kernels for the ops that build, move or reinterpret tensors without arithmetic (Shape Size
// Constant ConstantOfShape Range Reshape Flatten Squeeze Unsqueeze Identity Gather GatherElements
// Split Concat). The strided movers (Transpose Slice Expand Tile Pad) are in
// kernels_shape_move.cc. Data movers work on element size (1/2/4/8 bytes), so they serve every
// dtype, f16/bf16/bool included: output bytes are input bytes.
//
// Output shapes come precomputed from the Plan; each kernel recomputes the shape its inputs imply
// and returns InvalidArgument on a mismatch (the data of shape inputs is only known at run time).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/cpu/convert.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/kernels_shape_util.h"
#include "runtime/cpu/thread_pool.h"

namespace ampc::cpu {
namespace shape_util {

int64_t Product(const std::vector<int64_t>& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < dims.size(); ++i) p *= dims[i];
  return p;
}

std::vector<int64_t> RowMajorStrides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t a = dims.size(); a-- > 1;) s[a - 1] = s[a] * dims[a];
  return s;
}

Status InputAt(const KernelContext& ctx, int i, const TensorView** t) {
  *t = ctx.in(i);
  if (!*t) return InvalidArgument(ctx.op + " input " + std::to_string(i) + " is missing");
  return Status::Ok();
}

Status CheckOutput(const KernelContext& ctx, int i, DType dt, const std::vector<int64_t>& dims) {
  const TensorView* o = ctx.out(i);
  if (!o) return InvalidArgument(ctx.op + " output " + std::to_string(i) + " is missing");
  if (o->dtype != dt) {
    return InvalidArgument(ctx.op + " output " + std::to_string(i) + " has type " +
                           std::string(DTypeName(o->dtype)) + ", expected " +
                           std::string(DTypeName(dt)));
  }
  if (o->dims != dims) {
    return InvalidArgument(ctx.op + " computes output " + std::to_string(i) + " shape " +
                           DimsToString(dims) + " but the planned shape is " +
                           DimsToString(o->dims));
  }
  return Status::Ok();
}

StatusOr<std::vector<int64_t>> ReadInts(const KernelContext& ctx, int i, const char* what) {
  const TensorView* t = ctx.in(i);
  if (!t) return InvalidArgument(ctx.op + " " + what + " input is missing");
  if (t->dtype != DType::kInt64 && t->dtype != DType::kInt32) {
    return InvalidArgument(ctx.op + " " + what + " must be i32 or i64, got " +
                           std::string(DTypeName(t->dtype)));
  }
  std::vector<int64_t> v(static_cast<size_t>(t->NumElements()));
  for (size_t k = 0; k < v.size(); ++k) v[k] = Load<int64_t>(*t, static_cast<int64_t>(k));
  return v;
}

StatusOr<int64_t> NormAxis(const KernelContext& ctx, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) {
    return InvalidArgument(ctx.op + " axis " + std::to_string(axis) + " is out of range for rank " +
                           std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

StatusOr<std::vector<int64_t>> NormAxes(const KernelContext& ctx, const std::vector<int64_t>& axes,
                                        int64_t rank) {
  std::vector<int64_t> out;
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(rank, 0)), false);
  for (int64_t a : axes) {
    ASSIGN_OR_RETURN(int64_t n, NormAxis(ctx, a, rank));
    if (seen[n]) return InvalidArgument(ctx.op + " axis " + std::to_string(a) + " is repeated");
    seen[n] = true;
    out.push_back(n);
  }
  return out;
}

void CopyBytes(void* dst, const void* src, int64_t n, ThreadPool* pool) {
  if (dst == src || n <= 0) return;
  constexpr int64_t kBlock = int64_t{1} << 20;
  if (!pool || n < 4 * kBlock) {
    std::memcpy(dst, src, static_cast<size_t>(n));
    return;
  }
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  ParallelFor(pool, blocks, 1, [&](int64_t b, int64_t e) {
    const int64_t lo = b * kBlock, hi = std::min(n, e * kBlock);
    std::memcpy(static_cast<char*>(dst) + lo, static_cast<const char*>(src) + lo,
                static_cast<size_t>(hi - lo));
  });
}

}  // namespace shape_util

namespace {

using namespace shape_util;  // NOLINT

// ---- shapes and constants --------------------------------------------------------------------

Status ShapeKernel(KernelContext& ctx) {
  const TensorView* x;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  const int64_t r = x->rank();
  auto clampi = [r](int64_t v) { return std::clamp(v < 0 ? v + r : v, int64_t{0}, r); };
  const int64_t s = clampi(ctx.attr_int("start", 0)), e = clampi(ctx.attr_int("end", r));
  const int64_t n = std::max<int64_t>(0, e - s);
  RETURN_IF_ERROR(CheckOutput(ctx, 0, DType::kInt64, {n}));
  int64_t* out = ctx.out(0)->as<int64_t>();
  for (int64_t i = 0; i < n; ++i) out[i] = x->dims[s + i];
  return Status::Ok();
}

Status SizeKernel(KernelContext& ctx) {
  const TensorView* x;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  RETURN_IF_ERROR(CheckOutput(ctx, 0, DType::kInt64, {}));
  ctx.out(0)->as<int64_t>()[0] = x->NumElements();
  return Status::Ok();
}

Status ConstantKernel(KernelContext& ctx) {
  if (!ctx.attrs || ctx.attrs->size() != 1) {
    return InvalidArgument("Constant needs exactly one value attribute");
  }
  const auto& [key, a] = *ctx.attrs->begin();
  if (key == "value" && a.kind() == AttrKind::kTensor) {
    const Tensor& t = a.t();
    if (t.elided()) return InvalidArgument("Constant value data was elided");
    RETURN_IF_ERROR(CheckOutput(ctx, 0, t.dtype(), t.dims()));
    const int64_t bytes = t.NumElements() * DTypeSize(t.dtype());
    if (static_cast<int64_t>(t.bytes().size()) != bytes) {
      return InvalidArgument("Constant value has " + std::to_string(t.bytes().size()) +
                             " bytes, expected " + std::to_string(bytes));
    }
    CopyBytes(ctx.out(0)->data, t.bytes().data(), bytes, ctx.pool);
    return Status::Ok();
  }
  if (key == "value_float" && a.kind() == AttrKind::kFloat) {
    RETURN_IF_ERROR(CheckOutput(ctx, 0, DType::kFloat32, {}));
    ctx.out(0)->as<float>()[0] = a.f();
    return Status::Ok();
  }
  if (key == "value_floats" && a.kind() == AttrKind::kFloats) {
    const auto& v = a.floats();
    RETURN_IF_ERROR(CheckOutput(ctx, 0, DType::kFloat32, {static_cast<int64_t>(v.size())}));
    if (!v.empty()) std::memcpy(ctx.out(0)->data, v.data(), v.size() * sizeof(float));
    return Status::Ok();
  }
  if (key == "value_int" && a.kind() == AttrKind::kInt) {
    RETURN_IF_ERROR(CheckOutput(ctx, 0, DType::kInt64, {}));
    ctx.out(0)->as<int64_t>()[0] = a.i();
    return Status::Ok();
  }
  if (key == "value_ints" && a.kind() == AttrKind::kInts) {
    const auto& v = a.ints();
    RETURN_IF_ERROR(CheckOutput(ctx, 0, DType::kInt64, {static_cast<int64_t>(v.size())}));
    if (!v.empty()) std::memcpy(ctx.out(0)->data, v.data(), v.size() * sizeof(int64_t));
    return Status::Ok();
  }
  return Unimplemented("Constant attribute '" + key + "' of kind " + AttrKindName(a.kind()) +
                       " is not supported");
}

Status ConstantOfShapeKernel(KernelContext& ctx) {
  ASSIGN_OR_RETURN(std::vector<int64_t> shape, ReadInts(ctx, 0, "shape"));
  for (int64_t d : shape) {
    if (d < 0)
      return InvalidArgument("ConstantOfShape shape " + DimsToString(shape) + " is negative");
  }
  DType dt = DType::kFloat32;
  uint64_t value = 0;  // the fill element's bytes (little-endian, low bytes used)
  if (const Attribute* a = ctx.attr("value")) {
    if (a->kind() != AttrKind::kTensor || a->t().NumElements() != 1 ||
        static_cast<int>(a->t().bytes().size()) != DTypeSize(a->t().dtype())) {
      return InvalidArgument("ConstantOfShape 'value' must be a one-element tensor with data");
    }
    dt = a->t().dtype();
    std::memcpy(&value, a->t().bytes().data(), a->t().bytes().size());
  }
  RETURN_IF_ERROR(CheckOutput(ctx, 0, dt, shape));
  TensorView& out = *ctx.out(0);
  const int64_t n = out.NumElements();
  BySize(DTypeSize(dt), [&](auto tag) {
    using T = decltype(tag);
    T v;
    std::memcpy(&v, &value, sizeof(T));
    T* p = out.as<T>();
    ParallelFor(ctx.pool, n, int64_t{1} << 16,
                [&](int64_t b, int64_t e) { std::fill(p + b, p + e, v); });
  });
  return Status::Ok();
}

Status RangeKernel(KernelContext& ctx) {
  const TensorView *s, *l, *d;
  RETURN_IF_ERROR(InputAt(ctx, 0, &s));
  RETURN_IF_ERROR(InputAt(ctx, 1, &l));
  RETURN_IF_ERROR(InputAt(ctx, 2, &d));
  for (const TensorView* t : {s, l, d}) {
    if (t->NumElements() != 1 || t->dtype != s->dtype) {
      return InvalidArgument("Range inputs must be one-element tensors of one type");
    }
  }
  TensorView& out = *ctx.out(0);
  int64_t n = 0;
  if (IsFloat(s->dtype)) {
    const double start = Load<double>(*s, 0), limit = Load<double>(*l, 0),
                 delta = Load<double>(*d, 0);
    if (delta == 0 || !std::isfinite(start) || !std::isfinite(limit) || !std::isfinite(delta)) {
      return InvalidArgument("Range needs finite inputs and a non-zero delta");
    }
    const double count = std::ceil((limit - start) / delta);
    if (count > static_cast<double>(int64_t{1} << 40)) {
      return InvalidArgument("Range has too many elements");
    }
    n = count > 0 ? static_cast<int64_t>(count) : 0;
    RETURN_IF_ERROR(CheckOutput(ctx, 0, s->dtype, {n}));
    for (int64_t i = 0; i < n; ++i) Store<double>(out, i, start + static_cast<double>(i) * delta);
    return Status::Ok();
  }
  const int64_t start = Load<int64_t>(*s, 0), limit = Load<int64_t>(*l, 0),
                delta = Load<int64_t>(*d, 0);
  if (delta == 0) return InvalidArgument("Range delta is 0");
  int64_t diff;
  if (__builtin_sub_overflow(limit, start, &diff)) return InvalidArgument("Range length overflows");
  if ((diff > 0 && delta > 0) || (diff < 0 && delta < 0)) {
    n = delta > 0 ? (diff - 1) / delta + 1 : (diff + 1) / delta + 1;
  }
  RETURN_IF_ERROR(CheckOutput(ctx, 0, s->dtype, {n}));
  for (int64_t i = 0; i < n; ++i) Store<int64_t>(out, i, start + i * delta);
  return Status::Ok();
}

// ---- reinterpreting copies -------------------------------------------------------------------

// Output holds the input's elements unchanged (Identity, Flatten, Squeeze, Unsqueeze): checks the
// element count and dtype, then copies the bytes.
Status SameBytes(KernelContext& ctx, const std::vector<int64_t>* want_dims) {
  const TensorView* x;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  TensorView* out = ctx.out(0);
  if (!out) return InvalidArgument(ctx.op + " output 0 is missing");
  if (want_dims) RETURN_IF_ERROR(CheckOutput(ctx, 0, x->dtype, *want_dims));
  if (out->dtype != x->dtype || out->NumElements() != x->NumElements()) {
    return InvalidArgument(ctx.op + " output " + std::string(DTypeName(out->dtype)) +
                           DimsToString(out->dims) + " does not hold the input " +
                           std::string(DTypeName(x->dtype)) + DimsToString(x->dims));
  }
  CopyBytes(out->data, x->data, x->NumElements() * DTypeSize(x->dtype), ctx.pool);
  return Status::Ok();
}

Status IdentityKernel(KernelContext& ctx) {
  const TensorView* x;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  return SameBytes(ctx, &x->dims);
}

Status ReshapeKernel(KernelContext& ctx) {
  const TensorView* x;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  ASSIGN_OR_RETURN(std::vector<int64_t> shape, ReadInts(ctx, 1, "shape"));
  const bool allowzero = ctx.attr_int("allowzero", 0) != 0;
  int neg = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0 && !allowzero) {
      if (static_cast<int64_t>(i) >= x->rank()) {
        return InvalidArgument("Reshape shape entry " + std::to_string(i) +
                               " is 0 (copy) but the input has rank " + std::to_string(x->rank()));
      }
      shape[i] = x->dims[i];
    } else if (shape[i] == -1) {
      if (neg >= 0) return InvalidArgument("Reshape shape " + DimsToString(shape) + " has two -1");
      neg = static_cast<int>(i);
      continue;
    } else if (shape[i] < 0) {
      return InvalidArgument("Reshape shape " + DimsToString(shape) + " has a negative entry");
    }
    known *= shape[i];
  }
  const int64_t n = x->NumElements();
  if (neg >= 0) {
    if (known == 0 || n % known != 0) {
      return InvalidArgument("Reshape cannot reshape " + DimsToString(x->dims) + " into " +
                             DimsToString(shape));
    }
    shape[neg] = n / known;
  } else if (known != n) {
    return InvalidArgument("Reshape cannot reshape " + DimsToString(x->dims) + " into " +
                           DimsToString(shape));
  }
  return SameBytes(ctx, &shape);
}

Status FlattenKernel(KernelContext& ctx) {
  const TensorView* x;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  int64_t axis = ctx.attr_int("axis", 1);
  if (axis < -x->rank() || axis > x->rank()) {
    return InvalidArgument("Flatten axis " + std::to_string(axis) + " is out of range for rank " +
                           std::to_string(x->rank()));
  }
  if (axis < 0) axis += x->rank();
  const std::vector<int64_t> dims = {Product(x->dims, 0, axis),
                                     Product(x->dims, axis, x->dims.size())};
  return SameBytes(ctx, &dims);
}

Status SqueezeKernel(KernelContext& ctx) {
  const TensorView* x;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  std::vector<bool> drop(x->dims.size(), false);
  if (ctx.in(1)) {
    ASSIGN_OR_RETURN(std::vector<int64_t> axes, ReadInts(ctx, 1, "axes"));
    ASSIGN_OR_RETURN(axes, NormAxes(ctx, axes, x->rank()));
    for (int64_t a : axes) {
      if (x->dims[a] != 1) {
        return InvalidArgument("Squeeze cannot squeeze axis " + std::to_string(a) + " of size " +
                               std::to_string(x->dims[a]));
      }
      drop[a] = true;
    }
  } else {
    for (size_t a = 0; a < drop.size(); ++a) drop[a] = x->dims[a] == 1;
  }
  std::vector<int64_t> dims;
  for (size_t a = 0; a < drop.size(); ++a) {
    if (!drop[a]) dims.push_back(x->dims[a]);
  }
  return SameBytes(ctx, &dims);
}

Status UnsqueezeKernel(KernelContext& ctx) {
  const TensorView* x;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  ASSIGN_OR_RETURN(std::vector<int64_t> axes, ReadInts(ctx, 1, "axes"));
  const int64_t r = x->rank() + static_cast<int64_t>(axes.size());
  ASSIGN_OR_RETURN(axes, NormAxes(ctx, axes, r));
  std::vector<bool> ones(r, false);
  for (int64_t a : axes) ones[a] = true;
  std::vector<int64_t> dims;
  size_t j = 0;
  for (int64_t a = 0; a < r; ++a) dims.push_back(ones[a] ? 1 : x->dims[j++]);
  return SameBytes(ctx, &dims);
}

// ---- gathers ---------------------------------------------------------------------------------

// Reads indices and maps them into [0, n); an index outside [-n, n) is an error naming it.
StatusOr<std::vector<int64_t>> ReadIndices(const KernelContext& ctx, int i, int64_t n,
                                           int64_t axis) {
  ASSIGN_OR_RETURN(std::vector<int64_t> idx, ReadInts(ctx, i, "indices"));
  for (int64_t& v : idx) {
    if (v < -n || v >= n) {
      return InvalidArgument(ctx.op + " index " + std::to_string(v) + " is out of range [" +
                             std::to_string(-n) + ", " + std::to_string(n) + ") for axis " +
                             std::to_string(axis) + " of size " + std::to_string(n));
    }
    if (v < 0) v += n;
  }
  return idx;
}

Status GatherKernel(KernelContext& ctx) {
  const TensorView *x, *ind;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  RETURN_IF_ERROR(InputAt(ctx, 1, &ind));
  if (x->rank() == 0) return InvalidArgument("Gather needs data of rank >= 1");
  ASSIGN_OR_RETURN(const int64_t axis, NormAxis(ctx, ctx.attr_int("axis", 0), x->rank()));
  const int64_t n = x->dims[axis];
  ASSIGN_OR_RETURN(const std::vector<int64_t> idx, ReadIndices(ctx, 1, n, axis));
  std::vector<int64_t> dims(x->dims.begin(), x->dims.begin() + axis);
  dims.insert(dims.end(), ind->dims.begin(), ind->dims.end());
  dims.insert(dims.end(), x->dims.begin() + axis + 1, x->dims.end());
  RETURN_IF_ERROR(CheckOutput(ctx, 0, x->dtype, dims));
  const int64_t outer = Product(x->dims, 0, axis), inner = Product(x->dims, axis + 1, x->rank());
  const int64_t k = static_cast<int64_t>(idx.size()), es = DTypeSize(x->dtype);
  const int64_t row = inner * es;
  const char* src = static_cast<const char*>(x->data);
  char* dst = static_cast<char*>(ctx.out(0)->data);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(row, 1));
  ParallelFor(ctx.pool, outer * k, grain, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / k, j = t % k;
      std::memcpy(dst + t * row, src + (o * n + idx[j]) * row, static_cast<size_t>(row));
    }
  });
  return Status::Ok();
}

Status GatherElementsKernel(KernelContext& ctx) {
  const TensorView *x, *ind;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  RETURN_IF_ERROR(InputAt(ctx, 1, &ind));
  const int64_t r = x->rank();
  if (r == 0 || ind->rank() != r) {
    return InvalidArgument("GatherElements needs indices of the data's rank (>= 1), got " +
                           DimsToString(ind->dims) + " for data " + DimsToString(x->dims));
  }
  ASSIGN_OR_RETURN(const int64_t axis, NormAxis(ctx, ctx.attr_int("axis", 0), r));
  for (int64_t a = 0; a < r; ++a) {
    if (a != axis && ind->dims[a] > x->dims[a]) {
      return InvalidArgument("GatherElements indices " + DimsToString(ind->dims) +
                             " exceed the data shape " + DimsToString(x->dims) + " on axis " +
                             std::to_string(a));
    }
  }
  ASSIGN_OR_RETURN(const std::vector<int64_t> idx, ReadIndices(ctx, 1, x->dims[axis], axis));
  RETURN_IF_ERROR(CheckOutput(ctx, 0, x->dtype, ind->dims));
  const std::vector<int64_t> xs = RowMajorStrides(x->dims);
  const int64_t total = ind->NumElements();
  if (total == 0) return Status::Ok();
  const int64_t inner = ind->dims[r - 1], rows = total / inner;
  BySize(DTypeSize(x->dtype), [&](auto tag) {
    using T = decltype(tag);
    const T* src = x->as<const T>();
    T* dst = ctx.out(0)->as<T>();
    ParallelFor(ctx.pool, rows, std::max<int64_t>(1, 4096 / inner), [&](int64_t b, int64_t e) {
      std::vector<int64_t> pos(r, 0);
      int64_t rem = b;
      for (int64_t a = r - 2; a >= 0; --a) {
        pos[a] = rem % ind->dims[a];
        rem /= ind->dims[a];
      }
      for (int64_t row = b; row < e; ++row) {
        int64_t off = 0;  // data offset of this row, axis `axis` excluded
        for (int64_t a = 0; a < r - 1; ++a) {
          if (a != axis) off += pos[a] * xs[a];
        }
        const int64_t* ip = idx.data() + row * inner;
        T* dp = dst + row * inner;
        for (int64_t j = 0; j < inner; ++j) {
          const int64_t last = axis == r - 1 ? ip[j] : j;
          dp[j] = src[off + last + (axis == r - 1 ? 0 : ip[j] * xs[axis])];
        }
        for (int64_t a = r - 2; a >= 0; --a) {
          if (++pos[a] < ind->dims[a]) break;
          pos[a] = 0;
        }
      }
    });
  });
  return Status::Ok();
}

// ---- split / concat --------------------------------------------------------------------------

Status SplitKernel(KernelContext& ctx) {
  const TensorView* x;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  if (x->rank() == 0) return InvalidArgument("Split needs an input of rank >= 1");
  ASSIGN_OR_RETURN(const int64_t axis, NormAxis(ctx, ctx.attr_int("axis", 0), x->rank()));
  const int n = ctx.num_outputs();
  const int64_t d = x->dims[axis];
  std::vector<int64_t> sizes;
  if (ctx.in(1)) {
    ASSIGN_OR_RETURN(sizes, ReadInts(ctx, 1, "split"));
    if (static_cast<int>(sizes.size()) != n) {
      return InvalidArgument("Split has " + std::to_string(sizes.size()) + " sizes but " +
                             std::to_string(n) + " outputs");
    }
    int64_t sum = 0;
    for (int64_t s : sizes) {
      if (s < 0) return InvalidArgument("Split has negative size " + std::to_string(s));
      sum += s;
    }
    if (sum != d) {
      return InvalidArgument("Split sizes " + DimsToString(sizes) + " sum to " +
                             std::to_string(sum) + " but axis " + std::to_string(axis) +
                             " has size " + std::to_string(d));
    }
  } else if (ctx.attr("num_outputs")) {
    // Opset 18: ceil(d / n) per output, the last one smaller when n does not divide d.
    if (n <= 0 || ctx.attr_int("num_outputs", 0) != n) {
      return InvalidArgument("Split num_outputs must be the number of outputs (" +
                             std::to_string(n) + ")");
    }
    const int64_t chunk = (d + n - 1) / n;
    for (int i = 0; i < n; ++i) sizes.push_back(std::clamp<int64_t>(d - chunk * i, 0, chunk));
  } else {
    if (n <= 0) return InvalidArgument("Split has no outputs");
    if (d % n != 0) {
      return InvalidArgument("Split cannot divide axis " + std::to_string(axis) + " of size " +
                             std::to_string(d) + " into " + std::to_string(n) + " equal parts");
    }
    sizes.assign(n, d / n);
  }
  for (int i = 0; i < n; ++i) {
    if (!ctx.out(i)) continue;
    std::vector<int64_t> dims = x->dims;
    dims[axis] = sizes[i];
    RETURN_IF_ERROR(CheckOutput(ctx, i, x->dtype, dims));
  }
  const int64_t outer = Product(x->dims, 0, axis);
  const int64_t row = Product(x->dims, axis + 1, x->rank()) * DTypeSize(x->dtype);
  const char* src = static_cast<const char*>(x->data);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(d * row, 1));
  ParallelFor(ctx.pool, outer, grain, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      int64_t off = 0;
      for (int i = 0; i < n; ++i) {
        if (ctx.out(i) && sizes[i] > 0) {
          std::memcpy(static_cast<char*>(ctx.out(i)->data) + o * sizes[i] * row,
                      src + (o * d + off) * row, static_cast<size_t>(sizes[i] * row));
        }
        off += sizes[i];
      }
    }
  });
  return Status::Ok();
}

Status ConcatKernel(KernelContext& ctx) {
  const int n = ctx.num_inputs();
  if (n == 0) return InvalidArgument("Concat has no inputs");
  const Attribute* axis_attr = ctx.attr("axis");
  if (!axis_attr || axis_attr->kind() != AttrKind::kInt) {
    return InvalidArgument("Concat needs an int attribute 'axis'");
  }
  const TensorView* x0;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x0));
  if (x0->rank() == 0) return InvalidArgument("Concat input 0 is a scalar");
  ASSIGN_OR_RETURN(const int64_t axis, NormAxis(ctx, axis_attr->i(), x0->rank()));
  std::vector<int64_t> dims = x0->dims;
  dims[axis] = 0;
  for (int i = 0; i < n; ++i) {
    const TensorView* t;
    RETURN_IF_ERROR(InputAt(ctx, i, &t));
    bool same = t->dtype == x0->dtype && t->rank() == x0->rank();
    for (int64_t a = 0; same && a < t->rank(); ++a) same = a == axis || t->dims[a] == x0->dims[a];
    if (!same) {
      return InvalidArgument("Concat input " + std::to_string(i) + " " +
                             std::string(DTypeName(t->dtype)) + DimsToString(t->dims) +
                             " does not match input 0 " + std::string(DTypeName(x0->dtype)) +
                             DimsToString(x0->dims) + " off axis " + std::to_string(axis));
    }
    dims[axis] += t->dims[axis];
  }
  RETURN_IF_ERROR(CheckOutput(ctx, 0, x0->dtype, dims));
  const int64_t outer = Product(dims, 0, axis);
  const int64_t row = Product(dims, axis + 1, dims.size()) * DTypeSize(x0->dtype);
  const int64_t total = dims[axis];
  char* dst = static_cast<char*>(ctx.out(0)->data);
  const int64_t grain =
      std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(total * row, 1));
  ParallelFor(ctx.pool, outer, grain, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      int64_t off = 0;
      for (int i = 0; i < n; ++i) {
        const int64_t di = ctx.in(i)->dims[axis];
        if (di > 0) {
          std::memcpy(dst + (o * total + off) * row,
                      static_cast<const char*>(ctx.in(i)->data) + o * di * row,
                      static_cast<size_t>(di * row));
        }
        off += di;
      }
    }
  });
  return Status::Ok();
}

}  // namespace

void RegisterShapeMoveKernels(KernelRegistry& r);  // kernels_shape_move.cc

void RegisterShapeKernels(KernelRegistry& r) {
  r.Register("", "Shape", ShapeKernel);
  r.Register("", "Size", SizeKernel);
  r.Register("", "Constant", ConstantKernel);
  r.Register("", "ConstantOfShape", ConstantOfShapeKernel);
  r.Register("", "Range", RangeKernel);
  r.Register("", "Reshape", ReshapeKernel);
  r.Register("", "Flatten", FlattenKernel);
  r.Register("", "Squeeze", SqueezeKernel);
  r.Register("", "Unsqueeze", UnsqueezeKernel);
  r.Register("", "Identity", IdentityKernel);
  r.Register("", "Gather", GatherKernel);
  r.Register("", "GatherElements", GatherElementsKernel);
  r.Register("", "Split", SplitKernel);
  r.Register("", "Concat", ConcatKernel);
  RegisterShapeMoveKernels(r);
}

}  // namespace ampc::cpu
