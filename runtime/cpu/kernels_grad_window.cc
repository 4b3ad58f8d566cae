// CPU kernels for the backward ops of sliding-window ops (ir/ops/grad_ops.cc): ConvGrad (im2col
// + GEMM for dW, GEMM + col2im for dX), MaxPoolGrad (dY routed to the first maximum of each
// window, PyTorch's CPU tie rule) and AveragePoolGrad (dY spread over each window). The window
// geometry follows the forward kernels (runtime/cpu/kernels_conv.cc) exactly: spatial ranks 1 to 3
// padded to 3-D, SAME pads derived from the output size, pool windows clipped to the input.
// Half tensors are widened to fp32, accumulated in fp32 and rounded once per output.
#include <algorithm>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "ir/op_registry.h"
#include "runtime/cpu/conv_small.h"
#include "runtime/cpu/convert.h"
#include "runtime/cpu/dnnl_conv.h"
#include "runtime/cpu/gemm.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/maxpool_2x2.h"
#include "runtime/cpu/sums.h"
#include "runtime/cpu/thread_pool.h"
#include "runtime/cpu/window.h"

namespace ampc::cpu {
namespace {

using window::Col2ImChannel;
using window::Conv2d;
using window::DenseWalk2D;
using window::Describe;
using window::Geometry;
using window::Im2ColChannel;
using window::MaxPoolGrad2x2Plane;
using window::ReadGeometry;
using window::RequireFloatTypes;
using window::Spatial;
using window::ValidRange;
using window::WindowCount;
using window::WithWalk;

std::string S(int64_t v) { return std::to_string(v); }

// ----------------------------------------------------------------------------------- ConvGrad

// Per sample s and group gi (Kg = Cg * kvol rows of the im2col matrix col [C * kvol, P]):
//   dW_g [Mg, Kg] += dY_g [Mg, P] x col_g^T [P, Kg]
//   dcol_g [Kg, P] = W_g^T [Kg, Mg] x dY_g [Mg, P], then col2im into dX_s
// Samples are split into fixed ranges with private dW accumulators summed in range order, so
// the result does not depend on thread timing.
// dB[m]: each of dY's channel-m planes summed in double (sums::SumOf), added in sample order. Half
// planes are widened to f32 first (exactly), so every dtype and path sums the same values.
void ConvBiasGrad(const TensorView& dY, TensorView& dB, ThreadPool* pool) {
  const int64_t N = dY.dims[0], M = dY.dims[1], P = dY.NumElements() / std::max<int64_t>(N * M, 1);
  std::vector<double> out(static_cast<size_t>(M));
  ParallelFor(pool, M, 1, [&](int64_t m0, int64_t m1) {
    std::vector<float> plane;
    for (int64_t m = m0; m < m1; ++m) {
      double sum = 0;
      for (int64_t s = 0; s < N; ++s) {
        const int64_t at = (s * M + m) * P;
        if (dY.dtype == DType::kFloat64) {
          sum += sums::SumOf(dY.as<const double>() + at, P);
        } else if (dY.dtype == DType::kFloat32) {
          sum += sums::SumOf(dY.as<const float>() + at, P);
        } else {
          plane.resize(static_cast<size_t>(P));
          for (int64_t i = 0; i < P; ++i) plane[static_cast<size_t>(i)] = Load<float>(dY, at + i);
          sum += sums::SumOf(plane.data(), P);
        }
      }
      out[static_cast<size_t>(m)] = sum;
    }
  });
  for (int64_t m = 0; m < M; ++m) Store<double>(dB, m, out[static_cast<size_t>(m)]);
}

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
            Col2ImChannel(col + c * kvol * P, g, g.out, g.in, dxs + c * Pin);
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
  if (dB) ConvBiasGrad(dY, *dB, pool);
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
  RETURN_IF_ERROR(RequireFloatTypes(ctx, {dY, X, W, dX, dW, dB}));
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
  // Every view has X's dtype (RequireFloatTypes above).
  const DType t = X->dtype;
  if (const std::optional<Conv2d> c = Describe(X->dims, W->dims, g, group)) {
    // A first layer (its input is data: no dX) with few input taps, f32: the direct dW kernel
    // (conv_small.h).
    if (!dX && dW && t == DType::kFloat32 &&
        conv_small::WeightGrad(*c, dY->as<const float>(), X->as<const float>(), dW->as<float>(),
                               ctx.pool)) {
      if (dB) ConvBiasGrad(*dY, *dB, ctx.pool);
      return Status::Ok();
    }
    // f32 or bf16: oneDNN's direct convolution where it has a jit kernel (dnnl_conv.h).
    if (t == DType::kFloat32 || t == DType::kBFloat16) {
      std::vector<float> dw(static_cast<size_t>(W->NumElements()));
      if (dnnl_conv::Backward(t, *c, dY->data, X->data, W->data, dX ? dX->data : nullptr, dw.data(),
                              ctx.pool)) {
        if (dW) {
          for (int64_t i = 0; i < W->NumElements(); ++i) Store<float>(*dW, i, dw[i]);
        }
        if (dB) ConvBiasGrad(*dY, *dB, ctx.pool);
        return Status::Ok();
      }
    }
  }
  if (X->dtype == DType::kFloat64) return ConvGradImpl<double>(ctx, g, group);
  return ConvGradImpl<float>(ctx, g, group);
}

// ------------------------------------------------------------------------------------ Pooling

// Calls fn(flat output index, od, oh, ow) for every output position of one plane.
template <typename Fn>
void ForEachWindow(const Geometry& g, Fn&& fn) {
  for (int64_t od = 0; od < g.out[0]; ++od) {
    for (int64_t oh = 0; oh < g.out[1]; ++oh) {
      for (int64_t ow = 0; ow < g.out[2]; ++ow) {
        fn((od * g.out[1] + oh) * g.out[2] + ow, od, oh, ow);
      }
    }
  }
}

template <typename T, typename Walk>
void MaxPoolGradPlane(const T* x, const T* dy, const Geometry& g, const Walk& w, T* dx) {
  ForEachWindow(g, [&](int64_t o, int64_t od, int64_t oh, int64_t ow) {
    T best = 0;
    int64_t bi = -1;
    for (int64_t kd = w.lo(0, od); kd < w.hi(0, od); ++kd) {
      const int64_t id = w.base(0, od) + kd * w.dil(0);
      for (int64_t kh = w.lo(1, oh); kh < w.hi(1, oh); ++kh) {
        const int64_t row = (id * g.in[1] + w.base(1, oh) + kh * w.dil(1)) * g.in[2];
        for (int64_t kw = w.lo(2, ow); kw < w.hi(2, ow); ++kw) {
          const int64_t at = row + w.base(2, ow) + kw * w.dil(2);
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

template <typename T, typename Walk>
void AvgPoolGradPlane(const T* dy, const Geometry& g, const Walk& w, bool include_pad, T* dx) {
  ForEachWindow(g, [&](int64_t o, int64_t od, int64_t oh, int64_t ow) {
    const int64_t count = WindowCount(w, include_pad, od, oh, ow);
    if (count <= 0) return;
    const T share = dy[o] / static_cast<T>(count);
    for (int64_t kd = w.lo(0, od); kd < w.hi(0, od); ++kd) {
      const int64_t id = w.base(0, od) + kd * w.dil(0);
      for (int64_t kh = w.lo(1, oh); kh < w.hi(1, oh); ++kh) {
        T* row = dx + (id * g.in[1] + w.base(1, oh) + kh * w.dil(1)) * g.in[2];
        for (int64_t kw = w.lo(2, ow); kw < w.hi(2, ow); ++kw) {
          row[w.base(2, ow) + kw * w.dil(2)] += share;
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
  const int64_t planes = dX.dims[0] * dX.dims[1], in = g.in_size(), out = g.out_size();
  ComputeIn<T> dyin(dY, ctx.pool);
  std::optional<ComputeIn<T>> xin;
  if (X) xin.emplace(*X, ctx.pool);
  ComputeOut<T> dxout(dX);
  T* dx = dxout.get();
  WithWalk(g, [&](const auto& w) {
    constexpr bool k2 =
        std::is_same_v<std::decay_t<decltype(w)>, DenseWalk2D<2, 2>> && std::is_same_v<T, float>;
    ParallelFor(ctx.pool, planes, 1, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        if constexpr (k2) {  // the 2x2/2 pool's gradient, 8 windows at a time (AVX2)
          if (X && MaxPoolGrad2x2Plane(xin->get() + p * in, dyin.get() + p * out, g, dx + p * in)) {
            continue;
          }
        }
        std::fill(dx + p * in, dx + (p + 1) * in, T(0));
        if (X) {
          MaxPoolGradPlane(xin->get() + p * in, dyin.get() + p * out, g, w, dx + p * in);
        } else {
          AvgPoolGradPlane(dyin.get() + p * out, g, w, include_pad, dx + p * in);
        }
      }
    });
  });
  dxout.Finish(ctx.pool);
}

Status MaxPoolGradKernel(KernelContext& ctx) {
  const TensorView* dY = ctx.in(0);
  const TensorView* X = ctx.in(1);
  TensorView* dX = ctx.out(0);
  if (!dY || !X || !dX) return InvalidArgument("MaxPoolGrad needs inputs dY, X and output dX");
  RETURN_IF_ERROR(RequireFloatTypes(ctx, {dY, X, dX}));
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
  RETURN_IF_ERROR(RequireFloatTypes(ctx, {dY, dX}));
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
