// CPU kernels for the com.ampc backward ops (ir/ops/grad_ops.cc): BatchNormalizationGrad and
// GatherGrad here, the sliding-window ones in kernels_grad_window.cc. f32/f16/bf16 compute in
// float (statistics in double, like the forward BatchNormalization), f64 in double; half outputs
// are rounded once.
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "ir/float16.h"
#include "ir/op_registry.h"
#include "runtime/cpu/convert.h"
#include "runtime/cpu/gemm.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/sums.h"
#include "runtime/cpu/thread_pool.h"

namespace ampc::cpu {

void RegisterWindowGradKernels(KernelRegistry& r);  // kernels_grad_window.cc

namespace {

std::string S(int64_t v) { return std::to_string(v); }

// ------------------------------------------------------------------- BatchNormalizationGrad

// Training-mode BatchNormalization backward with the batch statistics recomputed from X
// (biased variance over N and the spatial dims, as the forward kernel uses):
//   xhat = (x - mean) * invstd, dBias = sum(dy), dScale = sum(dy * xhat),
//   dx = scale * invstd * (dy - dBias / count - xhat * dScale / count).
template <typename T>
void BatchNormGradImpl(KernelContext& ctx) {
  const TensorView& dY = *ctx.in(0);
  const TensorView& X = *ctx.in(1);
  const TensorView& scale = *ctx.in(2);
  const int64_t N = X.dims[0], C = X.dims[1], Sp = DimProduct(X.dims, 2, X.dims.size());
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const double count = static_cast<double>(N * Sp);
  ComputeIn<T> xin(X, ctx.pool), dyin(dY, ctx.pool);
  const T* x = xin.get();
  const T* dy = dyin.get();
  std::optional<ComputeOut<T>> dxout;
  T* dx = ctx.out(0) ? dxout.emplace(*ctx.out(0)).get() : nullptr;
  std::vector<double> dscale(static_cast<size_t>(C)), dbias(static_cast<size_t>(C));
  ParallelFor(ctx.pool, C, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      double sum = 0, sq = 0;
      for (int64_t n = 0; n < N; ++n) sum += sums::SumOf(x + (n * C + c) * Sp, Sp);
      const double mean = count > 0 ? sum / count : 0.0;
      for (int64_t n = 0; n < N; ++n) sq += sums::SumSqDev(x + (n * C + c) * Sp, Sp, mean);
      const double invstd = 1.0 / std::sqrt((count > 0 ? sq / count : 0.0) + eps);
      double sdy = 0, sdyx = 0;
      for (int64_t n = 0; n < N; ++n) {
        sums::SumDyAndDyDev(dy + (n * C + c) * Sp, x + (n * C + c) * Sp, Sp, mean, &sdy, &sdyx);
      }
      sdyx *= invstd;
      dbias[c] = sdy;
      dscale[c] = sdyx;
      if (!dx) continue;
      const double k = Load<double>(scale, c) * invstd;
      const double mdy = count > 0 ? sdy / count : 0.0, mdyx = count > 0 ? sdyx / count : 0.0;
      for (int64_t n = 0; n < N; ++n) {
        const T* p = x + (n * C + c) * Sp;
        const T* q = dy + (n * C + c) * Sp;
        T* r = dx + (n * C + c) * Sp;
        for (int64_t i = 0; i < Sp; ++i) {
          r[i] = static_cast<T>(k * (q[i] - mdy - (p[i] - mean) * invstd * mdyx));
        }
      }
    }
  });
  if (dxout) dxout->Finish(ctx.pool);
  for (int64_t c = 0; c < C; ++c) {
    if (TensorView* o = ctx.out(1)) Store<double>(*o, c, dscale[c]);
    if (TensorView* o = ctx.out(2)) Store<double>(*o, c, dbias[c]);
  }
}

Status BatchNormGradKernel(KernelContext& ctx) {
  const TensorView* dY = ctx.in(0);
  const TensorView* X = ctx.in(1);
  const TensorView* scale = ctx.in(2);
  if (!dY || !X || !scale) {
    return InvalidArgument("BatchNormalizationGrad needs inputs dY, X and scale");
  }
  for (const TensorView* v : {dY, X, scale}) {
    if (!IsFloat(v->dtype)) {
      return Unimplemented("BatchNormalizationGrad on " + std::string(DTypeName(v->dtype)) +
                           " tensors");
    }
  }
  if (dY->dtype != X->dtype || X->rank() < 2 || dY->dims != X->dims) {
    return InvalidArgument("BatchNormalizationGrad: dY " + DimsToString(dY->dims) + " and X " +
                           DimsToString(X->dims) +
                           " must have one shape of rank >= 2 and one "
                           "dtype");
  }
  const int64_t C = X->dims[1];
  if (scale->rank() != 1 || scale->dims[0] != C) {
    return InvalidArgument("BatchNormalizationGrad: scale " + DimsToString(scale->dims) +
                           " must be [" + S(C) + "]");
  }
  if (const TensorView* dX = ctx.out(0); dX && (dX->dims != X->dims || dX->dtype != X->dtype)) {
    return InvalidArgument("BatchNormalizationGrad: dX must match X " + DimsToString(X->dims));
  }
  for (int k = 1; k <= 2; ++k) {
    const TensorView* o = ctx.out(k);
    if (o && (o->rank() != 1 || o->dims[0] != C || !IsFloat(o->dtype))) {
      return InvalidArgument("BatchNormalizationGrad: dScale and dBias must be [" + S(C) +
                             "] floats");
    }
  }
  if (X->dtype == DType::kFloat64) {
    BatchNormGradImpl<double>(ctx);
  } else {
    BatchNormGradImpl<float>(ctx);
  }
  return Status::Ok();
}

// ------------------------------------------------------------------------------- GatherGrad

// dData[o, idx[k], i] += dY[o, k, i] with data viewed as [outer, n, inner]. Threads own
// disjoint slices of dData (over `outer`, or over `inner` when outer is small), so the sums
// are deterministic.
template <typename T>
void GatherGradImpl(KernelContext& ctx, const std::vector<int64_t>& idx, int64_t outer, int64_t n,
                    int64_t inner) {
  TensorView& dD = *ctx.out(0);
  ComputeIn<T> dyin(*ctx.in(0), ctx.pool);
  const T* dy = dyin.get();
  ComputeOut<T> dout(dD);
  T* d = dout.get();
  const int64_t K = static_cast<int64_t>(idx.size());
  auto run = [&](int64_t o0, int64_t o1, int64_t i0, int64_t i1) {
    for (int64_t o = o0; o < o1; ++o) {
      for (int64_t j = 0; j < n; ++j) {
        std::fill(d + (o * n + j) * inner + i0, d + (o * n + j) * inner + i1, T(0));
      }
      for (int64_t k = 0; k < K; ++k) {
        const T* src = dy + (o * K + k) * inner;
        T* dst = d + (o * n + idx[k]) * inner;
        for (int64_t i = i0; i < i1; ++i) dst[i] += src[i];
      }
    }
  };
  if (outer >= inner) {
    ParallelFor(ctx.pool, outer, 1, [&](int64_t b, int64_t e) { run(b, e, 0, inner); });
  } else {
    ParallelFor(ctx.pool, inner, 64, [&](int64_t b, int64_t e) { run(0, outer, b, e); });
  }
  dout.Finish(ctx.pool);
}

Status GatherGradKernel(KernelContext& ctx) {
  const TensorView* dY = ctx.in(0);
  const TensorView* I = ctx.in(1);
  const TensorView* shape = ctx.in(2);
  TensorView* dD = ctx.out(0);
  if (!dY || !I || !shape || !dD) {
    return InvalidArgument("GatherGrad needs inputs dY, indices, data_shape and output dData");
  }
  if (!IsFloat(dY->dtype) || dD->dtype != dY->dtype) {
    return InvalidArgument("GatherGrad: dY and dData must have one float dtype");
  }
  if (I->dtype != DType::kInt64 && I->dtype != DType::kInt32) {
    return InvalidArgument("GatherGrad: indices must be i32 or i64");
  }
  if (shape->dtype != DType::kInt64 || shape->rank() != 1 || shape->dims[0] != dD->rank() ||
      !std::equal(dD->dims.begin(), dD->dims.end(), shape->as<const int64_t>())) {
    return InvalidArgument("GatherGrad: data_shape must be an i64 vector equal to dData's shape " +
                           DimsToString(dD->dims));
  }
  const int64_t r = dD->rank();
  int64_t axis = ctx.attr_int("axis", 0);
  if (r == 0 || axis < -r || axis >= r) {
    return InvalidArgument("GatherGrad: axis " + S(axis) + " is out of range for data " +
                           DimsToString(dD->dims));
  }
  if (axis < 0) axis += r;
  std::vector<int64_t> want(dD->dims.begin(), dD->dims.begin() + axis);
  want.insert(want.end(), I->dims.begin(), I->dims.end());
  want.insert(want.end(), dD->dims.begin() + axis + 1, dD->dims.end());
  if (dY->dims != want) {
    return InvalidArgument("GatherGrad: dY " + DimsToString(dY->dims) + " is not the Gather " +
                           "output shape " + DimsToString(want));
  }
  const int64_t n = dD->dims[axis];
  std::vector<int64_t> idx(static_cast<size_t>(I->NumElements()));
  for (size_t k = 0; k < idx.size(); ++k) {
    int64_t v = Load<int64_t>(*I, static_cast<int64_t>(k));
    if (v < -n || v >= n) {
      return InvalidArgument("GatherGrad: index " + S(v) + " is out of range for a dim of size " +
                             S(n));
    }
    idx[k] = v < 0 ? v + n : v;
  }
  const int64_t outer = DimProduct(dD->dims, 0, axis);
  const int64_t inner = DimProduct(dD->dims, axis + 1, dD->dims.size());
  if (dD->dtype == DType::kFloat64) {
    GatherGradImpl<double>(ctx, idx, outer, n, inner);
  } else {
    GatherGradImpl<float>(ctx, idx, outer, n, inner);
  }
  return Status::Ok();
}

// ------------------------------------------------------------------------------- ReluGrad

// dX = dY where X > 0, else 0 (NaN inputs pass no gradient), in one pass. Half tensors compare
// their fp32 value and copy dY's bits, so nothing is rounded.
template <typename S, typename ToFloat>
void ReluGradLoop(const S* dy, const S* x, S* dx, int64_t n, ThreadPool* pool, ToFloat value) {
  ParallelFor(pool, n, 1 << 15, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dx[i] = value(x[i]) > 0 ? dy[i] : S(0);
  });
}

Status ReluGradKernel(KernelContext& ctx) {
  const TensorView* dY = ctx.in(0);
  const TensorView* X = ctx.in(1);
  TensorView* dX = ctx.out(0);
  if (!dY || !X || !dX || dY->dtype != X->dtype || dX->dtype != X->dtype || dY->dims != X->dims ||
      dX->dims != X->dims || !IsFloat(X->dtype)) {
    return InvalidArgument("ReluGrad '" + ctx.node_name +
                           "': dY, X and dX must be float tensors of one type and shape");
  }
  const int64_t n = X->NumElements();
  switch (X->dtype) {
    case DType::kFloat32:
      ReluGradLoop(dY->as<const float>(), X->as<const float>(), dX->as<float>(), n, ctx.pool,
                   [](float v) { return v; });
      break;
    case DType::kFloat64:
      ReluGradLoop(dY->as<const double>(), X->as<const double>(), dX->as<double>(), n, ctx.pool,
                   [](double v) { return v; });
      break;
    case DType::kFloat16:
      ReluGradLoop(dY->as<const uint16_t>(), X->as<const uint16_t>(), dX->as<uint16_t>(), n,
                   ctx.pool, [](uint16_t v) { return HalfBitsToFloat(v); });
      break;
    default:
      ReluGradLoop(dY->as<const uint16_t>(), X->as<const uint16_t>(), dX->as<uint16_t>(), n,
                   ctx.pool, [](uint16_t v) { return BFloat16BitsToFloat(v); });
  }
  return Status::Ok();
}

}  // namespace

void RegisterGradKernels(KernelRegistry& r) {
  r.Register(kAmpcDomain, "ReluGrad", ReluGradKernel);
  r.Register(kAmpcDomain, "BatchNormalizationGrad", BatchNormGradKernel);
  r.Register(kAmpcDomain, "GatherGrad", GatherGradKernel);
  RegisterWindowGradKernels(r);
}

}  // namespace ampc::cpu
