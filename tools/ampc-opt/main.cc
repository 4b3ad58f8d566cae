// ampc-opt: runs named passes on a textual graph and prints the result. Used by FileCheck
// tests (tests/lit) to pin what each pass does, text in, text out.
//   ampc-opt FILE|- [--pass NAME]... [--no-verify] [training / autocast options]
// Besides the registered passes, these take their options from the command line:
//   train           the compiler's training-step stages up to loss scaling (master-weights, the
//                   training graph with --loss, --labels, --optimizer, --momentum, loss-scaling
//                   with --precision and --loss-scale)
//   master-weights, loss-scaling (--precision, --loss-scale)
//   autocast        paint-precision + insert-casts + fold-casts (--precision, --allow/--deny/
//                   --infer/--clear OPS, --no-<list> OPS, --fp32-nodes REGEX); fp32: nothing to do
//   paint-precision, insert-casts, fold-casts   the three autocast stages one at a time
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <iterator>

#include "compiler/compiler.h"
#include "ir/file_io.h"
#include "ir/limits.h"
#include "ir/text.h"
#include "passes/autocast.h"
#include "passes/fold_casts.h"
#include "passes/insert_casts.h"
#include "passes/loss_scaling.h"
#include "passes/master_weights.h"
#include "passes/paint_precision.h"
#include "passes/pass.h"

namespace {

// The compiler's training-step stages up to (and with) loss scaling.
class TrainPass : public ampc::Pass {
 public:
  explicit TrainPass(ampc::CompileOptions o) : o_(std::move(o)) {}
  std::string name() const override { return "train"; }
  ampc::StatusOr<bool> Run(ampc::Graph& g) override {
    auto info = ampc::BuildTrainingStep(g, o_, "loss-scaling");
    if (!info.ok()) return info.status();
    return true;
  }

 private:
  ampc::CompileOptions o_;
};

// Runs nothing: autocast at fp32.
class NoOpPass : public ampc::Pass {
 public:
  explicit NoOpPass(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  ampc::StatusOr<bool> Run(ampc::Graph&) override { return false; }

 private:
  std::string name_;
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
  names +=
      ", train, master-weights, loss-scaling, autocast, paint-precision, insert-casts, fold-casts";
  app.add_option("--pass", passes, "pass to run, in order (" + names + ")");
  app.add_flag("--no-verify", no_verify, "skip the verifier after each pass");
  ampc::CompileOptions compile;
  ampc::TrainOptions& train = compile.train;
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
           [&edits, list](const std::vector<std::string>& v) {
             edits.add[list].insert(v.begin(), v.end());
           },
           std::string("autocast: add ops to the ") + list + " list")
        ->delimiter(',');
    app.add_option_function<std::vector<std::string>>(
           std::string("--no-") + list,
           [&edits, list](const std::vector<std::string>& v) {
             edits.remove[list].insert(v.begin(), v.end());
           },
           std::string("autocast: remove ops from the ") + list + " list")
        ->delimiter(',');
  }
  app.add_option("--fp32-nodes", fp32_nodes, "autocast: regex of node names pinned to fp32");
  ampc::InputLimits limits;
  app.add_option("--max-tensor-bytes", limits.max_tensor_bytes, "refuse larger tensor literals");
  app.add_option("--max-nodes", limits.max_nodes, "refuse graphs with more nodes");
  app.add_option("--max-string-bytes", limits.max_string_bytes, "refuse longer strings");
  app.add_option("--max-attribute-elements", limits.max_attribute_elements,
                 "refuse list attributes with more elements");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "ampc-opt: error: %s\n", e.what());
    return 2;
  }
  ampc::SetInputLimits(limits);
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
  auto parsed = ampc::ParsePrecision(precision);
  if (!parsed.ok()) return Fail(parsed.status());
  const ampc::DType dtype = *parsed;
  compile.precision = dtype;
  compile.loss_scale.mode = loss_scale;
  ampc::AutocastOptions amp;
  amp.half = dtype;
  auto lists = ampc::ApplyListEdits(ampc::DefaultAmpLists(), edits);
  if (!lists.ok()) return Fail(lists.status());
  amp.lists = *lists;
  amp.fp32_nodes = fp32_nodes;
  compile.amp = amp;
  const bool half = dtype != ampc::DType::kFloat32;
  for (const auto& name : passes) {
    if (name == "train") {
      pipeline.Add(std::make_unique<TrainPass>(compile));
    } else if (name == "master-weights") {
      pipeline.AddPass<ampc::MasterWeightsPass>();
    } else if (name == "loss-scaling") {
      pipeline.AddPass<ampc::LossScalingPass>(compile.loss_scale, dtype);
    } else if (name == "autocast" || name == "paint-precision") {
      if (!half) {
        pipeline.Add(std::make_unique<NoOpPass>(name));  // fp32: nothing is painted half
      } else if (name == "autocast") {
        pipeline.AddPass<ampc::AutocastPass>(amp);
      } else {
        pipeline.AddPass<ampc::PaintPrecisionPass>(amp);
      }
    } else if (name == "insert-casts") {
      pipeline.AddPass<ampc::InsertCastsPass>();
    } else if (name == "fold-casts") {
      pipeline.AddPass<ampc::FoldCastsPass>();
    } else {
      auto p = ampc::CreatePassByName(name);
      if (!p)
        return Fail(ampc::InvalidArgument("unknown pass '" + name + "' (known: " + names + ")"));
      pipeline.Add(std::move(p));
    }
  }
  auto r = pipeline.Run(**g);
  if (!r.ok()) return Fail(r.status().WithContext(input));
  std::fputs(ampc::PrintGraph(**g).c_str(), stdout);
  return 0;
}
