// Machinery shared by the elementwise CPU kernels (kernels_elementwise.cc, kernels_unary.cc):
// per-dtype element traits, compile-time-filtered dtype dispatch, collapsed broadcast plans and
// the parallel loops over them. Internal to those two files.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "ir/float16.h"
#include "runtime/cpu/broadcast.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/thread_pool.h"

namespace ampc::cpu::ew {

constexpr int64_t kGrain = 16384;  // elements per parallel chunk, at least

// ---- element traits: S is the storage type, C the compute type; Ld widens exactly, St rounds
// once (f16/bf16: to nearest even) or wraps (integers, as C++ conversions do).
struct F32 {
  using S = float;
  using C = float;
  static C Ld(S x) { return x; }
  static S St(C x) { return x; }
};
struct F16 {
  using S = uint16_t;
  using C = float;
  static C Ld(S x) { return HalfBitsToFloat(x); }
  static S St(C x) { return FloatToHalfBits(x); }
};
struct BF16 {
  using S = uint16_t;
  using C = float;
  static C Ld(S x) { return BFloat16BitsToFloat(x); }
  static S St(C x) { return FloatToBFloat16Bits(x); }
};
struct F64 {
  using S = double;
  using C = double;
  static C Ld(S x) { return x; }
  static S St(C x) { return x; }
};
template <typename I>
struct Int {
  using S = I;
  using C = int64_t;
  static C Ld(S x) { return static_cast<C>(x); }
  static S St(C x) { return static_cast<S>(x); }  // modular (C++20)
};
using I64 = Int<int64_t>;
using I32 = Int<int32_t>;
using I8 = Int<int8_t>;
using U8 = Int<uint8_t>;
struct Bool {
  using S = uint8_t;
  using C = bool;
  static C Ld(S x) { return x != 0; }
  static S St(C x) { return x ? 1 : 0; }
};

template <typename E>
inline constexpr bool kFloatE = std::is_floating_point_v<typename E::C>;
template <typename E>
inline constexpr bool kIntE = std::is_same_v<typename E::C, int64_t>;

// ---- dispatch ---------------------------------------------------------------------------------

enum : unsigned { kF = 1, kSI = 2, kU8 = 4, kB = 8 };  // f*, i64/i32/i8, u8, bool
constexpr unsigned kSigned = kF | kSI, kNumeric = kF | kSI | kU8, kAny = kNumeric | kB;

inline std::string NodeDesc(const KernelContext& ctx) {
  return ctx.op + (ctx.node_name.empty() ? "" : " '" + ctx.node_name + "'");
}
inline Status BadType(const KernelContext& ctx, DType t) {
  return InvalidArgument(NodeDesc(ctx) + ": the CPU kernel does not support dtype " +
                         std::string(DTypeName(t)));
}

// Calls f(E{}) with the traits of dtype t when t is in the set kAllowed (only those are
// instantiated); otherwise returns InvalidArgument.
template <unsigned kAllowed, typename Fn>
Status Visit(const KernelContext& ctx, DType t, Fn&& f) {
  switch (t) {
    case DType::kFloat32:
      if constexpr ((kAllowed & kF) != 0) return f(F32{});
      break;
    case DType::kFloat16:
      if constexpr ((kAllowed & kF) != 0) return f(F16{});
      break;
    case DType::kBFloat16:
      if constexpr ((kAllowed & kF) != 0) return f(BF16{});
      break;
    case DType::kFloat64:
      if constexpr ((kAllowed & kF) != 0) return f(F64{});
      break;
    case DType::kInt64:
      if constexpr ((kAllowed & kSI) != 0) return f(I64{});
      break;
    case DType::kInt32:
      if constexpr ((kAllowed & kSI) != 0) return f(I32{});
      break;
    case DType::kInt8:
      if constexpr ((kAllowed & kSI) != 0) return f(I8{});
      break;
    case DType::kUInt8:
      if constexpr ((kAllowed & kU8) != 0) return f(U8{});
      break;
    case DType::kBool:
      if constexpr ((kAllowed & kB) != 0) return f(Bool{});
      break;
    case DType::kUndefined: break;
  }
  return BadType(ctx, t);
}

// Inputs `idx` must be present (and outputs[0] too); `dtype` (if defined) is what each must have.
inline Status CheckInputs(const KernelContext& ctx, std::initializer_list<int> idx, DType dtype) {
  for (int i : idx) {
    const TensorView* v = ctx.in(i);
    if (!v) return InvalidArgument(NodeDesc(ctx) + ": input " + std::to_string(i) + " is missing");
    if (dtype != DType::kUndefined && v->dtype != dtype) {
      return InvalidArgument(NodeDesc(ctx) + ": input " + std::to_string(i) + " has dtype " +
                             std::string(DTypeName(v->dtype)) + ", expected " +
                             std::string(DTypeName(dtype)));
    }
  }
  if (!ctx.out(0)) return InvalidArgument(NodeDesc(ctx) + ": output 0 is missing");
  return Status::Ok();
}
inline Status CheckOutType(const KernelContext& ctx, DType t) {
  if (ctx.out(0)->dtype == t) return Status::Ok();
  return InvalidArgument(NodeDesc(ctx) + ": output has dtype " +
                         std::string(DTypeName(ctx.out(0)->dtype)) + ", expected " +
                         std::string(DTypeName(t)));
}

// ---- broadcast plans -------------------------------------------------------------------------

// The output's shape with unit axes dropped and neighbouring axes merged wherever every input
// walks them as one (same broadcast pattern), so that the innermost axis is as long as possible.
struct Plan {
  std::vector<int64_t> dims;                  // rank >= 1
  std::vector<std::vector<int64_t>> strides;  // per input, per axis of `dims` (0 = broadcast)
  int64_t n = 0;                              // output elements
};

Status MakePlan(const KernelContext& ctx, const std::vector<const TensorView*>& ins, Plan* p);

// Calls body(offsets, inner_strides, out_offset, len) for each stretch of output elements
// [out_offset, out_offset + len) within [begin, end) that lies on one innermost row; offsets[j]
// is the element offset of input j at the stretch start, inner_strides[j] its step (0 or 1).
template <typename Body>
void ForRuns(const Plan& p, int64_t begin, int64_t end, Body& body) {
  const size_t k = p.strides.size();
  const int64_t inner = p.dims.back();
  const std::vector<int64_t> outer(p.dims.begin(), p.dims.end() - 1);
  std::vector<std::vector<int64_t>> outer_strides(k);
  std::vector<int64_t> step(k), off(k);
  for (size_t j = 0; j < k; ++j) {
    outer_strides[j].assign(p.strides[j].begin(), p.strides[j].end() - 1);
    step[j] = p.strides[j].back();
  }
  BroadcastCursor cur(outer, outer_strides, begin / inner);
  int64_t col = begin % inner;
  for (int64_t pos = begin; pos < end;) {
    const int64_t len = std::min(inner - col, end - pos);
    for (size_t j = 0; j < k; ++j) off[j] = cur.offset(static_cast<int>(j)) + col * step[j];
    body(off.data(), step.data(), pos, len);
    pos += len;
    col = 0;
    cur.Next();
  }
}

template <typename Body>
void ParallelRuns(ThreadPool* pool, const Plan& p, Body body) {
  if (p.n == 0) return;
  ParallelFor(pool, p.n, kGrain, [&](int64_t b, int64_t e) { ForRuns(p, b, e, body); });
}

// out[i] = EO::St(f(EA::Ld(a[i]), EB::Ld(b[i]))) over one stretch, with the common stride
// patterns as separate loops the compiler can vectorise.
template <typename EA, typename EB, typename EO, typename Fn>
inline void BinaryRun(const typename EA::S* a, int64_t sa, const typename EB::S* b, int64_t sb,
                      typename EO::S* o, int64_t n, const Fn& f) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) o[i] = EO::St(f(EA::Ld(a[i]), EB::Ld(b[i])));
  } else if (sa == 1 && sb == 0) {
    const auto y = EB::Ld(*b);
    for (int64_t i = 0; i < n; ++i) o[i] = EO::St(f(EA::Ld(a[i]), y));
  } else if (sa == 0 && sb == 1) {
    const auto x = EA::Ld(*a);
    for (int64_t i = 0; i < n; ++i) o[i] = EO::St(f(x, EB::Ld(b[i])));
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = EO::St(f(EA::Ld(a[i * sa]), EB::Ld(b[i * sb])));
  }
}

// Broadcasting binary kernel body: inputs 0 and 1 with traits EA and EB, output EO.
template <typename EA, typename EB, typename EO, typename Fn>
Status Binary(KernelContext& ctx, const Fn& f) {
  Plan p;
  RETURN_IF_ERROR(MakePlan(ctx, {ctx.in(0), ctx.in(1)}, &p));
  const auto* a = ctx.in(0)->as<const typename EA::S>();
  const auto* b = ctx.in(1)->as<const typename EB::S>();
  auto* o = ctx.out(0)->as<typename EO::S>();
  ParallelRuns(ctx.pool, p, [&](const int64_t* off, const int64_t* st, int64_t pos, int64_t len) {
    BinaryRun<EA, EB, EO>(a + off[0], st[0], b + off[1], st[1], o + pos, len, f);
  });
  return Status::Ok();
}

// Same-shape unary kernel body: out[i] = EO::St(f(EI::Ld(in[i]))).
template <typename EI, typename EO, typename Fn>
Status Unary(KernelContext& ctx, const Fn& f) {
  const TensorView& x = *ctx.in(0);
  TensorView& y = *ctx.out(0);
  if (x.NumElements() != y.NumElements()) {
    return InvalidArgument(NodeDesc(ctx) + ": output has " + std::to_string(y.NumElements()) +
                           " elements, input " + std::to_string(x.NumElements()));
  }
  const auto* a = x.as<const typename EI::S>();
  auto* o = y.as<typename EO::S>();
  if (x.NumElements() == 0) return Status::Ok();
  ParallelFor(ctx.pool, x.NumElements(), kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) o[i] = EO::St(f(EI::Ld(a[i])));
  });
  return Status::Ok();
}

// Registers the kernels of kernels_unary.cc (called by RegisterElementwiseKernels).
void RegisterUnaryKernels(KernelRegistry& r);

}  // namespace ampc::cpu::ew
