// Printer of the textual IR (grammar in docs/TEXT_IR.md). The output is canonical: the parser
// accepts more spellings (extra spaces, comments, `ints[1]`), but printing a parsed graph gives
// back exactly the text printed for the original. This file also holds the small text_ir helpers
// of text.h (quoting, half-precision encoders) that the parser shares.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "ir/text.h"

namespace ampc {
// ---- helpers declared in text.h, shared by the printer and the parser ----------------------
namespace text_ir {

std::string QuoteString(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

namespace {
bool IsBareName(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsBareNameChar(c)) return false;
  }
  return true;
}
bool IsIdent(std::string_view s) { return IsBareName(s) && IsIdentStart(s[0]); }
}  // namespace

std::string ValueRef(std::string_view name) {
  return IsBareName(name) ? "%" + std::string(name) : "%" + QuoteString(name);
}

}  // namespace text_ir

namespace {

using text_ir::IsBareName;
using text_ir::IsIdent;
using text_ir::QuoteString;

class Printer {
 public:
  Printer(std::string& out, const PrintOptions& opts) : out_(out), opts_(opts) {}

  void PrintAll(const Graph& g) {
    out_ += "graph ";
    out_ += QuoteString(g.name());
    out_ += " opsets {";
    bool first = true;
    for (const auto& [domain, version] : g.opsets()) {
      if (!first) out_ += ", ";
      first = false;
      out_ += QuoteString(domain);
      out_ += ": ";
      out_ += std::to_string(version);
    }
    out_ += "} {\n";
    for (const Value* v : g.inputs()) {
      out_ += "  input ";
      Name(v);
      out_ += ": ";
      Type(v->type());
      out_ += '\n';
    }
    for (const Value* v : g.initializers()) {
      out_ += "  init ";
      Name(v);
      out_ += ": ";
      const Tensor* t = v->initializer();
      if (t) {
        Type(t->type());
        out_ += " = ";
        TensorData(*t);
      } else {  // not built by AddInitializer; print what is known
        Type(v->type());
        out_ += " = elided";
      }
      out_ += '\n';
    }
    for (const Node* n : g.nodes()) NodeLine(*n);
    for (const Value* v : g.outputs()) {
      out_ += "  output ";
      Name(v);
      out_ += '\n';
    }
    for (const StateUpdate& u : g.state_updates()) {
      out_ += "  update ";
      Name(u.state);
      out_ += " <- ";
      Name(u.next);
      out_ += '\n';
    }
    out_ += "}\n";
  }

 private:
  void Name(const Value* v) {
    if (v) {
      out_ += text_ir::ValueRef(v->name());
    } else {
      out_ += '_';
    }
  }
  void IdentOrString(const std::string& s) { out_ += IsIdent(s) ? s : QuoteString(s); }
  void BareOrString(const std::string& s) { out_ += IsBareName(s) ? s : QuoteString(s); }

  template <typename F>
  void Float(F f) {
    if (std::isnan(f)) {
      out_ += "nan";
      return;
    }
    if (std::isinf(f)) {
      out_ += f < 0 ? "-inf" : "inf";
      return;
    }
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, f);  // shortest exact round trip
    const std::string_view s(buf, static_cast<size_t>(r.ptr - buf));
    out_ += s;
    if (s.find_first_of(".eE") == std::string_view::npos) out_ += ".0";
  }

  void Type(const TensorType& t) {
    out_ += DTypeName(t.dtype);
    if (!t.has_rank) {
      out_ += "[*]";
      return;
    }
    out_ += '[';
    for (size_t i = 0; i < t.dims.size(); ++i) {
      if (i) out_ += ',';
      const Dim& d = t.dims[i];
      if (d.is_static()) {
        out_ += std::to_string(d.value());
      } else if (d.is_symbolic()) {
        IdentOrString(d.symbol());
      } else {
        out_ += '?';
      }
    }
    out_ += ']';
  }

  static std::optional<int64_t> CountElements(const std::vector<int64_t>& dims) {
    int64_t n = 1;
    for (int64_t d : dims) {
      if (d < 0 || d > kMaxDim) return std::nullopt;
      if (d != 0 && n > kMaxElements / d) return std::nullopt;
      n *= d;
    }
    return n;
  }

  template <typename T>
  static T Load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
  }

  void TensorData(const Tensor& t) {
    const std::optional<int64_t> n = CountElements(t.dims());
    const int size = DTypeSize(t.dtype());
    if (t.elided() || !n || *n > opts_.max_inline_elements || size == 0 ||
        static_cast<int64_t>(t.bytes().size()) != *n * size) {
      out_ += "elided";
      return;
    }
    out_ += '[';
    const uint8_t* p = t.bytes().data();
    for (int64_t i = 0; i < *n; ++i) {
      if (i) out_ += ", ";
      const uint8_t* e = p + i * size;
      switch (t.dtype()) {
        case DType::kFloat32:
          Float(Load<float>(e));
          break;
        case DType::kFloat64:
          Float(Load<double>(e));
          break;
        case DType::kFloat16:
          Float(HalfBitsToFloat(Load<uint16_t>(e)));
          break;
        case DType::kBFloat16:
          Float(BFloat16BitsToFloat(Load<uint16_t>(e)));
          break;
        case DType::kInt64:
          out_ += std::to_string(Load<int64_t>(e));
          break;
        case DType::kInt32:
          out_ += std::to_string(Load<int32_t>(e));
          break;
        case DType::kInt8:
          out_ += std::to_string(Load<int8_t>(e));
          break;
        case DType::kUInt8:
          out_ += std::to_string(Load<uint8_t>(e));
          break;
        case DType::kBool:
          out_ += *e ? "true" : "false";
          break;
        case DType::kUndefined:
          break;
      }
    }
    out_ += ']';
  }

  void Attr(const Attribute& a) {
    switch (a.kind()) {
      case AttrKind::kInt:
        out_ += std::to_string(a.i());
        return;
      case AttrKind::kFloat:
        Float(a.f());
        return;
      case AttrKind::kString:
        out_ += QuoteString(a.s());
        return;
      case AttrKind::kTensor:
        out_ += "tensor<";
        Type(a.t().type());
        out_ += "> ";
        TensorData(a.t());
        return;
      case AttrKind::kInts:
        if (a.ints().empty()) out_ += "ints";
        List(a.ints(), [this](int64_t v) { out_ += std::to_string(v); });
        return;
      case AttrKind::kFloats:
        if (a.floats().empty()) out_ += "floats";
        List(a.floats(), [this](float v) { Float(v); });
        return;
      case AttrKind::kStrings:
        if (a.strings().empty()) out_ += "strings";
        List(a.strings(), [this](const std::string& v) { out_ += QuoteString(v); });
        return;
    }
  }

  template <typename Vec, typename Fn>
  void List(const Vec& v, Fn fn) {
    out_ += '[';
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out_ += ", ";
      fn(v[i]);
    }
    out_ += ']';
  }

  void NodeLine(const Node& n) {
    out_ += "  ";
    if (n.outputs().empty()) out_ += "()";
    for (size_t i = 0; i < n.outputs().size(); ++i) {
      if (i) out_ += ", ";
      const Value* v = n.outputs()[i];
      Name(v);
      if (v) {
        out_ += ": ";
        Type(v->type());
      }
    }
    out_ += " = ";
    if (!n.domain().empty()) {
      BareOrString(n.domain());
      out_ += "::";
    }
    BareOrString(n.op_type());
    out_ += '(';
    for (size_t i = 0; i < n.inputs().size(); ++i) {
      if (i) out_ += ", ";
      Name(n.inputs()[i]);
    }
    out_ += ')';
    if (!n.attrs().empty()) {
      out_ += " {";
      bool first = true;
      for (const auto& [key, value] : n.attrs()) {
        if (!first) out_ += ", ";
        first = false;
        IdentOrString(key);
        out_ += '=';
        Attr(value);
      }
      out_ += '}';
    }
    if (!n.name().empty()) {
      out_ += " name=";
      out_ += QuoteString(n.name());
    }
    for (const auto& [key, value] : n.annotations()) {
      out_ += " #";
      IdentOrString(key);
      out_ += '=';
      out_ += QuoteString(value);
    }
    out_ += '\n';
  }

  std::string& out_;
  const PrintOptions& opts_;
};

}  // namespace

std::string PrintGraph(const Graph& g, const PrintOptions& opts) {
  std::string out;
  Printer(out, opts).PrintAll(g);
  return out;
}

}  // namespace ampc
