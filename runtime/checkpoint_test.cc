// Checkpoints (runtime/checkpoint.h, runtime/safetensors.h): the safetensors reader refuses
// hostile files; a resumed run is bit-identical to an uninterrupted one; kill -9 at any point
// leaves loadable checkpoints; a checkpoint of another model, optimizer or precision, or a
// damaged one, is a one-line error that changes nothing. Expected values come from the
// uninterrupted run (the reference the resume must equal) and from the format's definition.
#include "runtime/checkpoint.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "ir/safetensors.h"
#include "tests/unit/test_util.h"

namespace ampc {
namespace {

namespace fs = std::filesystem;
using testing::Fixture;
using testing::ReadBytes;
using testing::RunAmpc;
using testing::TempDir;
using testing::WriteBytes;

std::string Data(const std::string& c) {
  return std::string(AMPC_GEN_DIR) + "/train_refs/" + c + "/data.npz";
}

std::string Train(const std::string& extra) {
  return "train " + Fixture("mlp_opset17.onnx") + " --data " + Data("mlp_adamw") +
         " --batch-size 32 --optimizer adamw --lr 0.001 --precision fp16 --quiet --threads 1 " +
         extra;
}

std::vector<double> Losses(const std::string& path) {
  std::vector<double> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find("\"loss\":");
    if (at != std::string::npos) out.push_back(std::stod(line.substr(at + 7)));
  }
  return out;
}

TEST(Safetensors, EncodeRoundTrips) {
  SafetensorsFile f;
  f.tensors["a.weight"] = Tensor::FromFloats({1, 2, 3, 4, 5, 6}, {2, 3});
  f.tensors["step"] = Tensor::ScalarInt64(7);
  f.metadata["k"] = "v";
  auto bytes = EncodeSafetensors(f);
  ASSERT_TRUE(bytes.ok());
  // The layout: u64 header length, JSON, data 8-byte aligned.
  uint64_t n = 0;
  std::memcpy(&n, bytes->data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_NE(bytes->find("\"a.weight\":{\"data_offsets\":[0,24],\"dtype\":\"F32\",\"shape\":[2,3]}"),
            std::string::npos);
  auto back = ParseSafetensors(*bytes, "t");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->tensors.at("a.weight"), f.tensors.at("a.weight"));
  EXPECT_EQ(back->tensors.at("step"), f.tensors.at("step"));
  EXPECT_EQ(back->metadata.at("k"), "v");
  // Hostile files: tests/unit/safetensors_test.cc.
}

TEST(Checkpoints, ResumedRunIsBitIdenticalToAnUninterruptedOne) {
  TempDir tmp;
  auto full = RunAmpc(Train("--steps 12 --checkpoint-every 4 --checkpoint-dir " + (tmp / "full") +
                            " --metrics " + (tmp / "full.jsonl")));
  ASSERT_EQ(full.exit_code, 0) << full.err;
  auto first = RunAmpc(
      Train("--steps 6 --checkpoint-dir " + (tmp / "part") + " --metrics " + (tmp / "a.jsonl")));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  // --steps counts from the start of training: 6 more steps, ending where the full run ended.
  auto second = RunAmpc(Train("--steps 12 --checkpoint-dir " + (tmp / "part") + " --resume " +
                              (tmp / "part") + " --metrics " + (tmp / "b.jsonl")));
  ASSERT_EQ(second.exit_code, 0) << second.err;
  std::vector<double> joined = Losses(tmp / "a.jsonl");
  for (double l : Losses(tmp / "b.jsonl")) joined.push_back(l);
  EXPECT_EQ(joined, Losses(tmp / "full.jsonl"));
  for (const char* f : {"model.safetensors", "training.safetensors"}) {
    EXPECT_EQ(ReadBytes(tmp / ("part/step-00000012/" + std::string(f))),
              ReadBytes(tmp / ("full/step-00000012/" + std::string(f))))
        << f;
  }
  // The model file holds the module's parameters under their state_dict names, fp32.
  auto model = ReadSafetensors(tmp / "full/step-00000012/model.safetensors");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->tensors.at("0.weight").dtype(), DType::kFloat32);
  EXPECT_EQ(model->tensors.count("ampc.exp_avg.0.weight"), 0u);  // moments go elsewhere
  auto training = ReadSafetensors(tmp / "full/step-00000012/training.safetensors");
  ASSERT_TRUE(training.ok());
  EXPECT_EQ(training->tensors.count("ampc.exp_avg.0.weight"), 1u);
  EXPECT_EQ(training->tensors.count("ampc.loss_scale"), 1u);
  EXPECT_EQ(training->metadata.at("steps_done"), "12");
}

// Kill -9 at random moments of a run that checkpoints every step; whatever is on disk afterwards
// must resume. Twelve kills, from early (during compilation) to late (during writes).
TEST(Checkpoints, KillNineLeavesALoadableCheckpoint) {
  TempDir tmp;
  const std::string dir = tmp / "ck";
  std::mt19937 rng(5);
  int resumed = 0;
  // Build the generated kernels once (into the kernel cache), so that the kills below land in
  // training rather than all in a first, cold compile.
  ASSERT_EQ(RunAmpc(Train("--steps 1")).exit_code, 0);
  for (int round = 0; round < 12; ++round) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      const std::string cmd = std::string(AMPC_BINARY) + " " +
                              Train(
                                  "--steps 100000 --checkpoint-every 1 --keep 3 --force "
                                  "--checkpoint-dir " +
                                  dir) +
                              (round > 0 ? " --resume " + dir : "") + " >/dev/null 2>&1";
      execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), nullptr);
      _exit(127);
    }
    usleep(std::uniform_int_distribution<int>(150, 900)(rng) * 1000);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!fs::exists(dir)) continue;
    // Every step folder in place is whole; the newest resumes.
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("step-", 0) != 0) continue;
      for (const char* f : {"model.safetensors", "training.safetensors"}) {
        auto st = ReadSafetensors((e.path() / f).string());
        EXPECT_TRUE(st.ok()) << name << "/" << f << ": " << st.status().message();
      }
    }
    int64_t newest = -1;
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("step-", 0) == 0)
        newest = std::max<int64_t>(newest, std::stoll(name.substr(5)));
    }
    if (newest < 0) continue;
    auto r = RunAmpc(Train("--steps " + std::to_string(newest + 1) + " --resume " + dir));
    EXPECT_EQ(r.exit_code, 0) << "after kill " << round << ": " << r.err;
    ++resumed;
  }
  EXPECT_GT(resumed, 3);
}

TEST(Checkpoints, MismatchedOrDamagedCheckpointsAreOneLineErrorsAndChangeNothing) {
  TempDir tmp;
  const std::string ck = tmp / "ck";
  ASSERT_EQ(RunAmpc(Train("--steps 2 --checkpoint-dir " + ck)).exit_code, 0);
  const std::string step = ck + "/step-00000002";
  const std::string model_bytes = ReadBytes(step + "/model.safetensors");
  const std::string training_bytes = ReadBytes(step + "/training.safetensors");
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"train " + Fixture("mlp_opset17.onnx") + " --data " + Data("mlp_adamw") +
           " --batch-size 32 --optimizer sgd --precision fp16 --steps 4 --resume " + ck,
       "written by a run with optimizer \"adamw\", this one has \"sgd\""},
      {Train("--steps 4 --resume " + ck + " --precision bf16"), "precision"},
      {"train " + Fixture("transformer_opset17.onnx") + " --data " + Data("transformer_adamw") +
           " --batch-size 8 --optimizer adamw --precision fp16 --steps 4 --resume " + ck,
       "has no tensor 'tok_emb.weight'"},
      {Train("--steps 2 --resume " + ck), "nothing left to train"},
      {Train("--steps 4 --resume " + (tmp / "missing")), "no such checkpoint folder"},
      {Train("--steps 4 --checkpoint-dir " + ck), "holds checkpoints; pass --resume"},
  };
  for (const Case& c : cases) {
    auto r = RunAmpc(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
    const size_t at = r.err.find("ampc: error: ");  // the last line, after any warnings
    EXPECT_TRUE(at != std::string::npos && r.err.find('\n', at) == r.err.size() - 1) << r.err;
  }
  // Damaged files: truncated, or a tensor missing.
  WriteBytes(step + "/training.safetensors", training_bytes.substr(0, training_bytes.size() / 2));
  auto cut = RunAmpc(Train("--steps 4 --resume " + ck));
  EXPECT_EQ(cut.exit_code, 2);
  EXPECT_NE(cut.err.find("not a valid safetensors file"), std::string::npos) << cut.err;
  WriteBytes(step + "/training.safetensors", training_bytes);
  auto model = ParseSafetensors(model_bytes, "m");
  ASSERT_TRUE(model.ok());
  model->tensors.erase("0.weight");
  ASSERT_TRUE(WriteSafetensors(step + "/model.safetensors", *model).ok());
  auto missing = RunAmpc(Train("--steps 4 --resume " + ck));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("has no tensor '0.weight'"), std::string::npos) << missing.err;
  WriteBytes(step + "/model.safetensors", model_bytes);
  // Nothing above touched the checkpoint.
  EXPECT_EQ(ReadBytes(step + "/model.safetensors"), model_bytes);
  EXPECT_EQ(ReadBytes(step + "/training.safetensors"), training_bytes);
}

}  // namespace
}  // namespace ampc
