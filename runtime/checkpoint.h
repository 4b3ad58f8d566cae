// Checkpoints of a training run, in files other tools read: DIR/step-00000123/ holds
//   model.safetensors     the parameters (fp32 masters) and buffers under the PyTorch module's
//                         state_dict names (plan training.torch_names: folded transposes stored
//                         transposed back, merged aliases under each name, BatchNorm's
//                         num_batches_tracked), so model.load_state_dict(
//                         safetensors.torch.load_file(f), strict=True) works;
//   training.safetensors  every other state (optimizer moments, loss scale, growth tracker,
//                         skipped steps, the applied-step counter), and in its metadata the loop
//                         position (steps done: the data order and learning rate follow from it
//                         and the seed), the seed and the compile options.
// A checkpoint folder is written under a temporary name and renamed into place (files and folder
// fsync'd), so a kill at any point leaves the previous checkpoints whole; --keep K prunes the
// oldest afterwards. Reading checks everything against the plan (names, dtypes, shapes, the
// optimizer and precision) before any state is touched.
#pragma once

#include <map>
#include <string>

#include "ir/status.h"
#include "ir/tensor.h"
#include "runtime/executor.h"

namespace ampc {

struct Checkpoint {
  std::string path;  // the step folder
  int64_t steps_done = 0;
  uint64_t seed = 0;
  std::map<std::string, Tensor> states;  // by state name, as the executor holds them
  std::map<std::string, std::string> metadata;
};

// Writes the states of `ex` (a training step's executor) as DIR/step-<steps_done>, then keeps the
// newest `keep` step folders (0: all).
Status WriteCheckpoint(const std::string& dir, int64_t steps_done, uint64_t seed,
                       const Executor& ex, int64_t keep);

// `path`: a step folder, or a checkpoint folder (its newest step folder is taken).
StatusOr<Checkpoint> ReadCheckpoint(const std::string& path, const plan::PlanProto& plan);

// Puts the checkpoint's states into `ex`, after checking that each of its states is there with
// its dtype and shape and that the checkpoint has nothing else; on any mismatch nothing changes.
Status RestoreCheckpoint(const Checkpoint& c, Executor& ex);

}  // namespace ampc
