// `ampc export MODEL.onnx --weights PLAN.ampc|CKPT.safetensors -o OUT.onnx [--precision ...]`:
// checks the paths (never overwrite the model, the weights or an existing file without --force),
// then hands the work to the compiler (compiler/inference_export.h).
#include <cstdio>
#include <filesystem>

#include "compiler/inference_export.h"
#include "ir/file_io.h"
#include "tools/ampc/commands.h"

namespace ampc::cli {

Status RunExport(const ExportArgs& a) {
  namespace fs = std::filesystem;
  ASSIGN_OR_RETURN(DType precision, ParsePrecision(a.precision));
  if (SameFile(a.model, a.output)) {
    return InvalidArgument("-o " + a.output + ": refusing to overwrite the input model");
  }
  if (SameFile(a.weights, a.output)) {
    return InvalidArgument("-o " + a.output + ": refusing to overwrite the --weights file");
  }
  std::error_code ec;
  if (fs::exists(a.output, ec) && !a.force) {
    return InvalidArgument("-o " + a.output + " exists; pass --force to overwrite it");
  }
  const fs::path parent = fs::path(a.output).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    return NotFound("-o " + a.output + ": folder " + parent.string() + " does not exist");
  }
  ASSIGN_OR_RETURN(InferenceExportStats st,
                   ExportInferenceModel(a.model, a.weights, precision, a.output));
  std::printf("exported %s with %lld trained tensors from %s, %s", a.model.c_str(),
              static_cast<long long>(st.weights_replaced), a.weights.c_str(), a.precision.c_str());
  if (precision != DType::kFloat32) {
    std::printf(" (%lld nodes half, %lld fp32, %lld casts)", static_cast<long long>(st.half_nodes),
                static_cast<long long>(st.fp32_nodes), static_cast<long long>(st.casts));
  }
  std::printf(" -> %s\n", a.output.c_str());
  return Status::Ok();
}

}  // namespace ampc::cli
