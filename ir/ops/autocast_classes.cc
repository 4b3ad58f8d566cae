// The default autocast class of each ai.onnx op: PyTorch's CUDA autocast policy (its fp16/bf16
// "lower precision", "float32" and "promote" op lists, torch/csrc/autograd autocast_mode) mapped
// to ONNX op names, in TensorFlow's four-list vocabulary:
//   allow: ops that run fast and safely in half precision (GEMMs, convolutions);
//   deny:  ops whose range or accumulation needs fp32 (exp/log, softmax, norms, reductions,
//   losses); infer: elementwise math that follows its inputs; clear: data movement and ops exact in
//   any precision.
// The autocast pass's default lists are read from these registry slots (DefaultAmpLists), so an op
// registered later gets its class here, in one place. Names the registry does not have are skipped.
#include "ir/op_registry.h"

namespace ampc {

void RegisterAutocastClasses(OpRegistry& r) {
  const std::pair<AutocastClass, std::vector<const char*>> table[] = {
      // Attention: torch's scaled_dot_product_attention is on autocast's lower-precision list.
      {AutocastClass::kAllow, {"MatMul", "Gemm", "Conv", "ConvTranspose", "Einsum", "Attention"}},
      {AutocastClass::kDeny,
       {"Softmax",
        "LogSoftmax",
        "Exp",
        "Log",
        "Pow",
        "Reciprocal",
        "Sqrt",
        "Softplus",
        "Acos",
        "Asin",
        "Cosh",
        "Sinh",
        "Tan",
        "CumSum",
        "ReduceSum",
        "ReduceMean",
        "ReduceProd",
        "ReduceL1",
        "ReduceL2",
        "ReduceLogSum",
        "ReduceLogSumExp",
        "ReduceSumSquare",
        "LayerNormalization",
        "BatchNormalization",
        "InstanceNormalization",
        "GroupNormalization",
        "LpNormalization",
        "MeanVarianceNormalization",
        "RMSNormalization",
        "SoftmaxCrossEntropyLoss",
        "NegativeLogLikelihoodLoss"}},
      {AutocastClass::kInfer,
       {"Add",
        "Sub",
        "Mul",
        "Div",
        "Neg",
        "Abs",
        "Tanh",
        "Sigmoid",
        "Erf",
        "Clip",
        "Where",
        "AveragePool",
        "GlobalAveragePool",
        "Max",
        "Min",
        "Sum",
        "Mean",
        "LeakyRelu",
        "Elu",
        "Selu",
        "Celu",
        "HardSigmoid",
        "HardSwish",
        "Gelu",
        "Mish",
        "RotaryEmbedding",
        "PRelu",
        "Sin",
        "Cos",
        "Sign",
        "Floor",
        "Ceil",
        "Round",
        "Resize"}},
      {AutocastClass::kClear,
       {"Reshape",   "Flatten",   "Squeeze", "Unsqueeze", "Transpose",      "Identity",
        "Slice",     "Split",     "Concat",  "Gather",    "GatherElements", "GatherND",
        "Expand",    "Tile",      "Pad",     "Relu",      "MaxPool",        "GlobalMaxPool",
        "Dropout",   "Equal",     "Less",    "Greater",   "LessOrEqual",    "GreaterOrEqual",
        "ReduceMax", "ReduceMin", "TopK",    "Trilu",     "DepthToSpace",   "SpaceToDepth"}},
  };
  for (const auto& [cls, ops] : table) {
    for (const char* op : ops) {
      if (OpSchema* s = r.FindMutable("", op)) s->autocast = cls;
    }
  }
}

}  // namespace ampc
