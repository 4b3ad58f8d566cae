// Direct f32 2-D convolution for layers with few input taps (c * kh * kw <= kMaxTaps, stride 1,
// no dilation): an image model's first layer (1 or 3 input channels, 3x3 or 5x5). There,
// im2col + GEMM spends most of its time writing the im2col matrix (9 rows per input channel for
// a 28-wide product of depth 9), and oneDNN's blocked kernels want 8+ channels (dnnl_conv.h).
// These kernels read a zero-padded copy of each sample's planes and keep the outputs in AVX2
// registers: 8 output columns x 4 output channels per block for Conv's forward pass, 8 columns
// x 8 taps per block for ConvGrad's dW.
//
// Sums: forward, each output is the taps in (c, kh, kw) order by fused multiply-adds, then + the
// bias (im2col + GEMM adds the bias after its sum too). dW: each sample's products are summed by
// lane, the lanes added in a fixed order, and the samples in order within fixed chunks of
// kChunk, whose partial sums are added in chunk order: the same bits for any thread count.
//
// Each function returns false, writing nothing, where Takes() is false (the caller runs its
// im2col or oneDNN path).
#pragma once

#include <cstdint>

#include "runtime/cpu/thread_pool.h"
#include "runtime/cpu/window.h"

namespace ampc::cpu::conv_small {

using window::Conv2d;

inline constexpr int64_t kMaxTaps = 32;
inline constexpr int64_t kChunk = 8;

// An AVX2 + FMA CPU and a geometry these kernels run: stride 1, dilation 1, pads >= 0,
// c * kh * kw <= kMaxTaps, a window wider than 1x1 (a 1x1 convolution's GEMM reads X as it is,
// with no im2col), the output extents those of a stride-1 convolution.
bool Takes(const Conv2d& g);

// Y [n, m, oh, ow] = conv(X, W) + B; B (m values) may be null.
bool Forward(const Conv2d& g, const float* x, const float* w, const float* b, float* y,
             ThreadPool* pool);

// dW [m, c, kh, kw] = sum over samples and outputs of dY x the window of X.
bool WeightGrad(const Conv2d& g, const float* dy, const float* x, float* dw, ThreadPool* pool);

}  // namespace ampc::cpu::conv_small
