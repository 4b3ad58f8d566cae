// The `ampc` subcommands. Each returns a Status; main() turns it into a one-line error and the
// exit code (0 ok, 1 failure while running, 2 bad input or usage).
#pragma once

#include <string>

#include "ir/status.h"

namespace ampc::cli {

struct CompileArgs {
  std::string model;
};
Status RunCompile(const CompileArgs& args);

struct InspectArgs {
  std::string model;
  std::string format = "text";  // text | json | dot
  std::string output;           // empty: stdout
  bool full_weights = false;    // print every initializer's data in text form
};
Status RunInspect(const InspectArgs& args);

Status RunDevices();

}  // namespace ampc::cli
