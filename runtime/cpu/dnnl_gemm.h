// oneDNN's matmul as the CPU runtime's GEMM engine, on the calling thread only (the runtime's
// ThreadPool splits a product across threads; see gemm.cc). Built when CMake finds oneDNN
// (Debian's libdnnl-dev); without it, Available() is false and gemm.cc uses OpenBLAS alone.
//
// What it runs (gemm.cc decides, by the measurements in docs/ARCHITECTURE.md):
//   - bf16 x bf16 -> bf16 where the CPU multiplies bf16 natively (AVX512-BF16 vdpbf16ps, AMX):
//     the bf16 operands are read as they are, products accumulate in fp32 and each output is
//     rounded once (round to nearest even), beta * C added before that rounding;
//   - f32 x f32 -> f32.
// Primitives are created once per shape and thread and kept; oneDNN's OpenMP runtime is held to
// one thread in every thread that calls here, so no OpenMP team is ever started.
#pragma once

#include <cstdint>

#include "ir/dtype.h"

namespace ampc::cpu::dnnl_gemm {

// Built with oneDNN, and not turned off by AMPC_GEMM=openblas in the environment.
bool Available();
// Available() and this CPU has native bf16 dot products (AVX512-BF16; AMX CPUs have it too).
bool NativeBf16();
// Available() and this CPU runs oneDNN's AVX-512 f32 kernels (single-threaded 112-116 GFLOP/s
// against OpenBLAS's 100-106 on a Zen 4 core), or AMPC_GEMM=onednn forces it.
bool UseForF32();

// Row-major C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C on the calling thread; A, B and C
// all of `dtype` (f32 or bf16). Leading dimensions as in gemm.h's GemmDesc (already resolved,
// never 0). M, N, K > 0. Returns false (having done nothing) if oneDNN cannot run the product.
bool Gemm(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const void* a, int64_t lda, const void* b, int64_t ldb, float beta, void* c,
          int64_t ldc);

}  // namespace ampc::cpu::dnnl_gemm
