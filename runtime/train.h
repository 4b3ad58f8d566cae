// The training loop behind `ampc train`: batches from a data set, the learning-rate schedule,
// metrics lines, progress, validation at epoch boundaries and checkpoints, over a compiled
// training plan and the Executor interface alone (runtime/executor.h). How the plan was made,
// and on which device it runs, is not its business.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "codegen/plan.h"
#include "ir/status.h"
#include "runtime/executor.h"
#include "runtime/train_data.h"

namespace ampc {

// The executors of one run: the training step, and the evaluation pass (for the batch size, and
// for the last, partial validation batch), each optional.
struct TrainSession {
  std::unique_ptr<Executor> step;
  std::unique_ptr<Executor> eval;
  std::unique_ptr<Executor> eval_tail;
  int64_t batch = 0;  // samples per step (the plan's data inputs' leading dimension)
};

struct TrainLoopConfig {
  std::string model;    // for messages
  LrSchedule schedule;  // its base is the plan's recorded rate unless lr_given
  bool lr_given = false;
  int64_t steps = 0;  // exactly one of steps / epochs
  int64_t epochs = 0;
  bool shuffle = true;
  uint64_t seed = 0;
  std::string metrics;           // JSON lines; the caller has checked that it may be written
  std::string save_plan;         // the training plan with its trained state (resumable)
  std::string checkpoint_dir;    // safetensors checkpoints (runtime/checkpoint.h)
  int64_t checkpoint_every = 0;  // write save_plan / a checkpoint every N steps (atomically)
  int64_t keep = 0;              // checkpoints kept (0: all)
  int64_t start_step = 0;        // steps already done (a resumed checkpoint): --steps counts
                                 // from the start of training, the data order continues
  int64_t metrics_every = 0;     // read the metrics record every N steps (0: the executor's)
  bool progress = true;          // progress bar on stderr (when it is a terminal)
  bool quiet = false;
};

struct TrainSummary {
  int64_t steps = 0;
  double seconds = 0;
  double samples_per_s = 0;
  double last_loss = 0;
  std::optional<double> val_loss, val_accuracy;
  int64_t skipped = 0;               // steps skipped by the finite check
  bool finite_check = false;         // whether steps can be skipped at all
  std::optional<double> loss_scale;  // with loss scaling
};

// The plan's inputs in order: data arrays by name (moved out of `batch`; a float array of another
// float type than the plan reads is converted); scalars the data does not hold are fed by ampc,
// an f32/f64 one with the learning rate `lr`, an integer one with the applied-step count `step`.
StatusOr<std::vector<Tensor>> OrderInputs(const plan::PlanProto& p,
                                          std::map<std::string, Tensor>& batch, double lr,
                                          int64_t step);

StatusOr<TrainSummary> Train(TrainSession& s, const Dataset& train,
                             const std::optional<Dataset>& val, const TrainLoopConfig& cfg);

// The step's plan with its current state and the evaluation pass attached (a resumable plan).
StatusOr<Plan> CurrentTrainingPlan(const TrainSession& s);

}  // namespace ampc
