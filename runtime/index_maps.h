// Index arithmetic shared by the CPU runtime's kernels and the CUDA runtime's own kernels
// (runtime/cuda/*.cu), written once so that both map indices the same way: plain inline
// functions of integers, callable from host and device code.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#if defined(__CUDACC__)
#define AMPC_HD __host__ __device__ __forceinline__
#else
#define AMPC_HD inline
#endif

namespace ampc {

// Indices i in [0, n) with 0 <= i * step + off < limit form the range [*lo, *hi).
AMPC_HD void ValidRange(int64_t n, int64_t step, int64_t off, int64_t limit, int64_t* lo,
                        int64_t* hi) {
  int64_t a = off >= 0 ? 0 : (-off + step - 1) / step;
  int64_t b = off >= limit ? 0 : (limit - 1 - off) / step + 1;
  a = a < n ? a : n;
  b = b < a ? a : (b > n ? n : b);
  *lo = a;
  *hi = b;
}

// ONNX Pad's modes.
enum class PadMode { kConstant, kReflect, kEdge, kWrap };

// The mode named by Pad's `mode` attribute, or nothing for an unknown name.
inline std::optional<PadMode> PadModeFromName(std::string_view name) {
  if (name == "constant") return PadMode::kConstant;
  if (name == "reflect") return PadMode::kReflect;
  if (name == "edge") return PadMode::kEdge;
  if (name == "wrap") return PadMode::kWrap;
  return std::nullopt;
}

// The source index for output index o on an axis of size d padded by pb in front; -1: the
// constant value.
AMPC_HD int64_t PadSource(int64_t o, int64_t pb, int64_t d, PadMode mode) {
  int64_t i = o - pb;
  if (i >= 0 && i < d) return i;
  if (mode == PadMode::kConstant) return -1;
  if (mode == PadMode::kWrap) return ((i % d) + d) % d;  // opset 19: ... b c [a b c] a b ...
  if (mode == PadMode::kEdge || d == 1) return i < 0 ? 0 : d - 1;
  const int64_t period = 2 * (d - 1);  // reflect: ... c b [a b c] b a ...
  i %= period;
  if (i < 0) i += period;
  return i < d ? i : period - i;
}

}  // namespace ampc
