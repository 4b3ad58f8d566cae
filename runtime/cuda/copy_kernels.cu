// Strided copies (Transpose, Split, Concat, Expand) and Gather on the device. The index maps are
// those of copy_desc.h; tests/unit/cuda_plan_test.cc checks the same maps on the CPU against the
// CPU runtime's kernels, and tools/gpu_check.sh runs these kernels against the CPU executor.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "runtime/cuda/copy_kernels.h"
#include "runtime/cuda/grid_stride.h"

namespace ampc::cuda {

namespace {

struct CopyArgs {
  int rank;
  int64_t n;
  int64_t dims[kMaxCopyRank], in_strides[kMaxCopyRank], out_strides[kMaxCopyRank];
  int64_t in_offset, out_offset;
};

template <typename T>
__global__ void StridedCopyKernel(const T* __restrict__ in, T* __restrict__ out, CopyArgs a) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < a.n;
       t += step) {
    int64_t rem = t, src = a.in_offset, dst = a.out_offset;
    for (int d = a.rank - 1; d >= 0; --d) {
      const int64_t i = rem % a.dims[d];
      rem /= a.dims[d];
      src += i * a.in_strides[d];
      dst += i * a.out_strides[d];
    }
    out[dst] = in[src];
  }
}

template <typename T, typename I>
__global__ void GatherKernel(const T* __restrict__ data, const I* __restrict__ idx,
                             T* __restrict__ out, int64_t outer, int64_t axis_dim,
                             int64_t indices, int64_t inner) {
  const int64_t n = outer * indices * inner;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < n;
       t += step) {
    const int64_t i = t % inner, j = (t / inner) % indices, o = t / (inner * indices);
    int64_t v = static_cast<int64_t>(idx[j]);
    if (v < 0) v += axis_dim;
    out[t] = (v < 0 || v >= axis_dim) ? T(0) : data[(o * axis_dim + v) * inner + i];
  }
}

template <typename T>
int Copy(const StridedCopy& c, const void* in, void* out, cudaStream_t s) {
  CopyArgs a{};
  a.rank = c.rank;
  a.n = c.elements();
  for (int d = 0; d < c.rank; ++d) {
    a.dims[d] = c.dims[d];
    a.in_strides[d] = c.in_strides[d];
    a.out_strides[d] = c.out_strides[d];
  }
  a.in_offset = c.in_offset;
  a.out_offset = c.out_offset;
  if (a.n == 0) return 0;
  StridedCopyKernel<T><<<Blocks(a.n), kThreads, 0, s>>>(static_cast<const T*>(in),
                                                        static_cast<T*>(out), a);
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int Gather(const GatherDesc& g, const void* data, const void* idx, void* out, cudaStream_t s) {
  const int64_t n = g.outer * g.indices * g.inner;
  if (n == 0) return 0;
  if (g.index_bytes == 8) {
    GatherKernel<T, int64_t><<<Blocks(n), kThreads, 0, s>>>(
        static_cast<const T*>(data), static_cast<const int64_t*>(idx), static_cast<T*>(out),
        g.outer, g.axis_dim, g.indices, g.inner);
  } else {
    GatherKernel<T, int32_t><<<Blocks(n), kThreads, 0, s>>>(
        static_cast<const T*>(data), static_cast<const int32_t*>(idx), static_cast<T*>(out),
        g.outer, g.axis_dim, g.indices, g.inner);
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int LaunchStridedCopy(const StridedCopy& c, const void* in, void* out, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  switch (c.elem_bytes) {
    case 1: return Copy<uint8_t>(c, in, out, s);
    case 2: return Copy<uint16_t>(c, in, out, s);
    case 4: return Copy<uint32_t>(c, in, out, s);
    case 8: return Copy<uint64_t>(c, in, out, s);
  }
  return static_cast<int>(cudaErrorInvalidValue);
}

int LaunchGather(const GatherDesc& g, const void* data, const void* indices, void* out,
                 void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  switch (g.elem_bytes) {
    case 1: return Gather<uint8_t>(g, data, indices, out, s);
    case 2: return Gather<uint16_t>(g, data, indices, out, s);
    case 4: return Gather<uint32_t>(g, data, indices, out, s);
    case 8: return Gather<uint64_t>(g, data, indices, out, s);
  }
  return static_cast<int>(cudaErrorInvalidValue);
}

}  // namespace ampc::cuda
