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
// This file: elementwise and shape/data-movement ops.
#include <gtest/gtest.h>

#include "tests/unit/shape_inference_fixture.h"

namespace ampc {
namespace {

using namespace testing_shapes;  // NOLINT: test helpers

// ---------------------------------------------------------------------------------------------
// Elementwise
// ---------------------------------------------------------------------------------------------

TEST_F(ShapeInference, AddBroadcastsStaticAndSymbolicDims) {
  EXPECT_EQ(Infer("Add", {In(F32({Sym("batch"), 1, 4})), In(F32({3, 1}))}), "f32[batch,3,4]");
  EXPECT_EQ(Infer("Add", {In(F32({Sym("batch"), Sym("seq")})), In(F32({Sym("seq")}))}),
            "f32[batch,seq]");
  EXPECT_EQ(Infer("Add", {In(F32({Sym("a")})), In(F32({Sym("b")}))}), "f32[?]");
  EXPECT_EQ(Infer("Add", {In(F32({Sym("batch")})), In(F32({5}))}), "f32[5]");
  EXPECT_EQ(Infer("Add", {In(F32({Sym("batch"), 1})), In(F32({1, 1}))}), "f32[batch,1]");
  EXPECT_EQ(Infer("Add", {In(F32({Dim(), 1})), In(F32({7, 1}))}), "f32[7,1]");
  EXPECT_EQ(Infer("Add", {In(F32({})), In(F32({2, 3}))}), "f32[2,3]");
  EXPECT_EQ(Infer("Add", {In(F32({0, 3})), In(F32({1, 3}))}), "f32[0,3]");
}

TEST_F(ShapeInference, ArithmeticOps) {
  EXPECT_EQ(Infer("Sub", {In(F32({2, 3})), In(F32({3}))}), "f32[2,3]");
  EXPECT_EQ(Infer("Mul", {In(I64({4})), In(I64({}))}), "i64[4]");
  EXPECT_EQ(Infer("Div", {In(F16({2, 1})), In(F16({1, 5}))}), "f16[2,5]");
  EXPECT_EQ(Infer("Pow", {In(F32({2, 3})), In(I64({}))}), "f32[2,3]");
  EXPECT_EQ(Infer("Max", {In(F32({2, 1})), In(F32({3})), In(F32({1, 1}))}), "f32[2,3]");
  EXPECT_EQ(Infer("Min", {In(I64({5}))}), "i64[5]");
  EXPECT_EQ(Infer("Sum", {In(F32({4, 1})), In(F32({1, 6}))}), "f32[4,6]");
  EXPECT_EQ(Infer("Mean", {In(F32({4})), In(F32({4})), In(F32({4}))}), "f32[4]");
}

TEST_F(ShapeInference, AddTypeMismatchIsAnError) {
  Status st = InferStatus("Add", {In(F32({2})), In(F16({2}))});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_INFER_ERROR(st, "type mismatch: input 0 is f32, input 1 is f16");
  EXPECT_INFER_ERROR(InferStatus("Add", {In(F32({3})), In(F32({4}))}), "3 vs 4");
  EXPECT_INFER_ERROR(InferStatus("Sum", {In(I64({3})), In(I64({3}))}), "needs a float type");
  EXPECT_INFER_ERROR(InferStatus("Add", {In(Bool({3})), In(Bool({3}))}), "numeric");
}

TEST_F(ShapeInference, ComparisonAndLogicOps) {
  for (const char* op : {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"}) {
    EXPECT_EQ(Infer(op, {In(F32({Sym("n"), 1})), In(F32({4}))}), "bool[n,4]") << op;
  }
  EXPECT_EQ(Infer("Equal", {In(Bool({2})), In(Bool({2}))}), "bool[2]");
  for (const char* op : {"And", "Or", "Xor"}) {
    EXPECT_EQ(Infer(op, {In(Bool({2, 1})), In(Bool({3}))}), "bool[2,3]") << op;
  }
  EXPECT_EQ(Infer("Not", {In(Bool({5}))}), "bool[5]");
  EXPECT_INFER_ERROR(InferStatus("And", {In(F32({2})), In(Bool({2}))}), "needs bool");
  EXPECT_INFER_ERROR(InferStatus("Less", {In(F32({2})), In(I64({2}))}), "type mismatch");
}

TEST_F(ShapeInference, WhereBroadcastsThreeWays) {
  EXPECT_EQ(Infer("Where", {In(Bool({Sym("batch"), 1})), In(F32({1, 4})), In(F32({}))}),
            "f32[batch,4]");
  EXPECT_INFER_ERROR(InferStatus("Where", {In(F32({1})), In(F32({1})), In(F32({1}))}),
                     "needs bool");
  EXPECT_INFER_ERROR(InferStatus("Where", {In(Bool({1})), In(F32({1})), In(F16({1}))}),
                     "type mismatch: input 1 is f32, input 2 is f16");
}

TEST_F(ShapeInference, UnaryOps) {
  for (const char* op :
       {"Relu", "LeakyRelu", "Elu", "Selu", "Tanh", "Sigmoid", "HardSigmoid", "Softplus", "Erf",
        "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Floor", "Ceil", "Sign", "Identity"}) {
    EXPECT_EQ(Infer(op, {In(F32({Sym("b"), 3}))}), "f32[b,3]") << op;
  }
  EXPECT_EQ(Infer("Relu", {In(TensorType(DType::kInt32, {2}))}), "i32[2]");
  EXPECT_EQ(Infer("Abs", {In(I64({2}))}), "i64[2]");
  EXPECT_EQ(Infer("IsNaN", {In(F16({2, 2}))}), "bool[2,2]");
  EXPECT_EQ(Infer("IsInf", {In(F32({}))}), "bool[]");
  for (const char* op : {"Erf", "Sqrt", "Exp", "Log", "Tanh", "Sigmoid"}) {
    EXPECT_INFER_ERROR(InferStatus(op, {In(I64({2}))}), "has type i64 but");
  }
  EXPECT_INFER_ERROR(InferStatus("Neg", {In(TensorType(DType::kUInt8, {2}))}), "signed");
}

TEST_F(ShapeInference, CastAndCastLike) {
  EXPECT_EQ(Infer("Cast", {In(F32({2, Sym("n")}))}, A({{"to", int64_t{10}}})), "f16[2,n]");
  EXPECT_EQ(Infer("Cast", {In(F32({2}))}, A({{"to", int64_t{16}}})), "bf16[2]");
  EXPECT_EQ(Infer("Cast", {In(F32({2}))}, A({{"to", int64_t{7}}})), "i64[2]");
  EXPECT_EQ(Infer("Cast", {In(I64({}))}, A({{"to", int64_t{9}}})), "bool[]");
  EXPECT_EQ(Infer("CastLike", {In(F32({3})), In(F16({}))}), "f16[3]");
  // Known ints survive int -> int casts.
  EXPECT_EQ(Infer("Cast", {Known({Sym("b"), 4})}, A({{"to", int64_t{6}}})), "i32[2]");
  EXPECT_EQ(KnownOut(), "[b,4]");
}

TEST_F(ShapeInference, CastToUnsupportedTypeNumber) {
  Status st = InferStatus("Cast", {In(F32({2}))}, A({{"to", int64_t{8}}}));
  EXPECT_INFER_ERROR(st, "data type 8");
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
  st = InferStatus("Cast", {In(F32({2}))}, A({{"to", int64_t{99}}}));
  EXPECT_INFER_ERROR(st, "99");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_INFER_ERROR(InferStatus("Cast", {In(F32({2}))}), "'to'");
}

TEST_F(ShapeInference, ClipDropoutTrilu) {
  EXPECT_EQ(Infer("Clip", {In(F32({2, 3})), In(F32({})), In(F32({}))}), "f32[2,3]");
  EXPECT_EQ(Infer("Clip", {In(F32({2, 3})), nullptr, In(F32({}))}), "f32[2,3]");
  EXPECT_INFER_ERROR(InferStatus("Clip", {In(F32({2})), In(F32({2}))}),
                     "Clip min must be a scalar");
  EXPECT_INFER_ERROR(InferStatus("Clip", {In(F32({2})), In(F16({}))}), "type mismatch");

  EXPECT_EQ(Infer("Dropout", {In(F32({Sym("b"), 8})), In(F32({})), In(Bool({}))}, {}, 2),
            "f32[b,8]");
  EXPECT_EQ(Out(1), "bool[b,8]");
  EXPECT_EQ(Infer("Dropout", {In(F16({4}))}), "f16[4]");

  EXPECT_EQ(
      Infer("Trilu", {In(F32({Sym("t"), Sym("t")})), Ints({0}, true)}, A({{"upper", int64_t{0}}})),
      "f32[t,t]");
  EXPECT_INFER_ERROR(InferStatus("Trilu", {In(F32({4}))}), "rank >= 2");
}

TEST_F(ShapeInference, UnknownRankInputsPropagate) {
  EXPECT_EQ(Infer("Add", {In(Unranked()), In(F32({3}))}), "f32[*]");
  EXPECT_EQ(Infer("Relu", {In(Unranked())}), "f32[*]");
  EXPECT_EQ(Infer("MatMul", {In(Unranked()), In(F32({3, 4}))}), "f32[*]");
  EXPECT_EQ(Infer("Reshape", {In(Unranked()), Ints({2, -1})}), "f32[2,?]");
  EXPECT_EQ(Infer("Transpose", {In(Unranked())}, A({{"perm", std::vector<int64_t>{2, 0, 1}}})),
            "f32[?,?,?]");
  EXPECT_EQ(Infer("Transpose", {In(Unranked())}), "f32[*]");
  EXPECT_EQ(Infer("Conv", {In(Unranked()), In(F32({8, 3, 3, 3}))}), "f32[?,8,?,?]");
  EXPECT_EQ(Infer("Concat", {In(Unranked()), In(F32({2, 3}))}, A({{"axis", int64_t{0}}})),
            "f32[?,3]");
  EXPECT_EQ(Infer("Squeeze", {In(Unranked())}), "f32[*]");
  EXPECT_EQ(Infer("Gather", {In(Unranked()), Ints({0}, true)}), "f32[*]");
  EXPECT_EQ(Infer("Shape", {In(Unranked())}), "i64[?]");
  EXPECT_EQ(Infer("Flatten", {In(Unranked())}), "f32[?,?]");
  EXPECT_EQ(Infer("ReduceMean", {In(Unranked())}), "f32[*]");
  EXPECT_EQ(Infer("Softmax", {In(Unranked())}), "f32[*]");
  EXPECT_EQ(Infer("LayerNormalization", {In(Unranked()), In(F32({8}))}, {}, 2), "f32[*]");
  EXPECT_EQ(Out(1), "f32[*]");
  EXPECT_EQ(Infer("Split", {In(Unranked())}, {}, 2), "f32[*]");
  EXPECT_EQ(Infer("Slice", {In(Unranked()), Ints({0}), Ints({1})}), "f32[*]");
  EXPECT_EQ(Infer("MaxPool", {In(Unranked())}, A({{"kernel_shape", std::vector<int64_t>{2, 2}}})),
            "f32[*]");
}

TEST_F(ShapeInference, KnownIntsArithmetic) {
  Value* shape = Known({Sym("batch"), Sym("seq"), 768});
  EXPECT_EQ(Infer("Mul", {shape, Ints({1, 1, 2})}), "i64[3]");
  EXPECT_EQ(KnownOut(), "[batch,seq,1536]");
  EXPECT_EQ(Infer("Div", {shape, Ints({12}, true)}), "i64[3]");
  EXPECT_EQ(KnownOut(), "[?,?,64]");
  EXPECT_EQ(Infer("Add", {Ints({3}, true), Ints({4}, true)}), "i64[]");
  EXPECT_EQ(KnownOut(), "[7]");
  EXPECT_EQ(Infer("Sub", {shape, Ints({0}, true)}), "i64[3]");
  EXPECT_EQ(KnownOut(), "[batch,seq,768]");
  // torch's expand pattern: Where(Equal(shape, -1), ones, shape).
  Value* target = Known({Sym("b"), -1, 4});
  Node* eq = Make("Equal", {target, Ints({-1}, true)});
  ASSERT_TRUE(InferNode(*eq).ok());
  EXPECT_EQ(eq->output(0)->type().ToString(), "bool[3]");
  EXPECT_EQ(Infer("Where", {eq->output(0), Ints({1, 1, 1}), target}), "i64[3]");
  EXPECT_EQ(KnownOut(), "[b,1,4]");
  // Float tensors carry no known ints through arithmetic.
  EXPECT_EQ(Infer("Identity", {Ints({2, 3})}), "i64[2]");
  EXPECT_EQ(KnownOut(), "[2,3]");
}

// ---------------------------------------------------------------------------------------------
// Shape ops
// ---------------------------------------------------------------------------------------------

TEST_F(ShapeInference, ShapeAndSize) {
  Value* x = In(F32({Sym("batch"), Sym("seq"), 768}));
  EXPECT_EQ(Infer("Shape", {x}), "i64[3]");
  EXPECT_EQ(KnownOut(), "[batch,seq,768]");
  EXPECT_EQ(Infer("Shape", {x}, A({{"start", int64_t{1}}})), "i64[2]");
  EXPECT_EQ(KnownOut(), "[seq,768]");
  EXPECT_EQ(Infer("Shape", {x}, A({{"start", int64_t{-2}}, {"end", int64_t{-1}}})), "i64[1]");
  EXPECT_EQ(KnownOut(), "[seq]");
  EXPECT_EQ(Infer("Shape", {x}, A({{"start", int64_t{5}}})), "i64[0]");
  EXPECT_EQ(Infer("Size", {In(F32({2, 3, 4}))}), "i64[]");
  EXPECT_EQ(KnownOut(), "[24]");
  EXPECT_EQ(Infer("Size", {In(F32({Sym("n"), 1}))}), "i64[]");
  EXPECT_EQ(KnownOut(), "[n]");
}

TEST_F(ShapeInference, ConstantAndConstantOfShape) {
  EXPECT_EQ(Infer("Constant", {}, A({{"value", Tensor::FromInt64s({1, 2, 3}, {3})}})), "i64[3]");
  EXPECT_EQ(KnownOut(), "[1,2,3]");
  EXPECT_EQ(Infer("Constant", {}, A({{"value", Tensor::FromFloats({1, 2, 3, 4}, {2, 2})}})),
            "f32[2,2]");
  EXPECT_EQ(KnownOut(), "none");
  EXPECT_EQ(Infer("Constant", {}, A({{"value_float", 1.5f}})), "f32[]");
  EXPECT_EQ(Infer("Constant", {}, A({{"value_ints", std::vector<int64_t>{4, 5}}})), "i64[2]");
  EXPECT_EQ(KnownOut(), "[4,5]");
  EXPECT_EQ(Infer("Constant", {}, A({{"value_int", int64_t{-1}}})), "i64[]");
  EXPECT_EQ(KnownOut(), "[-1]");
  EXPECT_EQ(InferStatus("Constant", {}, A({{"value_string", std::string("x")}})).code(),
            StatusCode::kUnimplemented);

  EXPECT_EQ(Infer("ConstantOfShape", {Known({Sym("b"), 4})}), "f32[b,4]");
  EXPECT_EQ(Infer("ConstantOfShape", {Ints({3})}, A({{"value", Tensor::FromInt64s({1}, {1})}})),
            "i64[3]");
  EXPECT_EQ(KnownOut(), "[1,1,1]");
  EXPECT_EQ(Infer("ConstantOfShape", {In(I64({2}))}), "f32[?,?]");
  EXPECT_EQ(Infer("ConstantOfShape", {Ints({})}), "f32[]");
  EXPECT_INFER_ERROR(InferStatus("ConstantOfShape", {Ints({2, -1})}), "invalid dim -1");
}

TEST_F(ShapeInference, Range) {
  EXPECT_EQ(Infer("Range", {Ints({0}, true), Ints({10}, true), Ints({3}, true)}), "i64[4]");
  EXPECT_EQ(KnownOut(), "[0,3,6,9]");
  EXPECT_EQ(Infer("Range", {Ints({10}, true), Ints({4}, true), Ints({-2}, true)}), "i64[3]");
  EXPECT_EQ(KnownOut(), "[10,8,6]");
  EXPECT_EQ(Infer("Range", {Ints({5}, true), Ints({1}, true), Ints({1}, true)}), "i64[0]");
  Node* shape = Make("Shape", {In(F32({Sym("seq"), 4}))}, A({{"end", int64_t{1}}}));
  ASSERT_TRUE(InferNode(*shape).ok());
  Node* seq = Make("Squeeze", {shape->output(0), Ints({0})});
  ASSERT_TRUE(InferNode(*seq).ok());
  EXPECT_EQ(Infer("Range", {Ints({0}, true), seq->output(0), Ints({1}, true)}), "i64[seq]");
  EXPECT_EQ(Infer("Range", {In(F32({})), In(F32({})), In(F32({}))}), "f32[?]");
  EXPECT_INFER_ERROR(InferStatus("Range", {Ints({0}, true), Ints({4}, true), Ints({0}, true)}),
                     "delta is 0");
}

TEST_F(ShapeInference, GatherAndGatherElements) {
  EXPECT_EQ(Infer("Gather", {In(F32({5, 6, 7})), In(I64({2, 3}))}, A({{"axis", int64_t{1}}})),
            "f32[5,2,3,7]");
  EXPECT_EQ(Infer("Gather", {In(F32({Sym("vocab"), 768})), In(I64({Sym("b"), Sym("t")}))}),
            "f32[b,t,768]");
  EXPECT_EQ(Infer("Gather", {Known({Sym("b"), Sym("t"), 768}), Ints({-1}, true)}), "i64[]");
  EXPECT_EQ(KnownOut(), "[768]");
  EXPECT_EQ(Infer("Gather", {Known({Sym("b"), Sym("t"), 768}), Ints({1, 0})}), "i64[2]");
  EXPECT_EQ(KnownOut(), "[t,b]");
  EXPECT_INFER_ERROR(
      InferStatus("Gather", {In(F32({3, 4})), In(I64({}))}, A({{"axis", int64_t{2}}})),
      "axis 2 is out of range for rank 2");
  EXPECT_INFER_ERROR(InferStatus("Gather", {In(F32({3})), Ints({3}, true)}), "index 3");
  EXPECT_INFER_ERROR(InferStatus("Gather", {In(F32({3})), In(F32({}))}), "i32 or i64");

  EXPECT_EQ(Infer("GatherElements", {In(F32({4, 5})), In(I64({4, 2}))}, A({{"axis", int64_t{1}}})),
            "f32[4,2]");
  EXPECT_INFER_ERROR(InferStatus("GatherElements", {In(F32({4, 5})), In(I64({4}))}), "rank");
}

TEST_F(ShapeInference, ReshapeZeroAndMinusOne) {
  EXPECT_EQ(Infer("Reshape", {In(F32({2, 3, 4})), Ints({0, -1})}), "f32[2,12]");
  EXPECT_EQ(Infer("Reshape", {In(F32({2, 3, 4})), Ints({-1})}), "f32[24]");
  EXPECT_EQ(Infer("Reshape", {In(F32({2, 3, 4})), Ints({4, 0, 2})}), "f32[4,3,2]");
  EXPECT_EQ(Infer("Reshape", {In(F32({0, 3})), Ints({0, 3})}, A({{"allowzero", int64_t{1}}})),
            "f32[0,3]");
  EXPECT_EQ(Infer("Reshape", {In(F32({Sym("batch"), Sym("seq"), 64})), Ints({0, 0, 4, -1})}),
            "f32[batch,seq,4,16]");
  EXPECT_EQ(Infer("Reshape", {In(F32({Sym("batch"), Sym("seq"), 4, 16})), Ints({0, 0, -1})}),
            "f32[batch,seq,64]");
  // -1 absorbs a symbol: [batch, 12] -> [-1, 3, 4] gives batch.
  EXPECT_EQ(Infer("Reshape", {In(F32({Sym("batch"), 12})), Ints({-1, 3, 4})}), "f32[batch,3,4]");
  // Not resolvable: two leftover symbols.
  EXPECT_EQ(Infer("Reshape", {In(F32({Sym("a"), Sym("b"), 2})), Ints({-1, 2})}), "f32[?,2]");
  // Shape unknown, but its length is static.
  EXPECT_EQ(Infer("Reshape", {In(F32({6})), In(I64({3}))}), "f32[?,?,?]");
  EXPECT_EQ(Infer("Reshape", {In(F32({6})), In(I64({Dim()}))}), "f32[*]");
  // Known data follows the reshape.
  EXPECT_EQ(Infer("Reshape", {Ints({7}, true), Ints({1})}), "i64[1]");
  EXPECT_EQ(KnownOut(), "[7]");
}

TEST_F(ShapeInference, ReshapeErrors) {
  EXPECT_INFER_ERROR(InferStatus("Reshape", {In(F32({3, 4})), Ints({5, -1})}),
                     "Reshape cannot reshape 12 elements into [5,-1]");
  EXPECT_INFER_ERROR(InferStatus("Reshape", {In(F32({3, 4})), Ints({5, 2})}),
                     "cannot reshape 12 elements");
  EXPECT_INFER_ERROR(InferStatus("Reshape", {In(F32({Sym("b"), 4})), Ints({0, 5})}),
                     "cannot reshape");
  EXPECT_INFER_ERROR(InferStatus("Reshape", {In(F32({12})), Ints({-1, -1})}), "more than one -1");
  EXPECT_INFER_ERROR(InferStatus("Reshape", {In(F32({12})), Ints({-2, 6})}), "invalid entry -2");
  EXPECT_INFER_ERROR(InferStatus("Reshape", {In(F32({12})), Ints({2, 0})}), "is 0");
  EXPECT_INFER_ERROR(InferStatus("Reshape", {In(F32({12})), In(F32({2}))}), "i64");
}

// The pattern torch.onnx.export emits for x.view(B, T, nh, hs) with a symbolic batch:
// Shape -> Gather -> Unsqueeze, Concat with constants, Reshape, Transpose.
TEST_F(ShapeInference, TorchViewChainWithSymbolicBatch) {
  Value* x = In(F32({Sym("batch"), Sym("seq"), 768}));
  Node* shape = Make("Shape", {x});
  Node* g0 = Make("Gather", {shape->output(0), Ints({0}, true)}, A({{"axis", int64_t{0}}}));
  Node* g1 = Make("Gather", {shape->output(0), Ints({1}, true)}, A({{"axis", int64_t{0}}}));
  Node* u0 = Make("Unsqueeze", {g0->output(0), Ints({0})});
  Node* u1 = Make("Unsqueeze", {g1->output(0), Ints({0})});
  Node* nh = Make("Constant", {}, A({{"value", Tensor::FromInt64s({12}, {1})}}));
  Node* hs = Make("Constant", {}, A({{"value", Tensor::FromInt64s({64}, {1})}}));
  Node* cat = Make("Concat", {u0->output(0), u1->output(0), nh->output(0), hs->output(0)},
                   A({{"axis", int64_t{0}}}));
  Node* view = Make("Reshape", {x, cat->output(0)});
  Node* tr = Make("Transpose", {view->output(0)}, A({{"perm", std::vector<int64_t>{0, 2, 1, 3}}}));
  ASSERT_TRUE(InferGraph(g_).ok());
  EXPECT_EQ(g0->output(0)->type().ToString(), "i64[]");
  EXPECT_EQ(u0->output(0)->type().ToString(), "i64[1]");
  EXPECT_EQ(cat->output(0)->type().ToString(), "i64[4]");
  ASSERT_TRUE(cat->output(0)->known_ints().has_value());
  EXPECT_EQ((*cat->output(0)->known_ints())[0], Sym("batch"));
  EXPECT_EQ(view->output(0)->type().ToString(), "f32[batch,seq,12,64]");
  EXPECT_EQ(tr->output(0)->type().ToString(), "f32[batch,12,seq,64]");
  // And back: y.transpose(1, 2).contiguous().view(B, T, C) with C computed as -1.
  Node* back = Make("Transpose", {tr->output(0)}, A({{"perm", std::vector<int64_t>{0, 2, 1, 3}}}));
  Node* cat2 =
      Make("Concat", {u0->output(0), u1->output(0), Ints({-1})}, A({{"axis", int64_t{0}}}));
  Node* merge = Make("Reshape", {back->output(0), cat2->output(0)});
  ASSERT_TRUE(InferGraph(g_).ok());
  EXPECT_EQ(merge->output(0)->type().ToString(), "f32[batch,seq,768]");
}

TEST_F(ShapeInference, Transpose) {
  EXPECT_EQ(Infer("Transpose", {In(F32({2, 3, 4}))}), "f32[4,3,2]");
  EXPECT_EQ(
      Infer("Transpose", {In(F32({Sym("b"), 3, 4}))}, A({{"perm", std::vector<int64_t>{0, 2, 1}}})),
      "f32[b,4,3]");
  EXPECT_INFER_ERROR(
      InferStatus("Transpose", {In(F32({2, 3, 4}))}, A({{"perm", std::vector<int64_t>{1, 0}}})),
      "perm [1,0] has 2 entries but the input has rank 3");
  EXPECT_INFER_ERROR(
      InferStatus("Transpose", {In(F32({2, 3}))}, A({{"perm", std::vector<int64_t>{0, 2}}})),
      "out of range");
  EXPECT_INFER_ERROR(
      InferStatus("Transpose", {In(F32({2, 3}))}, A({{"perm", std::vector<int64_t>{1, 1}}})),
      "repeats");
}

TEST_F(ShapeInference, SplitEqualAndExplicit) {
  EXPECT_EQ(Infer("Split", {In(F32({2, 6}))}, A({{"axis", int64_t{1}}}), 3), "f32[2,2]");
  EXPECT_EQ(Out(1), "f32[2,2]");
  EXPECT_EQ(Out(2), "f32[2,2]");
  EXPECT_EQ(Infer("Split", {In(F32({Sym("b"), 6})), Ints({1, 5})}, A({{"axis", int64_t{-1}}}), 2),
            "f32[b,1]");
  EXPECT_EQ(Out(1), "f32[b,5]");
  EXPECT_EQ(Infer("Split", {In(F32({Sym("n"), 4}))}, {}, 2), "f32[?,4]");
  EXPECT_EQ(Infer("Split", {In(F32({6, 4})), In(I64({2}))}, {}, 2), "f32[?,4]");
  // GPT-2's qkv split: Split(x, [768,768,768], axis=2).
  EXPECT_EQ(Infer("Split", {In(F32({Sym("b"), Sym("t"), 2304})), Ints({768, 768, 768})},
                  A({{"axis", int64_t{2}}}), 3),
            "f32[b,t,768]");
}

TEST_F(ShapeInference, SplitErrors) {
  EXPECT_INFER_ERROR(
      InferStatus("Split", {In(F32({2, 6})), Ints({2, 3})}, A({{"axis", int64_t{1}}}), 2),
      "sum to 5 but axis 1 has size 6");
  EXPECT_INFER_ERROR(
      InferStatus("Split", {In(F32({2, 6})), Ints({2, 2, 2})}, A({{"axis", int64_t{1}}}), 2),
      "3 sizes but 2 outputs");
  EXPECT_INFER_ERROR(InferStatus("Split", {In(F32({7}))}, {}, 2), "equal parts");
  EXPECT_INFER_ERROR(InferStatus("Split", {In(F32({6}))}, A({{"axis", int64_t{1}}}), 2),
                     "axis 1 is out of range for rank 1");
}

TEST_F(ShapeInference, Concat) {
  EXPECT_EQ(
      Infer("Concat", {In(F32({Sym("b"), 3})), In(F32({Sym("b"), 5}))}, A({{"axis", int64_t{1}}})),
      "f32[b,8]");
  EXPECT_EQ(Infer("Concat", {In(F32({Sym("b"), 3})), In(F32({4, 3}))}, A({{"axis", int64_t{0}}})),
            "f32[?,3]");
  EXPECT_EQ(Infer("Concat", {In(F32({0, 3})), In(F32({Sym("t"), 3}))}, A({{"axis", int64_t{0}}})),
            "f32[t,3]");
  EXPECT_EQ(Infer("Concat", {In(F32({Sym("b"), 3})), In(F32({2, 3}))}, A({{"axis", int64_t{1}}})),
            "f32[2,6]");
  EXPECT_EQ(Infer("Concat", {Known({Sym("b")}), Ints({-1, 64})}, A({{"axis", int64_t{0}}})),
            "i64[3]");
  EXPECT_EQ(KnownOut(), "[b,-1,64]");
  EXPECT_INFER_ERROR(
      InferStatus("Concat", {In(F32({2, 3})), In(F32({2, 4}))}, A({{"axis", int64_t{0}}})),
      "disagree on dim 1: 3 vs 4");
  EXPECT_INFER_ERROR(
      InferStatus("Concat", {In(F32({2, 3})), In(F32({2}))}, A({{"axis", int64_t{0}}})), "rank");
  EXPECT_INFER_ERROR(
      InferStatus("Concat", {In(F32({2, 3})), In(F32({2, 3}))}, A({{"axis", int64_t{2}}})),
      "axis 2 is out of range for rank 2");
  EXPECT_INFER_ERROR(InferStatus("Concat", {In(F32({2})), In(I64({2}))}, A({{"axis", int64_t{0}}})),
                     "type mismatch");
  EXPECT_INFER_ERROR(InferStatus("Concat", {In(F32({2}))}), "'axis'");
}

TEST_F(ShapeInference, UnsqueezeAndSqueeze) {
  EXPECT_EQ(Infer("Unsqueeze", {In(F32({3, 4})), Ints({0, -1})}), "f32[1,3,4,1]");
  EXPECT_EQ(Infer("Unsqueeze", {In(F32({Sym("b"), 4})), Ints({1})}), "f32[b,1,4]");
  EXPECT_EQ(Infer("Unsqueeze", {In(F32({3})), In(I64({2}))}), "f32[?,?,?]");
  EXPECT_INFER_ERROR(InferStatus("Unsqueeze", {In(F32({3})), Ints({0, 0})}), "repeated");
  EXPECT_INFER_ERROR(InferStatus("Unsqueeze", {In(F32({3})), Ints({3})}), "out of range");

  EXPECT_EQ(Infer("Squeeze", {In(F32({1, 3, 1})), Ints({0})}), "f32[3,1]");
  EXPECT_EQ(Infer("Squeeze", {In(F32({1, 3, 1}))}), "f32[3]");
  EXPECT_EQ(Infer("Squeeze", {In(F32({1, Sym("b"), 1})), Ints({-1})}), "f32[1,b]");
  EXPECT_EQ(Infer("Squeeze", {In(F32({1, Sym("b")}))}), "f32[*]");
  EXPECT_EQ(Infer("Squeeze", {Known({Sym("t")}), Ints({0})}), "i64[]");
  EXPECT_EQ(KnownOut(), "[t]");
  EXPECT_INFER_ERROR(InferStatus("Squeeze", {In(F32({1, 3})), Ints({1})}),
                     "cannot squeeze axis 1 of size 3");
}

TEST_F(ShapeInference, SliceStaticNegativeAndReverse) {
  const int64_t kMax = INT64_MAX, kMin = INT64_MIN;
  Value* x = In(F32({10, 20}));
  EXPECT_EQ(Infer("Slice", {x, Ints({2}), Ints({kMax}), Ints({0})}), "f32[8,20]");
  EXPECT_EQ(Infer("Slice", {x, Ints({-3}), Ints({-1}), Ints({1})}), "f32[10,2]");
  EXPECT_EQ(Infer("Slice", {x, Ints({-1}), Ints({kMin}), Ints({0}), Ints({-1})}), "f32[10,20]");
  EXPECT_EQ(Infer("Slice", {x, Ints({8}), Ints({1}), Ints({1}), Ints({-3})}), "f32[10,3]");
  EXPECT_EQ(Infer("Slice", {x, Ints({0}), Ints({7}), Ints({0}), Ints({2})}), "f32[4,20]");
  EXPECT_EQ(Infer("Slice", {x, Ints({0, 5}), Ints({100, 5})}), "f32[10,0]");
  EXPECT_EQ(Infer("Slice", {x, Ints({-100}), Ints({3}), Ints({-1})}), "f32[10,3]");
  EXPECT_EQ(Infer("Slice", {x, Ints({0}), Ints({kMax}), Ints({1}), Ints({kMax})}), "f32[10,1]");
  EXPECT_EQ(Infer("Slice", {x, Ints({-1}), Ints({kMin}), Ints({1}), Ints({kMin})}), "f32[10,1]");
  EXPECT_INFER_ERROR(InferStatus("Slice", {x, Ints({0}), Ints({1}), Ints({0}), Ints({0})}),
                     "step is 0");
  EXPECT_INFER_ERROR(InferStatus("Slice", {x, Ints({0}), Ints({1}), Ints({2})}),
                     "axis 2 is out of range for rank 2");
  EXPECT_INFER_ERROR(InferStatus("Slice", {x, Ints({0, 0}), Ints({1})}), "different lengths");
}

TEST_F(ShapeInference, SliceSymbolicAndKnownInts) {
  const int64_t kMax = INT64_MAX;
  Value* x = In(F32({Sym("b"), Sym("t"), 64}));
  EXPECT_EQ(Infer("Slice", {x, Ints({0}), Ints({kMax}), Ints({1})}), "f32[b,t,64]");
  EXPECT_EQ(Infer("Slice", {x, Ints({1}), Ints({kMax}), Ints({1})}), "f32[b,?,64]");
  EXPECT_EQ(Infer("Slice", {x, In(I64({1})), Ints({4}), Ints({2})}), "f32[b,t,?]");
  EXPECT_EQ(Infer("Slice", {x, In(I64({1})), In(I64({1}))}), "f32[?,t,64]");
  EXPECT_EQ(Infer("Slice", {x, In(I64({Dim()})), In(I64({Dim()}))}), "f32[?,?,?]");
  // Shape(x)[:2] and Shape(x)[-1:].
  Node* shape = Make("Shape", {x});
  ASSERT_TRUE(InferNode(*shape).ok());
  EXPECT_EQ(Infer("Slice", {shape->output(0), Ints({0}), Ints({2})}), "i64[2]");
  EXPECT_EQ(KnownOut(), "[b,t]");
  EXPECT_EQ(Infer("Slice", {shape->output(0), Ints({-1}), Ints({kMax})}), "i64[1]");
  EXPECT_EQ(KnownOut(), "[64]");
  EXPECT_EQ(
      Infer("Slice", {shape->output(0), Ints({-1}), Ints({INT64_MIN}), Ints({0}), Ints({-1})}),
      "i64[3]");
  EXPECT_EQ(KnownOut(), "[64,t,b]");
}

TEST_F(ShapeInference, ExpandFlattenTilePad) {
  EXPECT_EQ(Infer("Expand", {In(F32({3, 1})), Ints({2, 3, 4})}), "f32[2,3,4]");
  EXPECT_EQ(Infer("Expand", {In(F32({1, 5, 1})), Known({Sym("b"), 1, 1})}), "f32[b,5,1]");
  EXPECT_EQ(Infer("Expand", {In(F32({4})), In(I64({2}))}), "f32[?,4]");
  EXPECT_EQ(Infer("Expand", {Ints({1}, true), Ints({3})}), "i64[3]");
  EXPECT_EQ(KnownOut(), "[1,1,1]");
  EXPECT_INFER_ERROR(InferStatus("Expand", {In(F32({3})), Ints({4})}), "3 vs 4");

  EXPECT_EQ(Infer("Flatten", {In(F32({2, 3, 4, 5}))}, A({{"axis", int64_t{2}}})), "f32[6,20]");
  EXPECT_EQ(Infer("Flatten", {In(F32({2, 3, 4, 5}))}, A({{"axis", int64_t{0}}})), "f32[1,120]");
  EXPECT_EQ(Infer("Flatten", {In(F32({Sym("b"), 3, 4}))}), "f32[b,12]");
  EXPECT_EQ(Infer("Flatten", {In(F32({2, 3}))}, A({{"axis", int64_t{-1}}})), "f32[2,3]");
  EXPECT_INFER_ERROR(InferStatus("Flatten", {In(F32({2, 3}))}, A({{"axis", int64_t{3}}})),
                     "axis 3 is out of range for rank 2");

  EXPECT_EQ(Infer("Tile", {In(F32({2, Sym("n")})), Ints({2, 1})}), "f32[4,n]");
  EXPECT_EQ(Infer("Tile", {In(F32({2, 3})), In(I64({2}))}), "f32[?,?]");
  EXPECT_INFER_ERROR(InferStatus("Tile", {In(F32({2, 3})), Ints({2})}),
                     "repeats has 1 entries but the input has rank 2");

  EXPECT_EQ(Infer("Pad", {In(F32({1, 3, 4, 4})), Ints({0, 0, 1, 1, 0, 0, 1, 1})}), "f32[1,3,6,6]");
  EXPECT_EQ(Infer("Pad", {In(F32({Sym("b"), 3, 4})), Ints({2, -1}), nullptr, Ints({-1})},
                  A({{"mode", std::string("reflect")}})),
            "f32[b,3,5]");
  EXPECT_EQ(Infer("Pad", {In(F32({Sym("b"), 3})), In(I64({4})), In(F32({}))}), "f32[?,?]");
  EXPECT_INFER_ERROR(InferStatus("Pad", {In(F32({4, 4})), Ints({1, 1})}), "expected 4");
  EXPECT_INFER_ERROR(
      InferStatus("Pad", {In(F32({4})), Ints({1, 1})}, A({{"mode", std::string("wrapx")}})),
      "mode");
}

}  // namespace
}  // namespace ampc
