// loss-scaling: the finite check and, for fp16, loss scaling, added to a training step built by
// frontend/training (torch.cuda.amp.GradScaler semantics; Micikevicius et al. 2018, "Mixed
// Precision Training"). What it does to the graph:
//   - seed: the autodiff seed dL/dL (initializer ampc.loss_seed) is replaced by the state
//     ampc.loss_scale S, so every gradient of the backward pass is S times too large;
//   - unscale: each gradient, where the update (clip and optimizer nodes) reads it, becomes
//     Cast-to-f32(g) * (1/S), so clipping and the optimizer see true gradients in fp32;
//   - finite check: one com.ampc::AllFinite over the loss and every unscaled gradient;
//   - skip: the flag gates every optimizer node (their `apply` input: a skipped step leaves every
//     state bit-identical) and the applied-step counter ampc.step;
//   - scale update: com.ampc::UpdateLossScale updates S, the growth tracker and the skipped-step
//     count (all states, so checkpoints carry them): x2 after `interval` finite steps, x0.5 and a
//     reset on overflow (dynamic), or a fixed S (static).
// fp16 defaults to dynamic scaling (init 2^16, growth 2, backoff 0.5, interval 2000: GradScaler's
// defaults); bf16 has fp32's range, so it gets the finite check alone; fp32 gets nothing unless a
// scale is asked for. The pass is a no-op on a graph without optimizer nodes only when neither is
// needed.
#pragma once

#include <string>
#include <vector>

#include "passes/pass.h"

namespace ampc {

struct LossScaleOptions {
  std::string mode = "auto";  // auto: dynamic for fp16, none otherwise | dynamic | static | none
  double init = 65536.0;      // dynamic: the initial scale; static: the scale
  double growth = 2.0, backoff = 0.5;
  int64_t interval = 2000;  // finite steps before the scale grows
  bool allow_unscaled_fp16 = false;
};

// Validates the options for a training precision (fp16 without scaling needs the override).
Status ValidateLossScale(const LossScaleOptions& o, DType precision);
// auto -> dynamic (fp16) or none.
std::string ResolveLossScaleMode(const LossScaleOptions& o, DType precision);

class LossScalingPass : public Pass {
 public:
  LossScalingPass(LossScaleOptions o, DType precision)
      : opts_(std::move(o)), precision_(precision) {}
  std::string name() const override { return "loss-scaling"; }
  StatusOr<bool> Run(Graph& g) override;

  const std::string& mode() const { return mode_; }  // none | static | dynamic
  bool finite_check() const { return finite_check_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  LossScaleOptions opts_;
  DType precision_;
  std::string mode_;
  bool finite_check_ = false;
  std::vector<std::string> warnings_;
};

}  // namespace ampc
