// `ampc inspect` on mixed-precision training graphs: every format, --after, --amp-config and
// the errors. What the painting decides is pinned by the FileCheck tests (tests/lit/autocast).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "frontend/onnx.h"
#include "test_util.h"

namespace ampc {
namespace {

using testing::Fixture;
using testing::ReadBytes;
using testing::RunAmpc;
using testing::TempDir;
using testing::WriteBytes;

TEST(InspectAmp, JsonHasAPrecisionForEveryNodeAndASummary) {
  auto r = RunAmpc("inspect " + Fixture("mlp_opset17.onnx") + " --precision bf16 --format json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  int half = 0;
  for (const auto& n : j["nodes"]) {
    ASSERT_TRUE(n["annotations"].contains("precision")) << n["name"];
    ASSERT_TRUE(n["annotations"].contains("reason")) << n["name"];
    half += n["annotations"]["precision"] == "bf16";
    // The CPU cost rule: the first layer (784x256) is dense enough for bf16, the last (256x10)
    // and its gradient GEMMs are not (compiler.cc, HalfGemmCost).
    if (n["op"] == "Gemm") {
      const bool last = n["name"].get<std::string>().rfind("/3/Gemm", 0) == 0;
      EXPECT_EQ(n["annotations"]["precision"], last ? "f32" : "bf16") << n["name"];
      if (last) {
        EXPECT_NE(n["annotations"]["reason"].get<std::string>().find("cpu: bf16 would not pay"),
                  std::string::npos);
      }
    }
    if (n["op"] == "LayerNormalization") {
      EXPECT_EQ(n["annotations"]["precision"], "f32");
    }
  }
  EXPECT_GT(half, 0);
  const auto& s = j["summary"];
  EXPECT_EQ(s["precision"], "bf16");
  EXPECT_GT(s["casts_inserted"].get<int>(), 0);
  EXPECT_GT(s["activation_bytes_fp32"].get<int64_t>(), 0);
  EXPECT_EQ(s["params"].size(), 6u);
}

TEST(InspectAmp, HalfSmallGemmsNarrowsEveryGemm) {
  auto r = RunAmpc("inspect " + Fixture("mlp_opset17.onnx") +
                   " --precision bf16 --half-small-gemms --format json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int gemms = 0;
  const auto j = nlohmann::json::parse(r.out);
  for (const auto& n : j["nodes"]) {
    if (n["op"] != "Gemm") continue;
    ++gemms;
    EXPECT_EQ(n["annotations"]["precision"], "bf16") << n["name"];
    EXPECT_EQ(n["annotations"]["reason"], "allow-list") << n["name"];
  }
  EXPECT_EQ(gemms, 5);  // two layers: forward, input gradient (not the first's), weight gradient
}

TEST(InspectAmp, OnnxExportIsAValidModelWithExplicitCasts) {
  TempDir tmp;
  const std::string out = tmp / "train.onnx";
  auto r = RunAmpc("inspect " + Fixture("cnn_train_opset17.onnx") +
                   " --precision fp16 --format onnx -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Importing runs ONNX's own checker on the file.
  auto g = ImportOnnxFile(out);
  ASSERT_TRUE(g.ok()) << g.status().message();
  int casts = 0, convs_f16 = 0;
  for (const Node* n : (*g)->nodes()) {
    casts += n->op_type() == "Cast";
    convs_f16 += n->op_type() == "Conv" && n->output(0)->dtype() == DType::kFloat16;
  }
  EXPECT_GT(casts, 0);
  EXPECT_EQ(convs_f16, 3);
  auto again =
      RunAmpc("inspect " + Fixture("cnn_train_opset17.onnx") + " --precision fp16 --format onnx");
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("needs -o"), std::string::npos);
}

// The exported training step is itself trainable: `ampc train` runs it as a training graph (its
// state updates come back from the model's metadata) and reproduces the direct run's losses.
TEST(InspectAmp, ExportedTrainingStepTrainsLikeTheModel) {
  TempDir tmp;
  const std::string step = tmp / "step.onnx";
  auto r = RunAmpc("inspect " + Fixture("mlp_opset17.onnx") +
                   " --precision bf16 --momentum 0.9 --format onnx -o " + step);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string data = std::string(AMPC_GEN_DIR) + "/train_refs/mlp_sgd/data.npz";
  const std::string common =
      " --data " + data + " --batch-size 32 --steps 5 --no-shuffle --quiet --lr 0.05";
  auto direct = RunAmpc("train " + Fixture("mlp_opset17.onnx") + common +
                        " --momentum 0.9 --precision bf16 --metrics " + (tmp / "a.jsonl"));
  ASSERT_EQ(direct.exit_code, 0) << direct.err;
  auto again = RunAmpc("train " + step + common + " --metrics " + (tmp / "b.jsonl"));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const std::string a = ReadBytes(tmp / "a.jsonl"), b = ReadBytes(tmp / "b.jsonl");
  std::stringstream sa(a), sb(b);
  int lines = 0;
  for (std::string la, lb; std::getline(sa, la) && std::getline(sb, lb);) {
    auto ja = nlohmann::json::parse(la), jb = nlohmann::json::parse(lb);
    EXPECT_EQ(ja["loss"].get<double>(), jb["loss"].get<double>()) << lines;
    ++lines;
  }
  EXPECT_EQ(lines, 5);
}

TEST(InspectAmp, DotColoursNodesByPrecision) {
  auto r = RunAmpc("inspect " + Fixture("mlp_opset17.onnx") + " --precision bf16 --format dot");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("fillcolor=\"#c8e6c9\""), std::string::npos);  // half
  EXPECT_NE(r.out.find("fillcolor=\"#ffe0b2\""), std::string::npos);  // fp32
}

TEST(InspectAmp, AfterTrainShowsTheUnpaintedTrainingGraph) {
  auto r = RunAmpc("inspect " + Fixture("mlp_opset17.onnx") + " --precision bf16 --after train");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("#precision="), std::string::npos);
  EXPECT_NE(r.out.find("com.ampc::SGD"), std::string::npos);
  EXPECT_NE(r.out.find("#grad_of="), std::string::npos);
  auto plain = RunAmpc("inspect " + Fixture("mlp_opset17.onnx"));
  ASSERT_EQ(plain.exit_code, 0);
  EXPECT_EQ(plain.out.find("com.ampc::SGD"), std::string::npos);  // no options: the model itself
}

TEST(InspectAmp, AmpConfigFileEditsTheLists) {
  TempDir tmp;
  WriteBytes(tmp / "amp.json", R"({"deny": ["Gemm"], "fp32_nodes": "^/0/"})");
  auto r = RunAmpc("inspect " + Fixture("mlp_opset17.onnx") + " --precision bf16 --amp-config " +
                   (tmp / "amp.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("#precision=\"bf16\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("#reason=\"deny-list\""), std::string::npos);
  // The command line is applied after the file (--half-small-gemms: the last layer, the one Gemm
  // not pinned here, is too small for the CPU cost rule).
  auto back = RunAmpc("inspect " + Fixture("mlp_opset17.onnx") + " --precision bf16 --amp-config " +
                      (tmp / "amp.json") + " --allow Gemm --half-small-gemms");
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_NE(back.out.find("#precision=\"bf16\""), std::string::npos);
}

TEST(InspectAmp, BadOptionsAreOneLineErrors) {
  TempDir tmp;
  WriteBytes(tmp / "bad.json", "{\"allow\": [\"Gemm\"");
  WriteBytes(tmp / "key.json", "{\"permit\": [\"Gemm\"]}");
  WriteBytes(tmp / "type.json", "{\"allow\": \"Gemm\"}");
  const std::string mlp = Fixture("mlp_opset17.onnx");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--amp-config " + (tmp / "bad.json"), "not valid JSON"},
      {"--amp-config " + (tmp / "key.json"), "unknown key 'permit'"},
      {"--amp-config " + (tmp / "type.json"), "must be a list of op names"},
      {"--amp-config " + (tmp / "missing.json"), "cannot open"},
      {"--precision fp8", "--precision fp8"},
      {"--precision bf16 --deny Conv2d", "no op named 'Conv2d'"},
      {"--precision bf16 --after codegen", "--after codegen"},
      {"--precision bf16 --dim batch", "--dim batch"},
      {"--precision bf16 --dim batch=-2", "--dim batch=-2"},
      {"--precision fp16 --loss-scale none", "--allow-unscaled-fp16"},
      {"--precision bf16 --format svg", "svg"},
  };
  for (const auto& [flags, message] : cases) {
    auto r = RunAmpc("inspect " + mlp + " " + flags);
    EXPECT_EQ(r.exit_code, 2) << flags << "\n" << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << flags << "\n" << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << flags << "\n" << r.err;
  }
}

}  // namespace
}  // namespace ampc
