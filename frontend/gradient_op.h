// ONNX's ai.onnx.preview.training::Gradient op, expanded at import into ordinary backward nodes
// (frontend/training/autodiff.h), so that no Gradient node reaches the IR. Internal to the
// frontend (used by onnx_import.cc).
#pragma once

#include <string>
#include <vector>

#include "ir/attribute.h"
#include "ir/graph.h"
#include "ir/status.h"

namespace ampc {

inline constexpr const char* kOnnxTrainingDomain = "ai.onnx.preview.training";

// Names a Gradient node reads through its attributes rather than its inputs (`y`), which must
// be defined before the node is expanded.
std::vector<std::string> GradientAttributeReads(const AttributeMap& attrs);

// Expands Gradient(xs..., zs...) -> dY/dxs... of node `node_name`: output i is the gradient of
// sum(y) (y may be any shape) with respect to xs[i], a graph input or initializer; zs are held
// constant. The node's inputs must be the values xs ++ zs name (ampc evaluates the gradient at
// the graph's own values). Adds the backward nodes and one Identity per output, named
// `outputs[i]`, and returns those outputs. Errors describe the problem only.
StatusOr<std::vector<Value*>> ExpandGradientOp(Graph& g, const std::string& node_name,
                                               const AttributeMap& attrs,
                                               const std::vector<Value*>& inputs,
                                               const std::vector<std::string>& outputs);

}  // namespace ampc
