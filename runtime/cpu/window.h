// Sliding-window geometry shared by the forward kernels (kernels_conv.cc: Conv, ConvTranspose,
// pools) and their backward kernels (kernels_grad_window.cc), so both read ONNX's strides,
// dilations, pads and auto_pad the same way and walk windows the same way.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "ir/status.h"
#include "runtime/cpu/kernel.h"
#include "runtime/index_maps.h"

namespace ampc::cpu::window {

// Window geometry, spatial dims padded at the front to 3-D (size 1, kernel 1, stride 1, pad 0).
struct Geometry {
  int64_t rank = 0;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1}, dil[3] = {1, 1, 1}, pad_begin[3] = {0, 0, 0},
          pad_end[3] = {0, 0, 0};
  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t kernel_size() const { return k[0] * k[1] * k[2]; }
};

using ::ampc::ValidRange;  // runtime/index_maps.h

// A 2-D convolution of `group` 1: X [n, c, h, w], W [m, c, kh, kw], Y [n, m, oh, ow].
struct Conv2d {
  int64_t n = 0, c = 0, h = 0, w = 0, m = 0, kh = 0, kw = 0, oh = 0, ow = 0;
  int64_t stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};

// The 2-D convolution of X dims `x` (rank 4), W dims `w` and window geometry `g` (Geometry pads
// spatial ranks to 3 with a leading 1), or nothing for other ranks or groups.
inline std::optional<Conv2d> Describe(const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                                      const Geometry& g, int64_t group) {
  if (x.size() != 4 || w.size() != 4 || group != 1 || g.in[0] != 1 || g.k[0] != 1) {
    return std::nullopt;
  }
  Conv2d c;
  c.n = x[0];
  c.c = x[1];
  c.h = g.in[1];
  c.w = g.in[2];
  c.m = w[0];
  c.kh = g.k[1];
  c.kw = g.k[2];
  c.oh = g.out[1];
  c.ow = g.out[2];
  c.stride_h = g.stride[1];
  c.stride_w = g.stride[2];
  c.dil_h = g.dil[1];
  c.dil_w = g.dil[2];
  c.pad_top = g.pad_begin[1];
  c.pad_left = g.pad_begin[2];
  c.pad_bottom = g.pad_end[1];
  c.pad_right = g.pad_end[2];
  return c;
}

// ctx's ints attribute `name` of length n (dflt when absent), every entry >= min_value.
StatusOr<std::vector<int64_t>> IntsAttr(const KernelContext& ctx, const char* name, int64_t n,
                                        int64_t dflt, int64_t min_value);

// Reads strides, dilations, pads and auto_pad for spatial dims `in` -> `out` (the precomputed
// output) with kernel dims `kernel`. Conv and pools derive SAME pads from the output size as
// ONNX does; ConvTranspose (transposed) derives them from its own total-padding formula, also
// when output_shape is given.
StatusOr<Geometry> ReadGeometry(const KernelContext& ctx, const std::vector<int64_t>& in,
                                const std::vector<int64_t>& out, const std::vector<int64_t>& kernel,
                                bool transposed = false);

std::vector<int64_t> Spatial(const std::vector<int64_t>& dims);

// All non-null views floating and of one dtype.
Status RequireFloatTypes(const KernelContext& ctx, std::initializer_list<const TensorView*> ts);

// Writes the kernel_size() x out_size() im2col rows of one input channel plane `x`.
template <typename T>
void Im2ColChannel(const T* x, const Geometry& g, T* dst) {
  const int64_t plane = g.out_size();
  for (int64_t kd = 0; kd < g.k[0]; ++kd) {
    for (int64_t kh = 0; kh < g.k[1]; ++kh) {
      for (int64_t kw = 0; kw < g.k[2]; ++kw) {
        T* row = dst + ((kd * g.k[1] + kh) * g.k[2] + kw) * plane;
        const int64_t off = kw * g.dil[2] - g.pad_begin[2];
        int64_t lo, hi;
        ValidRange(g.out[2], g.stride[2], off, g.in[2], &lo, &hi);
        for (int64_t od = 0; od < g.out[0]; ++od) {
          const int64_t id = od * g.stride[0] - g.pad_begin[0] + kd * g.dil[0];
          for (int64_t oh = 0; oh < g.out[1]; ++oh) {
            const int64_t ih = oh * g.stride[1] - g.pad_begin[1] + kh * g.dil[1];
            T* o = row + (od * g.out[1] + oh) * g.out[2];
            if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1]) {
              std::fill(o, o + g.out[2], T(0));
              continue;
            }
            const T* xr = x + (id * g.in[1] + ih) * g.in[2];
            std::fill(o, o + lo, T(0));
            if (g.stride[2] == 1) {
              std::copy(xr + lo + off, xr + hi + off, o + lo);
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) o[ow] = xr[ow * g.stride[2] + off];
            }
            std::fill(o + hi, o + g.out[2], T(0));
          }
        }
      }
    }
  }
}

// Per spatial dim and output index: the first input index of the window (base), the valid
// kernel taps [lo, hi), and how many taps fall inside the padded input (count_include_pad).
struct Windows {
  std::vector<int64_t> base[3], lo[3], hi[3], padded_count[3];
};
Windows MakeWindows(const Geometry& g);

// How the pool kernels walk windows: per spatial dim d and output index o, the first input index
// (base), the valid taps [lo, hi), the taps inside the padded input (padded) and the dilation.
// TableWalk reads them from Windows (any rank, padding, dilation); DenseWalk2D computes them for
// windows wholly inside a 2-D input without padding or dilation, with the kernel size and stride
// fixed at compile time when K, S > 0 (the 2x2/2 pool): the same taps in the same order, without
// the table loads, so the tap loops unroll.
struct TableWalk {
  const Geometry& g;
  const Windows& w;
  int64_t base(int d, int64_t o) const { return w.base[d][o]; }
  int64_t lo(int d, int64_t o) const { return w.lo[d][o]; }
  int64_t hi(int d, int64_t o) const { return w.hi[d][o]; }
  int64_t padded(int d, int64_t o) const { return w.padded_count[d][o]; }
  int64_t dil(int d) const { return g.dil[d]; }
};

template <int K, int S>
struct DenseWalk2D {
  const Geometry& g;
  int64_t base(int d, int64_t o) const { return d == 0 ? 0 : o * (S > 0 ? S : g.stride[d]); }
  int64_t lo(int, int64_t) const { return 0; }
  int64_t hi(int d, int64_t) const { return d == 0 ? 1 : K > 0 ? K : g.k[d]; }
  int64_t padded(int d, int64_t o) const { return hi(d, o); }
  int64_t dil(int) const { return 1; }
};

// Every window of g lies wholly inside a 2-D input, without padding or dilation.
inline bool IsDense2D(const Geometry& g) {
  bool dense = g.in[0] == 1 && g.out[0] == 1 && g.k[0] == 1;
  for (int d = 1; d < 3 && dense; ++d) {
    dense = g.dil[d] == 1 && g.pad_begin[d] == 0 && g.pad_end[d] == 0 &&
            (g.out[d] - 1) * g.stride[d] + g.k[d] <= g.in[d];
  }
  return dense;
}

// Calls fn(walk) with the walker that fits g (the tables are built only for the general case).
template <typename Fn>
void WithWalk(const Geometry& g, Fn&& fn) {
  if (!IsDense2D(g)) {
    const Windows w = MakeWindows(g);
    fn(TableWalk{g, w});
  } else if (g.k[1] == 2 && g.k[2] == 2 && g.stride[1] == 2 && g.stride[2] == 2) {
    fn(DenseWalk2D<2, 2>{g});
  } else {
    fn(DenseWalk2D<0, 0>{g});
  }
}

// The taps an average pool divides output (od, oh, ow) by: those inside the padded input with
// count_include_pad, else those inside the input.
template <typename Walk>
int64_t WindowCount(const Walk& w, bool include_pad, int64_t od, int64_t oh, int64_t ow) {
  if (include_pad) return w.padded(0, od) * w.padded(1, oh) * w.padded(2, ow);
  return (w.hi(0, od) - w.lo(0, od)) * (w.hi(1, oh) - w.lo(1, oh)) * (w.hi(2, ow) - w.lo(2, ow));
}

// The adjoint of Im2ColChannel, for any pair of grids: adds the kernel_size() x prod(from) rows
// of `src` into the plane `dst` of dims `to`, where grid position a lands at
// a * stride - pad_begin + k * dil. Conv's dX uses from = out, to = in; ConvTranspose's output
// uses from = in, to = out. `dst` is not cleared.
template <typename T>
void Col2ImChannel(const T* src, const Geometry& g, const int64_t (&from)[3],
                   const int64_t (&to)[3], T* dst) {
  const int64_t plane = from[0] * from[1] * from[2];
  for (int64_t kd = 0; kd < g.k[0]; ++kd) {
    for (int64_t kh = 0; kh < g.k[1]; ++kh) {
      for (int64_t kw = 0; kw < g.k[2]; ++kw) {
        const T* row = src + ((kd * g.k[1] + kh) * g.k[2] + kw) * plane;
        const int64_t off = kw * g.dil[2] - g.pad_begin[2];
        int64_t lo, hi;
        ValidRange(from[2], g.stride[2], off, to[2], &lo, &hi);
        for (int64_t a0 = 0; a0 < from[0]; ++a0) {
          const int64_t b0 = a0 * g.stride[0] - g.pad_begin[0] + kd * g.dil[0];
          if (b0 < 0 || b0 >= to[0]) continue;
          for (int64_t a1 = 0; a1 < from[1]; ++a1) {
            const int64_t b1 = a1 * g.stride[1] - g.pad_begin[1] + kh * g.dil[1];
            if (b1 < 0 || b1 >= to[1]) continue;
            const T* r = row + (a0 * from[1] + a1) * from[2];
            T* o = dst + (b0 * to[1] + b1) * to[2];
            for (int64_t a2 = lo; a2 < hi; ++a2) o[a2 * g.stride[2] + off] += r[a2];
          }
        }
      }
    }
  }
}

}  // namespace ampc::cpu::window
