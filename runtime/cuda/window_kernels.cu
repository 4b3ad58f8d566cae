// Convolution's data movement, pools, Pad and Clip on the device: one thread per output element
// (grid-stride), each computing through window_desc.h's index maps, which
// tests/unit/cuda_window_test.cc checks on the CPU against the CPU runtime's kernels.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

#include "runtime/cuda/grid_stride.h"
#include "runtime/cuda/window_kernels.h"

namespace ampc::cuda {

namespace {

__device__ __forceinline__ float ToF(float v) { return v; }
__device__ __forceinline__ float ToF(__half v) { return __half2float(v); }
__device__ __forceinline__ float ToF(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T FromF(float v);
template <>
__device__ __forceinline__ float FromF<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half FromF<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromF<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

#define AMPC_GRID_STRIDE(t, n)                                                           \
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < (n); \
       t += static_cast<int64_t>(gridDim.x) * blockDim.x)

template <typename U>
__global__ void Im2ColKernel(ConvDesc d, const U* __restrict__ x, U* __restrict__ col) {
  AMPC_GRID_STRIDE(t, d.col_elements()) {
    const int64_t src = Im2ColSource(d, t);
    col[t] = src < 0 ? U(0) : x[src];
  }
}

template <typename T>
__global__ void ConvOutKernel(ConvDesc d, const float* __restrict__ yt, const T* __restrict__ bias,
                              T* __restrict__ y) {
  AMPC_GRID_STRIDE(i, d.y_elements()) {
    float v = yt[ConvRowMajorAt(d, i)];
    if (bias) v += ToF(bias[(i / d.P()) % d.m]);
    y[i] = FromF<T>(v);
  }
}

template <typename T>
__global__ void Col2ImKernel(ConvDesc d, const float* __restrict__ dcol, T* __restrict__ dx) {
  AMPC_GRID_STRIDE(i, d.x_elements()) {
    dx[i] = FromF<T>(Col2ImAt(d, i, [&](int64_t j) { return dcol[j]; }));
  }
}

// One block per output channel m.
template <typename T>
__global__ void ConvBiasGradKernel(ConvDesc d, const T* __restrict__ dy, T* __restrict__ db) {
  __shared__ double part[kThreads];
  const int64_t m = blockIdx.x, P = d.P();
  double s = 0;
  for (int64_t j = threadIdx.x; j < d.n * P; j += blockDim.x) {
    s += ToF(dy[(j / P * d.m + m) * P + j % P]);
  }
  part[threadIdx.x] = s;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[m] = FromF<T>(static_cast<float>(part[0]));
}

template <typename T>
__global__ void PoolKernel(PoolDesc d, const T* __restrict__ x, T* __restrict__ y) {
  AMPC_GRID_STRIDE(i, d.planes * d.g.out_size()) {
    y[i] = FromF<T>(PoolAt(d, i, [&](int64_t j) { return ToF(x[j]); }));
  }
}

template <typename T>
__global__ void PoolGradKernel(PoolDesc d, const T* __restrict__ x, const T* __restrict__ dy,
                               T* __restrict__ dx) {
  AMPC_GRID_STRIDE(i, d.planes * d.g.in_size()) {
    dx[i] = FromF<T>(PoolGradAt(
        d, i, [&](int64_t j) { return ToF(x[j]); }, [&](int64_t j) { return ToF(dy[j]); }));
  }
}

template <typename U>
__global__ void PadKernel(PadDesc d, const U* __restrict__ x, U* __restrict__ y) {
  U value;
  memcpy(&value, &d.value_bits, sizeof(U));
  AMPC_GRID_STRIDE(t, d.out_elements()) {
    const int64_t src = PadAt(d, t);
    y[t] = src < 0 ? value : x[src];
  }
}

template <typename T>
__global__ void ClipKernel(int64_t n, const T* __restrict__ x, const T* lo, const T* hi,
                           T* __restrict__ y) {
  const float l = lo ? ToF(*lo) : -__builtin_huge_valf();
  const float h = hi ? ToF(*hi) : __builtin_huge_valf();
  AMPC_GRID_STRIDE(i, n) { y[i] = FromF<T>(ClipValue(ToF(x[i]), l, h)); }
}

int LastError() { return static_cast<int>(cudaGetLastError()); }

// Calls fn(T{}) with T the element type of t.
template <typename Fn>
int WithType(FloatType t, Fn fn) {
  switch (t) {
    case FloatType::kF32:
      return fn(float{});
    case FloatType::kF16:
      return fn(__half{});
    case FloatType::kBF16:
      return fn(__nv_bfloat16{});
  }
  return static_cast<int>(cudaErrorInvalidValue);
}

template <typename Fn>
int WithBytes(int elem_bytes, Fn fn) {
  switch (elem_bytes) {
    case 1:
      return fn(uint8_t{});
    case 2:
      return fn(uint16_t{});
    case 4:
      return fn(uint32_t{});
    case 8:
      return fn(uint64_t{});
  }
  return static_cast<int>(cudaErrorInvalidValue);
}

}  // namespace

int LaunchIm2Col(const ConvDesc& d, int elem_bytes, const void* x, void* col, void* stream) {
  const int64_t n = d.col_elements();
  if (n == 0) return 0;
  return WithBytes(elem_bytes, [&](auto u) {
    using U = decltype(u);
    Im2ColKernel<U><<<Blocks(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        d, static_cast<const U*>(x), static_cast<U*>(col));
    return LastError();
  });
}

int LaunchConvOut(const ConvDesc& d, FloatType t, const float* yt, const void* bias, void* y,
                  void* stream) {
  const int64_t n = d.y_elements();
  if (n == 0) return 0;
  return WithType(t, [&](auto v) {
    using T = decltype(v);
    ConvOutKernel<T><<<Blocks(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        d, yt, static_cast<const T*>(bias), static_cast<T*>(y));
    return LastError();
  });
}

int LaunchCol2Im(const ConvDesc& d, FloatType t, const float* dcol, void* dx, void* stream) {
  const int64_t n = d.x_elements();
  if (n == 0) return 0;
  return WithType(t, [&](auto v) {
    using T = decltype(v);
    Col2ImKernel<T><<<Blocks(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        d, dcol, static_cast<T*>(dx));
    return LastError();
  });
}

int LaunchConvBiasGrad(const ConvDesc& d, FloatType t, const void* dy, void* db, void* stream) {
  if (d.m == 0) return 0;
  return WithType(t, [&](auto v) {
    using T = decltype(v);
    ConvBiasGradKernel<T>
        <<<static_cast<unsigned>(d.m), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
            d, static_cast<const T*>(dy), static_cast<T*>(db));
    return LastError();
  });
}

int LaunchPool(const PoolDesc& d, FloatType t, const void* x, void* y, void* stream) {
  const int64_t n = d.planes * d.g.out_size();
  if (n == 0) return 0;
  return WithType(t, [&](auto v) {
    using T = decltype(v);
    PoolKernel<T><<<Blocks(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        d, static_cast<const T*>(x), static_cast<T*>(y));
    return LastError();
  });
}

int LaunchPoolGrad(const PoolDesc& d, FloatType t, const void* x, const void* dy, void* dx,
                   void* stream) {
  const int64_t n = d.planes * d.g.in_size();
  if (n == 0) return 0;
  return WithType(t, [&](auto v) {
    using T = decltype(v);
    PoolGradKernel<T><<<Blocks(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        d, static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dx));
    return LastError();
  });
}

int LaunchPad(const PadDesc& d, const void* x, void* y, void* stream) {
  const int64_t n = d.out_elements();
  if (n == 0) return 0;
  return WithBytes(d.elem_bytes, [&](auto u) {
    using U = decltype(u);
    PadKernel<U><<<Blocks(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        d, static_cast<const U*>(x), static_cast<U*>(y));
    return LastError();
  });
}

int LaunchClip(int64_t n, FloatType t, const void* x, const void* lo, const void* hi, void* y,
               void* stream) {
  if (n == 0) return 0;
  return WithType(t, [&](auto v) {
    using T = decltype(v);
    ClipKernel<T><<<Blocks(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        n, static_cast<const T*>(x), static_cast<const T*>(lo), static_cast<const T*>(hi),
        static_cast<T*>(y));
    return LastError();
  });
}

}  // namespace ampc::cuda
