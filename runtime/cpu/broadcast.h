// Numpy-style broadcasting for CPU kernels: maps each output element to the offset of the input
// element it reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ampc::cpu {

// Strides (in elements) of `in_dims` viewed as `out_dims` under broadcasting: dims of size 1 and
// missing leading dims get stride 0. Requires in_dims to be broadcastable to out_dims.
std::vector<int64_t> BroadcastStrides(const std::vector<int64_t>& in_dims,
                                      const std::vector<int64_t>& out_dims);

// Walks output elements [begin, end) in row-major order, keeping the matching offset into one
// or more broadcast inputs up to date incrementally (no division per element).
class BroadcastCursor {
 public:
  BroadcastCursor(const std::vector<int64_t>& out_dims,
                  const std::vector<std::vector<int64_t>>& in_strides, int64_t begin);
  int64_t offset(int input) const { return offsets_[input]; }
  void Next();

 private:
  std::vector<int64_t> dims_, index_;
  std::vector<std::vector<int64_t>> strides_;
  std::vector<int64_t> offsets_;
};

}  // namespace ampc::cpu
