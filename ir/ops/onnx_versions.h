// The versions of the ONNX ops ampc implements, and the attributes each version's schema defines
// (ONNX 1.23's schemas, ai.onnx opsets 6 to 23 and ai.onnx.preview.training 1; generated into
// onnx_versions_table.inc by gen_onnx_versions.py). The importer resolves the version of every
// node from its opset with this table, rejects ops at versions ampc does not know and checks
// attribute names and kinds, so that ONNX's own checker is not needed for models it cannot read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ir/attribute.h"

namespace ampc {

struct OnnxAttributeSchema {
  const char* name;
  std::optional<AttrKind> kind;  // nullopt: a kind ampc cannot hold (graph, sparse tensor)
  bool required;
};

struct OnnxOpVersion {
  int64_t since;  // the opset that introduced this version
  std::vector<OnnxAttributeSchema> attributes;

  const OnnxAttributeSchema* FindAttribute(const std::string& name) const;
};

struct OnnxOpSchema {
  const char* domain;  // "" = ai.onnx
  const char* op_type;
  std::vector<OnnxOpVersion> versions;  // oldest first
};

// The op's versions ampc knows, or nullptr when ampc implements no op of that name and domain.
const OnnxOpSchema* FindOnnxOpSchema(const std::string& domain, const std::string& op_type);
// The version in force at `opset` of the op's domain; nullptr when the op did not exist yet.
const OnnxOpVersion* OnnxVersionAt(const OnnxOpSchema& s, int64_t opset);
// Every tabled op (for the consistency test against the op registry).
const std::vector<OnnxOpSchema>& AllOnnxOpSchemas();

}  // namespace ampc
