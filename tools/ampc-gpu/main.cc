// ampc-gpu: the runtime-only binary of the GPU bundle (`cmake --preset gpu-bundle`), run on a
// machine that has a GPU but none of the compiler's libraries. It loads plans compiled here with
// `ampc compile --target cuda` and
//   ampc-gpu devices                     lists the GPUs
//   ampc-gpu check PLAN --data NPZ       runs one forward pass and N training steps on the CUDA
//                                        executor and on the CPU executor (the oracle: the same
//                                        plan, its fused groups run by their per-op steps) from
//                                        the same states on the same batches, and compares the
//                                        outputs, the losses step by step and every state
//   ampc-gpu bench PLAN --data NPZ       times training steps on the GPU (samples/s, peak
//                                        device memory), one JSON line
//   ampc-gpu train PLAN --data fashion-mnist --epochs 1
//                                        trains with the runtime's loop (validation after each
//                                        epoch) and prints one JSON line: accuracy on the GPU
// Exit codes: 0 pass, 1 a check failed or the GPU failed, 2 bad input.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#ifdef AMPC_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#include "codegen/plan.h"
#include "codegen/plan_target.h"
#include "runtime/device_info.h"
#include "runtime/executor.h"
#include "runtime/train.h"
#include "runtime/train_data.h"

namespace ampc {
namespace {

struct Loaded {
  Plan step;  // without its evaluation pass
  Plan eval;
  Dataset data;
  int64_t batch = 0;
};

StatusOr<Loaded> Load(const std::string& path, const std::string& data) {
  Loaded l;
  ASSIGN_OR_RETURN(Plan p, LoadPlan(path));
  if (!p.proto.has_training()) return InvalidArgument(path + ": not a training plan");
  l.eval = p.EvalPass();
  p.proto.mutable_training()->clear_eval();
  l.step = std::move(p);
  ASSIGN_OR_RETURN(auto graph, InputGraphOfPlan(l.step.proto));
  ASSIGN_OR_RETURN(l.data, LoadTrainingData(data, "train", *graph, l.step.proto.training()));
  const plan::Buffer& b0 = l.step.proto.buffers(l.step.proto.inputs(0).buffer());
  l.batch = b0.dims_size() ? b0.dims(0) : 1;
  if (l.data.size < l.batch) return InvalidArgument(data + ": fewer samples than one batch");
  return l;
}

// A deep copy (its own data section).
Plan Clone(const Plan& p) {
  Plan out{p.proto, *PlanData::Allocate(p.data->size())};
  std::copy(p.data->data(), p.data->data() + p.data->size(), out.data->data());
  return out;
}

// A deep copy retargeted to the CPU: its generated kernels have no CPU image, so the CPU executor
// runs their fusion groups' per-op steps.
Plan OnCpu(const Plan& p) {
  Plan out = Clone(p);
  out.proto.mutable_target()->set_kind("cpu");
  out.proto.mutable_target()->set_arch("");
  return out;
}

StatusOr<std::vector<Tensor>> Batch(const Loaded& l, const plan::PlanProto& p, int64_t k,
                                    double lr) {
  const int64_t per_epoch = l.data.size / l.batch;
  ASSIGN_OR_RETURN(auto batch, GatherBatch(l.data, {}, (k % per_epoch) * l.batch, l.batch));
  return OrderInputs(p, batch, lr, k);
}

// max |a - b| / max(max |b|, tiny): a difference relative to the tensor's scale.
double NormwiseRel(const Tensor& a, const Tensor& b) {
  auto x = a.AsDoubles(), y = b.AsDoubles();
  if (!x || !y || x->size() != y->size()) return INFINITY;
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < x->size(); ++i) {
    const double u = (*x)[i], v = (*y)[i];
    if (std::isnan(u) != std::isnan(v)) return INFINITY;
    if (std::isnan(u)) continue;
    diff = std::max(diff, std::abs(u - v));
    scale = std::max(scale, std::abs(v));
  }
  return diff / scale;
}

struct CheckArgs {
  std::string plan, data;
  int steps = 20;
  double rtol = 0;  // 0: by precision (fp32 1e-4, half 3e-2)
  std::string device = "cuda";
};

Status RunCheck(const CheckArgs& a) {
  ASSIGN_OR_RETURN(Loaded l, Load(a.plan, a.data));
  bool half = false;
  for (const plan::Buffer& b : l.step.proto.buffers())
    half = half || b.dtype() == "bf16" || b.dtype() == "f16";
  const double rtol = a.rtol > 0 ? a.rtol : half ? 3e-2 : 1e-4;
  const double lr = l.step.proto.training().lr();
  bool pass = true;
  auto report = [&](const std::string& what, double rel) {
    const bool ok = rel <= rtol;
    pass = pass && ok;
    std::printf("  %-44s rel diff %.3e %s\n", what.c_str(), rel, ok ? "ok" : "FAIL");
  };
  std::printf("check %s (%s, batch %lld, rtol %.0e)\n", a.plan.c_str(),
              TargetName(*TargetFromPlan(l.step.proto.target())).c_str(),
              static_cast<long long>(l.batch), rtol);
  ExecutorOptions gpu_opts;
  gpu_opts.device = a.device;
  ExecutorOptions cpu_opts;
  // --device cpu runs the CPU executor on both sides: the harness itself, testable anywhere.
  const bool on_cpu = a.device == "cpu";
  auto device_plan = [&](const Plan& p) { return on_cpu ? OnCpu(p) : Clone(p); };
  // Forward: the evaluation pass on the first batch.
  if (l.eval.proto.outputs_size() > 0) {
    ASSIGN_OR_RETURN(auto gpu, CreateExecutor(device_plan(l.eval), gpu_opts));
    ASSIGN_OR_RETURN(auto cpu, CreateExecutor(OnCpu(l.eval), cpu_opts));
    ASSIGN_OR_RETURN(auto in_gpu, Batch(l, l.eval.proto, 0, lr));
    ASSIGN_OR_RETURN(auto in_cpu, Batch(l, l.eval.proto, 0, lr));
    ASSIGN_OR_RETURN(auto out_gpu, gpu->Run(in_gpu));
    ASSIGN_OR_RETURN(auto out_cpu, cpu->Run(in_cpu));
    for (int i = 0; i < l.eval.proto.outputs_size(); ++i) {
      report("forward output " + l.eval.proto.outputs(i).name(),
             NormwiseRel(out_gpu[static_cast<size_t>(i)], out_cpu[static_cast<size_t>(i)]));
    }
  }
  // Training steps: both from the plan's initial states, on the same batches.
  ASSIGN_OR_RETURN(auto gpu, CreateExecutor(device_plan(l.step), gpu_opts));
  ASSIGN_OR_RETURN(auto cpu, CreateExecutor(OnCpu(l.step), cpu_opts));
  std::vector<MetricsRecord> mg, mc;
  for (int k = 0; k < a.steps; ++k) {
    ASSIGN_OR_RETURN(auto in_gpu, Batch(l, l.step.proto, k, lr));
    ASSIGN_OR_RETURN(auto in_cpu, Batch(l, l.step.proto, k, lr));
    RETURN_IF_ERROR(gpu->Step(in_gpu));
    RETURN_IF_ERROR(cpu->Step(in_cpu));
  }
  ASSIGN_OR_RETURN(mg, gpu->ReadMetrics());
  ASSIGN_OR_RETURN(mc, cpu->ReadMetrics());
  if (mg.size() != mc.size()) return Internal("the executors recorded different step counts");
  const auto& names = l.step.proto.metrics();
  for (size_t k = 0; k < mg.size(); ++k) {
    for (int m = 0; m < names.size(); ++m) {
      const double g = mg[k].values[static_cast<size_t>(m)],
                   c = mc[k].values[static_cast<size_t>(m)];
      const double rel = std::abs(g - c) / std::max(std::abs(c), 1e-12);
      if (k < 3 || k + 1 == mg.size() || rel > rtol) {
        report("step " + std::to_string(k + 1) + " " + names[m] + " " + std::to_string(c), rel);
      } else {
        pass = pass && rel <= rtol;
      }
    }
  }
  double worst = 0;
  std::string worst_name;
  for (const std::string& name : gpu->StateNames()) {
    ASSIGN_OR_RETURN(Tensor g, gpu->GetState(name));
    ASSIGN_OR_RETURN(Tensor c, cpu->GetState(name));
    const double rel = NormwiseRel(g, c);
    if (rel >= worst) {
      worst = rel;
      worst_name = name;
    }
  }
  report("states after " + std::to_string(a.steps) + " steps (worst: " + worst_name + ")", worst);
  std::printf("%s %s\n", pass ? "PASS" : "FAIL", a.plan.c_str());
  return pass ? Status::Ok() : Internal("the CUDA executor differs from the CPU executor");
}

struct BenchArgs {
  std::string plan, data;
  int steps = 200, warmup = 20;
  bool cuda_graph = true;
  std::string device = "cuda";
  std::string label;
};

Status RunBench(const BenchArgs& a) {
  ASSIGN_OR_RETURN(Loaded l, Load(a.plan, a.data));
  int64_t free0 = 0, total = 0;
#ifdef AMPC_HAVE_CUDA
  {
    size_t f = 0, t = 0;
    cudaSetDevice(0);
    cudaFree(nullptr);
    if (cudaMemGetInfo(&f, &t) == cudaSuccess) {
      free0 = static_cast<int64_t>(f);
      total = static_cast<int64_t>(t);
    }
  }
#endif
  ExecutorOptions o;
  o.device = a.device;
  o.cuda_graph = a.cuda_graph;
  ASSIGN_OR_RETURN(auto ex,
                   CreateExecutor(a.device == "cpu" ? OnCpu(l.step) : std::move(l.step), o));
  const double lr = ex->plan().training().lr();
  const int64_t per_epoch = std::max<int64_t>(1, l.data.size / l.batch);
  const int64_t distinct = std::min<int64_t>(per_epoch, 16);
  std::vector<std::vector<Tensor>> batches;
  for (int64_t k = 0; k < distinct; ++k) {
    ASSIGN_OR_RETURN(auto b, Batch(l, ex->plan(), k, lr));
    batches.push_back(std::move(b));
  }
  using Clock = std::chrono::steady_clock;
  Clock::time_point t0;
  double last_loss = NAN;
  for (int k = 0; k < a.warmup + a.steps; ++k) {
    if (k == a.warmup) {
      RETURN_IF_ERROR(ex->ReadMetrics().status());  // waits: the clock starts on an idle GPU
      t0 = Clock::now();
    }
    RETURN_IF_ERROR(ex->Step(batches[static_cast<size_t>(k % distinct)]));
    if ((k + 1) % ex->metrics_interval() == 0) {
      ASSIGN_OR_RETURN(auto m, ex->ReadMetrics());
      if (!m.empty() && !m.back().values.empty()) last_loss = m.back().values[0];
    }
  }
  ASSIGN_OR_RETURN(auto m, ex->ReadMetrics());
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!m.empty() && !m.back().values.empty()) last_loss = m.back().values[0];
  int64_t used = 0;
#ifdef AMPC_HAVE_CUDA
  size_t f = 0, t = 0;
  if (cudaMemGetInfo(&f, &t) == cudaSuccess) used = free0 - static_cast<int64_t>(f);
#endif
  std::printf(
      "{\"tool\": \"ampc\", \"label\": \"%s\", \"plan\": \"%s\", \"device\": \"%s\", \"batch\": "
      "%lld, "
      "\"steps\": %d, \"seconds\": %.6f, \"samples_per_s\": %.1f, \"ms_per_step\": %.4f, "
      "\"device_bytes\": %lld, \"device_total\": %lld, \"cuda_graph\": %s, \"last_loss\": %.6f}\n",
      a.label.c_str(), a.plan.c_str(), ex->device().c_str(), static_cast<long long>(l.batch),
      a.steps, s, static_cast<double>(l.batch) * a.steps / s, 1e3 * s / a.steps,
      static_cast<long long>(used), static_cast<long long>(total), a.cuda_graph ? "true" : "false",
      last_loss);
  return Status::Ok();
}

struct TrainArgs {
  std::string plan, data, device = "cuda";
  int64_t steps = 0, epochs = 0;
  std::string label;
};

Status RunTrainCommand(const TrainArgs& a) {
  ASSIGN_OR_RETURN(Plan p, LoadPlan(a.plan));
  if (!p.proto.has_training()) return InvalidArgument(a.plan + ": not a training plan");
  Plan eval = p.EvalPass();
  p.proto.mutable_training()->clear_eval();
  ASSIGN_OR_RETURN(auto graph, InputGraphOfPlan(p.proto));
  ASSIGN_OR_RETURN(Dataset train, LoadTrainingData(a.data, "train", *graph, p.proto.training()));
  std::optional<Dataset> val;
  if (a.data == "fashion-mnist") {
    ASSIGN_OR_RETURN(val, LoadTrainingData(a.data, "test", *graph, p.proto.training()));
  }
  const bool on_cpu = a.device == "cpu";
  ExecutorOptions o;
  o.device = a.device;
  TrainSession s;
  const plan::Buffer& b0 = p.proto.buffers(p.proto.inputs(0).buffer());
  s.batch = b0.dims_size() ? b0.dims(0) : 1;
  const bool has_eval = eval.proto.outputs_size() > 0;
  ASSIGN_OR_RETURN(s.step, CreateExecutor(on_cpu ? OnCpu(p) : Clone(p), o));
  if (has_eval) {
    ASSIGN_OR_RETURN(s.eval, CreateExecutor(on_cpu ? OnCpu(eval) : Clone(eval), o));
  }
  TrainLoopConfig cfg;
  cfg.model = a.plan;
  cfg.steps = a.steps;
  cfg.epochs = a.epochs;
  cfg.quiet = true;
  cfg.progress = false;
  ASSIGN_OR_RETURN(TrainSummary sum, Train(s, train, has_eval ? val : std::nullopt, cfg));
  std::printf(
      "{\"tool\": \"ampc\", \"label\": \"%s\", \"plan\": \"%s\", \"device\": \"%s\", "
      "\"steps\": %lld, \"seconds\": %.3f, \"samples_per_s\": %.1f, \"last_loss\": %.6f, "
      "\"val_loss\": %.6f, \"val_accuracy\": %.4f, \"skipped\": %lld}\n",
      a.label.c_str(), a.plan.c_str(), s.step->device().c_str(), static_cast<long long>(sum.steps),
      sum.seconds, sum.samples_per_s, sum.last_loss, sum.val_loss.value_or(NAN),
      sum.val_accuracy.value_or(NAN), static_cast<long long>(sum.skipped));
  return Status::Ok();
}

int Report(const Status& st) {
  if (st.ok()) return 0;
  std::fprintf(stderr, "ampc-gpu: error: %s\n", st.message().c_str());
  return st.code() == StatusCode::kInternal ? 1 : 2;
}

}  // namespace
}  // namespace ampc

int main(int argc, char** argv) {
  using namespace ampc;
  CLI::App app{"ampc-gpu: run compiled CUDA plans (the GPU bundle's runtime-only tool)"};
  app.require_subcommand(1);
  app.add_subcommand("devices", "List the compute devices");
  CheckArgs check;
  auto* c = app.add_subcommand("check", "Compare the CUDA executor with the CPU executor");
  c->add_option("plan", check.plan, "a training plan compiled with --target cuda")->required();
  c->add_option("--data", check.data, "FILE.npz holding the plan's data inputs")->required();
  c->add_option("--steps", check.steps, "training steps")->capture_default_str();
  c->add_option("--rtol", check.rtol, "tolerance (default: 1e-4 fp32, 3e-2 half)");
  c->add_option("--device", check.device, "cuda | cuda:N | cpu (the CPU executor on both sides)")
      ->capture_default_str();
  BenchArgs bench;
  auto* b = app.add_subcommand("bench", "Time training steps on the GPU");
  b->add_option("plan", bench.plan, "a training plan compiled with --target cuda")->required();
  b->add_option("--data", bench.data, "FILE.npz holding the plan's data inputs")->required();
  b->add_option("--steps", bench.steps, "timed steps")->capture_default_str();
  b->add_option("--warmup", bench.warmup, "untimed steps first")->capture_default_str();
  b->add_option("--label", bench.label, "a name for the JSON line");
  b->add_option("--device", bench.device, "cuda | cuda:N | cpu")->capture_default_str();
  bool no_graph = false;
  b->add_flag("--no-cuda-graph", no_graph, "launch call by call");
  TrainArgs train;
  auto* t = app.add_subcommand("train", "Train with the runtime's loop and report the accuracy");
  t->add_option("plan", train.plan, "a training plan")->required();
  t->add_option("--data", train.data, "FILE.npz or fashion-mnist ($AMPC_FASHION_MNIST_DIR)")
      ->required();
  t->add_option("--steps", train.steps, "training steps");
  t->add_option("--epochs", train.epochs, "epochs (validation after each)");
  t->add_option("--label", train.label, "a name for the JSON line");
  t->add_option("--device", train.device, "cuda | cuda:N | cpu")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  bench.cuda_graph = !no_graph;
  if (app.got_subcommand("devices")) {
    std::printf("%s", DescribeDevices().c_str());
    return 0;
  }
  if (app.got_subcommand("check")) return Report(RunCheck(check));
  if (app.got_subcommand("train")) return Report(RunTrainCommand(train));
  return Report(RunBench(bench));
}
