// CPU kernels for the com.ampc optimizer ops (ir/ops/optimizer_ops.cc), written to reproduce
// torch.optim.SGD / Adam / AdamW (PyTorch 1.13, foreach=False): the same operation order, scalar
// coefficients formed in double and applied in the tensor's type, elementwise math in float for
// f32 tensors. Each element's inputs are read before its outputs are written, so outputs may alias
// their inputs.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "runtime/cpu/convert.h"
#include "runtime/cpu/gemm.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/thread_pool.h"

namespace ampc::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;

Status Err(const KernelContext& ctx, const std::string& m) {
  return InvalidArgument(ctx.op + " '" + ctx.node_name + "': " + m);
}

// The dtype of the optional half copy of W' (attribute half_copy), or kUndefined.
DType HalfCopy(const KernelContext& ctx) {
  const int64_t h = ctx.attr_int("half_copy", 0);
  return h == 0 ? DType::kUndefined : DTypeFromOnnxNumber(h).value_or(DType::kUndefined);
}

// Checks lr, step and that every tensor input [2, num_in) and output has W's dtype and size
// (the half copy, when there is one, is an extra last output of W's size in its own type);
// reads the optional bool `apply` input at index apply_at.
Status Check(const KernelContext& ctx, int num_in, int num_out, int apply_at, double* lr,
             int64_t* step, bool* apply) {
  const bool half = ctx.attr_int("half_copy", 0) != 0;
  const DType half_type = HalfCopy(ctx);
  if (ctx.num_inputs() < num_in || ctx.num_inputs() > apply_at + 1 ||
      ctx.num_outputs() != num_out + (half ? 1 : 0)) {
    return Err(ctx, "expects " + std::to_string(num_in) +
                        " inputs (+ an optional apply flag) and " + std::to_string(num_out) +
                        " outputs");
  }
  *apply = true;
  if (const TensorView* a = ctx.in(apply_at)) {
    if (a->dtype != DType::kBool || a->NumElements() != 1)
      return Err(ctx, "the apply flag must be a bool scalar");
    *apply = a->as<uint8_t>()[0] != 0;
  }
  const TensorView* l = ctx.in(0);
  const TensorView* s = ctx.in(1);
  if (!l || l->dtype != DType::kFloat32 || l->NumElements() != 1) {
    return Err(ctx, "the learning rate must be an f32 scalar");
  }
  if (!s || s->dtype != DType::kInt64 || s->NumElements() != 1) {
    return Err(ctx, "the step count must be an i64 scalar");
  }
  *lr = l->as<float>()[0];
  *step = s->as<int64_t>()[0];
  if (*step < 0) return Err(ctx, "negative step count " + std::to_string(*step));
  const TensorView* w = ctx.in(2);
  if (!w || (w->dtype != DType::kFloat32 && w->dtype != DType::kFloat64)) {
    return Err(ctx, "the parameter must be f32 or f64");
  }
  for (int i = 3; i < num_in; ++i) {
    if (i == 4 && num_in == 4) break;
    const bool half_grad =  // an f16/bf16 gradient beside f32 W (the loops widen it)
        i == 3 && ctx.in(i) && w->dtype == DType::kFloat32 && IsHalf(ctx.in(i)->dtype);
    if (!ctx.in(i) || (ctx.in(i)->dtype != w->dtype && !half_grad) || ctx.in(i)->dims != w->dims) {
      return Err(ctx, "input " + std::to_string(i) + " does not match the parameter " +
                          DimsToString(w->dims));
    }
  }
  for (int i = 0; i < num_out; ++i) {
    if (!ctx.out(i) || ctx.out(i)->dtype != w->dtype || ctx.out(i)->dims != w->dims) {
      return Err(ctx, "output " + std::to_string(i) + " does not match the parameter");
    }
  }
  if (half) {
    const TensorView* h = ctx.out(num_out);
    if (!IsHalf(half_type) || w->dtype != DType::kFloat32 || !h || h->dtype != half_type ||
        h->dims != w->dims) {
      return Err(ctx, "the half copy (output " + std::to_string(num_out) +
                          ") must be the f32 parameter's f16/bf16 rounding");
    }
  }
  return Status::Ok();
}

// The half copy (output `at`, when the node has one): W' (output 0) rounded to nearest even, as a
// Cast would, whether or not the step was applied.
void WriteHalfCopy(const KernelContext& ctx, int at) {
  if (ctx.num_outputs() <= at) return;
  const float* w = ctx.out(0)->as<const float>();
  TensorView& h = *ctx.out(at);
  ParallelFor(ctx.pool, ctx.out(0)->NumElements(), kGrain,
              [&](int64_t lo, int64_t hi) { StoreFloats(w + lo, hi - lo, h, lo); });
}

// A skipped step: every output is a bit-identical copy of its input (W, then the states).
void CopyThrough(const KernelContext& ctx, const std::vector<int>& inputs) {
  for (size_t k = 0; k < inputs.size(); ++k) {
    const TensorView* in = ctx.in(inputs[k]);
    TensorView* out = ctx.out(static_cast<int>(k));
    if (in->data != out->data) {
      std::memcpy(out->data, in->data, in->NumElements() * DTypeSize(in->dtype));
    }
  }
}

// One SGD variant with its flags fixed at compile time, so the loop is branch-free and
// vectorises.
template <typename T, bool kDecay, bool kMomentum, bool kFirst, bool kNesterov>
void SgdRange(const T* w, const T* g, const T* m, T* w_out, T* m_out, T wd, T mom, T damp, T neg_lr,
              int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) {
    T d = g[i];
    if constexpr (kDecay) d = d + wd * w[i];
    if constexpr (kMomentum) {
      T buf;
      if constexpr (kFirst) {
        buf = d;
      } else {
        buf = m[i] * mom + damp * d;
      }
      m_out[i] = buf;
      if constexpr (kNesterov) {
        d = d + mom * buf;
      } else {
        d = buf;
      }
    }
    w_out[i] = w[i] + neg_lr * d;
  }
}

template <typename T>
void SgdLoop(const KernelContext& ctx, double lr, bool first) {
  const T* w = ctx.in(2)->as<const T>();
  const ComputeIn<T> grad(*ctx.in(3), ctx.pool);  // a half gradient widened (exactly) to f32
  const T* g = grad.get();
  const bool has_m = ctx.in(4) != nullptr;
  const T* m = has_m ? ctx.in(4)->as<const T>() : nullptr;
  T* w_out = ctx.out(0)->as<T>();
  T* m_out = has_m ? ctx.out(1)->as<T>() : nullptr;
  const T wd = static_cast<T>(ctx.attr_float("weight_decay", 0.0f));
  const T mom = static_cast<T>(ctx.attr_float("momentum", 0.0f));
  const T damp = static_cast<T>(1.0 - static_cast<double>(ctx.attr_float("dampening", 0.0f)));
  const bool nesterov = ctx.attr_int("nesterov", 0) != 0;
  const T neg_lr = static_cast<T>(-lr);
  using Fn = void (*)(const T*, const T*, const T*, T*, T*, T, T, T, T, int64_t, int64_t);
  // [decay][momentum][first][nesterov]
  static constexpr Fn kTable[2][2][2][2] = {
      {{{SgdRange<T, false, false, false, false>, SgdRange<T, false, false, false, true>},
        {SgdRange<T, false, false, true, false>, SgdRange<T, false, false, true, true>}},
       {{SgdRange<T, false, true, false, false>, SgdRange<T, false, true, false, true>},
        {SgdRange<T, false, true, true, false>, SgdRange<T, false, true, true, true>}}},
      {{{SgdRange<T, true, false, false, false>, SgdRange<T, true, false, false, true>},
        {SgdRange<T, true, false, true, false>, SgdRange<T, true, false, true, true>}},
       {{SgdRange<T, true, true, false, false>, SgdRange<T, true, true, false, true>},
        {SgdRange<T, true, true, true, false>, SgdRange<T, true, true, true, true>}}}};
  const Fn fn = kTable[wd != T(0)][has_m][first][nesterov];
  ParallelFor(ctx.pool, ctx.in(2)->NumElements(), kGrain, [&](int64_t lo, int64_t hi) {
    fn(w, g, m, w_out, m_out, wd, mom, damp, neg_lr, lo, hi);
  });
}

Status SgdKernel(KernelContext& ctx) {
  const bool has_m = ctx.in(4) != nullptr;
  double lr;
  int64_t step;
  bool apply;
  RETURN_IF_ERROR(Check(ctx, has_m ? 5 : 4, has_m ? 2 : 1, 5, &lr, &step, &apply));
  if (!apply) {
    CopyThrough(ctx, has_m ? std::vector<int>{2, 4} : std::vector<int>{2});
  } else if (ctx.in(2)->dtype == DType::kFloat32) {
    SgdLoop<float>(ctx, lr, step == 0);
  } else {
    SgdLoop<double>(ctx, lr, step == 0);
  }
  WriteHalfCopy(ctx, has_m ? 2 : 1);
  return Status::Ok();
}

enum class Decay { kNone, kL2, kDecoupled };

// One Adam variant with its weight-decay form fixed at compile time (no branch in the loop).
template <typename T, Decay kDecay>
void AdamRange(const T* w, const T* g, const T* m, const T* v, T* w_out, T* m_out, T* v_out,
               const T (&k)[8], int64_t lo, int64_t hi) {
  const T b1 = k[0], one_minus_b1 = k[1], b2 = k[2], one_minus_b2 = k[3];
  const T neg_step_size = k[4], bc2_sqrt = k[5], eps = k[6], wd = k[7];
  for (int64_t i = lo; i < hi; ++i) {
    T p = w[i];
    T d = g[i];
    if constexpr (kDecay == Decay::kDecoupled) p = p * wd;  // wd holds 1 - lr * weight_decay
    if constexpr (kDecay == Decay::kL2) d = d + wd * p;
    const T mi = m[i] * b1 + one_minus_b1 * d;
    const T vi = v[i] * b2 + one_minus_b2 * d * d;
    const T denom = std::sqrt(vi) / bc2_sqrt + eps;
    m_out[i] = mi;
    v_out[i] = vi;
    w_out[i] = p + neg_step_size * (mi / denom);
  }
}

template <typename T>
void AdamLoop(const KernelContext& ctx, double lr, int64_t step) {
  const double beta1 = ctx.attr_float("beta1", 0.9f);
  const double beta2 = ctx.attr_float("beta2", 0.999f);
  const double wd = ctx.attr_float("weight_decay", 0.0f);
  const bool decoupled = ctx.attr_int("decoupled", 0) != 0;
  const double t = static_cast<double>(step + 1);
  const double bc1 = 1.0 - std::pow(beta1, t);
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(beta2, t));
  // AdamW: param.mul_(1 - lr * wd); Adam: grad = grad + wd * param.
  const Decay decay = decoupled ? Decay::kDecoupled : wd != 0 ? Decay::kL2 : Decay::kNone;
  const T k[8] = {static_cast<T>(beta1),
                  static_cast<T>(1.0 - beta1),
                  static_cast<T>(beta2),
                  static_cast<T>(1.0 - beta2),
                  static_cast<T>(-(lr / bc1)),
                  static_cast<T>(bc2_sqrt),
                  static_cast<T>(ctx.attr_float("epsilon", 1e-8f)),
                  static_cast<T>(decoupled ? 1.0 - lr * wd : wd)};
  using Fn =
      void (*)(const T*, const T*, const T*, const T*, T*, T*, T*, const T(&)[8], int64_t, int64_t);
  const Fn fn = decay == Decay::kDecoupled ? AdamRange<T, Decay::kDecoupled>
                : decay == Decay::kL2      ? AdamRange<T, Decay::kL2>
                                           : AdamRange<T, Decay::kNone>;
  const T* w = ctx.in(2)->as<const T>();
  const ComputeIn<T> grad(*ctx.in(3), ctx.pool);  // a half gradient widened (exactly) to f32
  const T* g = grad.get();
  const T* m = ctx.in(4)->as<const T>();
  const T* v = ctx.in(5)->as<const T>();
  T* w_out = ctx.out(0)->as<T>();
  T* m_out = ctx.out(1)->as<T>();
  T* v_out = ctx.out(2)->as<T>();
  ParallelFor(ctx.pool, ctx.in(2)->NumElements(), kGrain,
              [&](int64_t lo, int64_t hi) { fn(w, g, m, v, w_out, m_out, v_out, k, lo, hi); });
}

Status AdamKernel(KernelContext& ctx) {
  double lr;
  int64_t step;
  bool apply;
  RETURN_IF_ERROR(Check(ctx, 6, 3, 6, &lr, &step, &apply));
  if (!apply) {
    CopyThrough(ctx, {2, 4, 5});
  } else if (ctx.in(2)->dtype == DType::kFloat32) {
    AdamLoop<float>(ctx, lr, step);
  } else {
    AdamLoop<double>(ctx, lr, step);
  }
  WriteHalfCopy(ctx, 3);
  return Status::Ok();
}

template <typename T>
bool AllFiniteOf(const T* p, int64_t n) {
  // Branch-free accumulation vectorises; x - x is NaN exactly when x is NaN or infinite.
  T acc = T(0);
  for (int64_t i = 0; i < n; ++i) acc += p[i] - p[i];
  return acc == T(0);
}

Status AllFiniteKernel(KernelContext& ctx) {
  TensorView* out = ctx.out(0);
  if (!out || out->dtype != DType::kBool || out->NumElements() != 1) {
    return Err(ctx, "the output must be a bool scalar");
  }
  bool finite = true;
  for (int i = 0; i < ctx.num_inputs() && finite; ++i) {
    const TensorView* x = ctx.in(i);
    if (!x) return Err(ctx, "input " + std::to_string(i) + " is missing");
    const int64_t n = x->NumElements();
    switch (x->dtype) {
      case DType::kFloat32:
        finite = AllFiniteOf(x->as<const float>(), n);
        break;
      case DType::kFloat64:
        finite = AllFiniteOf(x->as<const double>(), n);
        break;
      case DType::kFloat16:
      case DType::kBFloat16: {
        // Exponent bits all ones = inf or NaN.
        const uint16_t mask = x->dtype == DType::kFloat16 ? 0x7c00 : 0x7f80;
        const uint16_t* p = x->as<const uint16_t>();
        uint16_t bad = 0;
        for (int64_t k = 0; k < n; ++k) bad |= static_cast<uint16_t>((p[k] & mask) == mask);
        finite = bad == 0;
        break;
      }
      default:
        return Err(ctx, "input " + std::to_string(i) + " is not a float tensor");
    }
  }
  out->as<uint8_t>()[0] = finite ? 1 : 0;
  return Status::Ok();
}

Status UpdateLossScaleKernel(KernelContext& ctx) {
  const TensorView* s = ctx.in(0);
  const TensorView* g = ctx.in(1);
  const TensorView* k = ctx.in(2);
  const TensorView* f = ctx.in(3);
  if (!s || !g || !k || !f || s->dtype != DType::kFloat32 || g->dtype != DType::kInt64 ||
      k->dtype != DType::kInt64 || f->dtype != DType::kBool || ctx.num_outputs() != 3 ||
      !ctx.out(0) || !ctx.out(1) || !ctx.out(2)) {
    return Err(ctx,
               "expects (f32 scale, i64 growth tracker, i64 skipped, bool finite) -> 3 outputs");
  }
  float scale = s->as<const float>()[0];
  int64_t tracker = g->as<const int64_t>()[0];
  int64_t skipped = k->as<const int64_t>()[0];
  const bool finite = f->as<const uint8_t>()[0] != 0;
  if (ctx.attr_int("dynamic", 1) != 0) {
    if (finite) {
      if (++tracker >= ctx.attr_int("growth_interval", 2000)) {
        // As PyTorch's _amp_update_scale_: never grow past fp32's range to inf.
        const float grown = scale * ctx.attr_float("growth_factor", 2.0f);
        if (std::isfinite(grown)) scale = grown;
        tracker = 0;
      }
    } else {
      scale = scale * ctx.attr_float("backoff_factor", 0.5f);
      tracker = 0;
    }
  }
  if (!finite) ++skipped;
  ctx.out(0)->as<float>()[0] = scale;
  ctx.out(1)->as<int64_t>()[0] = tracker;
  ctx.out(2)->as<int64_t>()[0] = skipped;
  return Status::Ok();
}

}  // namespace

void RegisterOptimizerKernels(KernelRegistry& r) {
  r.Register(kAmpcDomain, "SGD", SgdKernel);
  r.Register(kAmpcDomain, "Adam", AdamKernel);
  r.Register(kAmpcDomain, "AllFinite", AllFiniteKernel);
  r.Register(kAmpcDomain, "UpdateLossScale", UpdateLossScaleKernel);
}

}  // namespace ampc::cpu
