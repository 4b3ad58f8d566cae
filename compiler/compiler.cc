#include "compiler/compiler.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "codegen/fusion.h"
#include "codegen/lower.h"
#include "frontend/onnx.h"
#include "frontend/training/batchnorm_ops.h"
#include "ir/op_registry.h"
#include "ir/user_regex.h"
#include "passes/dead_code.h"
#include "passes/decompose_attention.h"
#include "passes/half_copies.h"
#include "passes/half_storage.h"
#include "passes/master_weights.h"
#include "passes/narrow_inputs.h"
#include "passes/pass.h"
#include "passes/specialize.h"
#include "passes/split_loss.h"

namespace ampc {
namespace {

// Binds the batch size into every data input, removes dead nodes and lowers.
StatusOr<Plan> LowerForBatch(Graph& g, int64_t batch, const SampleDims& dims,
                             const CompileOptions& o) {
  if (!o.support) return Internal("no backend support table given to the compiler");
  std::map<std::string, InputBinding> bindings;
  for (const Value* v : g.inputs()) {
    auto it = dims.find(v->name());
    if (it != dims.end()) {
      std::vector<int64_t> d = it->second;
      d[0] = batch;
      bindings[v->name()] = InputBinding{d, std::nullopt};
    } else if (v->type().has_rank && v->type().rank() == 0) {
      bindings[v->name()] = InputBinding{{}, std::nullopt};
    } else {
      return InvalidArgument("model input '" + v->name() +
                             "' is fed by neither the data set nor ampc");
    }
  }
  RETURN_IF_ERROR(SpecializeInputs(g, bindings));
  PassPipeline pipeline;
  pipeline.AddPass<DeadCodeElimination>();
  RETURN_IF_ERROR(pipeline.Run(g).status());
  if (o.kernels.enabled && (o.kernels.gpu_grain || o.support->target().kind == "cuda")) {
    RETURN_IF_ERROR(SplitLossPass().Run(g).status());
  }
  if (o.kernels.enabled) FuseElementwise(g, FusionOptions{.multi_tensor_args = kMaxKernelArgs});
  LowerOptions lo;
  lo.source = o.source;
  lo.precision = o.precision;
  lo.support = o.support;
  lo.kernels = o.kernels;
  lo.kernel_stats = o.kernel_stats;
  lo.warnings = o.warnings;
  return LowerToPlan(g, lo);
}

// bf16 on the CPU runtime pays for a GEMM-like node only where the product is dense enough for
// the time a bf16 GEMM saves (oneDNN with AVX512-BF16: twice the f32 rate per core) to beat
// converting its operands and result to and from bf16: at least 32
// multiply-adds per element of one product's operands and result, M*K*N / (M*K + K*N + M*N).
// Measured on a Zen 4 core: a bf16 GEMM saves about 5 ps per multiply-add and a cast costs about
// 160-300 ps per element, so the break-even density is 32-60. The density is below every one of
// M, K and N, so the rule is decided from the static dimensions alone, a symbolic one (the batch,
// a sequence) counting as unbounded: the decision is the model's, the same in `ampc inspect` and
// at any batch size, and the same for a layer's forward and gradient GEMMs (one product's three
// dimensions). The fixture MLP's first layer has 193 (784x256), its second 9.6 (256x10), the
// TinyGPT's linear layers 24-26, its attention products under 8 (the head size), the fixture
// CNN's convolutions 4-12 per image. The rule does not look at the CPU the plan is compiled on
// (a CPU without AVX512-BF16 widens bf16 for its GEMMs, so bf16 does not pay there at all), so
// that a model is painted the same on every machine.
constexpr double kMinHalfDensity = 32;

// A dimension's value, 0 when it is not static.
std::vector<double> StaticDims(const Value* v) {
  std::vector<double> out;
  if (!v || !v->type().has_rank) return out;
  for (const Dim& d : v->type().dims)
    out.push_back(d.is_static() ? static_cast<double>(d.value()) : 0);
  return out;
}

std::string HalfGemmCost(const Node& n) {
  const std::string& op = n.op_type();
  const bool ampc_matmul = n.domain() == kAmpcDomain && op == "MatMul";  // transA / transB
  if ((!n.domain().empty() && !ampc_matmul) || (op != "MatMul" && op != "Gemm" && op != "Conv")) {
    return "";
  }
  std::vector<double> a = StaticDims(n.num_inputs() > 0 ? n.input(0) : nullptr);
  std::vector<double> b = StaticDims(n.num_inputs() > 1 ? n.input(1) : nullptr);
  if (a.empty() || b.empty()) return "";
  if (op == "MatMul" && a.size() >= 2 && n.attr_int("transA", 0) != 0) {
    std::swap(a[a.size() - 1], a[a.size() - 2]);
  }
  if (op == "MatMul" && b.size() >= 2 && n.attr_int("transB", 0) != 0) {
    std::swap(b[b.size() - 1], b[b.size() - 2]);
  }
  double m = 0, k = 0, cols = 0;  // 0: symbolic
  auto times = [](double x, double y) { return x == 0 || y == 0 ? 0 : x * y; };
  if (op == "MatMul") {
    k = a.back();
    m = a.size() >= 2 ? a[a.size() - 2] : 1;
    cols = b.size() >= 2 ? b.back() : 1;
    if (b.size() <= 2) {  // B shared by every row of A: A's leading dimensions are rows too
      for (size_t i = 0; i + 2 < a.size(); ++i) m = times(m, a[i]);
    }
  } else if (op == "Gemm") {
    if (a.size() != 2 || b.size() != 2) return "";
    const bool ta = n.attr_int("transA", 0) != 0, tb = n.attr_int("transB", 0) != 0;
    m = ta ? a[1] : a[0];
    k = ta ? a[0] : a[1];
    cols = tb ? b[0] : b[1];
  } else {  // Conv, per image and group: [Co/g, C/g * kernel] x [C/g * kernel, output pixels]
    const std::vector<double> y = StaticDims(n.output(0));
    const double g = static_cast<double>(std::max<int64_t>(1, n.attr_int("group", 1)));
    if (y.size() < 3 || b.size() < 3) return "";
    m = b[0] / g;
    k = 1;
    for (size_t i = 1; i < b.size(); ++i) k = times(k, b[i]);
    cols = 1;
    for (size_t i = 2; i < y.size(); ++i) cols = times(cols, y[i]);
  }
  double inverse = 0;  // 1 / density = 1/M + 1/K + 1/N, symbolic dimensions adding nothing
  for (double d : {m, k, cols}) inverse += d > 0 ? 1 / d : 0;
  if (inverse * kMinHalfDensity <= 1) return "";
  auto dim = [](double d) { return d > 0 ? fmt::format("{:.0f}", d) : std::string("?"); };
  return fmt::format(
      "cpu: bf16 would not pay ({}x{}x{}: at most {:.1f} multiply-adds per element, under {:.0f}; "
      "--half-small-gemms forces bf16)",
      dim(m), dim(k), dim(cols), 1 / inverse, kMinHalfDensity);
}

bool DecomposesComposites(const CompileOptions& o) {
  return o.decompose_composites.value_or(o.support && o.support->target().kind == "cuda");
}

AutocastOptions AmpFor(const CompileOptions& o) {
  AutocastOptions a = o.amp;
  a.half = o.precision;
  if (o.half_cost_rule && o.support && o.support->target().kind == "cpu" &&
      o.precision == DType::kBFloat16 && !a.half_cost) {
    a.half_cost = HalfGemmCost;
  }
  if (o.support && !a.supports) {
    const BackendSupport* s = o.support;
    a.supports = [s](const Node& n, DType t) {
      return s->SupportsFloat(n.domain(), n.op_type(), t);
    };
  }
  return a;
}

// "/blocks.0/attn/qkv/MatMul" -> "blocks.0.attn.qkv": the legacy exporter names nodes by the
// module path they come from.
std::string ModulePath(const std::string& node_name) {
  if (node_name.empty() || node_name[0] != '/') return "";
  const size_t last = node_name.rfind('/');
  if (last == 0) return "";
  std::string m = node_name.substr(1, last - 1);
  std::replace(m.begin(), m.end(), '/', '.');
  return m;
}

// The state_dict keys of the trained states (see plan.proto TorchName).
void AddTorchNames(const Graph& g, const TrainingGraphInfo& info, plan::Training* t) {
  auto add = [&](const std::string& state, const std::string& name, bool transpose, bool count,
                 bool constant = false) {
    plan::TorchName* n = t->add_torch_names();
    n->set_state(state);
    n->set_name(name);
    n->set_transpose(transpose);
    n->set_step_count(count);
    n->set_constant(constant);
  };
  for (const std::string& p : info.params) {
    const Value* v = g.FindValue(p);
    std::string key = p;
    bool transpose = false;
    if (v && p.rfind("onnx::", 0) == 0 && v->type().rank() == 2) {
      // A folded Transpose of a Linear weight: the module's `weight`, stored [out, in]. Its
      // MatMul reads it directly (fp32), through a Cast, or through its half copy.
      std::vector<Use> uses = v->uses();
      if (const Value* h = HalfCopyOf(g, v))
        uses.insert(uses.end(), h->uses().begin(), h->uses().end());
      for (const Use& c : v->uses()) {
        if (c.user->op_type() == "Cast" && c.user->output(0))
          uses.insert(uses.end(), c.user->output(0)->uses().begin(),
                      c.user->output(0)->uses().end());
      }
      for (const Use& u : uses) {
        const Node& n = *u.user;
        const std::string module = ModulePath(n.name());
        if (u.operand != 1 || module.empty()) continue;
        if (n.op_type() == "MatMul" || (n.op_type() == "Gemm" && n.attr_int("transB", 0) == 0)) {
          key = module + ".weight";
          transpose = true;
          break;
        }
      }
    }
    add(p, key, transpose, false);
  }
  // Parameters torch.onnx.export merged: each alias is its own state_dict key.
  std::set<std::string> trained(info.params.begin(), info.params.end());
  for (const Node* n : g.nodes()) {
    const Value* in = n->input(0);
    const Value* out = n->output(0);
    if (n->op_type() == "Identity" && in && out && trained.count(in->name()) &&
        !out->name().empty() && out->name()[0] != '/' && out->name().rfind("onnx::", 0) != 0) {
      add(in->name(), out->name(), false, false);
    }
  }
  // The module's other tensors (registered buffers such as a causal mask, frozen parameters):
  // load_state_dict(strict=True) wants them too. Exporter-made constants are not the module's.
  std::set<std::string> named(trained);
  named.insert(info.running_stats.begin(), info.running_stats.end());
  for (const std::string& n : info.model_initializers) {
    const Value* v = g.FindValue(n);
    if (named.count(n) || !v || v->kind() != ValueKind::kInitializer || n.empty() || n[0] == '/' ||
        n.rfind("onnx::", 0) == 0 || n.rfind("val_", 0) == 0 || n.rfind("_val", 0) == 0) {
      continue;
    }
    add(n, n, false, false, /*constant=*/true);
  }
  for (const std::string& s : info.running_stats) {
    add(s, s, false, false);
    const std::string suffix = ".running_mean";
    if (s.size() > suffix.size() &&
        s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0) {
      add(kStepState, s.substr(0, s.size() - suffix.size()) + ".num_batches_tracked", false, true);
    }
  }
}

std::string CompileOptionsJson(const CompileOptions& o, const TrainingGraphInfo& info) {
  const OptimizerOptions& p = o.train.optimizer;
  nlohmann::json j{{"precision", PrecisionName(o.precision)},
                   {"loss", o.train.loss.kind},
                   {"optimizer", p.kind},
                   {"lr", p.lr},
                   {"momentum", p.momentum},
                   {"dampening", p.dampening},
                   {"nesterov", p.nesterov},
                   {"weight_decay", p.weight_decay},
                   {"betas", {p.beta1, p.beta2}},
                   {"eps", p.eps},
                   {"clip_grad_norm", p.clip_grad_norm},
                   {"loss_scale", info.loss_scale_mode},
                   {"freeze", o.train.freeze},
                   {"trainable", o.train.train},
                   {"untie_shared", o.train.untie_shared},
                   {"source", o.source}};
  return j.dump();
}

}  // namespace

Status ResolveAmp(const AmpArgs& a, CompileOptions* o) {
  ASSIGN_OR_RETURN(o->precision, ParsePrecision(a.precision));
  AmpListEdits edits;
  AutocastOptions& amp = o->amp;
  if (!a.config.empty()) RETURN_IF_ERROR(ReadAmpConfig(a.config, &edits, &amp.fp32_nodes));
  ASSIGN_OR_RETURN(amp.lists, ApplyListEdits(DefaultAmpLists(), edits));
  ASSIGN_OR_RETURN(amp.lists, ApplyListEdits(amp.lists, a.edits));
  if (!a.fp32_nodes.empty()) amp.fp32_nodes = a.fp32_nodes;
  if (!amp.fp32_nodes.empty()) {
    RETURN_IF_ERROR(UserRegex::Compile(amp.fp32_nodes, "--fp32-nodes").status());
  }
  o->half_cost_rule = !a.half_small_gemms;
  o->narrow_inputs = true;
  return Status::Ok();
}

StatusOr<std::unique_ptr<Graph>> ImportModel(const std::string& path) {
  return ImportOnnxFile(path);
}

StatusOr<TrainingGraphInfo> BuildTrainingStep(Graph& g, const CompileOptions& o,
                                              const std::string& after, AutocastStats* stats) {
  if (!after.empty() &&
      std::find(std::begin(kStages), std::end(kStages), after) == std::end(kStages)) {
    return InvalidArgument("--after " + after +
                           ": expected master-weights, train, loss-scaling, autocast or fusion");
  }
  RETURN_IF_ERROR(ValidateTrainOptions(o.train));
  RETURN_IF_ERROR(ValidateLossScale(o.loss_scale, o.precision));
  {
    PassPipeline masters;
    if (DecomposesComposites(o)) masters.AddPass<DecomposeAttentionPass>();
    masters.AddPass<MasterWeightsPass>();
    RETURN_IF_ERROR(masters.Run(g).status());
  }
  TrainingGraphInfo info;
  if (after == "master-weights") return info;
  TrainOptions train = o.train;
  train.decompose_batchnorm = DecomposesComposites(o);
  ASSIGN_OR_RETURN(info, BuildTrainingGraph(g, train));
  if (after == "train") return info;
  PassPipeline pipeline;
  LossScalingPass& scaling = pipeline.AddPass<LossScalingPass>(o.loss_scale, o.precision);
  RETURN_IF_ERROR(pipeline.Run(g).status());
  info.loss_scale_mode = scaling.mode();
  info.finite_check = scaling.finite_check();
  for (const std::string& w : scaling.warnings()) info.warnings.push_back(w);
  if (after == "loss-scaling") return info;
  if (o.precision != DType::kFloat32) {
    PassPipeline amp;
    AutocastPass& pass = amp.AddPass<AutocastPass>(AmpFor(o));
    if (o.narrow_inputs) amp.AddPass<NarrowInputsPass>(info.data_inputs);
    if (o.half_copies.value_or(o.support && o.support->target().kind == "cuda")) {
      amp.AddPass<HalfCopiesPass>();
    }
    RETURN_IF_ERROR(amp.Run(g).status());
    if (stats) *stats = pass.stats();
  }
  // Lowering fuses after the batch size is bound; shown here, groups follow symbolic shapes.
  if (after == "fusion")
    FuseElementwise(g, FusionOptions{.allow_symbolic = true, .multi_tensor_args = kMaxKernelArgs});
  return info;
}

StatusOr<Plan> CompileEvalPass(std::unique_ptr<Graph> model, const CompileOptions& o, int64_t batch,
                               const SampleDims& dims) {
  RETURN_IF_ERROR(ToInferenceMode(*model));
  if (DecomposesComposites(o)) {
    RETURN_IF_ERROR(DecomposeAttentionPass().Run(*model).status());
    RETURN_IF_ERROR(DecomposeInferenceBatchNorms(*model));
  }
  RETURN_IF_ERROR(MasterWeightsPass().Run(*model).status());
  if (o.train.untie_shared) RETURN_IF_ERROR(UntieSharedInitializers(*model, true).status());
  RETURN_IF_ERROR(AttachEvalLoss(*model, o.train.loss).status());
  if (o.precision != DType::kFloat32) {
    PassPipeline pipeline;
    pipeline.AddPass<AutocastPass>(AmpFor(o));
    if (o.narrow_inputs) {
      std::vector<std::string> data;
      for (const auto& [name, d] : dims) data.push_back(name);
      pipeline.AddPass<NarrowInputsPass>(std::move(data));
    }
    RETURN_IF_ERROR(pipeline.Run(*model).status());
  }
  return LowerForBatch(*model, batch, dims, o);
}

StatusOr<Plan> LowerTrainingStep(std::unique_ptr<Graph> g, const TrainingGraphInfo& info,
                                 const ModelFactory& make_model, const CompileOptions& o,
                                 int64_t batch, const SampleDims& dims) {
  plan::Training names;
  AddTorchNames(*g, info, &names);
  ASSIGN_OR_RETURN(Plan step, LowerForBatch(*g, batch, dims, o));
  *step.proto.mutable_training()->mutable_torch_names() = names.torch_names();
  g.reset();  // the plan holds the weights now; do not keep a second copy while compiling eval
  ASSIGN_OR_RETURN(std::unique_ptr<Graph> e, make_model());
  ASSIGN_OR_RETURN(Plan eval, CompileEvalPass(std::move(e), o, batch, dims));
  plan::Training* t = step.proto.mutable_training();
  for (const auto& n : info.data_inputs) t->add_data_inputs(n);
  t->set_labels(info.labels);
  t->set_loss(info.loss);
  t->set_logits(info.logits);
  t->set_class_axis(info.class_axis);
  t->set_lr_input(kLrInput);
  t->set_lr(o.train.optimizer.lr);
  for (const auto& n : info.params) t->add_params(n);
  for (const auto& n : info.running_stats) t->add_running_stats(n);
  if (info.finite_check) t->set_loss_scale_mode(info.loss_scale_mode);
  t->set_stop_on_non_finite_loss(!info.finite_check);
  t->set_compile_options(CompileOptionsJson(o, info));
  step.proto.add_metrics(info.loss);
  for (const auto& io : step.proto.outputs()) {
    if (io.name() == kGradNormOutput) step.proto.add_metrics(kGradNormOutput);
  }
  if (info.finite_check) {
    step.proto.add_metrics(kLossScaleState);
    step.proto.add_metrics(kSkippedState);
  }
  ASSIGN_OR_RETURN(Plan out, AttachEvalPass(std::move(step), eval));
  RETURN_IF_ERROR(VerifyPlan(out).WithContext("compiled training plan"));
  RETURN_IF_ERROR(VerifyPlan(out.EvalPass()).WithContext("compiled evaluation pass"));
  return out;
}

StatusOr<plan::Training> DescribeTrainingGraph(const Graph& g, const std::string& loss_output,
                                               double lr, const std::string& source) {
  plan::Training t;
  std::vector<const Value*> floats, ints;
  for (const Value* v : g.inputs()) {
    if (v->type().has_rank && v->type().rank() == 0) continue;
    (IsInteger(v->dtype()) ? ints : floats).push_back(v);
  }
  // One float input and one integer input: the integer one holds the labels (fashion-mnist feeds
  // it); otherwise every non-scalar input is a data array named like the input.
  if (floats.size() == 1 && ints.size() == 1) {
    t.add_data_inputs(floats[0]->name());
    t.set_labels(ints[0]->name());
  } else {
    for (const Value* v : g.inputs()) {
      if (!(v->type().has_rank && v->type().rank() == 0)) t.add_data_inputs(v->name());
    }
  }
  std::string loss = loss_output;
  for (const Value* v : g.outputs()) {
    if (!loss.empty()) break;
    auto n = v->type().NumElements();
    if (IsFloat(v->dtype()) && n && *n == 1) loss = v->name();
  }
  bool found = false;
  for (const Value* v : g.outputs()) found = found || v->name() == loss;
  if (loss.empty() || !found) {
    return InvalidArgument(source +
                           ": cannot tell which output is the loss; name it with --loss-output");
  }
  t.set_loss(loss);
  t.set_class_axis(-1);
  t.set_lr(lr);
  return t;
}

StatusOr<Plan> LowerTrainingGraph(Graph& g, const plan::Training& meta, const CompileOptions& o,
                                  int64_t batch, const SampleDims& dims) {
  ASSIGN_OR_RETURN(Plan p, LowerForBatch(g, batch, dims, o));
  *p.proto.mutable_training() = meta;
  p.proto.mutable_training()->set_stop_on_non_finite_loss(true);
  p.proto.add_metrics(meta.loss());
  RETURN_IF_ERROR(VerifyPlan(p).WithContext("compiled training plan"));
  return p;
}

StatusOr<Plan> CompileForInputs(std::unique_ptr<Graph> graph, const std::vector<Tensor>& inputs,
                                DType precision, const std::string& source,
                                const BackendSupport& support) {
  Graph& g = *graph;
  if (inputs.size() != g.inputs().size()) {
    return InvalidArgument("the model has " + std::to_string(g.inputs().size()) + " inputs, " +
                           std::to_string(inputs.size()) + " were given");
  }
  std::map<std::string, InputBinding> bindings;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value* v = g.inputs()[i];
    const Tensor& t = inputs[i];
    if (t.dtype() != v->dtype()) {
      return InvalidArgument("input '" + v->name() + "' is " + t.type().ToString() +
                             " but the model expects " + v->type().ToString());
    }
    InputBinding b{t.dims(), std::nullopt};
    if (IsInteger(t.dtype()) && t.dims().size() <= 1 && t.NumElements() <= 64)
      b.values = t.AsInt64s();
    bindings[v->name()] = std::move(b);
  }
  RETURN_IF_ERROR(SpecializeInputs(g, bindings));
  PassPipeline pipeline;
  if (precision != DType::kFloat32) pipeline.AddPass<HalfStoragePass>(precision);
  pipeline.AddPass<DeadCodeElimination>();
  RETURN_IF_ERROR(pipeline.Run(g).status());
  LowerOptions lo;
  lo.source = source;
  lo.precision = precision;
  lo.support = &support;
  return LowerToPlan(g, lo);
}

Status ExportTrainedModel(const std::string& model_path, bool untie_shared,
                          const std::function<StatusOr<Tensor>(const std::string&)>& trained,
                          const std::string& out_path) {
  ASSIGN_OR_RETURN(std::unique_ptr<Graph> g, ImportOnnxFile(model_path));
  if (untie_shared) RETURN_IF_ERROR(UntieSharedInitializers(*g, true).status());
  for (Value* v : g->initializers()) {
    auto t = trained(v->name());
    if (!t.ok() || t->dims() != v->initializer()->dims()) continue;
    if (t->dtype() == v->dtype()) {
      v->set_initializer(std::move(*t));
    } else if (t->dtype() == DType::kFloat32 && IsHalf(v->dtype())) {
      // An fp32 master of a half-stored parameter (passes/master_weights): stored as the model did.
      v->set_initializer(t->ConvertFloat(v->dtype()));
    }
  }
  return ExportOnnxFile(*g, out_path);
}

}  // namespace ampc
