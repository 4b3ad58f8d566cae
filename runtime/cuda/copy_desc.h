// The data-movement descriptions the CUDA executor's own kernels take (runtime/cuda/
// copy_kernels.cu), plain structs so that nvcc compiles them without the plan's protobuf headers.
// step_plan.h derives them from a plan's steps.
#pragma once

#include <array>
#include <cstdint>

namespace ampc::cuda {

// out[i] = in[offset_in + sum_d idx_d * in_stride_d] at out offset offset_out + sum_d idx_d *
// out_stride_d, over the index space `dims` (row-major, at most kMaxCopyRank axes), in elements of
// elem_bytes bytes. Input / output are the step's input `input` and output `output`.
inline constexpr int kMaxCopyRank = 8;
struct StridedCopy {
  int input = 0, output = 0;
  int rank = 0;
  int elem_bytes = 0;
  std::array<int64_t, kMaxCopyRank> dims{}, in_strides{}, out_strides{};
  int64_t in_offset = 0, out_offset = 0;
  int64_t elements() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[i];
    return n;
  }
};

// Gather: out[o, j, i] = data[o, wrap(idx[j]), i] for outer o < outer, j < indices, i < inner,
// wrap(v) = v + axis_dim when v < 0; an index outside [-axis_dim, axis_dim) writes zeros (the
// CPU runtime reports it as an error; a kernel cannot stop the step).
struct GatherDesc {
  int64_t outer = 1, axis_dim = 1, indices = 1, inner = 1;
  int elem_bytes = 0;
  int index_bytes = 8;  // i64 or i32 indices
};
}  // namespace ampc::cuda
