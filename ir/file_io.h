// Reading and writing user files without ever losing one: writes go to a temporary file in the
// same folder and are renamed over the target only once complete.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ir/status.h"

namespace ampc {

// Whole file as bytes. NotFound for a missing file, InvalidArgument for a directory.
StatusOr<std::string> ReadFile(const std::string& path);
// Atomic, durable replace of `path` with `bytes`: written to a temporary file in the same folder,
// fsync'd, renamed over `path`, and the folder fsync'd, so a crash at any point leaves either the
// old file or the new one. On failure the old file (if any) is untouched.
Status WriteFileAtomically(const std::string& path, std::string_view bytes);
// The same for a file made of several pieces written in order (large files are never joined in
// memory first).
Status WriteFileAtomically(const std::string& path, const std::vector<std::string_view>& pieces);
// Whether `b` exists and is the same file as `a` (so writing b would overwrite a).
bool SameFile(const std::string& a, const std::string& b);

}  // namespace ampc
