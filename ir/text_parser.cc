// Parser of the textual IR (grammar in docs/TEXT_IR.md): hand-written recursive descent over the
// characters. A statement ends at a newline; spaces, tabs, '\r' and `// comments` are skipped.
// Every malformed input gives InvalidArgument("line L, column C: ..."); nothing throws or aborts.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <system_error>

#include "ir/float16.h"
#include "ir/limits.h"
#include "ir/text.h"

namespace ampc {
namespace {

using text_ir::IsBareNameChar;
using text_ir::IsIdentStart;
using text_ir::ValueRef;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char c) { return IsDigit(c) || IsIdentStart(c); }
bool IsNumberStart(char c) { return IsDigit(c) || c == '-' || c == '+' || c == '.'; }
int HexDigit(char c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A number token is a float when it has a '.' or an exponent, or is inf / nan.
bool IsFloatToken(std::string_view t) {
  if (!t.empty() && (t[0] == '-' || t[0] == '+')) t.remove_prefix(1);
  return t == "inf" || t == "nan" || t.find_first_of(".eE") != std::string_view::npos;
}

// A tensor type with data: static, non-negative dims.
struct DataType {
  TensorType type;
  std::vector<int64_t> dims;
  int64_t count = 1;
};

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text), g_(std::make_unique<Graph>()) {}

  StatusOr<std::unique_ptr<Graph>> Run() {
    Status st = ParseFile();
    if (!st.ok()) return st;
    return std::move(g_);
  }

 private:
  // ---- characters ----------------------------------------------------------------------------
  bool AtEnd() const { return p_ >= s_.size(); }
  bool PeekIs(char c) const { return p_ < s_.size() && s_[p_] == c; }

  // Skips spaces, tabs, '\r' and a `//` comment, stopping before a newline.
  void SkipSpaces() {
    while (!AtEnd()) {
      const char c = s_[p_];
      if (c == '/' && p_ + 1 < s_.size() && s_[p_ + 1] == '/') {
        while (!AtEnd() && s_[p_] != '\n') ++p_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++p_;
      } else {
        break;
      }
    }
  }
  void SkipBlankLines() {
    for (SkipSpaces(); PeekIs('\n'); SkipSpaces()) ++p_;
  }
  size_t Here() {
    SkipSpaces();
    return p_;
  }
  std::string_view ReadWhile(bool (*pred)(char)) {
    const size_t b = p_;
    while (!AtEnd() && pred(s_[p_])) ++p_;
    return s_.substr(b, p_ - b);
  }

  std::string DescribeNext() const {
    if (AtEnd()) return "end of input";
    const auto c = static_cast<unsigned char>(s_[p_]);
    if (c == '\n') return "end of line";
    if (c < 0x20 || c >= 0x7f) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "byte 0x%02X", static_cast<unsigned>(c));
      return buf;
    }
    size_t e = p_ + 1;  // show a whole word
    while (IsAlnum(s_[p_]) && e < s_.size() && e - p_ < 40 && IsBareNameChar(s_[e])) ++e;
    return "'" + std::string(s_.substr(p_, e - p_)) + "'";
  }

  Status Error(size_t pos, const std::string& what) const {
    pos = std::min(pos, s_.size());
    size_t line = 1, line_start = 0;
    for (size_t i = 0; i < pos; ++i) {
      if (s_[i] == '\n') ++line, line_start = i + 1;
    }
    return InvalidArgument("line " + std::to_string(line) + ", column " +
                           std::to_string(pos - line_start + 1) + ": " + what);
  }
  // Error at the next token; `what` ends with "found " or similar and gets the token appended.
  Status ErrorHere(const std::string& what) {
    const size_t pos = Here();
    return Error(pos, what + DescribeNext());
  }

  bool Accept(char c) {
    SkipSpaces();
    if (!PeekIs(c)) return false;
    ++p_;
    return true;
  }
  Status Expect(char c, const std::string& context) {
    if (Accept(c)) return Status::Ok();
    return ErrorHere(std::string("expected '") + c + "' " + context + ", found ");
  }
  // Accepts the keyword `w` when the next word is exactly `w`.
  bool AcceptWord(std::string_view w) {
    SkipSpaces();
    if (s_.substr(p_, w.size()) != w) return false;
    if (p_ + w.size() < s_.size() && IsBareNameChar(s_[p_ + w.size()])) return false;
    p_ += w.size();
    return true;
  }
  Status ExpectLineEnd(const char* what = "expected end of line, found ") {
    SkipSpaces();
    if (AtEnd()) return Status::Ok();  // the statement loop reports the missing '}'
    if (!PeekIs('\n')) return ErrorHere(what);
    ++p_;
    return Status::Ok();
  }

  // ---- tokens --------------------------------------------------------------------------------
  Status ParseString(std::string* out, const std::string& what) {
    const size_t start = Here();
    if (!PeekIs('"')) return ErrorHere("expected " + what + " (a quoted string), found ");
    ++p_;
    out->clear();
    while (true) {
      if (AtEnd() || s_[p_] == '\n') return Error(start, "unterminated string");
      const char c = s_[p_++];
      if (c == '"') {
        Status st = CheckStringBytes(static_cast<int64_t>(out->size()), what);
        return st.ok() ? st : Error(start, st.message());
      }
      if (c != '\\') {
        *out += c;
        continue;
      }
      const size_t esc = p_ - 1;
      if (AtEnd() || s_[p_] == '\n') return Error(start, "unterminated string");
      const char e = s_[p_++];
      static constexpr std::string_view kFrom = "\\\"ntr", kTo = "\\\"\n\t\r";
      if (const size_t k = kFrom.find(e); k != std::string_view::npos) {
        *out += kTo[k];
      } else if (e == 'x' && p_ + 1 < s_.size() && HexDigit(s_[p_]) >= 0 &&
                 HexDigit(s_[p_ + 1]) >= 0) {
        *out += static_cast<char>(HexDigit(s_[p_]) * 16 + HexDigit(s_[p_ + 1]));
        p_ += 2;
      } else if (e == 'x') {
        return Error(esc, "\\x in a string needs two hex digits");
      } else {
        return Error(esc, std::string("unknown escape '\\") + e + "' in string");
      }
    }
  }

  // `%name` or `%"any name"`.
  Status ParseValueRef(std::string* name) {
    const size_t start = Here();
    if (!PeekIs('%')) return ErrorHere("expected a value (%name), found ");
    ++p_;
    if (PeekIs('"')) {
      RETURN_IF_ERROR(ParseString(name, "a value name"));
      return name->empty() ? Error(start, "empty value name") : Status::Ok();
    }
    *name = std::string(ReadWhile(IsBareNameChar));
    return name->empty() ? ErrorHere("expected a value name after '%', found ") : Status::Ok();
  }

  // Attribute or annotation key, symbolic dim: an identifier or a quoted string.
  Status ParseKey(std::string* out, const std::string& what) {
    SkipSpaces();
    if (PeekIs('"')) return ParseString(out, what);
    if (AtEnd() || !IsIdentStart(s_[p_])) return ErrorHere("expected " + what + ", found ");
    *out = std::string(ReadWhile(IsBareNameChar));
    return Status::Ok();
  }

  // Op type or domain: [A-Za-z0-9_.]+ or a quoted string.
  Status ParseOpWord(std::string* out) {
    SkipSpaces();
    if (PeekIs('"')) return ParseString(out, "an op name");
    *out = std::string(ReadWhile(IsBareNameChar));
    return out->empty() ? ErrorHere("expected an op name, found ") : Status::Ok();
  }

  std::string_view ReadNumberToken() {
    const size_t b = Here();
    if (PeekIs('-') || PeekIs('+')) ++p_;
    while (!AtEnd()) {
      const char c = s_[p_];
      const bool exp_sign = (c == '+' || c == '-') && (s_[p_ - 1] == 'e' || s_[p_ - 1] == 'E');
      if (!IsAlnum(c) && c != '.' && !exp_sign) break;
      ++p_;
    }
    return s_.substr(b, p_ - b);
  }

  Status IntFromToken(std::string_view tok, size_t pos, int64_t* v) {
    if (tok.empty()) return ErrorHere("expected an integer, found ");
    const auto r = std::from_chars(tok.data(), tok.data() + tok.size(), *v);
    if (r.ec == std::errc::result_out_of_range) {
      return Error(pos, "integer '" + std::string(tok) + "' is out of range");
    }
    if (r.ec == std::errc() && r.ptr == tok.data() + tok.size()) return Status::Ok();
    return Error(pos,
                 (IsNumberStart(tok[0]) ? "invalid integer '" : "expected an integer, found '") +
                     std::string(tok) + "'");
  }
  Status ParseInt(int64_t* v) {
    const size_t pos = Here();
    return IntFromToken(ReadNumberToken(), pos, v);
  }

  template <typename F>
  Status FloatFromToken(std::string_view tok, size_t pos, F* v) {
    if (tok.empty()) return ErrorHere("expected a number, found ");
    const bool neg = tok[0] == '-';
    const std::string_view body = tok.substr(neg || tok[0] == '+' ? 1 : 0);
    if (body == "inf" || body == "nan") {
      *v = body == "inf" ? std::numeric_limits<F>::infinity() : std::numeric_limits<F>::quiet_NaN();
    } else {
      const auto r = std::from_chars(body.data(), body.data() + body.size(), *v);
      if (r.ec == std::errc::result_out_of_range) {
        return Error(pos, "number '" + std::string(tok) + "' is out of range");
      }
      if (r.ec != std::errc() || r.ptr != body.data() + body.size() || body.empty() ||
          !(IsDigit(body[0]) || body[0] == '.')) {
        return Error(pos, "invalid number '" + std::string(tok) + "'");
      }
    }
    if (neg) *v = -*v;
    return Status::Ok();
  }

  // ---- types and tensor data -----------------------------------------------------------------
  Status ParseType(TensorType* t) {
    const size_t start = Here();
    DType dtype = DType::kUndefined;
    if (PeekIs('?')) {
      ++p_;
    } else {
      const std::string_view w = ReadWhile(IsAlnum);
      if (w.empty()) return ErrorHere("expected a type such as f32[2,3], found ");
      const std::optional<DType> d = DTypeFromName(w);
      if (!d) return Error(start, "unknown dtype '" + std::string(w) + "'");
      dtype = *d;
    }
    RETURN_IF_ERROR(Expect('[', "after the dtype"));
    if (Accept('*')) {
      *t = TensorType::UnknownShape(dtype);
      return Expect(']', "after '*'");
    }
    std::vector<Dim> dims;
    if (!Accept(']')) {
      do {
        SkipSpaces();
        if (PeekIs('?')) {
          ++p_;
          dims.push_back(Dim::Unknown());
        } else if (!AtEnd() && (IsDigit(s_[p_]) || s_[p_] == '-')) {
          int64_t v = 0;
          RETURN_IF_ERROR(ParseInt(&v));
          dims.push_back(Dim(v));
        } else {
          std::string sym;
          RETURN_IF_ERROR(ParseKey(&sym, "a dimension (a number, a name or '?')"));
          dims.push_back(Dim::Symbol(std::move(sym)));
        }
      } while (Accept(','));
      RETURN_IF_ERROR(Expect(']', "to close the shape"));
    }
    *t = TensorType(dtype, std::move(dims));
    return Status::Ok();
  }

  Status ParseDataType(DataType* dt) {
    const size_t start = Here();
    RETURN_IF_ERROR(ParseType(&dt->type));
    if (!dt->type.has_rank) return Error(start, "a tensor with data needs a known shape, not [*]");
    for (const Dim& d : dt->type.dims) {
      if (!d.is_static()) return Error(start, "a tensor with data needs static dims");
      if (d.value() < 0 || d.value() > kMaxDim) {
        return Error(start, "tensor dim " + std::to_string(d.value()) + " is out of range");
      }
      if (d.value() != 0 && dt->count > kMaxElements / d.value()) {
        return Error(start, "tensor has too many elements");
      }
      dt->count *= d.value();
      dt->dims.push_back(d.value());
    }
    // Declared sizes, elided tensors included: passes may materialise them.
    tensor_bytes_ += dt->count * DTypeSize(dt->type.dtype);
    if (Status st = CheckTensorBytes(tensor_bytes_, "the graph's tensors"); !st.ok())
      return Error(start, st.message());
    return Status::Ok();
  }

  template <typename T>
  static void Append(std::vector<uint8_t>* bytes, T v) {
    const size_t n = bytes->size();
    bytes->resize(n + sizeof(T));
    std::memcpy(bytes->data() + n, &v, sizeof(T));
  }

  Status ParseElement(DType dt, std::vector<uint8_t>* bytes) {
    const size_t pos = Here();
    if (dt == DType::kBool) {
      const bool t = AcceptWord("true");
      if (!t && !AcceptWord("false")) return ErrorHere("expected true or false, found ");
      Append<uint8_t>(bytes, t ? 1 : 0);
      return Status::Ok();
    }
    const std::string_view tok = ReadNumberToken();
    if (dt == DType::kFloat64) {
      double d = 0;
      RETURN_IF_ERROR(FloatFromToken(tok, pos, &d));
      Append(bytes, d);
      return Status::Ok();
    }
    if (IsFloat(dt)) {
      float f = 0;
      RETURN_IF_ERROR(FloatFromToken(tok, pos, &f));
      if (dt == DType::kFloat32) Append(bytes, f);
      if (dt == DType::kFloat16) Append(bytes, FloatToHalfBits(f));
      if (dt == DType::kBFloat16) Append(bytes, FloatToBFloat16Bits(f));
      return Status::Ok();
    }
    if (IsFloatToken(tok))
      return Error(pos, "expected an integer element, found '" + std::string(tok) + "'");
    int64_t v = 0;
    RETURN_IF_ERROR(IntFromToken(tok, pos, &v));
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    switch (dt) {
      case DType::kInt32:
        lo = INT32_MIN, hi = INT32_MAX;
        break;
      case DType::kInt8:
        lo = INT8_MIN, hi = INT8_MAX;
        break;
      case DType::kUInt8:
        lo = 0, hi = UINT8_MAX;
        break;
      default:
        break;
    }
    if (v < lo || v > hi) {
      return Error(
          pos, "value " + std::to_string(v) + " is out of range for " + std::string(DTypeName(dt)));
    }
    Append(bytes, v);  // little-endian: keep the low bytes
    bytes->resize(bytes->size() - 8 + DTypeSize(dt));
    return Status::Ok();
  }

  // `elided` or `[e0, e1, ...]` (flat, row-major).
  Status ParseTensorData(DataType dt, Tensor* out) {
    const size_t start = Here();
    if (AcceptWord("elided")) {
      *out = Tensor::Elided(dt.type.dtype, std::move(dt.dims));
      return Status::Ok();
    }
    if (dt.type.dtype == DType::kUndefined) {
      return Error(start, "a tensor of unknown dtype can only be 'elided'");
    }
    RETURN_IF_ERROR(Expect('[', "or 'elided' for the tensor data"));
    std::vector<uint8_t> bytes;
    int64_t n = 0;
    if (!Accept(']')) {
      do {
        if (n++ >= dt.count) {
          return Error(Here(), "too many elements: the type " + dt.type.ToString() + " has " +
                                   std::to_string(dt.count));
        }
        RETURN_IF_ERROR(ParseElement(dt.type.dtype, &bytes));
      } while (Accept(','));
      RETURN_IF_ERROR(Expect(']', "to close the tensor data"));
    }
    if (n != dt.count) {
      return Error(start, "the tensor data has " + std::to_string(n) + " elements but the type " +
                              dt.type.ToString() + " has " + std::to_string(dt.count));
    }
    *out = Tensor(dt.type.dtype, std::move(dt.dims), std::move(bytes));
    return Status::Ok();
  }

  // ---- attributes ----------------------------------------------------------------------------
  enum class ListKind { kUnknown, kInts, kFloats, kStrings };

  Status ParseList(ListKind kind, Attribute* a) {
    const size_t start = Here();
    const bool forced = kind != ListKind::kUnknown;
    std::vector<int64_t> ints;
    std::vector<float> floats;
    std::vector<std::string> strings;
    RETURN_IF_ERROR(Expect('[', "to start the list"));
    if (!Accept(']')) {
      do {
        const size_t pos = Here();
        const bool is_string = PeekIs('"');
        if (kind == ListKind::kUnknown && is_string) kind = ListKind::kStrings;
        if (is_string != (kind == ListKind::kStrings) && kind != ListKind::kUnknown) {
          return Error(pos, "a list cannot mix strings and numbers");
        }
        if (is_string) {
          RETURN_IF_ERROR(ParseString(&strings.emplace_back(), "a string"));
          continue;
        }
        const std::string_view tok = ReadNumberToken();
        if (tok.empty()) return ErrorHere("expected a list element, found ");
        const bool is_float = IsFloatToken(tok);
        if (kind == ListKind::kUnknown) kind = is_float ? ListKind::kFloats : ListKind::kInts;
        if (kind == ListKind::kInts && is_float && forced) {
          return Error(pos, "expected an integer in ints[...]");
        }
        if ((kind == ListKind::kInts) == is_float && !forced) {
          return Error(pos, "a list cannot mix ints and floats (write 2.0 for a float)");
        }
        RETURN_IF_ERROR(kind == ListKind::kInts ? IntFromToken(tok, pos, &ints.emplace_back())
                                                : FloatFromToken(tok, pos, &floats.emplace_back()));
      } while (Accept(','));
      RETURN_IF_ERROR(Expect(']', "to close the list"));
    }
    switch (kind) {
      case ListKind::kUnknown:
        return Error(start, "an empty list needs a kind: write ints[], floats[] or strings[]");
      case ListKind::kInts:
        *a = Attribute(std::move(ints));
        break;
      case ListKind::kFloats:
        *a = Attribute(std::move(floats));
        break;
      case ListKind::kStrings:
        *a = Attribute(std::move(strings));
        break;
    }
    return Status::Ok();
  }

  Status ParseAttrValue(Attribute* a) {
    const size_t pos = Here();
    if (PeekIs('"')) {
      std::string s;
      RETURN_IF_ERROR(ParseString(&s, "a string"));
      *a = Attribute(std::move(s));
      return Status::Ok();
    }
    if (PeekIs('[')) return ParseList(ListKind::kUnknown, a);
    if (AcceptWord("ints")) return ParseList(ListKind::kInts, a);
    if (AcceptWord("floats")) return ParseList(ListKind::kFloats, a);
    if (AcceptWord("strings")) return ParseList(ListKind::kStrings, a);
    if (AcceptWord("tensor")) {
      DataType dt;
      Tensor t;
      RETURN_IF_ERROR(Expect('<', "after 'tensor'"));
      RETURN_IF_ERROR(ParseDataType(&dt));
      RETURN_IF_ERROR(Expect('>', "after the tensor type"));
      RETURN_IF_ERROR(ParseTensorData(std::move(dt), &t));
      *a = Attribute(std::move(t));
      return Status::Ok();
    }
    const std::string_view tok = ReadNumberToken();
    if (tok.empty() || !(IsNumberStart(tok[0]) || tok == "inf" || tok == "nan")) {
      p_ = pos;
      return ErrorHere("expected an attribute value, found ");
    }
    if (IsFloatToken(tok)) {
      float f = 0;
      RETURN_IF_ERROR(FloatFromToken(tok, pos, &f));
      *a = Attribute(f);
    } else {
      int64_t v = 0;
      RETURN_IF_ERROR(IntFromToken(tok, pos, &v));
      *a = Attribute(v);
    }
    return Status::Ok();
  }

  // ---- statements ----------------------------------------------------------------------------
  Status CheckNew(const std::string& name, size_t pos) {
    if (g_->FindValue(name)) return Error(pos, "value " + ValueRef(name) + " is defined twice");
    return Status::Ok();
  }
  Status Lookup(Value** v) {
    const size_t pos = Here();
    std::string name;
    RETURN_IF_ERROR(ParseValueRef(&name));
    *v = g_->FindValue(name);
    return *v ? Status::Ok() : Error(pos, "use of undefined value " + ValueRef(name));
  }

  // `input %x: type` or `init %w: type = data` (after the keyword).
  Status ParseDefinition(bool is_init) {
    const size_t pos = Here();
    std::string name;
    DataType dt;
    Tensor data;
    RETURN_IF_ERROR(ParseValueRef(&name));
    RETURN_IF_ERROR(Expect(':', "after value name"));
    if (is_init) {
      RETURN_IF_ERROR(ParseDataType(&dt));
      RETURN_IF_ERROR(Expect('=', "after the initializer's type"));
      RETURN_IF_ERROR(ParseTensorData(std::move(dt), &data));
    } else {
      RETURN_IF_ERROR(ParseType(&dt.type));
    }
    RETURN_IF_ERROR(ExpectLineEnd());
    RETURN_IF_ERROR(CheckNew(name, pos));
    auto v = is_init ? g_->AddInitializer(name, std::move(data)) : g_->AddInput(name, dt.type);
    return v.ok() ? Status::Ok() : Error(pos, v.status().message());
  }

  Status ParseNode() {
    const size_t line_pos = Here();
    std::vector<std::string> out_names;
    std::vector<TensorType> out_types;
    std::set<std::string> seen;
    if (Accept('(')) {
      RETURN_IF_ERROR(Expect(')', "for a node without results"));
    } else {
      do {
        const size_t pos = Here();
        out_names.emplace_back();
        out_types.emplace_back();
        if (PeekIs('_')) {
          ++p_;
          continue;
        }
        RETURN_IF_ERROR(ParseValueRef(&out_names.back()));
        RETURN_IF_ERROR(Expect(':', "after value name"));
        RETURN_IF_ERROR(ParseType(&out_types.back()));
        RETURN_IF_ERROR(CheckNew(out_names.back(), pos));
        if (!seen.insert(out_names.back()).second) {
          return Error(pos, "value " + ValueRef(out_names.back()) + " is defined twice");
        }
      } while (Accept(','));
    }
    RETURN_IF_ERROR(Expect('=', "after the node's results"));
    std::string domain, op;
    RETURN_IF_ERROR(ParseOpWord(&op));
    SkipSpaces();
    if (s_.substr(p_, 2) == "::") {
      p_ += 2;
      domain = std::move(op);
      RETURN_IF_ERROR(ParseOpWord(&op));
    }
    RETURN_IF_ERROR(Expect('(', "after the op name"));
    std::vector<Value*> inputs;
    if (!Accept(')')) {
      do {
        inputs.push_back(nullptr);
        SkipSpaces();
        if (PeekIs('_')) {
          ++p_;
        } else {
          RETURN_IF_ERROR(Lookup(&inputs.back()));
        }
      } while (Accept(','));
      RETURN_IF_ERROR(Expect(')', "to close the operand list"));
    }
    AttributeMap attrs;
    if (Accept('{') && !Accept('}')) {
      do {
        const size_t pos = Here();
        std::string key;
        Attribute value;
        RETURN_IF_ERROR(ParseKey(&key, "an attribute name"));
        RETURN_IF_ERROR(Expect('=', "after the attribute name"));
        RETURN_IF_ERROR(ParseAttrValue(&value));
        if (!attrs.emplace(std::move(key), std::move(value)).second) {
          return Error(pos, "attribute given twice");
        }
      } while (Accept(','));
      RETURN_IF_ERROR(Expect('}', "to close the attributes"));
    }
    std::string node_name;
    if (AcceptWord("name")) {
      RETURN_IF_ERROR(Expect('=', "after 'name'"));
      RETURN_IF_ERROR(ParseString(&node_name, "the node name"));
    }
    std::map<std::string, std::string> annotations;
    while (Accept('#')) {
      const size_t pos = p_ - 1;
      std::string key, value;
      RETURN_IF_ERROR(ParseKey(&key, "an annotation name"));
      RETURN_IF_ERROR(Expect('=', "after the annotation name"));
      RETURN_IF_ERROR(ParseString(&value, "the annotation value"));
      if (!annotations.emplace(std::move(key), std::move(value)).second) {
        return Error(pos, "annotation given twice");
      }
    }
    RETURN_IF_ERROR(
        ExpectLineEnd("expected name=\"...\", #key=\"...\" or end of line after the node, found "));
    auto n = g_->AddNode(op, domain, node_name, inputs, out_names, std::move(attrs));
    if (!n.ok()) return Error(line_pos, n.status().message());
    for (size_t i = 0; i < out_names.size(); ++i) {
      if (Value* v = (*n)->output(static_cast<int>(i))) v->set_type(std::move(out_types[i]));
    }
    (*n)->annotations() = std::move(annotations);
    return Status::Ok();
  }

  Status ParseHeader() {
    SkipBlankLines();
    if (!AcceptWord("graph")) return ErrorHere("expected 'graph' at the start, found ");
    std::string name;
    RETURN_IF_ERROR(ParseString(&name, "the graph name"));
    g_->set_name(std::move(name));
    if (AcceptWord("opsets")) {
      RETURN_IF_ERROR(Expect('{', "after 'opsets'"));
      if (!Accept('}')) {
        do {
          const size_t pos = Here();
          std::string domain;
          int64_t version = 0;
          RETURN_IF_ERROR(ParseString(&domain, "an opset domain"));
          RETURN_IF_ERROR(Expect(':', "after the opset domain"));
          RETURN_IF_ERROR(ParseInt(&version));
          if (!g_->opsets().emplace(domain, version).second) {
            return Error(pos, "opset for domain " + text_ir::QuoteString(domain) + " given twice");
          }
        } while (Accept(','));
        RETURN_IF_ERROR(Expect('}', "to close the opsets"));
      }
    }
    RETURN_IF_ERROR(Expect('{', "to open the graph body"));
    return ExpectLineEnd();
  }

  Status ParseFile() {
    RETURN_IF_ERROR(ParseHeader());
    while (true) {
      SkipBlankLines();
      if (AtEnd()) return Error(p_, "unexpected end of input: expected '}' to close the graph");
      if (Accept('}')) break;
      if (PeekIs('%') || PeekIs('_') || PeekIs('(')) {
        if (Status st = CheckNodeCount(++nodes_, "the graph"); !st.ok())
          return Error(p_, st.message());
        RETURN_IF_ERROR(ParseNode());
      } else if (AcceptWord("input")) {
        RETURN_IF_ERROR(ParseDefinition(/*is_init=*/false));
      } else if (AcceptWord("init")) {
        RETURN_IF_ERROR(ParseDefinition(/*is_init=*/true));
      } else if (AcceptWord("output")) {
        Value* v = nullptr;
        RETURN_IF_ERROR(Lookup(&v));
        RETURN_IF_ERROR(ExpectLineEnd());
        g_->AddOutput(v);
      } else if (AcceptWord("update")) {
        Value* state = nullptr;
        Value* next = nullptr;
        RETURN_IF_ERROR(Lookup(&state));
        RETURN_IF_ERROR(Expect('<', "in 'update %state <- %next'"));
        RETURN_IF_ERROR(Expect('-', "in 'update %state <- %next'"));
        RETURN_IF_ERROR(Lookup(&next));
        RETURN_IF_ERROR(ExpectLineEnd());
        g_->AddStateUpdate(state, next);
      } else {
        return ErrorHere("expected input, init, output, update, a node or '}', found ");
      }
    }
    SkipBlankLines();
    if (!AtEnd()) return ErrorHere("unexpected text after the end of the graph: ");
    return Status::Ok();
  }

  std::string_view s_;
  size_t p_ = 0;
  std::unique_ptr<Graph> g_;
  int64_t nodes_ = 0;
  int64_t tensor_bytes_ = 0;  // declared, of every init and tensor attribute so far
};

}  // namespace

StatusOr<std::unique_ptr<Graph>> ParseGraph(std::string_view text) { return Parser(text).Run(); }

}  // namespace ampc
