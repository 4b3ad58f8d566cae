// Helpers shared by ampc's unit tests: temporary folders, running the `ampc` binary, files.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ampc::testing {

// A fresh folder under /tmp, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ampc_test_XXXXXX").string();
    path_ = mkdtemp(tmpl.data()) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal (a crash)
  std::string out, err;
};

// Runs `binary` with `args` (already shell-quoted as needed).
inline RunResult RunBinary(const std::string& binary, const std::string& args) {
  TempDir tmp;
  const std::string cmd = binary + " " + args + " >" + (tmp / "out") + " 2>" + (tmp / "err");
  const int status = std::system(cmd.c_str());
  RunResult r;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  r.out = ReadBytes(tmp / "out");
  r.err = ReadBytes(tmp / "err");
  return r;
}

// Runs the ampc binary with `args`.
inline RunResult RunAmpc(const std::string& args) { return RunBinary(AMPC_BINARY, args); }

inline std::string Fixture(const std::string& name) {
  return std::string(AMPC_FIXTURES_DIR) + "/" + name;
}

}  // namespace ampc::testing
