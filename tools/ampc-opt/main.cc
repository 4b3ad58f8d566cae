// ampc-opt: runs named passes on a textual graph and prints the result. Used by FileCheck
// tests (tests/lit) to pin what each pass does, text in, text out.
//   ampc-opt FILE|- [--pass NAME]... [--no-verify]
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <iterator>

#include "ir/file_io.h"
#include "ir/text.h"
#include "passes/pass.h"

namespace {

int Fail(const ampc::Status& st) {
  std::fprintf(stderr, "ampc-opt: error: %s\n", st.message().c_str());
  return st.ExitCode();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ampc-opt: run ampc passes on a textual graph"};
  std::string input;
  std::vector<std::string> passes;
  bool no_verify = false;
  app.add_option("input", input, "textual graph file, or - for stdin")->required();
  std::string names;
  for (const auto& n : ampc::PassNames()) names += (names.empty() ? "" : ", ") + n;
  app.add_option("--pass", passes, "pass to run, in order (" + names + ")");
  app.add_flag("--no-verify", no_verify, "skip the verifier after each pass");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "ampc-opt: error: %s\n", e.what());
    return 2;
  }
  std::string text;
  if (input == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    auto r = ampc::ReadFile(input);
    if (!r.ok()) return Fail(r.status());
    text = std::move(*r);
  }
  auto g = ampc::ParseGraph(text);
  if (!g.ok()) return Fail(g.status().WithContext(input));
  ampc::PassPipeline pipeline(!no_verify);
  for (const auto& name : passes) {
    auto p = ampc::CreatePassByName(name);
    if (!p) return Fail(ampc::InvalidArgument("unknown pass '" + name + "' (known: " + names + ")"));
    pipeline.Add(std::move(p));
  }
  auto r = pipeline.Run(**g);
  if (!r.ok()) return Fail(r.status().WithContext(input));
  std::fputs(ampc::PrintGraph(**g).c_str(), stdout);
  return 0;
}
