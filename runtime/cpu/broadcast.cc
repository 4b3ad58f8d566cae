#include "runtime/cpu/broadcast.h"

namespace ampc::cpu {

std::vector<int64_t> BroadcastStrides(const std::vector<int64_t>& in_dims,
                                      const std::vector<int64_t>& out_dims) {
  const size_t r = out_dims.size(), k = in_dims.size();
  std::vector<int64_t> strides(r, 0);
  int64_t s = 1;
  for (size_t i = 0; i < k; ++i) {
    const size_t in_axis = k - 1 - i, out_axis = r - 1 - i;
    strides[out_axis] = in_dims[in_axis] == 1 ? 0 : s;
    s *= in_dims[in_axis];
  }
  return strides;
}

BroadcastCursor::BroadcastCursor(const std::vector<int64_t>& out_dims,
                                 const std::vector<std::vector<int64_t>>& in_strides, int64_t begin)
    : dims_(out_dims),
      index_(out_dims.size(), 0),
      strides_(in_strides),
      offsets_(in_strides.size(), 0) {
  for (size_t a = dims_.size(); a-- > 0;) {
    if (dims_[a] == 0) return;
    index_[a] = begin % dims_[a];
    begin /= dims_[a];
  }
  for (size_t j = 0; j < strides_.size(); ++j) {
    for (size_t a = 0; a < dims_.size(); ++a) offsets_[j] += index_[a] * strides_[j][a];
  }
}

void BroadcastCursor::Next() {
  for (size_t a = dims_.size(); a-- > 0;) {
    ++index_[a];
    for (size_t j = 0; j < strides_.size(); ++j) offsets_[j] += strides_[j][a];
    if (index_[a] < dims_[a]) return;
    for (size_t j = 0; j < strides_.size(); ++j) offsets_[j] -= strides_[j][a] * dims_[a];
    index_[a] = 0;
  }
}

}  // namespace ampc::cpu
