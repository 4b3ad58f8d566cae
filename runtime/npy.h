// NumPy .npy files (format versions 1-3, C order, little-endian numeric dtypes).
#pragma once

#include <string>

#include "ir/status.h"
#include "ir/tensor.h"

namespace ampc {

StatusOr<Tensor> ReadNpy(const std::string& path);
// Parses .npy bytes; `what` names the source in errors.
StatusOr<Tensor> ParseNpy(const std::string& bytes, const std::string& what);

}  // namespace ampc
