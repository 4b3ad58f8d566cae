// The `ampc` subcommands. Each returns a Status; main() turns it into a one-line error and the
// exit code (0 ok, 1 failure while running, 2 bad input or usage).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "ir/status.h"
#include "runtime/train.h"

namespace ampc::cli {

struct CompileArgs {
  std::string model;
  // -o: compile the training step into a plan (without it: import, verify and print a summary).
  std::string output;
  std::string target = "cpu";  // cpu | cuda | cuda:sm_80 | cuda:sm_90
  int64_t batch_size = 64;
  std::vector<std::string> dims;  // NAME=N for symbolic dimensions other than the batch
  CompileOptions compile;         // training, loss-scaling, autocast and kernel options
  AmpArgs amp;
  std::string loss_scale;
  std::string kernels = "auto";
  bool force = false;
  // --synthetic-weights SEED: SynthesizeData (codegen/plan.h) before the plan is written.
  std::optional<uint64_t> synthetic_seed;
};
// `ampc compile MODEL [-o PLAN --target T]`: the summary, or the training step compiled for a
// target (generated kernels for its CPU or GPU) and written as a plan, with the kernel counts and
// the compile time.
Status RunCompile(const CompileArgs& args);
Status RunCompileToPlan(const CompileArgs& args);  // tools/ampc/compile_command.cc

// An output file may be written: not the model itself, absent unless `force`, in a folder that
// exists.
Status CheckWritable(const std::string& path, const std::string& flag, const std::string& model,
                     bool force);

struct InspectArgs {
  std::string model;
  std::string format = "text";  // text | json | dot | onnx
  std::string output;           // empty: stdout
  bool full_weights = false;    // print every initializer's data in text form
  // Showing the (mixed-precision) training graph instead of the model: set when any training
  // or precision option is given.
  bool training = false;
  CompileOptions options;
  AmpArgs amp;
  std::string loss_scale;
  std::string after;              // a stage of compiler.h's kStages (default: all stages)
  std::vector<std::string> dims;  // NAME=VALUE for symbolic dimensions in the estimates
};
Status RunInspect(const InspectArgs& args);

struct EvalArgs {
  std::string model;   // .onnx or a compiled .ampc plan
  std::string inputs;  // folder with input_K.pb or NAME.npy
  std::string out;     // folder for output_K.pb
  std::string precision = "fp32";
  std::string save_plan;  // also write the compiled plan here
  int threads = 0;
  bool force = false;  // overwrite existing output files
};
Status RunEval(const EvalArgs& args);

struct BenchArgs {
  std::string model;
  std::string inputs;
  std::string precision = "fp32";
  int threads = 0;
  int iters = 50;
  int warmup = 5;
  bool json = false;
};
// Times inference on the CPU runtime: median and mean milliseconds per call, samples/s.
Status RunBench(const BenchArgs& args);

Status RunDevices();

struct ExportArgs {
  std::string model;    // the forward ONNX model
  std::string weights;  // a training plan (.ampc) or a safetensors checkpoint (.safetensors)
  std::string output;   // -o: the inference model (.onnx)
  std::string precision = "fp32";
  bool force = false;
};
// `ampc export`: an inference ONNX model with trained weights (compiler/inference_export.h).
Status RunExport(const ExportArgs& args);

struct BenchTrainArgs {
  std::string model;
  std::string data;                      // fashion-mnist | FILE.npz
  std::vector<std::string> train_flags;  // passed to each `ampc train` run as given
  bool json = false;
  std::string plot;  // FILE.svg | FILE.png (gnuplot)
  bool force = false;
};
// `ampc bench --data`: trains the model in fp32, fp16 (dynamic loss scaling) and bf16, each in its
// own `ampc train` process, and compares speed, peak memory, validation loss and accuracy.
Status RunBenchTraining(const BenchTrainArgs& args);

struct TrainArgs {
  std::string model;             // .onnx (compiled with `compile`) or a training plan .ampc
  std::string data;              // FILE.npz or "fashion-mnist"
  std::string val_data;          // optional FILE.npz for validation
  CompileOptions compile;        // training, loss-scaling and autocast options
  AmpArgs amp;                   // resolved into `compile`
  std::string loss_scale;        // --loss-scale
  bool precision_given = false;  // --precision on the command line (else the default, bf16)
  int64_t batch_size = 64;       // 0: the plan's
  TrainLoopConfig loop;
  std::string export_onnx;  // the trained model as ONNX (the forward model with new weights)
  std::string resume;       // a checkpoint folder (or one of its step folders) to continue
  bool force = false;
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  bool cuda_graph = true;       // --no-cuda-graph: launch the step's work one call at a time
  int threads = 0;
};
// `ampc train`: compiles the model (or loads a plan), loads the data, creates the executors,
// runs the loop (runtime/train.h), exports, and prints a summary line.
Status RunTrain(TrainArgs args);

// --dim NAME=N flags (N > 0).
StatusOr<std::map<std::string, int64_t>> ParseDimFlags(const std::vector<std::string>& flags);

// Resolves --kernels auto | generated | per-op into `k` (generated without MLIR is an error).
Status ResolveKernelMode(const std::string& mode, KernelOptions* k);

// Parses --loss-scale: dynamic | none | a positive number (static scale).
// (Declared here for the inspect and train commands.)
Status ParseLossScale(const std::string& s, LossScaleOptions* o);

}  // namespace ampc::cli
