// ampc: the command-line driver. `ampc MODEL.onnx` is short for `ampc compile MODEL.onnx`.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "tools/ampc/commands.h"

namespace {

// Later subcommands (eval, train, bench, export) add themselves here the same way.
constexpr const char* kSubcommands[] = {"compile", "inspect", "eval", "bench", "devices"};

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

  ampc::cli::EvalArgs eval;
  auto* e = app.add_subcommand("eval", "Run inference on the CPU runtime");
  e->add_option("model", eval.model, "ONNX model (.onnx) or compiled plan (.ampc)")->required();
  e->add_option("--inputs", eval.inputs, "folder with input_K.pb (ONNX TensorProto) or NAME.npy")
      ->required();
  e->add_option("--out", eval.out, "folder for output_K.pb")->required();
  e->add_option("--precision", eval.precision, "storage precision: fp32 | fp16 | bf16")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  e->add_option("--save-plan", eval.save_plan, "also write the compiled plan (.ampc)");
  e->add_option("--threads", eval.threads, "CPU threads (default: all)")->check(CLI::Range(0, 1024));
  e->add_flag("--force", eval.force, "overwrite existing output files");

  ampc::cli::BenchArgs bench;
  auto* b = app.add_subcommand("bench", "Time inference on the CPU runtime");
  b->add_option("model", bench.model, "ONNX model (.onnx) or compiled plan (.ampc)")->required();
  b->add_option("--inputs", bench.inputs, "folder with input_K.pb or NAME.npy")->required();
  b->add_option("--precision", bench.precision, "fp32 | fp16 | bf16")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  b->add_option("--threads", bench.threads, "CPU threads (default: all)")->check(CLI::Range(0, 1024));
  b->add_option("--iters", bench.iters, "timed calls")->check(CLI::Range(1, 1000000));
  b->add_option("--warmup", bench.warmup, "untimed calls first")->check(CLI::Range(0, 1000000));
  b->add_flag("--json", bench.json, "one JSON line instead of text");

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
  if (e->parsed()) return Report(ampc::cli::RunEval(eval));
  if (b->parsed()) return Report(ampc::cli::RunBench(bench));
  if (d->parsed()) return Report(ampc::cli::RunDevices());
  return 2;
}
