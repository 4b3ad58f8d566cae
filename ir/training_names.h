// Names of the values a training step shares between the stages that build it (frontend/training,
// passes/loss_scaling, passes/master_weights) and the runtime that drives it (runtime/train):
// the inputs ampc feeds, the states it keeps and the outputs it reports.
#pragma once

namespace ampc {

inline constexpr const char* kLrInput = "ampc.lr";                // f32 scalar input, per step
inline constexpr const char* kStepState = "ampc.step";            // i64 applied-step counter
inline constexpr const char* kGradNormOutput = "ampc.grad_norm";  // with --clip-grad-norm
inline constexpr const char* kLossSeed = "ampc.loss_seed";        // dL/dL, the autodiff seed
inline constexpr const char* kLossScaleState = "ampc.loss_scale";
inline constexpr const char* kGrowthTrackerState = "ampc.growth_tracker";
inline constexpr const char* kSkippedState = "ampc.skipped_steps";

}  // namespace ampc
