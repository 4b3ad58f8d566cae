// Reading safetensors files (Hugging Face's checkpoint format):
//   [0, 8)          u64 little-endian N, the header's length
//   [8, 8 + N)      a JSON object {NAME: {"dtype": "F32", "shape": [...], "data_offsets": [b, e]},
//                   "__metadata__": {STRING: STRING}} (optionally padded with spaces)
//   [8 + N, end)    the data: each tensor's little-endian bytes at [b, e) of this section
// The file comes from outside, so every number in the header is checked before it is used: the
// header fits the file, offsets are ordered and inside the data, the byte count is the shape's,
// tensors do not overlap and leave no gap (what the reference implementation enforces), and the
// shape's product does not overflow.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "ir/status.h"
#include "ir/tensor.h"

namespace ampc {

// The tensors of a safetensors file by name, and its __metadata__ (when given).
struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Parses the bytes of a safetensors file; errors start with `display_name`.
StatusOr<SafetensorsFile> ParseSafetensors(std::string_view bytes, const std::string& display_name);
// Reads and parses `path`.
StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path);

// The file's bytes: tensors in name order, contiguous, the data 8-byte aligned (header padded
// with spaces), metadata as given. What ParseSafetensors reads back.
StatusOr<std::string> EncodeSafetensors(const SafetensorsFile& f);
// Writes atomically and durably (temporary file, fsync, rename, fsync of the folder).
Status WriteSafetensors(const std::string& path, const SafetensorsFile& f);

}  // namespace ampc
