// The text builder the kernel emitters share (codegen/fused_kernel_mlir.cc,
// codegen/node_kernels.cc): SSA lines of arith/math/memref ops, and the exact f16/bf16 conversions
// of ir/float16.h written as integer arithmetic. Internal to codegen/; includes no MLIR.
#pragma once

#include <fmt/format.h>

#include <bit>
#include <cstdint>
#include <string>

#include "ir/dtype.h"
#include "ir/float_math.h"

namespace ampc::mlir_text {

inline std::string MemrefElem(DType t) {
  if (t == DType::kFloat32) return "f32";
  if (t == DType::kInt64) return "i64";
  if (t == DType::kInt32) return "i32";
  if (t == DType::kBool) return "i8";
  return "i16";  // f16 / bf16 bits
}

// The 1-D memref a kernel argument of `n` elements of dtype t is passed as.
inline std::string MemrefType(int64_t n, DType t) {
  return fmt::format("memref<{}x{}>", n, MemrefElem(t));
}

// Writes the loop body as SSA lines. Every value has a register form: f32 for f32 values, i16
// storage bits for f16/bf16 values (widened to f32 on first use), i1 for bools.
class BodyWriter {
 public:
  explicit BodyWriter(std::string* out) : out_(out) {}

  std::string Fresh() { return fmt::format("%t{}", next_++); }
  std::string Line(const std::string& rhs) {
    std::string name = Fresh();
    *out_ += fmt::format("      {} = {}\n", name, rhs);
    return name;
  }
  std::string I32(uint32_t v) { return Line(fmt::format("arith.constant {} : i32", v)); }
  std::string F32(float v) {
    return Line(fmt::format("arith.constant 0x{:08X} : f32", std::bit_cast<uint32_t>(v)));
  }
  std::string F64(double v) {
    return Line(fmt::format("arith.constant 0x{:016X} : f64", std::bit_cast<uint64_t>(v)));
  }
  // A line that defines nothing (a store, a loop's start or end).
  void Raw(const std::string& text) { *out_ += "      " + text + "\n"; }
  std::string Index(int64_t v) { return Line(fmt::format("arith.constant {} : index", v)); }
  std::string Bin(const char* op, const std::string& a, const std::string& b, const char* ty) {
    return Line(fmt::format("{} {}, {} : {}", op, a, b, ty));
  }
  std::string Select(const std::string& c, const std::string& a, const std::string& b,
                     const char* ty) {
    return Line(fmt::format("arith.select {}, {}, {} : {}", c, a, b, ty));
  }
  std::string CmpI(const char* pred, const std::string& a, const std::string& b) {
    return Line(fmt::format("arith.cmpi {}, {}, {} : i32", pred, a, b));
  }
  std::string CmpF(const char* pred, const std::string& a, const std::string& b) {
    return Line(fmt::format("arith.cmpf {}, {}, {} : f32", pred, a, b));
  }
  std::string BitsToF32(const std::string& i) {
    return Line(fmt::format("arith.bitcast {} : i32 to f32", i));
  }
  std::string F32ToBits(const std::string& f) {
    return Line(fmt::format("arith.bitcast {} : f32 to i32", f));
  }

  // ir/float16.h's HalfBitsToFloat, branch-free (runtime/cpu/kernels_elementwise.h).
  std::string HalfToF32(const std::string& h16) {
    const std::string h = Line(fmt::format("arith.extui {} : i16 to i32", h16));
    const std::string sign =
        Bin("arith.shli", Bin("arith.andi", h, I32(0x8000), "i32"), I32(16), "i32");
    const std::string em = Bin("arith.andi", h, I32(0x7fff), "i32");
    const std::string normal =
        Bin("arith.addi", Bin("arith.shli", em, I32(13), "i32"), I32(0x38000000), "i32");
    const std::string emf = Line(fmt::format("arith.sitofp {} : i32 to f32", em));
    const std::string sub = F32ToBits(Bin("arith.mulf", emf, F32(0x1p-24f), "f32"));
    const std::string special =
        Bin("arith.ori", I32(0x7f800000),
            Bin("arith.shli", Bin("arith.andi", em, I32(0x3ff), "i32"), I32(13), "i32"), "i32");
    std::string r = Select(CmpI("ult", em, I32(0x400)), sub, normal, "i32");
    r = Select(CmpI("uge", em, I32(0x7c00)), special, r, "i32");
    return BitsToF32(Bin("arith.ori", sign, r, "i32"));
  }
  // ir/float16.h's FloatToHalfBits (round to nearest even; NaN -> the quiet NaN 0x7e00).
  std::string F32ToHalf(const std::string& f) {
    const std::string x = F32ToBits(f);
    const std::string sign =
        Bin("arith.andi", Bin("arith.shrui", x, I32(16), "i32"), I32(0x8000), "i32");
    const std::string a = Bin("arith.andi", x, I32(0x7fffffff), "i32");
    const std::string lsb = Bin("arith.andi", Bin("arith.shrui", a, I32(13), "i32"), I32(1), "i32");
    const std::string normal = Bin(
        "arith.shrui", Bin("arith.addi", Bin("arith.addi", a, I32(0xc8000fffu), "i32"), lsb, "i32"),
        I32(13), "i32");
    const std::string sub =
        Bin("arith.subi", F32ToBits(Bin("arith.addf", BitsToF32(a), F32(0.5f), "f32")),
            I32(0x3f000000), "i32");
    std::string r = Select(CmpI("ult", a, I32(0x38800000)), sub, normal, "i32");
    r = Select(CmpI("uge", a, I32(0x47800000)), I32(0x7c00), r, "i32");
    r = Select(CmpI("ugt", a, I32(0x7f800000)), I32(0x7e00), r, "i32");
    return Line(fmt::format("arith.trunci {} : i32 to i16", Bin("arith.ori", sign, r, "i32")));
  }
  std::string BF16ToF32(const std::string& h16) {
    const std::string h = Line(fmt::format("arith.extui {} : i16 to i32", h16));
    return BitsToF32(Bin("arith.shli", h, I32(16), "i32"));
  }
  // ir/float16.h's FloatToBFloat16Bits.
  std::string F32ToBF16(const std::string& f) {
    const std::string x = F32ToBits(f);
    const std::string hi = Bin("arith.shrui", x, I32(16), "i32");
    const std::string lsb = Bin("arith.andi", hi, I32(1), "i32");
    const std::string rounded =
        Bin("arith.shrui", Bin("arith.addi", Bin("arith.addi", x, I32(0x7fff), "i32"), lsb, "i32"),
            I32(16), "i32");
    const std::string qnan = Bin("arith.ori", hi, I32(0x40), "i32");
    const std::string isnan =
        CmpI("ugt", Bin("arith.andi", x, I32(0x7fffffff), "i32"), I32(0x7f800000));
    return Line(fmt::format("arith.trunci {} : i32 to i16", Select(isnan, qnan, rounded, "i32")));
  }

 private:
  std::string* out_;
  int next_ = 0;
};

// ir/float_math.h's arithmetic policy as MLIR: each operation one SSA line of `w`, so that
// Exp/Erf/Tanh below emit exactly the operations the per-op kernels compute.
struct MlirF32 {
  using F = std::string;
  using I = std::string;
  using M = std::string;
  BodyWriter& w;
  F C(float v) { return w.F32(v); }
  F Add(const F& x, const F& y) { return w.Bin("arith.addf", x, y, "f32"); }
  F Sub(const F& x, const F& y) { return w.Bin("arith.subf", x, y, "f32"); }
  F Mul(const F& x, const F& y) { return w.Bin("arith.mulf", x, y, "f32"); }
  F Div(const F& x, const F& y) { return w.Bin("arith.divf", x, y, "f32"); }
  F Neg(const F& x) { return w.Line(fmt::format("arith.negf {} : f32", x)); }
  F Abs(const F& x) { return w.Line(fmt::format("math.absf {} : f32", x)); }
  // LLVM's fma intrinsic directly: the CPU pipeline's convert-math-to-libm would turn math.fma
  // into a call to fmaf (unvectorisable); llvm.intr.fma becomes vfmadd (CPU) or fma.rn (GPU).
  F Fma(const F& x, const F& y, const F& z) {
    return w.Line(fmt::format("llvm.intr.fma({}, {}, {}) : (f32, f32, f32) -> f32", x, y, z));
  }
  F MaxNum(const F& x, const F& y) { return w.Bin("arith.maxnumf", x, y, "f32"); }
  F MinNum(const F& x, const F& y) { return w.Bin("arith.minnumf", x, y, "f32"); }
  M Lt(const F& x, const F& y) { return w.CmpF("olt", x, y); }
  M Ge(const F& x, const F& y) { return w.CmpF("oge", x, y); }
  M IsNan(const F& x) { return w.CmpF("uno", x, x); }
  F Select(const M& c, const F& x, const F& y) { return w.Select(c, x, y, "f32"); }
  I ToInt(const F& x) { return w.Line(fmt::format("arith.fptosi {} : f32 to i32", x)); }
  I IC(int32_t v) { return w.Line(fmt::format("arith.constant {} : i32", v)); }
  I IAdd(const I& x, const I& y) { return w.Bin("arith.addi", x, y, "i32"); }
  I ISub(const I& x, const I& y) { return w.Bin("arith.subi", x, y, "i32"); }
  I IShr(const I& x, int k) { return w.Bin("arith.shrsi", x, IC(k), "i32"); }
  I IShl(const I& x, int k) { return w.Bin("arith.shli", x, IC(k), "i32"); }
  F BitsToF(const I& x) { return w.BitsToF32(x); }
};
inline std::string Exp(BodyWriter& w, const std::string& x) {
  MlirF32 a{w};
  return fmath::Exp(a, x);
}
inline std::string Erf(BodyWriter& w, const std::string& x) {
  MlirF32 a{w};
  return fmath::Erf(a, x);
}
inline std::string Tanh(BodyWriter& w, const std::string& x) {
  MlirF32 a{w};
  return fmath::Tanh(a, x);
}

// GELU and its derivative in runtime/cpu/kernels_activation.cc's order of operations (fp32,
// no contraction): erf form 0.5x (1 + erf(x / sqrt 2)) and Phi(x) + x phi(x); tanh form
// 0.5x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), and its derivative.
inline std::string Gelu(BodyWriter& w, const std::string& x, bool tanh) {
  MlirF32 a{w};
  const std::string half_x = a.Mul(a.C(0.5f), x);
  if (!tanh) {
    return a.Mul(half_x, a.Add(a.C(1.0f),
                               Erf(w, a.Mul(x, a.C(static_cast<float>(0.70710678118654752440))))));
  }
  const std::string cube = a.Mul(a.Mul(a.Mul(a.C(static_cast<float>(0.044715)), x), x), x);
  const std::string u = a.Mul(a.C(static_cast<float>(0.79788456080286535588)), a.Add(x, cube));
  return a.Mul(half_x, a.Add(a.C(1.0f), Tanh(w, u)));
}
inline std::string GeluDerivative(BodyWriter& w, const std::string& x, bool tanh) {
  MlirF32 a{w};
  if (!tanh) {
    const std::string cdf =
        a.Mul(a.C(0.5f),
              a.Add(a.C(1.0f), Erf(w, a.Mul(x, a.C(static_cast<float>(0.70710678118654752440))))));
    const std::string pdf = Exp(w, a.Mul(a.Mul(a.C(-0.5f), x), x));
    return a.Add(cdf, a.Mul(a.Mul(x, a.C(static_cast<float>(0.39894228040143267794))), pdf));
  }
  const std::string cube = a.Mul(a.Mul(a.Mul(a.C(static_cast<float>(0.044715)), x), x), x);
  const std::string u = a.Mul(a.C(static_cast<float>(0.79788456080286535588)), a.Add(x, cube));
  const std::string t = Tanh(w, u);
  const std::string du =
      a.Mul(a.C(static_cast<float>(0.79788456080286535588)),
            a.Add(a.C(1.0f), a.Mul(a.Mul(a.C(static_cast<float>(3 * 0.044715)), x), x)));
  const std::string left = a.Mul(a.C(0.5f), a.Add(a.C(1.0f), t));
  const std::string right = a.Mul(a.Mul(a.Mul(a.C(0.5f), x), a.Sub(a.C(1.0f), a.Mul(t, t))), du);
  return a.Add(left, right);
}

// The kernel function around a unit's body: `func.func @name(%begin: index, %end: index ARGS)`
// with the C interface, running `body` (which defines nothing outside) for each unit %i in
// [begin, end) of one scf.parallel.
inline std::string KernelFunc(const std::string& name, const std::string& args,
                              const std::string& body) {
  return fmt::format(
      "func.func @{}(%begin: index, %end: index{}) attributes {{llvm.emit_c_interface}} {{\n"
      "  %one = arith.constant 1 : index\n"
      "  scf.parallel (%i) = (%begin) to (%end) step (%one) {{\n{}"
      "    scf.reduce\n"
      "  }}\n"
      "  return\n"
      "}}\n",
      name, args, body);
}

}  // namespace ampc::mlir_text
