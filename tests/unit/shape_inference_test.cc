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
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <climits>
#include <functional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/op_registry.h"

namespace ampc {
namespace {

Dim Sym(const char* s) { return Dim::Symbol(s); }
TensorType F32(std::vector<Dim> d) { return TensorType(DType::kFloat32, std::move(d)); }
TensorType F16(std::vector<Dim> d) { return TensorType(DType::kFloat16, std::move(d)); }
TensorType I64(std::vector<Dim> d) { return TensorType(DType::kInt64, std::move(d)); }
TensorType Bool(std::vector<Dim> d) { return TensorType(DType::kBool, std::move(d)); }
TensorType Unranked(DType t = DType::kFloat32) { return TensorType::UnknownShape(t); }

class ShapeInference : public ::testing::Test {
 protected:
  std::string Fresh(const char* stem) { return stem + std::to_string(counter_++); }

  Value* In(TensorType t) { return *g_.AddInput(Fresh("in"), std::move(t)); }
  // An i64 initializer (1-D, or a scalar) with its known ints set, as the importer does.
  Value* Ints(std::vector<int64_t> v, bool scalar = false) {
    std::vector<int64_t> dims;
    if (!scalar) dims.push_back(static_cast<int64_t>(v.size()));
    Value* x = *g_.AddInitializer(Fresh("init"), Tensor::FromInt64s(v, dims));
    x->set_known_ints(std::vector<Dim>(v.begin(), v.end()));
    return x;
  }
  // A 1-D i64 value whose elements are known (possibly symbolic), e.g. a shape tensor.
  Value* Known(std::vector<Dim> v) {
    Value* x = In(I64({static_cast<int64_t>(v.size())}));
    x->set_known_ints(std::move(v));
    return x;
  }
  Node* Make(const std::string& op, std::vector<Value*> ins, AttributeMap attrs = {},
             int nout = 1) {
    std::vector<std::string> outs;
    for (int i = 0; i < nout; ++i) outs.push_back(Fresh("out"));
    return *g_.AddNode(op, "", Fresh("n"), ins, outs, std::move(attrs));
  }
  // Infers a fresh node; returns output 0's type, or "error: <message>".
  std::string Infer(const std::string& op, std::vector<Value*> ins, AttributeMap attrs = {},
                    int nout = 1) {
    last_ = Make(op, std::move(ins), std::move(attrs), nout);
    Status st = InferNode(*last_);
    if (!st.ok()) return "error: " + st.message();
    return last_->output(0)->type().ToString();
  }
  // Type of output i of the last inferred node.
  std::string Out(int i) { return last_->output(i)->type().ToString(); }
  // Known ints of output 0 of the last node, as "[a,b]" or "none".
  std::string KnownOut() {
    const auto& k = last_->output(0)->known_ints();
    if (!k) return "none";
    std::string s = "[";
    for (size_t i = 0; i < k->size(); ++i) s += (i ? "," : "") + (*k)[i].ToString();
    return s + "]";
  }
  Status InferStatus(const std::string& op, std::vector<Value*> ins, AttributeMap attrs = {},
                     int nout = 1) {
    last_ = Make(op, std::move(ins), std::move(attrs), nout);
    return InferNode(*last_);
  }

  Graph g_;
  Node* last_ = nullptr;
  int counter_ = 0;
};

// Asserts that inference fails with InvalidArgument (or `code`) and the message contains `sub`.
#define EXPECT_INFER_ERROR(status_expr, sub)                              \
  do {                                                                    \
    ::ampc::Status _s = (status_expr);                                    \
    EXPECT_FALSE(_s.ok());                                                \
    EXPECT_NE(_s.message().find(sub), std::string::npos) << _s.message(); \
  } while (0)

AttributeMap A(std::initializer_list<std::pair<const std::string, Attribute>> l) { return l; }

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

// ---------------------------------------------------------------------------------------------
// Cross-check against ONNX's own shape inference (static shapes only).
// ---------------------------------------------------------------------------------------------

struct XCase {
  std::string op;
  std::vector<std::vector<int64_t>> float_inputs;  // shapes of f32 inputs, in order
  std::vector<std::vector<int64_t>> int_inputs;    // then 1-D i64 constant inputs
  AttributeMap attrs;
  int outputs = 1;
};

std::string OnnxInferred(const XCase& c) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(17);
  onnx::GraphProto* g = m.mutable_graph();
  g->set_name("x");
  onnx::NodeProto* n = g->add_node();
  n->set_op_type(c.op);
  int k = 0;
  for (const auto& shape : c.float_inputs) {
    onnx::ValueInfoProto* vi = g->add_input();
    vi->set_name("f" + std::to_string(k));
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : shape) tt->mutable_shape()->add_dim()->set_dim_value(d);
    n->add_input("f" + std::to_string(k++));
  }
  for (const auto& vals : c.int_inputs) {
    onnx::TensorProto* t = g->add_initializer();
    t->set_name("i" + std::to_string(k));
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(vals.size()));
    for (int64_t v : vals) t->add_int64_data(v);
    n->add_input("i" + std::to_string(k++));
  }
  for (int i = 0; i < c.outputs; ++i) n->add_output("y" + std::to_string(i));
  for (const auto& [key, a] : c.attrs) {
    onnx::AttributeProto* p = n->add_attribute();
    p->set_name(key);
    switch (a.kind()) {
      case AttrKind::kInt:
        p->set_type(onnx::AttributeProto::INT);
        p->set_i(a.i());
        break;
      case AttrKind::kFloat:
        p->set_type(onnx::AttributeProto::FLOAT);
        p->set_f(a.f());
        break;
      case AttrKind::kString:
        p->set_type(onnx::AttributeProto::STRING);
        p->set_s(a.s());
        break;
      case AttrKind::kInts:
        p->set_type(onnx::AttributeProto::INTS);
        for (int64_t v : a.ints()) p->add_ints(v);
        break;
      default: return "unsupported attribute";
    }
  }
  onnx::shape_inference::InferShapes(m);
  std::string out;
  for (const auto& vi : m.graph().value_info()) {
    if (vi.name() != "y0") continue;
    out = "f32[";
    const auto& dims = vi.type().tensor_type().shape().dim();
    for (int i = 0; i < dims.size(); ++i) {
      out += (i ? "," : "") + (dims[i].has_dim_value() ? std::to_string(dims[i].dim_value()) : "?");
    }
    out += "]";
  }
  return out;
}

std::string AmpcInferred(const XCase& c) {
  Graph g;
  std::vector<Value*> ins;
  int k = 0;
  for (const auto& shape : c.float_inputs) {
    ins.push_back(*g.AddInput("f" + std::to_string(k++), F32({shape.begin(), shape.end()})));
  }
  for (const auto& vals : c.int_inputs) {
    Value* v = *g.AddInitializer("i" + std::to_string(k++),
                                 Tensor::FromInt64s(vals, {static_cast<int64_t>(vals.size())}));
    v->set_known_ints(std::vector<Dim>(vals.begin(), vals.end()));
    ins.push_back(v);
  }
  std::vector<std::string> outs;
  for (int i = 0; i < c.outputs; ++i) outs.push_back("y" + std::to_string(i));
  Node* n = *g.AddNode(c.op, "", "n", ins, outs, c.attrs);
  Status st = InferNode(*n);
  return st.ok() ? n->output(0)->type().ToString() : "error: " + st.message();
}

TEST(ShapeInferenceOnnx, MatchesOnnxOnStaticShapes) {
  using V = std::vector<int64_t>;
  const int64_t kMax = INT64_MAX;
  std::vector<XCase> cases = {
      {"Conv",
       {{1, 3, 224, 224}, {64, 3, 7, 7}},
       {},
       A({{"pads", V{3, 3, 3, 3}}, {"strides", V{2, 2}}})},
      {"Conv",
       {{1, 32, 17, 13}, {32, 1, 3, 3}},
       {},
       A({{"group", int64_t{32}}, {"dilations", V{2, 1}}, {"pads", V{1, 0, 2, 1}}})},
      {"Conv",
       {{1, 3, 15, 15}, {4, 3, 3, 3}},
       {},
       A({{"auto_pad", std::string("SAME_UPPER")}, {"strides", V{2, 2}}})},
      {"ConvTranspose",
       {{1, 16, 14, 14}, {16, 8, 4, 4}},
       {},
       A({{"strides", V{2, 2}}, {"pads", V{1, 1, 1, 1}}})},
      {"MaxPool",
       {{1, 64, 112, 112}},
       {},
       A({{"kernel_shape", V{3, 3}}, {"strides", V{2, 2}}, {"pads", V{1, 1, 1, 1}}})},
      {"MaxPool",
       {{1, 1, 5, 5}},
       {},
       A({{"kernel_shape", V{2, 2}}, {"strides", V{2, 2}}, {"ceil_mode", int64_t{1}}})},
      {"AveragePool", {{1, 8, 7, 7}}, {}, A({{"kernel_shape", V{2, 2}}, {"strides", V{2, 2}}})},
      {"GlobalAveragePool", {{2, 512, 7, 7}}, {}, {}},
      {"Gemm", {{4, 784}, {512, 784}, {512}}, {}, A({{"transB", int64_t{1}}})},
      {"MatMul", {{3, 1, 5, 4}, {2, 4, 6}}, {}, {}},
      {"MatMul", {{4}, {2, 4, 6}}, {}, {}},
      {"Reshape", {{2, 3, 4}}, {{0, -1}}, {}},
      {"Reshape", {{2, 3, 4}}, {{4, -1, 3}}, {}},
      {"Slice", {{10, 20}}, {{-3, 1}, {kMax, 19}, {0, 1}, {1, 5}}, {}},
      {"Slice", {{10, 20}}, {{-1}, {INT64_MIN}, {1}, {-2}}, {}},
      {"Split", {{2, 9}}, {{2, 7}}, A({{"axis", int64_t{1}}}), 2},
      {"Transpose", {{2, 3, 4, 5}}, {}, A({{"perm", V{0, 2, 3, 1}}})},
      {"Concat", {{2, 3}, {2, 5}}, {}, A({{"axis", int64_t{-1}}})},
      {"Unsqueeze", {{3, 4}}, {{0, 3}}, {}},
      {"Squeeze", {{1, 3, 1, 4}}, {{0, 2}}, {}},
      {"Flatten", {{2, 3, 4, 5}}, {}, A({{"axis", int64_t{3}}})},
      {"Tile", {{2, 3}}, {{3, 2}}, {}},
      {"Expand", {{3, 1}}, {{2, 1, 4}}, {}},
      {"Pad", {{1, 3, 4, 4}}, {{0, 0, 1, 2, 0, 0, 3, 4}}, {}},
      {"ReduceSum", {{2, 3, 4}}, {{1}}, A({{"keepdims", int64_t{0}}})},
      {"ReduceMean", {{2, 3, 4}}, {}, A({{"axes", V{-1}}})},
      {"LayerNormalization", {{2, 5, 8}, {8}, {8}}, {}, A({{"axis", int64_t{-1}}})},
      {"BatchNormalization", {{2, 4, 5, 5}, {4}, {4}, {4}, {4}}, {}, {}},
      {"Softmax", {{2, 10}}, {}, {}},
      {"Add", {{2, 1, 4}, {3, 1}}, {}, {}},
  };
  for (const XCase& c : cases) {
    EXPECT_EQ(AmpcInferred(c), OnnxInferred(c)) << c.op;
  }
}

}  // namespace
}  // namespace ampc
