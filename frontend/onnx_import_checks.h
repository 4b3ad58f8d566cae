// Checks the ONNX importer makes itself rather than leave to ONNX's checker (Debian's ONNX 1.12
// knows IR version 8 and opsets up to 17 only). Internal to the frontend (onnx_import.cc).
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

#include "ir/attribute.h"
#include "ir/ops/onnx_versions.h"
#include "ir/status.h"

namespace ampc::onnx_check {

// The IR features a model uses, judged by the fields it sets rather than by its ir_version:
// protobuf fields added after IR version 8 arrive as unknown fields of Debian's ONNX 1.12 classes.
// Known-harmless ones (metadata_props, multi-device configuration) are accepted; a function
// overload (IR 10) is refused; any field ampc does not know is refused, naming the message and
// field number. Data types are checked where tensors and types are converted.
Status CheckProtoFeatures(const onnx::ModelProto& m);

// The input limits (ir/limits.h) over the whole model, before anything is converted: nodes of all
// graphs together (main graph, training algorithms and initializations, functions), the declared
// bytes of every initializer and tensor attribute (dims multiplied with overflow checks), nesting
// of graph attributes, string and list-attribute sizes (onnx_limits.cc).
Status CheckLimits(const onnx::ModelProto& m);

// Drops the fields CheckProtoFeatures accepts, so that ONNX 1.12's checker can read the copy.
void DiscardHarmlessFields(onnx::ModelProto& m);

// The version of `node`'s op in force at `opset` of its domain (ai.onnx or
// ai.onnx.preview.training). Errors name the op, its domain, the opset and the node.
StatusOr<const OnnxOpVersion*> ResolveVersion(const onnx::NodeProto& node,
                                              const std::string& domain, int64_t opset);

// Checks the node's attributes against its version's schema: an attribute the schema does not
// define, or of the wrong kind, is an error naming the node, op and attribute. Attributes on the
// short list of those known to be harmless (kHarmlessAttributes in the .cc, with the reason for
// each) are removed from `attrs`.
Status CheckAttributes(const onnx::NodeProto& node, const std::string& domain,
                       const OnnxOpVersion& version, AttributeMap& attrs);

// After inference: attributes the schema marks required must be present (inference functions
// check most of them with their own messages first).
Status CheckRequiredAttributes(const onnx::NodeProto& node, const OnnxOpVersion& version);

// "node 'name' (Op)" or "node 'name' (domain::Op)".
std::string DescribeNode(const onnx::NodeProto& n);

}  // namespace ampc::onnx_check
