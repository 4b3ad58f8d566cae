// Type and shape inference for elementwise ops: arithmetic, comparison, logic, activations,
// Where, Cast, Clip, Dropout, Trilu, and Gelu (opset 20), Mish (18), Sin, Cos. Semantics follow
// the ONNX operator spec.
#include <algorithm>
#include <limits>

#include "ir/op_registry.h"
#include "ir/ops/infer_util.h"

namespace ampc {
namespace {

using infer::InType;
using infer::KnownInts;
using infer::SetKnown;
using infer::SetOutput;

enum class Kinds { kFloat, kSignedNumeric, kNumeric, kAny, kBool };

Status CheckKinds(const Node& node, int i, Kinds k) {
  RETURN_IF_ERROR(infer::RequireTyped(node, i));
  const Value* v = node.input(i);
  if (!v) return Status::Ok();
  const DType t = v->dtype();
  bool ok = true;
  const char* want = "";
  switch (k) {
    case Kinds::kFloat:
      ok = IsFloat(t);
      want = "a float type";
      break;
    case Kinds::kSignedNumeric:
      ok = infer::IsSignedNumeric(t);
      want = "a signed numeric type";
      break;
    case Kinds::kNumeric:
      ok = infer::IsNumeric(t);
      want = "a numeric type";
      break;
    case Kinds::kBool:
      ok = t == DType::kBool;
      want = "bool";
      break;
    case Kinds::kAny:
      break;
  }
  if (!ok) {
    return InvalidArgument("input " + std::to_string(i) + " has type " + infer::TypeName(t) +
                           " but " + node.op_type() + " needs " + want);
  }
  return Status::Ok();
}

// ---- known-int arithmetic -------------------------------------------------------------------

using DimFn = Dim (*)(const Dim&, const Dim&);

bool IsVal(const Dim& d, int64_t v) { return d.is_static() && d.value() == v; }

Dim KAdd(const Dim& a, const Dim& b) {
  int64_t r;
  if (a.is_static() && b.is_static()) {
    return __builtin_add_overflow(a.value(), b.value(), &r) ? Dim() : Dim(r);
  }
  if (IsVal(a, 0)) return b;
  if (IsVal(b, 0)) return a;
  return Dim();
}
Dim KSub(const Dim& a, const Dim& b) {
  int64_t r;
  if (a.is_static() && b.is_static()) {
    return __builtin_sub_overflow(a.value(), b.value(), &r) ? Dim() : Dim(r);
  }
  if (IsVal(b, 0)) return a;
  if (a.is_symbolic() && a == b) return Dim(0);
  return Dim();
}
Dim KMul(const Dim& a, const Dim& b) {
  int64_t r;
  if (a.is_static() && b.is_static()) {
    return __builtin_mul_overflow(a.value(), b.value(), &r) ? Dim() : Dim(r);
  }
  if (IsVal(a, 0) || IsVal(b, 0)) return Dim(0);
  if (IsVal(a, 1)) return b;
  if (IsVal(b, 1)) return a;
  return Dim();
}
Dim KDiv(const Dim& a, const Dim& b) {
  if (a.is_static() && b.is_static()) {
    if (b.value() == 0) return Dim();
    if (a.value() == std::numeric_limits<int64_t>::min() && b.value() == -1) return Dim();
    return Dim(a.value() / b.value());  // integer Div truncates
  }
  if (IsVal(b, 1)) return a;
  if (a.is_symbolic() && a == b) return Dim(1);
  return Dim();
}
Dim KEqual(const Dim& a, const Dim& b) {
  if (a.is_static() && b.is_static()) return Dim(a.value() == b.value() ? 1 : 0);
  if (a.is_symbolic() && a == b) return Dim(1);
  // A dim is never negative (torch compares shapes with -1).
  if ((a.is_symbolic() && b.is_static() && b.value() < 0) ||
      (b.is_symbolic() && a.is_static() && a.value() < 0)) {
    return Dim(0);
  }
  return Dim();
}

// Applies f elementwise to the known ints of inputs 0 and 1 (sizes equal or one of them 1).
std::optional<std::vector<Dim>> KnownBinary(const Node& node, DimFn f) {
  auto a = KnownInts(node.input(0));
  auto b = KnownInts(node.input(1));
  if (!a || !b || a->empty() || b->empty()) return std::nullopt;
  if (a->size() != b->size() && a->size() != 1 && b->size() != 1) return std::nullopt;
  const size_t n = std::max(a->size(), b->size());
  std::vector<Dim> out(n);
  for (size_t i = 0; i < n; ++i) {
    out[i] = f((*a)[a->size() == 1 ? 0 : i], (*b)[b->size() == 1 ? 0 : i]);
  }
  return out;
}

// ---- generic inference ----------------------------------------------------------------------

// Neg of known ints (ONNX function bodies compute axis counts this way, e.g. LayerNormalization's).
Status InferNeg(Node& node) {
  RETURN_IF_ERROR(CheckKinds(node, 0, Kinds::kSignedNumeric));
  SetOutput(node, 0, node.input(0)->type());
  if (auto a = KnownInts(node.input(0)); a && node.output(0)) {
    std::vector<Dim> out;
    for (const Dim& d : *a) out.push_back(KSub(Dim(0), d));
    node.output(0)->set_known_ints(std::move(out));
  }
  return Status::Ok();
}

template <Kinds K>
Status InferUnary(Node& node) {
  RETURN_IF_ERROR(CheckKinds(node, 0, K));
  SetOutput(node, 0, node.input(0)->type());
  return Status::Ok();
}

template <Kinds K>
Status InferUnaryToBool(Node& node) {
  RETURN_IF_ERROR(CheckKinds(node, 0, K));
  TensorType t = node.input(0)->type();
  t.dtype = DType::kBool;
  SetOutput(node, 0, std::move(t));
  return Status::Ok();
}

Status InferIdentity(Node& node) {
  RETURN_IF_ERROR(CheckKinds(node, 0, Kinds::kAny));
  SetOutput(node, 0, node.input(0)->type());
  SetKnown(node, 0, KnownInts(node.input(0)));
  return Status::Ok();
}

// Variadic broadcasting op whose inputs all share one dtype of kind K.
template <Kinds K, bool kToBool>
Status InferBroadcast(Node& node) {
  for (int i = 0; i < node.num_inputs(); ++i) RETURN_IF_ERROR(CheckKinds(node, i, K));
  RETURN_IF_ERROR(infer::SameDTypeRange(node, 0, node.num_inputs()));
  std::vector<const TensorType*> types;
  for (int i = 0; i < node.num_inputs(); ++i) types.push_back(InType(node, i));
  const DType dt = kToBool ? DType::kBool : node.input(0)->dtype();
  ASSIGN_OR_RETURN(TensorType t, infer::BroadcastTypes(types, dt));
  SetOutput(node, 0, std::move(t));
  return Status::Ok();
}

template <DimFn F>
Status InferArith(Node& node) {
  RETURN_IF_ERROR((InferBroadcast<Kinds::kNumeric, false>(node)));
  if (IsInteger(node.input(0)->dtype())) SetKnown(node, 0, KnownBinary(node, F));
  return Status::Ok();
}

Status InferEqual(Node& node) {
  RETURN_IF_ERROR((InferBroadcast<Kinds::kAny, true>(node)));
  const DType t = node.input(0)->dtype();
  if (IsInteger(t) || t == DType::kBool) SetKnown(node, 0, KnownBinary(node, KEqual));
  return Status::Ok();
}

Status InferPow(Node& node) {
  RETURN_IF_ERROR(CheckKinds(node, 0, Kinds::kNumeric));
  RETURN_IF_ERROR(CheckKinds(node, 1, Kinds::kNumeric));
  ASSIGN_OR_RETURN(TensorType t, infer::BroadcastTypes({InType(node, 0), InType(node, 1)},
                                                       node.input(0)->dtype()));
  SetOutput(node, 0, std::move(t));
  return Status::Ok();
}

Status InferWhere(Node& node) {
  RETURN_IF_ERROR(CheckKinds(node, 0, Kinds::kBool));
  RETURN_IF_ERROR(infer::SameDType(node, {1, 2}));
  ASSIGN_OR_RETURN(TensorType t,
                   infer::BroadcastTypes({InType(node, 0), InType(node, 1), InType(node, 2)},
                                         node.input(1)->dtype()));
  SetOutput(node, 0, std::move(t));
  // Known values: select elementwise when the condition is fully known.
  auto c = infer::KnownStatic(node.input(0));
  auto x = KnownInts(node.input(1));
  auto y = KnownInts(node.input(2));
  if (c && x && y && !c->empty() && !x->empty() && !y->empty()) {
    const size_t n = std::max({c->size(), x->size(), y->size()});
    auto fits = [n](size_t s) { return s == 1 || s == n; };
    if (fits(c->size()) && fits(x->size()) && fits(y->size())) {
      std::vector<Dim> out(n);
      for (size_t i = 0; i < n; ++i) {
        auto at = [i](const auto& v) { return v[v.size() == 1 ? 0 : i]; };
        out[i] = at(*c) ? at(*x) : at(*y);
      }
      SetKnown(node, 0, std::move(out));
    }
  }
  return Status::Ok();
}

// Known ints through a cast to `to` (from a value of dtype `from`).
std::optional<std::vector<Dim>> CastKnown(const Value* in, DType to) {
  auto k = KnownInts(in);
  if (!k) return std::nullopt;
  const DType from = in->dtype();
  if (!IsInteger(to) && to != DType::kBool && !IsFloat(to)) return std::nullopt;
  std::vector<Dim> out;
  for (const Dim& d : *k) {
    if (!d.is_static()) {
      // Symbols survive int -> int casts wide enough for dims.
      const bool wide = to == DType::kInt64 || to == DType::kInt32;
      out.push_back(wide && IsInteger(from) ? d : Dim());
      continue;
    }
    const int64_t v = d.value();
    int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
    switch (to) {
      case DType::kInt32:
        lo = INT32_MIN;
        hi = INT32_MAX;
        break;
      case DType::kInt8:
        lo = INT8_MIN;
        hi = INT8_MAX;
        break;
      case DType::kUInt8:
        lo = 0;
        hi = UINT8_MAX;
        break;
      case DType::kBool:
        out.push_back(Dim(v != 0 ? 1 : 0));
        continue;
      default:
        break;
    }
    if (IsFloat(to) && (v > (int64_t{1} << 24) || v < -(int64_t{1} << 24))) {
      out.push_back(Dim());  // may not be exact in the float type
      continue;
    }
    out.push_back(v >= lo && v <= hi ? Dim(v) : Dim());
  }
  return out;
}

Status InferCast(Node& node) {
  RETURN_IF_ERROR(CheckKinds(node, 0, Kinds::kAny));
  const Attribute* to = node.attr("to");
  if (!to || to->kind() != AttrKind::kInt) {
    return InvalidArgument("Cast needs an int attribute 'to'");
  }
  auto dt = infer::DTypeFromOnnx(to->i());
  if (!dt.ok()) return Status(dt.status().code(), "Cast 'to': " + dt.status().message());
  TensorType t = node.input(0)->type();
  t.dtype = *dt;
  SetOutput(node, 0, std::move(t));
  SetKnown(node, 0, CastKnown(node.input(0), *dt));
  return Status::Ok();
}

Status InferCastLike(Node& node) {
  RETURN_IF_ERROR(CheckKinds(node, 0, Kinds::kAny));
  RETURN_IF_ERROR(CheckKinds(node, 1, Kinds::kAny));
  TensorType t = node.input(0)->type();
  const DType to = node.input(1)->dtype();
  t.dtype = to;
  SetOutput(node, 0, std::move(t));
  SetKnown(node, 0, CastKnown(node.input(0), to));
  return Status::Ok();
}

Status InferClip(Node& node) {
  RETURN_IF_ERROR(CheckKinds(node, 0, Kinds::kNumeric));
  RETURN_IF_ERROR(infer::SameDType(node, {0, 1, 2}));
  RETURN_IF_ERROR(infer::RequireScalar(node, 1, "Clip min"));
  RETURN_IF_ERROR(infer::RequireScalar(node, 2, "Clip max"));
  SetOutput(node, 0, node.input(0)->type());
  return Status::Ok();
}

Status InferDropout(Node& node) {
  RETURN_IF_ERROR(CheckKinds(node, 0, Kinds::kFloat));
  RETURN_IF_ERROR(CheckKinds(node, 1, Kinds::kFloat));
  RETURN_IF_ERROR(CheckKinds(node, 2, Kinds::kBool));
  RETURN_IF_ERROR(infer::RequireScalar(node, 1, "Dropout ratio"));
  RETURN_IF_ERROR(infer::RequireScalar(node, 2, "Dropout training_mode"));
  infer::SetDropoutOutputs(node);
  return Status::Ok();
}

Status InferGelu(Node& node) {
  RETURN_IF_ERROR(CheckKinds(node, 0, Kinds::kFloat));
  const std::string a = node.attr_string("approximate", "none");
  if (a != "none" && a != "tanh") {
    return InvalidArgument("Gelu approximate must be 'none' or 'tanh', not '" + a + "'");
  }
  SetOutput(node, 0, node.input(0)->type());
  return Status::Ok();
}

Status InferTrilu(Node& node) {
  RETURN_IF_ERROR(CheckKinds(node, 0, Kinds::kAny));
  const TensorType& x = node.input(0)->type();
  if (x.has_rank && x.rank() < 2) {
    return InvalidArgument("Trilu needs an input of rank >= 2, got rank " +
                           std::to_string(x.rank()));
  }
  if (node.input(1)) {
    RETURN_IF_ERROR(infer::RequireInt64(node, 1));
    RETURN_IF_ERROR(infer::RequireScalar(node, 1, "Trilu k"));
  }
  SetOutput(node, 0, x);
  return Status::Ok();
}

}  // namespace

void RegisterElementwiseOps(OpRegistry& r) {
  constexpr int kMany = 1 << 20;
  RegisterOp(r, "Add", 2, 2, InferArith<KAdd>);
  RegisterOp(r, "Sub", 2, 2, InferArith<KSub>);
  RegisterOp(r, "Mul", 2, 2, InferArith<KMul>);
  RegisterOp(r, "Div", 2, 2, InferArith<KDiv>);
  RegisterOp(r, "Pow", 2, 2, InferPow);
  RegisterOp(r, "Max", 1, kMany, InferBroadcast<Kinds::kNumeric, false>);
  RegisterOp(r, "Min", 1, kMany, InferBroadcast<Kinds::kNumeric, false>);
  RegisterOp(r, "Sum", 1, kMany, InferBroadcast<Kinds::kFloat, false>);
  RegisterOp(r, "Mean", 1, kMany, InferBroadcast<Kinds::kFloat, false>);
  RegisterOp(r, "Equal", 2, 2, InferEqual);
  for (const char* op : {"Less", "Greater", "LessOrEqual", "GreaterOrEqual"}) {
    RegisterOp(r, op, 2, 2, InferBroadcast<Kinds::kNumeric, true>);
  }
  for (const char* op : {"And", "Or", "Xor"})
    RegisterOp(r, op, 2, 2, InferBroadcast<Kinds::kBool, true>);
  RegisterOp(r, "Not", 1, 1, InferUnary<Kinds::kBool>);
  RegisterOp(r, "Where", 3, 3, InferWhere);
  for (const char* op :
       {"LeakyRelu", "Elu", "Selu", "Tanh", "Sigmoid", "HardSigmoid", "Softplus", "Erf", "Sqrt",
        "Exp", "Log", "Reciprocal", "Floor", "Ceil", "Mish", "Sin", "Cos"}) {
    RegisterOp(r, op, 1, 1, InferUnary<Kinds::kFloat>);
  }
  RegisterOp(r, "Relu", 1, 1, InferUnary<Kinds::kSignedNumeric>);
  RegisterOp(r, "Neg", 1, 1, InferNeg);
  RegisterOp(r, "Abs", 1, 1, InferUnary<Kinds::kNumeric>);
  RegisterOp(r, "Sign", 1, 1, InferUnary<Kinds::kNumeric>);
  RegisterOp(r, "Identity", 1, 1, InferIdentity);
  RegisterOp(r, "IsNaN", 1, 1, InferUnaryToBool<Kinds::kFloat>);
  RegisterOp(r, "IsInf", 1, 1, InferUnaryToBool<Kinds::kFloat>);
  RegisterOp(r, "Cast", 1, 1, InferCast);
  RegisterOp(r, "CastLike", 2, 2, InferCastLike);
  RegisterOp(r, "Clip", 1, 3, InferClip);
  RegisterOp(r, "Dropout", 1, 3, InferDropout, 1, 2);
  RegisterOp(r, "Trilu", 1, 2, InferTrilu);
  RegisterOp(r, "Gelu", 1, 1, InferGelu);
}

}  // namespace ampc
