// The pass interface and pipeline. A pass has one job: `Run` rewrites the graph and returns
// whether it changed anything. The pipeline runs passes in the order they were added and, when
// asked (tests, ampc-opt, debug builds), verifies the graph after each one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"

namespace ampc {

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string name() const = 0;
  virtual StatusOr<bool> Run(Graph& g) = 0;
};

class PassPipeline {
 public:
  explicit PassPipeline(bool verify_after_each = true) : verify_(verify_after_each) {}
  template <typename P, typename... Args>
  P& AddPass(Args&&... args) {
    auto p = std::make_unique<P>(std::forward<Args>(args)...);
    P& ref = *p;
    passes_.push_back(std::move(p));
    return ref;
  }
  void Add(std::unique_ptr<Pass> p) { passes_.push_back(std::move(p)); }
  // Runs every pass; errors name the pass. Returns whether any pass changed the graph.
  StatusOr<bool> Run(Graph& g) const;

 private:
  bool verify_;
  std::vector<std::unique_ptr<Pass>> passes_;
};

// Looks a pass up by its name() (for ampc-opt and `ampc inspect --after`). nullptr if unknown.
std::unique_ptr<Pass> CreatePassByName(const std::string& name);
std::vector<std::string> PassNames();

}  // namespace ampc
