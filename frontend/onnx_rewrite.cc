#include "frontend/onnx_rewrite.h"

#include <algorithm>
#include <cmath>

#include "frontend/onnx_import_checks.h"
#include "ir/op_registry.h"
#include "ir/ops/infer_util.h"

namespace ampc {
namespace {

constexpr int64_t kMaxKnownInts = 64;  // small integer initializers feed shape arithmetic

std::string DescribeProto(const onnx::NodeProto& n) { return onnx_check::DescribeNode(n); }

}  // namespace

void SetKnownIntsFromInitializer(Value* v) {
  const Tensor* t = v->initializer();
  if (!t || t->dims().size() > 1 || t->NumElements() > kMaxKnownInts) return;
  auto ints = t->AsInt64s();
  if (!ints || t->dtype() == DType::kBool) return;
  v->set_known_ints(std::vector<Dim>(ints->begin(), ints->end()));
}

bool OpRewriter::ImportsAsOtherOps(const std::string& op) {
  return op == "SplitToSequence" || op == "SequenceAt" || op == "InstanceNormalization";
}

Status OpRewriter::AddInPlaceOf(const onnx::NodeProto& node, const OnnxOpVersion& version,
                                AttributeMap attrs, const onnx::GraphProto& graph) {
  if (node.op_type() == "InstanceNormalization") {
    return AddInstanceNorm(node, version, std::move(attrs));
  }
  return AddSequenceOp(node, attrs, graph);
}

// Moves an attribute that later opsets turned into an input (Split's split, Squeeze's axes,
// ...) into a fresh int64 initializer at input position `pos`.
Status OpRewriter::AttrToInput(const std::string& node_name, AttributeMap& attrs,
                               const std::string& key, size_t pos, std::vector<Value*>& inputs) {
  auto it = attrs.find(key);
  if (it == attrs.end()) return Status::Ok();
  if (it->second.kind() != AttrKind::kInts) {
    return InvalidArgument("attribute '" + key + "' of node '" + node_name +
                           "' must be a list of ints");
  }
  const std::vector<int64_t> v = it->second.ints();
  attrs.erase(it);
  ASSIGN_OR_RETURN(Value * init,
                   g_.AddInitializer(g_.UniqueName(node_name + "_" + key),
                                     Tensor::FromInt64s(v, {static_cast<int64_t>(v.size())})));
  SetKnownIntsFromInitializer(init);
  if (inputs.size() < pos) inputs.resize(pos, nullptr);
  inputs.insert(inputs.begin() + pos, init);
  return Status::Ok();
}

// Like AttrToInput for a float attribute that became a scalar input of input 0's dtype;
// `dflt` is used when the attribute is absent.
Status OpRewriter::FloatAttrToInput(const std::string& node_name, AttributeMap& attrs,
                                    const std::string& key, double dflt, size_t pos,
                                    std::vector<Value*>& inputs) {
  double v = dflt;
  auto it = attrs.find(key);
  const bool given = it != attrs.end();
  if (given) {
    if (it->second.kind() != AttrKind::kFloat) {
      return InvalidArgument("attribute '" + key + "' of node '" + node_name + "' must be a float");
    }
    v = it->second.f();
    attrs.erase(it);
  }
  if (inputs.empty() || !inputs[0] || !IsFloat(inputs[0]->dtype())) {
    if (!given) return Status::Ok();
    return Unimplemented("node '" + node_name + "': attribute '" + key + "' on a non-float input");
  }
  ASSIGN_OR_RETURN(Value * init, g_.AddInitializer(g_.UniqueName(node_name + "_" + key),
                                                   Tensor::Scalar(inputs[0]->dtype(), v)));
  if (inputs.size() < pos) inputs.resize(pos, nullptr);
  inputs.insert(inputs.begin() + pos, init);
  return Status::Ok();
}

Status OpRewriter::NormaliseOlder(const onnx::NodeProto& node, std::string& op, AttributeMap& attrs,
                                  std::vector<Value*>& inputs, std::vector<std::string>& outputs) {
  const std::string& name = node.name();
  // CastLike (opset 15; torch's dynamo exporter writes it for type_as) is Cast to its second
  // input's type, known here: one op for the passes, the generated kernels and the CUDA runtime.
  if (op == "CastLike" && inputs.size() == 2 && inputs[0] && inputs[1] &&
      inputs[1]->dtype() != DType::kUndefined) {
    op = "Cast";
    attrs["to"] = Attribute(static_cast<int64_t>(DTypeToOnnxNumber(inputs[1]->dtype())));
    inputs.resize(1);
    return Status::Ok();
  }
  if (opset_ < 13 && op == "Split") return AttrToInput(name, attrs, "split", 1, inputs);
  if (opset_ < 13 && (op == "Squeeze" || op == "Unsqueeze" || op == "ReduceSum")) {
    return AttrToInput(name, attrs, "axes", 1, inputs);
  }
  if (opset_ < 10 && op == "Slice") {
    RETURN_IF_ERROR(AttrToInput(name, attrs, "starts", 1, inputs));
    RETURN_IF_ERROR(AttrToInput(name, attrs, "ends", 2, inputs));
    return AttrToInput(name, attrs, "axes", 3, inputs);
  }
  if (opset_ < 11 && op == "Pad") {
    RETURN_IF_ERROR(AttrToInput(name, attrs, "pads", 1, inputs));
    return FloatAttrToInput(name, attrs, "value", 0.0, 2, inputs);
  }
  if (opset_ < 11 && op == "Clip") {
    RETURN_IF_ERROR(FloatAttrToInput(name, attrs, "min", -INFINITY, 1, inputs));
    return FloatAttrToInput(name, attrs, "max", INFINITY, 2, inputs);
  }
  if (opset_ < 9 && op == "BatchNormalization") {
    if (attrs.count("spatial") && attrs.at("spatial").kind() == AttrKind::kInt &&
        attrs.at("spatial").i() != 1) {
      return Unimplemented(DescribeProto(node) +
                           ": spatial=0 (per-activation statistics) is not supported");
    }
    attrs.erase("spatial");
  }
  if (opset_ < 7) {
    // Opset 6 still has is_test flags and the legacy `broadcast`/`axis` attributes; with no
    // axis, legacy broadcasting aligns trailing dims exactly like numpy broadcasting.
    attrs.erase("is_test");
    if (attrs.count("broadcast")) {
      if (attrs.count("axis") && op != "Concat" && op != "Softmax" && op != "LogSoftmax" &&
          op != "Flatten" && op != "Gather") {
        return Unimplemented(DescribeProto(node) +
                             ": legacy broadcasting with an axis (opset < 7)");
      }
      attrs.erase("broadcast");
    }
  }
  if (opset_ < 12 && op == "Dropout") {
    auto it = attrs.find("ratio");
    if (it != attrs.end() && it->second.kind() == AttrKind::kFloat) {
      ASSIGN_OR_RETURN(Value * r, g_.AddInitializer(g_.UniqueName(name + "_ratio"),
                                                    Tensor::FromFloats({it->second.f()}, {})));
      attrs.erase(it);
      inputs.resize(1);
      inputs.push_back(r);
    }
  }
  if (opset_ < 14 && op == "BatchNormalization" && outputs.size() > 1) {
    // Opsets 9-13 signal training by asking for the running statistics; outputs 4 and 5
    // (saved mean / inverse std) have no opset-17 equivalent.
    attrs["training_mode"] = Attribute(int64_t{1});
    for (size_t i = 3; i < outputs.size(); ++i) {
      if (!outputs[i].empty() && used_names_.count(outputs[i])) {
        return Unimplemented(DescribeProto(node) + " uses output " + std::to_string(i) +
                             " (saved statistics of opset < 14), which is not supported");
      }
    }
    outputs.resize(3);
  }
  return Status::Ok();
}

// Op versions newer than ampc's canonical form (ai.onnx opsets 18-23). Reduce* with axes as an
// input (18) and Split's num_outputs (18) are canonical themselves; the rest is rewritten here.
Status OpRewriter::NormaliseNewer(const onnx::NodeProto& node, int64_t version, AttributeMap& attrs,
                                  std::vector<Value*>& inputs, std::vector<std::string>& outputs) {
  const std::string& op = node.op_type();
  if (op == "Split" && version >= 18) {
    const bool split_input = inputs.size() > 1 && inputs[1];
    if (split_input == (attrs.count("num_outputs") > 0)) {
      return InvalidArgument(DescribeProto(node) +
                             ": Split version 18 takes either input 'split' or attribute "
                             "'num_outputs' (exactly one of them)");
    }
  }
  if (op == "GroupNormalization" && version < 21) return GroupNormScalePerChannel(node, inputs);
  if (op == "Attention") {
    // present_key / present_value / qk_matmul_output that nothing reads (torch's exporter
    // names them all) are dropped, so that only a model that uses them needs them supported.
    for (size_t i = 1; i < outputs.size(); ++i) {
      if (!used_names_.count(outputs[i])) outputs[i].clear();
    }
    while (outputs.size() > 1 && outputs.back().empty()) outputs.pop_back();
  }
  return Status::Ok();
}

// GroupNormalization 18 scales and shifts each group by scale[g], bias[g]; version 21 (ampc's
// form) takes one value per channel. Each of the num_groups values is repeated C/num_groups
// times, through Reshape/Expand/Reshape so that a trained scale stays the model's [G] tensor.
Status OpRewriter::GroupNormScalePerChannel(const onnx::NodeProto& node,
                                            std::vector<Value*>& inputs) {
  if (inputs.size() != 3 || !inputs[0] || !inputs[1] || !inputs[2]) return Status::Ok();
  const TensorType& x = inputs[0]->type();
  const int64_t groups = [&] {
    for (const auto& a : node.attribute()) {
      if (a.name() == "num_groups") return static_cast<int64_t>(a.i());
    }
    return int64_t{0};
  }();
  if (!x.has_rank || x.rank() < 2 || !x.dims[1].is_static() || groups <= 0 ||
      x.dims[1].value() % groups != 0) {
    return Unimplemented(DescribeProto(node) +
                         ": GroupNormalization version 18 needs a static channel count "
                         "divisible by num_groups (its per-group scale becomes per-channel)");
  }
  const int64_t c = x.dims[1].value();
  auto ints = [&](const std::vector<int64_t>& v) -> StatusOr<Value*> {
    ASSIGN_OR_RETURN(Value * init,
                     g_.AddInitializer(g_.UniqueName(node.name() + "_shape"),
                                       Tensor::FromInt64s(v, {static_cast<int64_t>(v.size())})));
    SetKnownIntsFromInitializer(init);
    return init;
  };
  ASSIGN_OR_RETURN(Value * grouped, ints({groups, 1}));
  ASSIGN_OR_RETURN(Value * repeated, ints({groups, c / groups}));
  ASSIGN_OR_RETURN(Value * channels, ints({c}));
  for (int i : {1, 2}) {
    const std::string stem = node.name() + (i == 1 ? "_scale" : "_bias");
    ASSIGN_OR_RETURN(Value * a, AddHelper("Reshape", stem + "_grouped", {inputs[i], grouped}));
    ASSIGN_OR_RETURN(Value * b, AddHelper("Expand", stem + "_repeated", {a, repeated}));
    ASSIGN_OR_RETURN(inputs[i], AddHelper("Reshape", stem + "_per_channel", {b, channels}));
  }
  return Status::Ok();
}

// Adds and infers a node the importer writes in place of part of a model's node.
StatusOr<Value*> OpRewriter::AddHelper(const std::string& op, const std::string& name,
                                       std::vector<Value*> inputs, AttributeMap attrs) {
  ASSIGN_OR_RETURN(Node * n,
                   g_.AddNode(op, "", name, inputs, {g_.UniqueName(name)}, std::move(attrs)));
  RETURN_IF_ERROR(InferNode(*n));
  return n->output(0);
}

// Softmax/LogSoftmax before opset 13 normalise over the flattened [axis:] block. Where that
// is not just the last axis, rewrite as Flatten -> Softmax(-1) -> Reshape(original shape).
StatusOr<bool> OpRewriter::RewriteOldSoftmax(const onnx::NodeProto& node, const std::string& op,
                                             const AttributeMap& attrs,
                                             const std::vector<Value*>& inputs,
                                             const std::vector<std::string>& outputs) {
  if (opset_ >= 13 || (op != "Softmax" && op != "LogSoftmax") || inputs.size() != 1 || !inputs[0] ||
      outputs.size() != 1) {
    return false;
  }
  Value* x = inputs[0];
  const int64_t axis = attrs.count("axis") ? attrs.at("axis").i() : 1;
  const TensorType& t = x->type();
  if (t.has_rank && (axis == t.rank() - 1 || axis == -1)) return false;
  const std::string& name = node.name();
  auto add = [&](const std::string& o, const std::string& suffix, std::vector<Value*> in,
                 const std::string& out, AttributeMap a) -> StatusOr<Value*> {
    ASSIGN_OR_RETURN(Node * n, g_.AddNode(o, "", name + suffix, in, {out}, std::move(a)));
    RETURN_IF_ERROR(InferNode(*n));
    return n->output(0);
  };
  ASSIGN_OR_RETURN(Value * flat, add("Flatten", "_flatten", {x}, g_.UniqueName(name + "_flat"),
                                     {{"axis", Attribute(axis)}}));
  ASSIGN_OR_RETURN(Value * sm, add(op, "", {flat}, g_.UniqueName(name + "_2d"),
                                   {{"axis", Attribute(int64_t{-1})}}));
  ASSIGN_OR_RETURN(Value * shape, add("Shape", "_shape", {x}, g_.UniqueName(name + "_shape"), {}));
  ASSIGN_OR_RETURN(Value * y, add("Reshape", "_reshape", {sm, shape}, outputs[0], {}));
  RETURN_IF_ERROR(ApplyDeclared(y));
  return true;
}

// InstanceNormalization is GroupNormalization with one group per channel (version 21's
// per-channel scale and bias): same statistics, same affine step, so it gets that op's kernel
// and gradient. torch's exporter writes group_norm this way below opset 21.
Status OpRewriter::AddInstanceNorm(const onnx::NodeProto& node, const OnnxOpVersion& version,
                                   AttributeMap attrs) {
  std::vector<Value*> inputs;
  for (const std::string& in : node.input()) {
    inputs.push_back(in.empty() ? nullptr : g_.FindValue(in));
  }
  if (inputs.size() != 3 || !inputs[0] || node.output_size() != 1) {
    return InvalidArgument("InstanceNormalization takes input, scale, B and gives one output");
  }
  const TensorType& x = inputs[0]->type();
  if (!x.has_rank || x.rank() < 3 || !x.dims[1].is_static()) {
    return Unimplemented(
        "InstanceNormalization needs an input of rank >= 3 with a static "
        "channel count");
  }
  attrs["num_groups"] = Attribute(x.dims[1].value());
  ASSIGN_OR_RETURN(Node * n, g_.AddNode("GroupNormalization", "", node.name(), inputs,
                                        {node.output(0)}, std::move(attrs)));
  RETURN_IF_ERROR(InferNode(*n));
  RETURN_IF_ERROR(onnx_check::CheckRequiredAttributes(node, version));
  return ApplyDeclared(n->output(0));
}

// torch's exporter writes split/chunk as SplitToSequence read by SequenceAt at constant
// positions. ampc has no sequence values: the pair becomes one Split (its parts kept in
// sequences_) and an Identity of the part each SequenceAt reads.
Status OpRewriter::AddSequenceOp(const onnx::NodeProto& node, const AttributeMap& attrs,
                                 const onnx::GraphProto& graph) {
  const std::string& name = node.name();
  if (node.op_type() == "SequenceAt") {
    auto it = node.input_size() == 2 ? sequences_.find(node.input(0)) : sequences_.end();
    if (it == sequences_.end()) return Unimplemented("SequenceAt of a sequence ampc did not make");
    auto pos = infer::KnownStatic(g_.FindValue(node.input(1)));
    const int64_t n = static_cast<int64_t>(it->second.size());
    if (!pos || pos->size() != 1 || (*pos)[0] < -n || (*pos)[0] >= n) {
      return Unimplemented("SequenceAt needs a constant position in [-" + std::to_string(n) + ", " +
                           std::to_string(n) + ")");
    }
    Value* part = it->second[(*pos)[0] < 0 ? (*pos)[0] + n : (*pos)[0]];
    ASSIGN_OR_RETURN(Node * id, g_.AddNode("Identity", "", name, {part}, {node.output(0)}));
    RETURN_IF_ERROR(InferNode(*id));
    return ApplyDeclared(id->output(0));
  }
  const std::string& seq = node.output(0);
  for (const auto& other : graph.node()) {
    for (int i = 0; i < other.input_size(); ++i) {
      if (other.input(i) == seq && (other.op_type() != "SequenceAt" || i != 0)) {
        return Unimplemented("its sequence output is read by " + DescribeProto(other) +
                             "; ampc has no sequence values (not a tensor), only SequenceAt "
                             "at constant positions");
      }
    }
  }
  for (const auto& o : graph.output()) {
    if (o.name() == seq) {
      return Unimplemented(
          "its sequence output is a graph output; ampc has no sequence values "
          "(not a tensor)");
    }
  }
  Value* x = g_.FindValue(node.input(0));
  const int64_t axis_attr = attrs.count("axis") ? attrs.at("axis").i() : 0;
  const bool keepdims = !attrs.count("keepdims") || attrs.at("keepdims").i() != 0;
  const TensorType& xt = x->type();
  if (!xt.has_rank) return Unimplemented("SplitToSequence needs an input of known rank");
  ASSIGN_OR_RETURN(int64_t axis, infer::NormalizeAxis(axis_attr, xt.rank()));
  if (!xt.dims[axis].is_static()) {
    return Unimplemented("SplitToSequence needs a static size on axis " + std::to_string(axis));
  }
  const int64_t d = xt.dims[axis].value();
  std::vector<int64_t> sizes;
  const Value* split = node.input_size() > 1 ? g_.FindValue(node.input(1)) : nullptr;
  if (!split) {
    sizes.assign(static_cast<size_t>(d), 1);
  } else {
    auto k = infer::KnownStatic(split);
    if (!k) return Unimplemented("SplitToSequence needs constant split sizes");
    if (split->type().has_rank && split->type().rank() == 0) {  // a chunk size
      if (k->size() != 1 || (*k)[0] <= 0) return InvalidArgument("split must be positive");
      for (int64_t done = 0; done < d; done += (*k)[0])
        sizes.push_back(std::min((*k)[0], d - done));
    } else {
      sizes = *k;
    }
  }
  if (sizes.empty()) return Unimplemented("SplitToSequence of an empty axis");
  ASSIGN_OR_RETURN(
      Value * sizes_init,
      g_.AddInitializer(g_.UniqueName(name + "_sizes"),
                        Tensor::FromInt64s(sizes, {static_cast<int64_t>(sizes.size())})));
  SetKnownIntsFromInitializer(sizes_init);
  std::vector<std::string> outs;
  for (size_t i = 0; i < sizes.size(); ++i) {
    outs.push_back(g_.UniqueName(seq + "_" + std::to_string(i)));
  }
  ASSIGN_OR_RETURN(
      Node * sp, g_.AddNode("Split", "", name, {x, sizes_init}, outs, {{"axis", Attribute(axis)}}));
  RETURN_IF_ERROR(InferNode(*sp));
  std::vector<Value*> parts = sp->outputs();
  if (!split && !keepdims) {
    ASSIGN_OR_RETURN(Value * ax, g_.AddInitializer(g_.UniqueName(name + "_axis"),
                                                   Tensor::FromInt64s({axis}, {1})));
    SetKnownIntsFromInitializer(ax);
    for (Value*& p : parts) {
      ASSIGN_OR_RETURN(p, AddHelper("Squeeze", p->name() + "_squeeze", {p, ax}));
    }
  }
  sequences_[seq] = std::move(parts);
  return Status::Ok();
}

}  // namespace ampc
