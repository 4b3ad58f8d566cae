// CPU kernels for the optimizer ops of domain ai.onnx.preview.training (opset 1): Adagrad,
// Momentum and Adam. Inputs: R (scalar learning rate), T (scalar i64 update count), then n
// tensors X, n gradients G and n tensors per state kind; outputs: the n new X, then the n new
// states of each kind. The formulas are ONNX's, evaluated like ONNX's numpy reference
// (onnx/backend/test/case/node/{adagrad,momentum,adam}.py): scalar learning-rate adjustments
// in double, elementwise work in the tensors' type (float for f32, double for f64).
//
// Every element's inputs are read before its outputs are written, so an output may share its
// buffer with the same-indexed input.
#include <array>
#include <cmath>
#include <cstdint>
#include <string>

#include "runtime/cpu/convert.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/thread_pool.h"

namespace ampc::cpu {
namespace {

constexpr const char* kTrainingDomain = "ai.onnx.preview.training";
constexpr int64_t kGrain = 1 << 14;

Status Err(const KernelContext& ctx, const std::string& m) {
  return InvalidArgument(ctx.op + " '" + ctx.node_name + "': " + m);
}

// The scalar inputs R and T.
struct Scalars {
  double r = 0;
  int64_t t = 0;
};

// Validates arity, R, T and every X/G/state group; returns n (tensors per group).
StatusOr<int> Validate(const KernelContext& ctx, int groups, Scalars* s) {
  const int nin = ctx.num_inputs();
  if (nin < 2 + groups || (nin - 2) % groups != 0) {
    return Err(ctx, "has " + std::to_string(nin) + " inputs; expects R, T and " +
                        std::to_string(groups) + " equally long lists of tensors");
  }
  const int n = (nin - 2) / groups;
  if (ctx.num_outputs() != n * (groups - 1)) {
    return Err(ctx, "has " + std::to_string(ctx.num_outputs()) + " outputs, expects " +
                        std::to_string(n * (groups - 1)));
  }
  const TensorView* r = ctx.in(0);
  const TensorView* t = ctx.in(1);
  if (!r || (r->dtype != DType::kFloat32 && r->dtype != DType::kFloat64) || r->NumElements() != 1) {
    return Err(ctx, "input 0 (R) must be an f32 or f64 scalar");
  }
  if (!t || t->dtype != DType::kInt64 || t->NumElements() != 1) {
    return Err(ctx, "input 1 (T) must be an i64 scalar");
  }
  s->r = Load<double>(*r, 0);
  s->t = t->as<int64_t>()[0];
  for (int k = 0; k < n; ++k) {
    const TensorView* x = ctx.in(2 + k);
    for (int j = 0; j < groups; ++j) {
      const int i = 2 + j * n + k;
      const TensorView* v = ctx.in(i);
      if (!v) return Err(ctx, "input " + std::to_string(i) + " is missing");
      if (v->dtype != DType::kFloat32 && v->dtype != DType::kFloat64) {
        return Err(ctx, "input " + std::to_string(i) + " has type " +
                            std::string(DTypeName(v->dtype)) + "; " + ctx.op +
                            " supports f32 and f64 tensors only");
      }
      if (v->dtype != x->dtype || v->dims != x->dims) {
        return Err(ctx, "input " + std::to_string(i) + " (" + std::string(DTypeName(v->dtype)) +
                            DimsToString(v->dims) + ") does not match input " +
                            std::to_string(2 + k) + " (" + std::string(DTypeName(x->dtype)) +
                            DimsToString(x->dims) + ")");
      }
      if (j + 1 < groups) {
        const TensorView* o = ctx.out(j * n + k);
        if (o && (o->dtype != x->dtype || o->dims != x->dims)) {
          return Err(ctx, "output " + std::to_string(j * n + k) + " (" +
                              std::string(DTypeName(o->dtype)) + DimsToString(o->dims) +
                              ") does not match input " + std::to_string(2 + k) + " (" +
                              std::string(DTypeName(x->dtype)) + DimsToString(x->dims) + ")");
        }
      }
    }
  }
  return n;
}

// Applies `step` elementwise to group k: step(in, out) reads in[0..G) (X, G, states) and
// writes out[0..G-1) (new X, new states); omitted outputs are not stored.
template <typename C, int G, typename Step>
void ApplyGroup(const KernelContext& ctx, int n, int k, const Step& step) {
  std::array<const C*, G> in{};
  std::array<C*, G - 1> out{};
  for (int j = 0; j < G; ++j) in[j] = ctx.in(2 + j * n + k)->template as<const C>();
  for (int j = 0; j + 1 < G; ++j) {
    TensorView* o = ctx.out(j * n + k);
    out[j] = o ? o->as<C>() : nullptr;
  }
  const int64_t count = ctx.in(2 + k)->NumElements();
  ParallelFor(ctx.pool, count, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      std::array<C, G> v;
      for (int j = 0; j < G; ++j) v[j] = in[j][i];
      std::array<C, G - 1> r;
      step(v, r);
      for (int j = 0; j + 1 < G; ++j) {
        if (out[j]) out[j][i] = r[j];
      }
    }
  });
}

// Runs the typed body for each group, picking C from the group's dtype.
template <int G, template <typename> class Step, typename Params>
void ApplyAll(const KernelContext& ctx, int n, const Params& p) {
  for (int k = 0; k < n; ++k) {
    if (ctx.in(2 + k)->dtype == DType::kFloat64) {
      ApplyGroup<double, G>(ctx, n, k, Step<double>(p));
    } else {
      ApplyGroup<float, G>(ctx, n, k, Step<float>(p));
    }
  }
}

// ---- Adagrad --------------------------------------------------------------------------------
// r = R / (1 + T * decay_factor)
// G_regularized = norm_coefficient * X + G
// H_new = H + G_regularized * G_regularized
// H_adaptive = Sqrt(H_new) + epsilon
// X_new = X - r * G_regularized / H_adaptive

struct AdagradParams {
  double r;  // R already divided by (1 + T * decay_factor)
  float norm_coefficient, epsilon;
};

template <typename C>
struct AdagradStep {
  explicit AdagradStep(const AdagradParams& p)
      : r(static_cast<C>(p.r)), nc(p.norm_coefficient), eps(p.epsilon) {}
  void operator()(const std::array<C, 3>& v, std::array<C, 2>& o) const {
    const C x = v[0], g = v[1], h = v[2];
    const C g_reg = nc * x + g;
    const C h_new = h + g_reg * g_reg;
    const C h_adaptive = std::sqrt(h_new) + eps;
    o[0] = x - r * g_reg / h_adaptive;
    o[1] = h_new;
  }
  C r, nc, eps;
};

Status AdagradKernel(KernelContext& ctx) {
  Scalars s;
  ASSIGN_OR_RETURN(int n, Validate(ctx, 3, &s));
  const double decay = ctx.attr_float("decay_factor", 0.0f);
  AdagradParams p;
  p.r = s.r / (1.0 + static_cast<double>(s.t) * decay);
  p.norm_coefficient = ctx.attr_float("norm_coefficient", 0.0f);
  p.epsilon = ctx.attr_float("epsilon", 1e-6f);
  ApplyAll<3, AdagradStep>(ctx, n, p);
  return Status::Ok();
}

// ---- Momentum -------------------------------------------------------------------------------
// G_regularized = norm_coefficient * X + G
// beta_adjusted = T > 0 ? beta : 1
// V_new = alpha * V + beta_adjusted * G_regularized
// standard: X_new = X - R * V_new
// nesterov: X_new = X - R * (G_regularized + alpha * V_new)

struct MomentumParams {
  double r;
  float alpha, beta_adjusted, norm_coefficient;
  bool nesterov;
};

template <typename C>
struct MomentumStep {
  explicit MomentumStep(const MomentumParams& p)
      : r(static_cast<C>(p.r)),
        alpha(p.alpha),
        beta(p.beta_adjusted),
        nc(p.norm_coefficient),
        nesterov(p.nesterov) {}
  void operator()(const std::array<C, 3>& v, std::array<C, 2>& o) const {
    const C x = v[0], g = v[1], vel = v[2];
    const C g_reg = nc * x + g;
    const C v_new = alpha * vel + beta * g_reg;
    o[0] = nesterov ? x - r * (g_reg + alpha * v_new) : x - r * v_new;
    o[1] = v_new;
  }
  C r, alpha, beta, nc;
  bool nesterov;
};

Status MomentumKernel(KernelContext& ctx) {
  Scalars s;
  ASSIGN_OR_RETURN(int n, Validate(ctx, 3, &s));
  for (const char* key : {"alpha", "beta", "norm_coefficient"}) {
    const Attribute* a = ctx.attr(key);
    if (!a || a->kind() != AttrKind::kFloat) {
      return Err(ctx, std::string("needs the float attribute '") + key + "'");
    }
  }
  const std::string mode = ctx.attr_string("mode", "");
  if (mode != "standard" && mode != "nesterov") {
    return Err(ctx, "mode '" + mode + "' is not 'standard' or 'nesterov'");
  }
  MomentumParams p;
  p.r = s.r;
  p.alpha = ctx.attr_float("alpha", 0.0f);
  p.beta_adjusted = s.t > 0 ? ctx.attr_float("beta", 0.0f) : 1.0f;
  p.norm_coefficient = ctx.attr_float("norm_coefficient", 0.0f);
  p.nesterov = mode == "nesterov";
  ApplyAll<3, MomentumStep>(ctx, n, p);
  return Status::Ok();
}

// ---- Adam -----------------------------------------------------------------------------------
// G_regularized = norm_coefficient * X + G
// V_new = alpha * V + (1 - alpha) * G_regularized
// H_new = beta * H + (1 - beta) * G_regularized * G_regularized
// H_sqrt = Sqrt(H_new) + epsilon
// R_adjusted = T > 0 ? R * Sqrt(1 - beta**T) / (1 - alpha**T) : R
// X_new = X - R_adjusted * (V_new / H_sqrt)
// X_final = (1 - norm_coefficient_post) * X_new

struct AdamParams {
  double r_adjusted;
  float alpha, beta, epsilon, norm_coefficient, norm_coefficient_post;
};

template <typename C>
struct AdamStep {
  // The (1 - coefficient) factors are computed in double and rounded once, like the
  // reference's Python floats.
  explicit AdamStep(const AdamParams& p)
      : r(static_cast<C>(p.r_adjusted)),
        alpha(p.alpha),
        one_minus_alpha(static_cast<C>(1.0 - static_cast<double>(p.alpha))),
        beta(p.beta),
        one_minus_beta(static_cast<C>(1.0 - static_cast<double>(p.beta))),
        eps(p.epsilon),
        nc(p.norm_coefficient),
        post(static_cast<C>(1.0 - static_cast<double>(p.norm_coefficient_post))) {}
  void operator()(const std::array<C, 4>& v, std::array<C, 3>& o) const {
    const C x = v[0], g = v[1], m = v[2], h = v[3];
    const C g_reg = nc * x + g;
    const C v_new = alpha * m + one_minus_alpha * g_reg;
    const C h_new = beta * h + one_minus_beta * (g_reg * g_reg);
    const C h_sqrt = std::sqrt(h_new) + eps;
    const C x_new = x - r * (v_new / h_sqrt);
    o[0] = post * x_new;
    o[1] = v_new;
    o[2] = h_new;
  }
  C r, alpha, one_minus_alpha, beta, one_minus_beta, eps, nc, post;
};

Status AdamKernel(KernelContext& ctx) {
  Scalars s;
  ASSIGN_OR_RETURN(int n, Validate(ctx, 4, &s));
  AdamParams p;
  p.alpha = ctx.attr_float("alpha", 0.9f);
  p.beta = ctx.attr_float("beta", 0.999f);
  p.epsilon = ctx.attr_float("epsilon", 1e-6f);
  p.norm_coefficient = ctx.attr_float("norm_coefficient", 0.0f);
  p.norm_coefficient_post = ctx.attr_float("norm_coefficient_post", 0.0f);
  p.r_adjusted = s.r;
  if (s.t > 0) {
    const double t = static_cast<double>(s.t);
    p.r_adjusted = s.r * std::sqrt(1.0 - std::pow(static_cast<double>(p.beta), t)) /
                   (1.0 - std::pow(static_cast<double>(p.alpha), t));
  }
  ApplyAll<4, AdamStep>(ctx, n, p);
  return Status::Ok();
}

}  // namespace

void RegisterTrainingKernels(KernelRegistry& r) {
  r.Register(kTrainingDomain, "Adagrad", AdagradKernel);
  r.Register(kTrainingDomain, "Momentum", MomentumKernel);
  r.Register(kTrainingDomain, "Adam", AdamKernel);
}

}  // namespace ampc::cpu
