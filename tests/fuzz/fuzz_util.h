// Helpers shared by the libFuzzer targets (tests/fuzz/*_fuzz.cc, built by the `fuzz` preset).
// Most of ampc's readers take a path, as the CLI does; the targets write each input to a file in
// a private scratch folder so that the real code path (open, stat, mmap) is what gets fuzzed.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "ir/limits.h"

namespace ampc::fuzz {

// A folder of this process's own (libFuzzer's -jobs run several processes side by side).
inline const std::string& ScratchDir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string d =
        std::string(tmp && *tmp ? tmp : "/tmp") + "/ampc-fuzz-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::string WriteScratch(const std::string& name, std::string_view bytes) {
  const std::string path = ScratchDir() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
  return path;
}

// libFuzzer's default -rss_limit_mb is 2048: the targets lower ampc's input limits so that an
// input that passes every check still fits, and an allocation beyond them is a finding.
inline void UseFuzzLimits() {
  InputLimits l;
  l.max_tensor_bytes = int64_t{256} << 20;
  SetInputLimits(l);
}

}  // namespace ampc::fuzz
