// The CUDA executor's kernels for convolution's data movement, pools, Pad and Clip
// (window_kernels.cu, compiled by nvcc for sm_80 and sm_90); they compute through
// window_desc.h's index maps. Each launch is asynchronous on `stream` (a cudaStream_t) and
// returns the launch's cudaError_t as an int (0: success).
#pragma once

#include <cstdint>

#include "runtime/cuda/window_desc.h"

namespace ampc::cuda {

// col = im2col(x), zeros in the padding; x and col of elem_bytes-byte elements.
int LaunchIm2Col(const ConvDesc& d, int elem_bytes, const void* x, void* col, void* stream);
// y = yt (+ bias) in Y's layout, rounded once to t (bias may be null).
int LaunchConvOut(const ConvDesc& d, FloatType t, const float* yt, const void* bias, void* y,
                  void* stream);
// dx = col2im(dcol), rounded once to t.
int LaunchCol2Im(const ConvDesc& d, FloatType t, const float* dcol, void* dx, void* stream);
// db[m] = the sum of dY's channel-m planes, accumulated in double.
int LaunchConvBiasGrad(const ConvDesc& d, FloatType t, const void* dy, void* db, void* stream);
int LaunchPool(const PoolDesc& d, FloatType t, const void* x, void* y, void* stream);
// x: MaxPool's input (null for AveragePool's gradient).
int LaunchPoolGrad(const PoolDesc& d, FloatType t, const void* x, const void* dy, void* dx,
                   void* stream);
int LaunchPad(const PadDesc& d, const void* x, void* y, void* stream);
// y = Clip(x, *lo, *hi) over n elements; lo / hi are device scalars of type t, or null.
int LaunchClip(int64_t n, FloatType t, const void* x, const void* lo, const void* hi, void* y,
               void* stream);

}  // namespace ampc::cuda
