// The importer at ai.onnx opsets 18-23: the opset-18..23 forms of the ops (Reduce* axes as an
// input, Split's num_outputs, GroupNormalization 18's per-group scale, Attention's unused
// outputs, Cast's saturate), the errors of an opset, op, version or attribute ampc does not know
// (exact message substrings), IR versions gated by the fields a model sets, the ONNX 1.12
// checker only up to opset 17, and export at the opset a graph needs. Models are built with
// ONNX's protobuf classes; the expected shapes and messages are written out by hand.
#include <google/protobuf/unknown_field_set.h>
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "frontend/onnx.h"
#include "ir/op_registry.h"
#include "ir/ops/onnx_versions.h"
#include "ir/text.h"
#include "tests/unit/onnx_builders.h"
#include "tests/unit/test_util.h"

namespace ampc {
namespace {

using testing::AddInitializerI64;
using testing::AddNode;
using testing::AddValueInfo;
using testing::EmptyModel;
using testing::RunAmpc;
using testing::Serialize;
using testing::SetStringAttr;
using testing::TempDir;
using testing::WriteBytes;

constexpr int kF = onnx::TensorProto::FLOAT;

StatusOr<std::unique_ptr<Graph>> Import(const onnx::ModelProto& m) {
  return ImportOnnxBytes(Serialize(m), "/tmp", "model.onnx");
}

void ExpectError(const onnx::ModelProto& m, const std::string& want) {
  auto g = Import(m);
  ASSERT_FALSE(g.ok()) << "imported, expected: " << want;
  EXPECT_NE(g.status().message().find(want), std::string::npos) << g.status().message();
  EXPECT_EQ(g.status().message().find('\n'), std::string::npos) << "one line";
}

void SetInt(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

// x: f32[dims] -> op -> y (output type left to inference).
onnx::ModelProto OneNode(int64_t opset, const std::string& op, std::vector<int64_t> dims,
                         onnx::NodeProto** node = nullptr) {
  onnx::ModelProto m = EmptyModel(opset);
  auto* g = m.mutable_graph();
  AddValueInfo(g->add_input(), "x", kF, std::move(dims));
  onnx::NodeProto* n = AddNode(g, op, {"x"}, {"y"}, "n0");
  g->add_output()->set_name("y");
  if (node) *node = n;
  return m;
}

// x: f32[2,3] -> Relu -> y: f32[2,3], valid for ONNX's checker too.
onnx::ModelProto ReluModel(int64_t opset) {
  onnx::ModelProto m = EmptyModel(opset);
  auto* g = m.mutable_graph();
  AddValueInfo(g->add_input(), "x", kF, {2, 3});
  AddNode(g, "Relu", {"x"}, {"y"}, "n0");
  AddValueInfo(g->add_output(), "y", kF, {2, 3});
  return m;
}

std::string TypeOf(const Graph& g, const std::string& value) {
  const Value* v = g.FindValue(value);
  return v ? v->type().ToString() : "(missing)";
}

// ---- opsets, ops and versions -----------------------------------------------------------------

TEST(ImportNewer, EveryOpsetUpTo23IsAccepted) {
  for (int64_t opset = 6; opset <= 23; ++opset) {
    auto g = Import(ReluModel(opset));
    ASSERT_TRUE(g.ok()) << opset << ": " << g.status().message();
    EXPECT_EQ((*g)->opsets().at(""), std::max<int64_t>(17, opset));
  }
}

TEST(ImportNewer, Opset24IsRejectedNamingDomainAndVersion) {
  ExpectError(OneNode(24, "Relu", {2}),
              "opset 24 of domain ai.onnx is newer than the newest supported (23)");
}

TEST(ImportNewer, UnknownOpNamesOpDomainAndOpset) {
  ExpectError(OneNode(21, "Swish", {2}),
              "unknown op 'Swish' (domain 'ai.onnx', opset 21) at node 'n0'");
}

TEST(ImportNewer, OpBeforeItsFirstVersionIsRejected) {
  ExpectError(OneNode(19, "Gelu", {2}),
              "op 'Gelu' (domain 'ai.onnx') does not exist at opset 19 (its first version is 20) "
              "at node 'n0'");
  EXPECT_TRUE(Import(OneNode(20, "Gelu", {2})).ok());
  ExpectError(OneNode(22, "RMSNormalization", {2}),
              "op 'RMSNormalization' (domain 'ai.onnx') "
              "does not exist at opset 22");
}

TEST(ImportNewer, TrainingDomainAboveVersion1IsRejected) {
  onnx::ModelProto m = OneNode(17, "Relu", {2});
  auto* os = m.add_opset_import();
  os->set_domain("ai.onnx.preview.training");
  os->set_version(2);
  ExpectError(m, "opset 2 of domain ai.onnx.preview.training is newer than supported (1)");
}

// The version table (generated from ONNX 1.23) and the op registry list the same ops, so that no
// op is imported without its versions being resolved and no tabled op lacks an implementation.
TEST(ImportNewer, VersionTableMatchesTheRegistry) {
  for (const OpSchema* s : OpRegistry::Global().All()) {
    if (s->domain == kAmpcDomain) continue;
    EXPECT_NE(FindOnnxOpSchema(s->domain, s->op_type), nullptr) << s->domain << "::" << s->op_type;
  }
  for (const OnnxOpSchema& t : AllOnnxOpSchemas()) {
    // Gradient is expanded at import (frontend/gradient_op.h), SplitToSequence / SequenceAt
    // become Split, InstanceNormalization GroupNormalization: none of them reaches the IR.
    const std::string op = t.op_type;
    if (op != "Gradient" && op != "SplitToSequence" && op != "SequenceAt" &&
        op != "InstanceNormalization") {
      EXPECT_NE(OpRegistry::Global().Find(t.domain, t.op_type), nullptr) << t.op_type;
    }
    ASSERT_FALSE(t.versions.empty());
    EXPECT_LE(t.versions.back().since, 23) << t.op_type;
  }
  const OnnxOpSchema* pad = FindOnnxOpSchema("", "Pad");
  ASSERT_NE(pad, nullptr);
  EXPECT_EQ(OnnxVersionAt(*pad, 20)->since, 19);  // wrap mode
  EXPECT_EQ(OnnxVersionAt(*pad, 6)->since, 2);
}

TEST(ImportNewer, DropoutSeedIsAcceptedAndDropped) {
  onnx::NodeProto* n;
  onnx::ModelProto m = OneNode(22, "Dropout", {2}, &n);
  SetInt(n, "seed", 7);
  auto g = Import(m);
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ((*g)->nodes()[0]->attr("seed"), nullptr);
}

// ---- attributes -------------------------------------------------------------------------------

TEST(ImportNewer, UnknownAttributeNamesNodeOpAndAttribute) {
  onnx::NodeProto* n;
  onnx::ModelProto m = OneNode(21, "Relu", {2}, &n);
  SetInt(n, "alpha", 1);
  ExpectError(m,
              "node 'n0' (Relu): unknown attribute 'alpha' (ai.onnx Relu version 14 "
              "defines: none)");
}

TEST(ImportNewer, AttributeOfALaterVersionIsUnknown) {
  onnx::NodeProto* n;
  onnx::ModelProto m = OneNode(23, "Cast", {2}, &n);
  SetInt(n, "to", onnx::TensorProto::DOUBLE);
  SetStringAttr(n, "round_mode", "up");  // Cast 25
  ExpectError(m,
              "node 'n0' (Cast): unknown attribute 'round_mode' (ai.onnx Cast version 23 "
              "defines: saturate, to)");
}

TEST(ImportNewer, ReduceAxesAttributeIsUnknownFromOpset18) {
  onnx::NodeProto* n;
  onnx::ModelProto m = OneNode(18, "ReduceMean", {2, 3}, &n);
  auto* a = n->add_attribute();
  a->set_name("axes");
  a->set_type(onnx::AttributeProto::INTS);
  a->add_ints(1);
  ExpectError(m,
              "node 'n0' (ReduceMean): unknown attribute 'axes' (ai.onnx ReduceMean version "
              "18 defines: keepdims, noop_with_empty_axes)");
}

TEST(ImportNewer, AttributeOfTheWrongKindIsRejected) {
  onnx::NodeProto* n;
  onnx::ModelProto m = OneNode(20, "Gelu", {2}, &n);
  SetInt(n, "approximate", 1);
  ExpectError(m, "node 'n0' (Gelu): attribute 'approximate' must be string, not int");
}

TEST(ImportNewer, MissingRequiredAttributeIsRejected) {
  onnx::ModelProto m = OneNode(18, "GroupNormalization", {2, 4, 3});
  auto* n = m.mutable_graph()->mutable_node(0);
  n->add_input("s");
  n->add_input("b");
  AddValueInfo(m.mutable_graph()->add_input(), "s", kF, {2});
  AddValueInfo(m.mutable_graph()->add_input(), "b", kF, {2});
  ExpectError(m, "node 'n0' (GroupNormalization)");
}

TEST(ImportNewer, CastSaturateIsAcceptedAndDropped) {
  onnx::NodeProto* n;
  onnx::ModelProto m = OneNode(19, "Cast", {2}, &n);
  SetInt(n, "to", onnx::TensorProto::FLOAT16);
  SetInt(n, "saturate", 0);
  auto g = Import(m);
  ASSERT_TRUE(g.ok()) << g.status().message();
  const Node* cast = (*g)->nodes()[0];
  EXPECT_EQ(cast->attr("saturate"), nullptr);
  EXPECT_EQ(TypeOf(**g, "y"), "f16[2]");
}

// CastLike(x, like) is imported as Cast(x, to = like's type): the like input is dropped (it
// only gives the type), so the passes, generated kernels and the CUDA runtime see one op.
TEST(ImportNewer, CastLikeBecomesCastToTheSecondInputsType) {
  onnx::NodeProto* n;
  onnx::ModelProto m = OneNode(19, "CastLike", {2}, &n);
  n->add_input("like");
  AddValueInfo(m.mutable_graph()->add_input(), "like", onnx::TensorProto::FLOAT16, {1});
  auto g = Import(m);
  ASSERT_TRUE(g.ok()) << g.status().message();
  ASSERT_EQ((*g)->nodes().size(), 1u);
  const Node* cast = (*g)->nodes()[0];
  EXPECT_EQ(cast->op_type(), "Cast");
  EXPECT_EQ(cast->num_inputs(), 1);
  EXPECT_EQ(cast->attr_int("to", 0), onnx::TensorProto::FLOAT16);
  EXPECT_EQ(TypeOf(**g, "y"), "f16[2]");
}

// ---- opset 18-23 forms ------------------------------------------------------------------------

TEST(ImportNewer, ReduceWithAxesInput) {
  for (const char* op : {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                         "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare"}) {
    onnx::NodeProto* n;
    onnx::ModelProto m = OneNode(18, op, {2, 3, 4}, &n);
    n->add_input("axes");
    AddInitializerI64(m.mutable_graph(), "axes", {2}, {0, -1});
    SetInt(n, "keepdims", 0);
    auto g = Import(m);
    ASSERT_TRUE(g.ok()) << op << ": " << g.status().message();
    EXPECT_EQ(TypeOf(**g, "y"), "f32[3]") << op;
  }
}

TEST(ImportNewer, ReduceNoopWithEmptyAxesKeepsTheShape) {
  onnx::NodeProto* n;
  onnx::ModelProto m = OneNode(18, "ReduceMax", {2, 3}, &n);
  SetInt(n, "noop_with_empty_axes", 1);
  auto g = Import(m);
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(TypeOf(**g, "y"), "f32[2,3]");
}

TEST(ImportNewer, SplitNumOutputsSplitsUnevenly) {  // ceil(7 / 3) = 3: sizes 3, 3, 1
  onnx::ModelProto m = EmptyModel(18);
  auto* g = m.mutable_graph();
  AddValueInfo(g->add_input(), "x", kF, {7, 2});
  SetInt(AddNode(g, "Split", {"x"}, {"a", "b", "c"}, "split"), "num_outputs", 3);
  for (const char* o : {"a", "b", "c"}) g->add_output()->set_name(o);
  auto graph = Import(m);
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  EXPECT_EQ(TypeOf(**graph, "a"), "f32[3,2]");
  EXPECT_EQ(TypeOf(**graph, "b"), "f32[3,2]");
  EXPECT_EQ(TypeOf(**graph, "c"), "f32[1,2]");
}

TEST(ImportNewer, Split18NeedsExactlyOneOfSplitAndNumOutputs) {
  onnx::ModelProto m = EmptyModel(18);
  auto* g = m.mutable_graph();
  AddValueInfo(g->add_input(), "x", kF, {4});
  AddNode(g, "Split", {"x"}, {"a", "b"}, "split");
  g->add_output()->set_name("a");
  ExpectError(m,
              "node 'split' (Split): Split version 18 takes either input 'split' or "
              "attribute 'num_outputs' (exactly one of them)");
  SetInt(g->mutable_node(0), "num_outputs", 2);
  EXPECT_TRUE(Import(m).ok());
}

TEST(ImportNewer, GroupNormalization18ScaleBecomesPerChannel) {
  onnx::ModelProto m = EmptyModel(18);
  auto* g = m.mutable_graph();
  AddValueInfo(g->add_input(), "x", kF, {2, 6, 5});
  AddValueInfo(g->add_input(), "scale", kF, {3});
  AddValueInfo(g->add_input(), "bias", kF, {3});
  SetInt(AddNode(g, "GroupNormalization", {"x", "scale", "bias"}, {"y"}, "gn"), "num_groups", 3);
  g->add_output()->set_name("y");
  auto graph = Import(m);
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  const Node* gn = (*graph)->nodes().back();
  ASSERT_EQ(gn->op_type(), "GroupNormalization");
  EXPECT_EQ(gn->input(1)->type().ToString(), "f32[6]");  // each group's value twice
  EXPECT_EQ(gn->input(2)->type().ToString(), "f32[6]");
  EXPECT_EQ(TypeOf(**graph, "y"), "f32[2,6,5]");
  // Version 21 takes the per-channel tensors as they are.
  m.mutable_opset_import(0)->set_version(21);
  EXPECT_FALSE(Import(m).ok());  // a [3] scale for 6 channels
}

TEST(ImportNewer, AttentionDropsOutputsNothingReads) {
  onnx::ModelProto m = EmptyModel(23);
  auto* g = m.mutable_graph();
  for (const char* v : {"q", "k", "v"}) AddValueInfo(g->add_input(), v, kF, {1, 2, 3, 4});
  // torch's exporter names every output of Attention; only Y is used.
  SetInt(AddNode(g, "Attention", {"q", "k", "v"}, {"y", "pk", "pv", "qk"}, "attn"), "is_causal", 1);
  g->add_output()->set_name("y");
  auto graph = Import(m);
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  EXPECT_EQ((*graph)->nodes()[0]->num_outputs(), 1);
  EXPECT_EQ(TypeOf(**graph, "y"), "f32[1,2,3,4]");
  g->add_output()->set_name("qk");  // now read: not supported
  ExpectError(m, "Attention output qk_matmul_output (a debug output) is not supported");
}

TEST(ImportNewer, Attention3DNeedsHeadCounts) {
  onnx::ModelProto m = EmptyModel(23);
  auto* g = m.mutable_graph();
  for (const char* v : {"q", "k", "v"}) AddValueInfo(g->add_input(), v, kF, {1, 3, 8});
  AddNode(g, "Attention", {"q", "k", "v"}, {"y"}, "attn");
  g->add_output()->set_name("y");
  ExpectError(m, "3-D Q, K, V need attributes q_num_heads and kv_num_heads");
  SetInt(g->mutable_node(0), "q_num_heads", 2);
  SetInt(g->mutable_node(0), "kv_num_heads", 2);
  auto graph = Import(m);
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  EXPECT_EQ(TypeOf(**graph, "y"), "f32[1,3,8]");
}

// torch's split/chunk: SplitToSequence read by SequenceAt at constant positions becomes Split.
TEST(ImportNewer, SplitToSequenceReadBySequenceAtBecomesSplit) {
  onnx::ModelProto m = EmptyModel(20);
  auto* g = m.mutable_graph();
  AddValueInfo(g->add_input(), "x", kF, {2, 7});
  AddInitializerI64(g, "chunk", {}, {3});  // a scalar: chunks of 3, the last one smaller
  AddInitializerI64(g, "pos0", {}, {0});
  AddInitializerI64(g, "pos_last", {}, {-1});
  SetInt(AddNode(g, "SplitToSequence", {"x", "chunk"}, {"seq"}, "split"), "axis", 1);
  AddNode(g, "SequenceAt", {"seq", "pos0"}, {"a"}, "at0");
  AddNode(g, "SequenceAt", {"seq", "pos_last"}, {"c"}, "at_last");
  g->add_output()->set_name("a");
  g->add_output()->set_name("c");
  auto graph = Import(m);
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  EXPECT_EQ(TypeOf(**graph, "a"), "f32[2,3]");
  EXPECT_EQ(TypeOf(**graph, "c"), "f32[2,1]");
  for (const Node* n : (*graph)->nodes()) {
    EXPECT_TRUE(n->op_type() == "Split" || n->op_type() == "Identity") << n->Describe();
  }
  g->add_output()->set_name("seq");  // a sequence-valued graph output: not supported
  ExpectError(m,
              "node 'split' (SplitToSequence): its sequence output is a graph output; ampc has "
              "no sequence values (not a tensor)");
}

TEST(ImportNewer, InstanceNormalizationIsGroupNormalizationPerChannel) {
  onnx::ModelProto m = EmptyModel(18);
  auto* g = m.mutable_graph();
  AddValueInfo(g->add_input(), "x", kF, {2, 3, 4});
  AddValueInfo(g->add_input(), "s", kF, {3});
  AddValueInfo(g->add_input(), "b", kF, {3});
  AddNode(g, "InstanceNormalization", {"x", "s", "b"}, {"y"}, "in");
  g->add_output()->set_name("y");
  auto graph = Import(m);
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  const Node* n = (*graph)->nodes()[0];
  EXPECT_EQ(n->op_type(), "GroupNormalization");
  EXPECT_EQ(n->attr_int("num_groups", 0), 3);
  EXPECT_EQ(TypeOf(**graph, "y"), "f32[2,3,4]");
}

// ---- IR versions: gated by the fields a model sets --------------------------------------------

TEST(ImportNewer, IrVersion14IsAcceptedWhenItUsesNoNewerFeature) {
  onnx::ModelProto m = OneNode(20, "Gelu", {2});
  m.set_ir_version(14);
  EXPECT_TRUE(Import(m).ok());
}

TEST(ImportNewer, MetadataAndDeviceAnnotationsAreHarmless) {
  onnx::ModelProto m = OneNode(21, "Relu", {2});
  m.set_ir_version(11);
  auto* node_unknown = m.mutable_graph()->mutable_node(0)->GetReflection()->MutableUnknownFields(
      m.mutable_graph()->mutable_node(0));
  onnx::StringStringEntryProto kv;
  kv.set_key("k");
  kv.set_value("v");
  node_unknown->AddLengthDelimited(9, kv.SerializeAsString());  // NodeProto.metadata_props
  node_unknown->AddLengthDelimited(10, "");                     // device_configurations
  m.GetReflection()->MutableUnknownFields(&m)->AddLengthDelimited(26, "");  // configuration
  auto g = ImportOnnxBytes(Serialize(m), "/tmp", "model.onnx");
  EXPECT_TRUE(g.ok()) << g.status().message();
}

TEST(ImportNewer, FunctionOverloadIsRefused) {
  onnx::ModelProto m = OneNode(21, "Relu", {2});
  m.set_ir_version(10);
  m.mutable_graph()
      ->mutable_node(0)
      ->GetReflection()
      ->MutableUnknownFields(m.mutable_graph()->mutable_node(0))
      ->AddLengthDelimited(8, "fast");
  ExpectError(m,
              "node 'n0' (Relu) calls overload 'fast' of a model-local function "
              "(NodeProto.overload, IR version 10); ampc does not import functions");
}

TEST(ImportNewer, FieldNewerThanIr14IsRefused) {
  onnx::ModelProto m = OneNode(21, "Relu", {2});
  m.mutable_graph()->GetReflection()->MutableUnknownFields(m.mutable_graph())->AddVarint(40, 1);
  ExpectError(m,
              "the model sets protobuf field GraphProto.40, which is not in ONNX IR version 14 "
              "(the newest ampc knows)");
}

TEST(ImportNewer, Float8IsAnUnsupportedElementType) {
  onnx::ModelProto m = EmptyModel(19);
  m.set_ir_version(9);
  auto* g = m.mutable_graph();
  AddValueInfo(g->add_input(), "x", 17 /* FLOAT8E4M3FN */, {2});
  AddNode(g, "Identity", {"x"}, {"y"}, "id");
  g->add_output()->set_name("y");
  ExpectError(m, "graph input 'x' has unsupported element type");
}

// ONNX 1.12's checker runs for opsets up to 17 whatever the IR version (it requires a graph
// name, which ampc itself does not need), and not above 17, where ampc's own checks stand alone.
TEST(ImportNewer, OnnxCheckerRunsUpToOpset17Only) {
  onnx::ModelProto m = ReluModel(17);
  m.set_ir_version(14);
  EXPECT_TRUE(Import(m).ok());
  m.mutable_graph()->set_name("");
  ExpectError(m, "rejected by the ONNX checker");
  m.mutable_opset_import(0)->set_version(18);
  EXPECT_TRUE(Import(m).ok());
}

// One line on stderr from the CLI, naming the file.
TEST(ImportNewer, CliReportsAnOpBeforeItsFirstVersionOnOneLine) {
  TempDir dir;
  WriteBytes(dir / "model.onnx", Serialize(OneNode(18, "Attention", {2})));
  auto r = RunAmpc(dir / "model.onnx");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(dir / "model.onnx"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("op 'Attention' (domain 'ai.onnx') does not exist at opset 18 (its first "
                       "version is 23) at node 'n0'"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// ---- export ------------------------------------------------------------------------------------

onnx::ModelProto Reexport(const Graph& g) {
  auto bytes = ExportOnnxBytes(g);
  EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  onnx::ModelProto m;
  if (bytes.ok()) EXPECT_TRUE(m.ParseFromString(*bytes));
  return m;
}

int64_t DefaultOpset(const onnx::ModelProto& m) {
  for (const auto& os : m.opset_import()) {
    if (os.domain().empty()) return os.version();
  }
  return -1;
}

TEST(ExportNewer, WritesTheOpsetTheGraphNeeds) {
  auto g = Import(OneNode(20, "Gelu", {2}));
  ASSERT_TRUE(g.ok()) << g.status().message();
  onnx::ModelProto m = Reexport(**g);
  EXPECT_EQ(DefaultOpset(m), 20);
  EXPECT_EQ(m.ir_version(), 9);  // released with opset 20
  auto again = Import(m);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(PrintGraph(**again), PrintGraph(**g));
}

TEST(ExportNewer, ReduceAxesInputBecomesTheAttributeAtOpset17) {
  // An opset-17 graph holding the opset-18 form (as gradient rules may write it).
  auto g = ParseGraph(
      "graph \"g\" opsets {\"\": 17} {\n"
      "  input %x: f32[2,3]\n"
      "  init %axes: i64[1] = [1]\n"
      "  %y: f32[2] = ReduceMean(%x, %axes) {keepdims=0}\n"
      "  output %y\n"
      "}\n");
  ASSERT_TRUE(g.ok()) << g.status().message();
  onnx::ModelProto m = Reexport(**g);
  EXPECT_EQ(DefaultOpset(m), 17);
  ASSERT_EQ(m.graph().node_size(), 1);
  const onnx::NodeProto& n = m.graph().node(0);
  EXPECT_EQ(n.input_size(), 1);
  ASSERT_EQ(n.attribute_size(), 2);  // axes, keepdims
  EXPECT_EQ(n.attribute(1).name(), "axes");
  ASSERT_EQ(n.attribute(1).ints_size(), 1);
  EXPECT_EQ(n.attribute(1).ints(0), 1);
}

TEST(ExportNewer, ReduceAxesAttributeBecomesAnInputAtOpset18) {
  auto g = ParseGraph(
      "graph \"g\" opsets {\"\": 18} {\n"
      "  input %x: f32[2,3]\n"
      "  %y: f32[2] = ReduceMax(%x) {axes=[-1], keepdims=0}\n"
      "  output %y\n"
      "}\n");
  ASSERT_TRUE(g.ok()) << g.status().message();
  onnx::ModelProto m = Reexport(**g);
  EXPECT_EQ(DefaultOpset(m), 18);
  const onnx::NodeProto& n = m.graph().node(0);
  ASSERT_EQ(n.input_size(), 2);
  EXPECT_EQ(n.attribute_size(), 1);  // keepdims
  auto again = Import(m);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(TypeOf(**again, "y"), "f32[2]");
}

}  // namespace
}  // namespace ampc
