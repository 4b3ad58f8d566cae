// AssignOffsets (codegen/memory_plan.h). The references: the definition of a valid plan (two
// buffers live at one step never share a byte; offsets aligned), the lower bound every plan
// obeys (the most bytes live at one step), and the first-fit-by-size placement written out here
// independently, which the planner must never do worse than (it keeps the smallest of several).
#include "codegen/memory_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace ampc {
namespace {

int64_t PeakLive(const std::vector<LiveRange>& r) {
  int64_t peak = 0;
  for (const LiveRange& a : r) {  // the peak is reached at some range's first step
    int64_t live = 0;
    for (const LiveRange& b : r) {
      if (b.first <= a.first && a.first <= b.last) live += b.size_bytes;
    }
    peak = std::max(peak, live);
  }
  return peak;
}

// The previous planner: largest first, each at the lowest aligned offset free over its range.
int64_t FirstFitBySize(const std::vector<LiveRange>& r) {
  std::vector<size_t> order(r.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return r[a].size_bytes > r[b].size_bytes; });
  std::vector<int64_t> off(r.size(), -1);
  int64_t total = 0;
  for (size_t i : order) {
    int64_t at = 0;
    for (bool moved = true; moved;) {
      moved = false;
      for (size_t j = 0; j < r.size(); ++j) {
        if (off[j] < 0 || r[j].first > r[i].last || r[i].first > r[j].last) continue;
        if (at < off[j] + r[j].size_bytes && off[j] < at + r[i].size_bytes) {
          at = (off[j] + r[j].size_bytes + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
          moved = true;
        }
      }
    }
    off[i] = at;
    total = std::max(total, at + r[i].size_bytes);
  }
  return (total + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
}

void ExpectValid(const std::vector<LiveRange>& r, const std::vector<int64_t>& off, int64_t arena) {
  ASSERT_EQ(off.size(), r.size());
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(off[i] % kArenaAlignment, 0);
    EXPECT_LE(off[i] + r[i].size_bytes, arena);
    for (size_t j = i + 1; j < r.size(); ++j) {
      if (r[i].first > r[j].last || r[j].first > r[i].last) continue;
      EXPECT_TRUE(off[i] + r[i].size_bytes <= off[j] || off[j] + r[j].size_bytes <= off[i])
          << i << " and " << j << " are live together and overlap";
    }
  }
}

TEST(MemoryPlan, ValidNeverWorseThanFirstFitAndAboveThePeak) {
  std::mt19937 rng(5);
  int improved = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 2 + static_cast<int>(rng() % 40), steps = 1 + static_cast<int>(rng() % 30);
    std::vector<LiveRange> r(static_cast<size_t>(n));
    for (LiveRange& x : r) {
      x.first = static_cast<int>(rng() % steps) - 1;
      x.last = x.first + static_cast<int>(rng() % 8);
      if (rng() % 10 == 0) x.last = INT32_MAX;
      // Sizes as a network's: a few large, many small, not multiples of the alignment.
      x.size_bytes = rng() % 4 == 0 ? 1000 + static_cast<int64_t>(rng() % 100000)
                                    : 1 + static_cast<int64_t>(rng() % 3000);
    }
    int64_t arena = 0;
    const std::vector<int64_t> off = AssignOffsets(r, &arena);
    ExpectValid(r, off, arena);
    EXPECT_GE(arena, PeakLive(r));
    const int64_t baseline = FirstFitBySize(r);
    EXPECT_LE(arena, baseline);
    improved += arena < baseline;
  }
  EXPECT_GT(improved, 0);  // the other orders and fits do find smaller arenas
}

TEST(MemoryPlan, DisjointLifetimesShareOneSlotAndEmptyInputsWork) {
  int64_t arena = -1;
  EXPECT_TRUE(AssignOffsets({}, &arena).empty());
  EXPECT_EQ(arena, 0);
  const std::vector<LiveRange> chain = {{100, 0, 1}, {100, 1, 2}, {100, 2, 3}, {100, 3, 4}};
  const auto off = AssignOffsets(chain, &arena);
  ExpectValid(chain, off, arena);
  EXPECT_EQ(arena, 256);  // two slots of 128 (100 aligned to 64) alternate
}

}  // namespace
}  // namespace ampc
