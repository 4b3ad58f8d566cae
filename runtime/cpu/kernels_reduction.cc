// CPU reduction kernels: ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2
// ReduceLogSumExp ReduceSumSquare (axes input or attribute, noop_with_empty_axes) ArgMax ArgMin
// CumSum.
//
// Numerics: f32/f16/bf16 inputs are loaded as fp32 and accumulated in double (at least the
// contract's fp32; long fp32 sums stay accurate), f64 in double, integers in int64 (wrapping).
// Each result is rounded once into the output type: double -> f16/bf16 goes through fp32 with
// round-to-odd, which makes the two-step conversion equal to one correctly rounded step.
// Empty reductions follow ONNX: sum 0, prod 1, max -inf / min +inf (integer types: their lowest /
// highest value), mean NaN (integers 0), log-sum-exp -inf.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "ir/float16.h"
#include "runtime/cpu/convert.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/thread_pool.h"

namespace ampc::cpu {
namespace {

constexpr int64_t kGrain = int64_t{1} << 15;  // elements per parallel chunk, roughly
constexpr int64_t kBuf = 1024;                // elements converted per load

// ---- loads and rounded stores ----------------------------------------------------------------

void LoadRun(const TensorView& v, int64_t off, int64_t n, float* dst) {
  LoadFloats(v, off, n, dst);
}
void LoadRun(const TensorView& v, int64_t off, int64_t n, double* dst) {
  if (v.dtype == DType::kFloat64) {
    std::memcpy(dst, v.as<const double>() + off, static_cast<size_t>(n) * sizeof(double));
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = Load<double>(v, off + i);
  }
}
void LoadRun(const TensorView& v, int64_t off, int64_t n, int64_t* dst) {
  if (v.dtype == DType::kInt64) {
    std::memcpy(dst, v.as<const int64_t>() + off, static_cast<size_t>(n) * sizeof(int64_t));
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = Load<int64_t>(v, off + i);
  }
}

// d rounded to float toward zero, with the lowest bit set when inexact (round-to-odd). Rounding
// that float to f16/bf16 (<= 22 fewer bits) gives d correctly rounded in one step.
float ToFloatOdd(double d) {
  float f = static_cast<float>(d);
  if (std::isnan(d) || static_cast<double>(f) == d) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(d)) f = std::nextafter(f, 0.0f);
  return BitsToFloat(FloatToBits(f) | 1u);
}

void StoreRounded(TensorView& v, int64_t i, double d) {
  switch (v.dtype) {
    case DType::kFloat16:
      v.as<uint16_t>()[i] = FloatToHalfBits(ToFloatOdd(d));
      break;
    case DType::kBFloat16:
      v.as<uint16_t>()[i] = FloatToBFloat16Bits(ToFloatOdd(d));
      break;
    default:
      Store<double>(v, i, d);
      break;
  }
}
void StoreRounded(TensorView& v, int64_t i, int64_t x) { Store<int64_t>(v, i, x); }

// Wrapping integer arithmetic (no UB on overflow); plain arithmetic for doubles.
inline int64_t Add(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
inline int64_t Mul(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}
inline double Add(double a, double b) { return a + b; }
inline double Mul(double a, double b) { return a * b; }

template <typename T>
inline bool IsNaN(T x) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::isnan(x);
  } else {
    return false;
  }
}

// Lowest / highest value of an integer dtype (the identities of Max / Min for integers).
int64_t IntLowest(DType t) {
  switch (t) {
    case DType::kInt32:
      return std::numeric_limits<int32_t>::lowest();
    case DType::kInt8:
      return std::numeric_limits<int8_t>::lowest();
    case DType::kUInt8:
    case DType::kBool:
      return 0;
    default:
      return std::numeric_limits<int64_t>::lowest();
  }
}
int64_t IntHighest(DType t) {
  switch (t) {
    case DType::kInt32:
      return std::numeric_limits<int32_t>::max();
    case DType::kInt8:
      return std::numeric_limits<int8_t>::max();
    case DType::kUInt8:
      return std::numeric_limits<uint8_t>::max();
    case DType::kBool:
      return 1;
    default:
      return std::numeric_limits<int64_t>::max();
  }
}

// ---- the reduce engine -------------------------------------------------------------------------

// The input viewed as groups of adjacent axes that are all reduced or all kept (size-1 axes
// dropped). Output offsets of kept groups are row-major over the kept groups.
struct Groups {
  std::vector<int64_t> dims, in_str, out_str;
  std::vector<bool> red;
};

Groups MakeGroups(const std::vector<int64_t>& dims, const std::vector<bool>& reduce) {
  Groups g;
  for (size_t a = 0; a < dims.size(); ++a) {
    if (dims[a] == 1) continue;
    if (!g.dims.empty() && g.red.back() == reduce[a]) {
      g.dims.back() *= dims[a];
    } else {
      g.dims.push_back(dims[a]);
      g.red.push_back(reduce[a]);
    }
  }
  if (g.dims.empty()) {
    g.dims.push_back(1);
    g.red.push_back(false);
  }
  const size_t m = g.dims.size();
  g.in_str.assign(m, 1);
  g.out_str.assign(m, 0);
  int64_t si = 1, so = 1;
  for (size_t a = m; a-- > 0;) {
    g.in_str[a] = si;
    si *= g.dims[a];
    if (!g.red[a]) {
      g.out_str[a] = so;
      so *= g.dims[a];
    }
  }
  return g;
}

// Calls f(acc[oi], x, oi) for every input element x (loaded as C) and the output index oi it
// reduces into. Parallel over the outermost kept group, so chunks own disjoint outputs.
template <typename C, typename Acc, typename F>
void ReducePass(const TensorView& x, const Groups& g, Acc* acc, ThreadPool* pool, F f) {
  const int m = static_cast<int>(g.dims.size()), L = m - 1;
  int P = -1;
  for (int a = 0; a < m && P < 0; ++a) {
    if (!g.red[a]) P = a;
  }
  auto work = [&](int64_t lo, int64_t hi) {
    std::vector<int64_t> begin(m, 0), end = g.dims;
    if (P >= 0) {
      begin[P] = lo;
      end[P] = hi;
    }
    std::vector<int64_t> idx = begin;
    std::vector<C> buf(
        static_cast<size_t>(std::min(kBuf, std::max<int64_t>(end[L] - begin[L], 1))));
    for (;;) {
      int64_t in_off = begin[L], out_off = g.red[L] ? 0 : begin[L];
      for (int a = 0; a < L; ++a) {
        in_off += idx[a] * g.in_str[a];
        out_off += idx[a] * g.out_str[a];
      }
      for (int64_t c = begin[L]; c < end[L]; c += kBuf) {
        const int64_t len = std::min(kBuf, end[L] - c);
        LoadRun(x, in_off + (c - begin[L]), len, buf.data());
        if (g.red[L]) {
          Acc a = acc[out_off];
          for (int64_t j = 0; j < len; ++j) f(a, buf[j], out_off);
          acc[out_off] = a;
        } else {
          Acc* ap = acc + out_off + (c - begin[L]);
          for (int64_t j = 0; j < len; ++j) f(ap[j], buf[j], out_off + (c - begin[L]) + j);
        }
      }
      int a = L - 1;
      for (; a >= 0; --a) {
        if (++idx[a] < end[a]) break;
        idx[a] = begin[a];
      }
      if (a < 0) return;
    }
  };
  if (P < 0) {
    work(0, 0);
    return;
  }
  const int64_t per_index = std::max<int64_t>(1, x.NumElements() / g.dims[P]);
  ParallelFor(pool, g.dims[P], std::max<int64_t>(1, kGrain / per_index), work);
}

enum class RK { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSumExp, kSumSquare };

// C: load type (float for f32/f16/bf16, double for f64, int64 for integers). Acc: double or
// int64.
template <typename C, typename Acc>
void ReduceTyped(const TensorView& x, TensorView& out, const Groups& g, int64_t count, RK k,
                 ThreadPool* pool) {
  const int64_t n = out.NumElements();
  constexpr bool kInt = std::is_integral_v<Acc>;
  Acc init = 0;
  if (k == RK::kProd) init = 1;
  if (k == RK::kMax)
    init = kInt ? static_cast<Acc>(IntLowest(x.dtype)) : -std::numeric_limits<Acc>::infinity();
  if (k == RK::kMin)
    init = kInt ? static_cast<Acc>(IntHighest(x.dtype)) : std::numeric_limits<Acc>::infinity();
  std::vector<Acc> acc(static_cast<size_t>(n), init);
  std::vector<double> shift;  // log-sum-exp: the max per output
  const bool empty = x.NumElements() == 0;
  if (!empty) {
    switch (k) {
      case RK::kSum:
      case RK::kMean:
        ReducePass<C>(x, g, acc.data(), pool, [](Acc& a, C v, int64_t) { a = Add(a, Acc(v)); });
        break;
      case RK::kProd:
        ReducePass<C>(x, g, acc.data(), pool, [](Acc& a, C v, int64_t) { a = Mul(a, Acc(v)); });
        break;
      case RK::kL1:
        ReducePass<C>(x, g, acc.data(), pool, [](Acc& a, C v, int64_t) {
          a = Add(a, v < 0 ? Mul(Acc(v), Acc(-1)) : Acc(v));
        });
        break;
      case RK::kL2:
      case RK::kSumSquare:
        ReducePass<C>(x, g, acc.data(), pool,
                      [](Acc& a, C v, int64_t) { a = Add(a, Mul(Acc(v), Acc(v))); });
        break;
      case RK::kMax:
        ReducePass<C>(x, g, acc.data(), pool, [](Acc& a, C v, int64_t) {
          if (Acc(v) > a || IsNaN(v)) a = Acc(v);
        });
        break;
      case RK::kMin:
        ReducePass<C>(x, g, acc.data(), pool, [](Acc& a, C v, int64_t) {
          if (Acc(v) < a || IsNaN(v)) a = Acc(v);
        });
        break;
      case RK::kLogSumExp: {
        std::vector<double> mx(static_cast<size_t>(n), -std::numeric_limits<double>::infinity());
        ReducePass<C>(x, g, mx.data(), pool, [](double& a, C v, int64_t) {
          if (double(v) > a || IsNaN(v)) a = double(v);
        });
        shift.resize(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) shift[i] = std::isfinite(mx[i]) ? mx[i] : 0.0;
        std::vector<double> sum(static_cast<size_t>(n), 0.0);
        const double* sh = shift.data();
        ReducePass<C>(x, g, sum.data(), pool,
                      [sh](double& a, C v, int64_t oi) { a += std::exp(double(v) - sh[oi]); });
        for (int64_t i = 0; i < n; ++i) {
          const double r = std::log(sum[i]) + shift[i];
          acc[i] = static_cast<Acc>(r);
        }
        break;
      }
    }
  } else if (k == RK::kLogSumExp) {
    std::fill(acc.begin(), acc.end(), kInt ? Acc(0) : -std::numeric_limits<Acc>::infinity());
  }
  for (int64_t i = 0; i < n; ++i) {
    Acc a = acc[i];
    if (k == RK::kMean) {
      if constexpr (kInt) {
        a = count ? a / count : 0;
      } else {
        a = a / static_cast<double>(count);  // 0/0 = NaN for an empty mean
      }
    } else if (k == RK::kL2) {
      a = static_cast<Acc>(std::sqrt(static_cast<double>(a)));
    }
    StoreRounded(out, i, a);
  }
}

// Reduces x over `axes` (normalized; empty = every axis) into ctx.out(0).
Status Reduce(KernelContext& ctx, const TensorView& x, const std::vector<int64_t>& axes, bool keep,
              RK k) {
  const int64_t r = x.rank();
  std::vector<bool> reduce(r, axes.empty());
  for (int64_t a : axes) reduce[a] = true;
  std::vector<int64_t> dims;
  int64_t count = 1;
  for (int64_t a = 0; a < r; ++a) {
    if (reduce[a]) count *= x.dims[a];
    if (!reduce[a]) {
      dims.push_back(x.dims[a]);
    } else if (keep) {
      dims.push_back(1);
    }
  }
  TensorView* out = ctx.out(0);
  if (!out) return InvalidArgument(ctx.op + " output 0 is missing");
  if (out->dtype != x.dtype || out->dims != dims) {
    return InvalidArgument(ctx.op + " computes output " + std::string(DTypeName(x.dtype)) +
                           DimsToString(dims) + " but the planned output is " +
                           std::string(DTypeName(out->dtype)) + DimsToString(out->dims));
  }
  const Groups g = MakeGroups(x.dims, reduce);
  switch (x.dtype) {
    case DType::kFloat32:
    case DType::kFloat16:
    case DType::kBFloat16:
      ReduceTyped<float, double>(x, *out, g, count, k, ctx.pool);
      break;
    case DType::kFloat64:
      ReduceTyped<double, double>(x, *out, g, count, k, ctx.pool);
      break;
    case DType::kInt64:
    case DType::kInt32:
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kBool:  // ReduceMax/ReduceMin (opset 20): any / all
      ReduceTyped<int64_t, int64_t>(x, *out, g, count, k, ctx.pool);
      break;
    default:
      return InvalidArgument(ctx.op + " does not support type " + std::string(DTypeName(x.dtype)));
  }
  return Status::Ok();
}

StatusOr<std::vector<int64_t>> NormAxes(const KernelContext& ctx, const std::vector<int64_t>& axes,
                                        int64_t rank) {
  std::vector<int64_t> out;
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t a : axes) {
    if (a < -rank || a >= rank) {
      return InvalidArgument(ctx.op + " axis " + std::to_string(a) + " is out of range for rank " +
                             std::to_string(rank));
    }
    const int64_t n = a < 0 ? a + rank : a;
    if (seen[n]) return InvalidArgument(ctx.op + " axis " + std::to_string(a) + " is repeated");
    seen[n] = true;
    out.push_back(n);
  }
  return out;
}

// noop_with_empty_axes with no axes: each element reduced alone, which is the element itself
// except for the reductions that transform it (ONNX's reference reduces over axis=()):
// SumSquare x^2, L1 and L2 |x|.
Status ReduceNoAxes(KernelContext& ctx, const TensorView& x, RK k) {
  TensorView* out = ctx.out(0);
  if (!out || out->dtype != x.dtype || out->dims != x.dims) {
    return InvalidArgument(ctx.op +
                           " with no axes and noop_with_empty_axes needs an output shaped like "
                           "its input " +
                           DimsToString(x.dims));
  }
  const int64_t n = x.NumElements();
  if (k != RK::kSumSquare && k != RK::kL1 && k != RK::kL2) {
    if (out->data != x.data && n > 0) {
      std::memcpy(out->data, x.data, static_cast<size_t>(n * DTypeSize(x.dtype)));
    }
    return Status::Ok();
  }
  for (int64_t i = 0; i < n; ++i) {
    if (IsFloat(x.dtype)) {
      const double v = Load<double>(x, i);
      StoreRounded(*out, i, k == RK::kSumSquare ? v * v : std::fabs(v));
    } else {
      const int64_t v = Load<int64_t>(x, i);
      StoreRounded(*out, i, k == RK::kSumSquare ? Mul(v, v) : (v < 0 ? Mul(v, -1) : v));
    }
  }
  return Status::Ok();
}

// Every Reduce* op: axes from input 1 (opset 18; ReduceSum 13) or from the `axes` attribute of
// older opsets; no axes reduce everything unless noop_with_empty_axes.
template <RK K>
Status ReduceKernel(KernelContext& ctx) {
  const TensorView* x = ctx.in(0);
  if (!x) return InvalidArgument(ctx.op + " input 0 is missing");
  std::vector<int64_t> axes = ctx.attr_ints("axes");
  if (const TensorView* a = ctx.in(1)) {
    if (a->dtype != DType::kInt64 && a->dtype != DType::kInt32) {
      return InvalidArgument(ctx.op + " axes must be i64, got " + std::string(DTypeName(a->dtype)));
    }
    for (int64_t i = 0; i < a->NumElements(); ++i) axes.push_back(Load<int64_t>(*a, i));
  }
  if (axes.empty() && ctx.attr_int("noop_with_empty_axes", 0) != 0) return ReduceNoAxes(ctx, *x, K);
  if (x->dtype == DType::kBool && K != RK::kMax && K != RK::kMin) {
    return InvalidArgument(ctx.op + " does not support type bool");
  }
  ASSIGN_OR_RETURN(axes, NormAxes(ctx, axes, x->rank()));
  return Reduce(ctx, *x, axes, ctx.attr_int("keepdims", 1) != 0, K);
}

// ---- ArgMax / ArgMin / CumSum: one axis, viewed as outer x n x inner ----------------------------

struct AxisView {
  int64_t outer = 1, n = 1, inner = 1;
};

StatusOr<AxisView> ViewAxis(const KernelContext& ctx, const TensorView& x, int64_t axis) {
  const int64_t r = x.rank();
  if (axis < -r || axis >= r) {
    return InvalidArgument(ctx.op + " axis " + std::to_string(axis) + " is out of range for rank " +
                           std::to_string(r));
  }
  if (axis < 0) axis += r;
  AxisView v;
  for (int64_t a = 0; a < r; ++a) {
    if (a < axis) v.outer *= x.dims[a];
    if (a == axis) v.n = x.dims[a];
    if (a > axis) v.inner *= x.dims[a];
  }
  return v;
}

// Runs fn(o, j0, j1) over outer index o and inner columns [j0, j1), in parallel.
template <typename F>
void ForColumns(const AxisView& v, ThreadPool* pool, F fn) {
  const int64_t blocks = (v.inner + kBuf - 1) / kBuf;
  const int64_t per_task = std::max<int64_t>(1, v.n * std::min(v.inner, kBuf));
  ParallelFor(pool, v.outer * blocks, std::max<int64_t>(1, kGrain / per_task),
              [&](int64_t b, int64_t e) {
                for (int64_t t = b; t < e; ++t) {
                  const int64_t j0 = (t % blocks) * kBuf;
                  fn(t / blocks, j0, std::min(v.inner, j0 + kBuf));
                }
              });
}

// Whether x replaces the current best bv: NaN wins (the first one, or the last with
// select_last_index); ties go to the first index unless `last`.
template <typename C>
inline bool Better(C xv, C bv, bool is_max, bool last) {
  if (IsNaN(bv)) return last && IsNaN(xv);
  if (IsNaN(xv)) return true;
  if (is_max) return last ? xv >= bv : xv > bv;
  return last ? xv <= bv : xv < bv;
}

template <typename C>
void ArgTyped(const TensorView& x, int64_t* out, const AxisView& v, bool is_max, bool last,
              ThreadPool* pool) {
  if (v.inner == 1) {  // the axis is innermost: scan contiguous rows
    ParallelFor(pool, v.outer, std::max<int64_t>(1, kGrain / v.n), [&](int64_t b, int64_t e) {
      std::vector<C> buf(static_cast<size_t>(std::min(kBuf, v.n)));
      for (int64_t o = b; o < e; ++o) {
        C best{};
        int64_t arg = 0;
        for (int64_t c = 0; c < v.n; c += kBuf) {
          const int64_t len = std::min(kBuf, v.n - c);
          LoadRun(x, o * v.n + c, len, buf.data());
          for (int64_t j = 0; j < len; ++j) {
            if ((c == 0 && j == 0) || Better(buf[j], best, is_max, last)) {
              best = buf[j];
              arg = c + j;
            }
          }
        }
        out[o] = arg;
      }
    });
    return;
  }
  ForColumns(v, pool, [&](int64_t o, int64_t j0, int64_t j1) {
    const int64_t w = j1 - j0;
    std::vector<C> best(static_cast<size_t>(w)), row(static_cast<size_t>(w));
    std::vector<int64_t> arg(static_cast<size_t>(w), 0);
    LoadRun(x, o * v.n * v.inner + j0, w, best.data());
    for (int64_t i = 1; i < v.n; ++i) {
      LoadRun(x, (o * v.n + i) * v.inner + j0, w, row.data());
      for (int64_t j = 0; j < w; ++j) {
        if (Better(row[j], best[j], is_max, last)) {
          best[j] = row[j];
          arg[j] = i;
        }
      }
    }
    std::copy(arg.begin(), arg.end(), out + o * v.inner + j0);
  });
}

template <bool kMax>
Status ArgKernel(KernelContext& ctx) {
  const TensorView* x = ctx.in(0);
  if (!x) return InvalidArgument(ctx.op + " input 0 is missing");
  if (x->rank() == 0) return InvalidArgument(ctx.op + " needs an input of rank >= 1");
  const int64_t axis_attr = ctx.attr_int("axis", 0);
  ASSIGN_OR_RETURN(const AxisView v, ViewAxis(ctx, *x, axis_attr));
  const int64_t axis = axis_attr < 0 ? axis_attr + x->rank() : axis_attr;
  const bool keep = ctx.attr_int("keepdims", 1) != 0;
  std::vector<int64_t> dims;
  for (int64_t a = 0; a < x->rank(); ++a) {
    if (a != axis) {
      dims.push_back(x->dims[a]);
    } else if (keep) {
      dims.push_back(1);
    }
  }
  TensorView* out = ctx.out(0);
  if (!out || out->dtype != DType::kInt64 || out->dims != dims) {
    return InvalidArgument(ctx.op + " computes output i64" + DimsToString(dims) +
                           " but the planned output is " +
                           (out ? std::string(DTypeName(out->dtype)) + DimsToString(out->dims)
                                : std::string("missing")));
  }
  if (out->NumElements() == 0) return Status::Ok();
  if (v.n == 0) {
    return InvalidArgument(ctx.op + " cannot reduce the empty axis " + std::to_string(axis));
  }
  const bool last = ctx.attr_int("select_last_index", 0) != 0;
  int64_t* o = out->as<int64_t>();
  if (x->dtype == DType::kFloat64) {
    ArgTyped<double>(*x, o, v, kMax, last, ctx.pool);
  } else if (IsFloat(x->dtype)) {
    ArgTyped<float>(*x, o, v, kMax, last, ctx.pool);
  } else if (IsInteger(x->dtype)) {
    ArgTyped<int64_t>(*x, o, v, kMax, last, ctx.pool);
  } else {
    return InvalidArgument(ctx.op + " does not support type " + std::string(DTypeName(x->dtype)));
  }
  return Status::Ok();
}

template <typename C, typename Acc>
void CumSumTyped(const TensorView& x, TensorView& out, const AxisView& v, bool exclusive,
                 bool reverse, ThreadPool* pool) {
  if (v.inner == 1) {  // the axis is innermost: contiguous rows
    ParallelFor(pool, v.outer, std::max<int64_t>(1, kGrain / v.n), [&](int64_t b, int64_t e) {
      std::vector<C> row(static_cast<size_t>(v.n));
      for (int64_t o = b; o < e; ++o) {
        LoadRun(x, o * v.n, v.n, row.data());
        Acc acc = 0;
        for (int64_t s = 0; s < v.n; ++s) {
          const int64_t i = reverse ? v.n - 1 - s : s;
          const Acc before = acc;
          acc = Add(acc, Acc(row[i]));
          StoreRounded(out, o * v.n + i, exclusive ? before : acc);
        }
      }
    });
    return;
  }
  ForColumns(v, pool, [&](int64_t o, int64_t j0, int64_t j1) {
    const int64_t w = j1 - j0;
    std::vector<Acc> acc(static_cast<size_t>(w), Acc(0));
    std::vector<C> row(static_cast<size_t>(w));
    for (int64_t s = 0; s < v.n; ++s) {
      const int64_t i = reverse ? v.n - 1 - s : s;
      const int64_t off = (o * v.n + i) * v.inner + j0;
      LoadRun(x, off, w, row.data());
      for (int64_t j = 0; j < w; ++j) {
        if (exclusive) {
          StoreRounded(out, off + j, acc[j]);
          acc[j] = Add(acc[j], Acc(row[j]));
        } else {
          acc[j] = Add(acc[j], Acc(row[j]));
          StoreRounded(out, off + j, acc[j]);
        }
      }
    }
  });
}

Status CumSumKernel(KernelContext& ctx) {
  const TensorView *x = ctx.in(0), *a = ctx.in(1);
  if (!x || !a) return InvalidArgument("CumSum needs inputs x and axis");
  if ((a->dtype != DType::kInt64 && a->dtype != DType::kInt32) || a->NumElements() != 1) {
    return InvalidArgument("CumSum axis must be one i32 or i64 value");
  }
  if (x->rank() == 0) return InvalidArgument("CumSum needs an input of rank >= 1");
  ASSIGN_OR_RETURN(const AxisView v, ViewAxis(ctx, *x, Load<int64_t>(*a, 0)));
  TensorView* out = ctx.out(0);
  if (!out || out->dtype != x->dtype || out->dims != x->dims) {
    return InvalidArgument("CumSum output must be shaped like its input " +
                           std::string(DTypeName(x->dtype)) + DimsToString(x->dims));
  }
  if (x->NumElements() == 0) return Status::Ok();
  const bool exclusive = ctx.attr_int("exclusive", 0) != 0;
  const bool reverse = ctx.attr_int("reverse", 0) != 0;
  if (x->dtype == DType::kFloat64) {
    CumSumTyped<double, double>(*x, *out, v, exclusive, reverse, ctx.pool);
  } else if (IsFloat(x->dtype)) {
    CumSumTyped<float, double>(*x, *out, v, exclusive, reverse, ctx.pool);
  } else if (IsInteger(x->dtype)) {
    CumSumTyped<int64_t, int64_t>(*x, *out, v, exclusive, reverse, ctx.pool);
  } else {
    return InvalidArgument("CumSum does not support type " + std::string(DTypeName(x->dtype)));
  }
  return Status::Ok();
}

}  // namespace

void RegisterReductionKernels(KernelRegistry& r) {
  r.Register("", "ReduceSum", ReduceKernel<RK::kSum>);
  r.Register("", "ReduceMean", ReduceKernel<RK::kMean>);
  r.Register("", "ReduceMax", ReduceKernel<RK::kMax>);
  r.Register("", "ReduceMin", ReduceKernel<RK::kMin>);
  r.Register("", "ReduceProd", ReduceKernel<RK::kProd>);
  r.Register("", "ReduceL1", ReduceKernel<RK::kL1>);
  r.Register("", "ReduceL2", ReduceKernel<RK::kL2>);
  r.Register("", "ReduceLogSumExp", ReduceKernel<RK::kLogSumExp>);
  r.Register("", "ReduceSumSquare", ReduceKernel<RK::kSumSquare>);
  r.Register("", "ArgMax", ArgKernel<true>);
  r.Register("", "ArgMin", ArgKernel<false>);
  r.Register("", "CumSum", CumSumKernel);
}

}  // namespace ampc::cpu
