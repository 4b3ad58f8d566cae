#include "codegen/node_kernels.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <bit>
#include <limits>
#include <unordered_map>

#include "codegen/mlir_text.h"
#include "ir/op_registry.h"

namespace ampc::node_kernels {
namespace {

using mlir_text::BodyWriter;
using mlir_text::MemrefElem;

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

// SGD(lr, step, W, G [, M] [, apply]) and Adam(lr, step, W, G, M, V [, apply]) over f32 tensors.
bool OptimizerSupported(const Node& n, bool allow_symbolic) {
  const bool adam = n.op_type() == "Adam";
  const int apply_at = adam ? 6 : 5;
  if (n.num_inputs() < (adam ? 6 : 4) || n.num_inputs() > apply_at + 1) return false;
  if (!Scalar(n.input(0), DType::kFloat32) || !Scalar(n.input(1), DType::kInt64)) return false;
  const Value* w = n.input(2);
  if (!w || w->dtype() != DType::kFloat32 || !Shaped(w, allow_symbolic)) return false;
  const bool has_m = adam || (n.num_inputs() > 4 && n.input(4));
  std::vector<const Value*> like_w = {n.input(3)};
  if (has_m) like_w.push_back(n.input(4));
  if (adam) like_w.push_back(n.input(5));
  for (const Value* v : like_w) {
    if (!v || v->dtype() != DType::kFloat32 || v->type().dims != w->type().dims) return false;
  }
  if (n.num_inputs() > apply_at && n.input(apply_at) &&
      !Scalar(n.input(apply_at), DType::kBool)) {
    return false;
  }
  if (n.num_outputs() != (adam ? 3 : has_m ? 2 : 1)) return false;
  for (const Value* o : n.outputs()) {
    if (!o || o->dtype() != DType::kFloat32 || o->type().dims != w->type().dims) return false;
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

// The largest divisor of n that is at most `most`.
int64_t Block(int64_t n, int64_t most) {
  for (int64_t b = std::min(n, most); b > 1; --b) {
    if (n % b == 0) return b;
  }
  return 1;
}

// Elements of a parameter per unit of an optimizer kernel: the scalar prologue (two pow in
// double for Adam) runs once per unit.
constexpr int64_t kOptimizerBlock = 4096;

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
  if (op.op == "Adam" || op.op == "SGD") {
    const int64_t elements = op.outs[op.range_output].elements;
    op.unit = Block(elements, kOptimizerBlock);
    op.unit_work = op.unit * 4;
    op.checks.push_back({op.operands[1], 0, std::numeric_limits<int64_t>::max(), false, 0});
    f("weight_decay", 0.0f);
    if (op.op == "Adam") {
      f("beta1", 0.9f);
      f("beta2", 0.999f);
      f("epsilon", 1e-8f);
      i("decoupled", 0);
    } else {
      f("momentum", 0.0f);
      f("dampening", 0.0f);
      i("nesterov", 0);
    }
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
  s += fmt::format("\nunit {}", op.unit);
  return s;
}

namespace {

class Emitter {
 public:
  Emitter(const FusedKernel& k, std::string* body) : k_(k), op_(*k.node), w_(body) {}

  std::string InType(int arg) const {
    return fmt::format("memref<{}x{}>", k_.inputs[arg].elements, MemrefElem(k_.inputs[arg].dtype));
  }
  std::string OutType(int j) const {
    return fmt::format("memref<{}x{}>", op_.outs[j].elements, MemrefElem(op_.outs[j].dtype));
  }
  // Node input i at index `ix` (its argument must exist).
  std::string Load(int i, const std::string& ix) {
    const int a = op_.operands[i];
    return w_.Line(fmt::format("memref.load %in{}[{}] : {}", a, ix, InType(a)));
  }
  // Stores `v` as node output i, when the group stores that output.
  void Store(int i, const std::string& v, const std::string& ix) {
    if (!Stored(i)) return;
    const int j = op_.results[i];
    w_.Raw(fmt::format("memref.store {}, %out{}[{}] : {}", v, j, ix, OutType(j)));
  }
  bool Has(int i) const {
    return i < static_cast<int>(op_.operands.size()) && op_.operands[i] >= 0;
  }
  double Attr(const char* name) const { return op_.attrs.at(name); }
  std::string Const(const std::string& v, const char* type) {
    return w_.Line(fmt::format("arith.constant {} : {}", v, type));
  }
  std::string Un(const char* op, const std::string& a, const char* type) {
    return w_.Line(fmt::format("{} {} : {}", op, a, type));
  }
  std::string Conv(const char* op, const std::string& a, const char* from, const char* to) {
    return w_.Line(fmt::format("{} {} : {} to {}", op, a, from, to));
  }
  std::string Cmp(const char* kind, const char* pred, const std::string& a, const std::string& b,
                  const char* type) {
    return w_.Line(fmt::format("{} {}, {}, {} : {}", kind, pred, a, b, type));
  }
  // The bool at node input i as i1 (true when absent).
  std::string Flag(int i) {
    if (!Has(i)) return w_.Line("arith.constant true");
    return Cmp("arith.cmpi", "ne", Load(i, w_.Index(0)), Const("0", "i8"), "i8");
  }

  DType InDType(int i) const { return k_.inputs[op_.operands[i]].dtype; }
  // Node input i at `ix` as f32 (f16/bf16 widened).
  std::string LoadF32(int i, const std::string& ix) {
    const std::string v = Load(i, ix);
    const DType t = InDType(i);
    return t == DType::kFloat32 ? v : t == DType::kFloat16 ? w_.HalfToF32(v) : w_.BF16ToF32(v);
  }
  // Stores the f32 `f` as node output i, rounded to its dtype.
  void StoreF32(int i, const std::string& f, const std::string& ix) {
    if (!Stored(i)) return;
    const int j = op_.results[i];
    const DType t = op_.outs[j].dtype;
    Store(i, t == DType::kFloat32 ? f : t == DType::kFloat16 ? w_.F32ToHalf(f) : w_.F32ToBF16(f),
          ix);
  }
  bool Stored(int i) const {
    return i < static_cast<int>(op_.results.size()) && op_.results[i] >= 0;
  }
  std::string Idx(const std::string& a, const char* op, int64_t b) {
    return w_.Bin(op, a, w_.Index(b), "index");
  }
  std::string Add(const std::string& a, const std::string& b) {
    return w_.Bin("arith.addi", a, b, "index");
  }

  // runtime/cpu/sums.h's SumOf order: term(j) for j in [0, n) into 8 double partial sums (j mod
  // 8), each in increasing j, combined as ((0+1)+(2+3))+((4+5)+(6+7)).
  std::string Sum8(int64_t n, const std::function<std::string(const std::string&)>& term) {
    const std::string zero = w_.F64(0.0);
    std::vector<std::string> acc(8, zero);
    const int64_t blocks = n / 8;
    if (blocks > 0) {
      const std::string res = w_.Fresh();
      std::vector<std::string> carried(8);
      std::string args, types, yields;
      for (int j = 0; j < 8; ++j) {
        carried[j] = w_.Fresh();
        args += fmt::format("{}{} = {}", j ? ", " : "", carried[j], zero);
        types += j ? ", f64" : "f64";
      }
      w_.Raw(fmt::format("{}:8 = scf.for %s8 = {} to {} step {} iter_args({}) -> ({}) {{", res,
                         w_.Index(0), w_.Index(blocks), w_.Index(1), args, types));
      const std::string base = Idx("%s8", "arith.muli", 8);
      for (int j = 0; j < 8; ++j) {
        const std::string t = term(j ? Idx(base, "arith.addi", j) : base);
        yields += (j ? ", " : "") + w_.Bin("arith.addf", carried[j], t, "f64");
      }
      w_.Raw(fmt::format("scf.yield {} : {}", yields, types));
      w_.Raw("}");
      for (int j = 0; j < 8; ++j) acc[j] = fmt::format("{}#{}", res, j);
    }
    for (int64_t j = 0; j < n % 8; ++j) {
      acc[j] = w_.Bin("arith.addf", acc[j], term(w_.Index(blocks * 8 + j)), "f64");
    }
    auto add = [&](const std::string& a, const std::string& b) {
      return w_.Bin("arith.addf", a, b, "f64");
    };
    return add(add(add(acc[0], acc[1]), add(acc[2], acc[3])),
               add(add(acc[4], acc[5]), add(acc[6], acc[7])));
  }

  // kernels_norm.cc's LayerNormImpl for row %i: mean and variance in double (Sum8), then f32.
  void LayerNorm() {
    const int64_t inner = op_.unit;
    const std::string base = Idx("%i", "arith.muli", inner);
    const std::string count = w_.F64(static_cast<double>(inner));
    auto x_at = [&](const std::string& j) { return LoadF32(0, Add(base, j)); };
    const std::string mean_d = w_.Bin(
        "arith.divf",
        Sum8(inner, [&](const std::string& j) { return Conv("arith.extf", x_at(j), "f32", "f64"); }),
        count, "f64");
    const std::string var_d = w_.Bin("arith.divf", Sum8(inner, [&](const std::string& j) {
      const std::string d =
          w_.Bin("arith.subf", Conv("arith.extf", x_at(j), "f32", "f64"), mean_d, "f64");
      return w_.Bin("arith.mulf", d, d, "f64");
    }), count, "f64");
    const std::string mean = Conv("arith.truncf", mean_d, "f64", "f32");
    const std::string var = Conv("arith.truncf", var_d, "f64", "f32");
    const std::string eps = w_.F32(static_cast<float>(Attr("epsilon")));
    const std::string inv = w_.Bin(
        "arith.divf", w_.F32(1.0f), Un("math.sqrt", w_.Bin("arith.addf", var, eps, "f32"), "f32"),
        "f32");
    w_.Raw(fmt::format("scf.for %e = {} to {} step {} {{", w_.Index(0), w_.Index(inner),
                       w_.Index(1)));
    const std::string at = Add(base, "%e");
    const std::string x = LoadF32(0, at);
    const std::string bias = Has(2) ? LoadF32(2, "%e") : w_.F32(0.0f);
    const std::string y = w_.Bin(
        "arith.addf",
        w_.Bin("arith.mulf",
               w_.Bin("arith.mulf", w_.Bin("arith.subf", x, mean, "f32"), inv, "f32"),
               LoadF32(1, "%e"), "f32"),
        bias, "f32");
    StoreF32(0, y, at);
    w_.Raw("}");
    StoreF32(1, mean, "%i");
    StoreF32(2, inv, "%i");
  }

  // kernels_group_rms_norm.cc's RMSNormImpl for row %i: the mean square in double (Sum8 of
  // (x - 0.0)^2), 1 / sqrt(mean + eps) in double, then f32.
  void RmsNorm() {
    const int64_t inner = op_.unit;
    const std::string base = Idx("%i", "arith.muli", inner);
    const std::string zero = w_.F64(0.0);
    const std::string mean_sq = w_.Bin("arith.divf", Sum8(inner, [&](const std::string& j) {
      const std::string d = w_.Bin(
          "arith.subf", Conv("arith.extf", LoadF32(0, Add(base, j)), "f32", "f64"), zero, "f64");
      return w_.Bin("arith.mulf", d, d, "f64");
    }), w_.F64(static_cast<double>(inner)), "f64");
    const std::string inv = Conv(
        "arith.truncf",
        w_.Bin("arith.divf", w_.F64(1.0),
               Un("math.sqrt",
                  w_.Bin("arith.addf", mean_sq,
                         w_.F64(static_cast<double>(static_cast<float>(Attr("epsilon")))), "f64"),
                  "f64"),
               "f64"),
        "f64", "f32");
    w_.Raw(fmt::format("scf.for %e = {} to {} step {} {{", w_.Index(0), w_.Index(inner),
                       w_.Index(1)));
    const std::string at = Add(base, "%e");
    StoreF32(0,
             w_.Bin("arith.mulf", w_.Bin("arith.mulf", LoadF32(0, at), inv, "f32"),
                    LoadF32(1, "%e"), "f32"),
             at);
    w_.Raw("}");
  }

  // kernels_grad.cc's GatherGradImpl for one [outer, inner] position (unit %i): its column of
  // dData zeroed, then dY's rows added in index order (each element's sum in the per-op order).
  void GatherGrad() {
    const int64_t axis = static_cast<int64_t>(Attr("axis"));
    const int64_t rows = op_.shape[axis];
    int64_t inner = 1;
    for (size_t a = axis + 1; a < op_.shape.size(); ++a) inner *= op_.shape[a];
    const int64_t kk = k_.inputs[op_.operands[1]].elements;
    const std::string o = Idx("%i", "arith.divui", inner), c = Idx("%i", "arith.remui", inner);
    const std::string base_d = Add(Idx(o, "arith.muli", rows * inner), c);
    const std::string base_y = Add(Idx(o, "arith.muli", kk * inner), c);
    const int j = op_.results[0];
    const std::string out = fmt::format("%out{}", j), type = OutType(j);
    w_.Raw(fmt::format("scf.for %k = {} to {} step {} {{", w_.Index(0), w_.Index(rows),
                       w_.Index(1)));
    w_.Raw(fmt::format("memref.store {}, {}[{}] : {}", w_.F32(0.0f), out,
                       Add(base_d, Idx("%k", "arith.muli", inner)), type));
    w_.Raw("}");
    w_.Raw(fmt::format("scf.for %k = {} to {} step {} {{", w_.Index(0), w_.Index(kk),
                       w_.Index(1)));
    std::string idx = Load(1, "%k");
    if (InDType(1) == DType::kInt32) idx = Conv("arith.extsi", idx, "i32", "i64");
    const std::string wrapped = w_.Select(
        Cmp("arith.cmpi", "slt", idx, Const("0", "i64"), "i64"),
        w_.Bin("arith.addi", idx, Const(std::to_string(rows), "i64"), "i64"), idx, "i64");
    const std::string at =
        Add(base_d, Idx(Conv("arith.index_cast", wrapped, "i64", "index"), "arith.muli", inner));
    const std::string sum =
        w_.Bin("arith.addf", w_.Line(fmt::format("memref.load {}[{}] : {}", out, at, type)),
               Load(0, Add(base_y, Idx("%k", "arith.muli", inner))), "f32");
    w_.Raw(fmt::format("memref.store {}, {}[{}] : {}", sum, out, at, type));
    w_.Raw("}");
  }

  // The max and the f32 sum of exp(x - max) over C elements from `base` with `stride` (the
  // per-op SoftmaxSlab's order for one [outer, inner] position); returns {max, sum}.
  std::pair<std::string, std::string> MaxAndSum(const std::string& base, int64_t stride, int64_t c,
                                                int input = 0) {
    auto at = [&](const std::string& k) {
      return stride == 1 ? Add(base, k) : Add(base, Idx(k, "arith.muli", stride));
    };
    const std::string m = w_.Fresh(), mc = w_.Fresh();
    w_.Raw(fmt::format("{} = scf.for %k = {} to {} step {} iter_args({} = {}) -> (f32) {{", m,
                       w_.Index(1), w_.Index(c), w_.Index(1), mc, LoadF32(input, base)));
    const std::string x = LoadF32(input, at("%k"));
    // std::max(m, x): m < x ? x : m (a NaN already in m stays; a NaN x is passed over).
    w_.Raw(fmt::format("scf.yield {} : f32", w_.Select(w_.CmpF("olt", mc, x), x, mc, "f32")));
    w_.Raw("}");
    const std::string s = w_.Fresh(), sc = w_.Fresh();
    w_.Raw(fmt::format("{} = scf.for %k = {} to {} step {} iter_args({} = {}) -> (f32) {{", s,
                       w_.Index(0), w_.Index(c), w_.Index(1), sc, w_.F32(0.0f)));
    const std::string e =
        Un("math.exp", w_.Bin("arith.subf", LoadF32(input, at("%k")), m, "f32"), "f32");
    w_.Raw(fmt::format("scf.yield {} : f32", w_.Bin("arith.addf", sc, e, "f32")));
    w_.Raw("}");
    return {m, s};
  }

  // Softmax / LogSoftmax of unit %i: the C elements of one [outer, inner] position.
  void Softmax(bool log) {
    const int64_t axis = static_cast<int64_t>(Attr("axis"));
    const int64_t c = op_.shape[axis];
    int64_t inner = 1;
    for (size_t a = axis + 1; a < op_.shape.size(); ++a) inner *= op_.shape[a];
    const std::string base =
        inner == 1 ? Idx("%i", "arith.muli", c)
                   : Add(Idx(Idx("%i", "arith.divui", inner), "arith.muli", c * inner),
                         Idx("%i", "arith.remui", inner));
    const auto [m, s] = MaxAndSum(base, inner, c);
    const std::string ls = log ? Un("math.log", s, "f32") : "";
    w_.Raw(fmt::format("scf.for %k = {} to {} step {} {{", w_.Index(0), w_.Index(c), w_.Index(1)));
    const std::string at = inner == 1 ? Add(base, "%k") : Add(base, Idx("%k", "arith.muli", inner));
    const std::string d = w_.Bin("arith.subf", LoadF32(0, at), m, "f32");
    StoreF32(0,
             log ? w_.Bin("arith.subf", d, ls, "f32")
                 : w_.Bin("arith.divf", Un("math.exp", d, "f32"), s, "f32"),
             at);
    w_.Raw("}");
  }

  // kernels_norm.cc's LossImpl with softmax, as one unit: per (n, d) in order the log-softmax
  // over C (stored as log_prob when it is), the loss term -w[label] * logp[label], and the sums
  // of the terms and of the weights in double.
  void CrossEntropy() {
    const int64_t n = op_.shape[0], c = op_.shape[1];
    int64_t d = 1;
    for (size_t a = 2; a < op_.shape.size(); ++a) d *= op_.shape[a];
    const int reduction = static_cast<int>(Attr("reduction"));
    const bool has_ignore = Attr("has_ignore") != 0;
    const std::string zero = w_.F64(0.0);
    const std::string res = w_.Fresh(), sum = w_.Fresh(), wsum = w_.Fresh();
    w_.Raw(fmt::format(
        "{}:2 = scf.for %r = {} to {} step {} iter_args({} = {}, {} = {}) -> (f64, f64) {{", res,
        w_.Index(0), w_.Index(n * d), w_.Index(1), sum, zero, wsum, zero));
    const std::string base = d == 1 ? Idx("%r", "arith.muli", c)
                                    : Add(Idx(Idx("%r", "arith.divui", d), "arith.muli", c * d),
                                          Idx("%r", "arith.remui", d));
    const auto [m, s] = MaxAndSum(base, d, c);
    const std::string ls = Un("math.log", s, "f32");
    auto at = [&](const std::string& k) {
      return d == 1 ? Add(base, k) : Add(base, Idx(k, "arith.muli", d));
    };
    auto logp = [&](const std::string& k) {
      return w_.Bin("arith.subf", w_.Bin("arith.subf", LoadF32(0, at(k)), m, "f32"), ls, "f32");
    };
    if (Stored(1)) {
      w_.Raw(
          fmt::format("scf.for %k = {} to {} step {} {{", w_.Index(0), w_.Index(c), w_.Index(1)));
      StoreF32(1, logp("%k"), at("%k"));
      w_.Raw("}");
    }
    std::string label = Load(1, "%r");
    if (InDType(1) == DType::kInt32) label = Conv("arith.extsi", label, "i32", "i64");
    std::string ignored = w_.Line("arith.constant false");
    if (has_ignore) {
      ignored = Cmp("arith.cmpi", "eq", label,
                    Const(std::to_string(static_cast<int64_t>(Attr("ignore_index"))), "i64"),
                    "i64");
    }
    // The executor checked every label (Kernel.arg_checks); an ignored one reads class 0.
    const std::string safe =
        Conv("arith.index_cast", w_.Select(ignored, Const("0", "i64"), label, "i64"), "i64",
             "index");
    const std::string wt = Has(2) ? LoadF32(2, safe) : w_.F32(1.0f);
    const std::string term = w_.Bin("arith.mulf", Un("arith.negf", wt, "f32"), logp(safe), "f32");
    const std::string l = w_.Select(ignored, w_.F32(0.0f), term, "f32");
    if (reduction == 0) StoreF32(0, l, "%r");
    const std::string next_sum =
        w_.Select(ignored, sum, w_.Bin("arith.addf", sum, Conv("arith.extf", term, "f32", "f64"),
                                       "f64"), "f64");
    const std::string next_wsum =
        w_.Select(ignored, wsum,
                  w_.Bin("arith.addf", wsum, Conv("arith.extf", wt, "f32", "f64"), "f64"), "f64");
    w_.Raw(fmt::format("scf.yield {}, {} : f64, f64", next_sum, next_wsum));
    w_.Raw("}");
    if (reduction != 0) {
      std::string v = res + "#0";
      if (reduction == 2) v = w_.Bin("arith.divf", v, res + "#1", "f64");
      StoreF32(0, Conv("arith.truncf", v, "f64", "f32"), w_.Index(0));
    }
  }

  // The loop over this unit's block of the optimizer's elements: %e in [i * unit, (i+1) * unit).
  void BeginBlock() {
    const std::string base = w_.Bin("arith.muli", "%i", w_.Index(op_.unit), "index");
    const std::string end = w_.Bin("arith.addi", base, w_.Index(op_.unit), "index");
    w_.Raw(fmt::format("scf.for %e = {} to {} step {} {{", base, end, w_.Index(1)));
  }
  void EndBlock() { w_.Raw("}"); }

  void Adam() {
    const double beta1 = Attr("beta1"), beta2 = Attr("beta2"), wd = Attr("weight_decay");
    const bool decoupled = Attr("decoupled") != 0;
    // Per unit: the coefficients that depend on lr and step, in double as the per-op kernel.
    const std::string c0 = w_.Index(0);
    const std::string lr = Conv("arith.extf", Load(0, c0), "f32", "f64");
    const std::string t = Conv("arith.sitofp",
                               w_.Bin("arith.addi", Load(1, c0), Const("1", "i64"), "i64"), "i64",
                               "f64");
    const std::string one = w_.F64(1.0);
    const std::string bc1 = w_.Bin("arith.subf", one, w_.Bin("math.powf", w_.F64(beta1), t, "f64"),
                                   "f64");
    const std::string bc2_sqrt = Un(
        "math.sqrt", w_.Bin("arith.subf", one, w_.Bin("math.powf", w_.F64(beta2), t, "f64"), "f64"),
        "f64");
    const std::string neg_step =
        Conv("arith.truncf", Un("arith.negf", w_.Bin("arith.divf", lr, bc1, "f64"), "f64"), "f64",
             "f32");
    const std::string bc2 = Conv("arith.truncf", bc2_sqrt, "f64", "f32");
    const std::string wdk =
        decoupled ? Conv("arith.truncf",
                         w_.Bin("arith.subf", one, w_.Bin("arith.mulf", lr, w_.F64(wd), "f64"),
                                "f64"),
                         "f64", "f32")
                  : w_.F32(static_cast<float>(wd));
    const std::string b1 = w_.F32(static_cast<float>(beta1));
    const std::string omb1 = w_.F32(static_cast<float>(1.0 - beta1));
    const std::string b2 = w_.F32(static_cast<float>(beta2));
    const std::string omb2 = w_.F32(static_cast<float>(1.0 - beta2));
    const std::string eps = w_.F32(static_cast<float>(Attr("epsilon")));
    const std::string apply = Flag(6);
    BeginBlock();
    const std::string wv = Load(2, "%e"), g = Load(3, "%e"), m = Load(4, "%e"), v = Load(5, "%e");
    std::string p = wv, d = g;
    if (decoupled) p = w_.Bin("arith.mulf", p, wdk, "f32");
    if (!decoupled && wd != 0) d = w_.Bin("arith.addf", d, w_.Bin("arith.mulf", wdk, p, "f32"), "f32");
    const std::string mi = w_.Bin("arith.addf", w_.Bin("arith.mulf", m, b1, "f32"),
                                  w_.Bin("arith.mulf", omb1, d, "f32"), "f32");
    const std::string vi =
        w_.Bin("arith.addf", w_.Bin("arith.mulf", v, b2, "f32"),
               w_.Bin("arith.mulf", w_.Bin("arith.mulf", omb2, d, "f32"), d, "f32"), "f32");
    const std::string denom =
        w_.Bin("arith.addf", w_.Bin("arith.divf", Un("math.sqrt", vi, "f32"), bc2, "f32"), eps,
               "f32");
    const std::string wn = w_.Bin(
        "arith.addf", p,
        w_.Bin("arith.mulf", neg_step, w_.Bin("arith.divf", mi, denom, "f32"), "f32"), "f32");
    Store(0, w_.Select(apply, wn, wv, "f32"), "%e");
    Store(1, w_.Select(apply, mi, m, "f32"), "%e");
    Store(2, w_.Select(apply, vi, v, "f32"), "%e");
    EndBlock();
  }

  void Sgd() {
    const float wd = static_cast<float>(Attr("weight_decay"));
    const float mom = static_cast<float>(Attr("momentum"));
    const float damp = static_cast<float>(1.0 - Attr("dampening"));
    const bool nesterov = Attr("nesterov") != 0;
    const bool has_m = Has(4);
    const std::string c0 = w_.Index(0);
    const std::string neg_lr = Un("arith.negf", Load(0, c0), "f32");
    const std::string first = Cmp("arith.cmpi", "eq", Load(1, c0), Const("0", "i64"), "i64");
    const std::string apply = Flag(5);
    const std::string wdc = w_.F32(wd), momc = w_.F32(mom), dampc = w_.F32(damp);
    BeginBlock();
    const std::string wv = Load(2, "%e");
    std::string d = Load(3, "%e");
    if (wd != 0.0f) d = w_.Bin("arith.addf", d, w_.Bin("arith.mulf", wdc, wv, "f32"), "f32");
    if (has_m) {
      const std::string m = Load(4, "%e");
      const std::string later = w_.Bin("arith.addf", w_.Bin("arith.mulf", m, momc, "f32"),
                                       w_.Bin("arith.mulf", dampc, d, "f32"), "f32");
      const std::string buf = w_.Select(first, d, later, "f32");
      Store(1, w_.Select(apply, buf, m, "f32"), "%e");
      d = nesterov ? w_.Bin("arith.addf", d, w_.Bin("arith.mulf", momc, buf, "f32"), "f32") : buf;
    }
    const std::string wn = w_.Bin("arith.addf", wv, w_.Bin("arith.mulf", neg_lr, d, "f32"), "f32");
    Store(0, w_.Select(apply, wn, wv, "f32"), "%e");
    EndBlock();
  }

  // One unit: any element of any input with all exponent bits set (inf or NaN) makes it false.
  void AllFinite() {
    std::string bad = w_.Line("arith.constant false");
    for (size_t i = 0; i < op_.operands.size(); ++i) {
      const int a = op_.operands[i];
      const DType t = k_.inputs[a].dtype;
      const std::string acc = w_.Fresh(), carried = w_.Fresh();
      w_.Raw(fmt::format("{} = scf.for %e = {} to {} step {} iter_args({} = {}) -> (i1) {{", acc,
                         w_.Index(0), w_.Index(k_.inputs[a].elements), w_.Index(1), carried, bad));
      const std::string x = Load(static_cast<int>(i), "%e");
      std::string hit;
      if (t == DType::kFloat32) {
        const std::string e = w_.Bin("arith.andi", w_.F32ToBits(x), w_.I32(0x7f800000), "i32");
        hit = w_.CmpI("eq", e, w_.I32(0x7f800000));
      } else {
        const std::string mask = Const(t == DType::kFloat16 ? "31744" : "32640", "i16");
        hit = Cmp("arith.cmpi", "eq", w_.Bin("arith.andi", x, mask, "i16"), mask, "i16");
      }
      w_.Raw(fmt::format("scf.yield {} : i1", w_.Bin("arith.ori", carried, hit, "i1")));
      w_.Raw("}");
      bad = acc;
    }
    const std::string ok = w_.Bin("arith.xori", bad, w_.Line("arith.constant true"), "i1");
    Store(0, Conv("arith.extui", ok, "i1", "i8"), w_.Index(0));
  }

  // GradScaler's update (the per-op UpdateLossScaleKernel) on scalars: every input is read
  // before any output is written (the outputs may be the inputs' buffers).
  void UpdateLossScale() {
    const std::string c0 = w_.Index(0);
    const std::string scale = Load(0, c0), tracker = Load(1, c0), skipped = Load(2, c0);
    const std::string finite = Flag(3);
    std::string new_scale = scale, new_tracker = tracker;
    if (Attr("dynamic") != 0) {
      const std::string zero = Const("0", "i64");
      const std::string t1 = w_.Bin("arith.addi", tracker, Const("1", "i64"), "i64");
      const std::string grow = Cmp(
          "arith.cmpi", "sge", t1,
          Const(std::to_string(static_cast<int64_t>(Attr("growth_interval"))), "i64"), "i64");
      const std::string grown =
          w_.Bin("arith.mulf", scale, w_.F32(static_cast<float>(Attr("growth_factor"))), "f32");
      const std::string grown_finite =
          w_.CmpF("olt", Un("math.absf", grown, "f32"), w_.F32(std::bit_cast<float>(0x7f800000u)));
      const std::string if_finite =
          w_.Select(w_.Bin("arith.andi", grow, grown_finite, "i1"), grown, scale, "f32");
      const std::string backed =
          w_.Bin("arith.mulf", scale, w_.F32(static_cast<float>(Attr("backoff_factor"))), "f32");
      new_scale = w_.Select(finite, if_finite, backed, "f32");
      new_tracker = w_.Select(finite, w_.Select(grow, zero, t1, "i64"), zero, "i64");
    }
    const std::string new_skipped = w_.Bin(
        "arith.addi", skipped, w_.Select(finite, Const("0", "i64"), Const("1", "i64"), "i64"),
        "i64");
    Store(0, new_scale, c0);
    Store(1, new_tracker, c0);
    Store(2, new_skipped, c0);
  }

 private:
  const FusedKernel& k_;
  const FusedKernel::NodeOp& op_;
  BodyWriter w_;
};

}  // namespace

std::string EmitMlir(const FusedKernel& k, const std::string& name) {
  std::string sig, body;
  for (size_t j = 0; j < k.inputs.size(); ++j) {
    sig += fmt::format(", %in{}: memref<{}x{}>", j, k.inputs[j].elements,
                       MemrefElem(k.inputs[j].dtype));
  }
  for (size_t j = 0; j < k.node->outs.size(); ++j) {
    sig += fmt::format(", %out{}: memref<{}x{}>", j, k.node->outs[j].elements,
                       MemrefElem(k.node->outs[j].dtype));
  }
  Emitter e(k, &body);
  const std::string& op = k.node->op;
  if (op == "LayerNormalization") {
    e.LayerNorm();
  } else if (op == "RMSNormalization") {
    e.RmsNorm();
  } else if (op == "Softmax" || op == "LogSoftmax") {
    e.Softmax(op == "LogSoftmax");
  } else if (op == "SoftmaxCrossEntropyLoss") {
    e.CrossEntropy();
  } else if (op == "GatherGrad") {
    e.GatherGrad();
  } else if (op == "Adam") {
    e.Adam();
  } else if (op == "SGD") {
    e.Sgd();
  } else if (op == "AllFinite") {
    e.AllFinite();
  } else {
    e.UpdateLossScale();
  }
  return mlir_text::KernelFunc(name, sig, body);
}

}  // namespace ampc::node_kernels
