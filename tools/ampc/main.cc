// ampc: the command-line driver. `ampc MODEL.onnx` is short for `ampc compile MODEL.onnx`.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "tools/ampc/commands.h"

namespace {

// Later subcommands (eval, train, bench, export) add themselves here the same way.
constexpr const char* kSubcommands[] = {"compile", "inspect", "devices"};

bool IsSubcommand(const std::string& s) {
  for (const char* c : kSubcommands) {
    if (s == c) return true;
  }
  return false;
}

int Report(const ampc::Status& st) {
  if (!st.ok()) std::fprintf(stderr, "ampc: error: %s\n", st.message().c_str());
  return st.ExitCode();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // A first argument that is neither an option nor a subcommand is a model: run `compile`.
  if (!args.empty() && !args[0].empty() && args[0][0] != '-' && !IsSubcommand(args[0])) {
    args.insert(args.begin(), "compile");
  }
  CLI::App app{"ampc: ONNX mixed-precision training compiler"};
  app.set_version_flag("--version", "ampc 0.1.0");
  app.require_subcommand(1);

  ampc::cli::CompileArgs compile;
  auto* c = app.add_subcommand("compile", "Import, verify and infer shapes; print a summary");
  c->add_option("model", compile.model, "ONNX model (.onnx)")->required();

  ampc::cli::InspectArgs inspect;
  auto* i = app.add_subcommand("inspect", "Print the graph (text IR, JSON or Graphviz dot)");
  i->add_option("model", inspect.model, "ONNX model (.onnx)")->required();
  i->add_option("--format", inspect.format, "text | json | dot")
      ->check(CLI::IsMember({"text", "json", "dot"}));
  i->add_option("-o,--output", inspect.output, "write to FILE instead of stdout (atomically)");
  i->add_flag("--full-weights", inspect.full_weights, "print all initializer data in text form");

  auto* d = app.add_subcommand("devices", "List the compute devices ampc can use");

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "ampc: error: %s (see ampc --help)\n", e.what());
    return 2;
  }
  if (c->parsed()) return Report(ampc::cli::RunCompile(compile));
  if (i->parsed()) return Report(ampc::cli::RunInspect(inspect));
  if (d->parsed()) return Report(ampc::cli::RunDevices());
  return 2;
}
