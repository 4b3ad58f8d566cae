#include "runtime/inference.h"

#include <map>

#include "codegen/lower.h"
#include "passes/dead_code.h"
#include "passes/half_storage.h"
#include "passes/specialize.h"

namespace ampc {

StatusOr<Precision> ParsePrecision(const std::string& s) {
  if (s == "fp32") return Precision::kFp32;
  if (s == "fp16") return Precision::kFp16;
  if (s == "bf16") return Precision::kBf16;
  return InvalidArgument("--precision " + s + ": expected fp32, fp16 or bf16");
}

const char* PrecisionName(Precision p) {
  switch (p) {
    case Precision::kFp32: return "fp32";
    case Precision::kFp16: return "fp16";
    case Precision::kBf16: return "bf16";
  }
  return "?";
}

StatusOr<plan::Plan> CompileForInputs(std::unique_ptr<Graph> graph, const std::vector<Tensor>& inputs,
                                      Precision precision, const std::string& source) {
  Graph& g = *graph;
  if (inputs.size() != g.inputs().size()) {
    return InvalidArgument("the model has " + std::to_string(g.inputs().size()) + " inputs, " +
                           std::to_string(inputs.size()) + " were given");
  }
  std::map<std::string, InputBinding> bindings;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value* v = g.inputs()[i];
    const Tensor& t = inputs[i];
    if (t.dtype() != v->dtype()) {
      return InvalidArgument("input '" + v->name() + "' is " + t.type().ToString() +
                             " but the model expects " + v->type().ToString());
    }
    InputBinding b{t.dims(), std::nullopt};
    if (IsInteger(t.dtype()) && t.dims().size() <= 1 && t.NumElements() <= 64) b.values = t.AsInt64s();
    bindings[v->name()] = std::move(b);
  }
  RETURN_IF_ERROR(SpecializeInputs(g, bindings));
  PassPipeline pipeline;
  if (precision != Precision::kFp32) {
    pipeline.AddPass<HalfStoragePass>(precision == Precision::kBf16 ? DType::kBFloat16 : DType::kFloat16);
  }
  pipeline.AddPass<DeadCodeElimination>();
  RETURN_IF_ERROR(pipeline.Run(g).status());
  LowerOptions lo;
  lo.source = source;
  lo.precision = PrecisionName(precision);
  return LowerToPlan(g, lo);
}

}  // namespace ampc
