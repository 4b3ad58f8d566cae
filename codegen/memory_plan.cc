#include "codegen/memory_plan.h"

#include <algorithm>
#include <climits>
#include <map>
#include <numeric>

namespace ampc {
namespace {

int64_t Align(int64_t x) { return (x + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

bool Overlap(const LiveRange& a, const LiveRange& b) {
  return a.first <= b.last && b.first <= a.last;
}

// Places the ranges in `order`, each at an aligned offset free over its live range: the lowest
// such offset (first fit) or the start of the smallest free gap it fits in (best fit), else
// above everything live with it. Returns the arena size.
int64_t Place(const std::vector<LiveRange>& ranges, const std::vector<size_t>& order, bool best_fit,
              std::vector<int64_t>* offset) {
  offset->assign(ranges.size(), 0);
  std::vector<size_t> placed;
  placed.reserve(ranges.size());
  std::vector<std::pair<int64_t, int64_t>> busy;
  int64_t total = 0;
  for (size_t i : order) {
    const LiveRange& r = ranges[i];
    busy.clear();
    for (size_t j : placed) {
      if (Overlap(ranges[j], r))
        busy.push_back({(*offset)[j], (*offset)[j] + ranges[j].size_bytes});
    }
    std::sort(busy.begin(), busy.end());
    int64_t at = 0, best = -1, best_gap = INT64_MAX;
    for (const auto& [lo, hi] : busy) {
      if (at + r.size_bytes <= lo) {  // a gap [at, lo) it fits in
        if (!best_fit) break;
        if (lo - at < best_gap) {
          best_gap = lo - at;
          best = at;
        }
      }
      at = std::max(at, Align(hi));
    }
    if (best_fit && best >= 0) at = best;
    (*offset)[i] = at;
    total = std::max(total, at + r.size_bytes);
    placed.push_back(i);
  }
  return Align(total);
}

// "Greedy by breadth": the steps in decreasing order of the bytes live across them; at each,
// the ranges live there not yet placed, largest first.
std::vector<size_t> BreadthOrder(const std::vector<LiveRange>& ranges) {
  std::map<int, int64_t> live;  // step -> bytes live (ranges clipped to the steps they span)
  std::vector<int> steps;
  for (const LiveRange& r : ranges) {
    steps.push_back(r.first);
    steps.push_back(r.last);
  }
  std::sort(steps.begin(), steps.end());
  steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
  for (int s : steps) live[s] = 0;
  for (const LiveRange& r : ranges) {
    for (auto it = live.lower_bound(r.first); it != live.end() && it->first <= r.last; ++it)
      it->second += r.size_bytes;
  }
  std::vector<int> by_breadth(steps);
  std::stable_sort(by_breadth.begin(), by_breadth.end(),
                   [&](int a, int b) { return live[a] > live[b]; });
  std::vector<size_t> order, bigger_first(ranges.size());
  std::iota(bigger_first.begin(), bigger_first.end(), 0);
  std::stable_sort(bigger_first.begin(), bigger_first.end(),
                   [&](size_t a, size_t b) { return ranges[a].size_bytes > ranges[b].size_bytes; });
  std::vector<bool> taken(ranges.size(), false);
  for (int s : by_breadth) {
    for (size_t i : bigger_first) {
      if (!taken[i] && ranges[i].first <= s && s <= ranges[i].last) {
        taken[i] = true;
        order.push_back(i);
      }
    }
    if (order.size() == ranges.size()) break;
  }
  return order;
}

}  // namespace

std::vector<int64_t> AssignOffsets(const std::vector<LiveRange>& ranges, int64_t* arena_bytes) {
  const size_t n = ranges.size();
  std::vector<size_t> by_size(n);
  std::iota(by_size.begin(), by_size.end(), 0);
  std::stable_sort(by_size.begin(), by_size.end(),
                   [&](size_t a, size_t b) { return ranges[a].size_bytes > ranges[b].size_bytes; });
  std::vector<int64_t> best, trial;
  int64_t best_total = Place(ranges, by_size, false, &best);
  // The other orders and fits cost O(n^2) each like the first; up to this many buffers they run
  // and the smallest arena wins (GPT-2 small's training step: 18.0 -> 14.x GiB).
  constexpr size_t kMaxTrials = 20000;
  if (n <= kMaxTrials) {
    const std::vector<size_t> by_breadth = BreadthOrder(ranges);
    const std::pair<const std::vector<size_t>*, bool> trials[] = {
        {&by_size, true}, {&by_breadth, false}, {&by_breadth, true}};
    for (const auto& [order, fit] : trials) {
      const int64_t total = Place(ranges, *order, fit, &trial);
      if (total < best_total) {
        best_total = total;
        best.swap(trial);
      }
    }
  }
  *arena_bytes = best_total;
  return best;
}

}  // namespace ampc
