// ampc: the command-line driver. `ampc MODEL.onnx` is short for `ampc compile MODEL.onnx`.
#include <google/protobuf/stubs/logging.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "compiler/compiler.h"
#include "ir/limits.h"
#include "tools/ampc/commands.h"

namespace {

// --allow OPS style flags: comma-separated, repeatable.
void AddListFlag(CLI::App* a, const std::string& flag, std::set<std::string>& into,
                 const std::string& help) {
  a->add_option_function<std::vector<std::string>>(
       flag, [&into](const std::vector<std::string>& v) { into.insert(v.begin(), v.end()); }, help)
      ->delimiter(',')
      ->type_name("OPS");
}

// Mixed precision: --precision, the autocast lists, --fp32-nodes, --amp-config, loss scaling.
void AddAmpOptions(CLI::App* a, ampc::AmpArgs& amp, ampc::LossScaleOptions& o,
                   std::string& loss_scale) {
  a->add_option("--precision", amp.precision, "fp32 | fp16 | bf16 (default bf16)")
      ->capture_default_str();
  for (const char* list : {"allow", "deny", "infer", "clear"}) {
    AddListFlag(a, std::string("--") + list, amp.edits.add[list],
                std::string("add ops to the autocast ") + list + " list");
    AddListFlag(a, std::string("--no-") + list, amp.edits.remove[list],
                std::string("remove ops from the autocast ") + list + " list");
  }
  a->add_option("--fp32-nodes", amp.fp32_nodes,
                "regex: pin matching nodes (and their gradients) to fp32");
  a->add_option("--amp-config", amp.config,
                "JSON file with allow/deny/infer/clear/remove/fp32_nodes");
  a->add_flag("--half-small-gemms", amp.half_small_gemms,
              "bf16 on the CPU: narrow every allow-listed GEMM and convolution, also those too "
              "small or thin to run faster than in fp32 (by default they stay fp32, with the "
              "reason in `ampc inspect`)");
  a->add_option("--loss-scale", loss_scale,
                "dynamic | none | a static scale (default: dynamic for fp16)");
  a->add_option("--init-scale", o.init,
                "dynamic loss scaling: the initial scale (GradScaler's init_scale)")
      ->capture_default_str();
  a->add_option("--growth-interval", o.interval,
                "dynamic loss scaling: finite steps before the scale doubles")
      ->capture_default_str();
  a->add_flag("--allow-unscaled-fp16", o.allow_unscaled_fp16,
              "permit --precision fp16 with --loss-scale none (small gradients underflow)");
}

// Fusion and generated kernels: --kernels and --cache-dir.
void AddKernelOptions(CLI::App* a, std::string& mode, ampc::KernelOptions& k) {
  a->add_option("--kernels", mode,
                "auto | generated | per-op: fuse elementwise ops into kernels generated with MLIR "
                "(auto: when this ampc has MLIR and a kernel builds, else per-op; gpu-grain: "
                "generated as for the GPU, one element per unit, to test them on the CPU)")
      ->check(CLI::IsMember({"auto", "generated", "gpu-grain", "per-op"}))
      ->capture_default_str();
  a->add_option(
      "--cache-dir", k.cache_dir,
      "generated-kernel cache (default $XDG_CACHE_HOME/ampc or ~/.cache/ampc; none: off)");
}

// --composite-ops ops|kernels|auto: CompileOptions::decompose_composites (auto: ops for CUDA).
void AddCompositeOpsOption(CLI::App* a, std::optional<bool>& decompose) {
  a->add_option_function<std::string>(
       "--composite-ops",
       [&decompose](const std::string& v) {
         decompose = v == "auto" ? std::nullopt : std::optional<bool>(v == "ops");
       },
       "Attention (opset 23) and BatchNormalization as kernels of their own (kernels: the CPU's; "
       "attention recomputes its probabilities in the backward pass) or as the ONNX ops that "
       "define them, which autodiff differentiates (ops: for runtimes without those kernels); "
       "auto: ops for CUDA targets [auto]")
      ->check(CLI::IsMember({"auto", "ops", "kernels"}))
      ->type_name("MODE");
}

// The options that turn a forward model into a training step (train, and later inspect).
void AddTrainingOptions(CLI::App* a, ampc::TrainOptions& o) {
  a->add_option("--loss", o.loss.kind, "cross_entropy | nll | mse | none")->capture_default_str();
  a->add_option("--labels", o.loss.labels, "graph input / npz array holding the targets")
      ->capture_default_str();
  a->add_option("--loss-output", o.loss.loss_output, "the model's own scalar loss output");
  a->add_option("--loss-on", o.loss.output,
                "the model output the loss applies to (default: first)");
  a->add_option("--class-axis", o.loss.class_axis,
                "class axis of the scores (default: 1 as in PyTorch, or the last axis when the "
                "labels' shape says so)");
  a->add_option("--ignore-index", o.loss.ignore_index, "label value the loss skips")
      ->capture_default_str();
  a->add_option("--freeze", o.freeze, "regex: initializers matching it are not trained");
  a->add_option("--trainable", o.train,
                "regex: train only the initializers matching it (even scalars and masks)");
  a->add_flag("--untie-shared", o.untie_shared,
              "give each module its own copy of an initializer torch's exporter merged");
  auto& p = o.optimizer;
  a->add_option("--optimizer", p.kind, "sgd | adam | adamw")->capture_default_str();
  a->add_option("--lr", p.lr, "learning rate (the schedule's base)")->capture_default_str();
  a->add_option("--momentum", p.momentum, "SGD momentum")->capture_default_str();
  a->add_option("--dampening", p.dampening, "SGD dampening")->capture_default_str();
  a->add_flag("--nesterov", p.nesterov, "SGD Nesterov momentum");
  a->add_option("--weight-decay", p.weight_decay,
                "L2 (sgd, adam) or decoupled (adamw) weight decay [0; adamw 0.01]");
  a->add_option("--beta1", p.beta1, "Adam beta1")->capture_default_str();
  a->add_option("--beta2", p.beta2, "Adam beta2")->capture_default_str();
  a->add_option("--eps", p.eps, "Adam epsilon")->capture_default_str();
  a->add_option("--clip-grad-norm", p.clip_grad_norm, "clip gradients to this global L2 norm");
}

// Later subcommands (eval, train, bench, export) add themselves here the same way.
constexpr const char* kSubcommands[] = {"compile", "inspect", "eval",  "train",
                                        "bench",   "devices", "export"};

bool IsSubcommand(const std::string& s) {
  for (const char* c : kSubcommands) {
    if (s == c) return true;
  }
  return false;
}

// `ampc bench --data`: the `ampc train` flags each training run receives as given (true: the flag
// takes a value); `ampc train` itself checks them.
constexpr std::pair<const char*, bool> kBenchTrainFlags[] = {
    {"--batch-size", true},     {"--steps", true},       {"--epochs", true},
    {"--no-shuffle", false},    {"--seed", true},        {"--val-data", true},
    {"--metrics-every", true},  {"--lr-schedule", true}, {"--warmup-steps", true},
    {"--lr-step-size", true},   {"--lr-gamma", true},    {"--min-lr", true},
    {"--loss", true},           {"--labels", true},      {"--loss-output", true},
    {"--loss-on", true},        {"--class-axis", true},  {"--ignore-index", true},
    {"--freeze", true},         {"--trainable", true},   {"--untie-shared", false},
    {"--optimizer", true},      {"--lr", true},          {"--momentum", true},
    {"--dampening", true},      {"--nesterov", false},   {"--weight-decay", true},
    {"--beta1", true},          {"--beta2", true},       {"--eps", true},
    {"--clip-grad-norm", true}, {"--allow", true},       {"--deny", true},
    {"--infer", true},          {"--clear", true},       {"--no-allow", true},
    {"--no-deny", true},        {"--no-infer", true},    {"--no-clear", true},
    {"--fp32-nodes", true},     {"--amp-config", true},  {"--init-scale", true},
    {"--growth-interval", true}};

void AddBenchTrainFlags(CLI::App* b, std::vector<std::string>& out) {
  for (const auto& [flag, takes_value] : kBenchTrainFlags) {
    const std::string f = flag;
    if (takes_value) {
      b->add_option_function<std::vector<std::string>>(
           f,
           [&out, f](const std::vector<std::string>& v) {
             for (const std::string& x : v) out.insert(out.end(), {f, x});
           },
           "with --data: passed to `ampc train`")
          ->group("Training (with --data; see ampc train --help)");
    } else {
      b->add_flag_callback(
           f, [&out, f]() { out.push_back(f); }, "with --data: passed to `ampc train`")
          ->group("Training (with --data; see ampc train --help)");
    }
  }
}

int Report(const ampc::Status& st) {
  if (!st.ok()) std::fprintf(stderr, "ampc: error: %s\n", st.message().c_str());
  return st.ExitCode();
}

// The input limits (ir/limits.h), for every command (`ampc eval M.onnx --max-nodes N ...`); those
// given are passed on to `bench --data`'s child runs (LimitFlagsGiven).
void AddLimitFlags(CLI::App& app, ampc::InputLimits& l) {
  auto add = [&](const char* flag, int64_t& v, const char* help) {
    app.add_option(flag, v, help)->capture_default_str()->check(CLI::Range(int64_t{0}, INT64_MAX));
  };
  add("--max-tensor-bytes", l.max_tensor_bytes,
      "refuse inputs declaring more tensor data than this (a model's initializers, a plan's "
      "arena)");
  add("--max-nodes", l.max_nodes, "refuse graphs and plans with more nodes or steps");
  add("--max-nesting", l.max_nesting, "refuse graphs, functions and JSON nested deeper");
  add("--max-string-bytes", l.max_string_bytes, "refuse longer names, string attributes, regexes");
  add("--max-attribute-elements", l.max_attribute_elements,
      "refuse list attributes with more elements");
}

std::vector<std::string> LimitFlagsGiven(const CLI::App& app) {
  std::vector<std::string> out;
  for (const char* f : {"--max-tensor-bytes", "--max-nodes", "--max-nesting", "--max-string-bytes",
                        "--max-attribute-elements"}) {
    if (app.count(f)) out.insert(out.end(), {f, app.get_option(f)->as<std::string>()});
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef __GLIBC__
  // Training allocates and frees batch-sized buffers every step; keep them in the heap instead of
  // a fresh mmap (and its page faults) each time.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
  // protobuf logs why a file does not parse (invalid UTF-8 in a plan's string) to stderr before
  // ampc's own one-line error says which file and what: keep stderr to that line.
  google::protobuf::SetLogHandler(nullptr);
  std::vector<std::string> args(argv + 1, argv + argc);
  // A first argument that is neither an option nor a subcommand is a model: run `compile`.
  if (!args.empty() && !args[0].empty() && args[0][0] != '-' && !IsSubcommand(args[0])) {
    args.insert(args.begin(), "compile");
  }
  CLI::App app{"ampc: ONNX mixed-precision training compiler"};
  app.set_version_flag("--version", "ampc 0.1.0");
  app.require_subcommand(1);
  app.fallthrough();  // the limit flags may follow the subcommand
  ampc::InputLimits limits;
  AddLimitFlags(app, limits);

  ampc::cli::CompileArgs compile;
  auto* c = app.add_subcommand(
      "compile",
      "Import, verify and infer shapes; print a summary (with -o: compile the training "
      "step into a plan)");
  c->add_option("model", compile.model, "ONNX model (.onnx)")->required();
  c->add_option("-o,--output", compile.output, "write the training step's plan (.ampc) here");
  c->add_option("--target", compile.target, "cpu | cuda | cuda:sm_80 | cuda:sm_90 (with -o)")
      ->capture_default_str();
  c->add_option("--batch-size", compile.batch_size, "samples per step (with -o)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 24));
  c->add_option("--dim", compile.dims, "NAME=N: a symbolic input dimension other than the batch");
  c->add_flag("--force", compile.force, "overwrite an existing plan");
  c->add_option("--synthetic-weights", compile.synthetic_seed,
                "for benchmarks of models too large to carry: store no weights in the plan; the "
                "loader makes seeded uniform values over each float tensor's own [min, max] "
                "from this seed (zero and constant tensors stay exact)");
  AddTrainingOptions(c, compile.compile.train);
  AddAmpOptions(c, compile.amp, compile.compile.loss_scale, compile.loss_scale);
  AddKernelOptions(c, compile.kernels, compile.compile.kernels);
  AddCompositeOpsOption(c, compile.compile.decompose_composites);

  ampc::cli::InspectArgs inspect;
  auto* i = app.add_subcommand("inspect", "Print the graph (text IR, JSON or Graphviz dot)");
  i->add_option("model", inspect.model, "ONNX model (.onnx)")->required();
  i->add_option("--format", inspect.format, "text | json | dot | onnx (training graphs, with -o)")
      ->check(CLI::IsMember({"text", "json", "dot", "onnx"}));
  i->add_option("-o,--output", inspect.output, "write to FILE instead of stdout (atomically)");
  i->add_flag("--full-weights", inspect.full_weights, "print all initializer data in text form");
  i->add_flag("--train", inspect.training,
              "show the training graph (implied by any training or precision option)");
  i->add_option("--after", inspect.after,
                "stop after stage: master-weights | train | loss-scaling | autocast");
  i->add_option("--dim", inspect.dims,
                "NAME=N: a symbolic dimension's size for the memory estimate");
  AddTrainingOptions(i, inspect.options.train);
  AddAmpOptions(i, inspect.amp, inspect.options.loss_scale, inspect.loss_scale);
  AddCompositeOpsOption(i, inspect.options.decompose_composites);

  ampc::cli::EvalArgs eval;
  auto* e = app.add_subcommand("eval", "Run inference on the CPU runtime");
  e->add_option("model", eval.model, "ONNX model (.onnx) or compiled plan (.ampc)")->required();
  e->add_option("--inputs", eval.inputs, "folder with input_K.pb (ONNX TensorProto) or NAME.npy")
      ->required();
  e->add_option("--out", eval.out, "folder for output_K.pb")->required();
  e->add_option("--precision", eval.precision, "storage precision: fp32 | fp16 | bf16")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  e->add_option("--save-plan", eval.save_plan, "also write the compiled plan (.ampc)");
  e->add_option("--threads", eval.threads, "CPU threads (default: all)")
      ->check(CLI::Range(0, 1024));
  e->add_flag("--force", eval.force, "overwrite existing output files");

  ampc::cli::BenchArgs bench;
  auto* b = app.add_subcommand(
      "bench", "Time inference (--inputs) or compare fp32/fp16/bf16 training (--data)");
  b->add_option("model", bench.model, "ONNX model (.onnx) or compiled plan (.ampc)")->required();
  b->add_option("--inputs", bench.inputs, "folder with input_K.pb or NAME.npy (inference)");
  b->add_option("--precision", bench.precision, "fp32 | fp16 | bf16")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  b->add_option("--threads", bench.threads, "CPU threads (default: all)")
      ->check(CLI::Range(0, 1024));
  b->add_option("--iters", bench.iters, "timed calls")->check(CLI::Range(1, 1000000));
  b->add_option("--warmup", bench.warmup, "untimed calls first")->check(CLI::Range(0, 1000000));
  b->add_flag("--json", bench.json, "one JSON line instead of text");
  ampc::cli::BenchTrainArgs bench_train;
  b->add_option("--data", bench_train.data,
                "fashion-mnist | FILE.npz: train in fp32, fp16 and bf16 and compare them");
  b->add_option("--plot", bench_train.plot,
                "with --data: loss and accuracy curves as FILE.svg or FILE.png (gnuplot)");
  b->add_flag("--force", bench_train.force, "overwrite an existing --plot file");
  AddBenchTrainFlags(b, bench_train.train_flags);

  ampc::cli::ExportArgs exp;
  auto* x = app.add_subcommand("export", "Write an inference ONNX model with trained weights");
  x->add_option("model", exp.model, "the forward ONNX model that was trained")->required();
  x->add_option("--weights", exp.weights, "training plan (.ampc) or checkpoint (.safetensors)")
      ->required();
  x->add_option("-o,--output", exp.output, "the inference model to write (.onnx)")->required();
  x->add_option("--precision", exp.precision,
                "fp32 | fp16 | bf16: half weights and activations, casts where autocast keeps fp32")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  x->add_flag("--force", exp.force, "overwrite an existing output file");

  ampc::cli::TrainArgs train;
  auto* t = app.add_subcommand(
      "train", "Train a model on the CPU runtime (mixed precision bf16/fp16, or fp32)");
  t->add_option("model", train.model, "ONNX model (.onnx) or a training plan (.ampc)")->required();
  t->add_option("--data", train.data, "FILE.npz (arrays named like the inputs) or fashion-mnist")
      ->required();
  t->add_option("--val-data", train.val_data, "FILE.npz evaluated at the end of each epoch");
  t->add_option("--batch-size", train.batch_size, "samples per step (default 64; a plan's own)")
      ->check(CLI::Range(1, 1 << 24));
  auto* steps =
      t->add_option("--steps", train.loop.steps, "number of steps")->check(CLI::Range(1, 1 << 30));
  auto* epochs = t->add_option("--epochs", train.loop.epochs, "number of passes over the data")
                     ->check(CLI::Range(1, 1 << 20));
  steps->excludes(epochs);
  bool no_shuffle = false;
  t->add_flag("--no-shuffle", no_shuffle, "take batches in file order");
  t->add_option("--seed", train.loop.seed, "shuffling seed")->capture_default_str();
  t->add_option("--metrics", train.loop.metrics, "write one JSON line per step and per epoch here");
  t->add_option("--export", train.export_onnx, "write the trained model as ONNX");
  t->add_option("--save-plan", train.loop.save_plan,
                "write the training plan with its trained state");
  t->add_option(
      "--checkpoint-dir", train.loop.checkpoint_dir,
      "write safetensors checkpoints here (every --checkpoint-every N steps and at the end)");
  t->add_option("--keep", train.loop.keep, "keep the newest K checkpoints (default: all)")
      ->check(CLI::Range(0, 1 << 30));
  t->add_option("--resume", train.resume,
                "continue from a checkpoint folder (its newest step) or a step folder; --steps and "
                "--epochs count from the start of training");
  t->add_option("--checkpoint-every", train.loop.checkpoint_every,
                "also write --save-plan every N steps (a resumable checkpoint)");
  t->add_flag("--force", train.force, "overwrite existing output files");
  t->add_option("--threads", train.threads, "CPU threads (default: all)")
      ->check(CLI::Range(0, 1024));
  t->add_flag("--quiet", train.loop.quiet, "no progress or per-epoch lines");
  t->add_option(
       "--metrics-every", train.loop.metrics_every,
       "read the loss and other metrics from the device every N steps (default: the device's)")
      ->check(CLI::Range(0, 1 << 30));
  t->add_option("--device", train.device,
                "auto | cpu | cuda | cuda:N (auto: the first GPU when one is usable, else the CPU)")
      ->capture_default_str();
  bool no_cuda_graph = false;
  t->add_flag("--no-cuda-graph", no_cuda_graph,
              "cuda: launch each step's work call by call instead of replaying a CUDA Graph");
  t->add_option("--lr-schedule", train.loop.schedule.kind, "constant | cosine | step | linear")
      ->capture_default_str();
  t->add_option("--warmup-steps", train.loop.schedule.warmup_steps, "linear warm-up steps");
  t->add_option("--lr-step-size", train.loop.schedule.step_size, "step schedule: steps per decay");
  t->add_option("--lr-gamma", train.loop.schedule.gamma, "step schedule: decay factor");
  t->add_option("--min-lr", train.loop.schedule.min_lr, "cosine / linear: final learning rate");
  AddTrainingOptions(t, train.compile.train);
  AddAmpOptions(t, train.amp, train.compile.loss_scale, train.loss_scale);
  std::string train_kernels = "auto";
  AddKernelOptions(t, train_kernels, train.compile.kernels);
  AddCompositeOpsOption(t, train.compile.decompose_composites);

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
  ampc::SetInputLimits(limits);
  if (c->parsed()) {
    if (compile.output.empty()) {
      for (const CLI::Option* o : c->get_options()) {
        const std::string n = o->get_name();
        if (o->count() > 0 && n != "model" && n != "--help" && n != "-h,--help") {
          return Report(
              ampc::InvalidArgument(n + " applies to a compiled plan: give -o PLAN.ampc"));
        }
      }
    }
    return Report(ampc::cli::RunCompile(compile));
  }
  if (i->parsed()) {
    // Any training or precision option asks for the training graph.
    for (const CLI::Option* o : i->get_options()) {
      const std::string n = o->get_name();
      if (o->count() > 0 && n != "model" && n != "--format" && n != "-o,--output" &&
          n != "--full-weights" && n != "--help" && n != "-h,--help") {
        inspect.training = true;
      }
    }
    return Report(ampc::cli::RunInspect(inspect));
  }
  if (e->parsed()) return Report(ampc::cli::RunEval(eval));
  if (b->parsed()) {
    const bool training = !bench_train.data.empty();
    if (training && (b->count("--inputs") || b->count("--precision") || b->count("--iters") ||
                     b->count("--warmup"))) {
      return Report(ampc::InvalidArgument(
          "bench --data compares fp32, fp16 and bf16 training; --inputs, --precision, --iters "
          "and --warmup time inference"));
    }
    if (training) {
      bench_train.model = bench.model;
      bench_train.json = bench.json;
      for (const std::string& f : LimitFlagsGiven(app)) bench_train.train_flags.push_back(f);
      if (b->count("--threads")) {
        bench_train.train_flags.insert(bench_train.train_flags.end(),
                                       {"--threads", std::to_string(bench.threads)});
      }
      return Report(ampc::cli::RunBenchTraining(bench_train));
    }
    if (bench.inputs.empty() || !bench_train.train_flags.empty() || !bench_train.plot.empty()) {
      return Report(ampc::InvalidArgument(
          "bench needs --inputs DIR (time inference) or --data fashion-mnist|FILE.npz (compare "
          "training precisions; training options and --plot go with it)"));
    }
    return Report(ampc::cli::RunBench(bench));
  }
  if (x->parsed()) return Report(ampc::cli::RunExport(exp));
  if (t->parsed()) {
    train.loop.shuffle = !no_shuffle;
    train.loop.lr_given = t->count("--lr") > 0;
    train.precision_given = t->count("--precision") > 0;
    train.loop.schedule.base = train.compile.train.optimizer.lr;
    if (ampc::Status st = ampc::cli::ResolveKernelMode(train_kernels, &train.compile.kernels);
        !st.ok()) {
      return Report(st);
    }
    if (t->count("--batch-size") == 0 && train.model.size() > 5 &&
        train.model.substr(train.model.size() - 5) == ".ampc") {
      train.batch_size = 0;  // the plan's
    }
    train.cuda_graph = !no_cuda_graph;
    return Report(ampc::cli::RunTrain(std::move(train)));
  }
  if (d->parsed()) return Report(ampc::cli::RunDevices());
  return 2;
}
