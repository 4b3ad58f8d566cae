#include "runtime/executor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>

#include "codegen/plan_target.h"
#include "ir/limits.h"
#include "runtime/cpu/executor.h"
#include "runtime/cuda/executor.h"

namespace ampc {

StatusOr<std::map<std::string, Tensor>> Executor::SnapshotState() const {
  std::map<std::string, Tensor> out;
  for (const std::string& name : StateNames()) {
    ASSIGN_OR_RETURN(out[name], GetState(name));
  }
  return out;
}

Status Executor::RestoreState(const std::map<std::string, Tensor>& states) {
  for (const auto& [name, t] : states) RETURN_IF_ERROR(SetState(name, t));
  return Status::Ok();
}

StatusOr<std::unique_ptr<Executor>> CreateExecutor(Plan plan, const ExecutorOptions& opts) {
  ASSIGN_OR_RETURN(Target target, TargetFromPlan(plan.proto.target()));
  // A model whose shapes ask for more activation memory than the input limits allow (a
  // ConstantOfShape of [2^20, 2^20]) is refused here rather than left to exhaust the machine.
  RETURN_IF_ERROR(CheckTensorBytes(plan.proto.arena_bytes(), "the compiled model's activations"));
  if (opts.device == "cpu") {
    if (target.kind != "cpu") {
      return InvalidArgument("the plan was compiled for " + TargetName(target) +
                             "; the cpu device runs plans compiled for cpu");
    }
    ASSIGN_OR_RETURN(
        auto e, cpu::CpuExecutor::Create(std::move(plan), opts.threads, opts.generated_kernels));
    return std::unique_ptr<Executor>(std::move(e));
  }
  if (opts.device == "cuda" || opts.device.rfind("cuda:", 0) == 0) {
    ASSIGN_OR_RETURN(const int device, cuda::ParseCudaDevice(opts.device));
    if (target.kind != "cuda") {
      return InvalidArgument("the plan was compiled for " + TargetName(target) + "; --device " +
                             opts.device + " runs plans compiled with --target cuda");
    }
    return cuda::CreateCudaExecutor(std::move(plan), {device, opts.cuda_graph});
  }
  return InvalidArgument("--device " + opts.device + ": expected cpu or cuda[:N]");
}

TensorType BufferType(const plan::Buffer& b) {
  std::vector<Dim> dims(b.dims().begin(), b.dims().end());
  return TensorType(DTypeFromName(b.dtype()).value_or(DType::kUndefined), dims);
}

bool BufferHolds(const plan::Buffer& b, const Tensor& t) {
  return t.dtype() == DTypeFromName(b.dtype()).value_or(DType::kUndefined) &&
         std::equal(t.dims().begin(), t.dims().end(), b.dims().begin(), b.dims().end());
}

namespace {
std::string ProfileSetting() {
  const char* prof = std::getenv("AMPC_PROFILE");
  return prof ? prof : "";
}
}  // namespace

bool ProfilingRequested() {
  const std::string p = ProfileSetting();
  return !p.empty() && p != "0";
}

bool ProfileAllSteps() { return ProfileSetting() == "all"; }

std::string FormatStepProfile(const plan::PlanProto& p, const std::vector<double>& seconds,
                              int64_t calls, const std::vector<std::string>& tags, bool all) {
  std::vector<int> order(seconds.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return seconds[a] > seconds[b]; });
  const double total = std::accumulate(seconds.begin(), seconds.end(), 0.0);
  const double n = static_cast<double>(std::max<int64_t>(calls, 1));
  std::string s = fmt::format("ampc profile: {} calls, {:.3f} ms per call in {} steps\n", calls,
                              1e3 * total / n, seconds.size());
  auto tag = [&](int i) {
    return static_cast<size_t>(i) < tags.size() ? tags[static_cast<size_t>(i)] : std::string();
  };
  for (int i : order) {
    if (seconds[i] <= 0 || (!all && seconds[i] < 0.002 * total)) break;
    const std::string t = tag(i);
    s += fmt::format("{:9.1f} us {:5.1f}%  {}{}\n", 1e6 * seconds[i] / n,
                     100 * seconds[i] / std::max(total, 1e-30), t.empty() ? "" : "[" + t + "] ",
                     DescribeStep(p, i));
  }
  if (!tags.empty()) {
    std::map<std::string, std::pair<double, int>> by_tag;
    for (size_t i = 0; i < seconds.size(); ++i) {
      auto& [sum, count] = by_tag[tag(static_cast<int>(i))];
      sum += seconds[i];
      ++count;
    }
    for (const auto& [t, v] : by_tag) {
      s += fmt::format("{:9.1f} us {:5.1f}%  all {} {} steps\n", 1e6 * v.first / n,
                       100 * v.first / std::max(total, 1e-30), v.second, t);
    }
  }
  return s;
}

Status CheckPlanInputs(const plan::PlanProto& p, const std::vector<Tensor>& inputs) {
  if (static_cast<int>(inputs.size()) != p.inputs_size()) {
    return InvalidArgument("the plan takes " + std::to_string(p.inputs_size()) + " inputs, got " +
                           std::to_string(inputs.size()));
  }
  for (int i = 0; i < p.inputs_size(); ++i) {
    const plan::Buffer& b = p.buffers(p.inputs(i).buffer());
    if (!BufferHolds(b, inputs[i])) {
      return InvalidArgument("input '" + p.inputs(i).name() + "' is " +
                             inputs[i].type().ToString() + " but the plan was compiled for " +
                             BufferType(b).ToString());
    }
  }
  for (const auto& s : p.specializations()) {
    for (int i = 0; i < p.inputs_size(); ++i) {
      if (p.inputs(i).name() != s.input()) continue;
      auto got = inputs[i].AsInt64s();
      if (!got || !std::equal(got->begin(), got->end(), s.values().begin(), s.values().end())) {
        return InvalidArgument("input '" + s.input() +
                               "' must hold the values the plan was compiled for");
      }
    }
  }
  return Status::Ok();
}

Status CopyStates(const Executor& from, Executor& to) {
  for (const std::string& name : from.StateNames()) {
    if (!to.HasData(name)) continue;
    ASSIGN_OR_RETURN(Tensor t, from.GetState(name));
    RETURN_IF_ERROR(to.SetState(name, t).WithContext("copying state '" + name + "'"));
  }
  return Status::Ok();
}

}  // namespace ampc
