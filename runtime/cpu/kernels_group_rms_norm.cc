// CPU kernels for GroupNormalization (version 21's per-channel scale and bias) and
// RMSNormalization (opset 23). As the other norm kernels (kernels_norm.cc): f32/f16/bf16 compute
// in float, f64 in double, statistics accumulate in double (whatever stash_type says: it asks for
// fp32 at least), each output element is rounded once into its dtype.
#include <cmath>
#include <string>
#include <vector>

#include "runtime/cpu/broadcast.h"
#include "runtime/cpu/convert.h"
#include "runtime/cpu/gemm.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/sums.h"
#include "runtime/cpu/thread_pool.h"

namespace ampc::cpu {
namespace {

using sums::SumOf;
using sums::SumSqDev;

std::string S(int64_t v) { return std::to_string(v); }

Status CheckFloatInputs(const KernelContext& ctx, int n) {
  for (int i = 0; i < n; ++i) {
    const TensorView* v = ctx.in(i);
    if (!v || !IsFloat(v->dtype) || v->dtype != ctx.in(0)->dtype) {
      return InvalidArgument(ctx.op + " '" + ctx.node_name + "': input " + S(i) +
                             " must be a float tensor of input 0's type");
    }
  }
  const TensorView* y = ctx.out(0);
  if (!y || y->dtype != ctx.in(0)->dtype || y->dims != ctx.in(0)->dims) {
    return InvalidArgument(ctx.op + " '" + ctx.node_name + "': Y must match X " +
                           DimsToString(ctx.in(0)->dims));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------- GroupNormalization

template <typename T>
Status GroupNormImpl(KernelContext& ctx, int64_t groups) {
  const TensorView& X = *ctx.in(0);
  const int64_t n = X.dims[0], c = X.dims[1], spatial = DimProduct(X.dims, 2, X.dims.size());
  const int64_t per_group = c / groups * spatial;  // one group's elements are contiguous
  std::vector<T> scale(static_cast<size_t>(c)), bias(static_cast<size_t>(c));
  for (int64_t i = 0; i < c; ++i) {
    scale[i] = Load<T>(*ctx.in(1), i);
    bias[i] = Load<T>(*ctx.in(2), i);
  }
  const T eps = static_cast<T>(ctx.attr_float("epsilon", 1e-5f));
  ComputeIn<T> xin(X, ctx.pool);
  ComputeOut<T> yout(*ctx.out(0));
  const T* x = xin.get();
  T* y = yout.get();
  ParallelFor(ctx.pool, n * groups, RowGrain(per_group), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* p = x + r * per_group;
      T* q = y + r * per_group;
      const double mean_d = SumOf(p, per_group) / static_cast<double>(per_group);
      const T mean = static_cast<T>(mean_d);
      const T var = static_cast<T>(SumSqDev(p, per_group, mean_d) / static_cast<double>(per_group));
      const T inv = T(1) / std::sqrt(var + eps);
      const int64_t c0 = (r % groups) * (c / groups);
      for (int64_t k = 0; k < c / groups; ++k) {
        const T sc = scale[c0 + k], bi = bias[c0 + k];
        const T* pk = p + k * spatial;
        T* qk = q + k * spatial;
        for (int64_t i = 0; i < spatial; ++i) qk[i] = (pk[i] - mean) * inv * sc + bi;
      }
    }
  });
  yout.Finish(ctx.pool);
  return Status::Ok();
}

Status GroupNormKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckFloatInputs(ctx, 3));
  const TensorView& X = *ctx.in(0);
  const int64_t groups = ctx.attr_int("num_groups", 0);
  if (X.rank() < 2 || groups <= 0 || X.dims[1] % groups != 0) {
    return InvalidArgument("GroupNormalization '" + ctx.node_name + "': num_groups " + S(groups) +
                           " must divide the channels of X " + DimsToString(X.dims));
  }
  for (int i : {1, 2}) {
    if (ctx.in(i)->NumElements() != X.dims[1]) {
      return InvalidArgument("GroupNormalization '" + ctx.node_name +
                             "': " + (i == 1 ? "scale" : "bias") +
                             " must hold one value per channel (" + S(X.dims[1]) + ")");
    }
  }
  if (X.NumElements() == 0) return Status::Ok();
  if (X.dtype == DType::kFloat64) return GroupNormImpl<double>(ctx, groups);
  return GroupNormImpl<float>(ctx, groups);
}

// ---------------------------------------------------------------------- RMSNormalization

template <typename T>
Status RMSNormImpl(KernelContext& ctx, int64_t axis) {
  const TensorView& X = *ctx.in(0);
  const TensorView& Sc = *ctx.in(1);
  const std::vector<int64_t> norm_dims(X.dims.begin() + axis, X.dims.end());
  const int64_t outer = DimProduct(X.dims, 0, axis),
                inner = DimProduct(norm_dims, 0, norm_dims.size());
  // scale broadcast (unidirectionally) to the normalized dims.
  bool ok = Sc.rank() <= static_cast<int64_t>(norm_dims.size());
  for (int64_t i = 0; ok && i < Sc.rank(); ++i) {
    const int64_t sd = Sc.dims[Sc.rank() - 1 - i], d = norm_dims[norm_dims.size() - 1 - i];
    ok = sd == d || sd == 1;
  }
  if (!ok) {
    return InvalidArgument("RMSNormalization '" + ctx.node_name + "': scale " +
                           DimsToString(Sc.dims) + " does not broadcast to " +
                           DimsToString(norm_dims));
  }
  std::vector<T> scale(static_cast<size_t>(inner));
  BroadcastCursor cur(norm_dims, {BroadcastStrides(Sc.dims, norm_dims)}, 0);
  for (int64_t i = 0; i < inner; ++i, cur.Next()) scale[i] = Load<T>(Sc, cur.offset(0));
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  ComputeIn<T> xin(X, ctx.pool);
  ComputeOut<T> yout(*ctx.out(0));
  const T* x = xin.get();
  T* y = yout.get();
  ParallelFor(ctx.pool, outer, RowGrain(inner), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* p = x + r * inner;
      T* q = y + r * inner;
      const double mean_sq = SumSqDev(p, inner, 0.0) / static_cast<double>(inner);
      const T inv = static_cast<T>(1.0 / std::sqrt(mean_sq + eps));
      for (int64_t i = 0; i < inner; ++i) q[i] = p[i] * inv * scale[i];
    }
  });
  yout.Finish(ctx.pool);
  return Status::Ok();
}

Status RMSNormKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckFloatInputs(ctx, 2));
  const TensorView& X = *ctx.in(0);
  const int64_t r = X.rank(), a = ctx.attr_int("axis", -1);
  if (r == 0 || a < -r || a >= r) {
    return InvalidArgument("RMSNormalization '" + ctx.node_name + "': axis " + S(a) +
                           " is out of range for rank " + S(r));
  }
  if (X.NumElements() == 0) return Status::Ok();
  const int64_t axis = a < 0 ? a + r : a;
  if (X.dtype == DType::kFloat64) return RMSNormImpl<double>(ctx, axis);
  return RMSNormImpl<float>(ctx, axis);
}

}  // namespace

void RegisterGroupRMSNormKernels(KernelRegistry& r) {
  r.Register("", "GroupNormalization", GroupNormKernel);
  r.Register("", "RMSNormalization", RMSNormKernel);
}

}  // namespace ampc::cpu
