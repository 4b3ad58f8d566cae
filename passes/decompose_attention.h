// decompose-attention: opset 23's Attention becomes the ONNX ops it is defined by, for backends
// without an attention kernel (the CUDA runtime): per batch and query head
//   S = MatMul(Q, Transpose(K)) * scale        (softcap > 0: softcap * Tanh(S / softcap))
//   S = S + mask (float) | Where(mask, S, -inf) (bool);  causal: Where(j <= i, S, -inf)
//   Y = MatMul(Softmax(S), V)
// 3-D Q, K, V ([B, L, heads*D]) are reshaped and transposed to [B, heads, L, D] and back;
// grouped-query attention (q heads a multiple of kv heads) reshapes Q's G = q/kv heads of each
// key/value head into one taller matrix, so K and V are never repeated. With a mask, a row whose
// every key is masked is given ONNX's zero row (Softmax alone would give NaN): its scores are
// zeroed before the Softmax and its probabilities after it. The causal keep-mask is computed from
// the scores' shape (Shape, Range, LessOrEqual), so symbolic sequence lengths stay symbolic.
// Autodiff then differentiates the primitives: the probabilities are kept for the backward pass
// (B*H*Lq*Lkv values per layer) where com.ampc::AttentionGrad would recompute them, as PyTorch's
// math attention does. Refused, naming the node: a mask whose last dimension is not the key
// sequence length (ONNX pads a shorter one with -inf; only a KV cache produces one), a default
// scale without a static head size, and grouped-query attention without static head counts.
#pragma once

#include <string>

#include "passes/pass.h"

namespace ampc {

class DecomposeAttentionPass : public Pass {
 public:
  std::string name() const override { return "decompose-attention"; }
  StatusOr<bool> Run(Graph& g) override;
};

}  // namespace ampc
