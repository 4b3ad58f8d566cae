#include "ir/ops/infer_util.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

namespace ampc::infer {

std::string TypeName(DType t) { return std::string(DTypeName(t)); }

std::string DimsToString(const std::vector<Dim>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ",";
    s += dims[i].ToString();
  }
  return s + "]";
}

std::string IntsToString(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(v[i]);
  }
  return s + "]";
}

const TensorType* InType(const Node& node, int i) {
  const Value* v = node.input(i);
  return v ? &v->type() : nullptr;
}

void SetOutput(Node& node, int i, TensorType t) {
  Value* v = node.output(i);
  if (!v) return;
  v->set_type(std::move(t));
  v->set_known_ints(std::nullopt);
}

bool IsSmall(const TensorType& t) {
  if (!t.has_rank || t.rank() > 1) return false;
  if (t.rank() == 0) return true;
  return !t.dims[0].is_static() || t.dims[0].value() <= kMaxKnownInts;
}

void SetKnown(Node& node, int i, std::optional<std::vector<Dim>> v) {
  Value* out = node.output(i);
  if (!out || !v) return;
  TensorType t = out->type();
  if (!t.has_rank || t.rank() > 1 || static_cast<int64_t>(v->size()) > kMaxKnownInts) return;
  if (t.rank() == 0) {
    if (v->size() != 1) return;
  } else if (t.dims[0].is_static()) {
    if (t.dims[0].value() != static_cast<int64_t>(v->size())) return;
  } else {
    // The values tell the length exactly: refine the type.
    t.dims[0] = Dim(static_cast<int64_t>(v->size()));
    out->set_type(t);
  }
  out->set_known_ints(std::move(v));
}

StatusOr<int64_t> NormalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) {
    return InvalidArgument("axis " + std::to_string(axis) + " is out of range for rank " +
                           std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

StatusOr<std::vector<int64_t>> NormalizeAxes(const std::vector<int64_t>& axes, int64_t rank) {
  std::vector<int64_t> out;
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(rank, 0)), false);
  for (int64_t a : axes) {
    ASSIGN_OR_RETURN(int64_t n, NormalizeAxis(a, rank));
    if (seen[n]) return InvalidArgument("axis " + std::to_string(a) + " is repeated");
    seen[n] = true;
    out.push_back(n);
  }
  return out;
}

bool IsNumeric(DType t) { return IsFloat(t) || IsInteger(t); }
bool IsSignedNumeric(DType t) { return IsNumeric(t) && t != DType::kUInt8; }

Status RequireTyped(const Node& node, int i) {
  const Value* v = node.input(i);
  if (v && v->dtype() == DType::kUndefined) {
    return InvalidArgument("input " + std::to_string(i) + " ('" + v->name() + "') has no type");
  }
  return Status::Ok();
}

Status SameDType(const Node& node, std::initializer_list<int> inputs) {
  int first = -1;
  for (int i : inputs) {
    const Value* v = node.input(i);
    if (!v) continue;
    RETURN_IF_ERROR(RequireTyped(node, i));
    if (first < 0) {
      first = i;
      continue;
    }
    DType a = node.input(first)->dtype(), b = v->dtype();
    if (a != b) {
      return InvalidArgument("type mismatch: input " + std::to_string(first) + " is " +
                             TypeName(a) + ", input " + std::to_string(i) + " is " + TypeName(b));
    }
  }
  return Status::Ok();
}

Status SameDTypeRange(const Node& node, int first, int last) {
  int ref = -1;
  for (int i = first; i < last; ++i) {
    const Value* v = node.input(i);
    if (!v) continue;
    RETURN_IF_ERROR(RequireTyped(node, i));
    if (ref < 0) {
      ref = i;
    } else if (v->dtype() != node.input(ref)->dtype()) {
      return InvalidArgument("type mismatch: input " + std::to_string(ref) + " is " +
                             TypeName(node.input(ref)->dtype()) + ", input " + std::to_string(i) +
                             " is " + TypeName(v->dtype()));
    }
  }
  return Status::Ok();
}

namespace {
Status RequireKind(const Node& node, int i, bool ok, const char* kind) {
  RETURN_IF_ERROR(RequireTyped(node, i));
  const Value* v = node.input(i);
  if (v && !ok) {
    return InvalidArgument("input " + std::to_string(i) + " has type " + TypeName(v->dtype()) +
                           " but " + node.op_type() + " needs " + kind);
  }
  return Status::Ok();
}
DType DTypeOf(const Node& node, int i) {
  const Value* v = node.input(i);
  return v ? v->dtype() : DType::kUndefined;
}
}  // namespace

Status RequireFloat(const Node& node, int i) {
  return RequireKind(node, i, IsFloat(DTypeOf(node, i)), "a float type");
}
Status RequireNumeric(const Node& node, int i) {
  return RequireKind(node, i, IsNumeric(DTypeOf(node, i)), "a numeric type");
}
Status RequireBool(const Node& node, int i) {
  return RequireKind(node, i, DTypeOf(node, i) == DType::kBool, "bool");
}
Status RequireIndexType(const Node& node, int i) {
  DType t = DTypeOf(node, i);
  return RequireKind(node, i, t == DType::kInt64 || t == DType::kInt32, "i32 or i64");
}
Status RequireInt64(const Node& node, int i) {
  return RequireKind(node, i, DTypeOf(node, i) == DType::kInt64, "i64");
}

Status RequireScalar(const Node& node, int i, const char* what) {
  const Value* v = node.input(i);
  if (!v) return Status::Ok();
  const TensorType& t = v->type();
  if (!t.has_rank || t.rank() == 0) return Status::Ok();
  if (t.rank() == 1 && !(t.dims[0].is_static() && t.dims[0].value() != 1)) return Status::Ok();
  return InvalidArgument(std::string(what) + " must be a scalar, got shape " +
                         DimsToString(t.dims));
}

void SetDropoutOutputs(Node& node) {
  const TensorType& x = node.input(0)->type();
  SetOutput(node, 0, x);
  TensorType mask = x;
  mask.dtype = DType::kBool;
  SetOutput(node, 1, std::move(mask));
}

StatusOr<DType> DTypeFromOnnx(int64_t onnx_type) {
  if (auto t = DTypeFromOnnxNumber(onnx_type)) return *t;
  static const char* const kNames[] = {"undefined",  "float",   "uint8",  "int8",   "uint16",
                                       "int16",      "int32",   "int64",  "string", "bool",
                                       "float16",    "double",  "uint32", "uint64", "complex64",
                                       "complex128", "bfloat16"};
  if (onnx_type > 0 && onnx_type <= 16) {
    return Unimplemented("data type " + std::to_string(onnx_type) + " (" + kNames[onnx_type] +
                         ") is not supported");
  }
  return InvalidArgument("data type " + std::to_string(onnx_type) + " is not a valid ONNX type");
}

StatusOr<int64_t> CheckedMul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r) || r > kMaxDim || r < -kMaxDim) {
    return InvalidArgument("size computation " + std::to_string(a) + " * " + std::to_string(b) +
                           " exceeds the largest supported dim " + std::to_string(kMaxDim));
  }
  return r;
}

StatusOr<int64_t> CheckedAdd(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r) || r > kMaxDim || r < -kMaxDim) {
    return InvalidArgument("size computation " + std::to_string(a) + " + " + std::to_string(b) +
                           " exceeds the largest supported dim " + std::to_string(kMaxDim));
  }
  return r;
}

StatusOr<Dim> DimProduct(const std::vector<Dim>& dims) {
  for (const Dim& d : dims) {
    if (d.is_static() && d.value() == 0) return Dim(0);
  }
  int64_t prod = 1;
  const Dim* sym = nullptr;
  int nsym = 0;
  bool unknown = false;
  for (const Dim& d : dims) {
    if (d.is_static()) {
      ASSIGN_OR_RETURN(prod, CheckedMul(prod, d.value()));
    } else if (d.is_symbolic()) {
      sym = &d;
      ++nsym;
    } else {
      unknown = true;
    }
  }
  if (unknown) return Dim();
  if (nsym == 0) return Dim(prod);
  if (nsym == 1 && prod == 1) return *sym;
  return Dim();
}

StatusOr<Dim> DimMul(const Dim& a, const Dim& b) {
  if (a.is_static() && b.is_static()) {
    ASSIGN_OR_RETURN(int64_t r, CheckedMul(a.value(), b.value()));
    return Dim(r);
  }
  if ((a.is_static() && a.value() == 0) || (b.is_static() && b.value() == 0)) return Dim(0);
  if (a.is_static() && a.value() == 1) return b;
  if (b.is_static() && b.value() == 1) return a;
  return Dim();
}

StatusOr<Dim> DimAdd(const Dim& a, const Dim& b) {
  if (a.is_static() && b.is_static()) {
    ASSIGN_OR_RETURN(int64_t r, CheckedAdd(a.value(), b.value()));
    return Dim(r);
  }
  if (a.is_static() && a.value() == 0) return b;
  if (b.is_static() && b.value() == 0) return a;
  return Dim();
}

StatusOr<Dim> MergeDims(const Dim& a, const Dim& b, const std::string& what) {
  if (a.is_static() && b.is_static()) {
    if (a.value() != b.value()) {
      return InvalidArgument(what + ": " + a.ToString() + " vs " + b.ToString());
    }
    return a;
  }
  if (a.is_static()) return a;
  if (b.is_static()) return b;
  if (a.is_symbolic()) return a;
  return b;
}

Status ValidateDims(const std::vector<Dim>& dims, const std::string& what) {
  for (const Dim& d : dims) {
    if (d.is_static() && (d.value() < 0 || d.value() > kMaxDim)) {
      return InvalidArgument(what + " has invalid dim " + std::to_string(d.value()) + " in " +
                             DimsToString(dims));
    }
  }
  return Status::Ok();
}

StatusOr<Dim> BroadcastDim(const Dim& a, const Dim& b) {
  if (a == b) return a;
  if (a.is_static() && b.is_static()) {
    if (a.value() == 1) return b;
    if (b.value() == 1) return a;
    return InvalidArgument(a.ToString() + " vs " + b.ToString());
  }
  if (a.is_static()) return a.value() == 1 ? b : a;
  if (b.is_static()) return b.value() == 1 ? a : b;
  return Dim();  // different symbols, or unknown involved
}

StatusOr<std::vector<Dim>> BroadcastShapes(const std::vector<Dim>& a, const std::vector<Dim>& b) {
  const size_t n = std::max(a.size(), b.size());
  std::vector<Dim> out(n);
  for (size_t i = 0; i < n; ++i) {
    const Dim one(1);
    const Dim& da = i < n - a.size() ? one : a[i - (n - a.size())];
    const Dim& db = i < n - b.size() ? one : b[i - (n - b.size())];
    auto r = BroadcastDim(da, db);
    if (!r.ok()) {
      return InvalidArgument("cannot broadcast shapes " + DimsToString(a) + " and " +
                             DimsToString(b) + ": " + r.status().message());
    }
    out[i] = *r;
  }
  return out;
}

StatusOr<TensorType> BroadcastTypes(const std::vector<const TensorType*>& types, DType out) {
  bool any_unknown = false, first = true;
  std::vector<Dim> dims;
  for (const TensorType* t : types) {
    if (!t) continue;
    if (!t->has_rank) {
      any_unknown = true;
      continue;
    }
    if (first) {
      dims = t->dims;
      first = false;
    } else {
      ASSIGN_OR_RETURN(dims, BroadcastShapes(dims, t->dims));
    }
  }
  if (any_unknown) return TensorType::UnknownShape(out);
  return TensorType(out, std::move(dims));
}

Status CheckUnidirectional(const std::vector<Dim>& target, const std::vector<Dim>& b,
                           const std::string& what) {
  if (b.size() > target.size()) {
    return InvalidArgument(what + " of shape " + DimsToString(b) + " has more dims than " +
                           DimsToString(target));
  }
  const size_t off = target.size() - b.size();
  for (size_t i = 0; i < b.size(); ++i) {
    const Dim& t = target[off + i];
    const Dim& d = b[i];
    if (d.is_static() && d.value() != 1 && t.is_static() && t.value() != d.value()) {
      return InvalidArgument(what + " of shape " + DimsToString(b) + " cannot broadcast to " +
                             DimsToString(target));
    }
  }
  return Status::Ok();
}

std::optional<std::vector<Dim>> KnownInts(const Value* v) {
  if (!v) return std::nullopt;
  if (v->known_ints()) return v->known_ints();
  const Tensor* t = v->initializer();
  if (!t || !IsSmall(t->type())) return std::nullopt;
  if (!IsInteger(t->dtype()) && t->dtype() != DType::kBool) return std::nullopt;
  auto ints = t->AsInt64s();
  if (!ints) return std::nullopt;
  return std::vector<Dim>(ints->begin(), ints->end());
}

std::optional<std::vector<int64_t>> KnownStatic(const Value* v) {
  auto k = KnownInts(v);
  if (!k) return std::nullopt;
  std::vector<int64_t> out;
  out.reserve(k->size());
  for (const Dim& d : *k) {
    if (!d.is_static()) return std::nullopt;
    out.push_back(d.value());
  }
  return out;
}

std::optional<int64_t> StaticLength(const Value* v) {
  if (!v) return std::nullopt;
  const TensorType& t = v->type();
  if (!t.has_rank || t.rank() != 1 || !t.dims[0].is_static()) return std::nullopt;
  return t.dims[0].value();
}

StatusOr<std::vector<int64_t>> IntsAttrOfLength(const Node& node, const std::string& key, size_t n,
                                                int64_t dflt) {
  const Attribute* a = node.attr(key);
  if (!a) return std::vector<int64_t>(n, dflt);
  if (a->kind() != AttrKind::kInts) {
    return InvalidArgument("attribute '" + key + "' must be a list of ints, not " +
                           AttrKindName(a->kind()));
  }
  if (a->ints().size() != n) {
    return InvalidArgument("attribute '" + key + "' has " + std::to_string(a->ints().size()) +
                           " values, expected " + std::to_string(n));
  }
  return a->ints();
}

Status CheckShapeInput(const Node& node, int i, const char* what) {
  RETURN_IF_ERROR(infer::RequireInt64(node, i));
  const TensorType& t = node.input(i)->type();
  if (t.has_rank && t.rank() != 1) {
    return InvalidArgument(std::string(what) + " must be 1-D, got shape " + DimsToString(t.dims));
  }
  return Status::Ok();
}

TensorType RankFromLength(const Node& node, int i, DType dt) {
  auto len = StaticLength(node.input(i));
  if (len && *len <= 1024) return TensorType(dt, std::vector<Dim>(*len));
  return TensorType::UnknownShape(dt);
}

namespace {
// Product of dims as (static part, symbols); false if any dim is unknown or too large.
bool Factor(const std::vector<Dim>& dims, int64_t* prod, std::multiset<std::string>* syms) {
  *prod = 1;
  for (const Dim& d : dims) {
    if (d.is_static()) {
      if (__builtin_mul_overflow(*prod, d.value(), prod) || *prod > kMaxElements) return false;
    } else if (d.is_symbolic()) {
      syms->insert(d.symbol());
    } else {
      return false;
    }
  }
  return true;
}
}  // namespace

StatusOr<std::vector<Dim>> ReshapeDims(const TensorType& x, const std::vector<Dim>& shape,
                                       bool allowzero) {
  auto fail = [&]() {
    auto ne = x.NumElements();
    std::string in = ne ? std::to_string(*ne) + " elements" : DimsToString(x.dims);
    return InvalidArgument("Reshape cannot reshape " + in + " into " + DimsToString(shape));
  };
  std::vector<Dim> out(shape.size());
  int neg = -1;
  bool has_zero = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    const Dim& d = shape[i];
    if (!d.is_static()) {
      out[i] = d;
    } else if (d.value() == 0 && !allowzero) {
      if (x.has_rank && static_cast<int64_t>(i) >= x.rank()) {
        return InvalidArgument("Reshape shape entry " + std::to_string(i) +
                               " is 0 (copy) but the input has rank " + std::to_string(x.rank()));
      }
      out[i] = x.has_rank ? x.dims[i] : Dim();
    } else if (d.value() == -1) {
      if (neg >= 0)
        return InvalidArgument("Reshape shape " + DimsToString(shape) + " has more than one -1");
      neg = static_cast<int>(i);
    } else if (d.value() < 0 || d.value() > kMaxDim) {
      return InvalidArgument("Reshape shape " + DimsToString(shape) + " has invalid entry " +
                             d.ToString());
    } else {
      has_zero |= d.value() == 0;
      out[i] = d;
    }
  }
  if (allowzero && has_zero && neg >= 0) {
    return InvalidArgument("Reshape shape " + DimsToString(shape) +
                           " has both 0 and -1 with allowzero=1");
  }
  int64_t pin = 1, pout = 1;
  std::multiset<std::string> sin, sout;
  const bool in_ok = x.has_rank && Factor(x.dims, &pin, &sin);
  std::vector<Dim> rest = out;
  if (neg >= 0) rest.erase(rest.begin() + neg);
  const bool out_ok = Factor(rest, &pout, &sout);
  if (neg >= 0 && in_ok && out_ok) {
    // Cancel the symbols both sides share; what is left must be a single factor.
    bool cancel = true;
    for (const std::string& s : sout) {
      auto it = sin.find(s);
      if (it == sin.end()) {
        cancel = false;
        break;
      }
      sin.erase(it);
    }
    if (cancel) {
      if (pout == 0) {
        if (pin != 0) return fail();
      } else if (pin % pout != 0) {
        if (sin.empty()) return fail();
      } else if (sin.empty()) {
        out[neg] = Dim(pin / pout);
      } else if (sin.size() == 1 && pin == pout) {
        out[neg] = Dim::Symbol(*sin.begin());
      }
    }
  } else if (neg < 0 && in_ok && out_ok && sin == sout && pin != pout) {
    return fail();
  }
  return out;
}

void SliceRange(int64_t d, int64_t start, int64_t end, int64_t step, int64_t* first,
                int64_t* count) {
  *first = 0;
  *count = 0;
  if (d <= 0) return;
  if (start < 0) start += d;
  if (end < 0) end += d;
  if (step > 0) {
    start = std::clamp(start, int64_t{0}, d);
    end = std::clamp(end, int64_t{0}, d);
    if (end > start) *count = (end - start - 1) / step + 1;
  } else {
    start = std::clamp(start, int64_t{0}, d - 1);
    end = std::clamp(end, int64_t{-1}, d - 1);
    if (start > end) *count = -((start - end - 1) / step) + 1;
  }
  *first = start;
}

StatusOr<EinsumEquation> ParseEinsum(const std::string& equation, int num_operands) {
  std::string eq;
  for (char c : equation) {
    if (c != ' ') eq += c;
  }
  if (eq.empty()) return InvalidArgument("Einsum needs the attribute 'equation'");
  if (eq.find('.') != std::string::npos) {
    return Unimplemented("Einsum equations with an ellipsis are not supported: " + eq);
  }
  auto is_label = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  const size_t arrow = eq.find("->");
  EinsumEquation out;
  out.terms.emplace_back();
  std::map<char, int> counts;
  for (char c : eq.substr(0, arrow)) {
    if (c == ',') {
      out.terms.emplace_back();
    } else if (is_label(c)) {
      out.terms.back() += c;
      ++counts[c];
    } else {
      return InvalidArgument("Einsum equation '" + eq + "' has invalid character '" + c + "'");
    }
  }
  if (static_cast<int>(out.terms.size()) != num_operands) {
    return InvalidArgument("Einsum equation '" + eq + "' has " + std::to_string(out.terms.size()) +
                           " operands but the node has " + std::to_string(num_operands) +
                           " inputs");
  }
  if (arrow == std::string::npos) {
    for (const auto& [c, n] : counts) {
      if (n == 1) out.output += c;
    }
  } else {
    out.output = eq.substr(arrow + 2);
  }
  for (size_t k = 0; k < out.output.size(); ++k) {
    const char c = out.output[k];
    if (!is_label(c) || !counts.count(c) || out.output.find(c) != k) {
      return InvalidArgument("Einsum output '" + out.output + "' has invalid label '" + c + "'");
    }
  }
  return out;
}

}  // namespace ampc::infer
