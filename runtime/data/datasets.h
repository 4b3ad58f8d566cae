// Training data readers: NumPy .npz archives (keys map to graph inputs) and the FashionMNIST
// IDX files shipped by Debian's dataset-fashion-mnist. Every reader validates sizes and
// headers and reports a one-line error naming the file; none trusts a length field.
#pragma once

#include <map>
#include <string>

#include "ir/status.h"
#include "ir/tensor.h"

namespace ampc {

// All arrays of an .npz file (np.savez or np.savez_compressed), by key (file name minus .npy).
StatusOr<std::map<std::string, Tensor>> ReadNpz(const std::string& path);

// One IDX file (optionally gzip-compressed): unsigned-byte data with 1 to 4 dimensions.
StatusOr<Tensor> ReadIdx(const std::string& path);

struct LabeledImages {
  Tensor images;  // f32[N,28,28], pixels scaled to [0, 1]
  Tensor labels;  // i64[N], classes 0..9
};

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// split: "train" (60,000 images) or "test" (10,000).
StatusOr<LabeledImages> ReadFashionMnist(const std::string& dir, const std::string& split);

}  // namespace ampc
