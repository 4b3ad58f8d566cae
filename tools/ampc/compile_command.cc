// `ampc compile MODEL.onnx -o STEP.ampc [--target cpu|cuda[:sm_80|sm_90]]`: the training step of a
// forward model, for one batch size, written as a plan. Data inputs take their shapes from the
// model (the first symbolic dimension is the batch, others come from --dim NAME=N).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "codegen/plan_target.h"
#include "compiler/compiler.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cuda/step_plan.h"
#include "tools/ampc/commands.h"

namespace ampc::cli {

Status RunCompileToPlan(const CompileArgs& args) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  RETURN_IF_ERROR(CheckWritable(args.output, "-o", args.model, args.force));
  if (args.batch_size <= 0) return InvalidArgument("--batch-size must be > 0");
  ASSIGN_OR_RETURN(Target target, ParseTarget(args.target));
  CompileOptions o = args.compile;
  RETURN_IF_ERROR(ResolveAmp(args.amp, &o));
  RETURN_IF_ERROR(ParseLossScale(args.loss_scale, &o.loss_scale));
  RETURN_IF_ERROR(ResolveKernelMode(args.kernels, &o.kernels));
  // The CUDA runtime will run the CPU runtime's ops; until it has its own registry, plans for
  // cuda lower against the CPU's list.
  const BackendSupport support = cpu::CpuBackendSupportAs(target);
  o.support = &support;
  o.source = args.model;
  KernelBuildStats stats;
  std::vector<std::string> warnings;
  o.kernel_stats = &stats;
  o.warnings = &warnings;
  ASSIGN_OR_RETURN(const auto named, ParseDimFlags(args.dims));
  ASSIGN_OR_RETURN(std::unique_ptr<Graph> g, ImportModel(args.model));
  ASSIGN_OR_RETURN(TrainingGraphInfo info, BuildTrainingStep(*g, o));
  for (const std::string& w : info.warnings) std::fprintf(stderr, "ampc: warning: %s\n", w.c_str());
  SampleDims dims;
  for (const Value* v : g->inputs()) {
    const TensorType& t = v->type();
    if (!t.has_rank || t.rank() == 0) continue;
    std::vector<int64_t> d;
    for (size_t i = 0; i < t.dims.size(); ++i) {
      const Dim& x = t.dims[i];
      if (x.is_static()) {
        d.push_back(x.value());
      } else if (x.is_symbolic() && named.count(x.symbol())) {
        d.push_back(named.at(x.symbol()));
      } else if (i == 0) {
        d.push_back(args.batch_size);
      } else {
        return InvalidArgument("input '" + v->name() + "' is " + t.ToString() +
                               ": give its dimension " + std::to_string(i) + " with --dim " +
                               (x.is_symbolic() ? x.symbol() : std::string("NAME")) + "=N");
      }
    }
    dims[v->name()] = std::move(d);
  }
  const std::string path = args.model;
  ASSIGN_OR_RETURN(Plan plan, LowerTrainingStep(
                                  std::move(g), info, [path] { return ImportModel(path); }, o,
                                  args.batch_size, dims));
  if (target.kind == "cuda") {
    // Refused here, naming the node, rather than when the plan is loaded on the GPU machine.
    RETURN_IF_ERROR(cuda::ClassifySteps(plan.proto).status());
    if (plan.proto.has_training() && plan.proto.training().has_eval()) {
      RETURN_IF_ERROR(cuda::ClassifySteps(plan.proto.training().eval())
                          .status()
                          .WithContext("the evaluation pass"));
    }
  }
  if (args.synthetic_seed) {
    SyntheticDataOptions so;
    so.seed = *args.synthetic_seed;
    RETURN_IF_ERROR(SynthesizeData(plan, so).WithContext("--synthetic-weights"));
  }
  RETURN_IF_ERROR(SavePlan(plan, args.output, PlanDataOnDisk::kAsDescribed));
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  for (const std::string& w : warnings) std::fprintf(stderr, "ampc: warning: %s\n", w.c_str());
  const plan::PlanProto& p = plan.proto;
  int kernel_steps = 0;
  for (const auto& s : p.steps()) kernel_steps += s.has_kernel() ? 1 : 0;
  std::printf(
      "wrote %s: training step for %s, batch %lld, precision %s; %d steps, %d in generated "
      "kernels (%d kernels: %d compiled, %d from the cache at %s); compiled in %.2f s\n",
      args.output.c_str(), TargetName(target).c_str(), static_cast<long long>(args.batch_size),
      p.precision().c_str(), p.steps_size(), kernel_steps, p.kernels_size(), stats.compiled.load(),
      stats.cache_hits.load(),
      KernelCacheDir(o.kernels).empty() ? "(no cache)" : KernelCacheDir(o.kernels).c_str(), secs);
  if (args.synthetic_seed) {
    std::printf(
        "synthetic weights (seed %llu): the file stores %lld of the %lld-byte data section; %d "
        "tensors are made when the plan loads\n",
        static_cast<unsigned long long>(*args.synthetic_seed),
        static_cast<long long>(p.stored_data_bytes()), static_cast<long long>(p.data_bytes()),
        p.data_fills_size());
  }
  return Status::Ok();
}

}  // namespace ampc::cli
