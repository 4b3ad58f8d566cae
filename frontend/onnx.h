// ONNX ModelProto <-> Graph. Import accepts ai.onnx opsets 6 to 23 and normalises each op version
// to ampc's canonical form (opset 17's, with the opset-18 forms of Reduce* and Split, and the ops
// added up to opset 23); export writes the oldest opset that expresses the graph (17 unless it
// uses newer ops), with raw_data tensors.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "ir/graph.h"
#include "ir/status.h"

namespace ampc {

inline constexpr int64_t kMinOnnxOpset = 6;
inline constexpr int64_t kMaxOnnxOpset = 23;
// The IR records max(this, the model's opset) as its ai.onnx opset: older models are rewritten to
// opset 17's forms.
inline constexpr int64_t kCanonicalOnnxOpset = 17;
// The newest ai.onnx opset Debian's ONNX 1.12 checker knows; it runs only on models up to it.
inline constexpr int64_t kMaxCheckerOpset = 17;

struct ImportOptions {
  bool run_onnx_checker = true;  // also run ONNX's own checker on the model
};

// Reads, checks, converts, infers shapes and verifies. Errors start with the file's path.
StatusOr<std::unique_ptr<Graph>> ImportOnnxFile(const std::string& path,
                                                const ImportOptions& opts = {});
// Same from serialized bytes; external data is resolved against `model_dir` (empty: refused).
StatusOr<std::unique_ptr<Graph>> ImportOnnxBytes(std::string_view bytes,
                                                 const std::string& model_dir,
                                                 const std::string& display_name,
                                                 const ImportOptions& opts = {});

// Serializes the graph as an ONNX model (ai.onnx opset 17, IR version 8) and runs ONNX's
// checker on the result. Elided tensors cannot be exported.
StatusOr<std::string> ExportOnnxBytes(const Graph& g);
// Writes atomically: a temporary file next to `path`, then rename, so an existing file is never
// left half-written.
Status ExportOnnxFile(const Graph& g, const std::string& path);

}  // namespace ampc

namespace ampc {

// ONNX TensorProto files (the layout of ONNX's backend test data: input_0.pb, output_0.pb).
// `name` receives the tensor's name when non-null.
StatusOr<Tensor> ReadTensorFile(const std::string& path, std::string* name = nullptr);
Status WriteTensorFile(const Tensor& t, const std::string& name, const std::string& path);

}  // namespace ampc
