// Internal helpers shared by the shape kernel files (kernels_shape.cc, kernels_shape_move.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/cpu/kernel.h"

namespace ampc::cpu::shape_util {

// Product of dims[begin, end).
int64_t Product(const std::vector<int64_t>& dims, size_t begin, size_t end);
std::vector<int64_t> RowMajorStrides(const std::vector<int64_t>& dims);

// Input i, which must be present.
Status InputAt(const KernelContext& ctx, int i, const TensorView** t);
// Output i is present with dtype dt and exactly `dims` (the planned shape must match what the
// inputs imply).
Status CheckOutput(const KernelContext& ctx, int i, DType dt, const std::vector<int64_t>& dims);
// Values of an i32/i64 input (shape, axes, pads, indices, ...).
StatusOr<std::vector<int64_t>> ReadInts(const KernelContext& ctx, int i, const char* what);
// Axis in [-rank, rank) -> [0, rank); a list also rejects repeats.
StatusOr<int64_t> NormAxis(const KernelContext& ctx, int64_t axis, int64_t rank);
StatusOr<std::vector<int64_t>> NormAxes(const KernelContext& ctx, const std::vector<int64_t>& axes,
                                        int64_t rank);
// memcpy of n bytes, split over the pool when large; no-op when dst == src.
void CopyBytes(void* dst, const void* src, int64_t n, ThreadPool* pool);

// Calls f(T{}) with T the unsigned integer type of `size` bytes (1, 2, 4 or 8).
template <typename F>
void BySize(int size, F&& f) {
  switch (size) {
    case 1:
      f(uint8_t{});
      break;
    case 2:
      f(uint16_t{});
      break;
    case 4:
      f(uint32_t{});
      break;
    case 8:
      f(uint64_t{});
      break;
    default:
      break;
  }
}

}  // namespace ampc::cpu::shape_util
