#include "passes/loss_scaling.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "ir/node_emitter.h"
#include "ir/op_registry.h"
#include "ir/training_names.h"

namespace ampc {
namespace {

// The most values one AllFinite checks: its kernel's buffers are these and the flag.
constexpr size_t kAllFiniteInputs = 31;

bool IsOptimizer(const Node& n) {
  return n.domain() == kAmpcDomain && (n.op_type() == "SGD" || n.op_type() == "Adam") &&
         RoleOf(n) == "optimizer";
}

// The gradient an optimizer node's update starts from: its input 3, or what the clip nodes in
// front of it (role=clip, gradient as input 0) scale.
Value* RawGradient(const Node& opt) {
  Value* g = opt.input(3);
  while (g && g->producer() && RoleOf(*g->producer()) == "clip") g = g->producer()->input(0);
  return g;
}

}  // namespace

Status ValidateLossScale(const LossScaleOptions& o, DType precision) {
  if (o.mode != "auto" && o.mode != "dynamic" && o.mode != "static" && o.mode != "none") {
    return InvalidArgument("--loss-scale '" + o.mode + "' is not dynamic, none or a number");
  }
  if (!(o.init > 0) || !std::isfinite(o.init)) {
    return InvalidArgument("--loss-scale " + std::to_string(o.init) + " is out of range");
  }
  if (!(o.growth >= 1) || !(o.backoff > 0 && o.backoff <= 1) || o.interval < 1) {
    return InvalidArgument("loss scaler: growth >= 1, 0 < backoff <= 1 and interval >= 1 required");
  }
  if (precision != DType::kFloat32 && precision != DType::kFloat16 &&
      precision != DType::kBFloat16) {
    return InvalidArgument("training precision must be fp32, fp16 or bf16");
  }
  if (precision == DType::kFloat16 && ResolveLossScaleMode(o, precision) == "none" &&
      !o.allow_unscaled_fp16) {
    return InvalidArgument(
        "fp16 training without loss scaling lets small gradients underflow to zero; use "
        "--loss-scale dynamic (the default) or a static scale, or pass --allow-unscaled-fp16");
  }
  return Status::Ok();
}

std::string ResolveLossScaleMode(const LossScaleOptions& o, DType precision) {
  if (o.mode != "auto") return o.mode;
  return precision == DType::kFloat16 ? "dynamic" : "none";
}

StatusOr<bool> LossScalingPass::Run(Graph& g) {
  RETURN_IF_ERROR(ValidateLossScale(opts_, precision_));
  mode_ = ResolveLossScaleMode(opts_, precision_);
  finite_check_ = precision_ != DType::kFloat32 || mode_ != "none";
  warnings_.clear();
  if (precision_ == DType::kFloat16 && mode_ == "none") {
    warnings_.push_back(
        "fp16 without loss scaling (--allow-unscaled-fp16): gradients below 6e-8 "
        "flush to zero");
  }
  if (!finite_check_) return false;
  std::vector<Node*> optimizers;
  for (Node* n : g.nodes()) {
    if (IsOptimizer(*n)) optimizers.push_back(n);
  }
  if (optimizers.empty()) {
    return InvalidArgument(
        "loss scaling and the finite check need a training step with "
        "optimizer nodes (build it with the training builder first)");
  }
  if (g.outputs().empty() || !IsFloat(g.outputs()[0]->dtype()) ||
      g.outputs()[0]->type().NumElements().value_or(0) != 1) {
    return InvalidArgument("the training step's first output must be its scalar loss");
  }
  Value* loss = g.outputs()[0];
  Value* seed = g.FindValue(kLossSeed);
  if (mode_ != "none" && (!seed || seed->kind() != ValueKind::kInitializer)) {
    return InvalidArgument(std::string("loss scaling needs the autodiff seed initializer '") +
                           kLossSeed + "'");
  }
  const double init = mode_ == "none" ? 1.0 : opts_.init;
  ASSIGN_OR_RETURN(Value * scale,
                   g.AddInitializer(kLossScaleState, Tensor::Scalar(DType::kFloat32, init)));
  ASSIGN_OR_RETURN(Value * tracker, g.AddInitializer(kGrowthTrackerState, Tensor::ScalarInt64(0)));
  ASSIGN_OR_RETURN(Value * skipped, g.AddInitializer(kSkippedState, Tensor::ScalarInt64(0)));

  // The raw gradients, in optimizer order, each once.
  std::vector<Value*> raw;
  std::unordered_set<Value*> seen;
  for (Node* opt : optimizers) {
    Value* r = RawGradient(*opt);
    if (!r) return InvalidArgument(opt->Describe() + ": has no gradient input");
    if (seen.insert(r).second) raw.push_back(r);
  }
  NodeEmitter e(g, "loss-scale");
  Value* inv = nullptr;
  if (mode_ != "none") {
    Value* scaled_seed = scale;
    if (seed->dtype() != DType::kFloat32) {  // an f16 or f64 loss: the seed has its type
      ASSIGN_OR_RETURN(
          scaled_seed,
          e.One("Cast", "ampc.loss_scale_seed", {scale},
                {{"to", Attribute(static_cast<int64_t>(DTypeToOnnxNumber(seed->dtype())))}}));
    }
    g.ReplaceAllUsesWith(seed, scaled_seed);
    ASSIGN_OR_RETURN(inv, e.One("Reciprocal", "ampc.inv_loss_scale", {scale}));
  }
  std::vector<Value*> checked{loss};
  for (Value* r : raw) {
    Value* u = r;
    if (inv) {
      if (u->dtype() != DType::kFloat32 && u->dtype() != DType::kFloat64) {
        ASSIGN_OR_RETURN(u, e.One("Cast", "grad_f32", {u}, {{"to", Attribute(int64_t{1})}}));
      }
      Value* k = inv;
      if (u->dtype() == DType::kFloat64) {
        ASSIGN_OR_RETURN(k,
                         e.One("Cast", "inv_scale_f64", {inv}, {{"to", Attribute(int64_t{11})}}));
      }
      ASSIGN_OR_RETURN(u, e.One("Mul", "grad_unscaled", {u, k}));
      // Only the update reads the unscaled gradient; the backward pass keeps the scaled one.
      const std::vector<Use> uses = r->uses();
      for (const Use& use : uses) {
        const std::string& role = RoleOf(*use.user);
        if (role == "clip" || role == "optimizer") use.user->SetInput(use.operand, u);
      }
    }
    checked.push_back(u);
  }
  // One AllFinite per kAllFiniteInputs values, joined with And: a generated kernel takes at most
  // 32 buffers (codegen's kMaxKernelArgs), and the CUDA runtime runs no per-op AllFinite (GPT-2
  // small checks 149 gradients and its loss).
  Value* finite = nullptr;
  const size_t chunks = (checked.size() + kAllFiniteInputs - 1) / kAllFiniteInputs;
  for (size_t c = 0; c < chunks; ++c) {
    const auto first = checked.begin() + static_cast<std::ptrdiff_t>(c * kAllFiniteInputs);
    const std::vector<Value*> part(
        first, first + static_cast<std::ptrdiff_t>(
                           std::min(kAllFiniteInputs, checked.size() - c * kAllFiniteInputs)));
    const std::string name =
        chunks == 1 ? "ampc.all_finite" : "ampc.all_finite_" + std::to_string(c);
    ASSIGN_OR_RETURN(Value * f, e.One("AllFinite", name, part, {}, kAmpcDomain));
    if (finite) {
      ASSIGN_OR_RETURN(finite, e.One("And", "ampc.all_finite", {finite, f}));
    } else {
      finite = f;
    }
  }
  AttributeMap attrs{{"growth_factor", Attribute(static_cast<float>(opts_.growth))},
                     {"backoff_factor", Attribute(static_cast<float>(opts_.backoff))},
                     {"growth_interval", Attribute(opts_.interval)},
                     {"dynamic", Attribute(int64_t{mode_ == "dynamic" ? 1 : 0})}};
  ASSIGN_OR_RETURN(auto next, e.Multi("UpdateLossScale", kAmpcDomain, "ampc.update_loss_scale",
                                      {scale, tracker, skipped, finite}, 3, std::move(attrs)));
  g.AddStateUpdate(scale, next[0]);
  g.AddStateUpdate(tracker, next[1]);
  g.AddStateUpdate(skipped, next[2]);
  // Skip: the `apply` input of every optimizer (SGD: input 5 after the optional momentum).
  for (Node* opt : optimizers) {
    const int apply_at = opt->op_type() == "SGD" ? 5 : 6;
    if (opt->num_inputs() > apply_at)
      return InvalidArgument(opt->Describe() + ": is gated already");
    while (opt->num_inputs() < apply_at) opt->AddInput(nullptr);
    opt->AddInput(finite);
    RETURN_IF_ERROR(InferNode(*opt));
  }
  // A skipped step is not counted (torch: optimizer.step() is not called).
  for (const StateUpdate& u : g.state_updates()) {
    if (u.state->name() != kStepState) continue;
    Node* add = u.next->producer();
    if (!add || add->op_type() != "Add" || add->num_inputs() != 2 || add->input(0) != u.state) {
      return InvalidArgument(std::string("the step counter '") + kStepState +
                             "' is not updated by Add(step, increment)");
    }
    ASSIGN_OR_RETURN(Value * applied,
                     e.One("Cast", "ampc.step_applied", {finite}, {{"to", Attribute(int64_t{7})}}));
    applied->producer()->annotations()["role"] = "state";
    add->SetInput(1, applied);
  }
  RETURN_IF_ERROR(g.TopologicalSort());
  return true;
}

}  // namespace ampc
