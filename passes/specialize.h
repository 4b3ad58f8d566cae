// Binds concrete input shapes (and the values of small integer inputs, such as a Reshape target
// fed as a graph input) to a graph, then re-infers every type. Lowering to a Plan needs every
// shape static; this is where symbolic dims like `batch` get their numbers.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/status.h"

namespace ampc {

struct InputBinding {
  std::vector<int64_t> dims;
  std::optional<std::vector<int64_t>> values;  // for integer inputs with at most 64 elements
};

// Fails naming the input when a shape disagrees with the model (rank, a static dim, or a symbol
// bound to two different sizes), and naming the first value whose shape is still not static.
Status SpecializeInputs(Graph& g, const std::map<std::string, InputBinding>& bindings);

}  // namespace ampc
