// CPU kernels for the backward ops of sliding-window ops (ir/ops/grad_ops.cc): ConvGrad (im2col
// + GEMM for dW, GEMM + col2im for dX), MaxPoolGrad (dY routed to the first maximum of each
// window, PyTorch's CPU tie rule) and AveragePoolGrad (dY spread over each window). The window
// geometry follows the forward kernels (runtime/cpu/kernels_conv.cc) exactly: spatial ranks 1 to 3
// padded to 3-D, SAME pads derived from the output size, pool windows clipped to the input.
// Half tensors are widened to fp32, accumulated in fp32 and rounded once per output.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "runtime/cpu/convert.h"
#include "runtime/cpu/gemm.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/thread_pool.h"

namespace ampc::cpu {
namespace {

std::string S(int64_t v) { return std::to_string(v); }

struct Geometry {
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1}, dil[3] = {1, 1, 1}, pad_begin[3] = {0, 0, 0},
          pad_end[3] = {0, 0, 0};
  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t kernel_size() const { return k[0] * k[1] * k[2]; }
};

// Indices i in [0, n) with 0 <= i * step + off < limit form the range [*lo, *hi).
inline void ValidRange(int64_t n, int64_t step, int64_t off, int64_t limit, int64_t* lo,
                       int64_t* hi) {
  int64_t a = off >= 0 ? 0 : (-off + step - 1) / step;
  int64_t b = off >= limit ? 0 : (limit - 1 - off) / step + 1;
  a = std::min(a, n);
  b = std::clamp(b, a, n);
  *lo = a;
  *hi = b;
}

StatusOr<std::vector<int64_t>> IntsAttr(const KernelContext& ctx, const char* name, int64_t n,
                                        int64_t dflt, int64_t min_value) {
  std::vector<int64_t> v = ctx.attr_ints(name);
  if (v.empty()) return std::vector<int64_t>(static_cast<size_t>(n), dflt);
  if (static_cast<int64_t>(v.size()) != n) {
    return InvalidArgument(ctx.op + ": " + name + " has " + S(v.size()) + " values, expected " +
                           S(n));
  }
  for (int64_t x : v) {
    if (x < min_value) return InvalidArgument(ctx.op + ": " + name + " has invalid entry " + S(x));
  }
  return v;
}

// The forward op's geometry for input dims `in`, output dims `out` (dY's) and kernel dims.
StatusOr<Geometry> ReadGeometry(const KernelContext& ctx, const std::vector<int64_t>& in,
                                const std::vector<int64_t>& out,
                                const std::vector<int64_t>& kernel) {
  const int64_t n = static_cast<int64_t>(in.size());
  if (n < 1 || n > 3) {
    return Unimplemented(ctx.op + " with " + S(n) + " spatial dims (only 1 to 3 are supported)");
  }
  if (static_cast<int64_t>(out.size()) != n || static_cast<int64_t>(kernel.size()) != n) {
    return InvalidArgument(ctx.op + ": dY or kernel rank does not match the input");
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> strides, IntsAttr(ctx, "strides", n, 1, 1));
  ASSIGN_OR_RETURN(std::vector<int64_t> dil, IntsAttr(ctx, "dilations", n, 1, 1));
  ASSIGN_OR_RETURN(std::vector<int64_t> pads, IntsAttr(ctx, "pads", 2 * n, 0, 0));
  const std::string auto_pad = ctx.attr_string("auto_pad", "NOTSET");
  const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
  Geometry g;
  const int64_t o = 3 - n;
  for (int64_t i = 0; i < n; ++i) {
    if (in[i] < 0 || out[i] < 0 || kernel[i] < 1) {
      return InvalidArgument(ctx.op + ": invalid spatial dims");
    }
    g.in[o + i] = in[i];
    g.out[o + i] = out[i];
    g.k[o + i] = kernel[i];
    g.stride[o + i] = strides[i];
    g.dil[o + i] = dil[i];
    if (same) {
      const int64_t ek = (kernel[i] - 1) * dil[i] + 1;
      const int64_t total = std::max<int64_t>((out[i] - 1) * strides[i] + ek - in[i], 0);
      g.pad_begin[o + i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pad_end[o + i] = total - g.pad_begin[o + i];
    } else if (auto_pad != "VALID") {
      g.pad_begin[o + i] = pads[i];
      g.pad_end[o + i] = pads[i + n];
    }
  }
  return g;
}

std::vector<int64_t> Spatial(const std::vector<int64_t>& dims) {
  return std::vector<int64_t>(dims.begin() + 2, dims.end());
}

Status RequireFloatViews(const KernelContext& ctx, std::initializer_list<const TensorView*> ts) {
  const DType t = (*ts.begin())->dtype;
  for (const TensorView* v : ts) {
    if (!v) continue;
    if (!IsFloat(v->dtype)) {
      return Unimplemented(ctx.op + " on " + std::string(DTypeName(v->dtype)) + " tensors");
    }
    if (v->dtype != t) return InvalidArgument(ctx.op + ": inputs and outputs differ in dtype");
  }
  return Status::Ok();
}

// ----------------------------------------------------------------------------------- ConvGrad

// The kernel_size() x out_size() im2col rows of one input channel plane `x`.
template <typename T>
void Im2ColChannel(const T* x, const Geometry& g, T* dst) {
  const int64_t plane = g.out_size();
  for (int64_t kd = 0; kd < g.k[0]; ++kd) {
    for (int64_t kh = 0; kh < g.k[1]; ++kh) {
      for (int64_t kw = 0; kw < g.k[2]; ++kw) {
        T* row = dst + ((kd * g.k[1] + kh) * g.k[2] + kw) * plane;
        const int64_t off = kw * g.dil[2] - g.pad_begin[2];
        int64_t lo, hi;
        ValidRange(g.out[2], g.stride[2], off, g.in[2], &lo, &hi);
        for (int64_t od = 0; od < g.out[0]; ++od) {
          const int64_t id = od * g.stride[0] - g.pad_begin[0] + kd * g.dil[0];
          for (int64_t oh = 0; oh < g.out[1]; ++oh) {
            const int64_t ih = oh * g.stride[1] - g.pad_begin[1] + kh * g.dil[1];
            T* o = row + (od * g.out[1] + oh) * g.out[2];
            if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1]) {
              std::fill(o, o + g.out[2], T(0));
              continue;
            }
            const T* xr = x + (id * g.in[1] + ih) * g.in[2];
            std::fill(o, o + lo, T(0));
            for (int64_t ow = lo; ow < hi; ++ow) o[ow] = xr[ow * g.stride[2] + off];
            std::fill(o + hi, o + g.out[2], T(0));
          }
        }
      }
    }
  }
}

// The adjoint of Im2ColChannel: adds the rows `src` into input plane `dx` (not cleared here).
template <typename T>
void Col2ImChannel(const T* src, const Geometry& g, T* dx) {
  const int64_t plane = g.out_size();
  for (int64_t kd = 0; kd < g.k[0]; ++kd) {
    for (int64_t kh = 0; kh < g.k[1]; ++kh) {
      for (int64_t kw = 0; kw < g.k[2]; ++kw) {
        const T* row = src + ((kd * g.k[1] + kh) * g.k[2] + kw) * plane;
        const int64_t off = kw * g.dil[2] - g.pad_begin[2];
        int64_t lo, hi;
        ValidRange(g.out[2], g.stride[2], off, g.in[2], &lo, &hi);
        for (int64_t od = 0; od < g.out[0]; ++od) {
          const int64_t id = od * g.stride[0] - g.pad_begin[0] + kd * g.dil[0];
          if (id < 0 || id >= g.in[0]) continue;
          for (int64_t oh = 0; oh < g.out[1]; ++oh) {
            const int64_t ih = oh * g.stride[1] - g.pad_begin[1] + kh * g.dil[1];
            if (ih < 0 || ih >= g.in[1]) continue;
            const T* r = row + (od * g.out[1] + oh) * g.out[2];
            T* xr = dx + (id * g.in[1] + ih) * g.in[2];
            for (int64_t ow = lo; ow < hi; ++ow) xr[ow * g.stride[2] + off] += r[ow];
          }
        }
      }
    }
  }
}

// Sum of n elements with eight partial sums (vectorisable; error like a pairwise sum's).
template <typename T>
double SumPlane(const T* p, int64_t n) {
  T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += p[i + j];
  }
  for (; i < n; ++i) acc[i & 7] += p[i];
  double s = 0;
  for (T a : acc) s += static_cast<double>(a);
  return s;
}

// Per sample s and group gi (Kg = Cg * kvol rows of the im2col matrix col [C * kvol, P]):
//   dW_g [Mg, Kg] += dY_g [Mg, P] x col_g^T [P, Kg]
//   dcol_g [Kg, P] = W_g^T [Kg, Mg] x dY_g [Mg, P], then col2im into dX_s
// Samples are split into fixed ranges with private dW accumulators summed in range order, so
// the result does not depend on thread timing.
template <typename T>
Status ConvGradImpl(KernelContext& ctx, const Geometry& g, int64_t group) {
  const TensorView& dY = *ctx.in(0);
  const TensorView& X = *ctx.in(1);
  const TensorView& W = *ctx.in(2);
  TensorView* dX = ctx.out(0);
  TensorView* dW = ctx.out(1);
  TensorView* dB = ctx.out(2);
  ThreadPool* pool = ctx.pool;
  const int64_t N = X.dims[0], C = X.dims[1], M = W.dims[0];
  const int64_t Cg = C / group, Mg = M / group, kvol = g.kernel_size(), Kg = Cg * kvol;
  const int64_t P = g.out_size(), Pin = g.in_size();
  if (!GemmDimsFit(Mg, Kg, P, P, P, Kg) || !GemmDimsFit(Kg, P, Mg, Kg, P, P)) {
    return Unimplemented("ConvGrad too large for BLAS");
  }
  ComputeIn<T> dyin(dY, pool);
  const T* dy = dyin.get();
  const T* x = nullptr;
  const T* w = nullptr;
  std::optional<ComputeIn<T>> xin, win;
  if (dW) x = xin.emplace(X, pool).get();
  if (dX) w = win.emplace(W, pool).get();
  bool direct = kvol == 1;  // a 1x1 stride-1 unpadded conv: X is its own im2col matrix
  for (int i = 0; i < 3; ++i) {
    direct = direct && g.stride[i] == 1 && g.pad_begin[i] == 0 && g.out[i] == g.in[i];
  }
  std::optional<ComputeOut<T>> dxout, dwout;
  T* dx = dX ? dxout.emplace(*dX).get() : nullptr;
  T* dw = dW ? dwout.emplace(*dW).get() : nullptr;

  const int64_t threads = pool ? pool->size() : 1;
  const int64_t ranges = std::max<int64_t>(1, std::min(N, threads));
  const int64_t wsize = M * Kg;
  std::vector<T> partial(dW ? static_cast<size_t>((ranges - 1) * wsize) : 0);
  auto sample_grads = [&](int64_t s, T* dw_acc, T* col, bool split_gemms) {
    const T* dys = dy + s * M * P;
    if (dW) {
      if (!direct) {
        ParallelFor(split_gemms ? pool : nullptr, C, 1, [&](int64_t c0, int64_t c1) {
          for (int64_t c = c0; c < c1; ++c) {
            Im2ColChannel(x + (s * C + c) * Pin, g, col + c * kvol * P);
          }
        });
      }
      for (int64_t gi = 0; gi < group; ++gi) {
        const T* cg = direct ? x + (s * C + gi * Cg) * Pin : col + gi * Kg * P;
        if (split_gemms) {
          ParallelGemm(false, true, Mg, Kg, P, T(1), dys + gi * Mg * P, P, cg, P, T(1),
                       dw_acc + gi * Mg * Kg, Kg, pool);
        } else {
          GemmT(false, true, Mg, Kg, P, T(1), dys + gi * Mg * P, P, cg, P, T(1),
                dw_acc + gi * Mg * Kg, Kg);
        }
      }
    }
    if (dX) {
      T* dxs = dx + s * C * Pin;
      for (int64_t gi = 0; gi < group; ++gi) {
        T* dst = direct ? dxs + gi * Cg * Pin : col + gi * Kg * P;
        if (split_gemms) {
          ParallelGemm(true, false, Kg, P, Mg, T(1), w + gi * Mg * Kg, Kg, dys + gi * Mg * P, P,
                       T(0), dst, P, pool);
        } else {
          GemmT(true, false, Kg, P, Mg, T(1), w + gi * Mg * Kg, Kg, dys + gi * Mg * P, P, T(0), dst,
                P);
        }
      }
      if (!direct) {
        ParallelFor(split_gemms ? pool : nullptr, C, 1, [&](int64_t c0, int64_t c1) {
          for (int64_t c = c0; c < c1; ++c) {
            std::fill(dxs + c * Pin, dxs + (c + 1) * Pin, T(0));
            Col2ImChannel(col + c * kvol * P, g, dxs + c * Pin);
          }
        });
      }
    }
  };
  if (dw) std::fill(dw, dw + wsize, T(0));
  const int64_t col_size = direct ? 0 : C * kvol * P;
  if (N >= threads) {  // whole samples per thread
    ParallelFor(pool, ranges, 1, [&](int64_t b, int64_t e) {
      std::vector<T> col(static_cast<size_t>(col_size));
      for (int64_t r = b; r < e; ++r) {
        T* acc = dw ? (r == 0 ? dw : partial.data() + (r - 1) * wsize) : nullptr;
        for (int64_t s = N * r / ranges; s < N * (r + 1) / ranges; ++s) {
          sample_grads(s, acc, col.data(), false);
        }
      }
    });
    for (int64_t r = 1; dw && r < ranges; ++r) {
      const T* p = partial.data() + (r - 1) * wsize;
      for (int64_t i = 0; i < wsize; ++i) dw[i] += p[i];
    }
  } else {  // few samples: GEMMs and im2col split across the pool
    std::vector<T> col(static_cast<size_t>(col_size));
    for (int64_t s = 0; s < N; ++s) sample_grads(s, dw, col.data(), true);
  }
  if (dxout) dxout->Finish(pool);
  if (dwout) dwout->Finish(pool);
  if (dB) {
    std::vector<double> sums(static_cast<size_t>(M));
    ParallelFor(pool, M, 1, [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) {
        double sum = 0;  // planes summed in double
        for (int64_t s = 0; s < N; ++s) sum += SumPlane(dy + (s * M + m) * P, P);
        sums[m] = sum;
      }
    });
    for (int64_t m = 0; m < M; ++m) Store<double>(*dB, m, sums[m]);
  }
  return Status::Ok();
}

Status ConvGradKernel(KernelContext& ctx) {
  const TensorView* dY = ctx.in(0);
  const TensorView* X = ctx.in(1);
  const TensorView* W = ctx.in(2);
  if (!dY || !X || !W) return InvalidArgument("ConvGrad needs inputs dY, X and W");
  TensorView* dX = ctx.out(0);
  TensorView* dW = ctx.out(1);
  TensorView* dB = ctx.out(2);
  RETURN_IF_ERROR(RequireFloatViews(ctx, {dY, X, W, dX, dW, dB}));
  if (X->rank() < 3 || W->rank() != X->rank() || dY->rank() != X->rank()) {
    return InvalidArgument("ConvGrad: dY " + DimsToString(dY->dims) + ", X " +
                           DimsToString(X->dims) + " and W " + DimsToString(W->dims) +
                           " must have the same rank >= 3");
  }
  const int64_t group = ctx.attr_int("group", 1);
  const int64_t C = X->dims[1], M = W->dims[0];
  if (group < 1 || C != W->dims[1] * group || M % group != 0 || dY->dims[0] != X->dims[0] ||
      dY->dims[1] != M) {
    return InvalidArgument("ConvGrad: X " + DimsToString(X->dims) + " and W " +
                           DimsToString(W->dims) + " do not match for group " + S(group) +
                           " and dY " + DimsToString(dY->dims));
  }
  if (dX && dX->dims != X->dims) return InvalidArgument("ConvGrad: dX must be shaped like X");
  if (dW && dW->dims != W->dims) return InvalidArgument("ConvGrad: dW must be shaped like W");
  if (dB && (dB->rank() != 1 || dB->dims[0] != M)) {
    return InvalidArgument("ConvGrad: dB must be [" + S(M) + "]");
  }
  const std::vector<int64_t> kernel = Spatial(W->dims);
  if (std::vector<int64_t> ks = ctx.attr_ints("kernel_shape"); !ks.empty() && ks != kernel) {
    return InvalidArgument("ConvGrad: kernel_shape does not match W " + DimsToString(W->dims));
  }
  ASSIGN_OR_RETURN(Geometry g, ReadGeometry(ctx, Spatial(X->dims), Spatial(dY->dims), kernel));
  // dY's spatial dims must be the forward output's: every window must fit the padded input.
  for (int i = 0; i < 3; ++i) {
    const int64_t last = (g.out[i] - 1) * g.stride[i] + (g.k[i] - 1) * g.dil[i];
    if (g.out[i] > 0 && last >= g.in[i] + g.pad_begin[i] + g.pad_end[i]) {
      return InvalidArgument("ConvGrad: dY " + DimsToString(dY->dims) +
                             " is larger than the convolution of X " + DimsToString(X->dims));
    }
  }
  if (X->dtype == DType::kFloat64) return ConvGradImpl<double>(ctx, g, group);
  return ConvGradImpl<float>(ctx, g, group);
}

// ------------------------------------------------------------------------------------ Pooling

// Per spatial dim and output index: the window's first input index (base), its valid taps
// [lo, hi), and how many taps fall inside the padded input (count_include_pad).
struct Windows {
  std::vector<int64_t> base[3], lo[3], hi[3], padded_count[3];
};

Windows MakeWindows(const Geometry& g) {
  Windows w;
  for (int i = 0; i < 3; ++i) {
    for (int64_t o = 0; o < g.out[i]; ++o) {
      const int64_t base = o * g.stride[i] - g.pad_begin[i];
      int64_t lo, hi, plo, phi;
      ValidRange(g.k[i], g.dil[i], base, g.in[i], &lo, &hi);
      ValidRange(g.k[i], g.dil[i], base + g.pad_begin[i], g.in[i] + g.pad_begin[i] + g.pad_end[i],
                 &plo, &phi);
      w.base[i].push_back(base);
      w.lo[i].push_back(lo);
      w.hi[i].push_back(hi);
      w.padded_count[i].push_back(phi - plo);
    }
  }
  return w;
}

// Calls fn(flat output index, od, oh, ow) for every output position of one plane.
template <typename Fn>
void ForEachWindow(const Geometry& g, const Windows& w, Fn&& fn) {
  for (int64_t od = 0; od < g.out[0]; ++od) {
    for (int64_t oh = 0; oh < g.out[1]; ++oh) {
      for (int64_t ow = 0; ow < g.out[2]; ++ow) {
        fn((od * g.out[1] + oh) * g.out[2] + ow, od, oh, ow);
      }
    }
  }
}

template <typename T>
void MaxPoolGradPlane(const T* x, const T* dy, const Geometry& g, const Windows& w, T* dx) {
  ForEachWindow(g, w, [&](int64_t o, int64_t od, int64_t oh, int64_t ow) {
    T best = 0;
    int64_t bi = -1;
    for (int64_t kd = w.lo[0][od]; kd < w.hi[0][od]; ++kd) {
      const int64_t id = w.base[0][od] + kd * g.dil[0];
      for (int64_t kh = w.lo[1][oh]; kh < w.hi[1][oh]; ++kh) {
        const int64_t row = (id * g.in[1] + w.base[1][oh] + kh * g.dil[1]) * g.in[2];
        for (int64_t kw = w.lo[2][ow]; kw < w.hi[2][ow]; ++kw) {
          const int64_t at = row + w.base[2][ow] + kw * g.dil[2];
          const T v = x[at];
          // Strictly greater keeps the first maximum; the first NaN wins, as in PyTorch.
          if (bi < 0 || v > best || (v != v && best == best)) {
            best = v;
            bi = at;
          }
        }
      }
    }
    if (bi >= 0) dx[bi] += dy[o];
  });
}

template <typename T>
void AvgPoolGradPlane(const T* dy, const Geometry& g, const Windows& w, bool include_pad, T* dx) {
  ForEachWindow(g, w, [&](int64_t o, int64_t od, int64_t oh, int64_t ow) {
    const int64_t count =
        include_pad ? w.padded_count[0][od] * w.padded_count[1][oh] * w.padded_count[2][ow]
                    : (w.hi[0][od] - w.lo[0][od]) * (w.hi[1][oh] - w.lo[1][oh]) *
                          (w.hi[2][ow] - w.lo[2][ow]);
    if (count <= 0) return;
    const T share = dy[o] / static_cast<T>(count);
    for (int64_t kd = w.lo[0][od]; kd < w.hi[0][od]; ++kd) {
      const int64_t id = w.base[0][od] + kd * g.dil[0];
      for (int64_t kh = w.lo[1][oh]; kh < w.hi[1][oh]; ++kh) {
        T* row = dx + (id * g.in[1] + w.base[1][oh] + kh * g.dil[1]) * g.in[2];
        for (int64_t kw = w.lo[2][ow]; kw < w.hi[2][ow]; ++kw) {
          row[w.base[2][ow] + kw * g.dil[2]] += share;
        }
      }
    }
  });
}

// Checks dY against dX (N, C equal, same rank) and reads the pool geometry.
StatusOr<Geometry> PoolGradGeometry(const KernelContext& ctx, const TensorView& dY,
                                    const TensorView& dX) {
  if (dX.rank() < 3 || dY.rank() != dX.rank() || dY.dims[0] != dX.dims[0] ||
      dY.dims[1] != dX.dims[1]) {
    return InvalidArgument(ctx.op + ": dY " + DimsToString(dY.dims) + " and dX " +
                           DimsToString(dX.dims) + " do not match (N, C, spatial...)");
  }
  const std::vector<int64_t> kernel = ctx.attr_ints("kernel_shape");
  if (static_cast<int64_t>(kernel.size()) != dX.rank() - 2) {
    return InvalidArgument(ctx.op + ": kernel_shape must have " + S(dX.rank() - 2) + " values");
  }
  return ReadGeometry(ctx, Spatial(dX.dims), Spatial(dY.dims), kernel);
}

template <typename T>
void PoolGradImpl(KernelContext& ctx, const Geometry& g, const TensorView* X, bool include_pad) {
  const TensorView& dY = *ctx.in(0);
  TensorView& dX = *ctx.out(0);
  const Windows w = MakeWindows(g);
  const int64_t planes = dX.dims[0] * dX.dims[1], in = g.in_size(), out = g.out_size();
  ComputeIn<T> dyin(dY, ctx.pool);
  std::optional<ComputeIn<T>> xin;
  if (X) xin.emplace(*X, ctx.pool);
  ComputeOut<T> dxout(dX);
  T* dx = dxout.get();
  ParallelFor(ctx.pool, planes, 1, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      std::fill(dx + p * in, dx + (p + 1) * in, T(0));
      if (X) {
        MaxPoolGradPlane(xin->get() + p * in, dyin.get() + p * out, g, w, dx + p * in);
      } else {
        AvgPoolGradPlane(dyin.get() + p * out, g, w, include_pad, dx + p * in);
      }
    }
  });
  dxout.Finish(ctx.pool);
}

Status MaxPoolGradKernel(KernelContext& ctx) {
  const TensorView* dY = ctx.in(0);
  const TensorView* X = ctx.in(1);
  TensorView* dX = ctx.out(0);
  if (!dY || !X || !dX) return InvalidArgument("MaxPoolGrad needs inputs dY, X and output dX");
  RETURN_IF_ERROR(RequireFloatViews(ctx, {dY, X, dX}));
  if (dX->dims != X->dims) return InvalidArgument("MaxPoolGrad: dX must be shaped like X");
  ASSIGN_OR_RETURN(Geometry g, PoolGradGeometry(ctx, *dY, *dX));
  if (X->dtype == DType::kFloat64) {
    PoolGradImpl<double>(ctx, g, X, false);
  } else {
    PoolGradImpl<float>(ctx, g, X, false);
  }
  return Status::Ok();
}

Status AveragePoolGradKernel(KernelContext& ctx) {
  const TensorView* dY = ctx.in(0);
  const TensorView* shape = ctx.in(1);
  TensorView* dX = ctx.out(0);
  if (!dY || !shape || !dX) {
    return InvalidArgument("AveragePoolGrad needs inputs dY, x_shape and output dX");
  }
  RETURN_IF_ERROR(RequireFloatViews(ctx, {dY, dX}));
  if (shape->dtype != DType::kInt64 || shape->rank() != 1 || shape->dims[0] != dX->rank() ||
      !std::equal(dX->dims.begin(), dX->dims.end(), shape->as<const int64_t>())) {
    return InvalidArgument("AveragePoolGrad: x_shape must be an i64 vector equal to dX's shape " +
                           DimsToString(dX->dims));
  }
  ASSIGN_OR_RETURN(Geometry g, PoolGradGeometry(ctx, *dY, *dX));
  const bool include_pad = ctx.attr_int("count_include_pad", 0) != 0;
  if (dX->dtype == DType::kFloat64) {
    PoolGradImpl<double>(ctx, g, nullptr, include_pad);
  } else {
    PoolGradImpl<float>(ctx, g, nullptr, include_pad);
  }
  return Status::Ok();
}

}  // namespace

void RegisterWindowGradKernels(KernelRegistry& r) {
  r.Register(kAmpcDomain, "ConvGrad", ConvGradKernel);
  r.Register(kAmpcDomain, "MaxPoolGrad", MaxPoolGradKernel);
  r.Register(kAmpcDomain, "AveragePoolGrad", AveragePoolGradKernel);
}

}  // namespace ampc::cpu
