// EmitMlir (codegen/node_kernels.h): a node kernel's template per op, written as MLIR text with
// codegen/mlir_text.h's builder (no MLIR headers), in the per-op kernel's order of operations.
#include <fmt/format.h>

#include <bit>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "codegen/mlir_text.h"
#include "codegen/node_kernels.h"

namespace ampc::node_kernels {
namespace {

using mlir_text::BodyWriter;
using mlir_text::MemrefType;

class Emitter {
 public:
  Emitter(const FusedKernel& k, std::string* body) : k_(k), op_(*k.node), w_(body) {}

  std::string InType(int arg) const {
    return MemrefType(k_.inputs[arg].elements, k_.inputs[arg].dtype);
  }
  std::string OutType(int j) const { return MemrefType(op_.outs[j].elements, op_.outs[j].dtype); }
  // Node input i at index `ix` (its argument must exist).
  std::string Load(int i, const std::string& ix) {
    const int a = operands()[i];
    return w_.Line(fmt::format("memref.load %in{}[{}] : {}", a, ix, InType(a)));
  }
  // Stores `v` as node output i, when the group stores that output.
  void Store(int i, const std::string& v, const std::string& ix) {
    if (!Stored(i)) return;
    if (auto it = store_into_.find(i); it != store_into_.end()) {  // InPlaceOrNot's first copy
      const int a = operands()[it->second];
      w_.Raw(fmt::format("memref.store {}, %in{}[{}] : {}", v, a, ix, InType(a)));
      return;
    }
    const int j = results()[i];
    w_.Raw(fmt::format("memref.store {}, %out{}[{}] : {}", v, j, ix, OutType(j)));
  }
  bool Has(int i) const { return i < static_cast<int>(operands().size()) && operands()[i] >= 0; }
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

  DType InDType(int i) const { return k_.inputs[operands()[i]].dtype; }
  // Node input i at `ix` as f32 (f16/bf16 widened).
  std::string LoadF32(int i, const std::string& ix) {
    const std::string v = Load(i, ix);
    const DType t = InDType(i);
    return t == DType::kFloat32 ? v : t == DType::kFloat16 ? w_.HalfToF32(v) : w_.BF16ToF32(v);
  }
  // Stores the f32 `f` as node output i, rounded to its dtype.
  void StoreF32(int i, const std::string& f, const std::string& ix) {
    if (!Stored(i)) return;
    const int j = results()[i];
    const DType t = op_.outs[j].dtype;
    Store(i,
          t == DType::kFloat32   ? f
          : t == DType::kFloat16 ? w_.F32ToHalf(f)
                                 : w_.F32ToBF16(f),
          ix);
  }
  bool Stored(int i) const { return i < static_cast<int>(results().size()) && results()[i] >= 0; }
  std::string Idx(const std::string& a, const char* op, int64_t b) {
    return w_.Bin(op, a, w_.Index(b), "index");
  }
  std::string Add(const std::string& a, const std::string& b) {
    return w_.Bin("arith.addi", a, b, "index");
  }
  // Elements of the node's main operand after `axis` (the per-op kernels' `inner`).
  int64_t InnerOf(int64_t axis) const {
    int64_t inner = 1;
    for (size_t a = axis + 1; a < op_.shape.size(); ++a) inner *= op_.shape[a];
    return inner;
  }

  // `iv` from `from` to `to` (step 1) carrying one value of `type` per entry of `init`:
  // next(j, carried_j) writes the body and gives value j's next (called in order j = 0, 1, ...);
  // returns the loop's results.
  std::vector<std::string> ForCarrying(
      const std::string& iv, int64_t from, int64_t to, const std::vector<std::string>& init,
      const char* type, const std::function<std::string(int, const std::string&)>& next) {
    const std::string res = w_.Fresh();
    const int n = static_cast<int>(init.size());
    std::vector<std::string> carried(n);
    std::string args, types, yields;
    for (int j = 0; j < n; ++j) {
      carried[j] = w_.Fresh();
      args += fmt::format("{}{} = {}", j ? ", " : "", carried[j], init[j]);
      types += fmt::format("{}{}", j ? ", " : "", type);
    }
    w_.Raw(fmt::format("{}:{} = scf.for {} = {} to {} step {} iter_args({}) -> ({}) {{", res, n, iv,
                       w_.Index(from), w_.Index(to), w_.Index(1), args, types));
    for (int j = 0; j < n; ++j) yields += (j ? ", " : "") + next(j, carried[j]);
    w_.Raw(fmt::format("scf.yield {} : {}", yields, types));
    w_.Raw("}");
    std::vector<std::string> out(n);
    for (int j = 0; j < n; ++j) out[j] = fmt::format("{}#{}", res, j);
    return out;
  }

  // runtime/cpu/sums.h's SumOf order: term(j) for j in [0, n) into 8 double partial sums (j mod
  // 8), each in increasing j, combined as ((0+1)+(2+3))+((4+5)+(6+7)).
  std::string Sum8(int64_t n, const std::function<std::string(const std::string&)>& term) {
    const std::string zero = w_.F64(0.0);
    std::vector<std::string> acc(8, zero);
    const int64_t blocks = n / 8;
    if (blocks > 0) {
      std::string base;
      acc = ForCarrying("%s8", 0, blocks, acc, "f64", [&](int j, const std::string& carried) {
        if (j == 0) base = Idx("%s8", "arith.muli", 8);
        const std::string t = term(j ? Idx(base, "arith.addi", j) : base);
        return w_.Bin("arith.addf", carried, t, "f64");
      });
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
        Sum8(inner,
             [&](const std::string& j) { return Conv("arith.extf", x_at(j), "f32", "f64"); }),
        count, "f64");
    const std::string var_d =
        w_.Bin("arith.divf",
               Sum8(inner,
                    [&](const std::string& j) {
                      const std::string d = w_.Bin(
                          "arith.subf", Conv("arith.extf", x_at(j), "f32", "f64"), mean_d, "f64");
                      return w_.Bin("arith.mulf", d, d, "f64");
                    }),
               count, "f64");
    const std::string mean = Conv("arith.truncf", mean_d, "f64", "f32");
    const std::string var = Conv("arith.truncf", var_d, "f64", "f32");
    const std::string eps = w_.F32(static_cast<float>(Attr("epsilon")));
    const std::string inv =
        w_.Bin("arith.divf", w_.F32(1.0f),
               Un("math.sqrt", w_.Bin("arith.addf", var, eps, "f32"), "f32"), "f32");
    w_.Raw(
        fmt::format("scf.for %e = {} to {} step {} {{", w_.Index(0), w_.Index(inner), w_.Index(1)));
    const std::string at = Add(base, "%e");
    const std::string x = LoadF32(0, at);
    const std::string bias = Has(2) ? LoadF32(2, "%e") : w_.F32(0.0f);
    const std::string y = w_.Bin(
        "arith.addf",
        w_.Bin("arith.mulf", w_.Bin("arith.mulf", w_.Bin("arith.subf", x, mean, "f32"), inv, "f32"),
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
    const std::string mean_sq =
        w_.Bin("arith.divf",
               Sum8(inner,
                    [&](const std::string& j) {
                      const std::string d = w_.Bin(
                          "arith.subf", Conv("arith.extf", LoadF32(0, Add(base, j)), "f32", "f64"),
                          zero, "f64");
                      return w_.Bin("arith.mulf", d, d, "f64");
                    }),
               w_.F64(static_cast<double>(inner)), "f64");
    const std::string inv = Conv(
        "arith.truncf",
        w_.Bin("arith.divf", w_.F64(1.0),
               Un("math.sqrt",
                  w_.Bin("arith.addf", mean_sq,
                         w_.F64(static_cast<double>(static_cast<float>(Attr("epsilon")))), "f64"),
                  "f64"),
               "f64"),
        "f64", "f32");
    w_.Raw(
        fmt::format("scf.for %e = {} to {} step {} {{", w_.Index(0), w_.Index(inner), w_.Index(1)));
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
    const int64_t rows = op_.shape[axis], inner = InnerOf(axis);
    const int64_t kk = k_.inputs[op_.operands[1]].elements;
    const std::string o = Idx("%i", "arith.divui", inner), c = Idx("%i", "arith.remui", inner);
    const std::string base_d = Add(Idx(o, "arith.muli", rows * inner), c);
    const std::string base_y = Add(Idx(o, "arith.muli", kk * inner), c);
    const int j = op_.results[0];
    const std::string out = fmt::format("%out{}", j), type = OutType(j);
    w_.Raw(
        fmt::format("scf.for %k = {} to {} step {} {{", w_.Index(0), w_.Index(rows), w_.Index(1)));
    w_.Raw(fmt::format("memref.store {}, {}[{}] : {}", w_.F32(0.0f), out,
                       Add(base_d, Idx("%k", "arith.muli", inner)), type));
    w_.Raw("}");
    w_.Raw(fmt::format("scf.for %k = {} to {} step {} {{", w_.Index(0), w_.Index(kk), w_.Index(1)));
    std::string idx = Load(1, "%k");
    if (InDType(1) == DType::kInt32) idx = Conv("arith.extsi", idx, "i32", "i64");
    const std::string wrapped =
        w_.Select(Cmp("arith.cmpi", "slt", idx, Const("0", "i64"), "i64"),
                  w_.Bin("arith.addi", idx, Const(std::to_string(rows), "i64"), "i64"), idx, "i64");
    const std::string at =
        Add(base_d, Idx(Conv("arith.index_cast", wrapped, "i64", "index"), "arith.muli", inner));
    const std::string sum =
        w_.Bin("arith.addf", w_.Line(fmt::format("memref.load {}[{}] : {}", out, at, type)),
               Load(0, Add(base_y, Idx("%k", "arith.muli", inner))), "f32");
    w_.Raw(fmt::format("memref.store {}, {}[{}] : {}", sum, out, at, type));
    w_.Raw("}");
  }

  // Where a row kernel keeps the exps of one row: a memref of f32, indexed by the row element's
  // position (an f32 output of x's shape) or by k (a scratch row of C floats).
  struct Scratch {
    std::string memref, type;
    bool by_position = false;
  };
  // Node output i as the scratch, when it is stored as f32 with the input's element indexing.
  std::optional<Scratch> OutScratch(int i) const {
    if (!Stored(i)) return std::nullopt;
    const int j = op_.results[i];
    if (op_.outs[j].dtype != DType::kFloat32 ||
        op_.outs[j].elements != k_.inputs[op_.operands[0]].elements) {
      return std::nullopt;
    }
    return Scratch{fmt::format("%out{}", j), OutType(j), true};
  }

  // The max and the f32 sum of exp(x - max) over C elements from `base` with `stride` (the
  // per-op SoftmaxSlab's order for one [outer, inner] position); returns {max, sum}. With a
  // scratch, each exp(x - max) is computed once into it by a loop that carries no value (LLVM
  // vectorises it) and summed from there in element order; the caller may read the exps back
  // (Softmax) or overwrite them. Without one the exps are computed inside the summing loop
  // (scalar, as the loop carries the sum).
  std::pair<std::string, std::string> MaxAndSum(const std::string& base, int64_t stride, int64_t c,
                                                const std::optional<Scratch>& row) {
    auto at = [&](const std::string& k) {
      return stride == 1 ? Add(base, k) : Add(base, Idx(k, "arith.muli", stride));
    };
    const std::string m = w_.Fresh(), mc = w_.Fresh();
    w_.Raw(fmt::format("{} = scf.for %k = {} to {} step {} iter_args({} = {}) -> (f32) {{", m,
                       w_.Index(1), w_.Index(c), w_.Index(1), mc, LoadF32(0, base)));
    const std::string x = LoadF32(0, at("%k"));
    // std::max(m, x): m < x ? x : m (a NaN already in m stays; a NaN x is passed over).
    w_.Raw(fmt::format("scf.yield {} : f32", w_.Select(w_.CmpF("olt", mc, x), x, mc, "f32")));
    w_.Raw("}");
    auto row_ix = [&] { return row->by_position ? at("%k") : std::string("%k"); };
    auto exp_at = [&](const std::string& k) {
      return mlir_text::Exp(w_, w_.Bin("arith.subf", LoadF32(0, at(k)), m, "f32"));
    };
    if (row) {
      w_.Raw(
          fmt::format("scf.for %k = {} to {} step {} {{", w_.Index(0), w_.Index(c), w_.Index(1)));
      const std::string e = exp_at("%k");
      w_.Raw(fmt::format("memref.store {}, {}[{}] : {}", e, row->memref, row_ix(), row->type));
      w_.Raw("}");
    }
    const std::string s = w_.Fresh(), sc = w_.Fresh();
    w_.Raw(fmt::format("{} = scf.for %k = {} to {} step {} iter_args({} = {}) -> (f32) {{", s,
                       w_.Index(0), w_.Index(c), w_.Index(1), sc, w_.F32(0.0f)));
    const std::string e = row ? LoadScratch(*row, row_ix()) : exp_at("%k");
    w_.Raw(fmt::format("scf.yield {} : f32", w_.Bin("arith.addf", sc, e, "f32")));
    w_.Raw("}");
    return {m, s};
  }
  // The scratch at index `ix` (the element's position, or k).
  std::string LoadScratch(const Scratch& r, const std::string& ix) {
    return w_.Line(fmt::format("memref.load {}[{}] : {}", r.memref, ix, r.type));
  }

  // Softmax / LogSoftmax of R contiguous rows (unit %i: rows %i * R + r, inner == 1, the f32
  // output as the scratch): each row's values computed in MaxAndSum's and Softmax's order, the
  // R rows interleaved in every loop so that their max and sum chains (one select or add per
  // element, in element order) overlap instead of running one after another.
  void SoftmaxRows(bool log, int64_t c, int64_t rows) {
    const std::optional<Scratch> row = OutScratch(0);
    const std::string first = Idx("%i", "arith.muli", rows * c);
    std::vector<std::string> base(rows);
    for (int64_t r = 0; r < rows; ++r) base[r] = r == 0 ? first : Add(first, w_.Index(r * c));
    auto at = [&](int64_t r) { return Add(base[r], "%k"); };
    // The running max (from each row's first element) and the running sum (from 0) of R rows.
    auto chains = [&](int64_t from, const std::vector<std::string>& init, auto&& next) {
      return ForCarrying("%k", from, c, init, "f32", next);
    };
    std::vector<std::string> firsts(rows), zeros(rows, w_.F32(0.0f));
    for (int64_t r = 0; r < rows; ++r) firsts[r] = LoadF32(0, base[r]);
    const std::vector<std::string> m = chains(1, firsts, [&](int64_t r, const std::string& mc) {
      const std::string x = LoadF32(0, at(r));
      return w_.Select(w_.CmpF("olt", mc, x), x, mc, "f32");
    });
    w_.Raw(fmt::format("scf.for %k = {} to {} step {} {{", w_.Index(0), w_.Index(c), w_.Index(1)));
    for (int64_t r = 0; r < rows; ++r) {
      const std::string e =
          mlir_text::Exp(w_, w_.Bin("arith.subf", LoadF32(0, at(r)), m[r], "f32"));
      w_.Raw(fmt::format("memref.store {}, {}[{}] : {}", e, row->memref, at(r), row->type));
    }
    w_.Raw("}");
    const std::vector<std::string> sum = chains(0, zeros, [&](int64_t r, const std::string& sc) {
      return w_.Bin("arith.addf", sc, LoadScratch(*row, at(r)), "f32");
    });
    std::vector<std::string> ls(rows);
    if (log) {
      for (int64_t r = 0; r < rows; ++r) ls[r] = Un("math.log", sum[r], "f32");
    }
    w_.Raw(fmt::format("scf.for %k = {} to {} step {} {{", w_.Index(0), w_.Index(c), w_.Index(1)));
    for (int64_t r = 0; r < rows; ++r) {
      const std::string ix = at(r);
      StoreF32(0,
               log ? w_.Bin("arith.subf", w_.Bin("arith.subf", LoadF32(0, ix), m[r], "f32"), ls[r],
                            "f32")
                   : w_.Bin("arith.divf", LoadScratch(*row, ix), sum[r], "f32"),
               ix);
    }
    w_.Raw("}");
  }

  // Softmax / LogSoftmax of unit %i: the C elements of one [outer, inner] position (or R
  // contiguous rows, node_kernels.cc's choice: SoftmaxRows).
  void Softmax(bool log) {
    const int64_t axis = static_cast<int64_t>(Attr("axis"));
    const int64_t c = op_.shape[axis], inner = InnerOf(axis);
    if (op_.unit > c) {
      SoftmaxRows(log, c, op_.unit / c);
      return;
    }
    const std::string base =
        inner == 1 ? Idx("%i", "arith.muli", c)
                   : Add(Idx(Idx("%i", "arith.divui", inner), "arith.muli", c * inner),
                         Idx("%i", "arith.remui", inner));
    auto at = [&](const std::string& k) {
      return inner == 1 ? Add(base, k) : Add(base, Idx(k, "arith.muli", inner));
    };
    const std::optional<Scratch> row = OutScratch(0);
    const auto [m, s] = MaxAndSum(base, inner, c, row);
    const std::string ls = log ? Un("math.log", s, "f32") : "";
    w_.Raw(fmt::format("scf.for %k = {} to {} step {} {{", w_.Index(0), w_.Index(c), w_.Index(1)));
    const std::string ix = at("%k");
    if (log) {
      StoreF32(0, w_.Bin("arith.subf", w_.Bin("arith.subf", LoadF32(0, ix), m, "f32"), ls, "f32"),
               ix);
    } else {  // e / sum, e read back from the output (or computed again)
      const std::string e =
          row ? LoadScratch(*row, ix)
              : mlir_text::Exp(w_, w_.Bin("arith.subf", LoadF32(0, ix), m, "f32"));
      StoreF32(0, w_.Bin("arith.divf", e, s, "f32"), ix);
    }
    w_.Raw("}");
  }

  static constexpr int64_t kScratchRow = 1 << 16;  // floats (256 KiB) in CrossEntropy's stack row

  // kernels_norm.cc's LossImpl with softmax, as one unit: per (n, d) in order the log-softmax
  // over C (stored as log_prob when it is), the loss term -w[label] * logp[label], and the sums
  // of the terms and of the weights in double.
  void CrossEntropy() {
    const int64_t n = op_.shape[0], c = op_.shape[1], d = InnerOf(1);
    const int reduction = static_cast<int>(Attr("reduction"));
    const bool has_ignore = Attr("has_ignore") != 0;
    const std::string zero = w_.F64(0.0);
    // The GPU's grain with reduction none (passes/split_loss): unit %i is row %i, no sums.
    const bool per_row = op_.gpu && reduction == 0;
    // Otherwise the kernel is one unit (the sums run in row order), so one scratch row of the
    // unit's stack serves every row when log_prob is not an f32 output to use. Per row on a GPU,
    // a row of local memory per thread would be too much (50257 classes: 200 KB): exp is
    // computed again instead, to the same values.
    std::optional<Scratch> row = OutScratch(1);
    if (!row && c <= kScratchRow && !per_row) {
      const std::string type = fmt::format("memref<{}xf32>", c);
      row = Scratch{w_.Line(fmt::format("memref.alloca() : {}", type)), type, false};
    }
    const std::string res = w_.Fresh(), sum = w_.Fresh(), wsum = w_.Fresh();
    const std::string r = per_row ? "%i" : "%r";
    if (!per_row) {
      w_.Raw(fmt::format(
          "{}:2 = scf.for %r = {} to {} step {} iter_args({} = {}, {} = {}) -> (f64, f64) {{", res,
          w_.Index(0), w_.Index(n * d), w_.Index(1), sum, zero, wsum, zero));
    }
    const std::string base =
        d == 1 ? Idx(r, "arith.muli", c)
               : Add(Idx(Idx(r, "arith.divui", d), "arith.muli", c * d), Idx(r, "arith.remui", d));
    const auto [m, s] = MaxAndSum(base, d, c, row);
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
    std::string label = Load(1, r);
    if (InDType(1) == DType::kInt32) label = Conv("arith.extsi", label, "i32", "i64");
    std::string ignored = w_.Line("arith.constant false");
    if (has_ignore) {
      ignored =
          Cmp("arith.cmpi", "eq", label,
              Const(std::to_string(static_cast<int64_t>(Attr("ignore_index"))), "i64"), "i64");
    }
    // The executor checked every label (Kernel.arg_checks); an ignored one reads class 0.
    const std::string safe = Conv(
        "arith.index_cast", w_.Select(ignored, Const("0", "i64"), label, "i64"), "i64", "index");
    const std::string wt = Has(2) ? LoadF32(2, safe) : w_.F32(1.0f);
    const std::string term = w_.Bin("arith.mulf", Un("arith.negf", wt, "f32"), logp(safe), "f32");
    const std::string l = w_.Select(ignored, w_.F32(0.0f), term, "f32");
    if (reduction == 0) StoreF32(0, l, r);
    if (per_row) return;
    const std::string next_sum =
        w_.Select(ignored, sum,
                  w_.Bin("arith.addf", sum, Conv("arith.extf", term, "f32", "f64"), "f64"), "f64");
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

  // Emits `body` twice under one scf.if: first with node output o stored through node input i's
  // memref for each (o, i) of `pairs`, taken when every such pair is the same memory (the
  // optimizer's in-place update of its parameter and moments); then as written, for buffers
  // that differ. Both compute the same values. LLVM vectorises the first without a run-time
  // overlap check between input and output, the check that exact in-place aliasing fails,
  // sending the second to its scalar loop (measured: AdamW over 200k parameters 430 -> 70 us).
  void InPlaceOrNot(const std::vector<std::pair<int, int>>& pairs,
                    const std::function<void()>& body) {
    std::string same = w_.Line("arith.constant true");
    std::map<int, int> into;
    auto pointer = [&](const char* kind, int arg, const std::string& type) {
      return w_.Line(fmt::format("memref.extract_aligned_pointer_as_index %{}{} : {} -> index",
                                 kind, arg, type));
    };
    for (const auto& [o, i] : pairs) {
      if (!Stored(o) || !Has(i)) continue;
      const int j = results()[o], a = operands()[i];
      const std::string eq =
          w_.Line(fmt::format("arith.cmpi eq, {}, {} : index", pointer("out", j, OutType(j)),
                              pointer("in", a, InType(a))));
      same = w_.Bin("arith.andi", same, eq, "i1");
      into[o] = i;
    }
    if (into.empty()) {
      body();
      return;
    }
    w_.Raw(fmt::format("scf.if {} {{", same));
    store_into_ = into;
    body();
    store_into_.clear();
    w_.Raw("} else {");
    body();
    w_.Raw("}");
  }

  // The loop over this unit's block of the optimizer's elements: %e in [i * unit, (i+1) * unit);
  // in a multi-tensor kernel, of the current member's, i counted from its first unit and the
  // last block cut at its elements.
  void BeginBlock() {
    std::string i = "%i";
    if (member_) i = w_.Bin("arith.subi", i, w_.Index(member_first_unit_), "index");
    const std::string base = w_.Bin("arith.muli", i, w_.Index(op_.unit), "index");
    std::string end = w_.Bin("arith.addi", base, w_.Index(op_.unit), "index");
    if (member_ && member_->elements % op_.unit != 0) {
      end = w_.Bin("arith.minsi", end, w_.Index(member_->elements), "index");
    }
    w_.Raw(fmt::format("scf.for %e = {} to {} step {} {{", base, end, w_.Index(1)));
  }
  void EndBlock() { w_.Raw("}"); }

  void Adam() {
    const double beta1 = Attr("beta1"), beta2 = Attr("beta2"), wd = Attr("weight_decay");
    const bool decoupled = Attr("decoupled") != 0;
    // Per unit: the coefficients that depend on lr and step, in double as the per-op kernel.
    const std::string c0 = w_.Index(0);
    const std::string lr = Conv("arith.extf", Load(0, c0), "f32", "f64");
    const std::string t = Conv(
        "arith.sitofp", w_.Bin("arith.addi", Load(1, c0), Const("1", "i64"), "i64"), "i64", "f64");
    const std::string one = w_.F64(1.0);
    const std::string bc1 =
        w_.Bin("arith.subf", one, w_.Bin("math.powf", w_.F64(beta1), t, "f64"), "f64");
    const std::string bc2_sqrt =
        Un("math.sqrt",
           w_.Bin("arith.subf", one, w_.Bin("math.powf", w_.F64(beta2), t, "f64"), "f64"), "f64");
    const std::string neg_step =
        Conv("arith.truncf", Un("arith.negf", w_.Bin("arith.divf", lr, bc1, "f64"), "f64"), "f64",
             "f32");
    const std::string bc2 = Conv("arith.truncf", bc2_sqrt, "f64", "f32");
    const std::string wdk =
        decoupled
            ? Conv("arith.truncf",
                   w_.Bin("arith.subf", one, w_.Bin("arith.mulf", lr, w_.F64(wd), "f64"), "f64"),
                   "f64", "f32")
            : w_.F32(static_cast<float>(wd));
    const std::string b1 = w_.F32(static_cast<float>(beta1));
    const std::string omb1 = w_.F32(static_cast<float>(1.0 - beta1));
    const std::string b2 = w_.F32(static_cast<float>(beta2));
    const std::string omb2 = w_.F32(static_cast<float>(1.0 - beta2));
    const std::string eps = w_.F32(static_cast<float>(Attr("epsilon")));
    const std::string apply = Flag(6);
    ForEachMember([&] {
      InPlaceOrNot({{0, 2}, {1, 4}, {2, 5}}, [&] {
        BeginBlock();
        const std::string wv = Load(2, "%e"), g = LoadF32(3, "%e"), m = Load(4, "%e"),
                          v = Load(5, "%e");
        std::string p = wv, d = g;
        if (decoupled) p = w_.Bin("arith.mulf", p, wdk, "f32");
        if (!decoupled && wd != 0)
          d = w_.Bin("arith.addf", d, w_.Bin("arith.mulf", wdk, p, "f32"), "f32");
        const std::string mi = w_.Bin("arith.addf", w_.Bin("arith.mulf", m, b1, "f32"),
                                      w_.Bin("arith.mulf", omb1, d, "f32"), "f32");
        const std::string vi =
            w_.Bin("arith.addf", w_.Bin("arith.mulf", v, b2, "f32"),
                   w_.Bin("arith.mulf", w_.Bin("arith.mulf", omb2, d, "f32"), d, "f32"), "f32");
        const std::string denom = w_.Bin(
            "arith.addf", w_.Bin("arith.divf", Un("math.sqrt", vi, "f32"), bc2, "f32"), eps, "f32");
        const std::string wn = w_.Bin(
            "arith.addf", p,
            w_.Bin("arith.mulf", neg_step, w_.Bin("arith.divf", mi, denom, "f32"), "f32"), "f32");
        const std::string w_next = w_.Select(apply, wn, wv, "f32");
        Store(0, w_next, "%e");
        Store(1, w_.Select(apply, mi, m, "f32"), "%e");
        Store(2, w_.Select(apply, vi, v, "f32"), "%e");
        StoreF32(3, w_next, "%e");  // the half copy, when the node has one
        EndBlock();
      });
    });
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
    ForEachMember([&] {
      InPlaceOrNot({{0, 2}, {1, 4}}, [&] {
        BeginBlock();
        const std::string wv = Load(2, "%e");
        std::string d = LoadF32(3, "%e");
        if (wd != 0.0f) d = w_.Bin("arith.addf", d, w_.Bin("arith.mulf", wdc, wv, "f32"), "f32");
        if (has_m) {
          const std::string m = Load(4, "%e");
          const std::string later = w_.Bin("arith.addf", w_.Bin("arith.mulf", m, momc, "f32"),
                                           w_.Bin("arith.mulf", dampc, d, "f32"), "f32");
          const std::string buf = w_.Select(first, d, later, "f32");
          Store(1, w_.Select(apply, buf, m, "f32"), "%e");
          d = nesterov ? w_.Bin("arith.addf", d, w_.Bin("arith.mulf", momc, buf, "f32"), "f32")
                       : buf;
        }
        const std::string wn =
            w_.Bin("arith.addf", wv, w_.Bin("arith.mulf", neg_lr, d, "f32"), "f32");
        const std::string w_next = w_.Select(apply, wn, wv, "f32");
        Store(0, w_next, "%e");
        StoreF32(has_m ? 2 : 1, w_next, "%e");  // the half copy, when the node has one
        EndBlock();
      });
    });
  }

  // An element with all exponent bits set (inf or NaN).
  std::string NonFinite(DType t, const std::string& x) {
    if (t == DType::kFloat32) {
      const std::string e = w_.Bin("arith.andi", w_.F32ToBits(x), w_.I32(0x7f800000), "i32");
      return w_.CmpI("eq", e, w_.I32(0x7f800000));
    }
    const std::string mask = Const(t == DType::kFloat16 ? "31744" : "32640", "i16");
    return Cmp("arith.cmpi", "eq", w_.Bin("arith.andi", x, mask, "i16"), mask, "i16");
  }

  // The GPU's grain: unit %i checks element %i of every input that has one, and stores false
  // if any is not finite; the executor fills the flag with true before the call.
  void AllFiniteGpu() {
    std::string bad = w_.Line("arith.constant false");
    for (size_t i = 0; i < op_.operands.size(); ++i) {
      const int a = op_.operands[i];
      const std::string inside =
          Cmp("arith.cmpi", "ult", "%i", w_.Index(k_.inputs[a].elements), "index");
      const std::string hit = w_.Fresh();
      w_.Raw(fmt::format("{} = scf.if {} -> (i1) {{", hit, inside));
      w_.Raw(fmt::format("scf.yield {} : i1",
                         NonFinite(k_.inputs[a].dtype, Load(static_cast<int>(i), "%i"))));
      w_.Raw("} else {");
      w_.Raw(fmt::format("scf.yield {} : i1", w_.Line("arith.constant false")));
      w_.Raw("}");
      bad = w_.Bin("arith.ori", bad, hit, "i1");
    }
    w_.Raw(fmt::format("scf.if {} {{", bad));
    Store(0, Conv("arith.extui", w_.Line("arith.constant false"), "i1", "i8"), w_.Index(0));
    w_.Raw("}");
  }

  // One unit: any element of any input with all exponent bits set (inf or NaN) makes it false.
  void AllFinite() {
    if (op_.gpu) return AllFiniteGpu();
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
      const std::string grow =
          Cmp("arith.cmpi", "sge", t1,
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
    const std::string new_skipped =
        w_.Bin("arith.addi", skipped,
               w_.Select(finite, Const("0", "i64"), Const("1", "i64"), "i64"), "i64");
    Store(0, new_scale, c0);
    Store(1, new_tracker, c0);
    Store(2, new_skipped, c0);
  }

 private:
  // The node's operands and results: the current member's in a multi-tensor kernel.
  const std::vector<int>& operands() const { return member_ ? member_->operands : op_.operands; }
  const std::vector<int>& results() const { return member_ ? member_->results : op_.results; }

  // body() for each member of a multi-tensor optimizer (once for a kernel of one node), with
  // that member's operands and results, under a binary search of the unit %i over the members'
  // first units (constants): log2(members) compares per unit.
  void ForEachMember(const std::function<void()>& body) {
    if (op_.members.empty()) {
      body();
      return;
    }
    std::vector<int64_t> first{0};
    for (size_t m = 0; m < op_.members.size(); ++m) first.push_back(first[m] + op_.MemberUnits(m));
    const std::function<void(size_t, size_t)> search = [&](size_t lo, size_t hi) {
      if (hi - lo == 1) {
        member_ = &op_.members[lo];
        member_first_unit_ = first[lo];
        body();
        member_ = nullptr;
        return;
      }
      const size_t mid = (lo + hi) / 2;
      w_.Raw(fmt::format("scf.if {} {{", w_.Line(fmt::format("arith.cmpi ult, %i, {} : index",
                                                             w_.Index(first[mid])))));
      search(lo, mid);
      w_.Raw("} else {");
      search(mid, hi);
      w_.Raw("}");
    };
    search(0, op_.members.size());
  }

  const FusedKernel& k_;
  const FusedKernel::NodeOp& op_;
  const FusedKernel::NodeOp::Member* member_ = nullptr;
  int64_t member_first_unit_ = 0;
  BodyWriter w_;
  std::map<int, int> store_into_;  // node output -> node input whose memref it is stored into
};

}  // namespace

std::string EmitMlir(const FusedKernel& k, const std::string& name) {
  std::string sig, body;
  for (size_t j = 0; j < k.inputs.size(); ++j) {
    sig += fmt::format(", %in{}: {}", j, MemrefType(k.inputs[j].elements, k.inputs[j].dtype));
  }
  for (size_t j = 0; j < k.node->outs.size(); ++j) {
    sig +=
        fmt::format(", %out{}: {}", j, MemrefType(k.node->outs[j].elements, k.node->outs[j].dtype));
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
