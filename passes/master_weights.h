// master-weights: fp32 master copies for parameters stored in half precision (a model exported
// after model.half(), or with bf16 weights). Run on the forward model before the training step is
// built: each f16/bf16 float initializer read by a node becomes an f32 initializer with the same
// name and exactly the same values (half -> f32 is exact), and its readers get Cast(master -> the
// stored type) instead, so the forward pass computes what it did before while the optimizer, its
// moments and checkpoints see fp32 (Micikevicius et al. 2018: updates smaller than half an ulp of
// the weight would otherwise be lost). Autocast later decides which consumers read half copies;
// they are cast once per step from the master. f32 and f64 initializers are left alone.
#pragma once

#include <string>
#include <vector>

#include "passes/pass.h"

namespace ampc {

class MasterWeightsPass : public Pass {
 public:
  std::string name() const override { return "master-weights"; }
  StatusOr<bool> Run(Graph& g) override;
  // The initializers that got an fp32 master.
  const std::vector<std::string>& promoted() const { return promoted_; }

 private:
  std::vector<std::string> promoted_;
};

}  // namespace ampc
