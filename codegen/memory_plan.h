// Assigns arena offsets to buffers by liveness: two buffers share memory only if their live
// ranges (first definition .. last use, in step order) do not overlap. Greedy by size: the
// largest buffers are placed first, each at the lowest aligned offset free over its range.
#pragma once

#include <cstdint>
#include <vector>

namespace ampc {

struct LiveRange {
  int64_t size_bytes = 0;
  int first = 0;  // step that defines it (-1: before the first step, e.g. a graph input)
  int last = 0;   // last step that reads it (INT32_MAX: read after the last step, an output)
};

inline constexpr int64_t kArenaAlignment = 64;

// Returns one offset per range and sets *arena_bytes to the arena size needed.
std::vector<int64_t> AssignOffsets(const std::vector<LiveRange>& ranges, int64_t* arena_bytes);

}  // namespace ampc
