// The sliding-window and padding steps the CUDA executor runs with its own kernels
// (runtime/cuda/window_kernels.cu): convolution (im2col, cuBLASLt, then a bias-and-layout pass;
// its gradient through the same GEMMs and col2im), pools and their gradients, Pad and Clip.
// Plain structs and index maps callable from host and device code: the kernels compute through
// these functions, and tests/unit/cuda_window_test.cc runs the same functions on the CPU against
// the CPU runtime's kernels. step_plan / window_steps.h derive the descriptions from a plan.
#pragma once

#include <cstdint>

#include "runtime/index_maps.h"

namespace ampc::cuda {

// The element types these kernels read and write; arithmetic is in float (double where noted).
enum class FloatType { kF32, kF16, kBF16 };
AMPC_HD int FloatTypeBytes(FloatType t) { return t == FloatType::kF32 ? 4 : 2; }

// Spatial geometry padded at the front to 3-D (size 1, kernel 1, stride 1, pad 0), as the CPU
// runtime's window::Geometry.
struct WindowGeom {
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1}, dil[3] = {1, 1, 1}, pad_begin[3] = {0, 0, 0},
          pad_end[3] = {0, 0, 0};
  AMPC_HD int64_t in_size() const { return in[0] * in[1] * in[2]; }
  AMPC_HD int64_t out_size() const { return out[0] * out[1] * out[2]; }
  AMPC_HD int64_t kernel_size() const { return k[0] * k[1] * k[2]; }
};

// Conv: X [n, c, in...], W [m, c / groups, k...], Y [n, m, out...]. With K = (c / groups) *
// kernel_size and P = out_size, the scratch matrices are, per group g (row-major):
//   col [groups][n * P][K]   im2col of X (X's dtype)
//   yt  [groups][n * P][m / groups]  the GEMM's f32 output, before bias and layout
//   dyt [groups][n * P][m / groups]  dY in that layout (dY's dtype)
//   dcol [groups][n * P][K]  the f32 gradient of col, before col2im
struct ConvDesc {
  WindowGeom g;
  int64_t n = 1, c = 1, m = 1, groups = 1;
  AMPC_HD int64_t cg() const { return c / groups; }
  AMPC_HD int64_t mg() const { return m / groups; }
  AMPC_HD int64_t K() const { return cg() * g.kernel_size(); }
  AMPC_HD int64_t P() const { return g.out_size(); }
  AMPC_HD int64_t col_elements() const { return groups * n * P() * K(); }
  AMPC_HD int64_t y_elements() const { return n * m * P(); }
  AMPC_HD int64_t x_elements() const { return n * c * g.in_size(); }
};

// The X element col[t] holds, or -1 where the tap falls in the padding (col holds 0).
AMPC_HD int64_t Im2ColSource(const ConvDesc& d, int64_t t) {
  const int64_t K = d.K(), P = d.P(), kvol = d.g.kernel_size();
  const int64_t kidx = t % K, r = t / K;
  const int64_t p = r % P, nn = (r / P) % d.n, gg = r / P / d.n;
  const int64_t c = kidx / kvol, kk = kidx % kvol;
  const int64_t kx[3] = {kk / (d.g.k[1] * d.g.k[2]), (kk / d.g.k[2]) % d.g.k[1], kk % d.g.k[2]};
  const int64_t ox[3] = {p / (d.g.out[1] * d.g.out[2]), (p / d.g.out[2]) % d.g.out[1],
                         p % d.g.out[2]};
  int64_t at = nn * d.c + gg * d.cg() + c;
  for (int i = 0; i < 3; ++i) {
    const int64_t x = ox[i] * d.g.stride[i] - d.g.pad_begin[i] + kx[i] * d.g.dil[i];
    if (x < 0 || x >= d.g.in[i]) return -1;
    at = at * d.g.in[i] + x;
  }
  return at;
}

// The yt (or dyt) element that Y (or dY) element i is, in the layout above.
AMPC_HD int64_t ConvRowMajorAt(const ConvDesc& d, int64_t i) {
  const int64_t P = d.P(), mg = d.mg();
  const int64_t p = i % P, mm = (i / P) % d.m, nn = i / P / d.m;
  return ((mm / mg * d.n + nn) * P + p) * mg + mm % mg;
}

// dX element i: the sum, over the taps that read it in kernel order, of dcol(index) (the f32
// gradient of col at that index).
template <typename Load>
AMPC_HD float Col2ImAt(const ConvDesc& d, int64_t i, Load dcol) {
  const int64_t in_size = d.g.in_size(), K = d.K(), P = d.P(), kvol = d.g.kernel_size();
  const int64_t s = i % in_size, ch = (i / in_size) % d.c, nn = i / in_size / d.c;
  const int64_t gg = ch / d.cg(), c = ch % d.cg();
  const int64_t bx[3] = {s / (d.g.in[1] * d.g.in[2]), (s / d.g.in[2]) % d.g.in[1], s % d.g.in[2]};
  float sum = 0.0f;
  for (int64_t kk = 0; kk < kvol; ++kk) {
    const int64_t kx[3] = {kk / (d.g.k[1] * d.g.k[2]), (kk / d.g.k[2]) % d.g.k[1], kk % d.g.k[2]};
    int64_t p = 0;
    bool hit = true;
    for (int a = 0; a < 3 && hit; ++a) {
      const int64_t num = bx[a] + d.g.pad_begin[a] - kx[a] * d.g.dil[a];
      hit = num >= 0 && num % d.g.stride[a] == 0 && num / d.g.stride[a] < d.g.out[a];
      p = p * d.g.out[a] + (hit ? num / d.g.stride[a] : 0);
    }
    if (hit) sum += dcol(((gg * d.n + nn) * P + p) * K + c * kvol + kk);
  }
  return sum;
}

// Pools over planes of g.in elements (N * C planes). kMax: NaN when the window holds a NaN, else
// its maximum (-inf for an empty window); kAverage: the taps' float sum over the taps counted
// (count_include_pad: those inside the padded input); kGlobalAverage: the whole plane, summed in
// double (GlobalAveragePool).
enum class PoolKind { kMax, kAverage, kGlobalAverage };

struct PoolDesc {
  WindowGeom g;
  int64_t planes = 1;
  PoolKind kind = PoolKind::kMax;
  bool include_pad = false;
};

// The taps of spatial dim a for output o: the first input index `base` and the valid taps
// [lo, hi).
AMPC_HD void PoolTaps(const WindowGeom& g, int a, int64_t o, int64_t* base, int64_t* lo,
                      int64_t* hi) {
  *base = o * g.stride[a] - g.pad_begin[a];
  ValidRange(g.k[a], g.dil[a], *base, g.in[a], lo, hi);
}

AMPC_HD int64_t PoolCount(const PoolDesc& d, const int64_t (&o)[3]) {
  int64_t count = 1;
  for (int a = 0; a < 3; ++a) {
    int64_t base, lo, hi;
    PoolTaps(d.g, a, o[a], &base, &lo, &hi);
    if (d.include_pad) {
      ValidRange(d.g.k[a], d.g.dil[a], base + d.g.pad_begin[a],
                 d.g.in[a] + d.g.pad_begin[a] + d.g.pad_end[a], &lo, &hi);
    }
    count *= hi - lo;
  }
  return count;
}

AMPC_HD void Unflatten3(const int64_t (&dims)[3], int64_t i, int64_t (&out)[3]) {
  out[2] = i % dims[2];
  out[1] = (i / dims[2]) % dims[1];
  out[0] = i / dims[2] / dims[1];
}

// Calls tap(input index within the plane) for each valid tap of output o, in kernel order.
template <typename Tap>
AMPC_HD void ForEachTap(const WindowGeom& g, const int64_t (&o)[3], Tap tap) {
  int64_t base[3], lo[3], hi[3];
  for (int a = 0; a < 3; ++a) PoolTaps(g, a, o[a], &base[a], &lo[a], &hi[a]);
  for (int64_t k0 = lo[0]; k0 < hi[0]; ++k0) {
    const int64_t i0 = base[0] + k0 * g.dil[0];
    for (int64_t k1 = lo[1]; k1 < hi[1]; ++k1) {
      const int64_t i1 = base[1] + k1 * g.dil[1];
      for (int64_t k2 = lo[2]; k2 < hi[2]; ++k2) {
        tap((i0 * g.in[1] + i1) * g.in[2] + base[2] + k2 * g.dil[2]);
      }
    }
  }
}

// Y element i of the pool; x(j) loads X element j as float.
template <typename Load>
AMPC_HD float PoolAt(const PoolDesc& d, int64_t i, Load x) {
  const int64_t out = d.g.out_size(), plane = (i / out) * d.g.in_size();
  if (d.kind == PoolKind::kGlobalAverage) {
    double s = 0;
    const int64_t n = d.g.in_size();
    for (int64_t j = 0; j < n; ++j) s += x(plane + j);
    return static_cast<float>(s / static_cast<double>(n));
  }
  int64_t o[3];
  Unflatten3(d.g.out, i % out, o);
  if (d.kind == PoolKind::kMax) {
    float best = -__builtin_huge_valf();
    bool nan = false;
    ForEachTap(d.g, o, [&](int64_t j) {
      const float v = x(plane + j);
      best = v > best ? v : best;
      nan = nan || v != v;
    });
    return nan ? __builtin_nanf("") : best;
  }
  float sum = 0.0f;
  ForEachTap(d.g, o, [&](int64_t j) { sum += x(plane + j); });
  return sum / static_cast<float>(PoolCount(d, o));
}

// The plane index of output o's first maximum (the first NaN wins), -1 for an empty window: the
// element MaxPool's gradient flows to.
template <typename Load>
AMPC_HD int64_t PoolArgMax(const PoolDesc& d, int64_t plane, const int64_t (&o)[3], Load x) {
  float best = 0.0f;
  int64_t bi = -1;
  ForEachTap(d.g, o, [&](int64_t j) {
    const float v = x(plane + j);
    if (bi < 0 || v > best || (v != v && best == best)) {
      best = v;
      bi = j;
    }
  });
  return bi;
}

// dX element i of MaxPool's (x given) or AveragePool's gradient: the windows that read it, in
// output order, each adding its dY (MaxPool: where i is its maximum) or dY / count.
template <typename LoadX, typename LoadDy>
AMPC_HD float PoolGradAt(const PoolDesc& d, int64_t i, LoadX x, LoadDy dy) {
  const int64_t in = d.g.in_size(), out = d.g.out_size();
  const int64_t plane = i / in, s = i % in;
  int64_t b[3], lo[3], hi[3];
  Unflatten3(d.g.in, s, b);
  for (int a = 0; a < 3; ++a) {  // outputs whose window can reach b[a]
    const int64_t reach = (d.g.k[a] - 1) * d.g.dil[a];
    const int64_t top = b[a] + d.g.pad_begin[a];
    lo[a] = top - reach <= 0 ? 0 : (top - reach + d.g.stride[a] - 1) / d.g.stride[a];
    hi[a] = top / d.g.stride[a] + 1;
    if (hi[a] > d.g.out[a]) hi[a] = d.g.out[a];
  }
  float sum = 0.0f;
  int64_t o[3];
  for (o[0] = lo[0]; o[0] < hi[0]; ++o[0]) {
    for (o[1] = lo[1]; o[1] < hi[1]; ++o[1]) {
      for (o[2] = lo[2]; o[2] < hi[2]; ++o[2]) {
        bool tap = true;
        for (int a = 0; a < 3; ++a) {
          const int64_t off = b[a] + d.g.pad_begin[a] - o[a] * d.g.stride[a];
          tap = tap && off % d.g.dil[a] == 0 && off / d.g.dil[a] < d.g.k[a];
        }
        if (!tap) continue;
        const int64_t oi = (o[0] * d.g.out[1] + o[1]) * d.g.out[2] + o[2];
        if (d.kind == PoolKind::kMax) {
          if (PoolArgMax(d, plane * in, o, x) == s) sum += dy(plane * out + oi);
        } else {
          sum += dy(plane * out + oi) / static_cast<float>(PoolCount(d, o));
        }
      }
    }
  }
  return sum;
}

// Pad of a tensor of rank <= kMaxPadRank: out[t] = in[PadAt(t)] or the constant where it is -1.
inline constexpr int kMaxPadRank = 8;
struct PadDesc {
  int rank = 0;
  int64_t in_dims[kMaxPadRank] = {}, out_dims[kMaxPadRank] = {}, begin[kMaxPadRank] = {};
  PadMode mode = PadMode::kConstant;
  int elem_bytes = 4;
  uint64_t value_bits = 0;  // kConstant: the value's bytes (elem_bytes of them; 0 when absent)
  AMPC_HD int64_t out_elements() const {
    int64_t n = 1;
    for (int a = 0; a < rank; ++a) n *= out_dims[a];
    return n;
  }
};

AMPC_HD int64_t PadAt(const PadDesc& d, int64_t t) {
  int64_t src = 0, stride = 1;
  for (int a = d.rank - 1; a >= 0; --a) {
    const int64_t s = PadSource(t % d.out_dims[a], d.begin[a], d.in_dims[a], d.mode);
    if (s < 0) return -1;
    src += s * stride;
    stride *= d.in_dims[a];
    t /= d.out_dims[a];
  }
  return src;
}

// Clip: numpy.clip's order, max(x, lo) then min(., hi); lo > hi gives hi; NaN stays.
AMPC_HD float ClipValue(float x, float lo, float hi) {
  float v = x < lo ? lo : x;
  return v > hi ? hi : v;
}

}  // namespace ampc::cuda
