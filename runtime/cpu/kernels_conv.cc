// CPU kernels for sliding-window ops: Conv (im2col + GEMM per group), ConvTranspose (GEMM +
// col2im), MaxPool (with optional Indices), AveragePool, GlobalAveragePool and GlobalMaxPool.
// Spatial ranks 1 to 3 are handled by padding the geometry to 3-D with leading size-1 dims.
// Output shapes come precomputed (ir/ops/nn.cc); the geometry here mirrors its attribute rules.
// Every input read is range-checked against the input's dims, so odd output sizes cannot make a
// kernel read outside its buffers.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "runtime/cpu/conv_small.h"
#include "runtime/cpu/convert.h"
#include "runtime/cpu/dnnl_conv.h"
#include "runtime/cpu/gemm.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/maxpool_2x2.h"
#include "runtime/cpu/thread_pool.h"
#include "runtime/cpu/window.h"

namespace ampc::cpu {
namespace {

using window::Col2ImChannel;
using window::DenseWalk2D;
using window::Geometry;
using window::Im2ColChannel;
using window::IntsAttr;
using window::MaxPool2x2Plane;
using window::ReadGeometry;
using window::RequireFloatTypes;
using window::Spatial;
using window::ValidRange;
using window::WindowCount;
using window::WithWalk;

std::string S(int64_t v) { return std::to_string(v); }

// ------------------------------------------------------------------------------------- Conv

template <typename T>
Status ConvImpl(KernelContext& ctx, const Geometry& g, int64_t group) {
  const TensorView& X = *ctx.in(0);
  const TensorView& W = *ctx.in(1);
  const TensorView* B = ctx.in(2);
  TensorView& Y = *ctx.out(0);
  ThreadPool* pool = ctx.pool;
  const int64_t N = X.dims[0], C = X.dims[1], M = W.dims[0];
  const int64_t Cg = C / group, Mg = M / group, kvol = g.kernel_size(), Kg = Cg * kvol;
  const int64_t P = g.out_size(), Pin = g.in_size();
  if (!GemmDimsFit(Mg, P, Kg, Kg, P, P)) return Unimplemented("Conv too large for BLAS");
  ComputeIn<T> xin(X, pool), win(W, pool);
  const T* x = xin.get();
  const T* w = win.get();
  std::vector<T> bias;
  if (B) {
    bias.resize(static_cast<size_t>(M));
    for (int64_t m = 0; m < M; ++m) bias[m] = Load<T>(*B, m);
  }
  ComputeOut<T> yout(Y);
  T* y = yout.get();
  bool direct = kvol == 1;  // a 1x1 convolution reads X as its own im2col matrix
  for (int i = 0; i < 3; ++i) {
    direct = direct && g.stride[i] == 1 && g.pad_begin[i] == 0 && g.out[i] == g.in[i];
  }
  const int64_t per_sample = direct ? 0 : C * kvol * P;
  // Sample s, group gi: Y[s, gi*Mg : (gi+1)*Mg] [Mg, P] = W_g [Mg, Kg] x col_g [Kg, P].
  auto im2col = [&](int64_t s, int64_t c0, int64_t c1, T* col) {
    for (int64_t c = c0; c < c1; ++c) Im2ColChannel(x + (s * C + c) * Pin, g, col + c * kvol * P);
  };
  auto bmat = [&](int64_t s, int64_t gi, const T* col) {
    return direct ? x + (s * C + gi * Cg) * Pin : col + gi * Cg * kvol * P;
  };
  auto add_bias = [&](int64_t s, int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      T* plane = y + (s * M + m) * P;
      for (int64_t p = 0; p < P; ++p) plane[p] += bias[m];
    }
  };
  const int64_t threads = pool ? pool->size() : 1;
  if (N >= threads) {  // whole samples per thread: im2col stays in cache for its GEMM
    ParallelFor(pool, N, 1, [&](int64_t b, int64_t e) {
      std::vector<T> col(static_cast<size_t>(per_sample));
      for (int64_t s = b; s < e; ++s) {
        if (!direct) im2col(s, 0, C, col.data());
        for (int64_t gi = 0; gi < group; ++gi) {
          GemmT(false, false, Mg, P, Kg, T(1), w + gi * Mg * Kg, Kg, bmat(s, gi, col.data()), P,
                T(0), y + (s * M + gi * Mg) * P, P);
        }
        if (B) add_bias(s, 0, M);
      }
    });
  } else {  // few samples: parallel im2col, GEMMs split across the pool
    std::vector<T> col(static_cast<size_t>(per_sample));
    for (int64_t s = 0; s < N; ++s) {
      if (!direct) {
        ParallelFor(pool, C, 1, [&](int64_t c0, int64_t c1) { im2col(s, c0, c1, col.data()); });
      }
      for (int64_t gi = 0; gi < group; ++gi) {
        ParallelGemm(false, false, Mg, P, Kg, T(1), w + gi * Mg * Kg, Kg, bmat(s, gi, col.data()),
                     P, T(0), y + (s * M + gi * Mg) * P, P, pool);
      }
      if (B) ParallelFor(pool, M, 4, [&](int64_t m0, int64_t m1) { add_bias(s, m0, m1); });
    }
  }
  yout.Finish(pool);
  return Status::Ok();
}

Status ConvKernel(KernelContext& ctx) {
  const TensorView* X = ctx.in(0);
  const TensorView* W = ctx.in(1);
  TensorView* Y = ctx.out(0);
  if (!X || !W || !Y) return InvalidArgument("Conv needs inputs X, W and output Y");
  RETURN_IF_ERROR(RequireFloatTypes(ctx, {X, W, ctx.in(2), Y}));
  if (X->rank() < 3 || W->rank() != X->rank() || Y->rank() != X->rank()) {
    return InvalidArgument("Conv: X " + DimsToString(X->dims) + ", W " + DimsToString(W->dims) +
                           " and Y " + DimsToString(Y->dims) + " must have the same rank >= 3");
  }
  const int64_t group = ctx.attr_int("group", 1);
  const int64_t C = X->dims[1], M = W->dims[0];
  if (group < 1 || C != W->dims[1] * group || M % group != 0 || Y->dims[0] != X->dims[0] ||
      Y->dims[1] != M) {
    return InvalidArgument("Conv: X " + DimsToString(X->dims) + " and W " + DimsToString(W->dims) +
                           " do not match for group " + S(group) + " and output " +
                           DimsToString(Y->dims));
  }
  if (const TensorView* B = ctx.in(2); B && (B->rank() != 1 || B->dims[0] != M)) {
    return InvalidArgument("Conv: bias " + DimsToString(B->dims) + " must be [" + S(M) + "]");
  }
  const std::vector<int64_t> kernel = Spatial(W->dims);
  if (std::vector<int64_t> ks = ctx.attr_ints("kernel_shape"); !ks.empty() && ks != kernel) {
    return InvalidArgument("Conv: kernel_shape does not match W " + DimsToString(W->dims));
  }
  ASSIGN_OR_RETURN(Geometry g,
                   ReadGeometry(ctx, Spatial(X->dims), Spatial(Y->dims), kernel, false));
  // 2-D (every view has X's dtype: RequireFloatTypes above).
  const TensorView* B = ctx.in(2);
  if (const std::optional<window::Conv2d> c = window::Describe(X->dims, W->dims, g, group)) {
    std::vector<float> bias;
    if (B) {
      for (int64_t m = 0; m < M; ++m) bias.push_back(Load<float>(*B, m));
    }
    // Few input taps (a first layer), f32: the direct kernels (conv_small.h); f32 or bf16:
    // oneDNN's direct convolution where it has a jit kernel (dnnl_conv.h).
    if (X->dtype == DType::kFloat32 &&
        conv_small::Forward(*c, X->as<const float>(), W->as<const float>(),
                            B ? bias.data() : nullptr, Y->as<float>(), ctx.pool)) {
      return Status::Ok();
    }
    if (dnnl_conv::Forward(X->dtype, *c, X->data, W->data, B ? bias.data() : nullptr, Y->data,
                           ctx.pool)) {
      return Status::Ok();
    }
  }
  if (X->dtype == DType::kFloat64) return ConvImpl<double>(ctx, g, group);
  return ConvImpl<float>(ctx, g, group);
}

// ---------------------------------------------------------------------------- ConvTranspose

template <typename T>
Status ConvTransposeImpl(KernelContext& ctx, const Geometry& g, int64_t group) {
  const TensorView& X = *ctx.in(0);
  const TensorView& W = *ctx.in(1);
  const TensorView* B = ctx.in(2);
  TensorView& Y = *ctx.out(0);
  ThreadPool* pool = ctx.pool;
  const int64_t N = X.dims[0], Cin = X.dims[1], Mgo = W.dims[1], Cout = Mgo * group;
  const int64_t Cig = Cin / group, kvol = g.kernel_size(), rows = Mgo * kvol;
  const int64_t P = g.out_size(), Pin = g.in_size();
  if (!GemmDimsFit(rows, Pin, Cig, rows, Pin, Pin)) {
    return Unimplemented("ConvTranspose too large for BLAS");
  }
  ComputeIn<T> xin(X, pool), win(W, pool);
  const T* x = xin.get();
  const T* w = win.get();
  ComputeOut<T> yout(Y);
  T* y = yout.get();
  ParallelFor(pool, N * Cout, 4, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T v = B ? Load<T>(*B, r % Cout) : T(0);
      std::fill(y + r * P, y + (r + 1) * P, v);
    }
  });
  // Sample n, group gi: col [Mgo*kvol, Pin] = W_g^T [Mgo*kvol, Cig] x X_g [Cig, Pin], then
  // col2im adds each output channel's rows into its plane.
  auto wmat = [&](int64_t gi) { return w + gi * Cig * rows; };
  auto xmat = [&](int64_t n, int64_t gi) { return x + (n * Cin + gi * Cig) * Pin; };
  auto col2im = [&](int64_t n, int64_t gi, int64_t c0, int64_t c1, const T* col) {
    for (int64_t co = c0; co < c1; ++co) {
      Col2ImChannel(col + co * kvol * Pin, g, g.in, g.out, y + (n * Cout + gi * Mgo + co) * P);
    }
  };
  const int64_t threads = pool ? pool->size() : 1;
  if (N >= threads) {
    ParallelFor(pool, N, 1, [&](int64_t b, int64_t e) {
      std::vector<T> col(static_cast<size_t>(rows * Pin));
      for (int64_t n = b; n < e; ++n) {
        for (int64_t gi = 0; gi < group; ++gi) {
          GemmT(true, false, rows, Pin, Cig, T(1), wmat(gi), rows, xmat(n, gi), Pin, T(0),
                col.data(), Pin);
          col2im(n, gi, 0, Mgo, col.data());
        }
      }
    });
  } else {
    std::vector<T> col(static_cast<size_t>(rows * Pin));
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t gi = 0; gi < group; ++gi) {
        ParallelGemm(true, false, rows, Pin, Cig, T(1), wmat(gi), rows, xmat(n, gi), Pin, T(0),
                     col.data(), Pin, pool);
        ParallelFor(pool, Mgo, 1,
                    [&](int64_t c0, int64_t c1) { col2im(n, gi, c0, c1, col.data()); });
      }
    }
  }
  yout.Finish(pool);
  return Status::Ok();
}

Status ConvTransposeKernel(KernelContext& ctx) {
  const TensorView* X = ctx.in(0);
  const TensorView* W = ctx.in(1);
  TensorView* Y = ctx.out(0);
  if (!X || !W || !Y) return InvalidArgument("ConvTranspose needs inputs X, W and output Y");
  RETURN_IF_ERROR(RequireFloatTypes(ctx, {X, W, ctx.in(2), Y}));
  if (X->rank() < 3 || W->rank() != X->rank() || Y->rank() != X->rank()) {
    return InvalidArgument("ConvTranspose: X " + DimsToString(X->dims) + ", W " +
                           DimsToString(W->dims) + " and Y " + DimsToString(Y->dims) +
                           " must have the same rank >= 3");
  }
  const int64_t group = ctx.attr_int("group", 1);
  const int64_t Cin = X->dims[1], Cout = W->dims[1] * group;
  if (group < 1 || W->dims[0] != Cin || Cin % group != 0 || Y->dims[0] != X->dims[0] ||
      Y->dims[1] != Cout) {
    return InvalidArgument("ConvTranspose: X " + DimsToString(X->dims) + " and W " +
                           DimsToString(W->dims) + " do not match for group " + S(group) +
                           " and output " + DimsToString(Y->dims));
  }
  if (const TensorView* B = ctx.in(2); B && (B->rank() != 1 || B->dims[0] != Cout)) {
    return InvalidArgument("ConvTranspose: bias " + DimsToString(B->dims) + " must be [" + S(Cout) +
                           "]");
  }
  const std::vector<int64_t> kernel = Spatial(W->dims);
  if (std::vector<int64_t> ks = ctx.attr_ints("kernel_shape"); !ks.empty() && ks != kernel) {
    return InvalidArgument("ConvTranspose: kernel_shape does not match W " + DimsToString(W->dims));
  }
  ASSIGN_OR_RETURN(Geometry g, ReadGeometry(ctx, Spatial(X->dims), Spatial(Y->dims), kernel, true));
  if (X->dtype == DType::kFloat64) return ConvTransposeImpl<double>(ctx, g, group);
  return ConvTransposeImpl<float>(ctx, g, group);
}

// ---------------------------------------------------------------------------------- Pooling

// Max over each window of plane `x`; with kIdx, idx receives flattened input indices
// (plane_offset added; storage_order 1 flattens the spatial dims column-major). NaN propagates.
template <typename V, bool kIdx, typename Walk>
void MaxPoolPlane(const V* x, const Geometry& g, const Walk& w, V* y, int64_t* idx,
                  int64_t plane_offset, bool col_major) {
  const V init = std::numeric_limits<V>::has_infinity ? -std::numeric_limits<V>::infinity()
                                                      : std::numeric_limits<V>::lowest();
  const int64_t d0 = w.dil(0), d1 = w.dil(1), d2 = w.dil(2);
  for (int64_t od = 0; od < g.out[0]; ++od) {
    for (int64_t oh = 0; oh < g.out[1]; ++oh) {
      const int64_t o_row = (od * g.out[1] + oh) * g.out[2];
      for (int64_t ow = 0; ow < g.out[2]; ++ow) {
        V best = init;
        int64_t bi = -1;
        bool nan = false;
        for (int64_t kd = w.lo(0, od); kd < w.hi(0, od); ++kd) {
          const int64_t id = w.base(0, od) + kd * d0;
          for (int64_t kh = w.lo(1, oh); kh < w.hi(1, oh); ++kh) {
            const int64_t ih = w.base(1, oh) + kh * d1;
            const int64_t row = (id * g.in[1] + ih) * g.in[2];
            for (int64_t kw = w.lo(2, ow); kw < w.hi(2, ow); ++kw) {
              const int64_t iw = w.base(2, ow) + kw * d2;
              const V v = x[row + iw];
              // Branch-free selects: random data would mispredict a branch half the time.
              if constexpr (kIdx) {
                const bool take = (v > best) | (bi < 0) | (v != v);
                const int64_t at = col_major ? id + (ih + iw * g.in[1]) * g.in[0] : row + iw;
                best = take ? v : best;
                bi = take ? at : bi;
              } else {
                best = v > best ? v : best;
                nan |= v != v;
              }
            }
          }
        }
        if constexpr (kIdx) {
          y[o_row + ow] = best;
          idx[o_row + ow] = bi < 0 ? -1 : plane_offset + bi;
        } else {
          y[o_row + ow] = nan ? std::numeric_limits<V>::quiet_NaN() : best;
        }
      }
    }
  }
}

template <typename V>
void MaxPoolTyped(const V* x, V* y, int64_t* idx, int64_t planes, const Geometry& g, bool col_major,
                  ThreadPool* pool) {
  const int64_t in = g.in_size(), out = g.out_size();
  WithWalk(g, [&](const auto& w) {
    constexpr bool k2 =
        std::is_same_v<std::decay_t<decltype(w)>, DenseWalk2D<2, 2>> && std::is_same_v<V, float>;
    ParallelFor(pool, planes, 1, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        if constexpr (k2) {  // the 2x2/2 pool, 8 windows at a time (AVX2)
          if (!idx && MaxPool2x2Plane(x + p * in, g, y + p * out)) continue;
        }
        if (idx) {
          MaxPoolPlane<V, true>(x + p * in, g, w, y + p * out, idx + p * out, p * in, col_major);
        } else {
          MaxPoolPlane<V, false>(x + p * in, g, w, y + p * out, nullptr, 0, false);
        }
      }
    });
  });
}

template <typename T>
void AvgPoolTyped(const T* x, T* y, int64_t planes, const Geometry& g, bool include_pad,
                  ThreadPool* pool) {
  const int64_t in = g.in_size(), out = g.out_size();
  WithWalk(g, [&](const auto& w) {
    ParallelFor(pool, planes, 1, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        const T* xp = x + p * in;
        T* yp = y + p * out;
        for (int64_t od = 0; od < g.out[0]; ++od) {
          for (int64_t oh = 0; oh < g.out[1]; ++oh) {
            for (int64_t ow = 0; ow < g.out[2]; ++ow) {
              T sum = 0;
              for (int64_t kd = w.lo(0, od); kd < w.hi(0, od); ++kd) {
                const int64_t id = w.base(0, od) + kd * w.dil(0);
                for (int64_t kh = w.lo(1, oh); kh < w.hi(1, oh); ++kh) {
                  const T* row = xp + (id * g.in[1] + w.base(1, oh) + kh * w.dil(1)) * g.in[2];
                  for (int64_t kw = w.lo(2, ow); kw < w.hi(2, ow); ++kw) {
                    sum += row[w.base(2, ow) + kw * w.dil(2)];
                  }
                }
              }
              yp[(od * g.out[1] + oh) * g.out[2] + ow] =
                  sum / static_cast<T>(WindowCount(w, include_pad, od, oh, ow));
            }
          }
        }
      }
    });
  });
}

StatusOr<Geometry> PoolGeometry(const KernelContext& ctx, const TensorView& X,
                                const TensorView& Y) {
  if (X.rank() < 3 || Y.rank() != X.rank() || Y.dims[0] != X.dims[0] || Y.dims[1] != X.dims[1]) {
    return InvalidArgument(ctx.op + ": input " + DimsToString(X.dims) + " and output " +
                           DimsToString(Y.dims) + " do not match (N, C, spatial...)");
  }
  const std::vector<int64_t> kernel = ctx.attr_ints("kernel_shape");
  if (static_cast<int64_t>(kernel.size()) != X.rank() - 2) {
    return InvalidArgument(ctx.op + ": kernel_shape must have " + S(X.rank() - 2) + " values");
  }
  return ReadGeometry(ctx, Spatial(X.dims), Spatial(Y.dims), kernel, false);
}

Status MaxPoolKernel(KernelContext& ctx) {
  const TensorView* X = ctx.in(0);
  TensorView* Y = ctx.out(0);
  TensorView* I = ctx.out(1);
  if (!X || !Y) return InvalidArgument("MaxPool needs input X and output Y");
  if (Y->dtype != X->dtype) return InvalidArgument("MaxPool: Y's dtype differs from X's");
  if (I && (I->dtype != DType::kInt64 || I->dims != Y->dims)) {
    return InvalidArgument("MaxPool: Indices must be i64 shaped like Y");
  }
  ASSIGN_OR_RETURN(Geometry g, PoolGeometry(ctx, *X, *Y));
  const int64_t order = ctx.attr_int("storage_order", 0);
  if (order != 0 && order != 1) return InvalidArgument("storage_order must be 0 or 1");
  const int64_t planes = X->dims[0] * X->dims[1];
  int64_t* idx = I ? I->as<int64_t>() : nullptr;
  ThreadPool* pool = ctx.pool;
  switch (X->dtype) {
    case DType::kFloat64:
      MaxPoolTyped(X->as<const double>(), Y->as<double>(), idx, planes, g, order, pool);
      return Status::Ok();
    case DType::kFloat32:
    case DType::kFloat16:
    case DType::kBFloat16: {
      ComputeIn<float> x(*X, pool);
      ComputeOut<float> y(*Y);
      MaxPoolTyped(x.get(), y.get(), idx, planes, g, order, pool);
      y.Finish(pool);  // exact: every output is an input value
      return Status::Ok();
    }
    case DType::kInt64:
      MaxPoolTyped(X->as<const int64_t>(), Y->as<int64_t>(), idx, planes, g, order, pool);
      return Status::Ok();
    case DType::kInt32:
      MaxPoolTyped(X->as<const int32_t>(), Y->as<int32_t>(), idx, planes, g, order, pool);
      return Status::Ok();
    case DType::kInt8:
      MaxPoolTyped(X->as<const int8_t>(), Y->as<int8_t>(), idx, planes, g, order, pool);
      return Status::Ok();
    case DType::kUInt8:
      MaxPoolTyped(X->as<const uint8_t>(), Y->as<uint8_t>(), idx, planes, g, order, pool);
      return Status::Ok();
    default:
      return Unimplemented("MaxPool on " + std::string(DTypeName(X->dtype)));
  }
}

template <typename T>
void AveragePoolImpl(KernelContext& ctx, const Geometry& g, bool include_pad) {
  const TensorView& X = *ctx.in(0);
  ComputeIn<T> x(X, ctx.pool);
  ComputeOut<T> y(*ctx.out(0));
  AvgPoolTyped(x.get(), y.get(), X.dims[0] * X.dims[1], g, include_pad, ctx.pool);
  y.Finish(ctx.pool);
}

Status AveragePoolKernel(KernelContext& ctx) {
  const TensorView* X = ctx.in(0);
  TensorView* Y = ctx.out(0);
  if (!X || !Y) return InvalidArgument("AveragePool needs input X and output Y");
  RETURN_IF_ERROR(RequireFloatTypes(ctx, {X, Y}));
  ASSIGN_OR_RETURN(Geometry g, PoolGeometry(ctx, *X, *Y));
  const bool include_pad = ctx.attr_int("count_include_pad", 0) != 0;
  if (X->dtype == DType::kFloat64) {
    AveragePoolImpl<double>(ctx, g, include_pad);
  } else {
    AveragePoolImpl<float>(ctx, g, include_pad);
  }
  return Status::Ok();
}

// Mean or max over each whole spatial plane.
template <typename T>
void GlobalPoolImpl(KernelContext& ctx, bool is_max) {
  const TensorView& X = *ctx.in(0);
  const int64_t planes = X.dims[0] * X.dims[1];
  const int64_t size = planes == 0 ? 0 : X.NumElements() / planes;
  ComputeIn<T> xin(X, ctx.pool);
  ComputeOut<T> yout(*ctx.out(0));
  const T* x = xin.get();
  T* y = yout.get();
  ParallelFor(ctx.pool, planes, std::max<int64_t>(1, 4096 / std::max<int64_t>(size, 1)),
              [&](int64_t b, int64_t e) {
                for (int64_t p = b; p < e; ++p) {
                  const T* xp = x + p * size;
                  if (is_max) {
                    T m = size > 0 ? xp[0] : -std::numeric_limits<T>::infinity();
                    for (int64_t i = 1; i < size; ++i) m = xp[i] > m ? xp[i] : m;
                    y[p] = m;
                  } else {
                    double s = 0;  // accumulation wider than fp32
                    for (int64_t i = 0; i < size; ++i) s += xp[i];
                    y[p] = static_cast<T>(s / static_cast<double>(size));
                  }
                }
              });
  yout.Finish(ctx.pool);
}

Status GlobalPoolKernel(KernelContext& ctx) {
  const TensorView* X = ctx.in(0);
  TensorView* Y = ctx.out(0);
  if (!X || !Y) return InvalidArgument(ctx.op + " needs input X and output Y");
  RETURN_IF_ERROR(RequireFloatTypes(ctx, {X, Y}));
  if (X->rank() < 3 || Y->rank() != X->rank() || Y->dims[0] != X->dims[0] ||
      Y->dims[1] != X->dims[1] || Y->NumElements() != X->dims[0] * X->dims[1]) {
    return InvalidArgument(ctx.op + ": input " + DimsToString(X->dims) + " and output " +
                           DimsToString(Y->dims) + " do not match");
  }
  const bool is_max = ctx.op == "GlobalMaxPool";
  if (X->dtype == DType::kFloat64) {
    GlobalPoolImpl<double>(ctx, is_max);
  } else {
    GlobalPoolImpl<float>(ctx, is_max);
  }
  return Status::Ok();
}

}  // namespace

void RegisterConvKernels(KernelRegistry& r) {
  r.Register("", "Conv", ConvKernel);
  r.Register("", "ConvTranspose", ConvTransposeKernel);
  r.Register("", "MaxPool", MaxPoolKernel);
  r.Register("", "AveragePool", AveragePoolKernel);
  r.Register("", "GlobalAveragePool", GlobalPoolKernel);
  r.Register("", "GlobalMaxPool", GlobalPoolKernel);
}

}  // namespace ampc::cpu
