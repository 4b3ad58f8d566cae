// `ampc train --no-shuffle` against PyTorch: tools/train_reference.py (run by the ctest fixture
// generate_train_references into AMPC_GEN_DIR/train_refs) trains the same fixture models from the
// same initial weights on the same batches with torch.optim 1.13 and records each step's loss and
// the final parameters. ampc must reproduce every loss within 1e-4 relative and every trained
// tensor within 1e-3 of its largest magnitude.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>

#include "frontend/onnx.h"
#include "runtime/data/datasets.h"
#include "test_util.h"

namespace ampc {
namespace {

using testing::RunAmpc;
using testing::TempDir;

std::string RefDir(const std::string& c) { return std::string(AMPC_GEN_DIR) + "/train_refs/" + c; }

std::string Flags(const nlohmann::json& c, const std::string& precision = "fp32") {
  std::string s = " --precision " + precision;
  for (const auto& [k, v] : c.items()) {
    if (k == "model") continue;
    if (v.is_boolean()) {
      if (v.get<bool>()) s += " --" + k;
    } else {
      s += " --" + k + " " + v.dump();
    }
  }
  return s;
}

class TrainTrajectoryTest : public ::testing::TestWithParam<std::string> {};

// A case is a reference's name, ":ops" appended for --composite-ops ops (BatchNormalization as
// ONNX ops, the CUDA target's form; the CNN's running statistics are among the compared tensors).
TEST_P(TrainTrajectoryTest, MatchesPyTorch) {
  const std::string param = GetParam();
  const bool ops = param.size() > 4 && param.substr(param.size() - 4) == ":ops";
  const std::string dir = RefDir(ops ? param.substr(0, param.size() - 4) : param);
  std::ifstream in(dir + "/case.json");
  ASSERT_TRUE(in) << dir << "/case.json missing: the generate_train_references fixture did not run";
  const nlohmann::json doc = nlohmann::json::parse(in);
  const nlohmann::json& c = doc["args"];
  std::set<std::string> noise;
  for (const auto& n : doc["gradient_noise_params"]) noise.insert(n.get<std::string>());
  TempDir tmp;
  const std::string metrics = tmp / "m.jsonl", exported = tmp / "trained.onnx";
  const auto r = RunAmpc("train " + testing::Fixture(c["model"].get<std::string>()) + " --data " +
                         dir + "/data.npz --no-shuffle --quiet --metrics " + metrics +
                         " --export " + exported + Flags(c) + (ops ? " --composite-ops ops" : ""));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto ref = ReadNpz(dir + "/ref.npz");
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  auto ref_losses = ref->at("losses").AsDoubles();
  std::vector<double> losses;
  std::ifstream ml(metrics);
  for (std::string line; std::getline(ml, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) losses.push_back(j["loss"].get<double>());
  }
  ASSERT_EQ(losses.size(), ref_losses->size());
  for (size_t i = 0; i < losses.size(); ++i) {
    EXPECT_NEAR(losses[i], (*ref_losses)[i], 1e-4 * std::abs((*ref_losses)[i])) << "step " << i + 1;
  }
  auto trained = ImportOnnxFile(exported);
  ASSERT_TRUE(trained.ok()) << trained.status().message();
  // Adam moves an element by about lr * m/sqrt(v) per step whatever its gradient's scale. Where
  // the gradient's sign alternates (cnn_adamw's BatchNorm bias ends at 1e-5 after 20 steps of
  // size 1e-3), m is a difference of nearly equal terms and float rounding in either framework
  // is amplified; a tenth of one step is allowed on top of the relative bound.
  const std::string opt = c["optimizer"].get<std::string>();
  const double adam_atol = opt == "sgd" ? 0.0 : 0.1 * c["lr"].get<double>();
  int compared = 0;
  for (const auto& [key, want] : *ref) {
    if (key.rfind("param:", 0) != 0) continue;
    const std::string name = key.substr(6);
    const Value* v = (*trained)->FindValue(name);
    ASSERT_TRUE(v && v->initializer()) << name;
    auto got = v->initializer()->AsDoubles();
    auto exp = want.AsDoubles();
    ASSERT_EQ(got->size(), exp->size()) << name;
    double max_ref = 0, max_err = 0;
    for (size_t i = 0; i < exp->size(); ++i) {
      max_ref = std::max(max_ref, std::abs((*exp)[i]));
      max_err = std::max(max_err, std::abs((*got)[i] - (*exp)[i]));
    }
    if (noise.count(name)) {  // see tools/train_reference.py: only the update size is defined
      const double bound = c["steps"].get<double>() * c["lr"].get<double>() * 1.1 + 1e-3 * max_ref;
      EXPECT_LE(max_err, bound) << name << " (gradient is rounding noise)";
    } else {
      EXPECT_LE(max_err, 1e-3 * max_ref + adam_atol) << name << ": max |ampc - torch| " << max_err;
    }
    ++compared;
  }
  EXPECT_GT(compared, 0);
}

// The same trajectories in mixed precision: each step's loss within 2e-2 relative of PyTorch's
// fp32 loss (fp16 with dynamic loss scaling, bf16 without). These tiny models have large
// gradients: scaled by GradScaler's default 65536 some fp16 weight gradients overflow in the
// first steps, which the scaler answers by skipping them (as PyTorch would) and the trajectory
// leaves fp32's. The fp16 runs therefore start the dynamic scaler at 1024, and no step may skip.
class MixedTrajectoryTest : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
};

TEST_P(MixedTrajectoryTest, LossesTrackFp32) {
  const auto& [name, precision] = GetParam();
  const std::string dir = RefDir(name);
  std::ifstream in(dir + "/case.json");
  ASSERT_TRUE(in) << dir << "/case.json missing: the generate_train_references fixture did not run";
  const nlohmann::json c = nlohmann::json::parse(in)["args"];
  TempDir tmp;
  const std::string metrics = tmp / "m.jsonl";
  const auto r = RunAmpc("train " + testing::Fixture(c["model"].get<std::string>()) + " --data " +
                         dir + "/data.npz --no-shuffle --quiet --metrics " + metrics +
                         Flags(c, precision) + (precision == "fp16" ? " --init-scale 1024" : ""));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto ref = ReadNpz(dir + "/ref.npz");
  ASSERT_TRUE(ref.ok());
  auto want = ref->at("losses").AsDoubles();
  std::vector<double> got;
  int skipped = 0;
  std::ifstream ml(metrics);
  for (std::string line; std::getline(ml, line);) {
    auto j = nlohmann::json::parse(line);
    if (!j.contains("loss")) continue;
    got.push_back(j["loss"].get<double>());
    skipped += j.value("skipped", false) ? 1 : 0;
  }
  ASSERT_EQ(got.size(), want->size());
  EXPECT_EQ(skipped, 0);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], (*want)[i], 2e-2 * std::abs((*want)[i])) << precision << " step " << i + 1;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, MixedTrajectoryTest,
                         ::testing::Combine(::testing::Values("mlp_sgd", "mlp_adamw", "cnn_sgd",
                                                              "cnn_adamw", "transformer_sgd",
                                                              "transformer_adamw"),
                                            ::testing::Values("bf16", "fp16")));

INSTANTIATE_TEST_SUITE_P(Cases, TrainTrajectoryTest,
                         ::testing::Values("mlp_sgd", "mlp_adamw", "mlp_sgd_nesterov_wd",
                                           "mlp_adam_l2_clip", "cnn_sgd", "cnn_adamw",
                                           "cnn_sgd:ops", "cnn_adamw:ops", "transformer_sgd",
                                           "transformer_adamw"),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string n = i.param;
                           for (char& ch : n) ch = ch == ':' ? '_' : ch;
                           return n;
                         });

}  // namespace
}  // namespace ampc
