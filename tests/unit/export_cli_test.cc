// `ampc export` and `ampc bench --data` through the CLI: what they write, and every kind of bad
// input giving one error line, exit code 2 and no file created or damaged. What the exported
// models compute is checked against onnxruntime in tests/interop (ctest interop_onnxruntime).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "test_util.h"

namespace ampc {
namespace {

using testing::Fixture;
using testing::ReadBytes;
using testing::RunAmpc;
using testing::RunResult;
using testing::TempDir;
using testing::WriteBytes;

// Exactly one line on stderr, the error (warnings may precede it), and exit code 2.
void ExpectOneLineError(const RunResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  const size_t at = r.err.find("ampc: error: ");
  ASSERT_NE(at, std::string::npos) << r.err;
  EXPECT_TRUE(at == 0 || r.err[at - 1] == '\n') << r.err;
  EXPECT_EQ(r.err.find('\n', at), r.err.size() - 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "wanted '" << needle << "' in " << r.err;
}

std::string Mlp() { return Fixture("mlp_opset17.onnx"); }

// A safetensors file by hand (the layout is in ir/safetensors.h): one f32 tensor.
std::string Safetensors(const std::string& name, const std::string& shape, int64_t elements) {
  const std::string header = "{\"" + name + "\":{\"dtype\":\"F32\",\"shape\":" + shape +
                             ",\"data_offsets\":[0," + std::to_string(4 * elements) + "]}}";
  const uint64_t n = header.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + std::string(4 * elements, '\0');
}

class ExportCli : public ::testing::Test {
 protected:
  // One short bf16 training run (fp32 masters in the plan) shared by the tests.
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto r =
        RunAmpc("train " + Mlp() +
                " --data fashion-mnist --steps 3 --batch-size 32 --quiet --save-plan " + Plan());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string Plan() { return *dir_ / "mlp.ampc"; }
  TempDir tmp_;

 private:
  static TempDir* dir_;
};
TempDir* ExportCli::dir_ = nullptr;

TEST_F(ExportCli, WritesEachPrecision) {
  for (const char* p : {"fp32", "fp16", "bf16"}) {
    const std::string out = tmp_ / (std::string(p) + ".onnx");
    auto r =
        RunAmpc("export " + Mlp() + " --weights " + Plan() + " -o " + out + " --precision " + p);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("6 trained tensors"), std::string::npos) << r.out;
    // ampc reads its own export back; the interface is the model's (f32 in, f32 out).
    auto s = RunAmpc(out);
    ASSERT_EQ(s.exit_code, 0) << s.err;
    EXPECT_NE(s.out.find("input                    f32[batch,784]"), std::string::npos) << s.out;
    EXPECT_NE(s.out.find("logits                   f32[batch,10]"), std::string::npos) << s.out;
  }
}

TEST_F(ExportCli, MissingOrCorruptWeights) {
  const std::string out = tmp_ / "out.onnx";
  ExpectOneLineError(
      RunAmpc("export " + Mlp() + " --weights " + (tmp_ / "none.ampc") + " -o " + out),
      "none.ampc");
  WriteBytes(tmp_ / "junk.ampc", "not a plan at all");
  ExpectOneLineError(
      RunAmpc("export " + Mlp() + " --weights " + (tmp_ / "junk.ampc") + " -o " + out),
      "junk.ampc");
  // A real plan cut in half: the header promises more than the file holds.
  const std::string plan = ReadBytes(Plan());
  WriteBytes(tmp_ / "cut.ampc", plan.substr(0, plan.size() / 2));
  ExpectOneLineError(
      RunAmpc("export " + Mlp() + " --weights " + (tmp_ / "cut.ampc") + " -o " + out), "cut.ampc");
  WriteBytes(tmp_ / "junk.safetensors", std::string(8, '\xff'));
  ExpectOneLineError(
      RunAmpc("export " + Mlp() + " --weights " + (tmp_ / "junk.safetensors") + " -o " + out),
      "not a valid safetensors file");
  WriteBytes(tmp_ / "w.bin", "x");
  ExpectOneLineError(RunAmpc("export " + Mlp() + " --weights " + (tmp_ / "w.bin") + " -o " + out),
                     "expected a training plan (.ampc) or a safetensors checkpoint");
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(ExportCli, WeightsOfAnotherModel) {
  const std::string out = tmp_ / "out.onnx";
  // The MLP's plan onto the CNN: the first tensor the CNN lacks is named (the MLP's last Linear,
  // 3.*; the CNN has parameters named 0.* and 1.* too).
  const std::string cnn = Fixture("cnn_train_opset17.onnx");
  ExpectOneLineError(RunAmpc("export " + cnn + " --weights " + Plan() + " -o " + out),
                     "tensor '3.bias' is not an initializer of " + cnn);
  // Same name, other shape.
  WriteBytes(tmp_ / "w.safetensors", Safetensors("0.weight", "[128,784]", 128 * 784));
  ExpectOneLineError(
      RunAmpc("export " + Mlp() + " --weights " + (tmp_ / "w.safetensors") + " -o " + out),
      "tensor '0.weight' is f32[128,784] but the initializer of " + Mlp() + " is f32[256,784]");
  // An inference plan holds no trained weights.
  auto e = RunAmpc("eval " + Mlp() + " --inputs " + Fixture("mlp_opset17_data") + " --out " +
                   (tmp_ / "o") + " --save-plan " + (tmp_ / "inf.ampc"));
  ASSERT_EQ(e.exit_code, 0) << e.err;
  ExpectOneLineError(
      RunAmpc("export " + Mlp() + " --weights " + (tmp_ / "inf.ampc") + " -o " + out),
      "not a training plan");
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(ExportCli, NeverOverwritesWithoutForce) {
  const std::string model = tmp_ / "m.onnx";
  WriteBytes(model, ReadBytes(Mlp()));
  const std::string before = ReadBytes(model);
  ExpectOneLineError(RunAmpc("export " + model + " --weights " + Plan() + " -o " + model),
                     "refusing to overwrite the input model");
  EXPECT_EQ(ReadBytes(model), before);
  const std::string plan = ReadBytes(Plan());
  ExpectOneLineError(RunAmpc("export " + model + " --weights " + Plan() + " -o " + Plan()),
                     "refusing to overwrite the --weights file");
  EXPECT_EQ(ReadBytes(Plan()), plan);
  const std::string out = tmp_ / "out.onnx";
  WriteBytes(out, "precious");
  ExpectOneLineError(RunAmpc("export " + model + " --weights " + Plan() + " -o " + out),
                     "exists; pass --force");
  EXPECT_EQ(ReadBytes(out), "precious");
  // A failed export with --force leaves the old file too (written atomically or not at all).
  WriteBytes(tmp_ / "w.safetensors", Safetensors("nope", "[1]", 1));
  ExpectOneLineError(RunAmpc("export " + model + " --weights " + (tmp_ / "w.safetensors") + " -o " +
                             out + " --force"),
                     "'nope' is not an initializer");
  EXPECT_EQ(ReadBytes(out), "precious");
  auto ok = RunAmpc("export " + model + " --weights " + Plan() + " -o " + out + " --force");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ReadBytes(out), "precious");
  ExpectOneLineError(
      RunAmpc("export " + model + " --weights " + Plan() + " -o " + (tmp_ / "no/dir/x.onnx")),
      "does not exist");
  ExpectOneLineError(RunAmpc("export " + model + " --weights " + Plan() + " -o " + out +
                             " --force --precision fp8"),
                     "--precision");
}

TEST(BenchCli, BadArgumentsStopBeforeTraining) {
  TempDir tmp;
  const std::string base = "bench " + Mlp() + " --data fashion-mnist --steps 2";
  for (const char* bad : {"x.jpg", "x.svgz", "x"}) {
    auto r = RunAmpc(base + " --plot " + (tmp / bad));
    ExpectOneLineError(r, "expected a file name ending in .svg or .png");
    EXPECT_EQ(r.err.find("bench: training"), std::string::npos) << r.err;
  }
  WriteBytes(tmp / "p.svg", "old");
  ExpectOneLineError(RunAmpc(base + " --plot " + (tmp / "p.svg")), "exists; pass --force");
  EXPECT_EQ(ReadBytes(tmp / "p.svg"), "old");
  ExpectOneLineError(RunAmpc(base + " --plot " + (tmp / "no/dir/p.svg")), "does not exist");
  // Without gnuplot on PATH: a clear message, before any training.
  auto r = RunAmpc("--version >/dev/null; PATH=/nonexistent " + std::string(AMPC_BINARY) + " " +
                   base + " --plot " + (tmp / "q.png"));
  ExpectOneLineError(r, "--plot needs gnuplot");
  ExpectOneLineError(RunAmpc(base + " --inputs " + tmp.path()), "--inputs");
  ExpectOneLineError(RunAmpc("bench " + Mlp() + " --epochs 1"), "bench needs --inputs DIR");
  ExpectOneLineError(RunAmpc("bench " + Mlp()), "bench needs --inputs DIR");
  // A bad training flag is the child's error, passed on as one line.
  ExpectOneLineError(RunAmpc(base + " --optimizer rmsprop"),
                     "the fp32 training run failed: --optimizer 'rmsprop'");
  ExpectOneLineError(RunAmpc("bench " + (tmp / "none.onnx") + " --data fashion-mnist --steps 2"),
                     "none.onnx");
}

// Three real (short) runs on an npz data set: the JSON report and an SVG plot.
TEST(BenchCli, ComparesThreePrecisions) {
  TempDir tmp;
  const std::string data = std::string(AMPC_GEN_DIR) + "/train_refs/mlp_sgd/data.npz";
  auto r =
      RunAmpc("bench " + Mlp() + " --data " + data + " --val-data " + data +
              " --steps 6 --batch-size 32 --lr 0.05 --threads 1 --json --plot " + (tmp / "p.svg"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["runs"].size(), 3u);
  const char* names[] = {"fp32", "fp16", "bf16"};
  for (int i = 0; i < 3; ++i) {
    const auto& run = j["runs"][i];
    EXPECT_EQ(run["precision"], names[i]);
    EXPECT_GT(run["samples_per_s"].get<double>(), 0);
    // A training process holds at least the model, the plan and the data: several MiB.
    EXPECT_GT(run["peak_rss_bytes"].get<int64_t>(), 4 << 20);
    EXPECT_GT(run["val_accuracy"].get<double>(), 0.0);
    EXPECT_LE(run["val_accuracy"].get<double>(), 1.0);
    EXPECT_TRUE(run.contains("val_loss"));
  }
  EXPECT_EQ(j["steps"], 6);
  EXPECT_EQ(j["runs"][0]["speed_vs_fp32"].get<double>(), 1.0);
  EXPECT_EQ(j["runs"][0]["accuracy_delta_vs_fp32"].get<double>(), 0.0);
  EXPECT_TRUE(j["runs"][0]["skipped_steps"].is_null());  // fp32 has no finite check
  EXPECT_EQ(j["runs"][1]["loss_scaling"], "dynamic");
  EXPECT_GE(j["runs"][1]["skipped_steps"].get<int64_t>(), 0);
  EXPECT_EQ(j["runs"][1]["final_loss_scale"].get<double>(), 65536.0);  // no overflow in 6 steps
  const std::string svg = ReadBytes(tmp / "p.svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  for (const char* n : names) EXPECT_NE(svg.find(n), std::string::npos) << n;
  EXPECT_NE(svg.find("mlp_opset17.onnx"), std::string::npos);
}

}  // namespace
}  // namespace ampc
