// CPU kernels for Attention (opset 23, without the KV cache), its backward op
// com.ampc::AttentionGrad, and RotaryEmbedding (opset 23).
//
// Attention, per batch b and query head h (key/value head h / (q_heads / kv_heads), ONNX's
// grouped-query mapping):
//   S = scale * Q K^T;  S = softcap * tanh(S / softcap) when softcap > 0;
//   B = attn_mask (bool: 0 where true, -inf where false; float: added; a mask narrower than the
//       key sequence counts as -inf beyond its end) + causal (-inf where key j > query i);
//   P = softmax(S + B) per row, a row whose bias B is -inf everywhere gives P = 0 (ONNX 1.23);
//   Y = P V.
// Q, K, V are [B, H, L, D] or [B, L, H*D]; both layouts are addressed in place by a row stride.
// f32/f16/bf16 compute in float (the GEMMs through runtime/cpu/gemm.h's sgemm), f64 in double,
// outputs rounded once. AttentionGrad recomputes P instead of keeping it (it would be B*H*L*L
// values per step):
//   dV = P^T dY;  dP = dY V^T;  dS = P * (dP - rowsum(dP * P)) (times 1 - tanh^2 under softcap);
//   dQ = scale * dS K;  dK = scale * dS^T Q  (dK, dV summed over the query heads of a group).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ir/float_math.h"
#include "ir/op_registry.h"
#include "runtime/cpu/broadcast.h"
#include "runtime/cpu/convert.h"
#include "runtime/cpu/gemm.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/thread_pool.h"

namespace ampc::cpu {
namespace {

std::string S(int64_t v) { return std::to_string(v); }

// Where a (batch, head) block of a Q, K, V, Y-like tensor starts, and its row stride.
struct Layout {
  bool three_d = false;
  int64_t heads = 0, len = 0, width = 0;  // width: the head size
  int64_t Base(int64_t b, int64_t h) const {
    return three_d ? b * len * heads * width + h * width : (b * heads + h) * len * width;
  }
  int64_t ld() const { return three_d ? heads * width : width; }
};

struct Geometry {
  int64_t batch = 0, hq = 0, hkv = 0, lq = 0, lkv = 0;
  Layout q, k, v, y;
  double scale = 1.0;
  float softcap = 0.0f;
  bool causal = false;
};

StatusOr<Geometry> ReadGeometry(const KernelContext& ctx, const TensorView& Q, const TensorView& K,
                                const TensorView& V) {
  const std::string where = ctx.op + " '" + ctx.node_name + "': ";
  if (Q.rank() != K.rank() || Q.rank() != V.rank() || (Q.rank() != 3 && Q.rank() != 4)) {
    return InvalidArgument(where + "Q, K and V must all be 3-D or all 4-D");
  }
  Geometry g;
  g.batch = Q.dims[0];
  const bool three = Q.rank() == 3;
  if (three) {
    g.hq = ctx.attr_int("q_num_heads", 0);
    g.hkv = ctx.attr_int("kv_num_heads", 0);
    if (g.hq <= 0 || g.hkv <= 0 || Q.dims[2] % g.hq != 0 || K.dims[2] % g.hkv != 0 ||
        V.dims[2] % g.hkv != 0) {
      return InvalidArgument(where + "3-D Q, K, V need head counts that divide their widths");
    }
    g.lq = Q.dims[1];
    g.lkv = K.dims[1];
    g.q = {true, g.hq, g.lq, Q.dims[2] / g.hq};
    g.k = {true, g.hkv, g.lkv, K.dims[2] / g.hkv};
    g.v = {true, g.hkv, V.dims[1], V.dims[2] / g.hkv};
  } else {
    g.hq = Q.dims[1];
    g.hkv = K.dims[1];
    g.lq = Q.dims[2];
    g.lkv = K.dims[2];
    g.q = {false, g.hq, g.lq, Q.dims[3]};
    g.k = {false, g.hkv, g.lkv, K.dims[3]};
    g.v = {false, V.dims[1], V.dims[2], V.dims[3]};
  }
  if (K.dims[0] != g.batch || V.dims[0] != g.batch || g.v.heads != g.hkv || g.v.len != g.lkv ||
      g.q.width != g.k.width || g.hkv <= 0 || g.hq % g.hkv != 0) {
    return InvalidArgument(where + "Q " + DimsToString(Q.dims) + ", K " + DimsToString(K.dims) +
                           " and V " + DimsToString(V.dims) + " do not fit together");
  }
  g.y = {three, g.hq, g.lq, g.v.width};
  const Attribute* sc = ctx.attr("scale");
  g.scale = sc && sc->kind() == AttrKind::kFloat
                ? static_cast<double>(sc->f())
                : 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(g.q.width, 1)));
  g.softcap = ctx.attr_float("softcap", 0.0f);
  g.causal = ctx.attr_int("is_causal", 0) != 0;
  return g;
}

std::vector<int64_t> DimsOf(const Geometry& g, const Layout& l) {
  if (l.three_d) return {g.batch, l.len, l.heads * l.width};
  return {g.batch, l.heads, l.len, l.width};
}

// attn_mask viewed as [batch, q heads, q len, its own last dim].
struct MaskView {
  const TensorView* t = nullptr;
  std::vector<int64_t> strides;  // 4 entries
  int64_t cols = 0;
};

StatusOr<MaskView> ReadMask(const KernelContext& ctx, const Geometry& g, const TensorView* m) {
  MaskView mv;
  if (!m) return mv;
  const std::string where = ctx.op + " '" + ctx.node_name + "': attn_mask ";
  if (m->rank() > 4 || m->rank() == 0) return InvalidArgument(where + "must have rank 1 to 4");
  mv.cols = m->dims.back();
  const std::vector<int64_t> full = {g.batch, g.hq, g.lq, mv.cols};
  for (int64_t i = 0; i < m->rank(); ++i) {
    const int64_t d = m->dims[m->rank() - 1 - i], f = full[3 - i];
    if (d != f && d != 1) {
      return InvalidArgument(where + DimsToString(m->dims) + " does not broadcast to " +
                             DimsToString(full));
    }
  }
  if (mv.cols > g.lkv) {
    return InvalidArgument(where + "has " + S(mv.cols) + " columns for " + S(g.lkv) + " keys");
  }
  mv.t = m;
  mv.strides = BroadcastStrides(m->dims, full);
  return mv;
}

// One (b, h) block's scores -> probabilities, in place: row i of `s` (lkv wide) becomes P's row.
// `raw` (optional) receives tanh(S / softcap) for the backward pass.
template <typename T>
void Probabilities(const Geometry& g, const MaskView& mask, int64_t b, int64_t h, T* s, T* raw) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < g.lq; ++i) {
    T* row = s + i * g.lkv;
    bool any = false;
    T mx = neg_inf;
    for (int64_t j = 0; j < g.lkv; ++j) {
      T bias = 0;
      if (g.causal && j > i) bias = neg_inf;
      if (mask.t) {
        if (j >= mask.cols) {
          bias = neg_inf;
        } else {
          const int64_t off =
              b * mask.strides[0] + h * mask.strides[1] + i * mask.strides[2] + j * mask.strides[3];
          if (mask.t->dtype == DType::kBool) {
            if (!Load<int64_t>(*mask.t, off)) bias = neg_inf;
          } else {
            bias += Load<T>(*mask.t, off);
          }
        }
      }
      T v = row[j];
      if (g.softcap > 0) {
        const T t = fmath::Tanh(v / static_cast<T>(g.softcap));
        if (raw) raw[i * g.lkv + j] = t;
        v = static_cast<T>(g.softcap) * t;
      }
      v += bias;
      any = any || bias != neg_inf;
      row[j] = v;
      mx = std::max(mx, v);
    }
    if (!any) {  // every key masked: ONNX's zero row
      std::fill(row, row + g.lkv, T(0));
      continue;
    }
    double sum = 0;
    for (int64_t j = 0; j < g.lkv; ++j) {
      row[j] = fmath::Exp(row[j] - mx);
      sum += row[j];
    }
    const T inv = static_cast<T>(1.0 / sum);
    for (int64_t j = 0; j < g.lkv; ++j) row[j] *= inv;
  }
}

template <typename T>
Status AttentionImpl(KernelContext& ctx, const Geometry& g, const MaskView& mask) {
  ComputeIn<T> qin(*ctx.in(0), ctx.pool), kin(*ctx.in(1), ctx.pool), vin(*ctx.in(2), ctx.pool);
  ComputeOut<T> yout(*ctx.out(0));
  const T *q = qin.get(), *k = kin.get(), *v = vin.get();
  T* y = yout.get();
  const int64_t group = g.hq / g.hkv;
  ParallelFor(ctx.pool, g.batch * g.hq, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> s(static_cast<size_t>(g.lq * g.lkv));
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / g.hq, h = bh % g.hq, hk = h / group;
      GemmT(false, true, g.lq, g.lkv, g.q.width, static_cast<T>(g.scale), q + g.q.Base(b, h),
            g.q.ld(), k + g.k.Base(b, hk), g.k.ld(), T(0), s.data(), g.lkv);
      Probabilities<T>(g, mask, b, h, s.data(), nullptr);
      GemmT(false, false, g.lq, g.v.width, g.lkv, T(1), s.data(), g.lkv, v + g.v.Base(b, hk),
            g.v.ld(), T(0), y + g.y.Base(b, h), g.y.ld());
    }
  });
  yout.Finish(ctx.pool);
  return Status::Ok();
}

Status CheckFloatSame(const KernelContext& ctx, std::initializer_list<int> inputs) {
  const DType t = ctx.in(*inputs.begin()) ? ctx.in(*inputs.begin())->dtype : DType::kUndefined;
  for (int i : inputs) {
    if (!ctx.in(i) || ctx.in(i)->dtype != t || !IsFloat(t)) {
      return InvalidArgument(ctx.op + " '" + ctx.node_name + "': input " + S(i) +
                             " must be a float tensor of the others' type");
    }
  }
  return Status::Ok();
}

Status CheckOut(const KernelContext& ctx, int i, DType t, const std::vector<int64_t>& dims) {
  const TensorView* o = ctx.out(i);
  if (!o || o->dtype != t || o->dims != dims) {
    return InvalidArgument(ctx.op + " '" + ctx.node_name + "': output " + S(i) + " must be " +
                           std::string(DTypeName(t)) + DimsToString(dims));
  }
  return Status::Ok();
}

Status AttentionKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckFloatSame(ctx, {0, 1, 2}));
  if (ctx.in(4) || ctx.in(5) || ctx.out(1) || ctx.out(2) || ctx.out(3)) {
    return Unimplemented("Attention '" + ctx.node_name + "': KV cache and debug outputs");
  }
  ASSIGN_OR_RETURN(Geometry g, ReadGeometry(ctx, *ctx.in(0), *ctx.in(1), *ctx.in(2)));
  ASSIGN_OR_RETURN(MaskView mask, ReadMask(ctx, g, ctx.in(3)));
  RETURN_IF_ERROR(CheckOut(ctx, 0, ctx.in(0)->dtype, DimsOf(g, g.y)));
  if (ctx.out(0)->NumElements() == 0) return Status::Ok();
  if (ctx.in(0)->dtype == DType::kFloat64) return AttentionImpl<double>(ctx, g, mask);
  return AttentionImpl<float>(ctx, g, mask);
}

// inputs: dY, Q, K, V, attn_mask?; outputs dQ, dK, dV.
template <typename T>
Status AttentionGradImpl(KernelContext& ctx, const Geometry& g, const MaskView& mask) {
  ComputeIn<T> dyin(*ctx.in(0), ctx.pool), qin(*ctx.in(1), ctx.pool), kin(*ctx.in(2), ctx.pool),
      vin(*ctx.in(3), ctx.pool);
  ComputeOut<T> dqout(*ctx.out(0)), dkout(*ctx.out(1)), dvout(*ctx.out(2));
  const T *dy = dyin.get(), *q = qin.get(), *k = kin.get(), *v = vin.get();
  T *dq = dqout.get(), *dk = dkout.get(), *dv = dvout.get();
  std::fill(dk, dk + ctx.out(1)->NumElements(), T(0));  // summed over a group's query heads
  std::fill(dv, dv + ctx.out(2)->NumElements(), T(0));
  const int64_t group = g.hq / g.hkv;
  const int64_t n = g.lq * g.lkv;
  ParallelFor(ctx.pool, g.batch * g.hkv, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> p(n), dp(n), raw(g.softcap > 0 ? n : 0);
    for (int64_t bk = begin; bk < end; ++bk) {
      const int64_t b = bk / g.hkv, hk = bk % g.hkv;
      const T* kb = k + g.k.Base(b, hk);
      const T* vb = v + g.v.Base(b, hk);
      for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
        const T* qb = q + g.q.Base(b, h);
        const T* dyb = dy + g.y.Base(b, h);
        GemmT(false, true, g.lq, g.lkv, g.q.width, static_cast<T>(g.scale), qb, g.q.ld(), kb,
              g.k.ld(), T(0), p.data(), g.lkv);
        Probabilities<T>(g, mask, b, h, p.data(), raw.empty() ? nullptr : raw.data());
        GemmT(false, true, g.lq, g.lkv, g.v.width, T(1), dyb, g.y.ld(), vb, g.v.ld(), T(0),
              dp.data(), g.lkv);
        GemmT(true, false, g.lkv, g.v.width, g.lq, T(1), p.data(), g.lkv, dyb, g.y.ld(), T(1),
              dv + g.v.Base(b, hk), g.v.ld());
        for (int64_t i = 0; i < g.lq; ++i) {
          T* dpr = dp.data() + i * g.lkv;
          const T* pr = p.data() + i * g.lkv;
          double dot = 0;
          for (int64_t j = 0; j < g.lkv; ++j) dot += static_cast<double>(dpr[j]) * pr[j];
          for (int64_t j = 0; j < g.lkv; ++j) {
            T ds = pr[j] * (dpr[j] - static_cast<T>(dot));
            if (!raw.empty()) {
              const T t = raw[i * g.lkv + j];
              ds *= T(1) - t * t;
            }
            dpr[j] = ds;
          }
        }
        GemmT(false, false, g.lq, g.q.width, g.lkv, static_cast<T>(g.scale), dp.data(), g.lkv, kb,
              g.k.ld(), T(0), dq + g.q.Base(b, h), g.q.ld());
        GemmT(true, false, g.lkv, g.k.width, g.lq, static_cast<T>(g.scale), dp.data(), g.lkv, qb,
              g.q.ld(), T(1), dk + g.k.Base(b, hk), g.k.ld());
      }
    }
  });
  dqout.Finish(ctx.pool);
  dkout.Finish(ctx.pool);
  dvout.Finish(ctx.pool);
  return Status::Ok();
}

Status AttentionGradKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckFloatSame(ctx, {0, 1, 2, 3}));
  ASSIGN_OR_RETURN(Geometry g, ReadGeometry(ctx, *ctx.in(1), *ctx.in(2), *ctx.in(3)));
  ASSIGN_OR_RETURN(MaskView mask, ReadMask(ctx, g, ctx.in(4)));
  const DType t = ctx.in(1)->dtype;
  if (ctx.in(0)->dims != DimsOf(g, g.y)) {
    return InvalidArgument("AttentionGrad '" + ctx.node_name + "': dY must be " +
                           DimsToString(DimsOf(g, g.y)));
  }
  for (int i = 0; i < 3; ++i) RETURN_IF_ERROR(CheckOut(ctx, i, t, ctx.in(i + 1)->dims));
  if (t == DType::kFloat64) return AttentionGradImpl<double>(ctx, g, mask);
  return AttentionGradImpl<float>(ctx, g, mask);
}

// ---------------------------------------------------------------------- RotaryEmbedding

// X [B, H, S, D] or [B, S, H*D]; rotates the first R of each head's D values as R/2 pairs
// (x[i], x[i + R/2]), or (x[2i], x[2i+1]) when interleaved, by the angle whose cos / sin are the
// caches' entries for the token's position.
template <typename T>
Status RotaryImpl(KernelContext& ctx, int64_t heads, int64_t head, int64_t rdim) {
  const TensorView& X = *ctx.in(0);
  const TensorView &C = *ctx.in(1), &Sn = *ctx.in(2);
  const TensorView* pos = ctx.in(3);
  const bool three = X.rank() == 3;
  const int64_t batch = X.dims[0], seq = three ? X.dims[1] : X.dims[2];
  const int64_t half = rdim / 2;
  const bool interleaved = ctx.attr_int("interleaved", 0) != 0;
  if (pos) {
    if (pos->dims != std::vector<int64_t>{batch, seq} || C.rank() != 2 || Sn.dims != C.dims ||
        C.dims[1] != half) {
      return InvalidArgument("RotaryEmbedding '" + ctx.node_name +
                             "': with position_ids [batch, seq] the caches must be [positions, " +
                             S(half) + "]");
    }
    for (int64_t i = 0; i < pos->NumElements(); ++i) {
      const int64_t p = Load<int64_t>(*pos, i);
      if (p < 0 || p >= C.dims[0]) {
        return InvalidArgument("RotaryEmbedding '" + ctx.node_name + "': position id " + S(p) +
                               " is outside the caches' " + S(C.dims[0]) + " positions");
      }
    }
  } else if (C.dims != std::vector<int64_t>{batch, seq, half} || Sn.dims != C.dims) {
    return InvalidArgument("RotaryEmbedding '" + ctx.node_name +
                           "': without position_ids the caches must be [batch, seq, " + S(half) +
                           "]");
  }
  ComputeIn<T> xin(X, ctx.pool);
  ComputeOut<T> yout(*ctx.out(0));
  const T* x = xin.get();
  T* y = yout.get();
  ParallelFor(ctx.pool, batch * seq, std::max<int64_t>(1, 4096 / (heads * head)),
              [&](int64_t begin, int64_t end) {
                std::vector<T> c(half), s(half);
                for (int64_t bs = begin; bs < end; ++bs) {
                  const int64_t b = bs / seq, t = bs % seq;
                  const int64_t row = pos ? Load<int64_t>(*pos, bs) * half : bs * half;
                  for (int64_t i = 0; i < half; ++i) {
                    c[i] = Load<T>(C, row + i);
                    s[i] = Load<T>(Sn, row + i);
                  }
                  for (int64_t h = 0; h < heads; ++h) {
                    const int64_t off =
                        three ? (bs * heads + h) * head : ((b * heads + h) * seq + t) * head;
                    const T* xp = x + off;
                    T* yp = y + off;
                    for (int64_t i = 0; i < half; ++i) {
                      const int64_t i1 = interleaved ? 2 * i : i;
                      const int64_t i2 = interleaved ? 2 * i + 1 : i + half;
                      const T x1 = xp[i1], x2 = xp[i2];
                      yp[i1] = c[i] * x1 - s[i] * x2;
                      yp[i2] = s[i] * x1 + c[i] * x2;
                    }
                    std::copy(xp + rdim, xp + head, yp + rdim);
                  }
                }
              });
  yout.Finish(ctx.pool);
  return Status::Ok();
}

Status RotaryKernel(KernelContext& ctx) {
  RETURN_IF_ERROR(CheckFloatSame(ctx, {0, 1, 2}));
  const TensorView& X = *ctx.in(0);
  if (X.rank() != 3 && X.rank() != 4) {
    return InvalidArgument("RotaryEmbedding '" + ctx.node_name + "': X must be 3-D or 4-D");
  }
  int64_t heads = X.rank() == 4 ? X.dims[1] : ctx.attr_int("num_heads", 0);
  if (heads <= 0 || (X.rank() == 3 && X.dims[2] % heads != 0)) {
    return InvalidArgument("RotaryEmbedding '" + ctx.node_name + "': num_heads " + S(heads) +
                           " does not divide the hidden size");
  }
  const int64_t head = X.rank() == 4 ? X.dims[3] : X.dims[2] / heads;
  const int64_t rdim =
      ctx.attr_int("rotary_embedding_dim", 0) == 0 ? head : ctx.attr_int("rotary_embedding_dim", 0);
  if (rdim % 2 != 0 || rdim > head) {
    return InvalidArgument("RotaryEmbedding '" + ctx.node_name + "': rotary dim " + S(rdim) +
                           " must be even and at most the head size " + S(head));
  }
  RETURN_IF_ERROR(CheckOut(ctx, 0, X.dtype, X.dims));
  if (X.NumElements() == 0) return Status::Ok();
  if (X.dtype == DType::kFloat64) return RotaryImpl<double>(ctx, heads, head, rdim);
  return RotaryImpl<float>(ctx, heads, head, rdim);
}

}  // namespace

void RegisterAttentionKernels(KernelRegistry& r) {
  r.Register("", "Attention", AttentionKernel);
  r.Register(kAmpcDomain, "AttentionGrad", AttentionGradKernel);
  r.Register("", "RotaryEmbedding", RotaryKernel);
}

}  // namespace ampc::cpu
