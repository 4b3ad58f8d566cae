#include "runtime/train.h"

#include <fmt/format.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "codegen/lower.h"
#include "frontend/onnx.h"
#include "ir/file_io.h"
#include "passes/autocast.h"
#include "passes/dead_code.h"
#include "passes/pass.h"
#include "passes/specialize.h"
#include "runtime/cpu/convert.h"
#include "runtime/data/datasets.h"

namespace ampc {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}


// Binds the batch size into every data input and lowers the graph.
StatusOr<plan::Plan> LowerForBatch(Graph& g, int64_t batch,
                                   const std::map<std::string, std::vector<int64_t>>& sample_dims,
                                   const std::string& source, DType precision) {
  std::map<std::string, InputBinding> bindings;
  for (const Value* v : g.inputs()) {
    auto it = sample_dims.find(v->name());
    if (it != sample_dims.end()) {
      std::vector<int64_t> dims = it->second;
      dims[0] = batch;
      bindings[v->name()] = InputBinding{dims, std::nullopt};
    } else if (v->type().has_rank && v->type().rank() == 0) {
      bindings[v->name()] = InputBinding{{}, std::nullopt};
    } else {
      return InvalidArgument("model input '" + v->name() + "' is fed by neither the data set nor ampc");
    }
  }
  RETURN_IF_ERROR(SpecializeInputs(g, bindings));
  PassPipeline pipeline;
  pipeline.AddPass<DeadCodeElimination>();
  RETURN_IF_ERROR(pipeline.Run(g).status());
  LowerOptions lo;
  lo.source = source;
  lo.precision = precision == DType::kFloat16 ? "fp16" : precision == DType::kBFloat16 ? "bf16" : "fp32";
  return LowerToPlan(g, lo);
}

std::vector<std::string> InputNames(const plan::Plan& p) {
  std::vector<std::string> v;
  for (const auto& io : p.inputs()) v.push_back(io.name());
  return v;
}

int OutputIndex(const plan::Plan& p, const std::string& name) {
  for (int i = 0; i < p.outputs_size(); ++i) {
    if (p.outputs(i).name() == name) return i;
  }
  return -1;
}

// Sum of per-sample correct predictions (argmax over the class axis equals the label).
int64_t CountCorrect(const Tensor& logits, const Tensor& labels, int64_t axis, int64_t ignore,
                     int64_t* counted) {
  const auto& d = logits.dims();
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= d[i];
  for (size_t i = axis + 1; i < d.size(); ++i) inner *= d[i];
  const int64_t c = d[axis];
  auto lab = labels.AsInt64s();
  int64_t correct = 0;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t in = 0; in < inner; ++in) {
      const int64_t label = (*lab)[o * inner + in];
      if (label == ignore) continue;
      int64_t best = 0;
      double best_v = -INFINITY;
      for (int64_t k = 0; k < c; ++k) {
        const double v = cpu::Load<double>(logits.bytes().data(), logits.dtype(), (o * c + k) * inner + in);
        if (v > best_v) {
          best_v = v;
          best = k;
        }
      }
      correct += best == label;
      ++*counted;
    }
  }
  return correct;
}

std::string Bar(double frac, int width) {
  const int fill = static_cast<int>(frac * width);
  std::string s(width, ' ');
  for (int i = 0; i < fill && i < width; ++i) s[i] = '=';
  if (fill < width) s[fill] = '>';
  return s;
}

Status CheckWritable(const std::string& path, const std::string& flag, const std::string& model,
                     bool force) {
  if (path.empty()) return Status::Ok();
  if (SameFile(model, path)) return InvalidArgument(flag + " " + path + " would overwrite the model");
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

}  // namespace


StatusOr<AutocastOptions> ResolveAmp(const AmpArgs& a, DType* precision) {
  if (a.precision == "fp32") {
    *precision = DType::kFloat32;
  } else if (a.precision == "fp16") {
    *precision = DType::kFloat16;
  } else if (a.precision == "bf16") {
    *precision = DType::kBFloat16;
  } else {
    return InvalidArgument("--precision " + a.precision + ": expected fp32, fp16 or bf16");
  }
  AutocastOptions o;
  o.half = *precision == DType::kFloat16 ? DType::kFloat16 : DType::kBFloat16;
  AmpListEdits edits;
  if (!a.config.empty()) RETURN_IF_ERROR(ReadAmpConfig(a.config, &edits, &o.fp32_nodes));
  ASSIGN_OR_RETURN(o.lists, ApplyListEdits(DefaultAmpLists(), edits));
  ASSIGN_OR_RETURN(o.lists, ApplyListEdits(o.lists, a.edits));
  if (!a.fp32_nodes.empty()) o.fp32_nodes = a.fp32_nodes;
  try {
    std::regex re(o.fp32_nodes);
  } catch (const std::regex_error&) {
    return InvalidArgument("--fp32-nodes '" + o.fp32_nodes + "' is not a valid regular expression");
  }
  return o;
}

StatusOr<TrainingGraphInfo> BuildMixedPrecisionTraining(Graph& g, const TrainOptions& opts,
                                                        const AutocastOptions& amp,
                                                        const std::string& after,
                                                        AutocastStats* stats) {
  if (!after.empty() && after != "train" && after != "autocast") {
    return InvalidArgument("--after " + after + ": expected train or autocast");
  }
  ASSIGN_OR_RETURN(TrainingGraphInfo info, BuildTrainingGraph(g, opts));
  if (after == "train" || opts.precision == DType::kFloat32) return info;
  AutocastOptions a = amp;
  a.half = opts.precision;
  PassPipeline pipeline;
  AutocastPass& pass = pipeline.AddPass<AutocastPass>(a);
  RETURN_IF_ERROR(pipeline.Run(g).status());
  if (stats) *stats = pass.stats();
  return info;
}

StatusOr<CompiledTraining> CompileTraining(
    const std::function<StatusOr<std::unique_ptr<Graph>>()>& make_model, const TrainOptions& opts,
    const AutocastOptions& amp, int64_t batch,
    const std::map<std::string, std::vector<int64_t>>& sample_dims, const std::string& source) {
  ASSIGN_OR_RETURN(std::unique_ptr<Graph> g, make_model());
  ASSIGN_OR_RETURN(TrainingGraphInfo info, BuildMixedPrecisionTraining(*g, opts, amp));
  return LowerTraining(std::move(g), std::move(info), make_model, opts, amp, batch, sample_dims, source);
}

StatusOr<CompiledTraining> LowerTraining(
    std::unique_ptr<Graph> g, TrainingGraphInfo info,
    const std::function<StatusOr<std::unique_ptr<Graph>>()>& make_model, const TrainOptions& opts,
    const AutocastOptions& amp, int64_t batch,
    const std::map<std::string, std::vector<int64_t>>& sample_dims, const std::string& source) {
  CompiledTraining c;
  c.info = std::move(info);
  ASSIGN_OR_RETURN(c.train, LowerForBatch(*g, batch, sample_dims, source, opts.precision));
  g.reset();  // the plan holds the weights now; do not keep a second copy while compiling eval
  ASSIGN_OR_RETURN(std::unique_ptr<Graph> e, make_model());
  ASSIGN_OR_RETURN(c.eval, CompileEval(std::move(e), opts, amp, batch, sample_dims, source));
  c.train_inputs = InputNames(c.train);
  c.eval_inputs = InputNames(c.eval);
  plan::Training* t = c.train.mutable_training();
  for (const auto& n : c.info.data_inputs) t->add_data_inputs(n);
  t->set_labels(c.info.labels);
  t->set_loss(c.info.loss);
  t->set_logits(c.info.logits);
  t->set_class_axis(c.info.class_axis);
  t->set_lr_input(kLrInput);
  t->set_lr(opts.optimizer.lr);
  for (const auto& n : c.info.params) t->add_params(n);
  for (const auto& n : c.info.running_stats) t->add_running_stats(n);
  if (c.info.finite_check) t->set_loss_scale_mode(c.info.loss_scale_mode);
  *t->mutable_eval() = c.eval;
  return c;
}

StatusOr<plan::Plan> CompileEval(std::unique_ptr<Graph> model, const TrainOptions& opts,
                                 const AutocastOptions& amp, int64_t batch,
                                 const std::map<std::string, std::vector<int64_t>>& sample_dims,
                                 const std::string& source) {
  RETURN_IF_ERROR(ToInferenceMode(*model));
  if (opts.untie_shared) RETURN_IF_ERROR(UntieSharedInitializers(*model, true).status());
  RETURN_IF_ERROR(AttachEvalLoss(*model, opts.loss).status());
  if (opts.precision != DType::kFloat32) {
    AutocastOptions a = amp;
    a.half = opts.precision;
    PassPipeline pipeline;
    pipeline.AddPass<AutocastPass>(a);
    RETURN_IF_ERROR(pipeline.Run(*model).status());
  }
  return LowerForBatch(*model, batch, sample_dims, source, opts.precision);
}

Status CopyStates(const cpu::CpuExecutor& from, cpu::CpuExecutor& to) {
  for (const std::string& name : from.StateNames()) {
    if (!to.HasData(name)) continue;
    ASSIGN_OR_RETURN(Tensor t, from.GetState(name));
    RETURN_IF_ERROR(to.SetState(name, t));
  }
  return Status::Ok();
}

namespace {

// Everything the loop needs, from an ONNX model or a saved training plan.
struct Session {
  plan::Plan train;
  std::unique_ptr<cpu::CpuExecutor> step;
  std::unique_ptr<cpu::CpuExecutor> eval;
  std::unique_ptr<cpu::CpuExecutor> eval_tail;  // the last, partial validation batch
  std::unique_ptr<Graph> train_graph;           // unbound, for data mapping (ONNX models)
  std::function<StatusOr<std::unique_ptr<Graph>>()> make_model;  // empty for plans
  int64_t batch = 0;
  double compiled_lr = 0;
};

// A fresh training graph (unbound) to map data onto, or, for a plan, a graph whose inputs have
// the plan's input types.
StatusOr<std::unique_ptr<Graph>> InputGraphOfPlan(const plan::Plan& p) {
  auto g = std::make_unique<Graph>();
  for (const auto& io : p.inputs()) {
    const plan::Buffer& b = p.buffers(io.buffer());
    auto dt = DTypeFromName(b.dtype());
    if (!dt) return InvalidArgument("plan input '" + io.name() + "' has an unknown dtype");
    std::vector<Dim> dims(b.dims().begin(), b.dims().end());
    RETURN_IF_ERROR(g->AddInput(io.name(), TensorType(*dt, dims)).status());
  }
  return g;
}

StatusOr<Dataset> LoadData(const std::string& spec, const std::string& split, const Graph& g,
                           const plan::Training& t) {
  std::vector<std::string> needed(t.data_inputs().begin(), t.data_inputs().end());
  if (!t.labels().empty()) needed.push_back(t.labels());
  if (spec == "fashion-mnist") {
    if (t.data_inputs_size() != 1) {
      return InvalidArgument("fashion-mnist feeds one image input; the model has " +
                             std::to_string(t.data_inputs_size()));
    }
    return DatasetFromFashionMnist(kFashionMnistDir, split, g, t.data_inputs(0), t.labels());
  }
  if (spec.size() < 4 || spec.substr(spec.size() - 4) != ".npz") {
    return InvalidArgument("--data " + spec + ": expected FILE.npz or fashion-mnist");
  }
  return DatasetFromNpz(spec, g, needed);
}

// The plan's inputs in order: data arrays by name; scalars the data does not hold are fed by
// ampc, an f32/f64 one with the learning rate, an integer one with the applied-step count.
std::vector<Tensor> OrderInputs(const plan::Plan& p, std::map<std::string, Tensor>& batch, double lr,
                                int64_t step) {
  std::vector<Tensor> in;
  for (const auto& io : p.inputs()) {
    auto it = batch.find(io.name());
    if (it != batch.end()) {
      in.push_back(std::move(it->second));
      continue;
    }
    const auto dt = DTypeFromName(p.buffers(io.buffer()).dtype()).value_or(DType::kFloat32);
    in.push_back(IsInteger(dt) ? Tensor::Scalar(dt, static_cast<double>(step)) : Tensor::Scalar(dt, lr));
  }
  return in;
}

// For a model that already is a training graph: data inputs are the non-scalar inputs (scalar
// ones are the learning rate and the step count ampc feeds), the loss is --loss-output or the
// first floating scalar output.
StatusOr<plan::Training> DescribeOnnxTraining(const Graph& g, const TrainConfig& cfg) {
  if (cfg.options.precision != DType::kFloat32 && cfg.precision_given) {
    return Unimplemented(cfg.model + ": mixed precision for models that carry their own training "
                         "algorithm (training_info) is not supported yet; use --precision fp32");
  }
  plan::Training t;
  std::vector<const Value*> floats, ints;
  for (const Value* v : g.inputs()) {
    if (v->type().has_rank && v->type().rank() == 0) continue;
    (IsInteger(v->dtype()) ? ints : floats).push_back(v);
  }
  // One float input and one integer input: the integer one holds the labels (fashion-mnist
  // feeds it); otherwise every non-scalar input is a data array named like the input.
  if (floats.size() == 1 && ints.size() == 1) {
    t.add_data_inputs(floats[0]->name());
    t.set_labels(ints[0]->name());
  } else {
    for (const Value* v : g.inputs()) {
      if (!(v->type().has_rank && v->type().rank() == 0)) t.add_data_inputs(v->name());
    }
  }
  std::string loss = cfg.options.loss.loss_output;
  for (const Value* v : g.outputs()) {
    if (!loss.empty()) break;
    auto n = v->type().NumElements();
    if (IsFloat(v->dtype()) && n && *n == 1) loss = v->name();
  }
  bool found = false;
  for (const Value* v : g.outputs()) found = found || v->name() == loss;
  if (loss.empty() || !found) {
    return InvalidArgument(cfg.model + ": cannot tell which output is the loss; name it with --loss-output");
  }
  t.set_loss(loss);
  t.set_class_axis(-1);
  t.set_lr(cfg.options.optimizer.lr);
  return t;
}

struct EvalResult {
  double loss = 0;
  std::optional<double> accuracy;
};

StatusOr<EvalResult> Evaluate(Session& s, const Dataset& val, const plan::Training& t,
                              const TrainConfig& cfg) {
  RETURN_IF_ERROR(CopyStates(*s.step, *s.eval));
  const plan::Plan& ep = s.eval->plan();
  const int loss_i = OutputIndex(ep, t.loss());
  if (loss_i < 0) return InvalidArgument("the evaluation plan has no loss output '" + t.loss() + "'");
  const int logits_i = t.logits().empty() ? -1 : OutputIndex(ep, t.logits());
  const std::vector<std::string> names = InputNames(ep);
  double loss_sum = 0;
  int64_t samples = 0, correct = 0, counted = 0;
  const int64_t full = val.size / s.batch;
  const int64_t tail = val.size % s.batch;
  if (tail && !s.eval_tail && s.make_model) {
    std::map<std::string, std::vector<int64_t>> dims;
    for (const auto& [n, a] : val.arrays) dims[n] = a.dims();
    ASSIGN_OR_RETURN(auto g, s.make_model());
    ASSIGN_OR_RETURN(plan::Plan p, CompileEval(std::move(g), cfg.options, cfg.amp, tail, dims, cfg.model));
    ASSIGN_OR_RETURN(s.eval_tail, cpu::CpuExecutor::Create(std::move(p), cfg.threads));
  }
  if (s.eval_tail) RETURN_IF_ERROR(CopyStates(*s.step, *s.eval_tail));
  for (int64_t b = 0; b <= full; ++b) {
    const int64_t count = b < full ? s.batch : tail;
    if (count == 0 || (b == full && !s.eval_tail)) break;
    cpu::CpuExecutor& ex = b < full ? *s.eval : *s.eval_tail;
    ASSIGN_OR_RETURN(auto batch, GatherBatch(val, {}, b * s.batch, count));
    Tensor labels = t.labels().empty() ? Tensor() : batch.at(t.labels());
    std::vector<Tensor> in = OrderInputs(ex.plan(), batch, 0, 0);
    ASSIGN_OR_RETURN(std::vector<Tensor> out, ex.Run(in));
    loss_sum += out[loss_i].AsDoubles()->at(0) * static_cast<double>(count);
    samples += count;
    if (logits_i >= 0 && t.class_axis() >= 0 && !t.labels().empty()) {
      const Tensor& lg = out[logits_i];
      const auto axis = static_cast<size_t>(t.class_axis());
      if (axis >= lg.dims().size() || lg.dims()[axis] <= 0 || !labels.AsInt64s() ||
          labels.NumElements() * lg.dims()[axis] != lg.NumElements()) {
        return InvalidArgument("the evaluation plan's logits " + lg.type().ToString() +
                               " do not match the labels " + labels.type().ToString());
      }
      correct += CountCorrect(lg, labels, t.class_axis(), -100, &counted);
    }
  }
  EvalResult r;
  if (samples == 0) return InvalidArgument("the validation set is smaller than one batch");
  r.loss = loss_sum / static_cast<double>(samples);
  if (counted > 0) r.accuracy = static_cast<double>(correct) / static_cast<double>(counted);
  return r;
}

// The training plan with its current state and the evaluation pass (with the current weights).
Status SaveTrainingPlan(const Session& s, const std::string& path) {
  plan::Plan p = s.step->plan();
  if (s.eval) *p.mutable_training()->mutable_eval() = s.eval->plan();
  return SavePlan(p, path);
}

Status ExportTrained(const TrainConfig& cfg, const cpu::CpuExecutor& ex) {
  ASSIGN_OR_RETURN(std::unique_ptr<Graph> g, ImportOnnxFile(cfg.model));
  if (cfg.options.untie_shared) RETURN_IF_ERROR(UntieSharedInitializers(*g, true).status());
  for (Value* v : g->initializers()) {
    if (!ex.HasData(v->name())) continue;
    auto t = ex.GetState(v->name());
    if (t.ok() && t->dtype() == v->dtype() && t->dims() == v->initializer()->dims()) {
      v->set_initializer(std::move(*t));
    }
  }
  return ExportOnnxFile(*g, cfg.export_onnx);
}

}  // namespace

StatusOr<TrainSummary> Train(const TrainConfig& cfg) {
#ifdef __GLIBC__
  // Every step allocates and frees batch-sized buffers; keep them in the heap instead of a fresh
  // mmap (and its page faults) each time.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
  if ((cfg.steps > 0) == (cfg.epochs > 0)) {
    return InvalidArgument("give exactly one of --steps N and --epochs E (both > 0)");
  }
  RETURN_IF_ERROR(cfg.schedule.Validate());
  RETURN_IF_ERROR(CheckWritable(cfg.metrics, "--metrics", cfg.model, cfg.force));
  RETURN_IF_ERROR(CheckWritable(cfg.export_onnx, "--export", cfg.model, cfg.force));
  RETURN_IF_ERROR(CheckWritable(cfg.save_plan, "--save-plan", cfg.model, cfg.force));
  if (cfg.checkpoint_every < 0 || (cfg.checkpoint_every > 0 && cfg.save_plan.empty())) {
    return InvalidArgument("--checkpoint-every N needs N > 0 and --save-plan FILE");
  }
  const bool is_plan = cfg.model.size() > 5 && cfg.model.substr(cfg.model.size() - 5) == ".ampc";
  if (is_plan && !cfg.export_onnx.empty()) {
    return InvalidArgument("--export needs the ONNX model; a plan does not carry its forward graph");
  }
  Session s;
  std::unique_ptr<Graph> data_graph;  // the training graph (ONNX models) or the plan's inputs
  TrainingGraphInfo built;            // what building data_graph found (ONNX forward models)
  plan::Training meta;
  bool onnx_training = false;
  if (is_plan) {
    ASSIGN_OR_RETURN(s.train, LoadPlan(cfg.model));
    if (!s.train.has_training()) {
      return InvalidArgument(cfg.model + ": not a training plan (compile one with ampc train --save-plan)");
    }
    meta = s.train.training();
    ASSIGN_OR_RETURN(data_graph, InputGraphOfPlan(s.train));
  } else {
    RETURN_IF_ERROR(ValidateTrainOptions(cfg.options));
    const std::string path = cfg.model;
    s.make_model = [path]() { return ImportOnnxFile(path); };
    ASSIGN_OR_RETURN(data_graph, s.make_model());
    if (!data_graph->state_updates().empty()) {
      // Already a training graph (ONNX training_info): run it as it is.
      onnx_training = true;
      ASSIGN_OR_RETURN(meta, DescribeOnnxTraining(*data_graph, cfg));
    } else {
      // Built once: its inputs map the data, then it is lowered for the batch size.
      ASSIGN_OR_RETURN(built, BuildMixedPrecisionTraining(*data_graph, cfg.options, cfg.amp));
      if (!cfg.quiet) {
        for (const std::string& w : built.warnings) std::fprintf(stderr, "ampc: warning: %s\n", w.c_str());
      }
      for (const auto& n : built.data_inputs) meta.add_data_inputs(n);
      meta.set_labels(built.labels);
    }
  }
  ASSIGN_OR_RETURN(Dataset train, LoadData(cfg.data, "train", *data_graph, meta));
  std::optional<Dataset> val;
  if (cfg.data == "fashion-mnist") {
    ASSIGN_OR_RETURN(val, LoadData(cfg.data, "test", *data_graph, meta));
  } else if (!cfg.val_data.empty()) {
    ASSIGN_OR_RETURN(val, LoadData(cfg.val_data, "test", *data_graph, meta));
  }
  if (is_plan) {
    const plan::Buffer& b0 = s.train.buffers(s.train.inputs(0).buffer());
    s.batch = b0.dims_size() ? b0.dims(0) : 0;
    if (cfg.batch_size != 0 && cfg.batch_size != s.batch) {
      return InvalidArgument("--batch-size " + std::to_string(cfg.batch_size) + ": the plan was compiled for " +
                             std::to_string(s.batch));
    }
  } else {
    s.batch = cfg.batch_size;
    if (s.batch <= 0) return InvalidArgument("--batch-size must be > 0");
    std::map<std::string, std::vector<int64_t>> dims;
    for (const auto& [n, a] : train.arrays) dims[n] = a.dims();
    if (onnx_training) {
      ASSIGN_OR_RETURN(s.train, LowerForBatch(*data_graph, s.batch, dims, cfg.model, DType::kFloat32));
      *s.train.mutable_training() = meta;
    } else {
      ASSIGN_OR_RETURN(CompiledTraining c,
                       LowerTraining(std::move(data_graph), std::move(built), s.make_model, cfg.options,
                                     cfg.amp, s.batch, dims, cfg.model));
      s.train = std::move(c.train);
      meta = s.train.training();
    }
  }
  data_graph.reset();
  if (train.size < s.batch) {
    return InvalidArgument("the training set has " + std::to_string(train.size) +
                           " samples, fewer than one batch of " + std::to_string(s.batch));
  }
  // Each plan is moved into its executor (no copies of the weights); a saved plan gets the
  // evaluation pass attached again (SaveTrainingPlan).
  plan::Plan eval_plan = std::move(*s.train.mutable_training()->mutable_eval());
  s.train.mutable_training()->clear_eval();
  meta.clear_eval();
  ASSIGN_OR_RETURN(s.step, cpu::CpuExecutor::Create(std::move(s.train), cfg.threads));
  if (eval_plan.outputs_size() > 0) {
    ASSIGN_OR_RETURN(s.eval, cpu::CpuExecutor::Create(std::move(eval_plan), cfg.threads));
  } else if (val && !cfg.quiet) {
    std::fprintf(stderr, "ampc: warning: this training graph has no evaluation pass; validation is skipped\n");
  }

  LrSchedule sched = cfg.schedule;
  if (!cfg.lr_given) sched.base = meta.lr();
  const int64_t per_epoch = train.size / s.batch;
  const int64_t total = cfg.steps > 0 ? cfg.steps : per_epoch * cfg.epochs;
  if (sched.total_steps <= 0) sched.total_steps = total;
  RETURN_IF_ERROR(sched.Validate());

  std::ofstream metrics;
  if (!cfg.metrics.empty()) {
    metrics.open(cfg.metrics, std::ios::trunc);
    if (!metrics) return NotFound("--metrics " + cfg.metrics + ": cannot open for writing");
  }
  auto emit = [&](const nlohmann::json& j) {
    if (metrics.is_open()) metrics << j.dump() << '\n' << std::flush;
  };
  const bool bar = cfg.progress && !cfg.quiet && isatty(2);
  const std::vector<std::string> names = InputNames(s.step->plan());
  const int loss_i = OutputIndex(s.step->plan(), meta.loss());
  if (loss_i < 0) return InvalidArgument(cfg.model + ": the training plan has no loss output '" + meta.loss() + "'");
  const int norm_i = OutputIndex(s.step->plan(), kGradNormOutput);
  TrainSummary sum;
  const auto start = Clock::now();
  int64_t first_step = 0;  // > 0 when resuming a saved plan
  if (auto step0 = s.step->GetState(kStepState); step0.ok()) first_step = step0->AsInt64s()->at(0);
  int64_t step = 0;
  int64_t epoch = 0;
  std::vector<int64_t> order;
  double train_seconds = 0;  // in steps only (no evaluation)
  const std::vector<std::string> states = s.step->StateNames();
  const bool has_scaler = std::find(states.begin(), states.end(), kSkippedState) != states.end();
  if (has_scaler) {
    ASSIGN_OR_RETURN(Tensor sk, s.step->GetState(kSkippedState));
    sum.skipped = sk.AsInt64s()->at(0);
    sum.finite_check = true;
  }
  while (step < total) {
    const int64_t in_epoch = step % per_epoch;
    if (in_epoch == 0) {
      ++epoch;
      order = cfg.shuffle ? ShuffledOrder(train.size, cfg.seed + static_cast<uint64_t>(epoch - 1))
                          : std::vector<int64_t>();
    }
    const auto t0 = Clock::now();
    const double lr = sched.At(first_step + step);
    ASSIGN_OR_RETURN(auto batch, GatherBatch(train, order, in_epoch * s.batch, s.batch));
    std::vector<Tensor> in = OrderInputs(s.step->plan(), batch, lr, first_step + step);
    ASSIGN_OR_RETURN(std::vector<Tensor> out, s.step->Run(in));
    const double dt = Seconds(t0, Clock::now());
    train_seconds += dt;
    const double loss = out[loss_i].AsDoubles()->at(0);
    ++step;
    sum.last_loss = loss;
    nlohmann::json j{{"step", first_step + step}, {"epoch", epoch}, {"loss", loss}, {"lr", lr},
                     {"samples_per_s", static_cast<double>(s.batch) / dt}};
    if (norm_i >= 0) j["grad_norm"] = out[norm_i].AsDoubles()->at(0);
    if (has_scaler) {
      ASSIGN_OR_RETURN(Tensor sc, s.step->GetState(kLossScaleState));
      ASSIGN_OR_RETURN(Tensor sk, s.step->GetState(kSkippedState));
      const int64_t skipped = sk.AsInt64s()->at(0);
      j["loss_scale"] = sc.AsDoubles()->at(0);
      j["skipped"] = skipped > sum.skipped;
      j["skipped_total"] = skipped;
      sum.skipped = skipped;
      if (meta.loss_scale_mode() != "none") sum.loss_scale = sc.AsDoubles()->at(0);
    }
    emit(j);
    if (bar && (step % 10 == 0 || step == total)) {
      const double el = Seconds(start, Clock::now());
      std::fprintf(stderr, "\r[%s] %lld/%lld loss %.4f  %.0f samples/s ", Bar(double(step) / total, 30).c_str(),
                   static_cast<long long>(step), static_cast<long long>(total), loss,
                   static_cast<double>(step * s.batch) / el);
      std::fflush(stderr);
    }
    if (cfg.checkpoint_every > 0 && step % cfg.checkpoint_every == 0 && step < total) {
      RETURN_IF_ERROR(SaveTrainingPlan(s, cfg.save_plan).WithContext("--checkpoint-every"));
    }
    const bool epoch_end = step % per_epoch == 0 || step == total;  // and after the last step
    if (epoch_end && val && s.eval) {
      ASSIGN_OR_RETURN(EvalResult r, Evaluate(s, *val, meta, cfg));
      nlohmann::json e{{"epoch", epoch}, {"step", first_step + step}, {"val_loss", r.loss}};
      if (r.accuracy) e["val_accuracy"] = *r.accuracy;
      e["elapsed_s"] = Seconds(start, Clock::now());
      e["train_s"] = train_seconds;
      emit(e);
      sum.val_loss = r.loss;
      sum.val_accuracy = r.accuracy;
      if (!cfg.quiet) {
        if (bar) std::fprintf(stderr, "\n");
        std::printf("epoch %lld: val_loss %.4f%s\n", static_cast<long long>(epoch), r.loss,
                    r.accuracy ? fmt::format(" val_accuracy {:.4f}", *r.accuracy).c_str() : "");
        std::fflush(stdout);
      }
    }
  }
  if (bar) std::fprintf(stderr, "\n");
  sum.steps = step;
  sum.seconds = Seconds(start, Clock::now());
  sum.samples_per_s = static_cast<double>(step * s.batch) / sum.seconds;
  if (!cfg.export_onnx.empty()) RETURN_IF_ERROR(ExportTrained(cfg, *s.step));
  if (!cfg.save_plan.empty()) RETURN_IF_ERROR(SaveTrainingPlan(s, cfg.save_plan));
  return sum;
}

}  // namespace ampc
