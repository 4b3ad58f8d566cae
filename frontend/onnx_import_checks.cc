#include "frontend/onnx_import_checks.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/unknown_field_set.h>

#include <vector>

namespace ampc::onnx_check {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

// Protobuf fields added to onnx.proto after IR version 8 (Debian's ONNX 1.12), up to IR 14
// (ONNX 1.23), in the messages ampc reads.
struct NewerField {
  const char* message;
  int number;
  const char* name;
  int ir_version;
  bool harmless;  // may be ignored: it cannot change what the model computes
};
constexpr NewerField kNewerFields[] = {
    // Free-form key/value annotations, like ModelProto.metadata_props (which IR 8 has).
    {"onnx.ValueInfoProto", 4, "metadata_props", 10, true},
    {"onnx.NodeProto", 9, "metadata_props", 10, true},
    {"onnx.GraphProto", 16, "metadata_props", 10, true},
    {"onnx.TensorProto", 16, "metadata_props", 10, true},
    // Multi-device annotations (how to shard a node across devices): they describe placement,
    // not the values computed, and ampc runs a step on one device.
    {"onnx.NodeProto", 10, "device_configurations", 11, true},
    {"onnx.ModelProto", 26, "configuration", 11, true},
    // Calls an overload of a model-local function: ampc imports no functions.
    {"onnx.NodeProto", 8, "overload", 10, false},
};
constexpr int kNewestKnownIrVersion = 14;

std::string Where(const Message& m) {
  if (const auto* n = dynamic_cast<const onnx::NodeProto*>(&m)) return DescribeNode(*n);
  if (const auto* t = dynamic_cast<const onnx::TensorProto*>(&m)) {
    return "tensor '" + t->name() + "'";
  }
  if (const auto* v = dynamic_cast<const onnx::ValueInfoProto*>(&m)) {
    return "value '" + v->name() + "'";
  }
  return "the model";
}

Status CheckUnknown(const Message& m) {
  const std::string& type = m.GetDescriptor()->full_name();
  const UnknownFieldSet& unknown = m.GetReflection()->GetUnknownFields(m);
  for (int i = 0; i < unknown.field_count(); ++i) {
    const UnknownField& f = unknown.field(i);
    const NewerField* known = nullptr;
    for (const NewerField& n : kNewerFields) {
      if (type == n.message && f.number() == n.number) known = &n;
    }
    const std::string field =
        type.substr(5) + "." + (known ? std::string(known->name) : std::to_string(f.number()));
    if (!known) {
      return Unimplemented(Where(m) + " sets protobuf field " + field +
                           ", which is not in ONNX IR version " +
                           std::to_string(kNewestKnownIrVersion) +
                           " (the newest ampc knows); it may change what the model means");
    }
    if (known->harmless) continue;
    const std::string value =
        f.type() == UnknownField::TYPE_LENGTH_DELIMITED ? f.length_delimited() : "";
    if (value.empty()) continue;  // an empty overload name is no overload
    return Unimplemented(Where(m) + " calls overload '" + value + "' of a model-local function (" +
                         field + ", IR version " + std::to_string(known->ir_version) +
                         "); ampc does not import functions");
  }
  return Status::Ok();
}

Status Walk(const Message& m) {
  RETURN_IF_ERROR(CheckUnknown(m));
  const Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    // Model-local functions are never imported: a node that calls one is an unknown op.
    if (m.GetDescriptor()->full_name() == "onnx.ModelProto" && f->name() == "functions") continue;
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(m, f); ++i)
        RETURN_IF_ERROR(Walk(r->GetRepeatedMessage(m, f, i)));
    } else {
      RETURN_IF_ERROR(Walk(r->GetMessage(m, f)));
    }
  }
  return Status::Ok();
}

bool IsDefaultDomain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

std::string DomainName(const std::string& d) { return d.empty() ? "ai.onnx" : d; }

// Attributes a schema defines that ampc accepts without implementing, because they cannot change
// a result ampc computes. They are removed at import.
struct HarmlessAttribute {
  const char* op;
  const char* name;
  const char* why;
};
constexpr HarmlessAttribute kHarmlessAttributes[] = {
    {"Cast", "saturate",
     "Cast/CastLike 19+: only conversions to the float8 types saturate, and ampc has no float8 "
     "type (such a cast fails on its `to` type)"},
    {"CastLike", "saturate", "as Cast's"},
    {"Dropout", "seed",
     "ONNX does not specify the generator the seed feeds, so no two implementations draw the same "
     "mask from it; ampc's training masks come from its counter-based generator (one stream per "
     "step, runtime/cpu/counter_rng.h), and inference-mode Dropout draws nothing"},
};

const char* KindName(AttrKind k) { return AttrKindName(k); }

std::optional<AttrKind> KindOf(const onnx::AttributeProto& a) {
  using AP = onnx::AttributeProto;
  switch (a.type()) {
    case AP::INT:
      return AttrKind::kInt;
    case AP::FLOAT:
      return AttrKind::kFloat;
    case AP::STRING:
      return AttrKind::kString;
    case AP::TENSOR:
      return AttrKind::kTensor;
    case AP::INTS:
      return AttrKind::kInts;
    case AP::FLOATS:
      return AttrKind::kFloats;
    case AP::STRINGS:
      return AttrKind::kStrings;
    default:
      return std::nullopt;
  }
}

std::string AttributeList(const OnnxOpVersion& v) {
  std::string s;
  for (const OnnxAttributeSchema& a : v.attributes)
    s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s.empty() ? "none" : s;
}

std::string VersionName(const onnx::NodeProto& node, const std::string& domain,
                        const OnnxOpVersion& v) {
  return DomainName(domain) + " " + node.op_type() + " version " + std::to_string(v.since);
}

}  // namespace

std::string DescribeNode(const onnx::NodeProto& n) {
  std::string op = IsDefaultDomain(n.domain()) ? n.op_type() : n.domain() + "::" + n.op_type();
  return "node '" + n.name() + "' (" + op + ")";
}

Status CheckProtoFeatures(const onnx::ModelProto& m) { return Walk(m); }

void DiscardHarmlessFields(onnx::ModelProto& m) { m.DiscardUnknownFields(); }

StatusOr<const OnnxOpVersion*> ResolveVersion(const onnx::NodeProto& node,
                                              const std::string& domain, int64_t opset) {
  const OnnxOpSchema* s = FindOnnxOpSchema(domain, node.op_type());
  const std::string at = " at node '" + node.name() + "'";
  if (!s) {
    return Unimplemented("op '" + node.op_type() + "' (domain '" + DomainName(domain) +
                         "', opset " + std::to_string(opset) + ") has no known versions" + at);
  }
  const OnnxOpVersion* v = OnnxVersionAt(*s, opset);
  if (!v) {
    return InvalidArgument("op '" + node.op_type() + "' (domain '" + DomainName(domain) +
                           "') does not exist at opset " + std::to_string(opset) +
                           " (its first version is " + std::to_string(s->versions[0].since) + ")" +
                           at);
  }
  return v;
}

Status CheckAttributes(const onnx::NodeProto& node, const std::string& domain,
                       const OnnxOpVersion& version, AttributeMap& attrs) {
  for (const onnx::AttributeProto& a : node.attribute()) {
    const OnnxAttributeSchema* s = version.FindAttribute(a.name());
    if (!s) {
      return InvalidArgument(DescribeNode(node) + ": unknown attribute '" + a.name() + "' (" +
                             VersionName(node, domain, version) +
                             " defines: " + AttributeList(version) + ")");
    }
    const std::optional<AttrKind> kind = KindOf(a);
    if (s->kind && kind && *kind != *s->kind) {
      return InvalidArgument(DescribeNode(node) + ": attribute '" + a.name() + "' must be " +
                             KindName(*s->kind) + ", not " + KindName(*kind));
    }
    for (const HarmlessAttribute& h : kHarmlessAttributes) {
      if (domain.empty() && node.op_type() == h.op && a.name() == h.name) attrs.erase(a.name());
    }
  }
  return Status::Ok();
}

Status CheckRequiredAttributes(const onnx::NodeProto& node, const OnnxOpVersion& version) {
  for (const OnnxAttributeSchema& s : version.attributes) {
    if (!s.required) continue;
    bool present = false;
    for (const onnx::AttributeProto& a : node.attribute()) present = present || a.name() == s.name;
    if (!present) {
      return InvalidArgument(DescribeNode(node) + ": missing required attribute '" +
                             std::string(s.name) + "'");
    }
  }
  return Status::Ok();
}

}  // namespace ampc::onnx_check
