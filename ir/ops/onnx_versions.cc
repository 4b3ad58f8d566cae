#include "ir/ops/onnx_versions.h"

#include <unordered_map>

namespace ampc {

const OnnxAttributeSchema* OnnxOpVersion::FindAttribute(const std::string& name) const {
  for (const OnnxAttributeSchema& a : attributes) {
    if (name == a.name) return &a;
  }
  return nullptr;
}

const std::vector<OnnxOpSchema>& AllOnnxOpSchemas() {
  static const std::vector<OnnxOpSchema>* table = new std::vector<OnnxOpSchema>{
#include "ir/ops/onnx_versions_table.inc"
  };
  return *table;
}

const OnnxOpSchema* FindOnnxOpSchema(const std::string& domain, const std::string& op_type) {
  // Looked up once per imported node: a hash map, not a scan of ~110 rows.
  static const auto* by_name = [] {
    auto* m = new std::unordered_map<std::string, const OnnxOpSchema*>();
    for (const OnnxOpSchema& s : AllOnnxOpSchemas()) {
      m->emplace(std::string(s.domain) + "::" + s.op_type, &s);
    }
    return m;
  }();
  auto it = by_name->find(domain + "::" + op_type);
  return it == by_name->end() ? nullptr : it->second;
}

const OnnxOpVersion* OnnxVersionAt(const OnnxOpSchema& s, int64_t opset) {
  const OnnxOpVersion* found = nullptr;
  for (const OnnxOpVersion& v : s.versions) {
    if (v.since <= opset) found = &v;
  }
  return found;
}

}  // namespace ampc
