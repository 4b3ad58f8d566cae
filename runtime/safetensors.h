// safetensors files (the format of Hugging Face's safetensors library, which PyTorch users load
// with safetensors.torch.load_file): an 8-byte little-endian header length N, N bytes of JSON
// {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"key": "string value", ...}}, then the tensors' bytes, offsets relative to the
// end of the header. The reader trusts nothing: sizes, offsets, overlaps, dtypes and the JSON are
// all checked, and a bad file is a one-line error naming it.
#pragma once

#include <map>
#include <string>

#include "ir/status.h"
#include "ir/tensor.h"

namespace ampc {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// The file's bytes (header + data), tensors in name order, 8-byte aligned as the format asks.
StatusOr<std::string> EncodeSafetensors(const SafetensorsFile& f);
// Writes atomically and durably (temporary file, fsync, rename, fsync of the folder).
Status WriteSafetensors(const std::string& path, const SafetensorsFile& f);
StatusOr<SafetensorsFile> DecodeSafetensors(const std::string& bytes, const std::string& path);
StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path);

}  // namespace ampc
