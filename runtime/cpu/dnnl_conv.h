// oneDNN's direct convolution (Debian's libdnnl-dev) for the CPU runtime's 2-D convolutions:
// Conv's forward pass and ConvGrad's dX and dW, in f32, and in bf16 where the CPU multiplies
// bf16 natively (AVX512-BF16). oneDNN's jit kernels work in blocked layouts (nChw16c); the
// plain NCHW tensors of the plan are reordered in and out, chunk by chunk. Measured on the
// fixture CNN's 8->16 channel 3x3 layer (Zen 4, batch 128, 2 threads): forward, dX and dW with
// the reorders 1.3 ms in f32 and 0.65 ms in bf16, against 2.5 ms for im2col + GEMM.
//
// Determinism: the batch is cut into fixed chunks of kChunk samples (whatever the thread count);
// each chunk's dW is its own f32 partial, summed in chunk order. bf16 outputs accumulate in f32
// and round once, as every half GEMM of the runtime does.
//
// Each function returns false, having written nothing a caller relies on, where oneDNN does not
// run the product with a jit kernel (another geometry, groups, a reference or GEMM-based
// implementation, no oneDNN in the build, AMPC_CONV=im2col in the environment): the caller then
// runs its im2col path.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ir/dtype.h"
#include "runtime/cpu/thread_pool.h"
#include "runtime/cpu/window.h"

namespace ampc::cpu::dnnl_conv {

// A 2-D convolution of `group` 1: X [n, c, h, w], W [m, c, kh, kw], Y [n, m, oh, ow].
struct Conv2d {
  int64_t n = 0, c = 0, h = 0, w = 0, m = 0, kh = 0, kw = 0, oh = 0, ow = 0;
  int64_t stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};

inline constexpr int64_t kChunk = 32;

// The 2-D convolution of X dims `x` (rank 4), W dims `w` and window geometry `g` (window.h pads
// spatial ranks to 3 with a leading 1), or nothing for other ranks or groups.
inline std::optional<Conv2d> Describe(const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                                      const window::Geometry& g, int64_t group) {
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

// Y = conv(X, W) + B; X, W, Y of `dtype` (f32 or bf16); B (f32, m values) may be null.
bool Forward(DType dtype, const Conv2d& g, const void* x, const void* w, const float* b, void* y,
             ThreadPool* pool);

// dX (X's dtype; may be null: not wanted) and dW (`dw`, f32, m*c*kh*kw) from dY, X and W of
// `dtype`.
bool Backward(DType dtype, const Conv2d& g, const void* dy, const void* x, const void* w, void* dx,
              float* dw, ThreadPool* pool);

}  // namespace ampc::cpu::dnnl_conv
