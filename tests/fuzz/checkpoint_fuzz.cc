// Checkpoints (`ampc train --resume DIR`): a step folder's training.safetensors and
// model.safetensors, checked against a training plan's state names, torch names and compile
// options. The input holds both files: a 4-byte little-endian length, training.safetensors,
// then model.safetensors (tests/fuzz/make_seeds.py writes seeds in that form).
#include "runtime/checkpoint.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// The training metadata of a small plan: a transposed weight, a bias and BatchNorm's step count.
ampc::plan::PlanProto MakePlan() {
  ampc::plan::PlanProto p;
  auto* t = p.mutable_training();
  t->set_compile_options(R"({"precision":"bf16","optimizer":"adamw","loss_scale":"none"})");
  auto add = [&](const char* state, const char* name, bool transpose, bool step_count) {
    auto* n = t->add_torch_names();
    n->set_state(state);
    n->set_name(name);
    n->set_transpose(transpose);
    n->set_step_count(step_count);
  };
  add("onnx::MatMul_5", "fc.weight", true, false);
  add("fc.bias", "fc.bias", false, false);
  add("ampc.step", "bn.num_batches_tracked", false, true);
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ampc::fuzz::UseFuzzLimits();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ampc::plan::PlanProto plan = MakePlan();
  if (size < 4) return 0;
  const size_t len = data[0] | data[1] << 8 | data[2] << 16 | size_t{data[3]} << 24;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 4, size - 4);
  const std::string_view training = rest.substr(0, std::min(len, rest.size()));
  const std::string_view model = rest.substr(training.size());
  const std::string dir = ampc::fuzz::ScratchDir() + "/ckpt/step-00000007";
  std::filesystem::create_directories(dir);
  ampc::fuzz::WriteScratch("ckpt/step-00000007/training.safetensors", training);
  ampc::fuzz::WriteScratch("ckpt/step-00000007/model.safetensors", model);
  (void)ampc::ReadCheckpoint(ampc::fuzz::ScratchDir() + "/ckpt", plan);
  return 0;
}
