// CPU kernels that move elements by a strided pattern: Transpose Slice Expand Tile Pad.
// Transpose, Slice, Expand and Tile are all one strided copy: each output element (row-major)
// reads source element base + sum(index[a] * stride[a]), with strides that may be permuted
// (Transpose), scaled or negative (Slice), zero (Expand, Tile's repeat dims). Pad maps each
// output index per axis to a source index or to the constant.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ir/ops/infer_util.h"  // SliceRange: the clamping rules shape inference uses
#include "runtime/cpu/broadcast.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/kernels_shape_util.h"
#include "runtime/cpu/thread_pool.h"
#include "runtime/index_maps.h"

namespace ampc::cpu {
namespace {

using namespace shape_util;  // NOLINT

constexpr int64_t kGrainBytes = int64_t{1} << 16;  // work per parallel chunk, roughly
constexpr int64_t kTile = 32;                      // 2-D transpose tile edge

struct StridedView {
  std::vector<int64_t> dims;     // the destination's dims (written row-major, contiguously)
  std::vector<int64_t> strides;  // source stride per dim, in elements (any sign, 0 = repeat)
  int64_t base = 0;              // source element offset of destination element 0
};

// Drops dims of size 1 and merges neighbours whose source strides are contiguous.
void Simplify(StridedView& v) {
  std::vector<int64_t> d, s;
  for (size_t a = 0; a < v.dims.size(); ++a) {
    if (v.dims[a] == 1) continue;
    if (!d.empty() && s.back() == v.strides[a] * v.dims[a]) {
      d.back() *= v.dims[a];
      s.back() = v.strides[a];
    } else {
      d.push_back(v.dims[a]);
      s.push_back(v.strides[a]);
    }
  }
  v.dims = std::move(d);
  v.strides = std::move(s);
}

// Batched 2-D transposes: source axis k has stride 1 while the destination's last axis does not;
// copies kTile x kTile blocks so both sides stay in cache.
template <typename T>
void TiledCopy(const T* src, T* dst, const StridedView& v, int k, ThreadPool* pool) {
  const int r = static_cast<int>(v.dims.size()), J = r - 1;
  const std::vector<int64_t> ds = RowMajorStrides(v.dims);
  std::vector<int> outer_axes;
  for (int a = 0; a < J; ++a) {
    if (a != k) outer_axes.push_back(a);
  }
  const int64_t ni = v.dims[k], nj = v.dims[J], sj = v.strides[J], dk = ds[k];
  const int64_t iblocks = (ni + kTile - 1) / kTile;
  int64_t outer = 1;
  for (int a : outer_axes) outer *= v.dims[a];
  const int64_t grain =
      std::max<int64_t>(1, kGrainBytes / (kTile * nj * static_cast<int64_t>(sizeof(T))));
  ParallelFor(pool, outer * iblocks, grain, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      int64_t o = t / iblocks, so = v.base, dof = 0;
      for (size_t q = outer_axes.size(); q-- > 0;) {
        const int a = outer_axes[q];
        const int64_t ia = o % v.dims[a];
        o /= v.dims[a];
        so += ia * v.strides[a];
        dof += ia * ds[a];
      }
      const int64_t i0 = (t % iblocks) * kTile, i1 = std::min(ni, i0 + kTile);
      for (int64_t j0 = 0; j0 < nj; j0 += kTile) {
        const int64_t j1 = std::min(nj, j0 + kTile);
        for (int64_t i = i0; i < i1; ++i) {
          T* d = dst + dof + i * dk;
          const T* s = src + so + i;
          for (int64_t j = j0; j < j1; ++j) d[j] = s[j * sj];
        }
      }
    }
  });
}

template <typename T>
void StridedCopyT(const T* src, T* dst, StridedView v, ThreadPool* pool) {
  Simplify(v);
  const int r = static_cast<int>(v.dims.size());
  if (r == 0) {
    dst[0] = src[v.base];
    return;
  }
  if (r >= 2 && v.strides[r - 1] != 1 && v.dims[r - 1] >= 4) {
    for (int k = r - 2; k >= 0; --k) {
      if (v.strides[k] == 1 && v.dims[k] >= 4) return TiledCopy(src, dst, v, k, pool);
    }
  }
  const int64_t inner = v.dims[r - 1], is = v.strides[r - 1];
  int64_t rows = 1;
  for (int a = 0; a < r - 1; ++a) rows *= v.dims[a];
  const int64_t grain =
      std::max<int64_t>(1, kGrainBytes / (inner * static_cast<int64_t>(sizeof(T))));
  ParallelFor(pool, rows, grain, [&](int64_t b, int64_t e) {
    std::vector<int64_t> idx(r, 0);
    int64_t rem = b, off = v.base;
    for (int a = r - 2; a >= 0; --a) {
      idx[a] = rem % v.dims[a];
      rem /= v.dims[a];
      off += idx[a] * v.strides[a];
    }
    for (int64_t row = b; row < e; ++row) {
      T* d = dst + row * inner;
      const T* s = src + off;
      if (is == 1) {
        std::memcpy(d, s, static_cast<size_t>(inner) * sizeof(T));
      } else if (is == 0) {
        std::fill(d, d + inner, *s);
      } else {
        for (int64_t j = 0; j < inner; ++j) d[j] = s[j * is];
      }
      for (int a = r - 2; a >= 0; --a) {
        off += v.strides[a];
        if (++idx[a] < v.dims[a]) break;
        off -= v.strides[a] * v.dims[a];
        idx[a] = 0;
      }
    }
  });
}

// Writes the strided view of x into ctx.out(0) (whose element count is the view's).
void StridedCopy(const KernelContext& ctx, const TensorView& x, const StridedView& v) {
  for (int64_t d : v.dims) {
    if (d == 0) return;
  }
  BySize(DTypeSize(x.dtype), [&](auto tag) {
    using T = decltype(tag);
    StridedCopyT<T>(x.as<const T>(), ctx.out(0)->as<T>(), v, ctx.pool);
  });
}

Status TransposeKernel(KernelContext& ctx) {
  const TensorView* x;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  const int64_t r = x->rank();
  std::vector<int64_t> perm = ctx.attr_ints("perm");
  if (!ctx.attr("perm")) {
    for (int64_t i = r - 1; i >= 0; --i) perm.push_back(i);
  }
  std::vector<bool> seen(r, false);
  bool ok = static_cast<int64_t>(perm.size()) == r;
  for (int64_t p : perm) {
    ok = ok && p >= 0 && p < r && !seen[p];
    if (ok) seen[p] = true;
  }
  if (!ok) {
    return InvalidArgument("Transpose perm " + DimsToString(perm) +
                           " is not a permutation of rank " + std::to_string(r));
  }
  const std::vector<int64_t> xs = RowMajorStrides(x->dims);
  StridedView v;
  for (int64_t i = 0; i < r; ++i) {
    v.dims.push_back(x->dims[perm[i]]);
    v.strides.push_back(xs[perm[i]]);
  }
  RETURN_IF_ERROR(CheckOutput(ctx, 0, x->dtype, v.dims));
  StridedCopy(ctx, *x, v);
  return Status::Ok();
}

Status SliceKernel(KernelContext& ctx) {
  const TensorView* x;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  const int64_t r = x->rank();
  ASSIGN_OR_RETURN(const std::vector<int64_t> starts, ReadInts(ctx, 1, "starts"));
  ASSIGN_OR_RETURN(const std::vector<int64_t> ends, ReadInts(ctx, 2, "ends"));
  const size_t n = starts.size();
  std::vector<int64_t> axes, steps(n, 1);
  if (ctx.in(3)) {
    ASSIGN_OR_RETURN(axes, ReadInts(ctx, 3, "axes"));
  } else {
    for (size_t i = 0; i < n; ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (ctx.in(4)) {
    ASSIGN_OR_RETURN(steps, ReadInts(ctx, 4, "steps"));
  }
  if (ends.size() != n || axes.size() != n || steps.size() != n) {
    return InvalidArgument("Slice starts, ends, axes and steps have different lengths (" +
                           std::to_string(n) + ", " + std::to_string(ends.size()) + ", " +
                           std::to_string(axes.size()) + ", " + std::to_string(steps.size()) + ")");
  }
  ASSIGN_OR_RETURN(axes, NormAxes(ctx, axes, r));
  const std::vector<int64_t> xs = RowMajorStrides(x->dims);
  StridedView v;
  v.dims = x->dims;
  v.strides = xs;
  for (size_t i = 0; i < n; ++i) {
    const int64_t a = axes[i];
    if (steps[i] == 0) return InvalidArgument("Slice step is 0 on axis " + std::to_string(a));
    int64_t first, count;
    infer::SliceRange(x->dims[a], starts[i], ends[i], steps[i], &first, &count);
    v.dims[a] = count;
    v.strides[a] = xs[a] * steps[i];
    v.base += first * xs[a];
  }
  RETURN_IF_ERROR(CheckOutput(ctx, 0, x->dtype, v.dims));
  StridedCopy(ctx, *x, v);
  return Status::Ok();
}

Status ExpandKernel(KernelContext& ctx) {
  const TensorView* x;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  ASSIGN_OR_RETURN(const std::vector<int64_t> shape, ReadInts(ctx, 1, "shape"));
  const size_t r = std::max(shape.size(), x->dims.size());
  std::vector<int64_t> dims(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t a = i + x->dims.size() >= r ? x->dims[i + x->dims.size() - r] : 1;
    const int64_t b = i + shape.size() >= r ? shape[i + shape.size() - r] : 1;
    if (b < 0 || (a != b && a != 1 && b != 1)) {
      return InvalidArgument("Expand cannot broadcast " + DimsToString(x->dims) + " to " +
                             DimsToString(shape));
    }
    dims[i] = a == 1 ? b : a;
  }
  RETURN_IF_ERROR(CheckOutput(ctx, 0, x->dtype, dims));
  StridedView v;
  v.dims = dims;
  v.strides = BroadcastStrides(x->dims, dims);
  StridedCopy(ctx, *x, v);
  return Status::Ok();
}

Status TileKernel(KernelContext& ctx) {
  const TensorView* x;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  ASSIGN_OR_RETURN(const std::vector<int64_t> reps, ReadInts(ctx, 1, "repeats"));
  const int64_t r = x->rank();
  if (static_cast<int64_t>(reps.size()) != r) {
    return InvalidArgument("Tile repeats has " + std::to_string(reps.size()) +
                           " entries but the input has rank " + std::to_string(r));
  }
  const std::vector<int64_t> xs = RowMajorStrides(x->dims);
  std::vector<int64_t> dims(r);
  StridedView v;  // output axis a seen as (repeat, index) pairs: strides (0, xs[a])
  for (int64_t a = 0; a < r; ++a) {
    if (reps[a] < 0) return InvalidArgument("Tile repeats " + DimsToString(reps) + " is negative");
    dims[a] = x->dims[a] * reps[a];
    v.dims.insert(v.dims.end(), {reps[a], x->dims[a]});
    v.strides.insert(v.strides.end(), {0, xs[a]});
  }
  RETURN_IF_ERROR(CheckOutput(ctx, 0, x->dtype, dims));
  StridedCopy(ctx, *x, v);
  return Status::Ok();
}

template <typename T>
void PadT(const T* src, T* dst, const std::vector<int64_t>& xdims,
          const std::vector<int64_t>& odims, const std::vector<int64_t>& pb, PadMode mode, T cval,
          ThreadPool* pool) {
  const int64_t r = static_cast<int64_t>(odims.size());
  if (r == 0) {
    dst[0] = src[0];
    return;
  }
  const std::vector<int64_t> xs = RowMajorStrides(xdims);
  std::vector<std::vector<int64_t>> map(r);  // per axis: output index -> source index or -1
  for (int64_t a = 0; a < r; ++a) {
    map[a].resize(odims[a]);
    for (int64_t o = 0; o < odims[a]; ++o) map[a][o] = PadSource(o, pb[a], xdims[a], mode);
  }
  const int64_t inner = odims[r - 1];
  // The last axis's run of outputs that copy the source contiguously.
  const int64_t lo = std::clamp(pb[r - 1], int64_t{0}, inner);
  const int64_t hi = std::clamp(pb[r - 1] + xdims[r - 1], lo, inner);
  int64_t rows = 1;
  for (int64_t a = 0; a < r - 1; ++a) rows *= odims[a];
  const int64_t grain =
      std::max<int64_t>(1, kGrainBytes / (inner * static_cast<int64_t>(sizeof(T))));
  ParallelFor(pool, rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      T* d = dst + row * inner;
      int64_t rem = row, off = 0;
      bool constant = false;
      for (int64_t a = r - 2; a >= 0; --a) {
        const int64_t s = map[a][rem % odims[a]];
        rem /= odims[a];
        constant = constant || s < 0;
        off += s * xs[a];
      }
      if (constant) {
        std::fill(d, d + inner, cval);
        continue;
      }
      const T* s = src + off;
      const std::vector<int64_t>& m = map[r - 1];
      for (int64_t j = 0; j < lo; ++j) d[j] = m[j] < 0 ? cval : s[m[j]];
      if (hi > lo) std::memcpy(d + lo, s + (lo - pb[r - 1]), (hi - lo) * sizeof(T));
      for (int64_t j = hi; j < inner; ++j) d[j] = m[j] < 0 ? cval : s[m[j]];
    }
  });
}

Status PadKernel(KernelContext& ctx) {
  const TensorView* x;
  RETURN_IF_ERROR(InputAt(ctx, 0, &x));
  const int64_t r = x->rank();
  const std::string mode_s = ctx.attr_string("mode", "constant");
  const std::optional<PadMode> parsed = PadModeFromName(mode_s);
  if (!parsed) {
    return InvalidArgument("Pad mode '" + mode_s + "' is not one of constant, reflect, edge, wrap");
  }
  const PadMode mode = *parsed;
  ASSIGN_OR_RETURN(const std::vector<int64_t> pads, ReadInts(ctx, 1, "pads"));
  std::vector<int64_t> axes;
  if (ctx.in(3)) {
    ASSIGN_OR_RETURN(axes, ReadInts(ctx, 3, "axes"));
    ASSIGN_OR_RETURN(axes, NormAxes(ctx, axes, r));
  } else {
    for (int64_t a = 0; a < r; ++a) axes.push_back(a);
  }
  const size_t n = axes.size();
  if (pads.size() != 2 * n) {
    return InvalidArgument("Pad pads has " + std::to_string(pads.size()) + " entries, expected " +
                           std::to_string(2 * n));
  }
  std::vector<int64_t> pb(r, 0), dims = x->dims;
  for (size_t i = 0; i < n; ++i) {
    const int64_t a = axes[i];
    pb[a] = pads[i];
    dims[a] = x->dims[a] + pads[i] + pads[i + n];
    if (dims[a] < 0) {
      return InvalidArgument("Pad makes axis " + std::to_string(a) + " negative (" +
                             std::to_string(dims[a]) + ")");
    }
    if (mode != PadMode::kConstant && x->dims[a] == 0 && dims[a] > 0) {
      return InvalidArgument("Pad mode '" + mode_s + "' cannot pad the empty axis " +
                             std::to_string(a));
    }
  }
  RETURN_IF_ERROR(CheckOutput(ctx, 0, x->dtype, dims));
  uint64_t cval = 0;
  if (const TensorView* c = ctx.in(2); c && c->NumElements() > 0) {
    if (c->dtype != x->dtype) {
      return InvalidArgument("Pad constant_value has type " + std::string(DTypeName(c->dtype)) +
                             " but the data is " + std::string(DTypeName(x->dtype)));
    }
    std::memcpy(&cval, c->data, DTypeSize(c->dtype));
  }
  if (ctx.out(0)->NumElements() == 0) return Status::Ok();
  if (dims == x->dims && std::all_of(pb.begin(), pb.end(), [](int64_t v) { return v == 0; })) {
    // Nothing to pad (exporters write such Pads, e.g. before a pool): one copy, not row by row.
    const int64_t bytes = x->NumElements() * static_cast<int64_t>(DTypeSize(x->dtype));
    const auto* src = static_cast<const uint8_t*>(x->data);
    auto* dst = static_cast<uint8_t*>(ctx.out(0)->data);
    ParallelFor(ctx.pool, bytes, kGrainBytes, [&](int64_t b, int64_t e) {
      std::memcpy(dst + b, src + b, static_cast<size_t>(e - b));
    });
    return Status::Ok();
  }
  BySize(DTypeSize(x->dtype), [&](auto tag) {
    using T = decltype(tag);
    T cv;
    std::memcpy(&cv, &cval, sizeof(T));
    PadT<T>(x->as<const T>(), ctx.out(0)->as<T>(), x->dims, dims, pb, mode, cv, ctx.pool);
  });
  return Status::Ok();
}

}  // namespace

void RegisterShapeMoveKernels(KernelRegistry& r) {
  r.Register("", "Transpose", TransposeKernel);
  r.Register("", "Slice", SliceKernel);
  r.Register("", "Expand", ExpandKernel);
  r.Register("", "Tile", TileKernel);
  r.Register("", "Pad", PadKernel);
}

}  // namespace ampc::cpu
