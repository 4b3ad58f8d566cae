// EmitMlir (codegen/node_kernels.h): a node kernel's template per op, written as MLIR text with
// codegen/mlir_text.h's builder (no MLIR headers), in the per-op kernel's order of operations.
// Here the row kernels and GatherGrad (node_kernels_emitter.h's Emitter); the optimizer and
// loss-scaling templates are in node_kernels_update_mlir.cc.
#include <fmt/format.h>

#include <bit>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "codegen/node_kernels.h"
#include "codegen/node_kernels_emitter.h"

namespace ampc::node_kernels {
namespace detail {

void Emitter::LayerNorm() {
  const int64_t inner = op_.unit;
  const std::string base = Idx("%i", "arith.muli", inner);
  const std::string count = w_.F64(static_cast<double>(inner));
  auto x_at = [&](const std::string& j) { return LoadF32(0, Add(base, j)); };
  const std::string mean_d = w_.Bin(
      "arith.divf",
      Sum8(inner, [&](const std::string& j) { return Conv("arith.extf", x_at(j), "f32", "f64"); }),
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

void Emitter::RmsNorm() {
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
           w_.Bin("arith.mulf", w_.Bin("arith.mulf", LoadF32(0, at), inv, "f32"), LoadF32(1, "%e"),
                  "f32"),
           at);
  w_.Raw("}");
}

void Emitter::GatherGrad() {
  const int64_t axis = static_cast<int64_t>(Attr("axis"));
  const int64_t rows = op_.shape[axis], inner = InnerOf(axis);
  const int64_t kk = k_.inputs[op_.operands[1]].elements;
  const std::string o = Idx("%i", "arith.divui", inner), c = Idx("%i", "arith.remui", inner);
  const std::string base_d = Add(Idx(o, "arith.muli", rows * inner), c);
  const std::string base_y = Add(Idx(o, "arith.muli", kk * inner), c);
  const int j = op_.results[0];
  const std::string out = fmt::format("%out{}", j), type = OutType(j);
  w_.Raw(fmt::format("scf.for %k = {} to {} step {} {{", w_.Index(0), w_.Index(rows), w_.Index(1)));
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

std::optional<Emitter::Scratch> Emitter::OutScratch(int i) const {
  if (!Stored(i)) return std::nullopt;
  const int j = op_.results[i];
  if (op_.outs[j].dtype != DType::kFloat32 ||
      op_.outs[j].elements != k_.inputs[op_.operands[0]].elements) {
    return std::nullopt;
  }
  return Scratch{fmt::format("%out{}", j), OutType(j), true};
}

std::pair<std::string, std::string> Emitter::MaxAndSum(const std::string& base, int64_t stride,
                                                       int64_t c,
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
    w_.Raw(fmt::format("scf.for %k = {} to {} step {} {{", w_.Index(0), w_.Index(c), w_.Index(1)));
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
std::string Emitter::LoadScratch(const Scratch& r, const std::string& ix) {
  return w_.Line(fmt::format("memref.load {}[{}] : {}", r.memref, ix, r.type));
}

void Emitter::SoftmaxRows(bool log, int64_t c, int64_t rows) {
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
    const std::string e = mlir_text::Exp(w_, w_.Bin("arith.subf", LoadF32(0, at(r)), m[r], "f32"));
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
    StoreF32(
        0,
        log ? w_.Bin("arith.subf", w_.Bin("arith.subf", LoadF32(0, ix), m[r], "f32"), ls[r], "f32")
            : w_.Bin("arith.divf", LoadScratch(*row, ix), sum[r], "f32"),
        ix);
  }
  w_.Raw("}");
}

void Emitter::Softmax(bool log) {
  const int64_t axis = static_cast<int64_t>(Attr("axis"));
  const int64_t c = op_.shape[axis], inner = InnerOf(axis);
  if (op_.unit > c) {
    SoftmaxRows(log, c, op_.unit / c);
    return;
  }
  const std::string base = inner == 1
                               ? Idx("%i", "arith.muli", c)
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
    const std::string e = row ? LoadScratch(*row, ix)
                              : mlir_text::Exp(w_, w_.Bin("arith.subf", LoadF32(0, ix), m, "f32"));
    StoreF32(0, w_.Bin("arith.divf", e, s, "f32"), ix);
  }
  w_.Raw("}");
}

void Emitter::CrossEntropy() {
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
    w_.Raw(fmt::format("scf.for %k = {} to {} step {} {{", w_.Index(0), w_.Index(c), w_.Index(1)));
    StoreF32(1, logp("%k"), at("%k"));
    w_.Raw("}");
  }
  std::string label = Load(1, r);
  if (InDType(1) == DType::kInt32) label = Conv("arith.extsi", label, "i32", "i64");
  std::string ignored = w_.Line("arith.constant false");
  if (has_ignore) {
    ignored = Cmp("arith.cmpi", "eq", label,
                  Const(std::to_string(static_cast<int64_t>(Attr("ignore_index"))), "i64"), "i64");
  }
  // The executor checked every label (Kernel.arg_checks); an ignored one reads class 0.
  const std::string safe =
      Conv("arith.index_cast", w_.Select(ignored, Const("0", "i64"), label, "i64"), "i64", "index");
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

}  // namespace detail

std::string EmitMlir(const FusedKernel& k, const std::string& name) {
  using mlir_text::MemrefType;
  std::string sig, body;
  for (size_t j = 0; j < k.inputs.size(); ++j) {
    sig += fmt::format(", %in{}: {}", j, MemrefType(k.inputs[j].elements, k.inputs[j].dtype));
  }
  for (size_t j = 0; j < k.node->outs.size(); ++j) {
    sig +=
        fmt::format(", %out{}: {}", j, MemrefType(k.node->outs[j].elements, k.node->outs[j].dtype));
  }
  detail::Emitter e(k, &body);
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
