// Reading and writing user files without ever losing one: writes go to a temporary file in the
// same folder and are renamed over the target only once complete.
#pragma once

#include <string>
#include <string_view>

#include "ir/status.h"

namespace ampc {

// Whole file as bytes. NotFound for a missing file, InvalidArgument for a directory.
StatusOr<std::string> ReadFile(const std::string& path);
// Atomic replace of `path` with `bytes`; on failure the old file (if any) is untouched.
Status WriteFileAtomically(const std::string& path, std::string_view bytes);
// Whether `b` exists and is the same file as `a` (so writing b would overwrite a).
bool SameFile(const std::string& a, const std::string& b);

}  // namespace ampc
