// Launch geometry of the CUDA runtime's own element-wise kernels (runtime/cuda/*.cu): 256
// threads a block, grid-stride loops over at most 65535 * 8 blocks, enough to fill any GPU.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ampc::cuda {

inline constexpr int kThreads = 256;

inline unsigned Blocks(int64_t n) {
  return static_cast<unsigned>(
      std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t{65535} * 8)));
}

}  // namespace ampc::cuda
