#include "passes/decompose_attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "ir/node_emitter.h"
#include "ir/op_registry.h"

namespace ampc {
namespace {

class Decomposer {
 public:
  Decomposer(Graph& g, Node& n) : g_(g), n_(n), e_(g, RoleOf(n)), stem_(n.name()) {}

  Status Run() {
    Value* q = n_.input(0);
    Value* k = n_.input(1);
    Value* v = n_.input(2);
    Value* mask = n_.num_inputs() > 3 ? n_.input(3) : nullptr;
    const TensorType& qt = q->type();
    if (!qt.has_rank || (qt.rank() != 3 && qt.rank() != 4)) {
      return Fail("needs Q of known rank 3 or 4, got " + qt.ToString());
    }
    dt_ = q->dtype();
    const bool three_d = qt.rank() == 3;
    int64_t hq = n_.attr_int("q_num_heads", 0), hkv = n_.attr_int("kv_num_heads", 0);
    if (three_d) {
      RETURN_IF_ERROR(ToHeads(q, hq, "q"));
      RETURN_IF_ERROR(ToHeads(k, hkv, "k"));
      RETURN_IF_ERROR(ToHeads(v, hkv, "v"));
    } else {
      const Dim& qh = qt.dims[1];
      const Dim kh = k->type().has_rank ? k->type().dims[1] : Dim();
      if (qh != kh) {
        if (!qh.is_static() || !kh.is_static()) {
          return Fail("grouped-query attention needs static head counts, got Q " + qt.ToString() +
                      " and K " + k->type().ToString());
        }
        hq = qh.value();
        hkv = kh.value();
      } else {
        hq = hkv = 1;  // the same count: no regrouping, whatever it is
      }
    }
    const bool grouped = hq != hkv;
    // Default scale 1/sqrt(head size), the CPU kernel's value.
    double scale = 0;
    if (const Attribute* a = n_.attr("scale"); a && a->kind() == AttrKind::kFloat) {
      scale = a->f();
    } else {
      const Dim& d = q->type().dims[3];
      if (!d.is_static()) {
        return Fail("needs a static head size for its default scale, got Q " +
                    q->type().ToString());
      }
      scale = 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(d.value(), 1)));
    }
    if (mask) {
      const Dim cols =
          mask->type().has_rank && mask->type().rank() > 0 ? mask->type().dims.back() : Dim();
      const Dim& keys = k->type().dims[2];
      if (!(cols == keys && (cols.is_static() || cols.is_symbolic()))) {
        return Fail("attn_mask " + mask->type().ToString() + " must have the key length " +
                    keys.ToString() + " as its last dimension");
      }
    }
    // Grouped-query: [B, Hq, L, D] viewed as [B, Hkv, G*L, D] (q head h = kv head h/G) and back:
    // [B, heads, -1, last dim].
    auto regroup = [&](Value* x, int64_t heads, const char* what) -> StatusOr<Value*> {
      if (!grouped) return x;
      ASSIGN_OR_RETURN(Value * shape, Ints(what, {0, heads, -1, 0}));
      return Op("Reshape", what, {x, shape});
    };
    ASSIGN_OR_RETURN(Value * kt, Op("Transpose", "_kt", {k}, {{"perm", Perm({0, 1, 3, 2})}}));
    ASSIGN_OR_RETURN(Value * qg, regroup(q, hkv, "_q_grouped"));
    ASSIGN_OR_RETURN(Value * s, Op("MatMul", "_qk", {qg, kt}));
    ASSIGN_OR_RETURN(s, regroup(s, hq, "_qk_heads"));
    ASSIGN_OR_RETURN(Value * sc, Scalar("_scale", scale));
    ASSIGN_OR_RETURN(s, Op("Mul", "_scores", {s, sc}));
    if (const float cap = n_.attr_float("softcap", 0.0f); cap > 0) {
      ASSIGN_OR_RETURN(Value * c, Scalar("_softcap", cap));
      ASSIGN_OR_RETURN(Value * d, Op("Div", "_softcap_in", {s, c}));
      ASSIGN_OR_RETURN(Value * t, Op("Tanh", "_softcap_tanh", {d}));
      ASSIGN_OR_RETURN(s, Op("Mul", "_softcapped", {c, t}));
    }
    ASSIGN_OR_RETURN(Value * neg_inf,
                     Scalar("_neg_inf", -std::numeric_limits<double>::infinity()));
    Value* keep = nullptr;  // bool, where a key is visible (only needed with a mask)
    if (mask) {
      if (mask->dtype() == DType::kBool) {
        ASSIGN_OR_RETURN(s, Op("Where", "_masked", {mask, s, neg_inf}));
        keep = mask;
      } else {
        ASSIGN_OR_RETURN(s, Op("Add", "_masked", {s, mask}));
        ASSIGN_OR_RETURN(Value * hidden, Op("Equal", "_mask_hidden", {mask, neg_inf}));
        ASSIGN_OR_RETURN(keep, Op("Not", "_mask_keep", {hidden}));
      }
    }
    if (n_.attr_int("is_causal", 0) != 0) {
      ASSIGN_OR_RETURN(Value * causal, CausalKeep(s));
      ASSIGN_OR_RETURN(s, Op("Where", "_causal", {causal, s, neg_inf}));
      if (keep) {
        ASSIGN_OR_RETURN(keep, Op("And", "_keep", {keep, causal}));
      }
    }
    Value *dead = nullptr, *zero = nullptr;  // rows with no visible key: ONNX's zero row
    if (keep) {
      ASSIGN_OR_RETURN(Value * kf, Op("Cast", "_keep_f32", {keep}, {{"to", Attribute(int64_t{1})}}));
      ASSIGN_OR_RETURN(Value * last, Ints("_keys_axis", {-1}));
      ASSIGN_OR_RETURN(Value * count, Op("ReduceSum", "_visible", {kf, last},
                                         {{"keepdims", Attribute(int64_t{1})}}));
      ASSIGN_OR_RETURN(Value * none, e_.Init(stem_ + "_none", Tensor::Scalar(DType::kFloat32, 0)));
      ASSIGN_OR_RETURN(dead, Op("Equal", "_dead_rows", {count, none}));
      ASSIGN_OR_RETURN(zero, Scalar("_zero", 0.0));
      ASSIGN_OR_RETURN(s, Op("Where", "_live_scores", {dead, zero, s}));
    }
    ASSIGN_OR_RETURN(Value * p, Op("Softmax", "_probs", {s}, {{"axis", Attribute(int64_t{-1})}}));
    if (dead) {
      ASSIGN_OR_RETURN(p, Op("Where", "_live_probs", {dead, zero, p}));
    }
    ASSIGN_OR_RETURN(p, regroup(p, hkv, "_probs_grouped"));
    ASSIGN_OR_RETURN(Value * y, Op("MatMul", "_pv", {p, v}));
    ASSIGN_OR_RETURN(y, regroup(y, hq, "_pv_heads"));
    if (three_d) {
      ASSIGN_OR_RETURN(y, Op("Transpose", "_y_rows", {y}, {{"perm", Perm({0, 2, 1, 3})}}));
      ASSIGN_OR_RETURN(Value * shape, Ints("_y_shape", {0, 0, -1}));
      ASSIGN_OR_RETURN(y, Op("Reshape", "_y", {y, shape}));
    }
    return Replace(y);
  }

 private:
  Status Fail(const std::string& why) const {
    return Unimplemented(n_.Describe() + ": decomposing Attention into ONNX ops " + why);
  }
  static Attribute Perm(std::vector<int64_t> p) { return Attribute(std::move(p)); }

  StatusOr<Value*> Op(const std::string& op, const std::string& suffix, std::vector<Value*> in,
                      AttributeMap attrs = {}) {
    return e_.One(op, stem_ + suffix, std::move(in), std::move(attrs));
  }
  StatusOr<Value*> Ints(const std::string& suffix, const std::vector<int64_t>& v) {
    return e_.Init(stem_ + suffix, Tensor::FromInt64s(v, {static_cast<int64_t>(v.size())}));
  }
  StatusOr<Value*> Scalar(const std::string& suffix, double v) {
    return e_.Init(stem_ + suffix, Tensor::Scalar(dt_, v));
  }

  // [B, L, heads*D] -> [B, heads, L, D].
  Status ToHeads(Value*& x, int64_t heads, const char* what) {
    if (heads <= 0) return Fail("needs q_num_heads and kv_num_heads for 3-D inputs");
    ASSIGN_OR_RETURN(Value * shape, Ints(std::string("_") + what + "_split", {0, 0, heads, -1}));
    ASSIGN_OR_RETURN(Value * split, Op("Reshape", std::string("_") + what + "_split", {x, shape}));
    ASSIGN_OR_RETURN(x, Op("Transpose", std::string("_") + what + "_heads", {split},
                           {{"perm", Perm({0, 2, 1, 3})}}));
    return Status::Ok();
  }

  // keep[i, j] = j <= i over the scores' last two dimensions (ONNX's upper-left causal mask).
  StatusOr<Value*> CausalKeep(Value* scores) {
    ASSIGN_OR_RETURN(Value * shape, Op("Shape", "_scores_shape", {scores}));
    auto range = [&](int64_t axis, const char* what) -> StatusOr<Value*> {
      ASSIGN_OR_RETURN(Value * at, e_.Init(stem_ + what + "_axis", Tensor::ScalarInt64(axis)));
      ASSIGN_OR_RETURN(Value * len, Op("Gather", what, {shape, at}));
      ASSIGN_OR_RETURN(Value * zero, e_.Init(stem_ + what + "_start", Tensor::ScalarInt64(0)));
      ASSIGN_OR_RETURN(Value * one, e_.Init(stem_ + what + "_delta", Tensor::ScalarInt64(1)));
      return Op("Range", std::string(what) + "_positions", {zero, len, one});
    };
    ASSIGN_OR_RETURN(Value * i, range(2, "_queries"));
    ASSIGN_OR_RETURN(Value * j, range(3, "_keys"));
    ASSIGN_OR_RETURN(Value * col, Ints("_queries_axis", {1}));
    ASSIGN_OR_RETURN(Value * ic, Op("Unsqueeze", "_queries_column", {i, col}));
    return Op("LessOrEqual", "_causal_keep", {j, ic});
  }

  // The result takes the Attention output's name, readers and place among the graph's outputs.
  Status Replace(Value* y) {
    RETURN_IF_ERROR(g_.ReplaceValue(n_.output(0), y));
    g_.RemoveNode(&n_);
    return Status::Ok();
  }

  Graph& g_;
  Node& n_;
  NodeEmitter e_;
  std::string stem_;
  DType dt_ = DType::kFloat32;
};

}  // namespace

StatusOr<bool> DecomposeAttentionPass::Run(Graph& g) {
  std::vector<Node*> found;
  for (Node* n : g.nodes()) {
    if (n->domain().empty() && n->op_type() == "Attention") found.push_back(n);
  }
  for (Node* n : found) RETURN_IF_ERROR(Decomposer(g, *n).Run());
  if (!found.empty()) RETURN_IF_ERROR(g.TopologicalSort());
  return !found.empty();
}

}  // namespace ampc
