// Training on the CPU runtime: compiling a training step and an evaluation pass for a batch
// size, feeding batches from a data set, learning-rate schedules, and the loop behind
// `ampc train` (metrics lines, progress, validation, export of the trained model).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codegen/plan.pb.h"
#include "frontend/training/training_graph.h"
#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"
#include "passes/autocast.h"
#include "runtime/cpu/executor.h"

namespace ampc {

// A data split: one array per graph input, all with the same leading (sample) dimension.
struct Dataset {
  std::map<std::string, Tensor> arrays;
  int64_t size = 0;
};

// Maps the arrays of an .npz file to the inputs the training graph reads (`needed`), checking
// that every input has an array with the model's element type and a common sample count.
StatusOr<Dataset> DatasetFromNpz(const std::string& path, const Graph& train_graph,
                                 const std::vector<std::string>& needed);

// FashionMNIST (Debian's dataset-fashion-mnist) shaped for the model's single image input
// ([N,784], [N,28,28] or [N,1,28,28], pixels in [0,1]) and the labels input (class indices).
StatusOr<Dataset> DatasetFromFashionMnist(const std::string& dir, const std::string& split,
                                          const Graph& train_graph, const std::string& image_input,
                                          const std::string& labels);

// Rows [first, first + count) of the permutation `order` (or in file order when empty).
StatusOr<std::map<std::string, Tensor>> GatherBatch(const Dataset& d, const std::vector<int64_t>& order,
                                                    int64_t first, int64_t count);

// Deterministic on every platform (the standard library's shuffle and distributions are not).
std::vector<int64_t> ShuffledOrder(int64_t n, uint64_t seed);

struct LrSchedule {
  std::string kind = "constant";  // constant | cosine | step | linear
  double base = 0.01;
  int64_t warmup_steps = 0;  // linear warm-up from base/warmup to base (all kinds)
  int64_t total_steps = 0;   // cosine / linear: decay ends here
  int64_t step_size = 1;     // step: multiply by gamma every step_size steps
  double gamma = 0.1;
  double min_lr = 0.0;       // cosine / linear: the final rate
  Status Validate() const;
  double At(int64_t step) const;  // step counts from 0
};

// The mixed-precision choices of the command line: --precision, list edits, --fp32-nodes and
// --amp-config (whose lists are applied first, then the flags').
struct AmpArgs {
  std::string precision = "bf16";  // fp32 | fp16 | bf16
  AmpListEdits edits;
  std::string fp32_nodes;
  std::string config;  // --amp-config FILE
};
// Resolves precision (sets *precision) and the autocast options (unused for fp32).
StatusOr<AutocastOptions> ResolveAmp(const AmpArgs& a, DType* precision);

// A compiled training step (and its evaluation pass) for one batch size.
struct CompiledTraining {
  plan::Plan train;
  plan::Plan eval;  // forward + loss, BatchNorm in inference mode; params are CONSTANT buffers
  TrainingGraphInfo info;
  std::vector<std::string> train_inputs;  // plan input order
  std::vector<std::string> eval_inputs;
};

// `make_model` yields a fresh copy of the forward model (called twice: train and eval graphs).
// `sample_dims` gives each data input's and the labels' per-sample shape (without the batch).
// With opts.precision f16/bf16 both graphs are painted by the autocast pass (`amp`).
StatusOr<CompiledTraining> CompileTraining(
    const std::function<StatusOr<std::unique_ptr<Graph>>()>& make_model, const TrainOptions& opts,
    const AutocastOptions& amp, int64_t batch,
    const std::map<std::string, std::vector<int64_t>>& sample_dims, const std::string& source);

// CompileTraining's second half: lowers `g`, already built by BuildMixedPrecisionTraining (which
// returned `info`), and compiles the evaluation pass from a fresh make_model().
StatusOr<CompiledTraining> LowerTraining(
    std::unique_ptr<Graph> g, TrainingGraphInfo info,
    const std::function<StatusOr<std::unique_ptr<Graph>>()>& make_model, const TrainOptions& opts,
    const AutocastOptions& amp, int64_t batch,
    const std::map<std::string, std::vector<int64_t>>& sample_dims, const std::string& source);

// Compiles only the evaluation pass for another batch size (the last, partial validation batch).
StatusOr<plan::Plan> CompileEval(std::unique_ptr<Graph> model, const TrainOptions& opts,
                                 const AutocastOptions& amp, int64_t batch,
                                 const std::map<std::string, std::vector<int64_t>>& sample_dims,
                                 const std::string& source);

// Builds the training graph of `g` in place and, for half precisions, paints it (the graph
// `ampc inspect` shows). `after`: stop after this stage ("train" or "autocast"; "" = all).
StatusOr<TrainingGraphInfo> BuildMixedPrecisionTraining(Graph& g, const TrainOptions& opts,
                                                        const AutocastOptions& amp,
                                                        const std::string& after = "",
                                                        AutocastStats* stats = nullptr);

// Copies every state of `from` whose name is an initializer of `to` (parameters and running
// statistics into the evaluation executor).
Status CopyStates(const cpu::CpuExecutor& from, cpu::CpuExecutor& to);

struct TrainConfig {
  std::string model;        // .onnx (compiled with `options`) or a training plan .ampc
  std::string data;         // FILE.npz or "fashion-mnist"
  std::string val_data;     // optional FILE.npz for validation
  TrainOptions options;
  AutocastOptions amp;      // used when options.precision is f16 or bf16
  bool precision_given = false;  // --precision on the command line (else the default, bf16)
  LrSchedule schedule;
  bool lr_given = false;    // --lr on the command line (overrides a plan's recorded rate)
  int64_t batch_size = 64;
  int64_t steps = 0;        // exactly one of steps / epochs
  int64_t epochs = 0;
  bool shuffle = true;
  uint64_t seed = 0;
  int threads = 0;
  std::string metrics;      // JSON lines; refuses to overwrite an existing file unless force
  std::string export_onnx;  // the trained model as ONNX (the forward model with new weights)
  std::string save_plan;    // the training plan with its trained state (resumable)
  int64_t checkpoint_every = 0;  // also write save_plan every N steps (atomically)
  bool force = false;
  bool progress = true;     // progress bar on stderr (when it is a terminal)
  bool quiet = false;
};

struct TrainSummary {
  int64_t steps = 0;
  double seconds = 0;
  double samples_per_s = 0;
  double last_loss = 0;
  std::optional<double> val_loss, val_accuracy;
  int64_t skipped = 0;           // steps skipped by the finite check
  bool finite_check = false;     // whether steps can be skipped at all
  std::optional<double> loss_scale;  // with loss scaling
};

StatusOr<TrainSummary> Train(const TrainConfig& cfg);

}  // namespace ampc
