// Machinery shared by the elementwise CPU kernels (kernels_elementwise.cc, kernels_unary.cc):
// per-dtype element traits, compile-time-filtered dtype dispatch, collapsed broadcast plans and
// the parallel loops over them. Internal to those two files (and their unit test).
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

// Elements per parallel chunk, at least, for loops calling math functions. Waking the pool's
// threads costs tens of microseconds, so loops doing a few instructions per element split only
// from CheapGrain() elements on (more work per element with f16/bf16 conversions: sooner).
constexpr int64_t kGrain = 16384;

// ---- f16 conversions that vectorise ----------------------------------------------------------
// Bit-identical to ir/float16.h's HalfBitsToFloat / FloatToHalfBits (checked for all 65,536
// halves and all 2^32 floats; the unit tests recheck every half and the floats around every
// rounding boundary) but free of branches, so that g++ vectorises the block loops below. Decoding
// rebiases the exponent of normals and converts subnormals through an exact int -> float
// conversion (unaffected by denormals-are-zero modes). Encoding rounds normal results by integer
// addition (ties to even through the mantissa's lowest kept bit; carries reach the exponent and,
// from 65520 on, infinity) and subnormal results by adding 0.5f, which makes the FPU round at
// 2^-24, the subnormal step, to nearest even.
inline uint32_t MaskIf(bool c) { return 0u - static_cast<uint32_t>(c); }
inline uint32_t Select(uint32_t mask, uint32_t a, uint32_t b) { return (a & mask) | (b & ~mask); }

inline float HalfToFloatFast(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  const uint32_t normal = (em << 13) + 0x38000000u;  // exponent bias 15 -> 127
  const uint32_t sub = FloatToBits(static_cast<float>(static_cast<int32_t>(em)) * 0x1p-24f);
  const uint32_t special = 0x7f800000u | ((em & 0x3ffu) << 13);  // inf, NaN (payload kept)
  uint32_t r = Select(MaskIf(em < 0x400u), sub, normal);
  r = Select(MaskIf(em >= 0x7c00u), special, r);
  return BitsToFloat(sign | r);
}

inline uint16_t FloatToHalfFast(float f) {
  const uint32_t x = FloatToBits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t a = x & 0x7fffffffu;
  const uint32_t normal = (a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13;  // bias -112, round
  const uint32_t sub = FloatToBits(BitsToFloat(a) + 0.5f) - 0x3f000000u;
  uint32_t r = Select(MaskIf(a < 0x38800000u), sub, normal);  // below 2^-14: subnormal or 0
  r = Select(MaskIf(a >= 0x47800000u), 0x7c00u, r);           // 2^16 and up: infinity
  r = Select(MaskIf(a > 0x7f800000u), 0x7e00u, r);            // NaN: the quiet NaN
  return static_cast<uint16_t>(sign | r);
}

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
  static C Ld(S x) { return HalfToFloatFast(x); }
  static S St(C x) { return FloatToHalfFast(x); }
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

template <typename... E>
constexpr int64_t CheapGrain() {
  return ((std::is_same_v<E, F16> || std::is_same_v<E, BF16>) || ...) ? 4 * kGrain : 16 * kGrain;
}

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
    case DType::kUndefined:
      break;
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
void ParallelRuns(ThreadPool* pool, const Plan& p, int64_t grain, Body body) {
  if (p.n == 0) return;
  ParallelFor(pool, p.n, grain, [&](int64_t b, int64_t e) { ForRuns(p, b, e, body); });
}

// Loops run in blocks of kBlock elements through local arrays: loads widen into a local array,
// the op maps local arrays, stores round out of one. With no possible aliasing and a constant
// trip count, g++'s -O2 vectoriser (the "very cheap" cost model) takes these loops; a plain
// loop over the tensors' pointers would need runtime alias checks and stay scalar.
constexpr int64_t kBlock = 64;
using FullBlock = std::integral_constant<int64_t, kBlock>;

// body(i, len) over [0, n) in blocks; len is the compile-time kBlock except for the tail.
template <typename Body>
inline void Blocked(int64_t n, Body&& body) {
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) body(i, FullBlock{});
  if (i < n) body(i, n - i);
}

// o[i] = EO::St(f(EA::Ld(a[i * sa]), EB::Ld(b[i * sb]))) over one stretch of n elements.
template <typename EA, typename EB, typename EO, typename Fn>
inline void BinaryRun(const typename EA::S* a, int64_t sa, const typename EB::S* b, int64_t sb,
                      typename EO::S* o, int64_t n, const Fn& f) {
  using CA = typename EA::C;
  using CB = typename EB::C;
  if (sa > 1 || sb > 1) {  // not produced by MakePlan's innermost axis; kept for safety
    for (int64_t i = 0; i < n; ++i) o[i] = EO::St(f(EA::Ld(a[i * sa]), EB::Ld(b[i * sb])));
    return;
  }
  CA x[kBlock];
  CB y[kBlock];
  if (sa == 0) std::fill(x, x + kBlock, EA::Ld(*a));  // broadcast operand: filled once
  if (sb == 0) std::fill(y, y + kBlock, EB::Ld(*b));
  Blocked(n, [&](int64_t i, auto len) {
    if (sa) {
      for (int64_t j = 0; j < len; ++j) x[j] = EA::Ld(a[i + j]);
    }
    if (sb) {
      for (int64_t j = 0; j < len; ++j) y[j] = EB::Ld(b[i + j]);
    }
    decltype(f(x[0], y[0])) r[kBlock];
    for (int64_t j = 0; j < len; ++j) r[j] = f(x[j], y[j]);
    for (int64_t j = 0; j < len; ++j) o[i + j] = EO::St(r[j]);
  });
}

// Broadcasting binary kernel body: inputs 0 and 1 with traits EA and EB, output EO.
template <typename EA, typename EB, typename EO, int64_t kChunk = CheapGrain<EA, EB, EO>(),
          typename Fn>
Status Binary(KernelContext& ctx, const Fn& f) {
  Plan p;
  RETURN_IF_ERROR(MakePlan(ctx, {ctx.in(0), ctx.in(1)}, &p));
  const auto* a = ctx.in(0)->as<const typename EA::S>();
  const auto* b = ctx.in(1)->as<const typename EB::S>();
  auto* o = ctx.out(0)->as<typename EO::S>();
  ParallelRuns(ctx.pool, p, kChunk,
               [&](const int64_t* off, const int64_t* st, int64_t pos, int64_t len) {
                 BinaryRun<EA, EB, EO>(a + off[0], st[0], b + off[1], st[1], o + pos, len, f);
               });
  return Status::Ok();
}

// Same-shape unary kernel body: out[i] = EO::St(f(EI::Ld(in[i]))).
template <typename EI, typename EO, int64_t kChunk = CheapGrain<EI, EO>(), typename Fn>
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
  ParallelFor(ctx.pool, x.NumElements(), kChunk, [&](int64_t b, int64_t e) {
    Blocked(e - b, [&](int64_t i, auto len) {
      typename EI::C v[kBlock];
      for (int64_t j = 0; j < len; ++j) v[j] = EI::Ld(a[b + i + j]);
      decltype(f(v[0])) r[kBlock];
      for (int64_t j = 0; j < len; ++j) r[j] = f(v[j]);
      for (int64_t j = 0; j < len; ++j) o[b + i + j] = EO::St(r[j]);
    });
  });
  return Status::Ok();
}

// Registers the kernels of kernels_unary.cc (called by RegisterElementwiseKernels).
void RegisterUnaryKernels(KernelRegistry& r);

}  // namespace ampc::cpu::ew
