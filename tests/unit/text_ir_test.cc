// Textual IR: printer golden output, print -> parse -> print identity, structural equality of
// parsed graphs, error messages for malformed text, and a mutation fuzz of the parser.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ir/float16.h"
#include "ir/graph.h"
#include "ir/tensor.h"
#include "ir/text.h"

namespace ampc {
namespace {

template <typename T>
Tensor Make(DType dt, const std::vector<T>& v, std::vector<int64_t> dims) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return Tensor(dt, std::move(dims), std::move(b));
}

template <typename T>
uint64_t Bits(T v) {
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}

Value* In(Graph& g, const std::string& name, TensorType t) {
  auto v = g.AddInput(name, std::move(t));
  EXPECT_TRUE(v.ok()) << v.status().message();
  return *v;
}
Value* Init(Graph& g, const std::string& name, Tensor t) {
  auto v = g.AddInitializer(name, std::move(t));
  EXPECT_TRUE(v.ok()) << v.status().message();
  return *v;
}
Node* AddNode(Graph& g, const std::string& op, const std::string& domain, const std::string& name,
              std::vector<Value*> ins, std::vector<std::string> outs, AttributeMap attrs,
              std::vector<TensorType> types) {
  auto n = g.AddNode(op, domain, name, ins, outs, std::move(attrs));
  EXPECT_TRUE(n.ok()) << n.status().message();
  for (size_t i = 0; i < types.size(); ++i) {
    if (Value* v = (*n)->output(static_cast<int>(i))) v->set_type(types[i]);
  }
  return *n;
}

TensorType T(DType dt, std::vector<Dim> dims) { return TensorType(dt, std::move(dims)); }

// Tensors with more than `max_inline` elements come back elided; others byte for byte.
void ExpectSameTensor(const Tensor& a, const Tensor& b, int64_t max_inline) {
  EXPECT_EQ(a.dtype(), b.dtype());
  EXPECT_EQ(a.dims(), b.dims());
  if (a.elided() || a.NumElements() > max_inline) {
    EXPECT_TRUE(b.elided());
  } else {
    EXPECT_FALSE(b.elided());
    EXPECT_EQ(a.bytes(), b.bytes());
  }
}

void ExpectSameAttr(const Attribute& a, const Attribute& b, int64_t max_inline) {
  ASSERT_EQ(a.kind(), b.kind());
  switch (a.kind()) {
    case AttrKind::kFloat:
      EXPECT_EQ(Bits(a.f()), Bits(b.f()));
      break;
    case AttrKind::kFloats:
      ASSERT_EQ(a.floats().size(), b.floats().size());
      for (size_t i = 0; i < a.floats().size(); ++i) {
        EXPECT_EQ(Bits(a.floats()[i]), Bits(b.floats()[i]));
      }
      break;
    case AttrKind::kTensor:
      ExpectSameTensor(a.t(), b.t(), max_inline);
      break;
    default:
      EXPECT_TRUE(a == b);
  }
}

std::vector<std::string> Names(const std::vector<Value*>& vs) {
  std::vector<std::string> r;
  for (const Value* v : vs) r.push_back(v ? v->name() : "<omitted>");
  return r;
}

void ExpectSameGraph(const Graph& a, const Graph& b, int64_t max_inline = 16) {
  EXPECT_EQ(a.name(), b.name());
  EXPECT_EQ(a.opsets(), b.opsets());
  ASSERT_EQ(Names(a.inputs()), Names(b.inputs()));
  for (size_t i = 0; i < a.inputs().size(); ++i) {
    EXPECT_EQ(a.inputs()[i]->type(), b.inputs()[i]->type()) << a.inputs()[i]->name();
  }
  ASSERT_EQ(Names(a.initializers()), Names(b.initializers()));
  for (size_t i = 0; i < a.initializers().size(); ++i) {
    SCOPED_TRACE(a.initializers()[i]->name());
    EXPECT_EQ(a.initializers()[i]->type(), b.initializers()[i]->type());
    ExpectSameTensor(*a.initializers()[i]->initializer(), *b.initializers()[i]->initializer(),
                     max_inline);
  }
  ASSERT_EQ(a.nodes().size(), b.nodes().size());
  for (size_t i = 0; i < a.nodes().size(); ++i) {
    const Node& x = *a.nodes()[i];
    const Node& y = *b.nodes()[i];
    SCOPED_TRACE(x.Describe());
    EXPECT_EQ(x.op_type(), y.op_type());
    EXPECT_EQ(x.domain(), y.domain());
    EXPECT_EQ(x.name(), y.name());
    EXPECT_EQ(Names(x.inputs()), Names(y.inputs()));
    ASSERT_EQ(Names(x.outputs()), Names(y.outputs()));
    for (int k = 0; k < x.num_outputs(); ++k) {
      if (x.output(k)) {
        EXPECT_EQ(x.output(k)->type(), y.output(k)->type());
      }
    }
    ASSERT_EQ(x.attrs().size(), y.attrs().size());
    for (const auto& [key, value] : x.attrs()) {
      SCOPED_TRACE(key);
      ASSERT_NE(y.attr(key), nullptr);
      ExpectSameAttr(value, *y.attr(key), max_inline);
    }
    EXPECT_EQ(x.annotations(), y.annotations());
  }
  EXPECT_EQ(Names(a.outputs()), Names(b.outputs()));
}

// Prints, parses, prints again: the texts must be identical and the graphs equal.
std::unique_ptr<Graph> RoundTrip(const Graph& g, const PrintOptions& opts = {}) {
  const std::string text = PrintGraph(g, opts);
  auto parsed = ParseGraph(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status().message() << "\n" << text;
  if (!parsed.ok()) return nullptr;
  EXPECT_EQ(PrintGraph(**parsed, opts), text);
  ExpectSameGraph(g, **parsed, opts.max_inline_elements);
  return std::move(parsed).value();
}

// A graph using every feature of the format.
std::unique_ptr<Graph> BuildKitchenSink() {
  auto gp = std::make_unique<Graph>();
  Graph& g = *gp;
  g.set_name("main \"graph\"\n\t\\ é");
  g.opsets() = {{"", 17}, {"com.microsoft", 1}, {"ai.onnx.preview.training", 1}};
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const double dinf = std::numeric_limits<double>::infinity();

  Value* x = In(g, "input", T(DType::kFloat32, {Dim::Symbol("batch"), 784}));
  Value* w1 = In(g, "/in/weird name:1", T(DType::kFloat16, {Dim(), Dim::Symbol("seq len"), 3}));
  In(g, "scalar", T(DType::kFloat64, {}));
  Value* unk = In(g, "unk", TensorType());
  In(g, "input.1", TensorType::UnknownShape(DType::kBFloat16));
  In(g, "onnx::Gemm_5",
     T(DType::kInt32,
       {Dim(-1), Dim::Symbol("?"), Dim::Symbol(""), Dim::Symbol("N2"), Dim::Symbol("2N")}));
  In(g, std::string("nul\0byte\x7f\"", 10), T(DType::kBool, {1}));

  Init(g, "f32",
       Make<float>(DType::kFloat32,
                   {1.5f, -0.0f, inf, -inf, nan, std::numeric_limits<float>::denorm_min(),
                    std::numeric_limits<float>::max(), 0.1f, 1e-5f, 123456789.0f, 1e20f},
                   {11}));
  Init(g, "f16",
       Make<uint16_t>(
           DType::kFloat16,
           {0x3c00, 0x8000, 0x7c00, 0xfc00, 0x0001, 0x03ff, 0x7bff, 0x7e00, 0x2e66, 0x8001},
           {2, 5}));
  Init(g, "bf16",
       Make<uint16_t>(
           DType::kBFloat16,
           {0x3f80, 0x8000, 0x7f80, 0xff80, 0x0001, 0x007f, 0x7f7f, 0x7fc0, 0x3dcd, 0x807f},
           {5, 2}));
  Init(g, "f64",
       Make<double>(
           DType::kFloat64,
           {0.1, -0.0, 1e308, std::numeric_limits<double>::denorm_min(), dinf, -dinf, 1.0 / 3.0},
           {7}));
  Init(g, "i64",
       Make<int64_t>(
           DType::kInt64,
           {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), 0, -1},
           {2, 1, 2}));
  Init(g, "i32", Make<int32_t>(DType::kInt32, {INT32_MIN, INT32_MAX, 7}, {3}));
  Init(g, "i8", Make<int8_t>(DType::kInt8, {-128, 127, 0}, {3}));
  Init(g, "u8", Make<uint8_t>(DType::kUInt8, {0, 255, 9}, {3}));
  Init(g, "bool", Make<uint8_t>(DType::kBool, {1, 0, 1}, {3}));
  Value* sc = Init(g, "scalar_i64", Tensor::ScalarInt64(7));
  Init(g, "empty", Make<float>(DType::kFloat32, {}, {0, 3}));
  Init(g, "big", Make<float>(DType::kFloat32, std::vector<float>(100, 0.25f), {10, 10}));
  Value* w = Init(g, "fc1.weight", Tensor::Elided(DType::kFloat32, {256, 784}));
  Init(g, "small_elided", Tensor::Elided(DType::kInt8, {2}));
  Init(g, "sixteen", Make<int64_t>(DType::kInt64, std::vector<int64_t>(16, 3), {16}));

  AttributeMap gemm{
      {"alpha", Attribute(1.0f)}, {"beta", Attribute(0.5f)}, {"transB", Attribute(int64_t{1})}};
  Node* n = AddNode(g, "Gemm", "", "/fc1/Gemm", {x, w, nullptr}, {"/fc1/Gemm_output_0"}, gemm,
                    {T(DType::kFloat32, {Dim::Symbol("batch"), 256})});
  Value* h = n->output(0);
  n->annotations() = {
      {"precision", "bf16"}, {"reason", "allow-list"}, {"weird key", "a \"quoted\"\nvalue"}};

  AttributeMap all{
      {"i", Attribute(int64_t{-42})},
      {"one_int", Attribute(int64_t{1})},
      {"one_float", Attribute(1.0f)},
      {"f_neg_zero", Attribute(-0.0f)},
      {"f_inf", Attribute(-inf)},
      {"f_small", Attribute(1e-5f)},
      {"f_denorm", Attribute(std::numeric_limits<float>::denorm_min())},
      {"s", Attribute(std::string("he said \"hi\"\\\n\t\x01 // not a comment"))},
      {"s_empty", Attribute(std::string())},
      {"t", Attribute(Make<float>(DType::kFloat32, {1.0f, 2.0f}, {2}))},
      {"t_f16", Attribute(Make<uint16_t>(DType::kFloat16, {0x3555}, {}))},
      {"t_big", Attribute(Make<int32_t>(DType::kInt32, std::vector<int32_t>(20, 1), {4, 5}))},
      {"t_elided", Attribute(Tensor::Elided(DType::kBFloat16, {3}))},
      {"ints", Attribute(std::vector<int64_t>{1, -2, std::numeric_limits<int64_t>::max()})},
      {"floats", Attribute(std::vector<float>{1.0f, 0.5f, -inf, 3e38f})},
      {"strings", Attribute(std::vector<std::string>{"a", "", "b c", "\"]"})},
      {"ints_empty", Attribute(std::vector<int64_t>{})},
      {"floats_empty", Attribute(std::vector<float>{})},
      {"strings_empty", Attribute(std::vector<std::string>{})},
      {"weird-key", Attribute(int64_t{0})},
      {"dotted.key", Attribute(int64_t{0})},
  };
  n = AddNode(g, "AllAttrs", "com.microsoft", "all", {h, sc}, {"all_out"}, all,
              {T(DType::kUndefined, {Dim(), 2})});
  Value* a = n->output(0);

  n = AddNode(g, "Split", "", "split0", {a, sc}, {"a", "b"}, {{"axis", Attribute(int64_t{0})}},
              {T(DType::kFloat32, {2}), T(DType::kFloat32, {2})});
  n->annotations()["precision"] = "bf16";
  Value* sa = n->output(0);
  n = AddNode(g, "Clip", "", "c", {sa, nullptr, sa, nullptr}, {"clipped"}, {},
              {T(DType::kFloat32, {3})});
  Value* clipped = n->output(0);
  n = AddNode(g, "Dropout", "", "d", {clipped}, {"", "mask"}, {},
              {TensorType(), T(DType::kBool, {3})});
  n = AddNode(g, "Adam", "ai.onnx.preview.training", "", {clipped, unk}, {"z"}, {},
              {T(DType::kFloat32, {3})});
  Value* z = n->output(0);
  n = AddNode(g, "My Op", "my domain::x", "weird \"node\"\nname", {z, w1}, {"8 out", "9:9"}, {},
              {TensorType(), TensorType::UnknownShape(DType::kInt8)});
  Value* weird = n->output(0);
  AddNode(g, "Constant", "", "k", {}, {"k_out"},
          {{"value", Attribute(Make<int64_t>(DType::kInt64, {5}, {1}))}}, {T(DType::kInt64, {1})});
  AddNode(g, "Print", "", "sink", {z}, {}, {}, {});
  AddNode(g, "", "", "empty op", {}, {"e_out"}, {}, {T(DType::kFloat32, {})});
  g.AddOutput(z);
  g.AddOutput(weird);
  g.AddOutput(x);
  g.AddOutput(z);
  return gp;
}

TEST(TextIr, GoldenTinyGraph) {
  Graph g;
  g.set_name("tiny");
  g.opsets()[""] = 17;
  Value* x = In(g, "x", T(DType::kFloat32, {Dim::Symbol("batch"), 4}));
  Value* w = Init(g, "w", Make<float>(DType::kFloat32, {1, 2, 0.5f, -0.25f}, {2, 2}));
  Value* s = Init(g, "onnx::Reshape_1", Tensor::FromInt64s({-1, 2}, {2}));
  Node* n = AddNode(g, "MatMul", "", "/mm/MatMul", {x, w}, {"/mm/MatMul_output_0"}, {},
                    {T(DType::kFloat32, {Dim::Symbol("batch"), 2})});
  n->annotations()["precision"] = "f16";
  n = AddNode(g, "Reshape", "", "", {n->output(0), s}, {"y"},
              {{"allowzero", Attribute(int64_t{0})}, {"ratio", Attribute(1.0f)}},
              {T(DType::kFloat32, {Dim(), 2})});
  g.AddOutput(n->output(0));
  const std::string golden =
      "graph \"tiny\" opsets {\"\": 17} {\n"
      "  input %x: f32[batch,4]\n"
      "  init %w: f32[2,2] = [1.0, 2.0, 0.5, -0.25]\n"
      "  init %\"onnx::Reshape_1\": i64[2] = [-1, 2]\n"
      "  %\"/mm/MatMul_output_0\": f32[batch,2] = MatMul(%x, %w) name=\"/mm/MatMul\" "
      "#precision=\"f16\"\n"
      "  %y: f32[?,2] = Reshape(%\"/mm/MatMul_output_0\", %\"onnx::Reshape_1\") "
      "{allowzero=0, ratio=1.0}\n"
      "  output %y\n"
      "}\n";
  EXPECT_EQ(PrintGraph(g), golden);
  RoundTrip(g);
}

TEST(TextIr, KitchenSinkRoundTrip) {
  auto g = BuildKitchenSink();
  const std::string text = PrintGraph(*g);
  // Spot checks on the canonical spelling.
  EXPECT_NE(text.find("init %f16: f16[2,5] = [1.0, -0.0, inf, -inf, 5.9604645e-08, 6.097555e-05,"
                      " 65504.0, nan, 0.099975586, -5.9604645e-08]\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("init %big: f32[10,10] = elided\n"), std::string::npos);
  EXPECT_NE(text.find("init %sixteen: i64[16] = [3, 3,"), std::string::npos);
  EXPECT_NE(text.find("init %bool: bool[3] = [true, false, true]\n"), std::string::npos);
  EXPECT_NE(text.find("init %scalar_i64: i64[] = [7]\n"), std::string::npos);
  EXPECT_NE(text.find("init %empty: f32[0,3] = []\n"), std::string::npos);
  EXPECT_NE(text.find("input %unk: ?[*]\n"), std::string::npos);
  EXPECT_NE(text.find("input %\"onnx::Gemm_5\": i32[-1,\"?\",\"\",N2,\"2N\"]\n"),
            std::string::npos);
  EXPECT_NE(text.find("ints_empty=ints[]"), std::string::npos);
  EXPECT_NE(text.find("floats_empty=floats[]"), std::string::npos);
  EXPECT_NE(text.find("strings_empty=strings[]"), std::string::npos);
  EXPECT_NE(text.find("one_float=1.0, one_int=1"), std::string::npos);
  EXPECT_NE(text.find("f_small=1e-05"), std::string::npos);
  EXPECT_NE(text.find("t=tensor<f32[2]> [1.0, 2.0]"), std::string::npos);
  EXPECT_NE(text.find("t_big=tensor<i32[4,5]> elided"), std::string::npos);
  EXPECT_NE(text.find("= Clip(%a, _, %a, _) name=\"c\"\n"), std::string::npos);
  EXPECT_NE(text.find("  _, %mask: bool[3] = Dropout(%clipped) name=\"d\"\n"), std::string::npos);
  EXPECT_NE(text.find("= ai.onnx.preview.training::Adam(%clipped, %unk)\n"), std::string::npos);
  EXPECT_NE(text.find("= \"my domain::x\"::\"My Op\"("), std::string::npos);
  EXPECT_NE(text.find("  () = Print(%z) name=\"sink\"\n"), std::string::npos);
  EXPECT_NE(text.find("= \"\"() name=\"empty op\"\n"), std::string::npos);
  EXPECT_NE(text.find(" #precision=\"bf16\" #reason=\"allow-list\" #\"weird key\"="),
            std::string::npos);
  EXPECT_NE(text.find("%\"nul\\x00byte\\x7F\\\"\": bool[1]"), std::string::npos);
  RoundTrip(*g);
}

TEST(TextIr, RoundTripWithOtherInlineLimits) {
  auto g = BuildKitchenSink();
  for (int64_t limit : {0, 1, 3, 1000}) {
    SCOPED_TRACE(limit);
    PrintOptions opts;
    opts.max_inline_elements = limit;
    RoundTrip(*g, opts);
  }
  PrintOptions opts;
  opts.max_inline_elements = 2;
  EXPECT_NE(PrintGraph(*g, opts).find("init %i32: i32[3] = elided\n"), std::string::npos);
}

TEST(TextIr, ParserAcceptsLooseSpellingAndPrintsCanonically) {
  const std::string loose =
      "// a FileCheck-style comment\n"
      "\n"
      "graph   \"g\"   opsets { \"\" : 17 , \"com.microsoft\":1 }{   // trailing comment\r\n"
      "\tinput %\"x\" :f32 [ batch , 4 ]\r\n"
      "   init %k : i64[2]=[ 1,-2 ]\n"
      "// a whole-line comment\n"
      "  init %h: f16[3] = [0.1, 1, -inf]\n"
      "  init %e: u8[2,2] = elided\n"
      "%y:f32[?,4],_=\"\"::Foo(%x,_,%k){b=floats[1, 2],a=ints[],c=[\"s\"],d=2.5e0,e=+1.0} "
      "name = \"n\"  #z=\"1\" #a=\"2\"   // tail\n"
      "  () = com.microsoft::Bar ( ) { }\n"
      "  output %y // done\n"
      "}\n"
      "// trailing comment\n";
  auto g = ParseGraph(loose);
  ASSERT_TRUE(g.ok()) << g.status().message();
  const std::string canonical =
      "graph \"g\" opsets {\"\": 17, \"com.microsoft\": 1} {\n"
      "  input %x: f32[batch,4]\n"
      "  init %k: i64[2] = [1, -2]\n"
      "  init %h: f16[3] = [0.099975586, 1.0, -inf]\n"
      "  init %e: u8[2,2] = elided\n"
      "  %y: f32[?,4], _ = Foo(%x, _, %k) {a=ints[], b=[1.0, 2.0], c=[\"s\"], d=2.5, e=1.0} "
      "name=\"n\" #a=\"2\" #z=\"1\"\n"
      "  () = com.microsoft::Bar()\n"
      "  output %y\n"
      "}\n";
  EXPECT_EQ(PrintGraph(**g), canonical);
  const Node* foo = (*g)->nodes()[0];
  EXPECT_EQ(foo->attr("a")->kind(), AttrKind::kInts);
  EXPECT_EQ(foo->attr("b")->kind(), AttrKind::kFloats);
  EXPECT_EQ(foo->attr("d")->kind(), AttrKind::kFloat);
  EXPECT_EQ(foo->num_inputs(), 3);
  EXPECT_EQ(foo->num_outputs(), 2);
  EXPECT_EQ(foo->output(1), nullptr);
  EXPECT_TRUE((*g)->FindValue("e")->initializer()->elided());
}

TEST(TextIr, ParserRecordsTypesAsWrittenWithoutInference) {
  auto g = ParseGraph(
      "graph \"g\" {\n"
      "  input %x: f32[2,3]\n"
      "  %y: i64[7,\"n+1\"] = Relu(%x)\n"
      "  %z: ?[*] = Relu(%y)\n"
      "  output %z\n"
      "}\n");
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ((*g)->FindValue("y")->type(), T(DType::kInt64, {7, Dim::Symbol("n+1")}));
  EXPECT_EQ((*g)->FindValue("z")->type(), TensorType());
  EXPECT_TRUE((*g)->opsets().empty());
  EXPECT_EQ((*g)->FindValue("x")->uses().size(), 1u);
  EXPECT_EQ((*g)->FindValue("y")->producer(), (*g)->nodes()[0]);
}

TEST(TextIr, AttributeKindsAndFloatSpellingsRoundTrip) {
  const float fmax = std::numeric_limits<float>::max();
  const float fvals[] = {0.0f,
                         -0.0f,
                         1.0f,
                         0.1f,
                         1e-5f,
                         1e20f,
                         123456789.0f,
                         fmax,
                         -fmax,
                         std::numeric_limits<float>::denorm_min(),
                         std::numeric_limits<float>::min(),
                         3.14159265f,
                         16777217.0f,
                         std::numeric_limits<float>::infinity()};
  Graph g;
  Value* x = In(g, "x", T(DType::kFloat32, {1}));
  AttributeMap attrs;
  int k = 0;
  for (float f : fvals) {
    attrs["f" + std::to_string(k)] = Attribute(f);
    attrs["i" + std::to_string(k)] = Attribute(static_cast<int64_t>(k) - 3);
    ++k;
  }
  attrs["fs"] = Attribute(std::vector<float>(std::begin(fvals), std::end(fvals)));
  AddNode(g, "A", "", "", {x}, {"y"}, attrs, {T(DType::kFloat32, {1})});
  auto parsed = RoundTrip(g);
  ASSERT_NE(parsed, nullptr);
  for (const auto& [key, a] : parsed->nodes()[0]->attrs()) {
    EXPECT_EQ(a.kind(),
              key[0] == 'f' ? (key == "fs" ? AttrKind::kFloats : AttrKind::kFloat) : AttrKind::kInt)
        << key;
  }
  // NaN prints as `nan` and comes back as a NaN float attribute.
  Graph g2;
  Value* x2 = In(g2, "x", T(DType::kFloat32, {1}));
  AddNode(g2, "A", "", "", {x2}, {"y"}, {{"n", Attribute(std::nanf(""))}}, {});
  const std::string text = PrintGraph(g2);
  EXPECT_NE(text.find("{n=nan}"), std::string::npos);
  auto p2 = ParseGraph(text);
  ASSERT_TRUE(p2.ok());
  EXPECT_TRUE(std::isnan((*p2)->nodes()[0]->attr("n")->f()));
  EXPECT_EQ(PrintGraph(**p2), text);
}

TEST(TextIr, HalfEncodersAreExactAndRoundToNearestEven) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float hf = HalfBitsToFloat(static_cast<uint16_t>(h));
    const float bf = BFloat16BitsToFloat(static_cast<uint16_t>(h));
    if (std::isnan(hf)) {
      EXPECT_TRUE(std::isnan(HalfBitsToFloat(FloatToHalfBits(hf))));
    } else {
      ASSERT_EQ(FloatToHalfBits(hf), h) << h;
    }
    if (std::isnan(bf)) {
      EXPECT_TRUE(std::isnan(BFloat16BitsToFloat(FloatToBFloat16Bits(bf))));
    } else {
      ASSERT_EQ(FloatToBFloat16Bits(bf), h) << h;
    }
  }
  EXPECT_EQ(FloatToHalfBits(65519.0f), 0x7bff);  // below the rounding boundary
  EXPECT_EQ(FloatToHalfBits(65520.0f), 0x7c00);  // tie rounds to even: infinity
  EXPECT_EQ(FloatToHalfBits(1e10f), 0x7c00);
  EXPECT_EQ(FloatToHalfBits(-1e10f), 0xfc00);
  EXPECT_EQ(FloatToHalfBits(1.0f + 0x1p-11f), 0x3c00);      // tie to even (down)
  EXPECT_EQ(FloatToHalfBits(1.0f + 3 * 0x1p-11f), 0x3c02);  // tie to even (up)
  EXPECT_EQ(FloatToHalfBits(0x1p-25f), 0x0000);             // half the smallest subnormal: to even
  EXPECT_EQ(FloatToHalfBits(0x1.8p-25f), 0x0001);
  EXPECT_EQ(FloatToHalfBits(0x1.8p-24f), 0x0002);    // 1.5 subnormal steps: tie to even
  EXPECT_EQ(FloatToHalfBits(0x1.ffcp-15f), 0x0400);  // rounds up into the normals
  EXPECT_EQ(FloatToHalfBits(1e-30f), 0x0000);
  EXPECT_EQ(FloatToHalfBits(-1e-30f), 0x8000);
  EXPECT_EQ(FloatToBFloat16Bits(1.0f + 0x1p-8f), 0x3f80);  // tie to even (down)
  EXPECT_EQ(FloatToBFloat16Bits(1.0f + 3 * 0x1p-8f), 0x3f82);
  EXPECT_EQ(FloatToBFloat16Bits(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_TRUE(std::isnan(BFloat16BitsToFloat(FloatToBFloat16Bits(std::nanf("")))));
}

struct BadCase {
  const char* text;
  const char* message;
};

TEST(TextIr, MalformedInputsGiveLineAndColumn) {
  const BadCase cases[] = {
      {"graph \"g\" {\n  input %x: f33[2]\n}\n", "line 2, column 13: unknown dtype 'f33'"},
      {"graph \"g\" {\n  input %x f32[2]\n}\n", "line 2, column 12: expected ':' after value name"},
      {"graph \"g\" {\n  input %x: f32[2]\n  %y: f32[2] = Relu(%foo)\n}\n",
       "line 3, column 21: use of undefined value %foo"},
      {"graph \"g\" {\n  input %x: f32[2]\n  input %x: f32[3]\n}\n",
       "line 3, column 9: value %x is defined twice"},
      {"graph \"g\" {\n  input %x: f32[2]\n  %x: f32[2] = Relu(%x)\n}\n",
       "line 3, column 3: value %x is defined twice"},
      {"graph \"g\" {\n  input %x: f32[2]\n  %a: f32[1], %a: f32[1] = Split(%x)\n}\n",
       "line 3, column 15: value %a is defined twice"},
      {"graph \"g\" {\n  %b: f32[2] = Relu(%a)\n  %a: f32[2] = Relu(%b)\n}\n",
       "use of undefined value %a"},
      {"graph \"g", "line 1, column 7: unterminated string"},
      {"graph \"g\" {\n  %y: f32[2] = Foo() name=\"abc\n}\n",
       "line 2, column 27: unterminated string"},
      {"graph \"g\" {\n  init %w: f32[3] = [1.0, 2.0]\n}\n",
       "the tensor data has 2 elements but the type f32[3] has 3"},
      {"graph \"g\" {\n  init %w: f32[2] = [1.0, 2.0, 3.0]\n}\n", "too many elements"},
      {"graph \"g\" {\n  input %x: f32[99999999999999999999]\n}\n",
       "integer '99999999999999999999' is out of range"},
      {"graph \"g\" {\n  init %w: f32[1099511627777] = elided\n}\n", "out of range"},
      {"graph \"g\" {\n  init %w: f32[1099511627776,1099511627776] = elided\n}\n",
       "too many elements"},
      {"graph \"g\" {\n  input %x: f32[2]\n", "line 3, column 1: unexpected end of input"},
      {"graph \"g\" {\n  input %x: f32[", "expected a dimension"},
      {"graph \"g\" {\n  @@@\n}\n",
       "line 2, column 3: expected input, init, output, update, a node or '}', "
       "found '@'"},
      {"graph \"g\" {\n}\n}\n",
       "line 3, column 1: unexpected text after the end of the graph: '}'"},
      {"graph \"g\" {\n  output %nope\n}\n", "line 2, column 10: use of undefined value %nope"},
      {"graph \"g\" {\n  output _\n}\n", "expected a value (%name)"},
      {"graph \"g\" {\n  () = A() {a=[]}\n}\n", "empty list needs a kind"},
      {"graph \"g\" {\n  () = A() {a=[1, 2.0]}\n}\n", "cannot mix ints and floats"},
      {"graph \"g\" {\n  () = A() {a=[1, \"x\"]}\n}\n", "cannot mix strings and numbers"},
      {"graph \"g\" {\n  () = A() {a=ints[1.5]}\n}\n", "expected an integer in ints[...]"},
      {"graph \"g\" {\n  () = A() {a=1, a=2}\n}\n", "line 2, column 18: attribute given twice"},
      {"graph \"g\" {\n  () = A() {a=true}\n}\n", "expected an attribute value, found 'true'"},
      {"graph \"g\" {\n  () = A() {a=1e99}\n}\n", "number '1e99' is out of range"},
      {"graph \"g\" {\n  () = A() {a=1.2.3}\n}\n", "invalid number '1.2.3'"},
      {"graph \"g\" {\n  () = A() {a=tensor<f32[?]> elided}\n}\n", "static dims"},
      {"graph \"g\" {\n  () = A() {a=tensor<f32[1] [1.0]}\n}\n",
       "expected '>' after the tensor type"},
      {"graph \"g\" {\n  () = A() {a=1\n}\n", "expected '}' to close the attributes"},
      {"graph \"g\" {\n  () = A(\n}\n", "expected a value (%name)"},
      {"graph \"g\" {\n  () = A() name=\"a\\q\"\n}\n", "line 2, column 19: unknown escape '\\q'"},
      {"graph \"g\" {\n  () = A() name=\"a\\x4\"\n}\n", "needs two hex digits"},
      {"graph \"g\" {\n  () = A() name=\"n\" extra\n}\n", "found 'extra'"},
      {"graph \"g\" {\n  () = A() #k=\"1\" #k=\"2\"\n}\n", "annotation given twice"},
      {"graph \"g\" {\n  () = A() #k=1\n}\n", "the annotation value (a quoted string)"},
      {"graph \"g\" {\n  init %b: u8[1] = [256]\n}\n", "value 256 is out of range for u8"},
      {"graph \"g\" {\n  init %b: i8[1] = [-129]\n}\n", "out of range for i8"},
      {"graph \"g\" {\n  init %b: i32[1] = [1.5]\n}\n", "expected an integer element"},
      {"graph \"g\" {\n  init %b: bool[1] = [1]\n}\n", "expected true or false"},
      {"graph \"g\" {\n  init %w: f32[n] = elided\n}\n", "static dims"},
      {"graph \"g\" {\n  init %w: f32[*] = elided\n}\n", "known shape"},
      {"graph \"g\" {\n  init %w: ?[1] = [1]\n}\n", "unknown dtype can only be 'elided'"},
      {"graph \"g\" {\n  init %w: f32[1]\n}\n", "expected '=' after the initializer's type"},
      {"graph \"g\" {\n  input %\"\": f32[1]\n}\n", "empty value name"},
      {"graph \"g\" {\n  input % x: f32[1]\n}\n", "expected a value name after '%'"},
      {"graph \"g\" {\n  inputs %x: f32[2]\n}\n", "found 'inputs'"},
      {"graph \"g\" {\n  input %x: f32[2] junk\n}\n", "expected end of line, found 'junk'"},
      {"graph \"g\" {\n  %y: f32 = Relu()\n}\n", "expected '[' after the dtype"},
      {"graph \"g\" {\n  %y: f32[1] Relu()\n}\n", "expected '=' after the node's results"},
      {"graph \"g\" {\n  %y: f32[1] = (%x)\n}\n", "expected an op name"},
      {"graph \"g\" opsets {\"\": 17, \"\": 13} {\n}\n", "opset for domain \"\" given twice"},
      {"graph \"g\" opsets {\"\": x} {\n}\n", "line 1, column 23: expected an integer, found 'x'"},
      {"graph \"g\" { input %x: f32[1]\n}\n", "line 1, column 13: expected end of line"},
      {"graph g {\n}\n", "the graph name (a quoted string)"},
      {"foo", "line 1, column 1: expected 'graph' at the start, found 'foo'"},
      {"", "expected 'graph' at the start, found end of input"},
      {"graph \"g\" {\n  \x01\n}\n", "found byte 0x01"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.text);
    auto g = ParseGraph(c.text);
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(g.status().message().find(c.message), std::string::npos) << g.status().message();
    EXPECT_EQ(g.status().message().rfind("line ", 0), 0u) << g.status().message();
  }
  // A NUL byte inside the text is garbage too, not the end of the input.
  auto g = ParseGraph(std::string_view("graph \"g\" {\n  \0\n}\n", 17));
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("line 2, column 3"), std::string::npos);
  EXPECT_NE(g.status().message().find("byte 0x00"), std::string::npos);
}

// Random truncations and mutations of a valid text must parse or fail cleanly; whatever parses
// must then print -> parse -> print identically.
TEST(TextIr, FuzzedTextNeverCrashes) {
  auto g = BuildKitchenSink();
  const std::string text = PrintGraph(*g);
  std::mt19937 rng(12345);
  const std::string interesting = "\"%:[]{}(),=#\\_<>*?\n\t -+.e0123456789xabz/";
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  int parsed_ok = 0, failed = 0;
  for (int iter = 0; iter < 800; ++iter) {
    std::string t = text;
    const int edits = 1 + static_cast<int>(pick(3));
    for (int e = 0; e < edits && !t.empty(); ++e) {
      switch (pick(6)) {
        case 0:
          t.resize(pick(t.size()));
          break;
        case 1:
          t.erase(pick(t.size()), 1 + pick(8));
          break;
        case 2:
          t.insert(pick(t.size()), 1, interesting[pick(interesting.size())]);
          break;
        case 3:
          t[pick(t.size())] = static_cast<char>(rng() & 0xff);
          break;
        case 4:
          t[pick(t.size())] = interesting[pick(interesting.size())];
          break;
        default: {  // duplicate a chunk elsewhere
          const size_t from = pick(t.size());
          const std::string chunk = t.substr(from, 1 + pick(40));
          t.insert(pick(t.size()), chunk);
        }
      }
    }
    auto r = ParseGraph(t);
    if (!r.ok()) {
      ++failed;
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      EXPECT_EQ(r.status().message().rfind("line ", 0), 0u) << r.status().message();
      continue;
    }
    ++parsed_ok;
    const std::string printed = PrintGraph(**r);
    auto again = ParseGraph(printed);
    ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << printed;
    EXPECT_EQ(PrintGraph(**again), printed);
  }
  EXPECT_GT(failed, 100);
  EXPECT_GT(parsed_ok, 0);
  // Every prefix of the text, too.
  for (size_t n = 0; n + 1 < text.size(); n += 7) {
    auto r = ParseGraph(std::string_view(text).substr(0, n));
    EXPECT_FALSE(r.ok());
  }
}

}  // namespace
}  // namespace ampc
