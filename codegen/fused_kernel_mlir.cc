// EmitKernelMlir (codegen/fused_kernel.h): a fused kernel's program as MLIR text, written as
// SSA lines by a small text builder (no MLIR headers; codegen/mlir_compile parses the text).
#include <fmt/format.h>

#include <bit>
#include <string>
#include <vector>

#include "codegen/fused_kernel.h"
#include "codegen/mlir_text.h"
#include "codegen/node_kernels.h"

namespace ampc {

namespace {

using mlir_text::BodyWriter;
using mlir_text::MemrefType;

struct Reg {
  std::string bits;  // i16 (f16/bf16), i1 (bool), i64 or f32
  std::string f32;   // widened value, when computed
};

}  // namespace

std::string EmitKernelMlir(const FusedKernel& k, const std::string& name) {
  if (k.node) return node_kernels::EmitMlir(k, name);
  std::string sig;
  const int ni = static_cast<int>(k.inputs.size());
  for (int j = 0; j < ni; ++j) {
    sig += fmt::format(", %in{}: {}", j, MemrefType(k.inputs[j].elements, k.inputs[j].dtype));
  }
  auto out_size = [&](int v) {
    return v == FusedKernel::kReduced ? k.reduce->outputs : k.elements;
  };
  auto out_type = [&](int v) {
    return v == FusedKernel::kReduced ? k.reduce->dtype : k.ValueType(v);
  };
  for (size_t j = 0; j < k.outputs.size(); ++j) {
    sig +=
        fmt::format(", %out{}: {}", j, MemrefType(out_size(k.outputs[j]), out_type(k.outputs[j])));
  }
  std::string body;
  BodyWriter w(&body);
  std::vector<Reg> regs(ni + k.insts.size());
  auto widen = [&](int v) -> const std::string& {
    Reg& r = regs[v];
    if (r.f32.empty()) {
      const DType t = k.ValueType(v);
      r.f32 = t == DType::kFloat16 ? w.HalfToF32(r.bits) : w.BF16ToF32(r.bits);
    }
    return r.f32;
  };
  // Register form of an fp32 result rounded to dtype t (the per-op kernels' store + reload).
  auto round_to = [&](const std::string& f, DType t) {
    Reg r;
    if (t == DType::kFloat32) {
      r.bits = r.f32 = f;
    } else {
      r.bits = t == DType::kFloat16 ? w.F32ToHalf(f) : w.F32ToBF16(f);
    }
    return r;
  };
  // The elementwise program at flat index `ix` of the iteration space: loads (the element offset
  // of input j follows its broadcast strides), the instructions, the stores of its outputs.
  // With `row`/`col` (a 2-D loop over rows of the last axis), the outer axes' coordinates come
  // from the row (loop-invariant in the inner loop) and the last one is the column.
  auto elementwise = [&](const std::string& ix, const std::string& row = "",
                         const std::string& col = "") {
    std::vector<int64_t> inner(k.dims.size(), 1);
    for (int a = static_cast<int>(k.dims.size()) - 2; a >= 0; --a) {
      inner[a] = inner[a + 1] * k.dims[a + 1];
    }
    const int64_t last = k.dims.back();
    for (int j = 0; j < ni; ++j) {
      const auto& st = k.inputs[j].strides;
      std::string off;
      if (st == inner) {
        off = ix;
      } else {
        for (size_t a = 0; a < st.size(); ++a) {
          if (st[a] == 0) continue;
          std::string idx;
          if (!row.empty()) {
            idx = a == st.size() - 1 ? col
                  : a == st.size() - 2
                      ? row
                      : w.Bin("arith.divui", row, w.Index(inner[a] / last), "index");
          } else {
            idx = a == st.size() - 1 ? ix : w.Bin("arith.divui", ix, w.Index(inner[a]), "index");
          }
          if (a > 0 && a != st.size() - 1) {
            idx = w.Bin("arith.remui", idx, w.Index(k.dims[a]), "index");
          } else if (a > 0 && row.empty()) {
            idx = w.Bin("arith.remui", idx, w.Index(k.dims[a]), "index");
          }
          if (st[a] != 1) idx = w.Bin("arith.muli", idx, w.Index(st[a]), "index");
          off = off.empty() ? idx : w.Bin("arith.addi", off, idx, "index");
        }
        if (off.empty()) off = w.Index(0);
      }
      const DType t = k.inputs[j].dtype;
      const std::string raw = w.Line(
          fmt::format("memref.load %in{}[{}] : {}", j, off, MemrefType(k.inputs[j].elements, t)));
      Reg& r = regs[j];
      if (t == DType::kBool) {
        r.bits =
            w.Line(fmt::format("arith.cmpi ne, {}, {} : i8", raw, w.Line("arith.constant 0 : i8")));
      } else {
        r.bits = raw;
        if (t == DType::kFloat32) r.f32 = raw;
      }
    }
    for (size_t n = 0; n < k.insts.size(); ++n) {
      const FusedKernel::Inst& in = k.insts[n];
      const int v = ni + static_cast<int>(n);
      const DType t = in.dtype;
      auto opf = [&](int i) -> std::string {
        const int src = in.operands[i];
        return k.ValueType(src) == DType::kFloat32 ? regs[src].f32 : widen(src);
      };
      const std::string& o = in.op;
      std::string f;  // fp32 result (float outputs)
      if (t == DType::kInt64 && in.operands.size() == 2 && o != "Where") {  // wrapping integers
        const std::string& a = regs[in.operands[0]].bits;
        const std::string& b = regs[in.operands[1]].bits;
        if (o == "Max" || o == "Min") {
          regs[v].bits = w.Select(
              w.Line(fmt::format("arith.cmpi {}, {}, {} : i64", o == "Max" ? "sgt" : "slt", a, b)),
              a, b, "i64");
        } else {
          const char* m = o == "Add" ? "arith.addi" : o == "Sub" ? "arith.subi" : "arith.muli";
          regs[v].bits = w.Bin(m, a, b, "i64");
        }
        continue;
      }
      if (k.ValueType(in.operands[0]) == DType::kInt64 && o != "Cast" && o != "Where") {
        const char* p = o == "Equal"         ? "eq"
                        : o == "Less"        ? "slt"
                        : o == "Greater"     ? "sgt"
                        : o == "LessOrEqual" ? "sle"
                                             : "sge";
        regs[v].bits = w.Line(fmt::format("arith.cmpi {}, {}, {} : i64", p,
                                          regs[in.operands[0]].bits, regs[in.operands[1]].bits));
        continue;
      }
      if (o == "Add" || o == "Sub" || o == "Mul" || o == "Div") {
        const char* m = o == "Add"   ? "arith.addf"
                        : o == "Sub" ? "arith.subf"
                        : o == "Mul" ? "arith.mulf"
                                     : "arith.divf";
        f = w.Bin(m, opf(0), opf(1), "f32");
      } else if (o == "Pow") {
        f = w.Bin("math.powf", opf(0), opf(1), "f32");
      } else if (o == "Max" || o == "Min") {  // (a > b || a != a) ? a : b, NaN propagating
        const std::string a = opf(0), b = opf(1);
        const std::string c =
            w.Bin("arith.ori", w.CmpF(o == "Max" ? "ogt" : "olt", a, b), w.CmpF("une", a, a), "i1");
        f = w.Select(c, a, b, "f32");
      } else if (o == "Neg") {
        f = w.Line(fmt::format("arith.negf {} : f32", opf(0)));
      } else if (o == "Exp") {  // ir/float_math.h, as the per-op kernels compute them
        f = mlir_text::Exp(w, opf(0));
      } else if (o == "Erf") {
        f = mlir_text::Erf(w, opf(0));
      } else if (o == "Tanh") {
        f = mlir_text::Tanh(w, opf(0));
      } else if (o == "Sqrt" || o == "Log" || o == "Abs") {
        const char* m = o == "Sqrt" ? "math.sqrt" : o == "Log" ? "math.log" : "math.absf";
        f = w.Line(fmt::format("{} {} : f32", m, opf(0)));
      } else if (o == "Reciprocal") {
        f = w.Bin("arith.divf", w.F32(1.0f), opf(0), "f32");
      } else if (o == "Relu") {  // x < 0 ? 0 : x (NaN stays NaN)
        const std::string x = opf(0), zero = w.F32(0.0f);
        f = w.Select(w.CmpF("olt", x, zero), zero, x, "f32");
      } else if (o == "LeakyRelu") {
        const std::string x = opf(0);
        f = w.Select(w.CmpF("olt", x, w.F32(0.0f)), w.Bin("arith.mulf", w.F32(in.alpha), x, "f32"),
                     x, "f32");
      } else if (o == "Sigmoid") {  // x >= 0 ? 1 / (1 + e^-x) : e^x / (1 + e^x)
        const std::string x = opf(0), one = w.F32(1.0f);
        const std::string en = mlir_text::Exp(w, w.Line(fmt::format("arith.negf {} : f32", x)));
        const std::string pos =
            w.Bin("arith.divf", one, w.Bin("arith.addf", one, en, "f32"), "f32");
        const std::string ep = mlir_text::Exp(w, x);
        const std::string neg = w.Bin("arith.divf", ep, w.Bin("arith.addf", one, ep, "f32"), "f32");
        f = w.Select(w.CmpF("oge", x, w.F32(0.0f)), pos, neg, "f32");
      } else if (o == "Equal" || o == "Less" || o == "Greater" || o == "LessOrEqual" ||
                 o == "GreaterOrEqual") {
        const char* p = o == "Equal"         ? "oeq"
                        : o == "Less"        ? "olt"
                        : o == "Greater"     ? "ogt"
                        : o == "LessOrEqual" ? "ole"
                                             : "oge";
        regs[v].bits = w.CmpF(p, opf(0), opf(1));
        continue;
      } else if (o == "Not") {
        regs[v].bits =
            w.Bin("arith.xori", regs[in.operands[0]].bits, w.Line("arith.constant true"), "i1");
        continue;
      } else if (o == "And" || o == "Or" || o == "Xor") {
        const char* m = o == "And" ? "arith.andi" : o == "Or" ? "arith.ori" : "arith.xori";
        regs[v].bits = w.Bin(m, regs[in.operands[0]].bits, regs[in.operands[1]].bits, "i1");
        continue;
      } else if (o == "Where") {  // storage bits move unchanged
        const Reg& a = regs[in.operands[1]];
        const Reg& b = regs[in.operands[2]];
        const char* ty = t == DType::kBool      ? "i1"
                         : t == DType::kFloat32 ? "f32"
                         : t == DType::kInt64   ? "i64"
                                                : "i16";
        regs[v].bits = w.Select(regs[in.operands[0]].bits, a.bits, b.bits, ty);
        if (t == DType::kFloat32) regs[v].f32 = regs[v].bits;
        continue;
      } else if (o == "Gelu") {
        f = mlir_text::Gelu(w, opf(0), in.tanh);
      } else if (o == "GeluGrad") {  // dY * f'(X), in fp32, rounded once
        f = w.Bin("arith.mulf", opf(0), mlir_text::GeluDerivative(w, opf(1), in.tanh), "f32");
      } else if (o == "ReluGrad") {  // dY's storage bits where X > 0, else +0 (NaN X: +0)
        const bool f32 = t == DType::kFloat32;
        const std::string zero = f32 ? w.F32(0.0f) : w.Line("arith.constant 0 : i16");
        regs[v].bits = w.Select(w.CmpF("ogt", opf(1), w.F32(0.0f)), regs[in.operands[0]].bits, zero,
                                f32 ? "f32" : "i16");
        if (f32) regs[v].f32 = regs[v].bits;
        continue;
      } else if (o == "Cast") {
        const DType s = k.ValueType(in.operands[0]);
        if (s == t) {  // a copy
          regs[v] = regs[in.operands[0]];
          continue;
        }
        const std::string& x = regs[in.operands[0]].bits;
        if (s == DType::kInt64) {  // to bool: x != 0; to f32: one rounding
          regs[v].bits = t == DType::kBool ? w.Line(fmt::format("arith.cmpi ne, {}, {} : i64", x,
                                                                w.Line("arith.constant 0 : i64")))
                                           : w.Line(fmt::format("arith.sitofp {} : i64 to f32", x));
          if (t == DType::kFloat32) regs[v].f32 = regs[v].bits;
          continue;
        }
        if (t == DType::kInt64) {
          if (s == DType::kBool) {
            regs[v].bits = w.Line(fmt::format("arith.extui {} : i1 to i64", x));
            continue;
          }
          // CastElem's SatFromDouble: NaN -> 0, saturated at the int64 range, else truncated.
          const std::string d = w.Line(fmt::format("arith.extf {} : f32 to f64", opf(0)));
          const std::string lo = w.F64(-0x1p63), hi = w.F64(0x1p63);
          const std::string min = w.Line("arith.constant -9223372036854775808 : i64");
          const std::string max = w.Line("arith.constant 9223372036854775807 : i64");
          const std::string zero = w.Line("arith.constant 0 : i64");
          auto cmp = [&](const char* p, const std::string& a, const std::string& b) {
            return w.Line(fmt::format("arith.cmpf {}, {}, {} : f64", p, a, b));
          };
          // Out-of-range values are replaced before fptosi sees them (its result would be poison).
          const std::string inside =
              w.Bin("arith.andi", cmp("ogt", d, lo), cmp("olt", d, hi), "i1");
          const std::string safe = w.Select(inside, d, w.Line("arith.constant 0.0 : f64"), "f64");
          std::string r = w.Line(fmt::format("arith.fptosi {} : f64 to i64", safe));
          r = w.Select(cmp("ole", d, lo), min, r, "i64");
          r = w.Select(cmp("oge", d, hi), max, r, "i64");
          regs[v].bits = w.Select(cmp("uno", d, d), zero, r, "i64");
          continue;
        }
        if (t == DType::kBool) {  // x != 0 (NaN is true)
          regs[v].bits = w.CmpF("une", opf(0), w.F32(0.0f));
          continue;
        }
        if (s == DType::kBool) {
          f = w.Select(regs[in.operands[0]].bits, w.F32(1.0f), w.F32(0.0f), "f32");
        } else {
          f = opf(0);
        }
      }
      regs[v] = round_to(f, t);
    }
    for (size_t j = 0; j < k.outputs.size(); ++j) {
      const int v = k.outputs[j];
      if (v == FusedKernel::kReduced) continue;
      const DType t = k.ValueType(v);
      std::string val = regs[v].bits;
      if (t == DType::kBool) val = w.Line(fmt::format("arith.extui {} : i1 to i8", val));
      body += fmt::format("      memref.store {}, %out{}[{}] : {}\n", val, j, ix,
                          MemrefType(k.elements, t));
    }
  };  // elementwise
  if (!k.reduce && k.dims.size() >= 2 && !k.gpu_grain) {
    // Rows of the last axis: the executor splits the rows, the inner loop walks a row (contiguous
    // loads, broadcast operands loaded once per row or per column, and vectorisable).
    const std::string c0 = w.Index(0), c1 = w.Index(1), cols = w.Index(k.dims.back());
    body += fmt::format("      scf.for %c = {} to {} step {} {{\n", c0, cols, c1);
    const std::string ix =
        w.Bin("arith.addi", w.Bin("arith.muli", "%i", cols, "index"), "%c", "index");
    elementwise(ix, "%i", "%c");
    body += "      }\n";
  } else if (!k.reduce) {
    elementwise("%i");
  } else {
    // Over the reduction's outputs %i: the flat index of each summed element from (%i, %r), the
    // sum in double in memory order, then the per-op kernel's rounding (f32: once; f16/bf16:
    // through fp32 rounded to odd, then once more).
    const FusedKernel::Reduction& r = *k.reduce;
    const size_t m = r.dims.size();
    // The sum's rounding and store at output index `at` (reduction.cc's StoreRounded).
    auto store_result = [&](const std::string& acc, const std::string& at) {
      std::string d = acc;
      if (r.op == "ReduceMean") {
        d = w.Bin("arith.divf", acc, w.Line(fmt::format("arith.constant {}.0 : f64", r.count)),
                  "f64");
      }
      std::string bits;
      const std::string f = w.Line(fmt::format("arith.truncf {} : f64 to f32", d));
      if (r.dtype == DType::kFloat32) {
        bits = f;
      } else {  // reduction.cc's ToFloatOdd, then the half rounding
        const std::string fd = w.Line(fmt::format("arith.extf {} : f32 to f64", f));
        const std::string keep =
            w.Bin("arith.ori", w.Line(fmt::format("arith.cmpf oeq, {}, {} : f64", fd, d)),
                  w.Line(fmt::format("arith.cmpf uno, {}, {} : f64", d, d)), "i1");
        const std::string over = w.Line(fmt::format("arith.cmpf ogt, {}, {} : f64",
                                                    w.Line(fmt::format("math.absf {} : f64", fd)),
                                                    w.Line(fmt::format("math.absf {} : f64", d))));
        const std::string fb = w.F32ToBits(f);
        const std::string toward0 =
            w.Select(over, w.Bin("arith.subi", fb, w.I32(1), "i32"), fb, "i32");
        const std::string odd = w.Bin("arith.ori", toward0, w.I32(1), "i32");
        const std::string f_odd = w.BitsToF32(w.Select(keep, fb, odd, "i32"));
        bits = r.dtype == DType::kFloat16 ? w.F32ToHalf(f_odd) : w.F32ToBF16(f_odd);
      }
      for (size_t j = 0; j < k.outputs.size(); ++j) {
        if (k.outputs[j] != FusedKernel::kReduced) continue;
        body += fmt::format("      memref.store {}, %out{}[{}] : {}\n", bits, j, at,
                            MemrefType(r.outputs, r.dtype));
      }
    };
    const std::string zero = w.Line("arith.constant 0.0 : f64");
    const std::string c0 = w.Index(0), c1 = w.Index(1);
    auto value_f32 = [&]() -> std::string {  // the reduced value as f32
      const int v = r.value;
      return k.ValueType(v) == DType::kFloat32 ? regs[v].f32 : widen(v);
    };
    auto add_value = [&](const std::string& a) {  // a + the reduced value, in double
      const int v = r.value;
      const std::string x32 = k.ValueType(v) == DType::kFloat32 ? regs[v].f32 : widen(v);
      return w.Bin("arith.addf", a, w.Line(fmt::format("arith.extf {} : f32 to f64", x32)), "f64");
    };
    // A stack array of `block` double accumulators, zeroed (loop variable `iv`).
    auto zeroed_accumulators = [&](const char* iv, int64_t block) {
      const std::string accs = w.Line(fmt::format("memref.alloca() : memref<{}xf64>", block));
      body += fmt::format("      scf.for {} = {} to {} step {} {{\n", iv, c0, w.Index(block), c1);
      body += fmt::format("      memref.store {}, {}[{}] : memref<{}xf64>\n      }}\n", zero, accs,
                          iv, block);
      return accs;
    };
    // The elementwise program at flat index `ix` of a [rows, cols] reduction: when the iteration
    // space's last axis is the columns, the broadcast operands are indexed by (row, column)
    // instead of dividing the flat index, so loads that do not change along a row are
    // loop-invariant and a column loop vectorises.
    auto elementwise_at = [&](const std::string& ix, const std::string& row, const std::string& col,
                              int64_t cols) {
      if (k.dims.size() >= 2 && k.dims.back() == cols) {
        elementwise(ix, row, col);
      } else {
        elementwise(ix);
      }
    };
    if (m == 2 && r.reduced[0] && !r.reduced[1]) {
      // [rows, columns] summed over the rows (bias gradients): a block of columns per unit, the
      // rows outside, the block's accumulators in a stack array: contiguous loads, and still each
      // column summed over the rows in order. Per row, the elementwise program runs over the
      // block first, into an f32 stack row, and a second loop adds that row to the double
      // accumulators: one loop of both would be vectorised at the doubles' width, half the
      // floats' (the MLP's GELU gradient with its bias gradient: 58 -> 41 us).
      const int64_t rows = r.dims[0], cols = r.dims[1], block = r.Block();
      const std::string cb = w.Index(block), cc = w.Index(cols), cr = w.Index(rows);
      const std::string base = w.Bin("arith.muli", "%i", cb, "index");
      const std::string accs = zeroed_accumulators("%c", block);
      const std::string vals = w.Line(fmt::format("memref.alloca() : memref<{}xf32>", block));
      body += fmt::format("      scf.for %r = {} to {} step {} {{\n", c0, cr, c1);
      body += fmt::format("      scf.for %c = {} to {} step {} {{\n", c0, cb, c1);
      const std::string col = w.Bin("arith.addi", base, "%c", "index");
      elementwise_at(w.Bin("arith.addi", w.Bin("arith.muli", "%r", cc, "index"), col, "index"),
                     "%r", col, cols);
      body += fmt::format("      memref.store {}, {}[%c] : memref<{}xf32>\n      }}\n", value_f32(),
                          vals, block);
      body += fmt::format("      scf.for %c = {} to {} step {} {{\n", c0, cb, c1);
      const std::string a = w.Line(fmt::format("memref.load {}[%c] : memref<{}xf64>", accs, block));
      const std::string x = w.Line(fmt::format("memref.load {}[%c] : memref<{}xf32>", vals, block));
      const std::string sum =
          w.Bin("arith.addf", a, w.Line(fmt::format("arith.extf {} : f32 to f64", x)), "f64");
      body += fmt::format("      memref.store {}, {}[%c] : memref<{}xf64>\n      }}\n      }}\n",
                          sum, accs, block);
      body += fmt::format("      scf.for %c = {} to {} step {} {{\n", c0, cb, c1);
      store_result(w.Line(fmt::format("memref.load {}[%c] : memref<{}xf64>", accs, block)),
                   w.Bin("arith.addi", base, "%c", "index"));
      body += "      }\n";
    } else if (m == 2 && !r.reduced[0] && r.reduced[1]) {
      // [rows, columns] summed over the columns (row means, norms' statistics): a block of rows
      // per unit, the columns outside, one accumulator per row in a stack array. Each row is
      // still summed in column order, but the block's sums are independent chains the CPU
      // overlaps, where one row's chain of double additions would wait on each add's latency.
      const int64_t cols = r.dims[1], block = r.Block();
      const std::string cb = w.Index(block), cc = w.Index(cols);
      const std::string base = w.Bin("arith.muli", "%i", cb, "index");
      const std::string accs = zeroed_accumulators("%b", block);
      body += fmt::format("      scf.for %c = {} to {} step {} {{\n", c0, cc, c1);
      body += fmt::format("      scf.for %b = {} to {} step {} {{\n", c0, cb, c1);
      const std::string row = w.Bin("arith.addi", base, "%b", "index");
      elementwise_at(w.Bin("arith.addi", w.Bin("arith.muli", row, cc, "index"), "%c", "index"), row,
                     "%c", cols);
      const std::string a = w.Line(fmt::format("memref.load {}[%b] : memref<{}xf64>", accs, block));
      body += fmt::format("      memref.store {}, {}[%b] : memref<{}xf64>\n      }}\n      }}\n",
                          add_value(a), accs, block);
      body += fmt::format("      scf.for %b = {} to {} step {} {{\n", c0, cb, c1);
      store_result(w.Line(fmt::format("memref.load {}[%b] : memref<{}xf64>", accs, block)),
                   w.Bin("arith.addi", base, "%b", "index"));
      body += "      }\n";
    } else {
      std::vector<int64_t> in_str(m, 1), part_str(m, 1);
      int64_t si = 1, so = 1, sr = 1;
      for (size_t a = m; a-- > 0;) {
        in_str[a] = si;
        si *= r.dims[a];
        part_str[a] = r.reduced[a] ? sr : so;
        (r.reduced[a] ? sr : so) *= r.dims[a];
      }
      const std::string count = w.Index(r.count);
      const std::string acc = w.Fresh();
      body +=
          fmt::format("      {} = scf.for %r = {} to {} step {} iter_args(%a = {}) -> (f64) {{\n",
                      acc, c0, count, c1, zero);
      std::string flat;
      bool first_kept = true, first_red = true;
      for (size_t a = 0; a < m; ++a) {
        const std::string from = r.reduced[a] ? "%r" : "%i";
        bool& first = r.reduced[a] ? first_red : first_kept;
        std::string c =
            part_str[a] == 1 ? from : w.Bin("arith.divui", from, w.Index(part_str[a]), "index");
        if (!first) c = w.Bin("arith.remui", c, w.Index(r.dims[a]), "index");
        first = false;
        if (in_str[a] != 1) c = w.Bin("arith.muli", c, w.Index(in_str[a]), "index");
        flat = flat.empty() ? c : w.Bin("arith.addi", flat, c, "index");
      }
      if (flat.empty()) flat = w.Index(0);
      elementwise(flat);
      body += fmt::format("      scf.yield {} : f64\n      }}\n", add_value("%a"));
      store_result(acc, "%i");
    }
  }
  return mlir_text::KernelFunc(name, sig, body);
}

}  // namespace ampc
