// Every kind of bad input the foundation must reject: each gets a one-line error naming the
// file and the problem, exit code 2, and no crash. Models are built with ONNX's own protobuf
// classes so each test breaks exactly one thing.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <random>

#include "tests/unit/onnx_builders.h"
#include "tests/unit/test_util.h"

namespace ampc {
namespace {

using testing::AddNode;
using testing::AddValueInfo;
using testing::EmptyModel;
using testing::Fixture;
using testing::ReadBytes;
using testing::RunAmpc;
using testing::Serialize;
using testing::TempDir;
using testing::WriteBytes;

// x: f32[2,3] -> Relu -> y. Tests then break one thing.
onnx::ModelProto ValidModel(int64_t opset = 17) {
  onnx::ModelProto m = EmptyModel(opset);
  auto* g = m.mutable_graph();
  AddValueInfo(g->add_input(), "x", onnx::TensorProto::FLOAT, {2, 3});
  AddNode(g, "Relu", {"x"}, {"y"}, "relu0");
  AddValueInfo(g->add_output(), "y", onnx::TensorProto::FLOAT, {2, 3});
  return m;
}

// Writes the model, runs `ampc MODEL`, checks: exit 2, one line on stderr naming the file and
// containing `want`, nothing on stdout.
void ExpectRejected(const std::string& bytes, const std::string& want, const TempDir& dir,
                    const std::string& file = "model.onnx") {
  const std::string path = dir / file;
  WriteBytes(path, bytes);
  auto r = RunAmpc(path);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(want), std::string::npos) << "stderr: " << r.err;
  EXPECT_NE(r.err.find(path), std::string::npos) << "the error must name the file: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  EXPECT_EQ(r.err.rfind("ampc: error: ", 0), 0u) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(BadInput, ValidBaselineIsAccepted) {
  TempDir dir;
  WriteBytes(dir / "model.onnx", Serialize(ValidModel()));
  auto r = RunAmpc(dir / "model.onnx");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Relu"), std::string::npos);
}

TEST(BadInput, MissingFile) {
  TempDir dir;
  auto r = RunAmpc(dir / "nope.onnx");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(dir / "nope.onnx"), std::string::npos);
  EXPECT_NE(r.err.find("no such file"), std::string::npos) << r.err;
}

TEST(BadInput, EmptyFile) {
  TempDir dir;
  ExpectRejected("", "the file is empty", dir);
}

TEST(BadInput, Directory) {
  TempDir dir;
  auto r = RunAmpc(dir.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is a directory"), std::string::npos) << r.err;
}

TEST(BadInput, NotProtobuf) {
  TempDir dir;
  ExpectRejected("this is plain text, not a model\n", "does not parse", dir);
}

TEST(BadInput, TruncatedProtobuf) {
  TempDir dir;
  const std::string bytes = ReadBytes(Fixture("mlp_opset17.onnx"));
  ASSERT_GT(bytes.size(), 1000u);
  // Cut inside the big weight tensor: a length-delimited field runs past the end.
  ExpectRejected(bytes.substr(0, bytes.size() / 2), "does not parse", dir);
  // Any other cut must still be a clean rejection, never a crash.
  for (size_t cut : {size_t{1}, size_t{7}, size_t{100}, bytes.size() - 1, bytes.size() - 20}) {
    WriteBytes(dir / "cut.onnx", bytes.substr(0, cut));
    auto r = RunAmpc(dir / "cut.onnx");
    EXPECT_EQ(r.exit_code, 2) << "cut at " << cut << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST(BadInput, BitFlippedProtobuf) {
  TempDir dir;
  const std::string bytes = ReadBytes(Fixture("transformer_opset17.onnx"));
  // Flipping the top bit of the first tag byte makes the first field's tag invalid.
  std::string broken = bytes;
  broken[0] = static_cast<char>(broken[0] ^ 0x80);
  ExpectRejected(broken, "does not parse", dir);
  // Random flips anywhere: ampc may accept (a flip inside weight data is still a valid model)
  // or reject with one line and exit 2, but never crash.
  std::mt19937 rng(1234);
  for (int i = 0; i < 60; ++i) {
    std::string b = bytes;
    const size_t pos = rng() % b.size();
    b[pos] = static_cast<char>(b[pos] ^ (1 << (rng() % 8)));
    WriteBytes(dir / "flip.onnx", b);
    auto r = RunAmpc(dir / "flip.onnx");
    ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 2) << "flip at " << pos << ": " << r.err;
    if (r.exit_code == 2) {
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    }
  }
}

TEST(BadInput, UnknownOp) {
  TempDir dir;
  auto m = ValidModel();
  m.mutable_graph()->mutable_node(0)->set_op_type("FrobnicateAll");
  ExpectRejected(Serialize(m),
                 "unknown op 'FrobnicateAll' (domain 'ai.onnx', opset 17) at node 'relu0'", dir);
}

TEST(BadInput, UnknownOpInCustomDomain) {
  TempDir dir;
  auto m = ValidModel();
  auto* os = m.add_opset_import();
  os->set_domain("com.example");
  os->set_version(3);
  m.mutable_graph()->mutable_node(0)->set_domain("com.example");
  ExpectRejected(Serialize(m), "unknown op 'Relu' (domain 'com.example', opset 3)", dir);
}

TEST(BadInput, WrongInputCount) {
  TempDir dir;
  auto m = ValidModel();
  m.mutable_graph()->mutable_node(0)->add_input("x");
  ExpectRejected(Serialize(m), "node 'relu0' (Relu): has 2 inputs, expects 1", dir);
}

TEST(BadInput, TypeMismatch) {
  TempDir dir;
  auto m = ValidModel();
  auto* g = m.mutable_graph();
  AddValueInfo(g->add_input(), "h", onnx::TensorProto::FLOAT16, {2, 3});
  g->clear_node();
  g->clear_output();
  AddNode(g, "Add", {"x", "h"}, {"y"}, "add0");
  AddValueInfo(g->add_output(), "y", onnx::TensorProto::FLOAT, {2, 3});
  ExpectRejected(Serialize(m), "node 'add0' (Add)", dir);
  auto r = RunAmpc(dir / "model.onnx");
  EXPECT_NE(r.err.find("type mismatch"), std::string::npos) << r.err;
}

TEST(BadInput, DeclaredOutputTypeDisagrees) {
  TempDir dir;
  auto m = ValidModel();
  m.mutable_graph()->mutable_output(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
      onnx::TensorProto::FLOAT16);
  ExpectRejected(
      Serialize(m),
      "type mismatch: value 'y' (output of node 'relu0' (Relu)) is declared f16 but computes f32",
      dir);
}

TEST(BadInput, Cycle) {
  TempDir dir;
  auto m = ValidModel();
  auto* g = m.mutable_graph();
  g->clear_node();
  AddNode(g, "Add", {"x", "b"}, {"a"}, "add_a");
  AddNode(g, "Relu", {"a"}, {"b"}, "relu_b");
  AddNode(g, "Relu", {"b"}, {"y"}, "relu0");
  ExpectRejected(Serialize(m), "the graph has a cycle through node 'add_a' (Add)", dir);
}

TEST(BadInput, UseOfUndefinedValue) {
  TempDir dir;
  auto m = ValidModel();
  m.mutable_graph()->mutable_node(0)->set_input(0, "ghost");
  ExpectRejected(Serialize(m), "use of undefined value 'ghost' by node 'relu0' (Relu)", dir);
}

TEST(BadInput, UndefinedGraphOutput) {
  TempDir dir;
  auto m = ValidModel();
  m.mutable_graph()->mutable_output(0)->set_name("nowhere");
  ExpectRejected(Serialize(m), "graph output 'nowhere' is not defined", dir);
}

TEST(BadInput, NegativeDim) {
  TempDir dir;
  auto m = ValidModel();
  m.mutable_graph()
      ->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(1)
      ->set_dim_value(-3);
  ExpectRejected(Serialize(m), "graph input 'x' has negative dimension -3 at axis 1", dir);
}

TEST(BadInput, AbsurdlyLargeDim) {
  TempDir dir;
  auto m = ValidModel();
  m.mutable_graph()
      ->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(0)
      ->set_dim_value(int64_t{1} << 50);
  ExpectRejected(Serialize(m),
                 "graph input 'x' has absurdly large dimension 1125899906842624 at axis 0", dir);
}

TEST(BadInput, TensorDataDisagreesWithShape) {
  TempDir dir;
  auto m = ValidModel();
  auto* g = m.mutable_graph();
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(2);
  w->add_dims(3);
  for (int i = 0; i < 5; ++i) w->add_float_data(1.0f);
  g->mutable_node(0)->set_input(0, "w");
  ExpectRejected(Serialize(m),
                 "initializer 'w' has 5 elements of data but its shape f32[2,3] needs 6", dir);
}

TEST(BadInput, RawDataSizeDisagreesWithShape) {
  TempDir dir;
  auto m = ValidModel();
  auto* w = m.mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(4);
  w->set_raw_data(std::string(12, '\0'));
  ExpectRejected(Serialize(m),
                 "initializer 'w' has 3 elements of data but its shape f32[4] needs 4", dir);
}

TEST(BadInput, ExternalDataEscapingTheModelFolder) {
  TempDir dir;
  auto m = ValidModel();
  auto* w = m.mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(4);
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = w->add_external_data();
  kv->set_key("location");
  kv->set_value("../../etc/passwd");
  ExpectRejected(
      Serialize(m),
      "initializer 'w': external data path '../../etc/passwd' escapes the model's folder", dir);
  kv->set_value("/etc/passwd");
  ExpectRejected(Serialize(m), "escapes the model's folder", dir);
}

TEST(BadInput, ExternalDataMissingFile) {
  TempDir dir;
  auto m = ValidModel();
  auto* w = m.mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(4);
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = w->add_external_data();
  kv->set_key("location");
  kv->set_value("weights.bin");
  ExpectRejected(Serialize(m), "external data file 'weights.bin' not found", dir);
}

TEST(BadInput, OpsetNewerThanSupported) {
  TempDir dir;
  ExpectRejected(Serialize(ValidModel(99)),
                 "opset 99 of domain ai.onnx is newer than the newest supported (23)", dir);
}

TEST(BadInput, OpsetOlderThanSupported) {
  TempDir dir;
  ExpectRejected(Serialize(ValidModel(5)), "older than the oldest supported (6)", dir);
}

TEST(BadInput, UnsupportedElementType) {
  TempDir dir;
  auto m = ValidModel();
  m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
      onnx::TensorProto::STRING);
  ExpectRejected(Serialize(m), "graph input 'x' has unsupported element type STRING", dir);
}

TEST(BadInput, DuplicateDefinition) {
  TempDir dir;
  auto m = ValidModel();
  AddNode(m.mutable_graph(), "Relu", {"x"}, {"y"}, "relu1");
  ExpectRejected(Serialize(m), "value 'y' is defined twice", dir);
}

TEST(BadFlags, UnknownFlagAndSubcommandUsage) {
  auto r = RunAmpc("inspect --no-such-flag x.onnx");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--no-such-flag"), std::string::npos) << r.err;
  r = RunAmpc("inspect " + Fixture("mlp_opset17.onnx") + " --format yaml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("yaml"), std::string::npos) << r.err;
  r = RunAmpc("");
  EXPECT_EQ(r.exit_code, 2);
  r = RunAmpc("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("inspect"), std::string::npos);
  r = RunAmpc("inspect --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--format"), std::string::npos);
}

TEST(NoFileLoss, InspectOutputIsAtomicAndNeverTheInput) {
  TempDir dir;
  const std::string keep = dir / "keep.txt";
  WriteBytes(keep, "precious\n");
  WriteBytes(dir / "bad.onnx", "garbage");
  // A failing run leaves the existing output file untouched.
  auto r = RunAmpc("inspect " + (dir / "bad.onnx") + " -o " + keep);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(ReadBytes(keep), "precious\n");
  // -o pointing at the input model is refused and the model is untouched.
  const std::string model = dir / "m.onnx";
  WriteBytes(model, ReadBytes(Fixture("cnn_opset17.onnx")));
  const std::string before = ReadBytes(model);
  r = RunAmpc("inspect " + model + " -o " + model);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("refusing to overwrite the input model"), std::string::npos) << r.err;
  EXPECT_EQ(ReadBytes(model), before);
  // A successful run replaces the file and leaves no temporary files behind.
  r = RunAmpc("inspect " + model + " -o " + keep);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(ReadBytes(keep).find("Conv("), std::string::npos);
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 3);
  // Writing into a missing folder fails cleanly.
  r = RunAmpc("inspect " + model + " -o " + (dir / "no/such/dir/out.txt"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

}  // namespace
}  // namespace ampc
