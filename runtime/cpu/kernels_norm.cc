// CPU kernels for normalisation, softmax and the loss ops: BatchNormalization (inference and
// training mode), LayerNormalization, Softmax, LogSoftmax, SoftmaxCrossEntropyLoss and
// NegativeLogLikelihoodLoss. f32/f16/bf16 compute in float, f64 in double; statistics and loss
// sums accumulate in double; each output element is rounded once into its dtype.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "ir/float_math.h"
#include "ir/op_registry.h"
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

StatusOr<int64_t> NormalizeAxis(const KernelContext& ctx, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) {
    return InvalidArgument(ctx.op + ": axis " + S(axis) + " is out of range for rank " + S(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

Status RequireFloat(const KernelContext& ctx, const TensorView* v, const char* what) {
  if (!v) return InvalidArgument(ctx.op + " needs " + what);
  if (!IsFloat(v->dtype)) {
    return Unimplemented(ctx.op + " on " + std::string(DTypeName(v->dtype)) + " " + what);
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------- BatchNormalization

// unbiased_running_var: com.ampc::BatchNormalization, torch.nn.BatchNorm's running variance
// (the batch variance times count / (count - 1)); ONNX's op uses the biased one.
template <typename T>
Status BatchNormImpl(KernelContext& ctx, bool unbiased_running_var) {
  const TensorView& X = *ctx.in(0);
  TensorView& Y = *ctx.out(0);
  const int64_t N = X.dims[0], C = X.dims[1];
  const int64_t S = DimProduct(X.dims, 2, X.dims.size());
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const double momentum = ctx.attr_float("momentum", 0.9f);
  const bool training = ctx.attr_int("training_mode", 0) != 0;
  std::vector<double> scale(C), bias(C), mean(C), var(C);
  for (int64_t c = 0; c < C; ++c) {
    scale[c] = Load<double>(*ctx.in(1), c);
    bias[c] = Load<double>(*ctx.in(2), c);
    mean[c] = Load<double>(*ctx.in(3), c);
    var[c] = Load<double>(*ctx.in(4), c);
  }
  ComputeIn<T> xin(X, ctx.pool);
  const T* x = xin.get();
  std::vector<double> bmean(C), bvar(C);
  if (training) {  // biased batch statistics over N and the spatial dims
    ParallelFor(ctx.pool, C, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        double sum = 0;
        for (int64_t n = 0; n < N; ++n) sum += SumOf(x + (n * C + c) * S, S);
        const double count = static_cast<double>(N * S);
        const double m = sum / count;
        double sq = 0;
        for (int64_t n = 0; n < N; ++n) sq += SumSqDev(x + (n * C + c) * S, S, m);
        bmean[c] = m;
        bvar[c] = sq / count;
      }
    });
  }
  const std::vector<double>& use_mean = training ? bmean : mean;
  const std::vector<double>& use_var = training ? bvar : var;
  std::vector<T> sub(C), mul(C), add(C);
  for (int64_t c = 0; c < C; ++c) {
    sub[c] = static_cast<T>(use_mean[c]);
    mul[c] = static_cast<T>(scale[c] / std::sqrt(use_var[c] + eps));
    add[c] = static_cast<T>(bias[c]);
  }
  ComputeOut<T> yout(Y);
  T* y = yout.get();
  ParallelFor(ctx.pool, N * C, RowGrain(S), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t c = r % C;
      const T* p = x + r * S;
      T* q = y + r * S;
      const T sc = sub[c], mc = mul[c], ac = add[c];
      for (int64_t i = 0; i < S; ++i) q[i] = (p[i] - sc) * mc + ac;
    }
  });
  yout.Finish(ctx.pool);
  // Running statistics (opset 15 outputs 1 and 2): in inference mode they pass through.
  for (int k = 1; k <= 2; ++k) {
    TensorView* out = ctx.out(k);
    if (!out) continue;
    const std::vector<double>& in_stat = k == 1 ? mean : var;
    const std::vector<double>& batch_stat = k == 1 ? bmean : bvar;
    const double count = static_cast<double>(N * S);
    const double correction =
        k == 2 && unbiased_running_var && count > 1 ? count / (count - 1) : 1.0;
    for (int64_t c = 0; c < C; ++c) {
      const double v = training
                           ? in_stat[c] * momentum + batch_stat[c] * correction * (1.0 - momentum)
                           : in_stat[c];
      Store<double>(*out, c, v);
    }
  }
  return Status::Ok();
}

Status BatchNormCommon(KernelContext& ctx, bool unbiased_running_var) {
  static const char* const kNames[] = {"input X", "scale", "B", "input_mean", "input_var"};
  for (int i = 0; i < 5; ++i) RETURN_IF_ERROR(RequireFloat(ctx, ctx.in(i), kNames[i]));
  const TensorView& X = *ctx.in(0);
  TensorView* Y = ctx.out(0);
  if (!Y || Y->dims != X.dims || Y->dtype != X.dtype || X.rank() < 2) {
    return InvalidArgument("BatchNormalization: Y must match X " + DimsToString(X.dims) +
                           " of rank >= 2");
  }
  const int64_t C = X.dims[1];
  for (int i = 1; i < 5; ++i) {
    if (ctx.in(i)->rank() != 1 || ctx.in(i)->dims[0] != C) {
      return InvalidArgument(std::string("BatchNormalization: ") + kNames[i] + " " +
                             DimsToString(ctx.in(i)->dims) + " must be [" + S(C) + "]");
    }
  }
  for (int k = 1; k <= 2; ++k) {
    if (ctx.out(k) && (ctx.out(k)->NumElements() != C || !IsFloat(ctx.out(k)->dtype))) {
      return InvalidArgument("BatchNormalization: running statistics outputs must be [" + S(C) +
                             "] floats");
    }
  }
  if (X.dtype == DType::kFloat64) return BatchNormImpl<double>(ctx, unbiased_running_var);
  return BatchNormImpl<float>(ctx, unbiased_running_var);
}

Status BatchNormKernel(KernelContext& ctx) { return BatchNormCommon(ctx, false); }
Status BatchNormTorchKernel(KernelContext& ctx) { return BatchNormCommon(ctx, true); }

// ---------------------------------------------------------------------- LayerNormalization

// Expands a tensor unidirectionally broadcast to `dims` into a dense vector of T.
template <typename T>
StatusOr<std::vector<T>> ExpandTo(const KernelContext& ctx, const TensorView& t,
                                  const std::vector<int64_t>& dims, const char* what) {
  bool ok = t.rank() <= static_cast<int64_t>(dims.size());
  for (int64_t i = 0; ok && i < t.rank(); ++i) {
    const int64_t td = t.dims[t.rank() - 1 - i], d = dims[dims.size() - 1 - i];
    ok = td == d || td == 1;
  }
  if (!ok) {
    return InvalidArgument(ctx.op + ": " + what + " " + DimsToString(t.dims) +
                           " does not broadcast to " + DimsToString(dims));
  }
  const int64_t n = DimProduct(dims, 0, dims.size());
  std::vector<T> out(static_cast<size_t>(n));
  if (n == 0) return out;
  BroadcastCursor cur(dims, {BroadcastStrides(t.dims, dims)}, 0);
  for (int64_t i = 0; i < n; ++i, cur.Next()) out[i] = Load<T>(t, cur.offset(0));
  return out;
}

template <typename T>
Status LayerNormImpl(KernelContext& ctx, int64_t axis) {
  const TensorView& X = *ctx.in(0);
  const std::vector<int64_t> norm_dims(X.dims.begin() + axis, X.dims.end());
  const int64_t outer = DimProduct(X.dims, 0, axis),
                inner = DimProduct(norm_dims, 0, norm_dims.size());
  ASSIGN_OR_RETURN(std::vector<T> scale, ExpandTo<T>(ctx, *ctx.in(1), norm_dims, "Scale"));
  std::vector<T> bias(static_cast<size_t>(inner), T(0));
  if (ctx.in(2)) {
    ASSIGN_OR_RETURN(bias, ExpandTo<T>(ctx, *ctx.in(2), norm_dims, "B"));
  }
  TensorView* mean_out = ctx.out(1);
  TensorView* inv_out = ctx.out(2);
  for (TensorView* t : {mean_out, inv_out}) {
    if (t && (t->NumElements() != outer || !IsFloat(t->dtype))) {
      return InvalidArgument("LayerNormalization: Mean/InvStdDev must hold " + S(outer) +
                             " floats");
    }
  }
  const T eps = static_cast<T>(ctx.attr_float("epsilon", 1e-5f));
  ComputeIn<T> xin(X, ctx.pool);
  ComputeOut<T> yout(*ctx.out(0));
  const T* x = xin.get();
  T* y = yout.get();
  ParallelFor(ctx.pool, outer, RowGrain(inner), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* p = x + r * inner;
      T* q = y + r * inner;
      const double mean_d = SumOf(p, inner) / static_cast<double>(inner);
      const T mean = static_cast<T>(mean_d);
      const T var = static_cast<T>(SumSqDev(p, inner, mean_d) / static_cast<double>(inner));
      const T inv = T(1) / std::sqrt(var + eps);
      for (int64_t i = 0; i < inner; ++i) q[i] = (p[i] - mean) * inv * scale[i] + bias[i];
      if (mean_out) Store<T>(*mean_out, r, mean);
      if (inv_out) Store<T>(*inv_out, r, inv);
    }
  });
  yout.Finish(ctx.pool);
  return Status::Ok();
}

Status LayerNormKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(RequireFloat(ctx, ctx.in(0), "input X"));
  RETURN_IF_ERROR(RequireFloat(ctx, ctx.in(1), "Scale"));
  if (ctx.in(2)) RETURN_IF_ERROR(RequireFloat(ctx, ctx.in(2), "B"));
  const TensorView& X = *ctx.in(0);
  TensorView* Y = ctx.out(0);
  if (!Y || Y->dims != X.dims || Y->dtype != X.dtype) {
    return InvalidArgument("LayerNormalization: Y must match X " + DimsToString(X.dims));
  }
  ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(ctx, ctx.attr_int("axis", -1), X.rank()));
  if (X.dtype == DType::kFloat64) return LayerNormImpl<double>(ctx, axis);
  return LayerNormImpl<float>(ctx, axis);
}

// ------------------------------------------------------------------- Softmax / LogSoftmax

// Softmax (or log-softmax) over the C rows of a [C, inner] slab, each column independently.
// `acc` has room for 2 * inner values.
template <typename T, bool kLog>
void SoftmaxSlab(const T* x, T* y, int64_t C, int64_t inner, T* acc) {
  if (inner == 1) {  // one contiguous row
    T m = x[0];
    for (int64_t c = 1; c < C; ++c) m = std::max(m, x[c]);
    T sum = 0;
    for (int64_t c = 0; c < C; ++c) {
      const T e = fmath::Exp(x[c] - m);
      if (!kLog) y[c] = e;
      sum += e;
    }
    if (kLog) {  // (x - max) - log(sum): no cancellation against a large max
      const T ls = std::log(sum);
      for (int64_t c = 0; c < C; ++c) y[c] = (x[c] - m) - ls;
    } else {
      for (int64_t c = 0; c < C; ++c) y[c] /= sum;
    }
    return;
  }
  T* mx = acc;
  T* sum = acc + inner;
  std::copy(x, x + inner, mx);
  for (int64_t c = 1; c < C; ++c) {
    const T* r = x + c * inner;
    for (int64_t j = 0; j < inner; ++j) mx[j] = std::max(mx[j], r[j]);
  }
  std::fill(sum, sum + inner, T(0));
  for (int64_t c = 0; c < C; ++c) {
    const T* r = x + c * inner;
    T* o = y + c * inner;
    for (int64_t j = 0; j < inner; ++j) {
      const T e = fmath::Exp(r[j] - mx[j]);
      if (!kLog) o[j] = e;
      sum[j] += e;
    }
  }
  if (kLog) {
    for (int64_t j = 0; j < inner; ++j) sum[j] = std::log(sum[j]);
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t j = 0; j < inner; ++j) y[c * inner + j] = (x[c * inner + j] - mx[j]) - sum[j];
    }
  } else {
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t j = 0; j < inner; ++j) y[c * inner + j] /= sum[j];
    }
  }
}

// Softmax over axis 1 of x viewed as [outer, C, inner].
template <typename T, bool kLog>
void SoftmaxAll(const T* x, T* y, int64_t outer, int64_t C, int64_t inner, ThreadPool* pool) {
  if (C == 0) return;
  ParallelFor(pool, outer, RowGrain(C * inner), [&](int64_t b, int64_t e) {
    std::vector<T> acc(static_cast<size_t>(inner == 1 ? 0 : 2 * inner));
    for (int64_t o = b; o < e; ++o) {
      SoftmaxSlab<T, kLog>(x + o * C * inner, y + o * C * inner, C, inner, acc.data());
    }
  });
}

template <typename T>
void SoftmaxImpl(KernelContext& ctx, int64_t axis, bool log) {
  const TensorView& X = *ctx.in(0);
  const int64_t outer = DimProduct(X.dims, 0, axis), C = X.dims[axis];
  const int64_t inner = DimProduct(X.dims, axis + 1, X.dims.size());
  ComputeIn<T> x(X, ctx.pool);
  ComputeOut<T> y(*ctx.out(0));
  if (log) {
    SoftmaxAll<T, true>(x.get(), y.get(), outer, C, inner, ctx.pool);
  } else {
    SoftmaxAll<T, false>(x.get(), y.get(), outer, C, inner, ctx.pool);
  }
  y.Finish(ctx.pool);
}

Status SoftmaxKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(RequireFloat(ctx, ctx.in(0), "input"));
  const TensorView& X = *ctx.in(0);
  TensorView* Y = ctx.out(0);
  if (!Y || Y->dims != X.dims || Y->dtype != X.dtype) {
    return InvalidArgument(ctx.op + ": output must match the input " + DimsToString(X.dims));
  }
  if (X.rank() == 0) return InvalidArgument(ctx.op + " needs an input of rank >= 1");
  ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(ctx, ctx.attr_int("axis", -1), X.rank()));
  const bool log = ctx.op == "LogSoftmax";
  if (X.dtype == DType::kFloat64) {
    SoftmaxImpl<double>(ctx, axis, log);
  } else {
    SoftmaxImpl<float>(ctx, axis, log);
  }
  return Status::Ok();
}

// ------------------------------------------------------------------------------------ Losses

// SoftmaxCrossEntropyLoss (softmax = true) and NegativeLogLikelihoodLoss: input [N, C, d...],
// labels [N, d...], optional weight [C]. loss_i = -weight[label_i] * logp[n, label_i, d] (0 for
// ignore_index); mean divides the sum by the sum of the weights used (ONNX's weighted mean).
template <typename T>
Status LossImpl(KernelContext& ctx, bool softmax, const std::vector<int64_t>& labels) {
  const TensorView& X = *ctx.in(0);
  const TensorView* Wt = ctx.in(2);
  const int64_t N = X.dims[0], C = X.dims[1], D = DimProduct(X.dims, 2, X.dims.size());
  const std::string reduction = ctx.attr_string("reduction", "mean");
  const bool has_ignore = ctx.attr("ignore_index") != nullptr;
  const int64_t ignore = ctx.attr_int("ignore_index", 0);
  ComputeIn<T> xin(X, ctx.pool);
  const T* logp = xin.get();
  std::vector<T> lp_scratch;
  TensorView* lp_view = softmax ? ctx.out(1) : nullptr;
  std::optional<ComputeOut<T>> lp_out;
  if (softmax) {
    T* lp;
    if (lp_view) {
      lp_out.emplace(*lp_view);
      lp = lp_out->get();
    } else {
      lp_scratch.resize(static_cast<size_t>(N * C * D));
      lp = lp_scratch.data();
    }
    SoftmaxAll<T, true>(logp, lp, N, C, D, ctx.pool);
    logp = lp;
  }
  std::vector<T> weight(static_cast<size_t>(C), T(1));
  if (Wt) {
    for (int64_t c = 0; c < C; ++c) weight[c] = Load<T>(*Wt, c);
  }
  TensorView& out = *ctx.out(0);
  const bool none = reduction == "none";
  std::vector<T> losses(none ? static_cast<size_t>(N * D) : 0);
  double sum = 0, wsum = 0;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t d = 0; d < D; ++d) {
      const int64_t i = n * D + d, label = labels[i];
      T l = 0;
      if (!(has_ignore && label == ignore)) {
        const T w = weight[label];
        l = -w * logp[(n * C + label) * D + d];
        wsum += w;
        sum += l;
      }
      if (none) losses[i] = l;
    }
  }
  if (none) {
    for (int64_t i = 0; i < N * D; ++i) Store<T>(out, i, losses[i]);
  } else {
    Store<double>(out, 0, reduction == "sum" ? sum : sum / wsum);
  }
  if (lp_out) lp_out->Finish(ctx.pool);
  return Status::Ok();
}

Status LossKernel(KernelContext& ctx) {
  const bool softmax = ctx.op == "SoftmaxCrossEntropyLoss";
  RETURN_IF_ERROR(RequireFloat(ctx, ctx.in(0), "scores"));
  const TensorView& X = *ctx.in(0);
  const TensorView* L = ctx.in(1);
  const TensorView* Wt = ctx.in(2);
  if (!L || (L->dtype != DType::kInt64 && L->dtype != DType::kInt32)) {
    return InvalidArgument(ctx.op + " needs integer labels (i32 or i64)");
  }
  if (X.rank() < 2) return InvalidArgument(ctx.op + ": input must have rank >= 2 (N, C, ...)");
  std::vector<int64_t> tdims = {X.dims[0]};
  tdims.insert(tdims.end(), X.dims.begin() + 2, X.dims.end());
  if (L->dims != tdims) {
    return InvalidArgument(ctx.op + ": labels " + DimsToString(L->dims) +
                           " do not match the input " + DimsToString(X.dims) + " (expected " +
                           DimsToString(tdims) + ")");
  }
  const int64_t C = X.dims[1];
  if (Wt) {
    RETURN_IF_ERROR(RequireFloat(ctx, Wt, "weight"));
    if (Wt->rank() != 1 || Wt->dims[0] != C) {
      return InvalidArgument(ctx.op + ": weight " + DimsToString(Wt->dims) + " must be [" + S(C) +
                             "]");
    }
  }
  const std::string reduction = ctx.attr_string("reduction", "mean");
  if (reduction != "none" && reduction != "sum" && reduction != "mean") {
    return InvalidArgument(ctx.op + ": reduction '" + reduction + "' is not none, sum or mean");
  }
  TensorView* out = ctx.out(0);
  const int64_t want = reduction == "none" ? L->NumElements() : 1;
  if (!out || out->NumElements() != want || out->dtype != X.dtype) {
    return InvalidArgument(ctx.op + ": loss output must hold " + S(want) + " elements");
  }
  if (TensorView* lp = softmax ? ctx.out(1) : nullptr;
      lp && (lp->dims != X.dims || lp->dtype != X.dtype)) {
    return InvalidArgument(ctx.op + ": log_prob must match the input " + DimsToString(X.dims));
  }
  const bool has_ignore = ctx.attr("ignore_index") != nullptr;
  const int64_t ignore = ctx.attr_int("ignore_index", 0);
  std::vector<int64_t> labels(static_cast<size_t>(L->NumElements()));
  for (int64_t i = 0; i < L->NumElements(); ++i) {
    const int64_t v = Load<int64_t>(*L, i);
    if ((!has_ignore || v != ignore) && (v < 0 || v >= C)) {
      return InvalidArgument("label " + S(v) + " is out of range [0, " + S(C) + ")");
    }
    labels[i] = v;
  }
  if (X.dtype == DType::kFloat64) return LossImpl<double>(ctx, softmax, labels);
  return LossImpl<float>(ctx, softmax, labels);
}

}  // namespace

void RegisterNormKernels(KernelRegistry& r) {
  r.Register("", "BatchNormalization", BatchNormKernel);
  r.Register(kAmpcDomain, "BatchNormalization", BatchNormTorchKernel);
  r.Register("", "LayerNormalization", LayerNormKernel);
  r.Register("", "Softmax", SoftmaxKernel);
  r.Register("", "LogSoftmax", SoftmaxKernel);
  r.Register("", "SoftmaxCrossEntropyLoss", LossKernel);
  r.Register("", "NegativeLogLikelihoodLoss", LossKernel);
}

}  // namespace ampc::cpu
