#include "codegen/fused_kernel.h"

#include <fmt/format.h>

#include <bit>
#include <cstring>
#include <map>
#include <unordered_map>

#include "codegen/node_kernels.h"
#include "ir/op_registry.h"

namespace ampc {
namespace {

enum class Kind { kArith, kUnary, kCompare, kLogic, kWhere, kCast, kReluGrad };

struct OpInfo {
  Kind kind;
  int min_inputs, max_inputs;
};

const std::map<std::string, OpInfo>& Ops() {
  static const auto* ops = new std::map<std::string, OpInfo>{
      {"Add", {Kind::kArith, 2, 2}},
      {"Sub", {Kind::kArith, 2, 2}},
      {"Mul", {Kind::kArith, 2, 2}},
      {"Div", {Kind::kArith, 2, 2}},
      {"Pow", {Kind::kArith, 2, 2}},
      {"Max", {Kind::kArith, 2, 2}},
      {"Min", {Kind::kArith, 2, 2}},
      {"Neg", {Kind::kUnary, 1, 1}},
      {"Sqrt", {Kind::kUnary, 1, 1}},
      {"Exp", {Kind::kUnary, 1, 1}},
      {"Erf", {Kind::kUnary, 1, 1}},
      {"Tanh", {Kind::kUnary, 1, 1}},
      {"Sigmoid", {Kind::kUnary, 1, 1}},
      {"Relu", {Kind::kUnary, 1, 1}},
      {"Reciprocal", {Kind::kUnary, 1, 1}},
      {"Abs", {Kind::kUnary, 1, 1}},
      {"Log", {Kind::kUnary, 1, 1}},
      {"LeakyRelu", {Kind::kUnary, 1, 1}},
      {"Equal", {Kind::kCompare, 2, 2}},
      {"Less", {Kind::kCompare, 2, 2}},
      {"Greater", {Kind::kCompare, 2, 2}},
      {"LessOrEqual", {Kind::kCompare, 2, 2}},
      {"GreaterOrEqual", {Kind::kCompare, 2, 2}},
      {"Not", {Kind::kLogic, 1, 1}},
      {"And", {Kind::kLogic, 2, 2}},
      {"Or", {Kind::kLogic, 2, 2}},
      {"Xor", {Kind::kLogic, 2, 2}},
      {"Where", {Kind::kWhere, 3, 3}},
      {"Cast", {Kind::kCast, 1, 1}},
      {"Gelu", {Kind::kUnary, 1, 1}},         // approximate none | tanh
      {"ReluGrad", {Kind::kReluGrad, 2, 2}},  // com.ampc (dY, X)
      {"GeluGrad", {Kind::kReluGrad, 2, 2}},  // com.ampc (dY, X), approximate none | tanh
  };
  return *ops;
}

bool IsFloat3(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}
bool Emittable(DType t) { return IsFloat3(t) || t == DType::kBool || t == DType::kInt64; }

}  // namespace

bool IsFusibleElementwise(const Node& n, bool allow_symbolic) {
  auto shaped = [allow_symbolic](const Value* v) {
    if (!v->type().has_rank) return false;
    for (const Dim& d : v->type().dims) {
      if (d.is_unknown() || (!allow_symbolic && !d.is_static())) return false;
    }
    return true;
  };
  const bool ampc = n.op_type() == "ReluGrad" || n.op_type() == "GeluGrad";
  if (n.domain() != (ampc ? kAmpcDomain : "")) return false;
  if (n.op_type() == "Gelu" || n.op_type() == "GeluGrad") {  // another mode: the per-op error
    const std::string a = n.attr_string("approximate", "none");
    if (a != "none" && a != "tanh") return false;
  }
  auto it = Ops().find(n.op_type());
  if (it == Ops().end()) return false;
  const OpInfo& info = it->second;
  if (n.num_inputs() < info.min_inputs || n.num_inputs() > info.max_inputs) return false;
  if (n.num_outputs() != 1 || !n.output(0)) return false;
  for (const Value* v : n.inputs()) {
    if (!v || !Emittable(v->dtype()) || !shaped(v)) return false;
  }
  const Value* out = n.output(0);
  if (!Emittable(out->dtype()) || !shaped(out)) return false;
  // Shape arithmetic (values known at compile time, which later steps' shapes depend on and the
  // plan verifier re-derives from the op) stays with its per-op steps; a known value nothing
  // reads (a state's next value) does not count.
  if (out->known_ints() && !out->uses().empty()) return false;
  const DType a = n.input(0)->dtype(), o = out->dtype();
  switch (info.kind) {
    case Kind::kArith: {  // i64: the wrapping Add, Sub, Mul and Max, Min of the per-op kernels
      const bool int_ok = a == DType::kInt64 && n.op_type() != "Div" && n.op_type() != "Pow";
      return (IsFloat3(a) || int_ok) && n.input(1)->dtype() == a && o == a;
    }
    case Kind::kUnary:
      return IsFloat3(a) && o == a;
    case Kind::kCompare:
      return (IsFloat3(a) || a == DType::kInt64) && n.input(1)->dtype() == a && o == DType::kBool;
    case Kind::kLogic:
      for (const Value* v : n.inputs()) {
        if (v->dtype() != DType::kBool) return false;
      }
      return o == DType::kBool;
    case Kind::kWhere:
      return a == DType::kBool && n.input(1)->dtype() == o && n.input(2)->dtype() == o;
    case Kind::kCast:  // between any two emittable dtypes but i64 -> f16/bf16 (rounded to odd
                       // through f32 by the per-op kernel)
      return a != DType::kInt64 || !(o == DType::kFloat16 || o == DType::kBFloat16);
    case Kind::kReluGrad:  // (dY, X) -> dX, one float type
      return IsFloat3(a) && n.input(1)->dtype() == a && o == a;
  }
  return false;
}

namespace {

// The constant axes of a Reduce node: its `axes` attribute, or its axes input when that is an
// initializer, a Constant's value or a value known at compile time. nullopt: not constant.
std::optional<std::vector<int64_t>> ReduceAxes(const Node& n) {
  if (n.attr("axes")) return n.attr_ints("axes");
  const Value* a = n.input(1);
  if (!a) return std::vector<int64_t>{};
  if (a->initializer()) return a->initializer()->AsInt64s();
  if (a->known_ints()) {
    std::vector<int64_t> v;
    for (const Dim& d : *a->known_ints()) {
      if (!d.is_static()) return std::nullopt;
      v.push_back(d.value());
    }
    return v;
  }
  const Node* p = a->producer();
  if (p && p->op_type() == "Constant" && p->domain().empty()) {
    const Attribute* t = p->attr("value");
    if (t && t->kind() == AttrKind::kTensor) return t->t().AsInt64s();
  }
  return std::nullopt;
}

}  // namespace

bool IsFusibleReduction(const Node& n, bool allow_symbolic) {
  if (!n.domain().empty() || (n.op_type() != "ReduceSum" && n.op_type() != "ReduceMean")) {
    return false;
  }
  const Value* x = n.input(0);
  const Value* y = n.output(0);
  if (!x || !y || n.num_outputs() != 1 || !IsFloat3(x->dtype()) || y->dtype() != x->dtype()) {
    return false;
  }
  for (const Value* v : {x, y}) {
    if (!v->type().has_rank) return false;
    for (const Dim& d : v->type().dims) {
      if (d.is_unknown() || (!allow_symbolic && !d.is_static())) return false;
      if (d.is_static() && d.value() == 0) return false;
    }
  }
  auto axes = ReduceAxes(n);
  if (!axes) return false;
  if (axes->empty() && n.attr_int("noop_with_empty_axes", 0) != 0) return false;
  const int64_t r = x->type().rank();
  for (int64_t a : *axes) {
    if (a < -r || a >= r) return false;
  }
  return true;
}

DType FusedKernel::ValueType(int v) const {
  const int ni = static_cast<int>(inputs.size());
  return v < ni ? inputs[v].dtype : insts[v - ni].dtype;
}

bool IsNodeKernel(const Node& n, bool allow_symbolic) {
  return node_kernels::Supported(n, allow_symbolic);
}

bool IsMultiTensorOptimizer(const Node& n) { return node_kernels::Groupable(n); }

std::string MultiTensorSignature(const Node& n) { return node_kernels::GroupSignature(n); }

std::pair<int, int> MultiTensorArgs(const Node& n) { return node_kernels::GroupArgs(n); }

int FusedKernel::RangeOutput() const {
  if (node) return node->range_output;
  for (size_t j = 0; j < outputs.size(); ++j) {
    if (outputs[j] == kReduced) return static_cast<int>(j);
  }
  return 0;
}

int64_t FusedKernel::UnitWork() const {
  if (node) return node->unit_work;
  return reduce ? reduce->count * reduce->Block() : RowElements();
}

void ApplyGpuGrain(FusedKernel& k) {
  k.gpu_grain = true;
  if (k.reduce) k.reduce->gpu_grain = true;
  if (k.node && (k.node->op == "SGD" || k.node->op == "Adam")) {
    k.node->unit = 1;
    k.node->unit_work = 4;
    if (!k.node->members.empty()) k.node->units = k.node->AllMemberUnits();
  }
  if (k.node && (k.node->op == "Softmax" || k.node->op == "LogSoftmax")) {
    // One row per unit (a GPU thread's), not node_kernels.cc's interleaved CPU rows.
    FusedKernel::NodeOp& op = *k.node;
    op.unit = op.shape[static_cast<size_t>(op.attrs.at("axis"))];
    op.unit_work = op.unit * 3;
  }
  if (k.node && k.node->op == "SoftmaxCrossEntropyLoss" && k.node->attrs.at("reduction") == 0) {
    // Reduction none (passes/split_loss makes it): one unit per row of the loss.
    FusedKernel::NodeOp& op = *k.node;
    op.gpu = true;
    op.unit = 1;
    op.unit_work = op.shape[1];
  }
  if (k.node && k.node->op == "AllFinite") {
    // One unit per element of the largest input, each checking that element of every input
    // and storing false where one is not finite, onto the flag filled with true first.
    FusedKernel::NodeOp& op = *k.node;
    op.gpu = true;
    op.units = 1;
    for (const auto& a : k.inputs) op.units = std::max(op.units, a.elements);
    op.unit_work = static_cast<int64_t>(k.inputs.size());
    op.fill = true;
    op.fill_byte = 1;
  }
}

std::string FusedKernel::Key() const {
  if (node) return node_kernels::Key(*this);
  std::string s = gpu_grain ? "fused-elementwise v1 gpu-grain dims" : "fused-elementwise v1 dims";
  for (int64_t d : dims) s += fmt::format(" {}", d);
  for (const Arg& a : inputs) {
    s += fmt::format("\nin {} n={} s", DTypeName(a.dtype), a.elements);
    for (int64_t st : a.strides) s += fmt::format(" {}", st);
  }
  for (const Inst& i : insts) {
    s += fmt::format("\n{} {}", i.op, DTypeName(i.dtype));
    for (int o : i.operands) s += fmt::format(" %{}", o);
    if (i.op == "LeakyRelu") s += fmt::format(" alpha={:08x}", std::bit_cast<uint32_t>(i.alpha));
    if ((i.op == "Gelu" || i.op == "GeluGrad") && i.tanh) s += " tanh";
  }
  if (reduce) {
    s += fmt::format("\n{} {} %{} outputs={} count={} dims", reduce->op, DTypeName(reduce->dtype),
                     reduce->value, reduce->outputs, reduce->count);
    for (size_t a = 0; a < reduce->dims.size(); ++a) {
      s += fmt::format(" {}{}", reduce->dims[a], reduce->reduced[a] ? "r" : "");
    }
  }
  s += "\nout";
  for (int o : outputs) s += fmt::format(" %{}", o);
  return s;
}

StatusOr<FusedKernel> BuildFusedKernel(const std::vector<const Node*>& nodes,
                                       const std::vector<const Value*>& inputs,
                                       const std::vector<const Value*>& outputs) {
  if (nodes.empty() || outputs.empty()) return InvalidArgument("empty fusion group");
  if (nodes.size() == 1 && IsNodeKernel(*nodes[0])) {
    return node_kernels::Build(*nodes[0], inputs, outputs);
  }
  if (IsMultiTensorOptimizer(*nodes[0])) return node_kernels::BuildMulti(nodes, inputs, outputs);
  FusedKernel k;
  const Node* reduction = IsFusibleReduction(*nodes.back()) ? nodes.back() : nullptr;
  const Value* space = reduction ? reduction->input(0) : nodes.front()->output(0);
  std::vector<int64_t> od;
  for (const Dim& d : space->type().dims) od.push_back(d.value());
  int64_t n = 1;
  for (int64_t d : od) n *= d;
  std::unordered_map<const Value*, int> index;
  // Strides of each input over the full output shape (right-aligned broadcasting).
  std::vector<std::vector<int64_t>> full;
  for (const Value* v : inputs) {
    const auto& vd = v->type().dims;
    if (vd.size() > od.size()) {
      return InvalidArgument("fusion group input '" + v->name() + "' has a higher rank");
    }
    std::vector<int64_t> st(od.size(), 0);
    int64_t stride = 1;
    for (size_t i = 0; i < vd.size(); ++i) {
      const size_t a = od.size() - 1 - i;
      const int64_t d = vd[vd.size() - 1 - i].value();
      if (d != od[a] && d != 1) {
        return InvalidArgument("fusion group input '" + v->name() + "' does not broadcast to " +
                               space->type().ToString());
      }
      st[a] = d == 1 ? 0 : stride;
      stride *= d;
    }
    index[v] = static_cast<int>(k.inputs.size());
    k.inputs.push_back({v->dtype(), *v->type().NumElements(), {}});
    full.push_back(std::move(st));
  }
  // Collapse: drop unit axes, merge neighbours every argument walks as one.
  std::vector<std::vector<int64_t>> strides(inputs.size());
  for (size_t a = 0; a < od.size(); ++a) {
    if (od[a] == 1) continue;
    bool merge = !k.dims.empty();
    for (size_t j = 0; merge && j < inputs.size(); ++j) {
      merge = strides[j].back() == full[j][a] * od[a];
    }
    if (merge) {
      k.dims.back() *= od[a];
      for (size_t j = 0; j < inputs.size(); ++j) strides[j].back() = full[j][a];
      continue;
    }
    k.dims.push_back(od[a]);
    for (size_t j = 0; j < inputs.size(); ++j) strides[j].push_back(full[j][a]);
  }
  if (k.dims.empty()) {
    k.dims = {1};
    for (auto& s : strides) s = {0};
  }
  for (size_t j = 0; j < inputs.size(); ++j) k.inputs[j].strides = strides[j];
  k.elements = n;
  for (const Node* node : nodes) {
    if (node == reduction) break;
    if (!IsFusibleElementwise(*node)) {
      return InvalidArgument(node->Describe() + " is not an elementwise op the generator emits");
    }
    const auto& nd = node->output(0)->type().dims;
    std::vector<int64_t> d;
    for (const Dim& x : nd) d.push_back(x.value());
    if (d != od) return InvalidArgument(node->Describe() + ": output shape differs in its group");
    FusedKernel::Inst inst;
    inst.op = node->op_type();
    inst.dtype = node->output(0)->dtype();
    inst.alpha = node->attr_float("alpha", 0.01f);
    inst.tanh = node->attr_string("approximate", "none") == "tanh";
    for (const Value* in : node->inputs()) {
      auto it = index.find(in);
      if (it == index.end()) {
        return InvalidArgument(node->Describe() + ": input '" + in->name() +
                               "' is neither a group input nor computed before it");
      }
      inst.operands.push_back(it->second);
    }
    index[node->output(0)] = static_cast<int>(k.inputs.size() + k.insts.size());
    k.insts.push_back(std::move(inst));
  }
  if (reduction) {
    auto it = index.find(reduction->input(0));
    if (it == index.end()) {
      return InvalidArgument(reduction->Describe() + ": its input is not in its fusion group");
    }
    FusedKernel::Reduction r;
    r.op = reduction->op_type();
    r.value = it->second;
    r.dtype = reduction->output(0)->dtype();
    const int64_t rank = static_cast<int64_t>(od.size());
    std::vector<bool> red(od.size(), false);
    const std::vector<int64_t> axes = *ReduceAxes(*reduction);
    for (int64_t a : axes) red[a < 0 ? a + rank : a] = true;
    if (axes.empty()) red.assign(od.size(), true);
    r.outputs = r.count = 1;
    for (size_t a = 0; a < od.size(); ++a) {
      (red[a] ? r.count : r.outputs) *= od[a];
      if (od[a] == 1) continue;
      if (!r.dims.empty() && r.reduced.back() == red[a]) {
        r.dims.back() *= od[a];
      } else {
        r.dims.push_back(od[a]);
        r.reduced.push_back(red[a]);
      }
    }
    if (r.outputs != *reduction->output(0)->type().NumElements()) {
      return InvalidArgument(reduction->Describe() + ": output size disagrees with its axes");
    }
    k.reduce = std::move(r);
  }
  for (const Value* v : outputs) {
    if (reduction && v == reduction->output(0)) {
      k.outputs.push_back(FusedKernel::kReduced);
      continue;
    }
    auto it = index.find(v);
    if (it == index.end() || it->second < static_cast<int>(k.inputs.size())) {
      return InvalidArgument("fusion group output '" + v->name() + "' is not computed in it");
    }
    k.outputs.push_back(it->second);
  }
  return k;
}

std::string HashHex(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return fmt::format("{:016x}", h);
}

}  // namespace ampc
