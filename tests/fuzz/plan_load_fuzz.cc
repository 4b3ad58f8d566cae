// Plan files (format 3: header, message, mapped data section), as `ampc eval|train|inspect
// PLAN.ampc` read them: LoadPlan (which verifies), the step descriptions inspect prints, and a CPU
// executor built on the plan (kernels bound, arena allocated) — a plan that loads must bind.
#include "codegen/plan.h"
#include "runtime/executor.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ampc::fuzz::UseFuzzLimits();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ampc::fuzz::WriteScratch(
      "plan.ampc", std::string_view(reinterpret_cast<const char*>(data), size));
  auto plan = ampc::LoadPlan(path);
  if (!plan.ok()) return 0;
  for (int i = 0; i < plan->proto.steps_size(); ++i) (void)ampc::DescribeStep(plan->proto, i);
  ampc::ExecutorOptions opts;
  // A generated kernel's image is native code, which loading runs (a plan is trusted like a
  // shared library); the fuzzer checks everything else: the fallback steps run instead.
  opts.generated_kernels = false;
  opts.threads = 1;
  auto ex = ampc::CreateExecutor(std::move(*plan), opts);
  (void)ex;
  return 0;
}
