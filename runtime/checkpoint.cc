#include "runtime/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "ir/training_names.h"
#include "ir/safetensors.h"

namespace ampc {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFormat = "ampc-checkpoint-1";
constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kTrainingFile = "training.safetensors";

std::string StepFolder(int64_t steps) {
  std::string n = std::to_string(steps);
  return "step-" + std::string(n.size() < 8 ? 8 - n.size() : 0, '0') + n;
}

// Steps of a "step-<digits>" folder name, or -1.
int64_t StepOf(const std::string& name) {
  if (name.rfind("step-", 0) != 0 || name.size() <= 5 || name.size() > 5 + 18) return -1;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
  }
  return std::stoll(name.substr(5));
}

Tensor Transpose2D(const Tensor& t) {
  const int64_t r = t.dims()[0], c = t.dims()[1];
  const int64_t e = DTypeSize(t.dtype());
  std::vector<uint8_t> out(t.bytes().size());
  for (int64_t i = 0; i < r; ++i) {
    for (int64_t j = 0; j < c; ++j) {
      std::memcpy(&out[(j * r + i) * e], &t.bytes()[(i * c + j) * e], e);
    }
  }
  return Tensor(t.dtype(), {c, r}, std::move(out));
}

void SyncFolder(const std::string& dir) {
  if (const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

Status WriteCheckpoint(const std::string& dir, int64_t steps_done, uint64_t seed,
                       const Executor& ex, int64_t keep) {
  const plan::PlanProto& p = ex.plan();
  const plan::Training& t = p.training();
  SafetensorsFile model, training;
  std::set<std::string> in_model;
  for (const plan::TorchName& n : t.torch_names()) {
    if (n.step_count()) {
      ASSIGN_OR_RETURN(Tensor steps, ex.GetState(n.state()));
      model.tensors[n.name()] = steps;
      continue;
    }
    auto got = ex.GetState(n.state());
    if (!got.ok() && n.constant()) continue;  // removed as unused when the step was compiled
    ASSIGN_OR_RETURN(Tensor v, std::move(got));
    if (n.transpose() && v.dims().size() == 2) v = Transpose2D(v);
    model.tensors[n.name()] = std::move(v);
    in_model.insert(n.state());
  }
  for (const std::string& name : ex.StateNames()) {
    if (in_model.count(name)) continue;
    ASSIGN_OR_RETURN(training.tensors[name], ex.GetState(name));
  }
  training.metadata = {{"format", kFormat},
                       {"steps_done", std::to_string(steps_done)},
                       {"seed", std::to_string(seed)},
                       {"source", p.source()},
                       {"precision", p.precision()},
                       {"compile_options", t.compile_options()}};
  model.metadata = {{"format", "pt"}, {"source", p.source()}};
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return InvalidArgument("--checkpoint-dir " + dir + ": cannot create it: " + ec.message());
  // Leftovers of runs killed while writing or pruning: hidden, never read, removed here.
  const std::string mine = "." + std::to_string(::getpid());
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(".step-", 0) == 0 && name.find(mine) == std::string::npos) {
      std::error_code ignored;
      fs::remove_all(e.path(), ignored);
    }
  }
  const std::string final_path = (fs::path(dir) / StepFolder(steps_done)).string();
  const std::string tmp =
      (fs::path(dir) / ("." + StepFolder(steps_done) + ".tmp." + std::to_string(::getpid())))
          .string();
  fs::remove_all(tmp, ec);
  fs::create_directory(tmp, ec);
  if (ec) return Internal(dir + ": cannot create a checkpoint folder: " + ec.message());
  RETURN_IF_ERROR(WriteSafetensors((fs::path(tmp) / kModelFile).string(), model));
  RETURN_IF_ERROR(WriteSafetensors((fs::path(tmp) / kTrainingFile).string(), training));
  SyncFolder(tmp);
  if (fs::exists(final_path, ec)) {
    // The same step written again (a resumed run): the new folder replaces the old only once it
    // is complete.
    const std::string old =
        (fs::path(dir) / ("." + StepFolder(steps_done) + ".old." + std::to_string(::getpid())))
            .string();
    fs::rename(final_path, old, ec);
    if (ec) return Internal(final_path + ": cannot replace: " + ec.message());
    fs::rename(tmp, final_path, ec);
    fs::remove_all(old, ec);
  } else {
    fs::rename(tmp, final_path, ec);
  }
  if (ec) return Internal(final_path + ": cannot move the checkpoint into place: " + ec.message());
  SyncFolder(dir);
  if (keep > 0) {
    std::vector<std::pair<int64_t, fs::path>> steps;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const int64_t s = StepOf(e.path().filename().string());
      if (s >= 0 && e.is_directory()) steps.emplace_back(s, e.path());
    }
    std::sort(steps.rbegin(), steps.rend());
    for (size_t i = static_cast<size_t>(keep); i < steps.size(); ++i) {
      // Renamed out of the step-N namespace first, so a kill mid-delete leaves no partial step.
      const fs::path doomed =
          steps[i].second.parent_path() / ("." + steps[i].second.filename().string() + ".del");
      fs::rename(steps[i].second, doomed, ec);
      if (!ec) fs::remove_all(doomed, ec);
    }
  }
  return Status::Ok();
}

StatusOr<Checkpoint> ReadCheckpoint(const std::string& path, const plan::PlanProto& plan) {
  std::error_code ec;
  if (!fs::is_directory(path, ec))
    return NotFound("--resume " + path + ": no such checkpoint folder");
  fs::path folder = path;
  if (StepOf(folder.filename().string()) < 0 || !fs::exists(folder / kTrainingFile, ec)) {
    int64_t best = -1;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      const int64_t s = StepOf(e.path().filename().string());
      if (s > best && e.is_directory()) {
        best = s;
        folder = e.path();
      }
    }
    if (best < 0) return NotFound("--resume " + path + ": holds no step-N checkpoint folder");
  }
  Checkpoint c;
  c.path = folder.string();
  ASSIGN_OR_RETURN(SafetensorsFile training, ReadSafetensors((folder / kTrainingFile).string()));
  ASSIGN_OR_RETURN(SafetensorsFile model, ReadSafetensors((folder / kModelFile).string()));
  c.metadata = training.metadata;
  auto meta = [&](const std::string& k) -> StatusOr<std::string> {
    auto it = c.metadata.find(k);
    if (it == c.metadata.end())
      return InvalidArgument(c.path + ": not an ampc checkpoint (no '" + k + "')");
    return it->second;
  };
  ASSIGN_OR_RETURN(std::string format, meta("format"));
  if (format != kFormat) {
    return InvalidArgument(c.path + ": checkpoint format '" + format + "', expected " + kFormat);
  }
  ASSIGN_OR_RETURN(std::string steps, meta("steps_done"));
  ASSIGN_OR_RETURN(std::string seed, meta("seed"));
  try {
    c.steps_done = std::stoll(steps);
    c.seed = std::stoull(seed);
  } catch (const std::exception&) {
    return InvalidArgument(c.path + ": bad steps_done or seed in the metadata");
  }
  if (c.steps_done < 0) return InvalidArgument(c.path + ": negative steps_done");
  // Written by a run compiled differently: another optimizer or precision would give states
  // that fit by shape but mean something else.
  ASSIGN_OR_RETURN(std::string options, meta("compile_options"));
  auto want = nlohmann::json::parse(plan.training().compile_options(), nullptr, false);
  auto got = nlohmann::json::parse(options, nullptr, false);
  if (got.is_discarded() || !got.is_object())
    return InvalidArgument(c.path + ": bad compile_options");
  for (const char* key : {"precision", "optimizer", "loss_scale"}) {
    if (want.is_object() && want.contains(key) && got.value(key, nlohmann::json()) != want[key]) {
      return InvalidArgument(c.path + ": written by a run with " + key + " " +
                             got.value(key, nlohmann::json()).dump() + ", this one has " +
                             want[key].dump());
    }
  }
  c.states = std::move(training.tensors);
  std::set<std::string> used;
  for (const plan::TorchName& n : plan.training().torch_names()) {
    if (n.step_count() || n.constant()) {  // not restored: the compiled model has them
      used.insert(n.name());
      continue;
    }
    auto it = model.tensors.find(n.name());
    if (it == model.tensors.end()) {
      return InvalidArgument(c.path + ": " + kModelFile + " has no tensor '" + n.name() + "'");
    }
    used.insert(n.name());
    if (c.states.count(n.state())) continue;  // an alias of a state already taken
    Tensor v = it->second;
    if (n.transpose()) {
      if (v.dims().size() != 2) return InvalidArgument(c.path + ": '" + n.name() + "' is not 2-D");
      v = Transpose2D(v);
    }
    c.states.emplace(n.state(), std::move(v));
  }
  for (const auto& [name, t] : model.tensors) {
    if (!used.count(name)) {
      return InvalidArgument(c.path + ": " + kModelFile + " holds '" + name +
                             "', which this model does not have (a checkpoint of another model?)");
    }
  }
  return c;
}

Status RestoreCheckpoint(const Checkpoint& c, Executor& ex) {
  const std::vector<std::string> names = ex.StateNames();
  for (const std::string& name : names) {
    auto it = c.states.find(name);
    if (it == c.states.end()) {
      return InvalidArgument(c.path + ": has no state '" + name +
                             "' (a checkpoint of another model or optimizer?)");
    }
    ASSIGN_OR_RETURN(Tensor cur, ex.GetState(name));
    if (cur.dtype() != it->second.dtype() || cur.dims() != it->second.dims()) {
      return InvalidArgument(c.path + ": state '" + name + "' is " + it->second.type().ToString() +
                             " but the model's is " + cur.type().ToString());
    }
  }
  for (const auto& [name, t] : c.states) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      return InvalidArgument(c.path + ": holds state '" + name +
                             "', which this training step does not have");
    }
  }
  for (const std::string& name : names) RETURN_IF_ERROR(ex.SetState(name, c.states.at(name)));
  return Status::Ok();
}

}  // namespace ampc
