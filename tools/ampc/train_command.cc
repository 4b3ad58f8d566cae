// `ampc train`: the driver side of training. It compiles the model with the compiler (or loads a
// saved training plan), maps the data onto the step's inputs, creates the executors and hands
// them to the training loop (runtime/train.h), then exports the trained model.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "codegen/mlir_compile.h"
#include "codegen/plan_target.h"
#include "compiler/compiler.h"
#include "ir/file_io.h"
#include "runtime/checkpoint.h"
#include "runtime/cpu/kernel.h"
#include "runtime/data/datasets.h"
#include "runtime/device_info.h"
#include "runtime/executor.h"
#include "runtime/train.h"
#include "tools/ampc/commands.h"

namespace ampc::cli {
Status CheckWritable(const std::string& path, const std::string& flag, const std::string& model,
                     bool force) {
  if (path.empty()) return Status::Ok();
  if (SameFile(model, path))
    return InvalidArgument(flag + " " + path + " would overwrite the model");
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !force) {
    return InvalidArgument(flag + " " + path + " exists; pass --force to overwrite it");
  }
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
    return NotFound(flag + " " + path + ": folder " + parent.string() + " does not exist");
  }
  return Status::Ok();
}

namespace {

bool IsPlanPath(const std::string& p) { return p.size() > 5 && p.substr(p.size() - 5) == ".ampc"; }
bool IsNpzPath(const std::string& p) { return p.size() > 4 && p.substr(p.size() - 4) == ".npz"; }

// The plan to train and how its inputs map onto data: compiled from an ONNX model (a forward
// model, or one that already is a training step) or loaded from a saved plan.
struct Prepared {
  Plan plan;
  Dataset train;
  std::optional<Dataset> val;
  int64_t batch = 0;
  ModelFactory make_model;  // empty for plans and ONNX training steps
};

StatusOr<Prepared> Prepare(TrainArgs& a) {
  Prepared out;
  std::optional<std::map<std::string, Tensor>> npz;  // the --data arrays, when read early
  std::unique_ptr<Graph> data_graph;  // the training graph (ONNX) or the plan's inputs
  TrainingGraphInfo built;            // what building data_graph found (forward models)
  plan::Training meta;
  bool onnx_training = false;
  if (IsPlanPath(a.model)) {
    ASSIGN_OR_RETURN(out.plan, LoadPlan(a.model));
    if (!out.plan.proto.has_training()) {
      return InvalidArgument(a.model +
                             ": not a training plan (compile one with ampc train --save-plan)");
    }
    meta = out.plan.proto.training();
    ASSIGN_OR_RETURN(data_graph, InputGraphOfPlan(out.plan.proto));
  } else {
    RETURN_IF_ERROR(ValidateTrainOptions(a.compile.train));
    if (IsNpzPath(a.data)) {
      // Read once, before the graph is built: the labels' shape tells the loss its class axis.
      ASSIGN_OR_RETURN(npz, ReadNpz(a.data));
      auto labels = npz->find(a.compile.train.loss.labels);
      if (labels != npz->end()) a.compile.train.loss.labels_dims = labels->second.dims();
    }
    const std::string path = a.model;
    out.make_model = [path]() { return ImportModel(path); };
    ASSIGN_OR_RETURN(data_graph, out.make_model());
    if (!data_graph->state_updates().empty()) {
      // Already a training graph (ONNX training_info): run it as it is.
      onnx_training = true;
      if (a.compile.precision != DType::kFloat32 && a.precision_given) {
        return Unimplemented(
            a.model +
            ": mixed precision for models that carry their own training "
            "algorithm (training_info) is not supported yet; use --precision fp32");
      }
      ASSIGN_OR_RETURN(meta, DescribeTrainingGraph(*data_graph, a.compile.train.loss.loss_output,
                                                   a.compile.train.optimizer.lr, a.model));
    } else {
      // Built once: its inputs map the data, then it is lowered for the batch size.
      ASSIGN_OR_RETURN(built, BuildTrainingStep(*data_graph, a.compile));
      if (!a.loop.quiet) {
        for (const std::string& w : built.warnings)
          std::fprintf(stderr, "ampc: warning: %s\n", w.c_str());
      }
      for (const auto& n : built.data_inputs) meta.add_data_inputs(n);
      meta.set_labels(built.labels);
    }
  }
  if (npz) {
    std::vector<std::string> needed(meta.data_inputs().begin(), meta.data_inputs().end());
    if (!meta.labels().empty()) needed.push_back(meta.labels());
    ASSIGN_OR_RETURN(out.train, DatasetFromArrays(a.data, std::move(*npz), *data_graph, needed));
  } else {
    ASSIGN_OR_RETURN(out.train, LoadTrainingData(a.data, "train", *data_graph, meta));
  }
  if (a.data == "fashion-mnist") {
    ASSIGN_OR_RETURN(out.val, LoadTrainingData(a.data, "test", *data_graph, meta));
  } else if (!a.val_data.empty()) {
    ASSIGN_OR_RETURN(out.val, LoadTrainingData(a.val_data, "test", *data_graph, meta));
  }
  if (IsPlanPath(a.model)) {
    const plan::PlanProto& p = out.plan.proto;
    const plan::Buffer& b0 = p.buffers(p.inputs(0).buffer());
    out.batch = b0.dims_size() ? b0.dims(0) : 0;
    if (a.batch_size != 0 && a.batch_size != out.batch) {
      return InvalidArgument("--batch-size " + std::to_string(a.batch_size) +
                             ": the plan was compiled for " + std::to_string(out.batch));
    }
    return out;
  }
  out.batch = a.batch_size;
  if (out.batch <= 0) return InvalidArgument("--batch-size must be > 0");
  SampleDims dims;
  for (const auto& [n, arr] : out.train.arrays) dims[n] = arr.dims();
  if (onnx_training) {
    CompileOptions as_is = a.compile;
    as_is.precision = DType::kFloat32;
    ASSIGN_OR_RETURN(out.plan, LowerTrainingGraph(*data_graph, meta, as_is, out.batch, dims));
    out.make_model = nullptr;
  } else {
    ASSIGN_OR_RETURN(out.plan, LowerTrainingStep(std::move(data_graph), built, out.make_model,
                                                 a.compile, out.batch, dims));
  }
  return out;
}

}  // namespace

Status RunTrain(TrainArgs a) {
  // The device: a plan file runs where it was compiled for (auto), an ONNX model where --device
  // says, compiled for that device's target.
  DeviceChoice dev;
  const bool plan_decides = IsPlanPath(a.model) && a.device == "auto";
  if (!plan_decides) {
    ASSIGN_OR_RETURN(dev, ResolveDevice(a.device));  // its notice waits until training starts
  }
  RETURN_IF_ERROR(ResolveAmp(a.amp, &a.compile));
  RETURN_IF_ERROR(ParseLossScale(a.loss_scale, &a.compile.loss_scale));
  Target target{"cpu", ""};
  if (!dev.cuda_target.empty()) {
    ASSIGN_OR_RETURN(target, ParseTarget(dev.cuda_target));
    // The CUDA runtime runs fused groups only as generated kernels (no per-op fallback).
    if (!HaveMlir()) {
      return Unimplemented("--device " + a.device +
                           ": this ampc was built without MLIR, which the GPU's kernels need");
    }
    a.compile.kernels.enabled = a.compile.kernels.required = true;
  }
  const BackendSupport support = cpu::CpuBackendSupportAs(target);
  a.compile.support = &support;
  a.compile.source = a.model;
  TrainLoopConfig& loop = a.loop;
  loop.model = a.model;
  if ((loop.steps > 0) == (loop.epochs > 0)) {
    return InvalidArgument("give exactly one of --steps N and --epochs E (both > 0)");
  }
  RETURN_IF_ERROR(loop.schedule.Validate());
  RETURN_IF_ERROR(CheckWritable(loop.metrics, "--metrics", a.model, a.force));
  RETURN_IF_ERROR(CheckWritable(a.export_onnx, "--export", a.model, a.force));
  RETURN_IF_ERROR(CheckWritable(loop.save_plan, "--save-plan", a.model, a.force));
  if (loop.checkpoint_every < 0 ||
      (loop.checkpoint_every > 0 && loop.save_plan.empty() && loop.checkpoint_dir.empty())) {
    return InvalidArgument(
        "--checkpoint-every N needs N > 0 and --checkpoint-dir DIR or --save-plan FILE");
  }
  if (!loop.checkpoint_dir.empty()) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(loop.checkpoint_dir, ec) && !fs::is_directory(loop.checkpoint_dir, ec)) {
      return InvalidArgument("--checkpoint-dir " + loop.checkpoint_dir +
                             " is a file, not a folder");
    }
    bool has_steps = false;
    if (fs::is_directory(loop.checkpoint_dir, ec)) {
      for (const auto& e : fs::directory_iterator(loop.checkpoint_dir, ec)) {
        has_steps = has_steps || e.path().filename().string().rfind("step-", 0) == 0;
      }
    }
    if (has_steps && a.resume.empty() && !a.force) {
      return InvalidArgument("--checkpoint-dir " + loop.checkpoint_dir +
                             " holds checkpoints; pass --resume to continue from them or --force "
                             "to add to them");
    }
  }
  if (!a.resume.empty() && IsPlanPath(a.model)) {
    return InvalidArgument(
        "--resume continues an ONNX model's training; a plan carries its own state");
  }
  if (IsPlanPath(a.model) && !a.export_onnx.empty()) {
    return InvalidArgument(
        "--export needs the ONNX model; a plan does not carry its forward graph");
  }
  ASSIGN_OR_RETURN(Prepared prep, Prepare(a));
  if (plan_decides) {
    if (prep.plan.proto.target().kind() == "cuda") {
      ASSIGN_OR_RETURN(dev, ResolveDevice("cuda"));
    } else {
      dev.device = "cpu";
    }
  }
  // Each plan goes to its executor; the step and its evaluation pass share one data section.
  const ExecutorOptions ex{dev.device, a.threads, true, a.cuda_graph};
  TrainSession s;
  s.batch = prep.batch;
  const bool has_eval = prep.plan.proto.training().eval().outputs_size() > 0;
  Plan eval = prep.plan.EvalPass();
  prep.plan.proto.mutable_training()->clear_eval();
  ASSIGN_OR_RETURN(s.step, CreateExecutor(std::move(prep.plan), ex));
  if (has_eval) {
    ASSIGN_OR_RETURN(s.eval, CreateExecutor(std::move(eval), ex));
  }
  if (has_eval && prep.val && prep.val->size % s.batch != 0 && prep.make_model) {
    SampleDims dims;
    for (const auto& [n, arr] : prep.val->arrays) dims[n] = arr.dims();
    ASSIGN_OR_RETURN(auto g, prep.make_model());
    ASSIGN_OR_RETURN(Plan tail,
                     CompileEvalPass(std::move(g), a.compile, prep.val->size % s.batch, dims));
    ASSIGN_OR_RETURN(s.eval_tail, CreateExecutor(std::move(tail), ex));
  }
  if (!a.resume.empty()) {
    // Checked against the compiled step before anything changes; the data order continues.
    ASSIGN_OR_RETURN(Checkpoint c, ReadCheckpoint(a.resume, s.step->plan()));
    RETURN_IF_ERROR(RestoreCheckpoint(c, *s.step));
    loop.start_step = c.steps_done;
    loop.seed = c.seed;
    if (!loop.quiet) {
      std::fprintf(stderr, "ampc: resuming from %s (%lld steps done)\n", c.path.c_str(),
                   static_cast<long long>(c.steps_done));
    }
  }
  // Printed only now, so that a run that fails earlier says one line: its error.
  if (!dev.notice.empty() && !loop.quiet) std::fprintf(stderr, "ampc: %s\n", dev.notice.c_str());
  ASSIGN_OR_RETURN(TrainSummary sum, Train(s, prep.train, prep.val, loop));
  if (!a.export_onnx.empty()) {
    RETURN_IF_ERROR(ExportTrainedModel(
        a.model, a.compile.train.untie_shared,
        [&](const std::string& name) { return s.step->GetState(name); }, a.export_onnx));
  }
  if (!loop.quiet) {
    std::printf("trained %lld steps in %.2f s (%.0f samples/s), last loss %.6f",
                static_cast<long long>(sum.steps), sum.seconds, sum.samples_per_s, sum.last_loss);
    if (sum.val_accuracy) std::printf(", val_accuracy %.4f", *sum.val_accuracy);
    if (sum.loss_scale) std::printf(", loss scale %g", *sum.loss_scale);
    if (sum.finite_check) std::printf(", %lld skipped", static_cast<long long>(sum.skipped));
    std::printf("\n");
  }
  return Status::Ok();
}

}  // namespace ampc::cli
