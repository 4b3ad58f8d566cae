// The compiler driver: the one place that knows the order of the pipeline. Every command that
// turns a model into something runnable (`ampc train`, `ampc eval`, `ampc bench`,
// `ampc inspect --after`, `ampc compile -o`) calls it; the runtime never does.
//
//   import (frontend/onnx)
//   -> master-weights      (passes/master_weights: fp32 masters for half-stored parameters)
//   -> training graph      (frontend/training: loss, backward, clipping, optimizer, step counter)
//   -> loss-scaling        (passes/loss_scaling: seed x S, unscale, AllFinite, skip, scale update)
//   -> autocast            (passes: paint-precision, insert-casts, fold-casts; fp16/bf16 only)
//   -> cleanup             (passes/dead_code) after the batch size is bound (passes/specialize)
//   -> lowering            (codegen/lower: Plan, checked against the target's BackendSupport)
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codegen/kernel_compiler.h"
#include "codegen/plan.h"
#include "codegen/plan_target.h"
#include "frontend/training/training_graph.h"
#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"
#include "passes/autocast.h"
#include "passes/loss_scaling.h"

namespace ampc {

struct CompileOptions {
  DType precision = DType::kFloat32;  // fp32 | fp16 | bf16 (autocast's half type)
  TrainOptions train;                 // loss, optimizer, freeze, untie, seed
  LossScaleOptions loss_scale;
  AutocastOptions amp;  // lists, --fp32-nodes, dims (amp.half follows precision)
  // What the target backend executes (from the runtime backend, e.g. cpu::CpuBackendSupport());
  // required by every function that lowers.
  const BackendSupport* support = nullptr;
  std::string source;  // the model path, recorded in plans and messages
  // Fusion and generated kernels (codegen/fusion.h, codegen/kernel_compiler.h); off by default in
  // the library, on by default on the command line.
  KernelOptions kernels;
  KernelBuildStats* kernel_stats = nullptr;
  std::vector<std::string>* warnings = nullptr;  // fusion groups left per-op, and why
  // The CPU target's bf16 cost rule (compiler.cc, HalfGemmCost): GEMMs and convolutions too small
  // or too thin for bf16 to beat fp32 on this machine stay fp32. Off in the library, on on the
  // command line (--half-small-gemms turns it off).
  bool half_cost_rule = false;
  // passes/narrow_inputs: a data input the step only casts to f16/bf16 becomes a half input (the
  // data loader converts the data set once). Off in the library (whose callers may feed f32
  // batches to the plan), on on the command line, whose loader reads the plan's input types.
  bool narrow_inputs = false;
  // passes/half_copies: the optimizer writes each cast parameter's f16/bf16 copy (no Cast in the
  // step); the same bits either way. Unset: on for CUDA targets (one kernel and one pass over
  // each parameter fewer per step), off for the CPU, where it measured slower: the fixture MLP's
  // bf16 step 2.5% (AdamW + copy 141 us against AdamW 86 us + Cast 21 us, one thread, Zen 4;
  // the copy's stores land on lines the GEMMs left in L3, the Cast's in a hot arena buffer).
  std::optional<bool> half_copies;
  // Composite ops as the ONNX ops they are defined by, before autodiff: opset 23's Attention
  // (passes/decompose_attention) and BatchNormalization, in training form and in the evaluation
  // pass (frontend/training/batchnorm_ops). Unset: on for CUDA targets, whose runtime has no
  // kernel for them; off for the CPU, whose kernels recompute in the backward pass what autodiff
  // of the ops keeps (attention's probabilities). `--composite-ops ops|kernels|auto`.
  std::optional<bool> decompose_composites;
};

// The mixed-precision choices of the command line: --precision, list edits, --fp32-nodes and
// --amp-config (whose lists are applied first, then the flags').
struct AmpArgs {
  std::string precision = "bf16";  // fp32 | fp16 | bf16
  AmpListEdits edits;
  std::string fp32_nodes;
  std::string config;             // --amp-config FILE
  bool half_small_gemms = false;  // --half-small-gemms: no CPU cost rule
};
// Resolves the precision and the autocast options into `o`.
Status ResolveAmp(const AmpArgs& a, CompileOptions* o);

// Each training data input's per-sample shape (without the batch dimension).
using SampleDims = std::map<std::string, std::vector<int64_t>>;
// A fresh copy of the forward model (the evaluation pass is built from its own copy).
using ModelFactory = std::function<StatusOr<std::unique_ptr<Graph>>()>;

StatusOr<std::unique_ptr<Graph>> ImportModel(const std::string& path);

// The pipeline stages `--after` can stop at.
inline constexpr const char* kStages[] = {"master-weights", "train", "loss-scaling", "autocast",
                                          "fusion"};

// Builds the training step of forward model `g` in place, up to lowering: master weights, the
// training graph, loss scaling and (fp16/bf16) autocast. `after`: stop after that stage ("" =
// all). The result records the loss-scaling mode and the warnings for the user.
StatusOr<TrainingGraphInfo> BuildTrainingStep(Graph& g, const CompileOptions& o,
                                              const std::string& after = "",
                                              AutocastStats* stats = nullptr);

// Lowers a step built by BuildTrainingStep for a batch size, with the `training` metadata, the
// metrics record and the evaluation pass (compiled from make_model()) attached; the evaluation
// pass shares the step's data section (its parameters alias the step's states).
StatusOr<Plan> LowerTrainingStep(std::unique_ptr<Graph> g, const TrainingGraphInfo& info,
                                 const ModelFactory& make_model, const CompileOptions& o,
                                 int64_t batch, const SampleDims& dims);

// The evaluation pass alone (forward + loss, BatchNorm in inference mode, Dropout off) for a
// batch size: the last, partial validation batch.
StatusOr<Plan> CompileEvalPass(std::unique_ptr<Graph> model, const CompileOptions& o, int64_t batch,
                               const SampleDims& dims);

// A model that already is a training step (ONNX training_info): what its inputs and outputs mean
// (data inputs, labels, loss), and the step lowered as it is.
StatusOr<plan::Training> DescribeTrainingGraph(const Graph& g, const std::string& loss_output,
                                               double lr, const std::string& source);
StatusOr<Plan> LowerTrainingGraph(Graph& g, const plan::Training& meta, const CompileOptions& o,
                                  int64_t batch, const SampleDims& dims);

// Inference: `graph` (consumed) compiled for `inputs`, given in the order of graph.inputs(), with
// every float tensor stored in `precision` (passes/half_storage) for fp16/bf16.
StatusOr<Plan> CompileForInputs(std::unique_ptr<Graph> graph, const std::vector<Tensor>& inputs,
                                DType precision, const std::string& source,
                                const BackendSupport& support);

// Writes the forward model of `model_path` as ONNX with each initializer replaced by the trained
// value `trained(name)` returns (when it has the same type), atomically.
Status ExportTrainedModel(const std::string& model_path, bool untie_shared,
                          const std::function<StatusOr<Tensor>(const std::string&)>& trained,
                          const std::string& out_path);

}  // namespace ampc
