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
#include <vector>

#include "ir/dtype.h"
#include "runtime/cpu/thread_pool.h"
#include "runtime/cpu/window.h"

namespace ampc::cpu::dnnl_conv {

using window::Conv2d;
using window::Describe;

inline constexpr int64_t kChunk = 32;

// Y = conv(X, W) + B; X, W, Y of `dtype` (f32 or bf16); B (f32, m values) may be null.
bool Forward(DType dtype, const Conv2d& g, const void* x, const void* w, const float* b, void* y,
             ThreadPool* pool);

// dX (X's dtype; may be null: not wanted) and dW (`dw`, f32, m*c*kh*kw) from dY, X and W of
// `dtype`.
bool Backward(DType dtype, const Conv2d& g, const void* dy, const void* x, const void* w, void* dx,
              float* dw, ThreadPool* pool);

}  // namespace ampc::cpu::dnnl_conv
