// Type and shape inference for the normalisation and attention ops added after opset 17:
// GroupNormalization (version 21's per-channel scale and bias; the importer rewrites version 18's
// per-group ones), RMSNormalization (23), RotaryEmbedding (23), Attention (23, without the KV
// cache inputs and the qk_matmul_output debug output) and its backward op com.ampc::AttentionGrad.
#include "ir/op_registry.h"
#include "ir/ops/infer_util.h"

namespace ampc {
namespace {

using infer::DimsToString;
using infer::InType;
using infer::MergeDims;
using infer::SetOutput;

std::string S(int64_t v) { return std::to_string(v); }

// stash_type (GroupNormalization 21, RMSNormalization): the precision of the statistics. ampc's
// kernels compute them in fp32 (f64 inputs: double) whatever it says, as kernel.h requires.
Status CheckStashType(const Node& node) {
  auto stash = infer::DTypeFromOnnx(node.attr_int("stash_type", 1));
  if (!stash.ok() || !IsFloat(*stash)) {
    return InvalidArgument("stash_type " + S(node.attr_int("stash_type", 1)) +
                           " is not a float type");
  }
  return Status::Ok();
}

Status RequireVector(const Node& node, int i, Dim* n, const char* what) {
  const TensorType& t = node.input(i)->type();
  if (!t.has_rank) return Status::Ok();
  if (t.rank() != 1)
    return InvalidArgument(std::string(what) + " must be 1-D, got " + DimsToString(t.dims));
  ASSIGN_OR_RETURN(
      *n, MergeDims(*n, t.dims[0], std::string(what) + " size differs from the channel count"));
  return Status::Ok();
}

Status InferGroupNorm(Node& node) {
  for (int i = 0; i < 3; ++i) RETURN_IF_ERROR(infer::RequireFloat(node, i));
  RETURN_IF_ERROR(infer::SameDType(node, {0, 1, 2}));
  RETURN_IF_ERROR(CheckStashType(node));
  const Attribute* g = node.attr("num_groups");
  if (!g || g->kind() != AttrKind::kInt || g->i() <= 0) {
    return InvalidArgument("GroupNormalization needs a positive int attribute 'num_groups'");
  }
  const TensorType& x = node.input(0)->type();
  if (x.has_rank && x.rank() < 2) {
    return InvalidArgument("GroupNormalization input must have rank >= 2, got " +
                           DimsToString(x.dims));
  }
  Dim c = x.has_rank ? x.dims[1] : Dim();
  RETURN_IF_ERROR(RequireVector(node, 1, &c, "scale"));
  RETURN_IF_ERROR(RequireVector(node, 2, &c, "bias"));
  if (c.is_static() && c.value() % g->i() != 0) {
    return InvalidArgument("num_groups " + S(g->i()) + " does not divide the " + c.ToString() +
                           " channels");
  }
  SetOutput(node, 0, x);
  return Status::Ok();
}

Status InferRMSNorm(Node& node) {
  RETURN_IF_ERROR(infer::RequireFloat(node, 0));
  RETURN_IF_ERROR(infer::RequireFloat(node, 1));
  if (node.input(0)->dtype() != node.input(1)->dtype()) {
    return Unimplemented("RMSNormalization with X and scale of different types (" +
                         infer::TypeName(node.input(0)->dtype()) + ", " +
                         infer::TypeName(node.input(1)->dtype()) + ")");
  }
  RETURN_IF_ERROR(CheckStashType(node));
  const TensorType& x = node.input(0)->type();
  if (x.has_rank) {
    if (x.rank() == 0) return InvalidArgument("RMSNormalization needs an input of rank >= 1");
    ASSIGN_OR_RETURN(int64_t axis, infer::NormalizeAxis(node.attr_int("axis", -1), x.rank()));
    const TensorType& s = node.input(1)->type();
    if (s.has_rank) {
      const std::vector<Dim> normalized(x.dims.begin() + axis, x.dims.end());
      RETURN_IF_ERROR(infer::CheckUnidirectional(normalized, s.dims, "scale"));
    }
  }
  SetOutput(node, 0, x);
  return Status::Ok();
}

// RotaryEmbedding: X [B, H, S, D] or [B, S, H*D] (num_heads given); caches [P, R/2] indexed by
// position_ids [B, S], or [B, S, R/2] without them; R = rotary_embedding_dim (0: D), even.
Status InferRotary(Node& node) {
  RETURN_IF_ERROR(infer::RequireFloat(node, 0));
  RETURN_IF_ERROR(infer::SameDType(node, {0, 1, 2}));
  if (node.input(3)) RETURN_IF_ERROR(infer::RequireInt64(node, 3));
  const TensorType& x = node.input(0)->type();
  const int64_t heads = node.attr_int("num_heads", 0);
  const int64_t rdim = node.attr_int("rotary_embedding_dim", 0);
  if (rdim < 0 || rdim % 2 != 0) {
    return InvalidArgument("rotary_embedding_dim " + S(rdim) + " must be even and >= 0");
  }
  SetOutput(node, 0, x);
  if (!x.has_rank) return Status::Ok();
  if (x.rank() != 3 && x.rank() != 4) {
    return InvalidArgument("RotaryEmbedding input must have rank 3 or 4, got " +
                           DimsToString(x.dims));
  }
  Dim head = x.dims[3 - (x.rank() == 3 ? 1 : 0)];
  Dim seq = x.dims[x.rank() == 4 ? 2 : 1];
  if (x.rank() == 3) {
    if (heads <= 0) return InvalidArgument("RotaryEmbedding of a 3-D input needs num_heads");
    if (head.is_static()) {
      if (head.value() % heads != 0) {
        return InvalidArgument("hidden size " + head.ToString() +
                               " is not a multiple of num_heads " + S(heads));
      }
      head = Dim(head.value() / heads);
    } else {
      head = Dim();
    }
  }
  if (head.is_static()) {
    const int64_t r = rdim == 0 ? head.value() : rdim;
    if (r > head.value() || r % 2 != 0) {
      return InvalidArgument("rotary dim " + S(r) + " must be even and at most the head size " +
                             head.ToString());
    }
    for (int i : {1, 2}) {
      const TensorType* c = InType(node, i);
      if (!c->has_rank) continue;
      const int64_t want_rank = node.input(3) ? 2 : 3;
      if (c->rank() != want_rank) {
        return InvalidArgument(
            std::string(i == 1 ? "cos_cache" : "sin_cache") + " must have rank " + S(want_rank) +
            (node.input(3) ? " (with position_ids)" : " (without position_ids)") + ", got " +
            DimsToString(c->dims));
      }
      RETURN_IF_ERROR(
          MergeDims(c->dims.back(), Dim(r / 2), "cache width and rotary dim / 2").status());
      if (!node.input(3))
        RETURN_IF_ERROR(MergeDims(c->dims[1], seq, "cache and input sequence length").status());
    }
  }
  if (const TensorType* p = InType(node, 3); p && p->has_rank) {
    if (p->rank() != 2)
      return InvalidArgument("position_ids must be [batch, sequence], got " +
                             DimsToString(p->dims));
    RETURN_IF_ERROR(MergeDims(p->dims[1], seq, "position_ids and input sequence length").status());
  }
  return Status::Ok();
}

// The attention geometry: batch, heads, sequence lengths, head sizes.
struct AttentionDims {
  Dim batch, q_heads, kv_heads, q_len, kv_len, head, v_head;
};

StatusOr<AttentionDims> ReadAttentionDims(const Node& node) {
  const TensorType& q = node.input(0)->type();
  const TensorType& k = node.input(1)->type();
  const TensorType& v = node.input(2)->type();
  AttentionDims d;
  if (!q.has_rank || !k.has_rank || !v.has_rank) return d;
  if (q.rank() != k.rank() || q.rank() != v.rank() || (q.rank() != 3 && q.rank() != 4)) {
    return InvalidArgument("Q, K and V must all be 3-D or all 4-D, got " + DimsToString(q.dims) +
                           ", " + DimsToString(k.dims) + ", " + DimsToString(v.dims));
  }
  ASSIGN_OR_RETURN(d.batch, MergeDims(q.dims[0], k.dims[0], "Q and K batch"));
  ASSIGN_OR_RETURN(d.batch, MergeDims(d.batch, v.dims[0], "Q and V batch"));
  const int64_t qh = node.attr_int("q_num_heads", 0), kvh = node.attr_int("kv_num_heads", 0);
  if (q.rank() == 4) {
    d.q_heads = q.dims[1];
    ASSIGN_OR_RETURN(d.kv_heads, MergeDims(k.dims[1], v.dims[1], "K and V heads"));
    d.q_len = q.dims[2];
    ASSIGN_OR_RETURN(d.kv_len, MergeDims(k.dims[2], v.dims[2], "K and V sequence length"));
    ASSIGN_OR_RETURN(d.head, MergeDims(q.dims[3], k.dims[3], "Q and K head size"));
    d.v_head = v.dims[3];
    if (qh) {
      ASSIGN_OR_RETURN(d.q_heads, MergeDims(d.q_heads, Dim(qh), "q_num_heads"));
    }
    if (kvh) {
      ASSIGN_OR_RETURN(d.kv_heads, MergeDims(d.kv_heads, Dim(kvh), "kv_num_heads"));
    }
  } else {
    if (qh <= 0 || kvh <= 0) {
      return InvalidArgument("3-D Q, K, V need attributes q_num_heads and kv_num_heads");
    }
    d.q_heads = Dim(qh);
    d.kv_heads = Dim(kvh);
    d.q_len = q.dims[1];
    ASSIGN_OR_RETURN(d.kv_len, MergeDims(k.dims[1], v.dims[1], "K and V sequence length"));
    auto per_head = [](const Dim& hidden, int64_t h, const char* what) -> StatusOr<Dim> {
      if (!hidden.is_static()) return Dim();
      if (hidden.value() % h != 0) {
        return InvalidArgument(std::string(what) + " hidden size " + hidden.ToString() +
                               " is not a multiple of its head count " + S(h));
      }
      return Dim(hidden.value() / h);
    };
    ASSIGN_OR_RETURN(Dim qd, per_head(q.dims[2], qh, "Q"));
    ASSIGN_OR_RETURN(Dim kd, per_head(k.dims[2], kvh, "K"));
    ASSIGN_OR_RETURN(d.head, MergeDims(qd, kd, "Q and K head size"));
    ASSIGN_OR_RETURN(d.v_head, per_head(v.dims[2], kvh, "V"));
  }
  if (d.q_heads.is_static() && d.kv_heads.is_static() &&
      (d.kv_heads.value() == 0 || d.q_heads.value() % d.kv_heads.value() != 0)) {
    return InvalidArgument("q heads " + d.q_heads.ToString() + " are not a multiple of kv heads " +
                           d.kv_heads.ToString());
  }
  return d;
}

Status CheckAttentionInputs(const Node& node) {
  for (int i = 0; i < 3; ++i) RETURN_IF_ERROR(infer::RequireFloat(node, i));
  RETURN_IF_ERROR(infer::SameDType(node, {0, 1, 2}));
  if (node.input(4) || node.input(5)) {
    return Unimplemented(
        "Attention with past_key/past_value (a KV cache, for incremental "
        "decoding) is not supported");
  }
  if (const Value* m = node.input(3)) {
    if (m->dtype() != DType::kBool && m->dtype() != node.input(0)->dtype()) {
      return InvalidArgument("attn_mask must be bool or " +
                             infer::TypeName(node.input(0)->dtype()) + ", got " +
                             infer::TypeName(m->dtype()));
    }
    if (m->type().has_rank && m->type().rank() > 4) {
      return InvalidArgument("attn_mask has rank " + S(m->type().rank()) + ", at most 4");
    }
  }
  if (node.attr_float("softcap", 0.0f) < 0.0f) return InvalidArgument("softcap must be >= 0");
  if (const Attribute* p = node.attr("softmax_precision")) {
    auto t = infer::DTypeFromOnnx(p->kind() == AttrKind::kInt ? p->i() : -1);
    if (!t.ok() || !IsFloat(*t)) return InvalidArgument("softmax_precision must be a float type");
  }
  return Status::Ok();
}

TensorType AttentionOutput(const Node& node, const AttentionDims& d, DType dt) {
  const TensorType& q = node.input(0)->type();
  if (!q.has_rank) return TensorType::UnknownShape(dt);
  if (q.rank() == 4) return TensorType(dt, {d.batch, d.q_heads, d.q_len, d.v_head});
  Dim hidden = d.v_head.is_static() ? Dim(d.q_heads.value() * d.v_head.value()) : Dim();
  return TensorType(dt, {d.batch, d.q_len, hidden});
}

Status InferAttention(Node& node) {
  RETURN_IF_ERROR(CheckAttentionInputs(node));
  static const char* const kOutputs[] = {"", "present_key", "present_value", "qk_matmul_output"};
  for (int i = 1; i < 4; ++i) {
    if (node.output(i)) {  // the importer drops them when nothing reads them
      return Unimplemented("Attention output " + std::string(kOutputs[i]) + " (" +
                           (i < 3 ? "a KV cache" : "a debug output") + ") is not supported");
    }
  }
  ASSIGN_OR_RETURN(AttentionDims d, ReadAttentionDims(node));
  SetOutput(node, 0, AttentionOutput(node, d, node.input(0)->dtype()));
  return Status::Ok();
}

// com.ampc::AttentionGrad(dY, Q, K, V, attn_mask?) -> dQ, dK, dV, with Attention's attributes.
Status InferAttentionGrad(Node& node) {
  RETURN_IF_ERROR(infer::RequireFloat(node, 0));
  if (node.input(0)->dtype() != node.input(1)->dtype()) {
    return InvalidArgument("dY and Q have different types");
  }
  // Inputs shifted by one: view the node's Q, K, V, mask as Attention's 0..3.
  for (int i = 1; i < 4; ++i) RETURN_IF_ERROR(infer::RequireFloat(node, i));
  RETURN_IF_ERROR(infer::SameDType(node, {1, 2, 3}));
  for (int i = 0; i < 3; ++i) SetOutput(node, i, node.input(i + 1)->type());
  return Status::Ok();
}

}  // namespace

void RegisterNormAttentionOps(OpRegistry& r) {
  RegisterOp(r, "GroupNormalization", 3, 3, InferGroupNorm);
  RegisterOp(r, "RMSNormalization", 2, 2, InferRMSNorm);
  RegisterOp(r, "RotaryEmbedding", 3, 4, InferRotary);
  RegisterOp(r, "Attention", 3, 6, InferAttention, 1, 4);
  RegisterOp(r, "AttentionGrad", 4, 5, InferAttentionGrad, 3, 3, kAmpcDomain);
}

}  // namespace ampc
