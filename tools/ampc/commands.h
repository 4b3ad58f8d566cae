// The `ampc` subcommands. Each returns a Status; main() turns it into a one-line error and the
// exit code (0 ok, 1 failure while running, 2 bad input or usage).
#pragma once

#include <string>
#include <vector>

#include "ir/status.h"
#include "runtime/train.h"

namespace ampc::cli {

struct CompileArgs {
  std::string model;
};
Status RunCompile(const CompileArgs& args);

struct InspectArgs {
  std::string model;
  std::string format = "text";  // text | json | dot | onnx
  std::string output;           // empty: stdout
  bool full_weights = false;    // print every initializer's data in text form
  // Showing the (mixed-precision) training graph instead of the model: set when any training
  // or precision option is given.
  bool training = false;
  TrainOptions options;
  AmpArgs amp;
  std::string loss_scale;
  std::string after;            // train | autocast (default: all stages)
  std::vector<std::string> dims;  // NAME=VALUE for symbolic dimensions in the estimates
};
Status RunInspect(const InspectArgs& args);

struct EvalArgs {
  std::string model;      // .onnx or a compiled .ampc plan
  std::string inputs;     // folder with input_K.pb or NAME.npy
  std::string out;        // folder for output_K.pb
  std::string precision = "fp32";
  std::string save_plan;  // also write the compiled plan here
  int threads = 0;
  bool force = false;     // overwrite existing output files
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

// `ampc train`: validates --device, resolves the mixed-precision options, runs the loop, prints a
// summary line.
Status RunTrain(TrainConfig cfg, const AmpArgs& amp, const std::string& loss_scale,
                const std::string& device);

// Parses --loss-scale: dynamic | none | a positive number (static scale).
Status ParseLossScale(const std::string& s, LossScaleOptions* o);

}  // namespace ampc::cli
