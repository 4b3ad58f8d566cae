// narrow-inputs: a float32 data input that the graph only ever casts to one half type (f16 or
// bf16) becomes an input of that type, and the Casts go: the data loader converts the data set
// once, at load (runtime/train_data's ToDType rounds through f32, so every value is the Cast's),
// instead of every step casting its batch. The batch the loader gathers is half the bytes.
#pragma once

#include <string>
#include <vector>

#include "passes/pass.h"

namespace ampc {

class NarrowInputsPass : public Pass {
 public:
  // `inputs`: the graph inputs the data set feeds (others, e.g. the learning rate, stay).
  explicit NarrowInputsPass(std::vector<std::string> inputs) : inputs_(std::move(inputs)) {}
  std::string name() const override { return "narrow-inputs"; }
  StatusOr<bool> Run(Graph& g) override;
  // The inputs narrowed by the last run, with their new type.
  const std::vector<std::string>& narrowed() const { return narrowed_; }

 private:
  std::vector<std::string> inputs_;
  std::vector<std::string> narrowed_;
};

}  // namespace ampc
