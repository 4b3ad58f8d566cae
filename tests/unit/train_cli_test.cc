// `ampc train` end to end through the CLI: metrics lines, validation on FashionMNIST, resuming a
// saved training plan, and every kind of bad input giving a one-line error, exit code 2 and no
// damage to existing files. The npz data sets are the ones tools/train_reference.py writes for
// the trajectory test (fixture generate_train_references).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "codegen/lower.h"
#include "codegen/mlir_compile.h"
#include "runtime/device_info.h"
#include "test_util.h"

namespace ampc {
namespace {

using testing::Fixture;
using testing::ReadBytes;
using testing::RunAmpc;
using testing::TempDir;
using testing::WriteBytes;

std::string MlpData() { return std::string(AMPC_GEN_DIR) + "/train_refs/mlp_sgd/data.npz"; }

std::vector<nlohmann::json> Lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Exactly one error line, the last one (warnings may precede it).
bool OneLine(const std::string& err) {
  const size_t at = err.find("ampc: error: ");
  return at != std::string::npos && (at == 0 || err[at - 1] == '\n') &&
         err.find('\n', at) == err.size() - 1;
}

TEST(TrainCli, FashionMnistMetricsAndValidation) {
  TempDir tmp;
  const std::string m = tmp / "m.jsonl";
  auto r = RunAmpc("train " + Fixture("mlp_opset17.onnx") +
                   " --data fashion-mnist --batch-size 100 --steps 30 --lr 0.05 --momentum 0.9 "
                   "--metrics " +
                   m);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = Lines(m);
  ASSERT_EQ(lines.size(), 31u);
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(lines[i]["step"].get<int>(), i + 1);
    for (const char* k : {"loss", "lr", "samples_per_s", "epoch"})
      EXPECT_TRUE(lines[i].contains(k)) << k;
  }
  const auto& e = lines[30];
  const double acc = e["val_accuracy"].get<double>();
  EXPECT_GT(acc, 0.5);  // 30 steps of SGD already beat chance (0.1) by far
  EXPECT_LE(acc, 1.0);
  EXPECT_TRUE(e.contains("val_loss"));
  EXPECT_LT(lines[29]["loss"].get<double>(), lines[0]["loss"].get<double>());
  EXPECT_NE(r.out.find("val_accuracy"), std::string::npos);
}

// 2 steps, save, 2 more from the plan == 4 steps straight (the data has exactly 2 batches of 320,
// so both runs see batches 0, 1, 0, 1).
TEST(TrainCli, SavedPlanResumesExactly) {
  TempDir tmp;
  const std::string base =
      "--data " + MlpData() + " --batch-size 320 --no-shuffle --quiet --lr 0.05 --momentum 0.9";
  auto straight = RunAmpc("train " + Fixture("mlp_opset17.onnx") + " " + base +
                          " --steps 4 --metrics " + (tmp / "a.jsonl"));
  ASSERT_EQ(straight.exit_code, 0) << straight.err;
  auto first = RunAmpc("train " + Fixture("mlp_opset17.onnx") + " " + base +
                       " --steps 2 --save-plan " + (tmp / "p.ampc"));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto second = RunAmpc("train " + (tmp / "p.ampc") + " --data " + MlpData() +
                        " --no-shuffle --quiet --steps 2 --metrics " + (tmp / "b.jsonl"));
  ASSERT_EQ(second.exit_code, 0) << second.err;
  auto a = Lines(tmp / "a.jsonl"), b = Lines(tmp / "b.jsonl");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(b[i]["step"].get<int>(), 3 + i);
    EXPECT_EQ(b[i]["loss"].get<double>(), a[2 + i]["loss"].get<double>()) << i;
  }
}

// --synthetic-weights: the plan file holds almost none of its data, loads the same seeded values
// every time (two runs train identically), and a plan saved after training holds the trained
// values in full (resuming from it continues the first run exactly).
TEST(TrainCli, SyntheticWeightPlansAreSmallDeterministicAndSaveTrainedValues) {
  TempDir tmp;
  const std::string compile = "compile " + Fixture("mlp_opset17.onnx") +
                              " --batch-size 320 --optimizer adamw --lr 0.001 --precision bf16";
  auto full = RunAmpc(compile + " -o " + (tmp / "full.ampc"));
  ASSERT_EQ(full.exit_code, 0) << full.err;
  auto synth = RunAmpc(compile + " -o " + (tmp / "s.ampc") + " --synthetic-weights 5");
  ASSERT_EQ(synth.exit_code, 0) << synth.err;
  EXPECT_NE(synth.out.find("synthetic weights (seed 5)"), std::string::npos) << synth.out;
  const auto full_size = std::filesystem::file_size(tmp / "full.ampc");
  const auto synth_size = std::filesystem::file_size(tmp / "s.ampc");
  // The MLP's 203,530 f32 parameters and two Adam moments are 2.4 MB of the full plan.
  EXPECT_GT(full_size - synth_size, 2'000'000u) << full_size << " " << synth_size;
  auto inspect = RunAmpc("inspect " + (tmp / "s.ampc"));
  EXPECT_NE(inspect.out.find("seeded uniform weights"), std::string::npos) << inspect.out;
  const std::string run = " --data " + MlpData() + " --no-shuffle --quiet ";
  auto a = RunAmpc("train " + (tmp / "s.ampc") + run + "--steps 4 --metrics " + (tmp / "a.jsonl"));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = RunAmpc("train " + (tmp / "s.ampc") + run + "--steps 2 --metrics " + (tmp / "b.jsonl") +
                   " --save-plan " + (tmp / "t.ampc"));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_GT(std::filesystem::file_size(tmp / "t.ampc"), full_size - 100'000);
  auto c = RunAmpc("train " + (tmp / "t.ampc") + run + "--steps 2 --metrics " + (tmp / "c.jsonl"));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto la = Lines(tmp / "a.jsonl"), lb = Lines(tmp / "b.jsonl"), lc = Lines(tmp / "c.jsonl");
  ASSERT_EQ(la.size(), 4u);
  ASSERT_EQ(lb.size(), 2u);
  ASSERT_EQ(lc.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(std::isfinite(la[i]["loss"].get<double>()));
    EXPECT_EQ(lb[i]["loss"].get<double>(), la[i]["loss"].get<double>()) << i;
    EXPECT_EQ(lc[i]["loss"].get<double>(), la[2 + i]["loss"].get<double>()) << i;
  }
}

// A model that carries its own training algorithm (ONNX training_info: Gradient + Momentum,
// update bindings). tools/gen_fixtures.py computed the expected losses and weights with numpy
// from ONNX's Momentum definition.
TEST(TrainCli, RunsOnnxTrainingInfoModels) {
  TempDir tmp;
  const std::string dir = Fixture("training_info_momentum_data");
  auto r = RunAmpc("train " + Fixture("training_info_momentum.onnx") + " --data " + dir +
                   "/data.npz --batch-size 8 --steps 5 --lr 0.1 --no-shuffle --quiet --metrics " +
                   (tmp / "m.jsonl") + " --export " + (tmp / "out.onnx"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(dir + "/expected.json");
  const auto want = nlohmann::json::parse(in);
  auto lines = Lines(tmp / "m.jsonl");
  ASSERT_EQ(lines.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    const double w = want["losses"][i].get<double>();
    EXPECT_NEAR(lines[i]["loss"].get<double>(), w, 1e-5 * w) << i;
  }
  auto dump = RunAmpc("inspect " + (tmp / "out.onnx") + " --full-weights");
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  // The exported model holds the trained W (text IR prints floats in shortest form).
  const auto& w5 = want["W"][4];
  const size_t at = dump.out.find("init %W: f32[3,1] = [");
  ASSERT_NE(at, std::string::npos) << dump.out;
  std::stringstream ss(dump.out.substr(at + 21));
  for (int k = 0; k < 3; ++k) {
    double v = 0;
    char sep = 0;
    ss >> v >> sep;
    EXPECT_NEAR(v, w5[k].get<double>(), 1e-5 * std::abs(w5[k].get<double>()) + 1e-7) << k;
  }
}

// A saved training plan is user input: hand edits give one-line errors, never a crash.
TEST(TrainCli, DamagedTrainingPlansAreRejected) {
  TempDir tmp;
  const std::string ckpt = tmp / "p.ampc";
  auto r = RunAmpc("train " + Fixture("mlp_opset17.onnx") + " --data " + MlpData() +
                   " --batch-size 32 --steps 3 --checkpoint-every 2 --quiet --save-plan " + ckpt);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto good = LoadPlan(ckpt);
  ASSERT_TRUE(good.ok()) << good.status().message();
  auto variant = [&](const std::string& name, auto edit) {
    Plan p = *good;
    edit(p.proto);
    const std::string path = tmp / name;
    EXPECT_TRUE(SavePlan(p, path).ok());
    return path;
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {variant("loss.ampc", [](plan::PlanProto& p) { p.mutable_training()->set_loss("nope"); }),
       "no loss output 'nope'"},
      {variant("axis.ampc", [](plan::PlanProto& p) { p.mutable_training()->set_class_axis(7); }),
       "do not match the labels"},
      {variant("state.ampc",
               [](plan::PlanProto& p) {
                 for (auto& b : *p.mutable_buffers()) {
                   if (b.kind() == plan::Buffer::STATE) {
                     b.set_data_offset(p.data_bytes());
                     break;
                   }
                 }
               }),
       "lies outside the plan's"},
      {variant("eval.ampc",
               [](plan::PlanProto& p) {
                 p.mutable_training()->mutable_eval()->mutable_steps(0)->mutable_op()->set_op(
                     "Nope");
               }),
       "evaluation pass"},
  };
  for (const auto& [path, message] : cases) {
    auto bad = RunAmpc("train " + path + " --data fashion-mnist --steps 1 --quiet");
    EXPECT_EQ(bad.exit_code, 2) << path << "\n" << bad.err;
    EXPECT_NE(bad.err.find(message), std::string::npos) << path << "\n" << bad.err;
    EXPECT_TRUE(OneLine(bad.err)) << bad.err;
  }
  WriteBytes(tmp / "cut.ampc", ReadBytes(ckpt).substr(0, 1000));
  auto cut = RunAmpc("train " + (tmp / "cut.ampc") + " --data " + MlpData() + " --steps 1");
  EXPECT_EQ(cut.exit_code, 2);
  EXPECT_NE(cut.err.find("truncated or corrupt"), std::string::npos) << cut.err;
}

// fp32 has no finite check: a run that diverges (a learning rate of 1e9 makes the weights
// overflow within a few steps) ends with exit code 1 and names the step and what went bad,
// after writing the metrics lines of the steps before it.
TEST(TrainCli, NonFiniteFp32LossExitsOne) {
  TempDir tmp;
  auto r = RunAmpc("train " + Fixture("mlp_opset17.onnx") + " --data " + MlpData() +
                   " --batch-size 32 --steps 50 --lr 1e9 --precision fp32 --quiet --metrics " +
                   (tmp / "m.jsonl"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(OneLine(r.err)) << r.err;
  EXPECT_NE(r.err.find("ampc: error: step "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(fp32 training has no finite check to skip a bad step); the "),
            std::string::npos)
      << r.err;
  const auto lines = Lines(tmp / "m.jsonl");
  ASSERT_FALSE(lines.empty());
  for (const auto& j : lines) EXPECT_TRUE(j["loss"].is_number()) << j.dump();
}

// A model exported for inference (BatchNorm folded into the Conv weights by the legacy
// exporter's constant folding) trains, with a warning saying how to export for training; one
// exported for training does not warn. Frozen initializers are listed with the reason.
TEST(TrainCli, InferenceExportsWarnAndFrozenInitializersAreExplained) {
  auto folded = RunAmpc("inspect " + Fixture("cnn_opset17.onnx") + " --precision fp32");
  EXPECT_EQ(folded.exit_code, 0) << folded.err;
  EXPECT_NE(folded.err.find("looks constant-folded for inference"), std::string::npos)
      << folded.err;
  EXPECT_NE(folded.err.find("optimize=False"), std::string::npos) << folded.err;
  auto clean = RunAmpc("inspect " + Fixture("cnn_train_opset17.onnx") + " --precision fp32");
  EXPECT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_EQ(clean.err.find("constant-folded"), std::string::npos) << clean.err;
  auto frozen =
      RunAmpc("inspect " + Fixture("mlp_opset17.onnx") + " --precision fp32 --freeze '^0\\.bias$'");
  EXPECT_NE(frozen.out.find("// frozen 0.bias: --freeze"), std::string::npos) << frozen.out;
}

struct Bad {
  std::string args;
  std::string message;
};

// --device auto (the default) trains on the CPU with a one-line notice where no GPU is usable;
// --device cuda there is a one-line error with exit code 2 naming why. (On a machine with a GPU
// both would train on it: tools/gpu_check.sh covers that.)
TEST(TrainCli, WithoutAGpuAutoFallsBackToTheCpuAndCudaIsAnError) {
  if (ProbeCuda().device_count > 0) GTEST_SKIP() << "this machine has a GPU";
  const std::string run = "train " + Fixture("mlp_opset17.onnx") + " --data " + MlpData() +
                          " --batch-size 32 --steps 2";
  auto fallback = RunAmpc(run);
  EXPECT_EQ(fallback.exit_code, 0) << fallback.err;
  EXPECT_NE(fallback.err.find("ampc: no usable GPU ("), std::string::npos) << fallback.err;
  EXPECT_NE(fallback.err.find("); running on the CPU\n"), std::string::npos) << fallback.err;
  EXPECT_NE(fallback.out.find("trained 2 steps"), std::string::npos) << fallback.out;
  auto quiet = RunAmpc(run + " --quiet");  // --quiet drops the notice with the progress
  EXPECT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.err.find("no usable GPU"), std::string::npos) << quiet.err;
  auto cpu = RunAmpc(run + " --device cpu");
  EXPECT_EQ(cpu.exit_code, 0) << cpu.err;
  EXPECT_EQ(cpu.err.find("no usable GPU"), std::string::npos) << cpu.err;
  for (const char* flag : {"cuda", "cuda:0", "cuda:3"}) {
    auto r = RunAmpc(run + " --device " + flag);
    EXPECT_EQ(r.exit_code, 2) << flag << ": " << r.err;
    EXPECT_TRUE(OneLine(r.err)) << r.err;
    EXPECT_NE(r.err.find(std::string("--device ") + flag + ": no usable GPU ("), std::string::npos)
        << r.err;
  }
  // A plan compiled for the GPU is refused on the CPU and, without a GPU, with auto too.
  if (HaveMlir() && std::filesystem::exists("/usr/local/cuda/bin/ptxas")) {
    TempDir tmp;
    auto c = RunAmpc("compile " + Fixture("mlp_opset17.onnx") + " -o " + (tmp / "g.ampc") +
                     " --target cuda --batch-size 32");
    ASSERT_EQ(c.exit_code, 0) << c.err;
    const std::string train_plan =
        "train " + (tmp / "g.ampc") + " --data " + MlpData() + " --steps 1";
    auto a = RunAmpc(train_plan);
    EXPECT_EQ(a.exit_code, 2) << a.err;
    EXPECT_NE(a.err.find("--device cuda: no usable GPU"), std::string::npos) << a.err;
    auto on_cpu = RunAmpc(train_plan + " --device cpu");
    EXPECT_EQ(on_cpu.exit_code, 2) << on_cpu.err;
    EXPECT_NE(on_cpu.err.find("compiled for cuda:sm_90"), std::string::npos) << on_cpu.err;
  }
}

TEST(TrainCli, BadInputIsAOneLineError) {
  TempDir tmp;
  WriteBytes(tmp / "junk.npz", "PK\x03\x04 this is not a zip archive");
  const std::string mlp = Fixture("mlp_opset17.onnx");
  const std::string ok = " --data " + MlpData() + " --batch-size 32 --steps 1";
  const std::vector<Bad> cases = {
      {"train " + mlp + ok + " --device cuda", "--device cuda"},  // no GPU here, or a CPU one
      {"train " + mlp + ok + " --device cuda:x", "--device cuda:x"},
      {"train " + mlp + ok + " --device tpu", "--device tpu"},
      {"train " + mlp + ok + " --precision fp16 --loss-scale none", "--allow-unscaled-fp16"},
      {"train " + mlp + ok + " --loss-scale lots", "--loss-scale lots"},
      {"train " + mlp + ok + " --loss-scale -8", "--loss-scale -8"},
      {"train " + mlp + ok + " --allow MatMull", "no op named 'MatMull'"},
      {"train " + mlp + ok + " --no-deny Softmax,Bogus", "no op named 'Bogus'"},
      {"train " + mlp + ok + " --amp-config " + (tmp / "none.json"), "none.json"},
      {"train " + mlp + ok + " --fp32-nodes '[' ", "--fp32-nodes"},
      {"train " + mlp + ok + " --precision fp8", "--precision fp8"},
      {"train " + mlp + ok + " --epochs 1", "excludes"},
      {"train " + mlp + " --data " + MlpData() + " --batch-size 32", "exactly one of --steps"},
      {"train " + mlp + " --data " + (tmp / "junk.npz") + " --steps 1", "junk.npz"},
      {"train " + mlp + " --data " + (tmp / "missing.npz") + " --steps 1", "missing.npz"},
      {"train " + mlp + " --data data.csv --steps 1", "expected FILE.npz or fashion-mnist"},
      {"train " + mlp + ok + " --labels idx", "no array named 'idx'"},
      {"train " + Fixture("transformer_opset17.onnx") + " --data fashion-mnist --steps 1",
       "fashion-mnist feeds float images"},
      {"train " + mlp + ok + " --loss focal", "--loss 'focal'"},
      {"train " + mlp + ok + " --optimizer lamb", "--optimizer 'lamb'"},
      {"train " + mlp + ok + " --lr-schedule exp", "--lr-schedule 'exp'"},
      {"train " + mlp + ok + " --freeze '('", "not a valid regular expression"},
      {"train " + mlp + " --data " + MlpData() + " --batch-size 100000 --steps 1",
       "fewer than one batch"},
      {"train " + mlp + ok + " --export " + mlp, "would overwrite the model"},
      {"train " + (tmp / "nothing.onnx") + ok, "nothing.onnx"},
      {"train " + mlp + ok + " --metrics " + (tmp / "no/such/dir/m.jsonl"), "does not exist"},
  };
  for (const Bad& c : cases) {
    auto r = RunAmpc(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.err;
    EXPECT_TRUE(OneLine(r.err) || r.err.find("excludes") != std::string::npos) << c.args << "\n"
                                                                               << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
  }
}

TEST(TrainCli, ExistingOutputsAreNotOverwritten) {
  TempDir tmp;
  const std::string metrics = tmp / "m.jsonl", exported = tmp / "out.onnx";
  WriteBytes(metrics, "precious\n");
  WriteBytes(exported, "also precious\n");
  const std::string cmd = "train " + Fixture("mlp_opset17.onnx") + " --data " + MlpData() +
                          " --batch-size 32 --steps 1 --quiet";
  auto r = RunAmpc(cmd + " --metrics " + metrics);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
  EXPECT_EQ(ReadBytes(metrics), "precious\n");
  r = RunAmpc(cmd + " --export " + exported);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(ReadBytes(exported), "also precious\n");
  r = RunAmpc(cmd + " --export " + exported + " --metrics " + metrics + " --force");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(ReadBytes(exported), "also precious\n");
  auto again = RunAmpc("compile " + exported);
  EXPECT_EQ(again.exit_code, 0) << again.err;  // the exported model is a valid ONNX model
}

// AMPC_PROFILE: the training executor's table leaves the first step (the warm-up) out and
// counts the rest; `all` lists every step, including ones under 0.2% of the step.
TEST(TrainCli, ProfileLeavesTheWarmUpStepOut) {
  TempDir tmp;
  const std::string args = "train " + Fixture("mlp_opset17.onnx") + " --data " + MlpData() +
                           " --batch-size 32 --steps 4 --quiet";
  auto some = testing::RunBinary("env AMPC_PROFILE=1 " AMPC_BINARY, args);
  ASSERT_EQ(some.exit_code, 0) << some.err;
  EXPECT_NE(some.err.find("the first call ("), std::string::npos) << some.err;
  EXPECT_NE(some.err.find("ampc profile: 3 calls"), std::string::npos) << some.err;
  auto all = testing::RunBinary("env AMPC_PROFILE=all " AMPC_BINARY, args);
  ASSERT_EQ(all.exit_code, 0) << all.err;
  auto rows = [](const std::string& err) {
    size_t n = 0;
    for (size_t at = err.find(" node '"); at != std::string::npos; at = err.find(" node '", at + 1))
      ++n;
    return n;
  };
  EXPECT_GT(rows(all.err), rows(some.err)) << all.err;
}

}  // namespace
}  // namespace ampc
