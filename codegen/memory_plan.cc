#include "codegen/memory_plan.h"

#include <algorithm>
#include <numeric>

namespace ampc {

std::vector<int64_t> AssignOffsets(const std::vector<LiveRange>& ranges, int64_t* arena_bytes) {
  const size_t n = ranges.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return ranges[a].size_bytes > ranges[b].size_bytes; });
  auto align = [](int64_t x) {
    return (x + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
  };
  std::vector<int64_t> offset(n, 0);
  std::vector<size_t> placed;
  int64_t total = 0;
  for (size_t i : order) {
    const LiveRange& r = ranges[i];
    // Intervals of already placed buffers that are live at the same time, by offset.
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (size_t j : placed) {
      const LiveRange& o = ranges[j];
      if (o.first <= r.last && r.first <= o.last)
        busy.push_back({offset[j], offset[j] + o.size_bytes});
    }
    std::sort(busy.begin(), busy.end());
    int64_t at = 0;
    for (const auto& [lo, hi] : busy) {
      if (at + r.size_bytes <= lo) break;  // fits in the gap before this interval
      at = std::max(at, align(hi));
    }
    offset[i] = at;
    total = std::max(total, at + r.size_bytes);
    placed.push_back(i);
  }
  *arena_bytes = align(total);
  return offset;
}

}  // namespace ampc
