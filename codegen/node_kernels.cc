#include "codegen/node_kernels.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
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
  if (n.domain() != kAmpcDomain) return false;
  const std::string& op = n.op_type();
  if (op == "SGD" || op == "Adam") return OptimizerSupported(n, allow_symbolic);
  if (op == "AllFinite") return AllFiniteSupported(n, allow_symbolic);
  if (op == "UpdateLossScale") return UpdateLossScaleSupported(n);
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
  for (const Dim& d : n.input(op.op == "AllFinite" || op.op == "UpdateLossScale" ? 0 : 2)
                          ->type()
                          .dims) {
    op.shape.push_back(d.value());
  }
  auto f = [&](const char* name, float def) { op.attrs[name] = n.attr_float(name, def); };
  auto i = [&](const char* name, int64_t def) {
    op.attrs[name] = static_cast<double>(n.attr_int(name, def));
  };
  if (op.op == "Adam" || op.op == "SGD") {
    const int64_t elements = op.outs[op.range_output].elements;
    op.unit = Block(elements, kOptimizerBlock);
    op.unit_work = op.unit * 4;
    op.nonnegative = {op.operands[1]};
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
    const int j = op_.results[i];
    if (j >= 0) w_.Raw(fmt::format("memref.store {}, %out{}[{}] : {}", v, j, ix, OutType(j)));
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
  if (op == "Adam") {
    e.Adam();
  } else if (op == "SGD") {
    e.Sgd();
  } else if (op == "AllFinite") {
    e.AllFinite();
  } else {
    e.UpdateLossScale();
  }
  return fmt::format(
      "func.func @{}(%begin: index, %end: index{}) attributes {{llvm.emit_c_interface}} {{\n"
      "  %one = arith.constant 1 : index\n"
      "  scf.parallel (%i) = (%begin) to (%end) step (%one) {{\n{}"
      "    scf.reduce\n"
      "  }}\n"
      "  return\n"
      "}}\n",
      name, sig, body);
}

}  // namespace ampc::node_kernels
