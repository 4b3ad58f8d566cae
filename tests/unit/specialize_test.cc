// SpecializeInputs (passes/specialize.h): binding concrete input shapes and small integer input
// values, re-inference, and the errors when a binding disagrees with the model or a shape stays
// dynamic. Golden values: the shapes are worked out by hand from ONNX's operator semantics
// (Shape, Gather, Concat, Reshape with -1, MatMul broadcasting) for the bound sizes, written in
// each test; the error texts are the ones passes/specialize.h documents.
#include "passes/specialize.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "ir/graph.h"
#include "ir/op_registry.h"
#include "ir/text.h"
#include "runtime/cpu/kernel.h"
#include "tests/unit/graph_test_util.h"

namespace ampc {
namespace {

using testing::Parse;

std::string TypeOf(const Graph& g, const std::string& value) {
  const Value* v = g.FindValue(value);
  return v ? v->type().ToString() : "<no value " + value + ">";
}

std::vector<int64_t> KnownOf(const Graph& g, const std::string& value) {
  const Value* v = g.FindValue(value);
  std::vector<int64_t> out;
  if (!v || !v->known_ints()) return out;
  for (const Dim& d : *v->known_ints()) out.push_back(d.is_static() ? d.value() : -999);
  return out;
}

// Fails with a message containing `want`.
void ExpectError(const Status& s, const std::string& want) {
  EXPECT_FALSE(s.ok()) << "expected an error containing: " << want;
  EXPECT_NE(s.message().find(want), std::string::npos) << s.message();
}

// A transformer-style block: the batch and sequence sizes are symbols, the flattening Reshape
// gets its target from Shape -> Gather -> Concat, and a second input shares the `batch` symbol.
const char* kSymbolic = R"(graph "g" opsets {"": 17} {
  input %x: f32[batch,seq,8]
  input %y: f32[batch,8,4]
  init %i0: i64[1] = [0]
  init %minus1: i64[1] = [-1]
  %s: i64[3] = Shape(%x)
  %b: i64[1] = Gather(%s, %i0) {axis=0}
  %target: i64[2] = Concat(%b, %minus1) {axis=0}
  %flat: f32[batch,?] = Reshape(%x, %target)
  %mm: f32[batch,seq,4] = MatMul(%x, %y)
  %t: f32[seq,4,batch] = Transpose(%mm) {perm=[1, 2, 0]}
  output %flat
  output %t
}
)";

TEST(Specialize, BindsSymbolsAndPropagatesThroughShapeArithmetic) {
  auto g = Parse(kSymbolic);
  ASSERT_TRUE(SpecializeInputs(*g, {{"x", {{3, 5, 8}, {}}}, {"y", {{3, 8, 4}, {}}}}).ok());
  EXPECT_EQ(TypeOf(*g, "x"), "f32[3,5,8]");
  EXPECT_EQ(KnownOf(*g, "s"), (std::vector<int64_t>{3, 5, 8}));
  EXPECT_EQ(KnownOf(*g, "b"), (std::vector<int64_t>{3}));
  EXPECT_EQ(KnownOf(*g, "target"), (std::vector<int64_t>{3, -1}));
  EXPECT_EQ(TypeOf(*g, "flat"), "f32[3,40]");  // -1 = 5 * 8
  EXPECT_EQ(TypeOf(*g, "mm"), "f32[3,5,4]");
  EXPECT_EQ(TypeOf(*g, "t"), "f32[5,4,3]");
}

// Integer inputs given with their values act as constants: a Reshape target and a Gather index
// that are graph inputs.
TEST(Specialize, SmallIntegerInputValuesAreKnownValues) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[n,6]
  input %shape: i64[2]
  input %idx: i64[k]
  %r: f32[?,?] = Reshape(%x, %shape)
  %s: i64[2] = Shape(%r)
  %picked: i64[?] = Gather(%s, %idx) {axis=0}
  %z: f32[?] = ConstantOfShape(%picked) {value=tensor<f32[1]> [0.5]}
  output %r
  output %z
}
)");
  ASSERT_TRUE(SpecializeInputs(*g, {{"x", {{4, 6}, {}}},
                                    {"shape", {{2}, std::vector<int64_t>{-1, 3}}},
                                    {"idx", {{2}, std::vector<int64_t>{1, -2}}}})
                  .ok());
  EXPECT_EQ(TypeOf(*g, "r"), "f32[8,3]");
  EXPECT_EQ(KnownOf(*g, "picked"), (std::vector<int64_t>{3, 8}));  // index -2 is dim 0
  EXPECT_EQ(TypeOf(*g, "z"), "f32[3,8]");
}

// A model whose shapes are already static: binding its own sizes changes nothing, byte for byte.
TEST(Specialize, StaticModelBoundToItsOwnShapesIsUnchanged) {
  const std::string text = R"(graph "g" opsets {"": 17} {
  input %x: f32[2,3]
  init %w: f32[3,4] = elided
  %y: f32[2,4] = MatMul(%x, %w)
  %r: f32[2,4] = Relu(%y)
  output %r
}
)";
  auto g = Parse(text);
  ASSERT_TRUE(SpecializeInputs(*g, {{"x", {{2, 3}, {}}}}).ok());
  EXPECT_EQ(PrintGraph(*g), text);
}

// Inputs declared without a rank, or with unknown `?` dims, take whatever is bound; a symbol that
// occurs twice in one input must get one size.
TEST(Specialize, UnrankedUnknownAndRepeatedSymbolDims) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %a: f32[*]
  input %b: f32[?,n,n]
  %sa: f32[*] = Relu(%a)
  %sb: f32[?,n,n] = Relu(%b)
  output %sa
  output %sb
}
)");
  ASSERT_TRUE(SpecializeInputs(*g, {{"a", {{7, 1, 2, 3}, {}}}, {"b", {{9, 5, 5}, {}}}}).ok());
  EXPECT_EQ(TypeOf(*g, "sa"), "f32[7,1,2,3]");
  EXPECT_EQ(TypeOf(*g, "sb"), "f32[9,5,5]");

  auto h = Parse(R"(graph "g" opsets {"": 17} {
  input %b: f32[?,n,n]
  %sb: f32[?,n,n] = Relu(%b)
  output %sb
}
)");
  ExpectError(SpecializeInputs(*h, {{"b", {{9, 5, 6}, {}}}}), "binds dimension 'n' to 6");
}

TEST(Specialize, ScalarAndEmptyInputs) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %s: f32[]
  input %x: f32[batch,4]
  %y: f32[batch,4] = Mul(%x, %s)
  output %y
}
)");
  ASSERT_TRUE(SpecializeInputs(*g, {{"s", {{}, {}}}, {"x", {{0, 4}, {}}}}).ok());
  EXPECT_EQ(TypeOf(*g, "y"), "f32[0,4]");
}

TEST(Specialize, WrongRankIsRejectedNamingTheInput) {
  auto g = Parse(kSymbolic);
  ExpectError(SpecializeInputs(*g, {{"x", {{3, 40}, {}}}, {"y", {{3, 8, 4}, {}}}}),
              "input 'x' has shape f32[3,40] but the model expects f32[batch,seq,8]");
}

TEST(Specialize, WrongStaticDimIsRejected) {
  auto g = Parse(kSymbolic);
  ExpectError(SpecializeInputs(*g, {{"x", {{3, 5, 8}, {}}}, {"y", {{3, 9, 4}, {}}}}),
              "input 'y' has shape f32[3,9,4] but the model expects f32[batch,8,4]");
}

TEST(Specialize, ConflictingSymbolAcrossInputsIsRejected) {
  auto g = Parse(kSymbolic);
  ExpectError(SpecializeInputs(*g, {{"x", {{3, 5, 8}, {}}}, {"y", {{2, 8, 4}, {}}}}),
              "input 'y' binds dimension 'batch' to 2 but another input bound it to 3");
}

TEST(Specialize, UnknownNameInitializerAndMissingInputAreRejected) {
  auto g = Parse(kSymbolic);
  ExpectError(
      SpecializeInputs(*g, {{"x", {{3, 5, 8}, {}}}, {"y", {{3, 8, 4}, {}}}, {"z", {{1}, {}}}}),
      "the model has no input named 'z'");
  auto h = Parse(kSymbolic);
  ExpectError(SpecializeInputs(*h, {{"x", {{3, 5, 8}, {}}}, {"i0", {{1}, {}}}}),
              "the model has no input named 'i0'");
  auto k = Parse(kSymbolic);
  ExpectError(SpecializeInputs(*k, {{"x", {{3, 5, 8}, {}}}}),
              "no data given for input 'y' (f32[batch,8,4])");
}

// A Reshape whose target is an input given without values: its output shape depends on data, and
// the error names the node and the value.
TEST(Specialize, ShapeThatStaysDynamicIsAnErrorNamingTheValue) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[n,6]
  input %shape: i64[2]
  %r: f32[?,?] = Reshape(%x, %shape) name="flatten"
  %y: f32[?,?] = Relu(%r) name="act"
  output %y
}
)");
  const Status s = SpecializeInputs(*g, {{"x", {{4, 6}, {}}}, {"shape", {{2}, {}}}});
  ExpectError(s, "output 'r' has shape f32[?,?] even with the inputs bound");
  EXPECT_NE(s.message().find("flatten"), std::string::npos) << s.message();
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
}

// Bindings that no tensor could have: a negative size, and values whose count is not the bound
// length (accepted, Relu's output would become f32[-3,4], and a Reshape target bound as i64[2]
// with three values a rank-3 output). CompileForInputs cannot produce such bindings; direct
// callers can.
TEST(Specialize, RejectsNegativeSizesAndValuesOfTheWrongCount) {
  auto g = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[batch,4]
  %r: f32[batch,4] = Relu(%x)
  output %r
}
)");
  EXPECT_FALSE(SpecializeInputs(*g, {{"x", {{-3, 4}, {}}}}).ok()) << PrintGraph(*g);
  auto h = Parse(R"(graph "g" opsets {"": 17} {
  input %x: f32[3,4]
  input %shape: i64[2]
  %r: f32[?,?] = Reshape(%x, %shape)
  output %r
}
)");
  EXPECT_FALSE(
      SpecializeInputs(*h, {{"x", {{3, 4}, {}}}, {"shape", {{2}, std::vector<int64_t>{2, 3, 2}}}})
          .ok())
      << PrintGraph(*h);
}

// Through CompileForInputs (compiler/compiler.h), which derives the bindings from tensors: the
// dtype must match, and small 1-D integer inputs are bound with their values.
TEST(Specialize, CompileForInputsChecksDTypeAndBindsIntegerValues) {
  const std::string text = R"(graph "g" opsets {"": 17} {
  input %x: f32[n,6]
  input %shape: i64[2]
  %r: f32[?,?] = Reshape(%x, %shape)
  output %r
}
)";
  const Tensor x = Tensor::FromFloats(std::vector<float>(24, 1.0f), {4, 6});
  auto bad = CompileForInputs(
      Parse(text), {Tensor::FromInt64s({1, 2, 3, 4}, {4}), Tensor::FromInt64s({-1, 3}, {2})},
      DType::kFloat32, "test", cpu::CpuBackendSupport());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("input 'x' is i64[4] but the model expects f32[n,6]"),
            std::string::npos)
      << bad.status().message();
  auto ok = CompileForInputs(Parse(text), {x, Tensor::FromInt64s({-1, 3}, {2})}, DType::kFloat32,
                             "test", cpu::CpuBackendSupport());
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  // The plan records the values it was specialised for (a call must pass the same ones).
  ASSERT_EQ(ok->proto.specializations_size(), 1);
  EXPECT_EQ(ok->proto.specializations(0).input(), "shape");
  EXPECT_EQ(std::vector<int64_t>(ok->proto.specializations(0).values().begin(),
                                 ok->proto.specializations(0).values().end()),
            (std::vector<int64_t>{-1, 3}));
  auto count =
      CompileForInputs(Parse(text), {x}, DType::kFloat32, "test", cpu::CpuBackendSupport());
  ASSERT_FALSE(count.ok());
  EXPECT_NE(count.status().message().find("the model has 2 inputs, 1 were given"),
            std::string::npos);
}

}  // namespace
}  // namespace ampc
