// ampc-opt: runs named passes on a textual graph and prints the result. Used by FileCheck
// tests (tests/lit) to pin what each pass does, text in, text out.
//   ampc-opt FILE|- [--pass NAME]... [--no-verify] [training / autocast options]
// Besides the registered passes, `train` (BuildTrainingGraph with --loss, --labels,
// --optimizer, --precision, --loss-scale) and `autocast` (--precision, --allow/--deny/--infer/
// --clear OPS, --no-<list> OPS, --fp32-nodes REGEX) take their options from the command line.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <iterator>

#include "ir/file_io.h"
#include "ir/text.h"
#include "frontend/training/training_graph.h"
#include "passes/autocast.h"
#include "passes/pass.h"

namespace {

class TrainPass : public ampc::Pass {
 public:
  explicit TrainPass(ampc::TrainOptions o) : o_(std::move(o)) {}
  std::string name() const override { return "train"; }
  ampc::StatusOr<bool> Run(ampc::Graph& g) override {
    auto info = ampc::BuildTrainingGraph(g, o_);
    if (!info.ok()) return info.status();
    return true;
  }

 private:
  ampc::TrainOptions o_;
};

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
  names += ", train, autocast";
  app.add_option("--pass", passes, "pass to run, in order (" + names + ")");
  app.add_flag("--no-verify", no_verify, "skip the verifier after each pass");
  ampc::TrainOptions train;
  std::string precision = "bf16", loss_scale = "auto";
  ampc::AmpListEdits edits;
  std::string fp32_nodes;
  app.add_option("--loss", train.loss.kind, "train: cross_entropy | nll | mse | none");
  app.add_option("--labels", train.loss.labels, "train: labels input");
  app.add_option("--loss-output", train.loss.loss_output, "train: the model's own loss output");
  app.add_option("--optimizer", train.optimizer.kind, "train: sgd | adam | adamw");
  app.add_option("--momentum", train.optimizer.momentum, "train: SGD momentum");
  app.add_option("--precision", precision, "train/autocast: fp32 | fp16 | bf16 (default bf16)");
  app.add_option("--loss-scale", loss_scale, "train: auto | dynamic | static | none");
  for (const char* list : {"allow", "deny", "infer", "clear"}) {
    app.add_option_function<std::vector<std::string>>(
           std::string("--") + list,
           [&edits, list](const std::vector<std::string>& v) { edits.add[list].insert(v.begin(), v.end()); },
           std::string("autocast: add ops to the ") + list + " list")
        ->delimiter(',');
    app.add_option_function<std::vector<std::string>>(
           std::string("--no-") + list,
           [&edits, list](const std::vector<std::string>& v) { edits.remove[list].insert(v.begin(), v.end()); },
           std::string("autocast: remove ops from the ") + list + " list")
        ->delimiter(',');
  }
  app.add_option("--fp32-nodes", fp32_nodes, "autocast: regex of node names pinned to fp32");
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
  ampc::DType half = ampc::DType::kBFloat16;
  if (precision == "fp16") {
    half = ampc::DType::kFloat16;
  } else if (precision == "fp32") {
    half = ampc::DType::kFloat32;
  } else if (precision != "bf16") {
    return Fail(ampc::InvalidArgument("--precision " + precision + ": expected fp32, fp16 or bf16"));
  }
  train.precision = half;
  train.loss_scale.mode = loss_scale;
  for (const auto& name : passes) {
    if (name == "train") {
      pipeline.Add(std::make_unique<TrainPass>(train));
      continue;
    }
    if (name == "autocast") {
      ampc::AutocastOptions o;
      o.half = half == ampc::DType::kFloat16 ? half : ampc::DType::kBFloat16;
      auto lists = ampc::ApplyListEdits(ampc::DefaultAmpLists(), edits);
      if (!lists.ok()) return Fail(lists.status());
      o.lists = *lists;
      o.fp32_nodes = fp32_nodes;
      pipeline.Add(std::make_unique<ampc::AutocastPass>(o));
      continue;
    }
    auto p = ampc::CreatePassByName(name);
    if (!p) return Fail(ampc::InvalidArgument("unknown pass '" + name + "' (known: " + names + ")"));
    pipeline.Add(std::move(p));
  }
  auto r = pipeline.Run(**g);
  if (!r.ok()) return Fail(r.status().WithContext(input));
  std::fputs(ampc::PrintGraph(**g).c_str(), stdout);
  return 0;
}
