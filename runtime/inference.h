// Compiling a model for a concrete set of inputs and running it on the CPU: import, bind the
// input shapes (and small integer input values), apply the storage precision, lower to a Plan.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "codegen/plan.pb.h"
#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace ampc {

enum class Precision { kFp32, kFp16, kBf16 };
StatusOr<Precision> ParsePrecision(const std::string& s);  // "fp32" | "fp16" | "bf16"
const char* PrecisionName(Precision p);

// Compiles `graph` (consumed) for `inputs`, given in the order of graph.inputs().
StatusOr<plan::Plan> CompileForInputs(std::unique_ptr<Graph> graph, const std::vector<Tensor>& inputs,
                                      Precision precision, const std::string& source);

}  // namespace ampc
