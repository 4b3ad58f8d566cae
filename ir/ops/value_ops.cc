// Type and shape inference, with compile-time data propagation (Value::known_ints), for the ops
// that make values rather than move them: Shape Size Constant ConstantOfShape Range. Their known
// values let Shape -> Gather -> Concat -> Reshape chains resolve to symbolic shapes.
#include <algorithm>

#include "ir/op_registry.h"
#include "ir/ops/infer_util.h"

namespace ampc {
namespace {

using infer::CheckShapeInput;
using infer::DimsToString;
using infer::KnownInts;
using infer::RankFromLength;
using infer::SetKnown;
using infer::SetOutput;

Status InferShape(Node& node) {
  RETURN_IF_ERROR(infer::RequireTyped(node, 0));
  const TensorType& x = node.input(0)->type();
  if (!x.has_rank) {
    SetOutput(node, 0, TensorType(DType::kInt64, {Dim()}));
    return Status::Ok();
  }
  const int64_t r = x.rank();
  auto clampi = [r](int64_t v) { return std::clamp(v < 0 ? v + r : v, int64_t{0}, r); };
  const int64_t s = clampi(node.attr_int("start", 0));
  const int64_t e = clampi(node.attr_int("end", r));
  std::vector<Dim> vals;
  for (int64_t i = s; i < e; ++i) vals.push_back(x.dims[i]);
  SetOutput(node, 0, TensorType(DType::kInt64, {Dim(static_cast<int64_t>(vals.size()))}));
  SetKnown(node, 0, std::move(vals));
  return Status::Ok();
}

Status InferSize(Node& node) {
  RETURN_IF_ERROR(infer::RequireTyped(node, 0));
  SetOutput(node, 0, TensorType(DType::kInt64, {}));
  const TensorType& x = node.input(0)->type();
  if (x.has_rank) {
    auto n = infer::DimProduct(x.dims);
    if (n.ok()) SetKnown(node, 0, std::vector<Dim>{*n});
  }
  return Status::Ok();
}

Status InferConstant(Node& node) {
  if (node.attrs().size() != 1) {
    return InvalidArgument("Constant needs exactly one value attribute, has " +
                           std::to_string(node.attrs().size()));
  }
  const auto& [key, a] = *node.attrs().begin();
  Tensor t;
  if (key == "value" && a.kind() == AttrKind::kTensor) {
    t = a.t();
  } else if (key == "value_float" && a.kind() == AttrKind::kFloat) {
    t = Tensor::FromFloats({a.f()}, {});
  } else if (key == "value_floats" && a.kind() == AttrKind::kFloats) {
    t = Tensor::FromFloats(a.floats(), {static_cast<int64_t>(a.floats().size())});
  } else if (key == "value_int" && a.kind() == AttrKind::kInt) {
    t = Tensor::ScalarInt64(a.i());
  } else if (key == "value_ints" && a.kind() == AttrKind::kInts) {
    t = Tensor::FromInt64s(a.ints(), {static_cast<int64_t>(a.ints().size())});
  } else if (key == "value" || key.rfind("value_", 0) == 0 || key == "sparse_value") {
    return Unimplemented("Constant attribute '" + key + "' of kind " + AttrKindName(a.kind()) +
                         " is not supported");
  } else {
    return InvalidArgument("Constant has unexpected attribute '" + key + "'");
  }
  const TensorType type = t.type();
  RETURN_IF_ERROR(infer::ValidateDims(type.dims, "Constant value"));
  if (t.dtype() == DType::kUndefined) return InvalidArgument("Constant value has no data type");
  SetOutput(node, 0, type);
  if ((IsInteger(t.dtype()) || t.dtype() == DType::kBool) && infer::IsSmall(type)) {
    if (auto v = t.AsInt64s()) SetKnown(node, 0, std::vector<Dim>(v->begin(), v->end()));
  }
  return Status::Ok();
}

Status InferConstantOfShape(Node& node) {
  RETURN_IF_ERROR(CheckShapeInput(node, 0, "ConstantOfShape input"));
  DType dt = DType::kFloat32;
  std::optional<int64_t> fill = 0;
  if (const Attribute* a = node.attr("value")) {
    if (a->kind() != AttrKind::kTensor || a->t().NumElements() != 1) {
      return InvalidArgument("ConstantOfShape 'value' must be a one-element tensor");
    }
    dt = a->t().dtype();
    auto v = a->t().AsInt64s();
    fill = v ? std::optional<int64_t>((*v)[0]) : std::nullopt;
  }
  auto shape = KnownInts(node.input(0));
  if (!shape) {
    SetOutput(node, 0, RankFromLength(node, 0, dt));
    return Status::Ok();
  }
  RETURN_IF_ERROR(infer::ValidateDims(*shape, "ConstantOfShape shape"));
  TensorType out(dt, *shape);
  SetOutput(node, 0, out);
  auto n = out.NumElements();
  if (fill && (IsInteger(dt) || dt == DType::kBool) && n && infer::IsSmall(out)) {
    SetKnown(node, 0, std::vector<Dim>(*n, Dim(*fill)));
  }
  return Status::Ok();
}

Status InferRange(Node& node) {
  for (int i = 0; i < 3; ++i) {
    RETURN_IF_ERROR(infer::RequireNumeric(node, i));
    const TensorType& t = node.input(i)->type();
    if (t.has_rank && !(t.rank() == 0 || (t.rank() == 1 && t.dims[0] == Dim(1)))) {
      return InvalidArgument("Range input " + std::to_string(i) + " must be a scalar, got " +
                             DimsToString(t.dims));
    }
  }
  RETURN_IF_ERROR(infer::SameDType(node, {0, 1, 2}));
  const DType dt = node.input(0)->dtype();
  auto s = KnownInts(node.input(0)), l = KnownInts(node.input(1)), d = KnownInts(node.input(2));
  TensorType out(dt, {Dim()});
  if (s && l && d && s->size() == 1 && l->size() == 1 && d->size() == 1) {
    const Dim start = (*s)[0], limit = (*l)[0], delta = (*d)[0];
    if (delta == Dim(0)) return InvalidArgument("Range delta is 0");
    if (start.is_static() && limit.is_static() && delta.is_static()) {
      int64_t diff;
      if (__builtin_sub_overflow(limit.value(), start.value(), &diff)) {
        return InvalidArgument("Range length overflows");
      }
      const int64_t step = delta.value();
      int64_t n = 0;
      if ((diff > 0 && step > 0) || (diff < 0 && step < 0)) {
        n = step > 0 ? (diff - 1) / step + 1 : (diff + 1) / step + 1;
      }
      if (n > kMaxDim) return InvalidArgument("Range has " + std::to_string(n) + " elements");
      out.dims[0] = Dim(n);
      SetOutput(node, 0, out);
      if (n <= infer::kMaxKnownInts) {
        std::vector<Dim> vals;
        for (int64_t i = 0; i < n; ++i) vals.push_back(Dim(start.value() + i * step));
        SetKnown(node, 0, std::move(vals));
      }
      return Status::Ok();
    }
    if (start == Dim(0) && delta == Dim(1)) out.dims[0] = limit;  // arange(n)
  }
  SetOutput(node, 0, out);
  return Status::Ok();
}

}  // namespace

void RegisterValueOps(OpRegistry& r) {
  RegisterOp(r, "Shape", 1, 1, InferShape);
  RegisterOp(r, "Size", 1, 1, InferSize);
  RegisterOp(r, "Constant", 0, 0, InferConstant);
  RegisterOp(r, "ConstantOfShape", 1, 1, InferConstantOfShape);
  RegisterOp(r, "Range", 3, 3, InferRange);
}

}  // namespace ampc
