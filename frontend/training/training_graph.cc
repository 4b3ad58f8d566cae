#include "frontend/training/training_graph.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <unordered_set>

#include "frontend/training/autodiff.h"
#include "frontend/training/batchnorm_ops.h"
#include "ir/node_emitter.h"
#include "ir/op_registry.h"
#include "ir/user_regex.h"

namespace ampc {
namespace {

Value* FindOutput(const Graph& g, const std::string& name) {
  for (Value* v : g.outputs()) {
    if (v->name() == name) return v;
  }
  return nullptr;
}

std::string OutputNames(const Graph& g) {
  std::string s;
  for (const Value* v : g.outputs()) s += (s.empty() ? "" : ", ") + v->name();
  return s;
}

// The value the loss is attached to (the model's logits / predictions).
StatusOr<Value*> LossTarget(const Graph& g, const LossOptions& o) {
  if (g.outputs().empty()) return InvalidArgument("the model has no outputs to attach a loss to");
  Value* y = o.output.empty() ? g.outputs()[0] : FindOutput(g, o.output);
  if (!y) {
    return NotFound("--loss-on '" + o.output +
                    "' is not a model output (outputs: " + OutputNames(g) + ")");
  }
  if (!IsFloat(y->dtype()) || !y->type().has_rank) {
    return InvalidArgument("model output '" + y->name() + "' is " + y->type().ToString() +
                           "; a loss needs a floating tensor of known rank");
  }
  return y;
}

// Makes a scalar of a one-element loss ([1] from some exporters).
StatusOr<Value*> ScalarLoss(NodeEmitter& e, Value* loss) {
  const TensorType& t = loss->type();
  if (!IsFloat(t.dtype)) return InvalidArgument("the loss '" + loss->name() + "' is not floating");
  if (t.has_rank && t.rank() == 0) return loss;
  auto n = t.NumElements();
  if (!n || *n != 1) {
    return InvalidArgument("the loss '" + loss->name() + "' must be a scalar, got " + t.ToString());
  }
  ASSIGN_OR_RETURN(Value * shape, e.Init("loss_scalar_shape", Tensor::FromInt64s({}, {0})));
  return e.One("Reshape", "loss_scalar", {loss, shape});
}

// Whether `labels` (dims after the batch dimension) fit `scores` without axis `axis`: 2 = every
// dim equal (static values or the same symbol), 1 = no static mismatch, 0 = mismatch.
int FitScore(const std::vector<Dim>& scores, int64_t axis, const std::vector<Dim>& labels) {
  std::vector<Dim> want(scores.begin() + 1, scores.end());
  want.erase(want.begin() + (axis - 1));
  if (want.size() != labels.size()) return 0;
  int score = 2;
  for (size_t i = 0; i < want.size(); ++i) {
    const Dim& a = want[i];
    const Dim& b = labels[i];
    if (a.is_static() && b.is_static()) {
      if (a.value() != b.value()) return 0;
    } else if (!(a.is_symbolic() && b.is_symbolic() && a.symbol() == b.symbol())) {
      score = 1;
    }
  }
  return score;
}

// The class axis of cross-entropy / NLL scores [N, C, d...] or [N, ..., C]: axis 1 as in ONNX
// and PyTorch, unless the labels' shape (the graph's labels input, or the data's) says the last
// axis holds the classes (a language model's [B, T, V] logits with [B, T] labels). A shape that
// fits both or neither is an error naming both shapes.
StatusOr<int64_t> InferClassAxis(const Graph& g, const LossOptions& o, const Value& y) {
  const std::vector<Dim>& dims = y.type().dims;
  const int64_t rank = static_cast<int64_t>(dims.size());
  std::vector<Dim> labels;
  std::string labels_text;
  const Value* l = g.FindValue(o.labels);
  if (l && l->kind() == ValueKind::kInput && l->type().has_rank) {
    labels.assign(l->type().dims.begin() + std::min<size_t>(1, l->type().dims.size()),
                  l->type().dims.end());
    labels_text = l->type().ToString();
  } else if (!o.labels_dims.empty()) {
    labels.assign(o.labels_dims.begin() + 1, o.labels_dims.end());
    labels_text = "[";
    for (size_t i = 0; i < o.labels_dims.size(); ++i) {
      labels_text += (i ? "," : "") + std::to_string(o.labels_dims[i]);
    }
    labels_text += "] (the data's '" + o.labels + "')";
  } else {
    return 1;  // nothing to go by: ONNX's and PyTorch's convention
  }
  const int first = FitScore(dims, 1, labels);
  const int last = rank > 2 ? FitScore(dims, rank - 1, labels) : 0;
  if (first > 0 && (first > last)) return 1;
  if (last > 0 && last > first) return rank - 1;
  const std::string both =
      "scores " + y.type().ToString() + " ('" + y.name() + "') and labels " + labels_text;
  if (first == 0) {
    return InvalidArgument(both +
                           " do not fit: the labels must be the scores' shape without the "
                           "class axis (1, or the last); check --labels or pass --class-axis");
  }
  return InvalidArgument(both + " fit the classes on axis 1 and on axis " +
                         std::to_string(rank - 1) + "; pass --class-axis to say which");
}

// Adds (or finds) the labels input and the loss nodes. Returns the scalar loss.
StatusOr<Value*> AttachLoss(Graph& g, const LossOptions& o, TrainingGraphInfo* info) {
  NodeEmitter e{g, "loss"};
  if (o.kind == "none" || !o.loss_output.empty()) {
    if (o.loss_output.empty()) {
      return InvalidArgument(
          "--loss none needs --loss-output NAME (the model's scalar loss output)");
    }
    Value* loss = FindOutput(g, o.loss_output);
    if (!loss) {
      return NotFound("--loss-output '" + o.loss_output +
                      "' is not a model output (outputs: " + OutputNames(g) + ")");
    }
    return ScalarLoss(e, loss);
  }
  ASSIGN_OR_RETURN(Value * y, LossTarget(g, o));
  info->logits = y->name();
  const int64_t rank = y->type().rank();
  const bool classes = o.kind == "cross_entropy" || o.kind == "nll";
  if (classes && rank < 2) {
    return InvalidArgument("--loss " + o.kind + " needs scores shaped [N, C, ...]; output '" +
                           y->name() + "' is " + y->type().ToString());
  }
  int64_t axis = o.class_axis;
  if (classes) {
    if (axis == 0) {
      ASSIGN_OR_RETURN(axis, InferClassAxis(g, o, *y));
    }
    if (axis < 0) axis += rank;
    if (axis != 1 && axis != rank - 1) {
      return InvalidArgument("--class-axis must be 1 or the last axis of " + y->type().ToString());
    }
  }
  if (classes) info->class_axis = axis;
  // The labels' type: the scores' shape without the class axis (class indices), or the
  // predictions' type (mse).
  TensorType want = y->type();
  if (classes) {
    want.dtype = DType::kInt64;
    want.dims.erase(want.dims.begin() + axis);
  }
  Value* labels = g.FindValue(o.labels);
  if (labels) {
    if (labels->kind() != ValueKind::kInput) {
      return InvalidArgument("--labels '" + o.labels + "' names a value that is not a graph input");
    }
    if (classes && labels->dtype() != DType::kInt64 && labels->dtype() != DType::kInt32) {
      return InvalidArgument("labels input '" + o.labels + "' is " + labels->type().ToString() +
                             "; class-index losses need i64 or i32 labels");
    }
  } else {
    ASSIGN_OR_RETURN(labels, g.AddInput(o.labels, want));
  }
  info->labels = labels->name();
  if (o.kind == "mse") {
    ASSIGN_OR_RETURN(Value * d, e.One("Sub", "mse_diff", {y, labels}));
    ASSIGN_OR_RETURN(Value * sq, e.One("Mul", "mse_square", {d, d}));
    return e.One("ReduceMean", "mse_loss", {sq}, {{"keepdims", Attribute(int64_t{0})}});
  }
  Value* scores = y;
  Value* targets = labels;
  if (axis != 1) {  // [..., C] scores with class axis last: flatten to [M, C] like x.view(-1, C)
    const Dim& c = y->type().dims[axis];
    if (!c.is_static())
      return InvalidArgument("the class axis of '" + y->name() + "' is not static");
    ASSIGN_OR_RETURN(Value * s2,
                     e.Init("loss_scores_shape", Tensor::FromInt64s({-1, c.value()}, {2})));
    ASSIGN_OR_RETURN(Value * s1, e.Init("loss_labels_shape", Tensor::FromInt64s({-1}, {1})));
    ASSIGN_OR_RETURN(scores, e.One("Reshape", "loss_scores", {y, s2}));
    ASSIGN_OR_RETURN(targets, e.One("Reshape", "loss_labels", {labels, s1}));
  }
  AttributeMap attrs{{"reduction", Attribute(std::string("mean"))},
                     {"ignore_index", Attribute(o.ignore_index)}};
  if (o.kind == "cross_entropy") {
    return e.One("SoftmaxCrossEntropyLoss", "cross_entropy_loss", {scores, targets}, attrs);
  }
  if (o.kind == "nll")
    return e.One("NegativeLogLikelihoodLoss", "nll_loss", {scores, targets}, attrs);
  return InvalidArgument("unknown loss '" + o.kind + "'");
}

// torch exports BatchNorm of a model in train() mode as training_mode=1 and in eval() mode as
// training_mode=0; either way training uses batch statistics and updates the running ones with
// PyTorch's rule (com.ampc::BatchNormalization: unbiased running variance).
// Replaces ai.onnx node `old` by the com.ampc op `op` with `inputs` and `attrs` and
// `num_outputs` outputs (the old node's first outputs are rewired to the new ones), keeping its
// name and annotations. Returns the new node.
StatusOr<Node*> ReplaceWithAmpcOp(Graph& g, Node* old, const std::string& op,
                                  std::vector<Value*> inputs, AttributeMap attrs, int num_outputs) {
  std::vector<std::string> outs;
  for (int i = 0; i < num_outputs; ++i) {
    const Value* o = old->output(i);
    outs.push_back(
        g.UniqueName((o ? o->name() : old->name() + "_out" + std::to_string(i)) + "_train"));
  }
  ASSIGN_OR_RETURN(
      Node * n, g.AddNode(op, kAmpcDomain, old->name() + "_train", inputs, outs, std::move(attrs)));
  n->annotations() = old->annotations();
  RETURN_IF_ERROR(InferNode(*n));
  for (int i = 0; i < old->num_outputs() && i < num_outputs; ++i) {
    if (old->output(i)) g.ReplaceAllUsesWith(old->output(i), n->output(i));
  }
  const std::string name = old->name();
  g.RemoveNode(old);
  n->set_name(name);
  return n;
}

// model.train() for BatchNormalization: batch statistics, the running ones as state updates
// (com.ampc::BatchNormalization, or its ONNX ops when `decompose`).
Status BatchNormToTraining(Graph& g, TrainingGraphInfo* info, bool decompose) {
  std::vector<Node*> bns;
  for (Node* n : g.nodes()) {
    if (n->op_type() == "BatchNormalization" && n->domain().empty()) bns.push_back(n);
  }
  for (Node* old : bns) {
    Value* mean = old->input(3);
    Value* var = old->input(4);
    if (!mean || !var || mean->kind() != ValueKind::kInitializer ||
        var->kind() != ValueKind::kInitializer) {
      return Unimplemented(old->Describe() + ": running statistics that are not initializers");
    }
    if (decompose) {
      ASSIGN_OR_RETURN(BatchNormOps ops, DecomposeBatchNorm(g, old, true));
      g.AddStateUpdate(mean, ops.running_mean);
      g.AddStateUpdate(var, ops.running_var);
      info->running_stats.push_back(mean->name());
      info->running_stats.push_back(var->name());
      continue;
    }
    AttributeMap attrs = old->attrs();
    attrs["training_mode"] = Attribute(int64_t{1});
    ASSIGN_OR_RETURN(Node * n, ReplaceWithAmpcOp(g, old, "BatchNormalization", old->inputs(),
                                                 std::move(attrs), 3));
    g.AddStateUpdate(mean, n->output(1));
    g.AddStateUpdate(var, n->output(2));
    info->running_stats.push_back(mean->name());
    info->running_stats.push_back(var->name());
  }
  return g.TopologicalSort();
}

// model.train() for Dropout: every Dropout becomes com.ampc::Dropout(data, ratio, step), whose mask
// depends on (seed, step, element), so a step is reproducible, each step draws a new mask, and
// the backward pass reuses the forward's mask (output 1).
Status DropoutToTraining(Graph& g, Value* step, int64_t seed) {
  std::vector<Node*> drops;
  for (Node* n : g.nodes()) {
    if (n->op_type() == "Dropout" && n->domain().empty()) drops.push_back(n);
  }
  int64_t index = 0;
  for (Node* old : drops) {
    Value* ratio = old->input(1);
    if (!ratio) {
      ASSIGN_OR_RETURN(ratio, g.AddInitializer(g.UniqueName(old->name() + "_ratio"),
                                               Tensor::Scalar(DType::kFloat32, 0.5)));
    }
    const Attribute* s = old->attr("seed");
    const int64_t node_seed =
        s && s->kind() == AttrKind::kInt ? s->i() : seed * 1000003 + (++index) * 7919;
    RETURN_IF_ERROR(ReplaceWithAmpcOp(g, old, "Dropout", {old->input(0), ratio, step},
                                      {{"seed", Attribute(node_seed)}}, 2)
                        .status());
  }
  return g.TopologicalSort();
}

// Whether initializer v is a constant torch's exporter made (named onnx::*) rather than a
// parameter. Folded weight transposes (onnx::MatMul_N feeding a MatMul) are parameters.
// Inputs through which no parameter is learned, though they may be floating: exponents, bounds,
// ratios, fill values, resize factors and shape-like operands (ONNX marks most of these
// non-differentiable; Pow's exponent is differentiable in ONNX but never a parameter in practice).
bool TrainsThrough(const Node& n, int i) {
  const std::string& op = n.op_type();
  if (!n.domain().empty()) {
    if (n.domain() != kAmpcDomain) return true;
    if (op == "Dropout") return i == 0;
    if (op == "BatchNormalization") return i < 3;
    return true;
  }
  if (op == "Pow" || op == "Expand" || op == "Reshape" || op == "Tile" || op == "Squeeze" ||
      op == "Unsqueeze" || op == "CumSum" || op == "TopK" || op == "OneHot") {
    return i == 0;
  }
  if (op == "Clip" || op == "Dropout" || op == "Pad" || op == "Resize" || op == "Slice" ||
      op == "Split" || op == "ReduceSum" || op == "ReduceMean" || op == "ReduceMax" ||
      op == "ReduceMin" || op == "ReduceProd" || op == "ReduceL1" || op == "ReduceL2" ||
      op == "ReduceLogSumExp" || op == "ReduceSumSquare") {
    return i == 0;
  }
  if (op == "BatchNormalization") return i < 3;
  if (op == "Where") return i > 0;
  if (op == "Range" || op == "ConstantOfShape" || op == "Shape" || op == "Size" ||
      op == "EyeLike" || op == "RandomNormalLike" || op == "RandomUniformLike") {
    return false;
  }
  return true;
}

// Values the loss depends on through operands a parameter can be learned through.
std::unordered_set<const Value*> TrainableReach(const Graph& g, const Value* loss) {
  std::unordered_set<const Value*> reach{loss};
  const std::vector<Node*>& nodes = g.nodes();
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    const Node& n = **it;
    bool feeds = false;
    for (const Value* o : n.outputs()) feeds = feeds || (o && reach.count(o));
    if (!feeds) continue;
    for (int i = 0; i < n.num_inputs(); ++i) {
      const Value* in = n.input(i);
      if (in && IsFloat(in->dtype()) && TrainsThrough(n, i)) reach.insert(in);
    }
  }
  return reach;
}

bool AllFinite(const Tensor& t) {
  auto v = t.AsDoubles();
  if (!v) return true;
  for (double d : *v) {
    if (!std::isfinite(d)) return false;
  }
  return true;
}

// Names exporters give to folded constants: the legacy exporter's onnx::Op_N, dynamo's val_N.
bool GeneratedName(const std::string& n) {
  return n.rfind("onnx::", 0) == 0 || n.rfind("val_", 0) == 0 || n.rfind("_val_", 0) == 0;
}

// A warning when the model looks exported for inference: BatchNorm folded into Conv weights, or
// Linear weights folded into dynamo constants. Training such a graph trains the folded tensors.
std::string FoldedForInferenceWarning(const Graph& g) {
  bool has_bn = false;
  std::vector<std::string> conv, linear;
  for (const Node* n : g.nodes()) has_bn = has_bn || n->op_type() == "BatchNormalization";
  for (const Node* n : g.nodes()) {
    const std::string& op = n->op_type();
    for (int i = 1; i < n->num_inputs(); ++i) {
      const Value* w = n->input(i);
      if (!w || w->kind() != ValueKind::kInitializer || !GeneratedName(w->name())) continue;
      if ((op == "Conv" || op == "ConvTranspose") && !has_bn) conv.push_back(w->name());
      if ((op == "MatMul" || op == "Gemm") && w->name().find("val_") != std::string::npos) {
        linear.push_back(w->name());
      }
    }
  }
  if (conv.empty() && linear.empty()) return "";
  const std::string example = !conv.empty() ? conv[0] : linear[0];
  return std::string("the model looks constant-folded for inference (") +
         (!conv.empty() ? "Conv weights like '" + example + "' with no BatchNormalization left"
                        : "Linear weights folded into constants like '" + example + "'") +
         "); it trains the folded tensors. To export for training use torch.onnx.export(..., "
         "dynamo=True, optimize=False), or the legacy exporter with "
         "training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False";
}

double WeightDecay(const OptimizerOptions& o) {
  if (o.weight_decay >= 0) return o.weight_decay;
  return o.kind == "adamw" ? 0.01 : 0.0;
}

// Scales every gradient by min(1, max_norm / (norm + 1e-6)), norm = the L2 norm of all of them.
StatusOr<Value*> ClipByGlobalNorm(Graph& g, double max_norm, std::vector<Value*>& grads) {
  NodeEmitter e{g, "clip"};
  std::vector<Value*> squares;
  for (Value* gr : grads) {
    ASSIGN_OR_RETURN(Value * s, e.One("ReduceSumSquare", "grad_sq", {gr},
                                      {{"keepdims", Attribute(int64_t{0})}}));
    if (s->dtype() != DType::kFloat32) {
      ASSIGN_OR_RETURN(s, e.One("Cast", "grad_sq_f32", {s}, {{"to", Attribute(int64_t{1})}}));
    }
    squares.push_back(s);
  }
  Value* total = squares[0];
  if (squares.size() > 1) {
    ASSIGN_OR_RETURN(total, e.One("Sum", "grad_sq_total", squares));
  }
  ASSIGN_OR_RETURN(Value * norm, e.One("Sqrt", "grad_norm", {total}));
  ASSIGN_OR_RETURN(Value * eps, e.Init("clip_eps", Tensor::Scalar(DType::kFloat32, 1e-6)));
  ASSIGN_OR_RETURN(Value * maxv,
                   e.Init("clip_max_norm", Tensor::Scalar(DType::kFloat32, max_norm)));
  ASSIGN_OR_RETURN(Value * one, e.Init("clip_one", Tensor::Scalar(DType::kFloat32, 1.0)));
  ASSIGN_OR_RETURN(Value * denom, e.One("Add", "clip_denom", {norm, eps}));
  ASSIGN_OR_RETURN(Value * coef, e.One("Div", "clip_coef", {maxv, denom}));
  ASSIGN_OR_RETURN(Value * clamped, e.One("Min", "clip_coef_clamped", {coef, one}));
  for (Value*& gr : grads) {
    Value* c = clamped;
    if (gr->dtype() != DType::kFloat32) {
      ASSIGN_OR_RETURN(
          c, e.One("Cast", "clip_coef_cast", {clamped},
                   {{"to", Attribute(static_cast<int64_t>(DTypeToOnnxNumber(gr->dtype())))}}));
    }
    ASSIGN_OR_RETURN(gr, e.One("Mul", "grad_clipped", {gr, c}));
  }
  return norm;
}

Status AppendOptimizer(Graph& g, const OptimizerOptions& o, Value* lr, Value* step,
                       const std::vector<Value*>& params, const std::vector<Value*>& grads) {
  NodeEmitter e{g, "optimizer"};
  const double wd = WeightDecay(o);
  for (size_t i = 0; i < params.size(); ++i) {
    Value* w = params[i];
    Value* gr = grads[i];
    const std::vector<int64_t> dims = w->initializer()->dims();
    auto zeros = [&](const std::string& kind) {
      return e.Init("ampc." + kind + "." + w->name(), Tensor::Zeros(w->dtype(), dims));
    };
    if (o.kind == "sgd") {
      AttributeMap attrs{{"momentum", Attribute(static_cast<float>(o.momentum))},
                         {"dampening", Attribute(static_cast<float>(o.dampening))},
                         {"nesterov", Attribute(int64_t{o.nesterov ? 1 : 0})},
                         {"weight_decay", Attribute(static_cast<float>(wd))}};
      std::vector<Value*> in{lr, step, w, gr};
      Value* m = nullptr;
      if (o.momentum != 0) {
        ASSIGN_OR_RETURN(m, zeros("momentum"));
        in.push_back(m);
      }
      ASSIGN_OR_RETURN(auto outs, e.Multi("SGD", kAmpcDomain, "sgd_" + w->name(), in, m ? 2 : 1,
                                          std::move(attrs)));
      g.AddStateUpdate(w, outs[0]);
      if (m) g.AddStateUpdate(m, outs[1]);
    } else {
      ASSIGN_OR_RETURN(Value * m, zeros("exp_avg"));
      ASSIGN_OR_RETURN(Value * v, zeros("exp_avg_sq"));
      AttributeMap attrs{{"beta1", Attribute(static_cast<float>(o.beta1))},
                         {"beta2", Attribute(static_cast<float>(o.beta2))},
                         {"epsilon", Attribute(static_cast<float>(o.eps))},
                         {"weight_decay", Attribute(static_cast<float>(wd))},
                         {"decoupled", Attribute(int64_t{o.kind == "adamw" ? 1 : 0})}};
      std::vector<Value*> in{lr, step, w, gr, m, v};
      ASSIGN_OR_RETURN(auto outs, e.Multi("Adam", kAmpcDomain, o.kind + "_" + w->name(), in, 3,
                                          std::move(attrs)));
      g.AddStateUpdate(w, outs[0]);
      g.AddStateUpdate(m, outs[1]);
      g.AddStateUpdate(v, outs[2]);
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::vector<std::string>> UntieSharedInitializers(Graph& g, bool untie) {
  std::vector<std::string> out;
  std::vector<Node*> aliases;
  for (Node* n : g.nodes()) {
    const Value* in = n->input(0);
    const Value* o = n->output(0);
    if (n->op_type() == "Identity" && n->domain().empty() && in && o &&
        in->kind() == ValueKind::kInitializer && IsFloat(in->dtype()) && !o->name().empty() &&
        o->name()[0] != '/' && o->name().rfind("onnx::", 0) != 0 && !g.IsRoot(o)) {
      aliases.push_back(n);
    }
  }
  for (Node* n : aliases) {
    Value* src = n->input(0);
    Value* alias = n->output(0);
    const std::string name = alias->name();
    if (!untie) {
      out.push_back("'" + name + "' is an Identity of initializer '" + src->name() + "'");
      continue;
    }
    const std::vector<Use> uses = alias->uses();
    g.ReplaceAllUsesWith(alias, src);
    g.RemoveNode(n);
    ASSIGN_OR_RETURN(Value * copy, g.AddInitializer(name, *src->initializer()));
    for (const Use& u : uses) u.user->SetInput(u.operand, copy);
    out.push_back(name);
  }
  return out;
}

Status ValidateTrainOptions(const TrainOptions& opts) {
  const LossOptions& l = opts.loss;
  static const std::set<std::string> kLosses{"cross_entropy", "nll", "mse", "none"};
  if (!kLosses.count(l.kind)) {
    return InvalidArgument("--loss '" + l.kind + "' is not one of cross_entropy, nll, mse, none");
  }
  const OptimizerOptions& o = opts.optimizer;
  if (o.kind != "sgd" && o.kind != "adam" && o.kind != "adamw") {
    return InvalidArgument("--optimizer '" + o.kind + "' is not one of sgd, adam, adamw");
  }
  auto bad = [](const std::string& flag, double v) {
    return InvalidArgument(flag + " " + std::to_string(v) + " is out of range");
  };
  if (!(o.lr >= 0)) return bad("--lr", o.lr);
  if (!(o.momentum >= 0)) return bad("--momentum", o.momentum);
  if (!(o.dampening >= 0 && o.dampening <= 1)) return bad("--dampening", o.dampening);
  if (o.nesterov && (o.kind != "sgd" || o.momentum <= 0 || o.dampening != 0)) {
    return InvalidArgument("--nesterov needs --optimizer sgd with --momentum > 0 and no dampening");
  }
  if (!(o.beta1 >= 0 && o.beta1 < 1)) return bad("--beta1", o.beta1);
  if (!(o.beta2 >= 0 && o.beta2 < 1)) return bad("--beta2", o.beta2);
  if (!(o.eps >= 0)) return bad("--eps", o.eps);
  if (!(o.clip_grad_norm >= 0)) return bad("--clip-grad-norm", o.clip_grad_norm);
  for (const auto& [flag, re] : {std::pair<std::string, std::string>{"--freeze", opts.freeze},
                                 {"--trainable", opts.train}}) {
    if (!re.empty()) RETURN_IF_ERROR(UserRegex::Compile(re, flag).status());
  }
  return Status::Ok();
}

StatusOr<TrainingGraphInfo> BuildTrainingGraph(Graph& g, const TrainOptions& opts) {
  RETURN_IF_ERROR(ValidateTrainOptions(opts));
  TrainingGraphInfo info;
  for (const Value* v : g.inputs()) info.data_inputs.push_back(v->name());
  for (const Value* v : g.initializers()) info.model_initializers.push_back(v->name());
  ASSIGN_OR_RETURN(std::vector<std::string> shared, UntieSharedInitializers(g, opts.untie_shared));
  if (!opts.untie_shared && !shared.empty()) {
    std::string examples;
    for (size_t i = 0; i < shared.size() && i < 2; ++i) examples += (i ? "; " : "") + shared[i];
    info.warnings.push_back(
        std::to_string(shared.size()) +
        " parameter(s) are Identity aliases of another initializer (" + examples +
        (shared.size() > 2 ? "; ..." : "") +
        "): torch.onnx.export merges equal tensors this way, so they train as one; pass "
        "--untie-shared to train them separately, as PyTorch does");
  }
  std::vector<Value*> model_outputs = g.outputs();
  ASSIGN_OR_RETURN(Value * step, g.AddInitializer(kStepState, Tensor::ScalarInt64(0)));
  RETURN_IF_ERROR(BatchNormToTraining(g, &info, opts.decompose_batchnorm));
  RETURN_IF_ERROR(DropoutToTraining(g, step, opts.seed));
  model_outputs = g.outputs();
  ASSIGN_OR_RETURN(Value * loss, AttachLoss(g, opts.loss, &info));
  info.loss = loss->name();
  std::vector<Value*> outs{loss};
  for (Value* v : model_outputs) {
    if (v != loss) outs.push_back(v);
  }
  g.SetOutputs(outs);

  // Parameters by meaning: a float initializer is trained when the loss depends on it through
  // an operand a parameter can be learned through, unless it is a scalar (an epsilon, a scale)
  // or holds infinities (a mask). --freeze and --trainable override.
  std::optional<UserRegex> freeze, train;
  if (!opts.freeze.empty()) {
    ASSIGN_OR_RETURN(freeze, UserRegex::Compile(opts.freeze, "--freeze"));
  }
  if (!opts.train.empty()) {
    ASSIGN_OR_RETURN(train, UserRegex::Compile(opts.train, "--trainable"));
  }
  std::unordered_set<std::string> stats(info.running_stats.begin(), info.running_stats.end());
  const std::unordered_set<const Value*> reach = TrainableReach(g, loss);
  std::vector<Value*> candidates;
  auto freeze_as = [&](const Value* v, const std::string& why) {
    info.frozen.push_back(v->name());
    info.frozen_reasons[v->name()] = why;
  };
  for (Value* v : g.initializers()) {
    if (!IsFloat(v->dtype()) || stats.count(v->name())) continue;
    if (v->uses().empty()) continue;
    const bool forced = train && train->Search(v->name());
    if (freeze && freeze->Search(v->name())) {
      freeze_as(v, "--freeze");
    } else if (train && !forced) {
      freeze_as(v, "not matched by --trainable");
    } else if (!reach.count(v)) {
      freeze_as(v, "reaches the loss through no trainable operand (an exponent, bound, shape...)");
    } else if (!forced && v->initializer()->NumElements() <= 1) {
      freeze_as(v, "a scalar constant (an epsilon or a scale)");
    } else if (!forced && !AllFinite(*v->initializer())) {
      freeze_as(v, "holds infinities or NaNs (a mask)");
    } else {
      candidates.push_back(v);
    }
  }
  if (std::string w = FoldedForInferenceWarning(g); !w.empty()) info.warnings.push_back(w);
  ASSIGN_OR_RETURN(BackwardResult bw, BuildBackward(g, loss, candidates, kLossSeed));
  std::vector<Value*> params, grads;
  for (Value* v : candidates) {
    auto it = bw.grads.find(v);
    if (it == bw.grads.end()) {
      freeze_as(v, "no gradient reaches it");
      continue;
    }
    if (v->dtype() != DType::kFloat32 && v->dtype() != DType::kFloat64) {
      return Unimplemented("parameter '" + v->name() + "' is stored as " +
                           std::string(DTypeName(v->dtype())) +
                           "; run the master-weights pass first (it gives it an fp32 master)");
    }
    params.push_back(v);
    grads.push_back(it->second);
    info.params.push_back(v->name());
  }
  if (params.empty()) {
    return InvalidArgument("nothing to train: no floating initializer reaches the loss" +
                           std::string(opts.freeze.empty() && opts.train.empty()
                                           ? ""
                                           : " (check --freeze / --trainable)"));
  }
  if (opts.optimizer.clip_grad_norm > 0) {
    ASSIGN_OR_RETURN(Value * norm, ClipByGlobalNorm(g, opts.optimizer.clip_grad_norm, grads));
    NodeEmitter e{g, "clip"};
    ASSIGN_OR_RETURN(Value * named, e.One("Identity", kGradNormOutput, {norm}));
    outs.push_back(named);
    g.SetOutputs(outs);
  }
  ASSIGN_OR_RETURN(Value * lr, g.AddInput(kLrInput, TensorType(DType::kFloat32, {})));
  RETURN_IF_ERROR(AppendOptimizer(g, opts.optimizer, lr, step, params, grads));
  NodeEmitter e{g, "state"};
  // passes/loss_scaling replaces the 1 by the finite flag: a skipped step is not counted.
  ASSIGN_OR_RETURN(Value * inc, e.Init("ampc.step_one", Tensor::ScalarInt64(1)));
  ASSIGN_OR_RETURN(Value * next, e.One("Add", "ampc.step_next", {step, inc}));
  g.AddStateUpdate(step, next);
  return info;
}

Status ToInferenceMode(Graph& g) {
  Value* no = nullptr;
  for (Node* n : g.nodes()) {
    if (!n->domain().empty()) continue;
    if (n->op_type() == "BatchNormalization" && n->attr_int("training_mode", 0) != 0) {
      n->attrs()["training_mode"] = Attribute(int64_t{0});
      RETURN_IF_ERROR(InferNode(*n));
    } else if (n->op_type() == "Dropout" && n->input(2)) {
      if (!no) {
        Tensor f(DType::kBool, {}, std::vector<uint8_t>{0});
        ASSIGN_OR_RETURN(no, g.AddInitializer(g.UniqueName("eval_training_mode"), std::move(f)));
      }
      n->SetInput(2, no);
    }
  }
  return Status::Ok();
}

StatusOr<std::string> AttachEvalLoss(Graph& g, const LossOptions& opts) {
  TrainingGraphInfo info;
  TrainOptions t;
  t.loss = opts;
  RETURN_IF_ERROR(ValidateTrainOptions(t));
  std::vector<Value*> model_outputs = g.outputs();
  ASSIGN_OR_RETURN(Value * loss, AttachLoss(g, opts, &info));
  std::vector<Value*> outs{loss};
  for (Value* v : model_outputs) {
    if (v != loss) outs.push_back(v);
  }
  g.SetOutputs(outs);
  return loss->name();
}

}  // namespace ampc
