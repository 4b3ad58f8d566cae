#include "codegen/node_kernels.h"

#include <fmt/format.h>

#include <bit>
#include <limits>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "ir/op_registry.h"

namespace ampc::node_kernels {
namespace {

bool Shaped(const Value* v, bool allow_symbolic) {
  if (!v || !v->type().has_rank) return false;
  for (const Dim& d : v->type().dims) {
    if (d.is_unknown() || (!allow_symbolic && !d.is_static())) return false;
    if (d.is_static() && d.value() == 0) return false;
  }
  return true;
}

bool Scalar(const Value* v, DType t) {
  if (!v || v->dtype() != t || !Shaped(v, false)) return false;
  auto n = v->type().NumElements();
  return n && *n == 1;
}

bool IsHalfOrF32(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}

// The input SGD or Adam reads its apply flag from.
int ApplyInput(const Node& n) { return n.op_type() == "Adam" ? 6 : 5; }

// SGD(lr, step, W, G [, M] [, apply]) and Adam(lr, step, W, G, M, V [, apply]) over f32 tensors
// (G may be f16/bf16, widened as it is read).
bool OptimizerSupported(const Node& n, bool allow_symbolic) {
  const bool adam = n.op_type() == "Adam";
  const int apply_at = ApplyInput(n);
  if (n.num_inputs() < (adam ? 6 : 4) || n.num_inputs() > apply_at + 1) return false;
  if (!Scalar(n.input(0), DType::kFloat32) || !Scalar(n.input(1), DType::kInt64)) return false;
  const Value* w = n.input(2);
  if (!w || w->dtype() != DType::kFloat32 || !Shaped(w, allow_symbolic)) return false;
  const bool has_m = adam || (n.num_inputs() > 4 && n.input(4));
  std::vector<const Value*> like_w = {n.input(3)};
  if (has_m) like_w.push_back(n.input(4));
  if (adam) like_w.push_back(n.input(5));
  for (const Value* v : like_w) {
    const bool grad = v == like_w.front();
    if (!v || (v->dtype() != DType::kFloat32 && !(grad && IsHalfOrF32(v->dtype()))) ||
        v->type().dims != w->type().dims) {
      return false;
    }
  }
  if (n.num_inputs() > apply_at && n.input(apply_at) && !Scalar(n.input(apply_at), DType::kBool)) {
    return false;
  }
  // Updated W and states, then the half copy of W' (attribute half_copy) when there is one.
  const int updated = adam ? 3 : has_m ? 2 : 1;
  const bool half = n.attr_int("half_copy", 0) != 0;
  if (n.num_outputs() != updated + (half ? 1 : 0)) return false;
  for (int i = 0; i < n.num_outputs(); ++i) {
    const Value* o = n.output(i);
    const bool ok_type = i < updated
                             ? o && o->dtype() == DType::kFloat32
                             : o && IsHalf(o->dtype()) &&
                                   DTypeToOnnxNumber(o->dtype()) == n.attr_int("half_copy", 0);
    if (!ok_type || o->type().dims != w->type().dims) return false;
  }
  return true;
}

bool AllFiniteSupported(const Node& n, bool allow_symbolic) {
  if (n.num_inputs() < 1 || n.num_outputs() != 1 || !Scalar(n.output(0), DType::kBool)) {
    return false;
  }
  for (const Value* v : n.inputs()) {
    if (!v || !IsHalfOrF32(v->dtype()) || !Shaped(v, allow_symbolic)) return false;
  }
  return true;
}

bool UpdateLossScaleSupported(const Node& n) {
  if (n.num_inputs() != 4 || n.num_outputs() != 3) return false;
  const DType in[] = {DType::kFloat32, DType::kInt64, DType::kInt64, DType::kBool};
  for (int i = 0; i < 4; ++i) {
    if (!Scalar(n.input(i), in[i])) return false;
  }
  for (int i = 0; i < 3; ++i) {
    if (!Scalar(n.output(i), in[i])) return false;
  }
  // growth_interval travels as a double (NodeOp::attrs): exact up to 2^53.
  return n.attr_int("growth_interval", 2000) <= (int64_t{1} << 53);
}

std::vector<int64_t> StaticDims(const Value* v) {
  std::vector<int64_t> d;
  for (const Dim& x : v->type().dims) d.push_back(x.is_static() ? x.value() : -1);
  return d;
}

// `v` has `want`'s elements and, aligned to the right, its dimensions (LayerNormalization's
// Scale and B: broadcast only through leading ones, so their elements are in `want`'s order).
bool SameLayout(const Value* v, const std::vector<int64_t>& want) {
  const std::vector<int64_t> d = StaticDims(v);
  if (d.size() > want.size()) return false;
  int64_t n = 1, m = 1;
  for (size_t i = 0; i < d.size(); ++i) {
    if (d[d.size() - 1 - i] != want[want.size() - 1 - i]) return false;
  }
  for (int64_t x : d) n *= x;
  for (int64_t x : want) m *= x;
  return n == m;
}

// The axis attribute in [0, rank), or -1.
int64_t Axis(const Node& n, int64_t rank) {
  const int64_t a = n.attr_int("axis", -1);
  const int64_t r = a < 0 ? a + rank : a;
  return r >= 0 && r < rank ? r : -1;
}

// LayerNormalization(X, Scale [, B]) -> Y [, Mean, InvStdDev] and RMSNormalization(X, Scale) -> Y
// over axes [axis, rank).
bool LayerNormSupported(const Node& n) {
  const bool rms = n.op_type() == "RMSNormalization";
  const Value* x = n.input(0);
  if (!x || !IsHalfOrF32(x->dtype()) || !Shaped(x, false) || x->type().rank() < 1) return false;
  const int64_t axis = Axis(n, x->type().rank());
  if (axis < 0 || n.num_inputs() < 2 || n.num_inputs() > (rms ? 2 : 3)) return false;
  const std::vector<int64_t> xd = StaticDims(x);
  const std::vector<int64_t> norm(xd.begin() + axis, xd.end());
  for (int i = 1; i < n.num_inputs(); ++i) {
    const Value* s = n.input(i);
    if (i == 2 && !s) continue;
    if (!s || !IsHalfOrF32(s->dtype()) || !Shaped(s, false) || !SameLayout(s, norm)) return false;
  }
  const Value* y = n.output(0);
  if (!y || y->dtype() != x->dtype() || StaticDims(y) != xd || n.num_outputs() > (rms ? 1 : 3)) {
    return false;
  }
  int64_t outer = 1;
  for (int64_t a = 0; a < axis; ++a) outer *= xd[a];
  for (int i = 1; i < n.num_outputs(); ++i) {
    const Value* o = n.output(i);
    if (o && (!IsHalfOrF32(o->dtype()) || !Shaped(o, false) || *o->type().NumElements() != outer))
      return false;
  }
  return true;
}

// Softmax / LogSoftmax(X) -> Y over one axis (the per-op kernel's [outer, C, inner] view).
bool SoftmaxSupported(const Node& n) {
  const Value* x = n.input(0);
  const Value* y = n.output(0);
  if (n.num_inputs() != 1 || n.num_outputs() != 1 || !x || !y) return false;
  if (!IsHalfOrF32(x->dtype()) || !Shaped(x, false) || x->type().rank() < 1) return false;
  return Axis(n, x->type().rank()) >= 0 && y->dtype() == x->dtype() &&
         StaticDims(y) == StaticDims(x);
}

// SoftmaxCrossEntropyLoss(scores [N, C, d...], labels [N, d...] [, weight [C]]) -> loss
// [, log_prob].
bool CrossEntropySupported(const Node& n) {
  const Value* x = n.input(0);
  const Value* l = n.input(1);
  if (n.num_inputs() < 2 || n.num_inputs() > 3 || !x || !l || !n.output(0)) return false;
  if (!IsHalfOrF32(x->dtype()) || !Shaped(x, false) || x->type().rank() < 2) return false;
  if ((l->dtype() != DType::kInt64 && l->dtype() != DType::kInt32) || !Shaped(l, false)) {
    return false;
  }
  const std::vector<int64_t> xd = StaticDims(x);
  std::vector<int64_t> ld = {xd[0]};
  ld.insert(ld.end(), xd.begin() + 2, xd.end());
  if (StaticDims(l) != ld) return false;
  if (const Value* w = n.num_inputs() > 2 ? n.input(2) : nullptr;
      w && (!IsHalfOrF32(w->dtype()) || StaticDims(w) != std::vector<int64_t>{xd[1]})) {
    return false;
  }
  const std::string r = n.attr_string("reduction", "mean");
  if (r != "none" && r != "sum" && r != "mean") return false;
  const Value* loss = n.output(0);
  const int64_t want = r == "none" ? *l->type().NumElements() : 1;
  if (loss->dtype() != x->dtype() || !Shaped(loss, false) || *loss->type().NumElements() != want) {
    return false;
  }
  if (n.num_outputs() > 2) return false;
  const Value* lp = n.num_outputs() > 1 ? n.output(1) : nullptr;
  return !lp || (lp->dtype() == x->dtype() && StaticDims(lp) == xd);
}

// GatherGrad(dY, indices, data_shape) -> dData (f32), data_shape known at compile time to be
// dData's shape (the per-op kernel checks it at run time).
bool GatherGradSupported(const Node& n) {
  if (n.num_inputs() != 3 || n.num_outputs() != 1) return false;
  const Value* dy = n.input(0);
  const Value* idx = n.input(1);
  const Value* shape = n.input(2);
  const Value* out = n.output(0);
  if (!dy || !idx || !shape || !out || dy->dtype() != DType::kFloat32 ||
      out->dtype() != DType::kFloat32 || !Shaped(dy, false) || !Shaped(out, false) ||
      !Shaped(idx, false) || (idx->dtype() != DType::kInt64 && idx->dtype() != DType::kInt32)) {
    return false;
  }
  const std::vector<int64_t> od = StaticDims(out);
  std::vector<int64_t> known;  // data_shape's value: an initializer's, or known from inference
  if (shape->initializer()) {
    if (auto v = shape->initializer()->AsInt64s()) known = *v;
  } else if (shape->known_ints()) {
    for (const Dim& d : *shape->known_ints()) known.push_back(d.is_static() ? d.value() : -1);
  }
  if (known != od) return false;
  const int64_t axis = Axis(n, static_cast<int64_t>(od.size()));
  if (axis < 0) return false;
  std::vector<int64_t> want(od.begin(), od.begin() + axis);
  for (int64_t d : StaticDims(idx)) want.push_back(d);
  want.insert(want.end(), od.begin() + axis + 1, od.end());
  return StaticDims(dy) == want;
}

// Elements of a parameter per unit of an optimizer kernel: the scalar prologue (two pow in
// double for Adam) runs once per unit.
constexpr int64_t kOptimizerBlock = 4096;

// The attributes an optimizer's code depends on (NodeOp::attrs), with the per-op kernels'
// defaults.
std::map<std::string, double> OptimizerAttrs(const Node& n) {
  std::map<std::string, double> a;
  auto f = [&](const char* name, float def) { a[name] = n.attr_float(name, def); };
  auto i = [&](const char* name, int64_t def) {
    a[name] = static_cast<double>(n.attr_int(name, def));
  };
  f("weight_decay", 0.0f);
  if (n.op_type() == "Adam") {
    f("beta1", 0.9f);
    f("beta2", 0.999f);
    f("epsilon", 1e-8f);
    i("decoupled", 0);
  } else {
    f("momentum", 0.0f);
    f("dampening", 0.0f);
    i("nesterov", 0);
  }
  return a;
}

bool IsOptimizer(const Node& n) {
  return n.domain() == kAmpcDomain && (n.op_type() == "SGD" || n.op_type() == "Adam");
}

// Contiguous softmax rows a CPU unit interleaves (at most; fewer when the row count asks).
constexpr int64_t kSoftmaxRows = 8;

}  // namespace

bool Supported(const Node& n, bool allow_symbolic) {
  const std::string& op = n.op_type();
  if (n.domain().empty()) {
    if (op == "LayerNormalization" || op == "RMSNormalization") return LayerNormSupported(n);
    if (op == "Softmax" || op == "LogSoftmax") return SoftmaxSupported(n);
    if (op == "SoftmaxCrossEntropyLoss") return CrossEntropySupported(n);
    return false;
  }
  if (n.domain() != kAmpcDomain) return false;
  if (op == "SGD" || op == "Adam") return OptimizerSupported(n, allow_symbolic);
  if (op == "AllFinite") return AllFiniteSupported(n, allow_symbolic);
  if (op == "UpdateLossScale") return UpdateLossScaleSupported(n);
  if (op == "GatherGrad") return GatherGradSupported(n);
  return false;
}

StatusOr<FusedKernel> Build(const Node& n, const std::vector<const Value*>& inputs,
                            const std::vector<const Value*>& outputs) {
  if (!Supported(n, false)) return InvalidArgument(n.Describe() + " has no node kernel");
  FusedKernel k;
  FusedKernel::NodeOp op;
  op.op = n.op_type();
  std::unordered_map<const Value*, int> in_index, out_index;
  for (const Value* v : inputs) {
    in_index[v] = static_cast<int>(k.inputs.size());
    k.inputs.push_back({v->dtype(), *v->type().NumElements(), {}});
  }
  for (const Value* v : outputs) {
    out_index[v] = static_cast<int>(op.outs.size());
    op.outs.push_back({v->dtype(), *v->type().NumElements(), {}});
  }
  for (const Value* v : n.inputs()) {
    if (!v) {
      op.operands.push_back(-1);
      continue;
    }
    auto it = in_index.find(v);
    if (it == in_index.end()) {
      return InvalidArgument(n.Describe() + ": input '" + v->name() + "' is not a group input");
    }
    op.operands.push_back(it->second);
  }
  op.range_output = -1;
  for (const Value* v : n.outputs()) {
    auto it = v ? out_index.find(v) : out_index.end();
    op.results.push_back(it == out_index.end() ? -1 : it->second);
    if (op.range_output < 0 && op.results.back() >= 0) op.range_output = op.results.back();
  }
  if (op.range_output < 0) return InvalidArgument(n.Describe() + ": no output is stored");
  const bool optimizer = op.op == "Adam" || op.op == "SGD";
  const Value* main = op.op == "GatherGrad" ? n.output(0) : n.input(optimizer ? 2 : 0);
  for (const Dim& d : main->type().dims) op.shape.push_back(d.value());
  const int64_t rank = static_cast<int64_t>(op.shape.size());
  auto product = [&](int64_t from, int64_t to) {
    int64_t p = 1;
    for (int64_t a = from; a < to; ++a) p *= op.shape[a];
    return p;
  };
  auto f = [&](const char* name, float def) { op.attrs[name] = n.attr_float(name, def); };
  auto i = [&](const char* name, int64_t def) {
    op.attrs[name] = static_cast<double>(n.attr_int(name, def));
  };
  if (optimizer) {
    const int64_t elements = op.outs[op.range_output].elements;
    op.unit = LargestDivisorAtMost(elements, kOptimizerBlock);
    op.unit_work = op.unit * 4;
    op.checks.push_back({op.operands[1], 0, std::numeric_limits<int64_t>::max(), false, 0});
    op.attrs = OptimizerAttrs(n);
  } else if (op.op == "LayerNormalization" || op.op == "RMSNormalization") {
    const int64_t axis = Axis(n, rank);
    op.attrs["axis"] = static_cast<double>(axis);
    f("epsilon", 1e-5f);
    if (op.results[0] < 0) return InvalidArgument(n.Describe() + ": Y is not stored");
    op.range_output = op.results[0];
    op.unit = product(axis, rank);
    op.unit_work = op.unit * 3;
  } else if (op.op == "Softmax" || op.op == "LogSoftmax") {
    const int64_t axis = Axis(n, rank);
    op.attrs["axis"] = static_cast<double>(axis);
    op.unit = op.shape[axis];  // a unit: one [outer, inner] position's C elements
    // Contiguous rows (inner 1) whose output is f32 (the exps' scratch): R of them per unit, so
    // that the generated code interleaves R rows' max and sum chains (SoftmaxRows in
    // node_kernels_mlir.cc). The transformer fixture's 16-wide attention rows, 8 per unit: 210 ->
    // 68 us per softmax, one thread.
    const int y = op.results[0];
    if (product(axis + 1, rank) == 1 && y >= 0 && op.outs[y].dtype == DType::kFloat32) {
      const int64_t outer = product(0, axis);
      for (int64_t r : {kSoftmaxRows, kSoftmaxRows / 2, kSoftmaxRows / 4}) {
        if (r > 1 && outer % r == 0) {
          op.unit *= r;
          break;
        }
      }
    }
    op.unit_work = op.unit * 3;
  } else if (op.op == "SoftmaxCrossEntropyLoss") {
    const std::string r = n.attr_string("reduction", "mean");
    op.attrs["reduction"] = r == "none" ? 0 : r == "sum" ? 1 : 2;
    const bool has_ignore = n.attr("ignore_index") != nullptr;
    op.attrs["has_ignore"] = has_ignore;
    i("ignore_index", 0);
    if (op.results[0] < 0) return InvalidArgument(n.Describe() + ": the loss is not stored");
    op.range_output = op.results[0];
    op.unit = op.outs[op.range_output].elements;  // one unit: the sum runs in order
    op.unit_work = product(0, rank);
    op.checks.push_back({op.operands[1], 0, op.shape[1] - 1, has_ignore,
                         static_cast<int64_t>(op.attrs["ignore_index"])});
  } else if (op.op == "GatherGrad") {
    const int64_t axis = Axis(n, rank);
    op.attrs["axis"] = static_cast<double>(axis);
    const int64_t rows = op.shape[axis];
    if (op.results[0] < 0) return InvalidArgument(n.Describe() + ": dData is not stored");
    op.range_output = op.results[0];
    op.unit = rows;  // a unit: one [outer, inner] position's column of dData
    op.unit_work = rows + *n.input(1)->type().NumElements();
    op.checks.push_back({op.operands[1], -rows, rows - 1, false, 0});
  } else if (op.op == "AllFinite") {
    op.unit = 1;
    op.unit_work = 0;
    for (const auto& a : k.inputs) op.unit_work += a.elements;
  } else {  // UpdateLossScale
    i("dynamic", 1);
    i("growth_interval", 2000);
    f("growth_factor", 2.0f);
    f("backoff_factor", 0.5f);
  }
  k.dims = {op.outs[op.range_output].elements};
  k.elements = k.dims[0];
  k.node = std::move(op);
  return k;
}

bool Groupable(const Node& n) { return IsOptimizer(n) && Supported(n, false); }

std::string GroupSignature(const Node& n) {
  std::string s = n.op_type();
  for (const auto& [name, v] : OptimizerAttrs(n)) {
    s += fmt::format(" {}={:016x}", name, std::bit_cast<uint64_t>(v));
  }
  for (int i : {0, 1, ApplyInput(n)}) {
    const Value* v = i < n.num_inputs() ? n.input(i) : nullptr;
    s += fmt::format(" {}", static_cast<const void*>(v));
  }
  return s;
}

std::pair<int, int> GroupArgs(const Node& n) {
  std::unordered_set<const Value*> shared, own;
  for (int i : {0, 1, ApplyInput(n)}) {
    if (i < n.num_inputs() && n.input(i)) shared.insert(n.input(i));
  }
  for (const Value* v : n.inputs()) {
    if (v && !shared.count(v)) own.insert(v);
  }
  for (const Value* v : n.outputs()) {
    if (v) own.insert(v);
  }
  return {static_cast<int>(own.size()), static_cast<int>(shared.size())};
}

StatusOr<FusedKernel> BuildMulti(const std::vector<const Node*>& nodes,
                                 const std::vector<const Value*>& inputs,
                                 const std::vector<const Value*>& outputs) {
  if (nodes.empty()) return InvalidArgument("an empty optimizer group");
  const std::string signature = GroupSignature(*nodes[0]);
  std::optional<FusedKernel> k;
  int64_t elements = 0;
  for (const Node* n : nodes) {
    if (!Groupable(*n) || GroupSignature(*n) != signature) {
      return InvalidArgument(n->Describe() + " cannot share a multi-tensor kernel with " +
                             nodes[0]->Describe());
    }
    ASSIGN_OR_RETURN(FusedKernel one, Build(*n, inputs, outputs));
    const FusedKernel::NodeOp& op = *one.node;
    FusedKernel::NodeOp::Member m{op.operands, op.results, op.outs[op.range_output].elements};
    elements += m.elements;
    if (!k) k = std::move(one);
    k->node->members.push_back(std::move(m));
  }
  FusedKernel::NodeOp& op = *k->node;
  op.unit = kOptimizerBlock;
  op.unit_work = op.unit * 4;
  op.units = op.AllMemberUnits();
  k->dims = {elements};
  k->elements = elements;
  return std::move(*k);
}

std::string Key(const FusedKernel& k) {
  const FusedKernel::NodeOp& op = *k.node;
  std::string s = "node-kernel v1 " + op.op + " shape";
  for (int64_t d : op.shape) s += fmt::format(" {}", d);
  for (const auto& [name, v] : op.attrs) {
    s += fmt::format("\n{}={:016x}", name, std::bit_cast<uint64_t>(v));
  }
  for (const auto& a : k.inputs) s += fmt::format("\nin {} n={}", DTypeName(a.dtype), a.elements);
  for (const auto& a : op.outs) s += fmt::format("\nout {} n={}", DTypeName(a.dtype), a.elements);
  s += "\noperands";
  for (int o : op.operands) s += fmt::format(" {}", o);
  s += "\nresults";
  for (int r : op.results) s += fmt::format(" {}", r);
  for (const auto& m : op.members) {
    s += fmt::format("\nmember n={} operands", m.elements);
    for (int o : m.operands) s += fmt::format(" {}", o);
    s += " results";
    for (int r : m.results) s += fmt::format(" {}", r);
  }
  s += fmt::format("\nunit {}", op.unit);
  if (op.gpu) s += fmt::format("\ngpu units {} fill {}", op.units, op.fill_byte);
  return s;
}

}  // namespace ampc::node_kernels
