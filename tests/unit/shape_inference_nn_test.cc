// Unit tests for type and shape inference (ir/ops/*.cc).
//
// Every expected shape below was derived by hand from the ONNX operator specification
// (opset 17 semantics), not by running ampc: e.g. Conv output = floor((in + pad_begin + pad_end
// - ((k - 1) * dilation + 1)) / stride) + 1. The ShapeInferenceOnnx tests at the end also check
// a set of static-shape cases against ONNX's own shape inference (onnx 1.12).
//
// One deliberate difference from onnx 1.12: with ceil_mode=1 a pooling window that would start
// in the right padding is dropped (the rule of PyTorch and onnxruntime, since clarified in the
// ONNX spec), see ShapeInference.MaxPoolCeilMode.
//
// This file: NN ops, reductions, the registry and robustness.
#include <gtest/gtest.h>

#include "tests/unit/shape_inference_fixture.h"

namespace ampc {
namespace {

using namespace testing_shapes;  // NOLINT: test helpers

// ---------------------------------------------------------------------------------------------
// NN ops
// ---------------------------------------------------------------------------------------------

TEST_F(ShapeInference, MatMul) {
  EXPECT_EQ(Infer("MatMul", {In(F32({2, 3, 4})), In(F32({4, 5}))}), "f32[2,3,5]");
  EXPECT_EQ(Infer("MatMul", {In(F32({4})), In(F32({4, 5}))}), "f32[5]");
  EXPECT_EQ(Infer("MatMul", {In(F32({3, 4})), In(F32({4}))}), "f32[3]");
  EXPECT_EQ(Infer("MatMul", {In(F32({4})), In(F32({4}))}), "f32[]");
  EXPECT_EQ(Infer("MatMul", {In(F32({7, 4})), In(F32({2, 4, 5}))}), "f32[2,7,5]");
  EXPECT_EQ(Infer("MatMul", {In(F32({Sym("batch"), 1, 3, 4})), In(F32({5, 4, 6}))}),
            "f32[batch,5,3,6]");
  EXPECT_EQ(Infer("MatMul", {In(F32({Sym("b"), Sym("t"), 768})), In(F32({768, 3072}))}),
            "f32[b,t,3072]");
  EXPECT_EQ(Infer("MatMul", {In(F32({2, Sym("k")})), In(F32({4, 3}))}), "f32[2,3]");
}

TEST_F(ShapeInference, MatMulErrors) {
  EXPECT_INFER_ERROR(InferStatus("MatMul", {In(F32({Sym("b"), 784})), In(F32({512, 10}))}),
                     "inner dimensions differ: 784 vs 512");
  EXPECT_INFER_ERROR(InferStatus("MatMul", {In(F32({2, 3, 4})), In(F32({5, 4, 6}))}), "2 vs 5");
  EXPECT_INFER_ERROR(InferStatus("MatMul", {In(F32({})), In(F32({3}))}), "scalar");
  EXPECT_INFER_ERROR(InferStatus("MatMul", {In(F32({2, 3})), In(F16({3, 2}))}), "type mismatch");
}

TEST_F(ShapeInference, Gemm) {
  EXPECT_EQ(Infer("Gemm", {In(F32({Sym("batch"), 784})), In(F32({512, 784})), In(F32({512}))},
                  A({{"transB", int64_t{1}}})),
            "f32[batch,512]");
  EXPECT_EQ(Infer("Gemm", {In(F32({784, 8})), In(F32({784, 512}))}, A({{"transA", int64_t{1}}})),
            "f32[8,512]");
  EXPECT_EQ(Infer("Gemm", {In(F32({4, 3})), In(F32({3, 5})), In(F32({4, 1}))}), "f32[4,5]");
  EXPECT_INFER_ERROR(
      InferStatus("Gemm", {In(F32({4, 784})), In(F32({784, 512}))}, A({{"transB", int64_t{1}}})),
      "inner dimensions differ: 784 vs 512");
  EXPECT_INFER_ERROR(InferStatus("Gemm", {In(F32({4, 3})), In(F32({3, 5})), In(F32({3}))}),
                     "Gemm C");
  EXPECT_INFER_ERROR(InferStatus("Gemm", {In(F32({4, 3, 1})), In(F32({3, 5}))}), "2-D");
}

TEST_F(ShapeInference, ConvPadsStridesDilationsGroups) {
  // ResNet stem: (224 + 3 + 3 - 7) / 2 + 1 = 112.
  EXPECT_EQ(Infer("Conv", {In(F32({1, 3, 224, 224})), In(F32({64, 3, 7, 7})), In(F32({64}))},
                  A({{"pads", std::vector<int64_t>{3, 3, 3, 3}},
                     {"strides", std::vector<int64_t>{2, 2}},
                     {"kernel_shape", std::vector<int64_t>{7, 7}}})),
            "f32[1,64,112,112]");
  // Dilation 2 makes a 3x3 kernel span 5: 32 - 5 + 1 = 28.
  EXPECT_EQ(Infer("Conv", {In(F32({1, 3, 32, 32})), In(F32({8, 3, 3, 3}))},
                  A({{"dilations", std::vector<int64_t>{2, 2}}})),
            "f32[1,8,28,28]");
  // Depthwise: group 32, W [32, 1, 3, 3], pads 1.
  EXPECT_EQ(Infer("Conv", {In(F32({Sym("n"), 32, 16, 16})), In(F32({32, 1, 3, 3}))},
                  A({{"group", int64_t{32}}, {"pads", std::vector<int64_t>{1, 1, 1, 1}}})),
            "f32[n,32,16,16]");
  // Asymmetric pads and different strides per dim: h (10+1+0-3)/2+1 = 5, w (10+0+2-3)/3+1 = 4.
  EXPECT_EQ(Infer("Conv", {In(F32({1, 2, 10, 10})), In(F32({4, 2, 3, 3}))},
                  A({{"pads", std::vector<int64_t>{1, 0, 0, 2}},
                     {"strides", std::vector<int64_t>{2, 3}}})),
            "f32[1,4,5,4]");
  // SAME_UPPER: ceil(15 / 2) = 8; VALID: (15 - 3) / 2 + 1 = 7.
  EXPECT_EQ(
      Infer("Conv", {In(F32({1, 3, 15, 15})), In(F32({4, 3, 3, 3}))},
            A({{"auto_pad", std::string("SAME_UPPER")}, {"strides", std::vector<int64_t>{2, 2}}})),
      "f32[1,4,8,8]");
  EXPECT_EQ(Infer("Conv", {In(F32({1, 3, 15, 15})), In(F32({4, 3, 3, 3}))},
                  A({{"auto_pad", std::string("VALID")}, {"strides", std::vector<int64_t>{2, 2}}})),
            "f32[1,4,7,7]");
  EXPECT_EQ(Infer("Conv", {In(F32({Sym("b"), 3, Sym("h"), Sym("w")})), In(F32({4, 3, 3, 3}))},
                  A({{"auto_pad", std::string("SAME_LOWER")}})),
            "f32[b,4,h,w]");
  EXPECT_EQ(Infer("Conv", {In(F32({Sym("b"), 3, Sym("h"), 9})), In(F32({4, 3, 3, 3}))},
                  A({{"pads", std::vector<int64_t>{1, 1, 1, 1}}})),
            "f32[b,4,h,9]");
  EXPECT_EQ(Infer("Conv", {In(F32({Sym("b"), 3, Sym("h"), 9})), In(F32({4, 3, 3, 3}))}),
            "f32[b,4,?,7]");
  // 1-D and 3-D.
  EXPECT_EQ(Infer("Conv", {In(F32({2, 4, 100})), In(F32({8, 4, 5}))}), "f32[2,8,96]");
  EXPECT_EQ(Infer("Conv", {In(F32({1, 1, 8, 8, 8})), In(F32({2, 1, 3, 3, 3}))},
                  A({{"strides", std::vector<int64_t>{2, 2, 2}}})),
            "f32[1,2,3,3,3]");
}

TEST_F(ShapeInference, ConvErrors) {
  EXPECT_INFER_ERROR(InferStatus("Conv", {In(F32({1, 3, 8, 8})), In(F32({4, 4, 3, 3}))}),
                     "channel mismatch");
  EXPECT_INFER_ERROR(InferStatus("Conv", {In(F32({1, 8, 8, 8})), In(F32({3, 4, 3, 3}))},
                                 A({{"group", int64_t{2}}})),
                     "not divisible by group");
  EXPECT_INFER_ERROR(InferStatus("Conv", {In(F32({1, 3, 2, 2})), In(F32({4, 3, 3, 3}))}),
                     "larger than the padded input");
  EXPECT_INFER_ERROR(InferStatus("Conv", {In(F32({1, 3, 8, 8})), In(F32({4, 3, 3, 3}))},
                                 A({{"pads", std::vector<int64_t>{1, 1}}})),
                     "'pads' has 2 values, expected 4");
  EXPECT_INFER_ERROR(InferStatus("Conv", {In(F32({1, 3, 8, 8})), In(F32({4, 3, 3, 3}))},
                                 A({{"strides", std::vector<int64_t>{0, 1}}})),
                     "strides");
  EXPECT_INFER_ERROR(
      InferStatus("Conv", {In(F32({1, 3, 8, 8})), In(F32({4, 3, 3, 3})), In(F32({5}))}), "bias");
  EXPECT_INFER_ERROR(InferStatus("Conv", {In(F32({3, 8, 8})), In(F32({4, 3, 3, 3}))}), "rank");
  EXPECT_INFER_ERROR(InferStatus("Conv", {In(I64({1, 3, 8, 8})), In(I64({4, 3, 3, 3}))}), "float");
}

TEST_F(ShapeInference, ConvTranspose) {
  // 2 * (14 - 1) + (4 - 1) + 1 - 1 - 1 = 28; output channels W[1] * group = 8.
  EXPECT_EQ(Infer("ConvTranspose", {In(F32({1, 16, 14, 14})), In(F32({16, 8, 4, 4}))},
                  A({{"strides", std::vector<int64_t>{2, 2}},
                     {"pads", std::vector<int64_t>{1, 1, 1, 1}}})),
            "f32[1,8,28,28]");
  // 2 * (7 - 1) + 1 + 3 - 2 = 14.
  EXPECT_EQ(Infer("ConvTranspose", {In(F32({1, 4, 7, 7})), In(F32({4, 2, 3, 3}))},
                  A({{"strides", std::vector<int64_t>{2, 2}},
                     {"pads", std::vector<int64_t>{1, 1, 1, 1}},
                     {"output_padding", std::vector<int64_t>{1, 1}},
                     {"group", int64_t{2}}})),
            "f32[1,4,14,14]");
  EXPECT_EQ(Infer("ConvTranspose", {In(F32({1, 4, 7})), In(F32({4, 2, 3}))},
                  A({{"output_shape", std::vector<int64_t>{15}}})),
            "f32[1,2,15]");
  EXPECT_EQ(
      Infer("ConvTranspose", {In(F32({1, 4, 7})), In(F32({4, 2, 3}))},
            A({{"auto_pad", std::string("SAME_UPPER")}, {"strides", std::vector<int64_t>{2}}})),
      "f32[1,2,14]");
  EXPECT_INFER_ERROR(InferStatus("ConvTranspose", {In(F32({1, 4, 7})), In(F32({5, 2, 3}))}),
                     "channel mismatch");
}

TEST_F(ShapeInference, MaxPoolAndAveragePool) {
  // (112 + 1 + 1 - 3) / 2 + 1 = 56.
  EXPECT_EQ(Infer("MaxPool", {In(F32({Sym("n"), 64, 112, 112}))},
                  A({{"kernel_shape", std::vector<int64_t>{3, 3}},
                     {"strides", std::vector<int64_t>{2, 2}},
                     {"pads", std::vector<int64_t>{1, 1, 1, 1}}}),
                  2),
            "f32[n,64,56,56]");
  EXPECT_EQ(Out(1), "i64[n,64,56,56]");
  EXPECT_EQ(Infer("MaxPool", {In(F32({1, 1, 9, 9}))},
                  A({{"kernel_shape", std::vector<int64_t>{3, 3}},
                     {"dilations", std::vector<int64_t>{2, 2}}})),
            "f32[1,1,5,5]");
  EXPECT_EQ(Infer("AveragePool", {In(F32({1, 8, 7, 7}))},
                  A({{"kernel_shape", std::vector<int64_t>{2, 2}},
                     {"strides", std::vector<int64_t>{2, 2}},
                     {"count_include_pad", int64_t{1}}})),
            "f32[1,8,3,3]");
  EXPECT_EQ(Infer("AveragePool", {In(F32({1, 8, 7}))},
                  A({{"kernel_shape", std::vector<int64_t>{3}},
                     {"auto_pad", std::string("SAME_UPPER")}})),
            "f32[1,8,7]");
  EXPECT_INFER_ERROR(InferStatus("MaxPool", {In(F32({1, 1, 8, 8}))}), "kernel_shape");
  EXPECT_INFER_ERROR(InferStatus("MaxPool", {In(F32({1, 1, 8, 8}))},
                                 A({{"kernel_shape", std::vector<int64_t>{2}}})),
                     "rank 4");
}

TEST_F(ShapeInference, MaxPoolCeilMode) {
  // floor((5 - 2) / 2) + 1 = 2; ceil((5 - 2) / 2) + 1 = 3.
  AttributeMap a =
      A({{"kernel_shape", std::vector<int64_t>{2, 2}}, {"strides", std::vector<int64_t>{2, 2}}});
  EXPECT_EQ(Infer("MaxPool", {In(F32({1, 1, 5, 5}))}, a), "f32[1,1,2,2]");
  a["ceil_mode"] = int64_t{1};
  EXPECT_EQ(Infer("MaxPool", {In(F32({1, 1, 5, 5}))}, a), "f32[1,1,3,3]");
  // ceil((5 + 2 - 2) / 2) + 1 = 4, but the 4th window would start at padded index 6, in the
  // right padding, so it is dropped: 3 (PyTorch / onnxruntime).
  a["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  EXPECT_EQ(Infer("MaxPool", {In(F32({1, 1, 5, 5}))}, a), "f32[1,1,3,3]");
  // GoogLeNet-style: 112 with k=3 s=2 ceil: ceil(109 / 2) + 1 = 56.
  EXPECT_EQ(Infer("MaxPool", {In(F32({1, 64, 112, 112}))},
                  A({{"kernel_shape", std::vector<int64_t>{3, 3}},
                     {"strides", std::vector<int64_t>{2, 2}},
                     {"ceil_mode", int64_t{1}}})),
            "f32[1,64,56,56]");
}

TEST_F(ShapeInference, GlobalPools) {
  EXPECT_EQ(Infer("GlobalAveragePool", {In(F32({Sym("n"), 512, 7, 7}))}), "f32[n,512,1,1]");
  EXPECT_EQ(Infer("GlobalMaxPool", {In(F32({2, 16, 5}))}), "f32[2,16,1]");
  EXPECT_INFER_ERROR(InferStatus("GlobalAveragePool", {In(F32({2, 16}))}), "rank >= 3");
}

TEST_F(ShapeInference, BatchNormalization) {
  Value* c = In(F32({64}));
  EXPECT_EQ(Infer("BatchNormalization", {In(F32({Sym("n"), 64, 56, 56})), c, c, c, c}),
            "f32[n,64,56,56]");
  EXPECT_EQ(Infer("BatchNormalization", {In(F32({8, Dim(), 4})), c, c, c, c},
                  A({{"training_mode", int64_t{1}}}), 3),
            "f32[8,?,4]");
  EXPECT_EQ(Out(1), "f32[64]");
  EXPECT_EQ(Out(2), "f32[64]");
  EXPECT_INFER_ERROR(
      InferStatus("BatchNormalization", {In(F32({1, 64, 4, 4})), In(F32({32})), c, c, c}),
      "scale size differs from the channel count: 64 vs 32");
  EXPECT_INFER_ERROR(
      InferStatus("BatchNormalization", {In(F32({1, 64, 4, 4})), In(F32({64, 1})), c, c, c}),
      "1-D");
}

TEST_F(ShapeInference, LayerNormalizationOptionalOutputs) {
  Value* x = In(F32({Sym("batch"), Sym("seq"), 768}));
  Value* s = In(F32({768}));
  EXPECT_EQ(Infer("LayerNormalization", {x, s, s}, A({{"epsilon", 1e-5f}}), 3),
            "f32[batch,seq,768]");
  EXPECT_EQ(Out(1), "f32[batch,seq,1]");
  EXPECT_EQ(Out(2), "f32[batch,seq,1]");
  // Only InvStdDev requested (Mean omitted).
  Node* n = *g_.AddNode("LayerNormalization", "", "ln", {x, s}, {"y_ln", "", "inv_ln"},
                        A({{"axis", int64_t{1}}}));
  ASSERT_EQ(n->output(1), nullptr);
  EXPECT_TRUE(InferNode(*n).ok());
  EXPECT_EQ(n->output(2)->type().ToString(), "f32[batch,1,1]");
  // Half input: the statistics use stash_type (f32 by default).
  Value* h = In(F16({2, 8}));
  Value* hs = In(F16({8}));
  EXPECT_EQ(Infer("LayerNormalization", {h, hs}, {}, 2), "f16[2,8]");
  EXPECT_EQ(Out(1), "f32[2,1]");
  EXPECT_INFER_ERROR(InferStatus("LayerNormalization", {x, In(F32({512}))}), "Scale");
  EXPECT_INFER_ERROR(InferStatus("LayerNormalization", {x, s}, A({{"axis", int64_t{3}}})),
                     "axis 3 is out of range for rank 3");
  EXPECT_INFER_ERROR(InferStatus("LayerNormalization", {x, In(F16({768}))}), "type mismatch");
}

TEST_F(ShapeInference, SoftmaxAndLogSoftmax) {
  EXPECT_EQ(Infer("Softmax", {In(F32({Sym("b"), 12, Sym("t"), Sym("t")}))}), "f32[b,12,t,t]");
  EXPECT_EQ(Infer("LogSoftmax", {In(F16({2, 10}))}, A({{"axis", int64_t{1}}})), "f16[2,10]");
  EXPECT_INFER_ERROR(InferStatus("Softmax", {In(F32({2, 3}))}, A({{"axis", int64_t{5}}})),
                     "axis 5 is out of range for rank 2");
  EXPECT_INFER_ERROR(InferStatus("Softmax", {In(I64({2, 3}))}), "float");
}

TEST_F(ShapeInference, Einsum) {
  EXPECT_EQ(Infer("Einsum", {In(F32({Sym("b"), 3, 4})), In(F32({Sym("b"), 4, 5}))},
                  A({{"equation", std::string("bij,bjk->bik")}})),
            "f32[b,3,5]");
  EXPECT_EQ(
      Infer("Einsum", {In(F32({3, 4})), In(F32({4, 5}))}, A({{"equation", std::string("ij,jk")}})),
      "f32[3,5]");
  EXPECT_EQ(Infer("Einsum", {In(F32({3, 3}))}, A({{"equation", std::string("ii->i")}})), "f32[3]");
  EXPECT_EQ(Infer("Einsum", {In(F32({3, 4}))}, A({{"equation", std::string("ij->")}})), "f32[]");
  EXPECT_INFER_ERROR(InferStatus("Einsum", {In(F32({3, 4})), In(F32({5, 6}))},
                                 A({{"equation", std::string("ij,jk->ik")}})),
                     "'j'");
  EXPECT_EQ(
      InferStatus("Einsum", {In(F32({3, 4}))}, A({{"equation", std::string("...i->i")}})).code(),
      StatusCode::kUnimplemented);
}

TEST_F(ShapeInference, SoftmaxCrossEntropyLossReductions) {
  Value* scores = In(F32({Sym("n"), 10}));
  Value* labels = In(I64({Sym("n")}));
  EXPECT_EQ(Infer("SoftmaxCrossEntropyLoss", {scores, labels}, {}, 2), "f32[]");
  EXPECT_EQ(Out(1), "f32[n,10]");
  EXPECT_EQ(Infer("SoftmaxCrossEntropyLoss", {scores, labels, In(F32({10}))},
                  A({{"reduction", std::string("sum")}, {"ignore_index", int64_t{-100}}})),
            "f32[]");
  EXPECT_EQ(
      Infer("SoftmaxCrossEntropyLoss", {scores, labels}, A({{"reduction", std::string("none")}})),
      "f32[n]");
  EXPECT_EQ(Infer("SoftmaxCrossEntropyLoss",
                  {In(F32({4, 10, Sym("t")})), In(TensorType(DType::kInt32, {4, Dim()}))},
                  A({{"reduction", std::string("none")}}), 2),
            "f32[4,t]");
  EXPECT_EQ(Out(1), "f32[4,10,t]");
  EXPECT_INFER_ERROR(InferStatus("SoftmaxCrossEntropyLoss", {scores, In(I64({Sym("n"), 3}))}),
                     "rank");
  EXPECT_INFER_ERROR(InferStatus("SoftmaxCrossEntropyLoss", {In(F32({4, 10})), In(I64({5}))}),
                     "4 vs 5");
  EXPECT_INFER_ERROR(InferStatus("SoftmaxCrossEntropyLoss", {scores, labels},
                                 A({{"reduction", std::string("avg")}})),
                     "reduction");
  EXPECT_INFER_ERROR(InferStatus("SoftmaxCrossEntropyLoss", {scores, In(F32({Sym("n")}))}),
                     "i32 or i64");
}

TEST_F(ShapeInference, NegativeLogLikelihoodLoss) {
  EXPECT_EQ(Infer("NegativeLogLikelihoodLoss", {In(F32({3, 5, 2})), In(I64({3, 2}))}), "f32[]");
  EXPECT_EQ(Infer("NegativeLogLikelihoodLoss", {In(F32({3, 5, 2})), In(I64({3, 2})), In(F32({5}))},
                  A({{"reduction", std::string("none")}})),
            "f32[3,2]");
  EXPECT_INFER_ERROR(
      InferStatus("NegativeLogLikelihoodLoss", {In(F32({3, 5})), In(I64({3})), In(F32({4}))}),
      "weight");
}

// ---------------------------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------------------------

TEST_F(ShapeInference, ReduceSumAxesInput) {
  Value* x = In(F32({2, 3, 4}));
  EXPECT_EQ(Infer("ReduceSum", {x, Ints({1})}, A({{"keepdims", int64_t{0}}})), "f32[2,4]");
  EXPECT_EQ(Infer("ReduceSum", {x, Ints({-1, 0})}), "f32[1,3,1]");
  EXPECT_EQ(Infer("ReduceSum", {x}), "f32[1,1,1]");
  EXPECT_EQ(Infer("ReduceSum", {x}, A({{"keepdims", int64_t{0}}})), "f32[]");
  EXPECT_EQ(Infer("ReduceSum", {x, Ints({})}, A({{"noop_with_empty_axes", int64_t{1}}})),
            "f32[2,3,4]");
  EXPECT_EQ(Infer("ReduceSum", {x, In(I64({1}))}), "f32[?,?,?]");
  EXPECT_EQ(Infer("ReduceSum", {x, In(I64({1}))}, A({{"keepdims", int64_t{0}}})), "f32[?,?]");
  EXPECT_INFER_ERROR(InferStatus("ReduceSum", {x, Ints({3})}), "axis 3 is out of range for rank 3");
}

TEST_F(ShapeInference, ReduceOpsWithAxesAttribute) {
  Value* x = In(F32({Sym("b"), 3, 4}));
  for (const char* op : {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2",
                         "ReduceLogSumExp", "ReduceSumSquare", "ReduceL1"}) {
    EXPECT_EQ(Infer(op, {x}, A({{"axes", std::vector<int64_t>{-1}}})), "f32[b,3,1]") << op;
    EXPECT_EQ(Infer(op, {x}, A({{"axes", std::vector<int64_t>{1, 2}}, {"keepdims", int64_t{0}}})),
              "f32[b]")
        << op;
    EXPECT_EQ(Infer(op, {x}), "f32[1,1,1]") << op;
  }
  EXPECT_INFER_ERROR(InferStatus("ReduceMean", {x}, A({{"axes", std::vector<int64_t>{1, 1}}})),
                     "repeated");
  EXPECT_INFER_ERROR(InferStatus("ReduceMax", {x}, A({{"axes", std::vector<int64_t>{-4}}})),
                     "axis -4 is out of range for rank 3");
}

TEST_F(ShapeInference, ArgMaxArgMinCumSum) {
  EXPECT_EQ(
      Infer("ArgMax", {In(F32({2, 3, 4}))}, A({{"axis", int64_t{1}}, {"keepdims", int64_t{0}}})),
      "i64[2,4]");
  EXPECT_EQ(Infer("ArgMin", {In(F32({2, 3, 4}))}, A({{"axis", int64_t{-1}}})), "i64[2,3,1]");
  EXPECT_EQ(Infer("ArgMax", {In(F32({Sym("b"), 5}))}, A({{"select_last_index", int64_t{1}}})),
            "i64[1,5]");
  EXPECT_INFER_ERROR(InferStatus("ArgMax", {In(F32({2}))}, A({{"axis", int64_t{1}}})),
                     "out of range");
  EXPECT_EQ(Infer("CumSum", {In(F32({Sym("b"), 5})), Ints({1}, true)}), "f32[b,5]");
  EXPECT_INFER_ERROR(InferStatus("CumSum", {In(F32({5})), Ints({2}, true)}), "out of range");
}

TEST_F(ShapeInference, ArityIsChecked) {
  EXPECT_INFER_ERROR(InferStatus("Add", {In(F32({2}))}), "expects 2");
  EXPECT_INFER_ERROR(InferStatus("Relu", {In(F32({2}))}, {}, 2), "outputs");
  EXPECT_INFER_ERROR(InferStatus("Gemm", {In(F32({2, 2})), nullptr}), "missing");
}

TEST(ShapeInferenceRegistry, AllOpsRegistered) {
  const char* ops[] = {"Add",
                       "Sub",
                       "Mul",
                       "Div",
                       "Pow",
                       "Max",
                       "Min",
                       "Sum",
                       "Mean",
                       "Equal",
                       "Less",
                       "Greater",
                       "LessOrEqual",
                       "GreaterOrEqual",
                       "And",
                       "Or",
                       "Xor",
                       "Not",
                       "Where",
                       "Relu",
                       "LeakyRelu",
                       "Elu",
                       "Selu",
                       "Tanh",
                       "Sigmoid",
                       "HardSigmoid",
                       "Softplus",
                       "Erf",
                       "Sqrt",
                       "Exp",
                       "Log",
                       "Neg",
                       "Abs",
                       "Reciprocal",
                       "Floor",
                       "Ceil",
                       "Sign",
                       "Identity",
                       "Cast",
                       "CastLike",
                       "Clip",
                       "Dropout",
                       "Trilu",
                       "IsNaN",
                       "IsInf",
                       "Shape",
                       "Size",
                       "Constant",
                       "ConstantOfShape",
                       "Range",
                       "Gather",
                       "GatherElements",
                       "Reshape",
                       "Transpose",
                       "Split",
                       "Concat",
                       "Unsqueeze",
                       "Squeeze",
                       "Slice",
                       "Expand",
                       "Flatten",
                       "Tile",
                       "Pad",
                       "MatMul",
                       "Gemm",
                       "Conv",
                       "ConvTranspose",
                       "MaxPool",
                       "AveragePool",
                       "GlobalAveragePool",
                       "GlobalMaxPool",
                       "BatchNormalization",
                       "LayerNormalization",
                       "Softmax",
                       "LogSoftmax",
                       "Einsum",
                       "SoftmaxCrossEntropyLoss",
                       "NegativeLogLikelihoodLoss",
                       "ReduceSum",
                       "ReduceMean",
                       "ReduceMax",
                       "ReduceMin",
                       "ReduceProd",
                       "ReduceL2",
                       "ReduceLogSumExp",
                       "ReduceSumSquare",
                       "ReduceL1",
                       "ArgMax",
                       "ArgMin",
                       "CumSum"};
  for (const char* op : ops) {
    const OpSchema* s = OpRegistry::Global().Find("", op);
    ASSERT_NE(s, nullptr) << op;
    EXPECT_NE(s->infer, nullptr) << op;
  }
}

// Every registered op, fed odd inputs (unknown rank, scalars, wrong dtypes, omitted optional
// inputs, negative known ints) and odd attributes, must return a Status and never crash.
TEST(ShapeInferenceRobustness, OddInputsNeverCrash) {
  std::vector<std::function<Value*(Graph&, const std::string&)>> kinds = {
      [](Graph& g, const std::string& n) { return *g.AddInput(n, Unranked()); },
      [](Graph& g, const std::string& n) { return *g.AddInput(n, F32({})); },
      [](Graph& g, const std::string& n) {
        Value* v = *g.AddInput(n, I64({3}));
        v->set_known_ints(std::vector<Dim>{-1, 0, Dim::Symbol("s")});
        return v;
      },
      [](Graph& g, const std::string& n) {
        return *g.AddInput(n, Bool({2, 0}));
      },
      [](Graph& g, const std::string& n) {
        return *g.AddInput(n, F32({1, Sym("b"), 3, 4}));
      },
      [](Graph& g, const std::string& n) {
        Value* v = *g.AddInitializer(n, Tensor::FromInt64s({INT64_MAX, INT64_MIN}, {2}));
        v->set_known_ints(std::vector<Dim>{INT64_MAX, INT64_MIN});
        return v;
      },
      [](Graph& g, const std::string& n) {
        return *g.AddInput(n, I64({Dim(), 2}));
      },
      [](Graph&, const std::string&) -> Value* { return nullptr; },
  };
  std::vector<AttributeMap> attr_sets = {
      {},
      A({{"axis", int64_t{7}}, {"perm", std::vector<int64_t>{5, -1}}, {"to", int64_t{3}}}),
      A({{"axis", int64_t{-1}},
         {"axes", std::vector<int64_t>{0, 0}},
         {"kernel_shape", std::vector<int64_t>{3}},
         {"pads", std::vector<int64_t>{1}},
         {"value", Tensor::FromInt64s({}, {0})}}),
      A({{"kernel_shape", std::vector<int64_t>{1, 1}},
         {"strides", std::vector<int64_t>{0, -3}},
         {"group", int64_t{0}},
         {"equation", std::string("ab,bc->ac")},
         {"reduction", std::string("none")},
         {"perm", std::string("x")}}),
      A({{"auto_pad", std::string("SAME_UPPER")},
         {"kernel_shape", std::vector<int64_t>{2, 2}},
         {"ceil_mode", int64_t{1}},
         {"start", int64_t{INT64_MIN}},
         {"end", int64_t{INT64_MAX}},
         {"value_ints", std::vector<int64_t>{1}},
         {"allowzero", int64_t{1}}}),
  };
  int runs = 0;
  for (const OpSchema* s : OpRegistry::Global().All()) {
    Graph g;
    int counter = 0;
    for (int arity = s->min_inputs; arity <= std::min(s->max_inputs, s->min_inputs + 3); ++arity) {
      for (size_t variant = 0; variant < 2 * kinds.size(); ++variant) {
        for (const AttributeMap& attrs : attr_sets) {
          std::vector<Value*> ins;
          for (int i = 0; i < arity; ++i) {
            size_t k = variant < kinds.size() ? (variant + i) % kinds.size()
                                              : (variant * (i + 3)) % kinds.size();
            ins.push_back(kinds[k](g, "v" + std::to_string(counter++)));
          }
          const int nout = std::min(s->max_outputs, s->min_outputs + static_cast<int>(variant % 3));
          std::vector<std::string> outs;
          for (int i = 0; i < nout; ++i) outs.push_back("o" + std::to_string(counter++));
          Node* n =
              *g.AddNode(s->op_type, s->domain, "n" + std::to_string(counter++), ins, outs, attrs);
          Status st = InferNode(*n);
          if (st.ok()) {
            for (Value* o : n->outputs()) {
              if (o) {
                EXPECT_NE(o->type().dtype, DType::kUndefined) << s->op_type;
              }
            }
          } else {
            EXPECT_FALSE(st.message().empty());
          }
          ++runs;
        }
      }
    }
  }
  EXPECT_GT(runs, 1000);
}

}  // namespace
}  // namespace ampc
