// Type and shape inference for reductions (ONNX opset 17): ReduceSum takes axes as an optional
// input, the other Reduce* ops take an `axes` attribute; empty or absent axes reduce every axis
// (ReduceSum: unless noop_with_empty_axes). Also ArgMax ArgMin CumSum.
#include "ir/op_registry.h"
#include "ir/ops/infer_util.h"

namespace ampc {
namespace {

using infer::SetOutput;

// x reduced over `axes` (normalized; empty = all axes).
TensorType Reduced(const TensorType& x, const std::vector<int64_t>& axes, bool keep, DType dt) {
  std::vector<bool> reduce(x.dims.size(), axes.empty());
  for (int64_t a : axes) reduce[a] = true;
  std::vector<Dim> dims;
  for (size_t i = 0; i < x.dims.size(); ++i) {
    if (!reduce[i]) {
      dims.push_back(x.dims[i]);
    } else if (keep) {
      dims.push_back(Dim(1));
    }
  }
  return TensorType(dt, std::move(dims));
}

Status InferReduceWithAttr(Node& node) {
  RETURN_IF_ERROR(infer::RequireNumeric(node, 0));
  const TensorType& x = node.input(0)->type();
  const bool keep = node.attr_int("keepdims", 1) != 0;
  const Attribute* a = node.attr("axes");
  if (a && a->kind() != AttrKind::kInts) {
    return InvalidArgument("attribute 'axes' must be a list of ints");
  }
  if (!x.has_rank) {
    SetOutput(node, 0, TensorType::UnknownShape(x.dtype));
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> axes,
                   infer::NormalizeAxes(a ? a->ints() : std::vector<int64_t>{}, x.rank()));
  SetOutput(node, 0, Reduced(x, axes, keep, x.dtype));
  return Status::Ok();
}

Status InferReduceSum(Node& node) {
  RETURN_IF_ERROR(infer::RequireNumeric(node, 0));
  if (node.input(1)) RETURN_IF_ERROR(infer::RequireInt64(node, 1));
  const TensorType& x = node.input(0)->type();
  const bool keep = node.attr_int("keepdims", 1) != 0;
  const bool noop = node.attr_int("noop_with_empty_axes", 0) != 0;
  std::optional<std::vector<int64_t>> axes;
  if (!node.input(1) || infer::StaticLength(node.input(1)) == 0) {
    axes.emplace();
  } else {
    axes = infer::KnownStatic(node.input(1));
  }
  if (axes && axes->empty() && noop) {
    SetOutput(node, 0, x);
    return Status::Ok();
  }
  if (!x.has_rank) {
    SetOutput(node, 0, TensorType::UnknownShape(x.dtype));
    return Status::Ok();
  }
  if (!axes) {
    auto len = infer::StaticLength(node.input(1));
    if (keep) {
      SetOutput(node, 0, TensorType(x.dtype, std::vector<Dim>(x.rank())));
    } else if (len && *len <= x.rank()) {
      SetOutput(node, 0, TensorType(x.dtype, std::vector<Dim>(x.rank() - *len)));
    } else {
      SetOutput(node, 0, TensorType::UnknownShape(x.dtype));
    }
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> norm, infer::NormalizeAxes(*axes, x.rank()));
  SetOutput(node, 0, Reduced(x, norm, keep, x.dtype));
  return Status::Ok();
}

Status InferArgMinMax(Node& node) {
  RETURN_IF_ERROR(infer::RequireNumeric(node, 0));
  const TensorType& x = node.input(0)->type();
  if (!x.has_rank) {
    SetOutput(node, 0, TensorType::UnknownShape(DType::kInt64));
    return Status::Ok();
  }
  if (x.rank() == 0) return InvalidArgument(node.op_type() + " needs an input of rank >= 1");
  ASSIGN_OR_RETURN(int64_t axis, infer::NormalizeAxis(node.attr_int("axis", 0), x.rank()));
  SetOutput(node, 0, Reduced(x, {axis}, node.attr_int("keepdims", 1) != 0, DType::kInt64));
  return Status::Ok();
}

Status InferCumSum(Node& node) {
  RETURN_IF_ERROR(infer::RequireNumeric(node, 0));
  RETURN_IF_ERROR(infer::RequireIndexType(node, 1));
  const TensorType& x = node.input(0)->type();
  const TensorType& a = node.input(1)->type();
  if (a.has_rank && !(a.rank() == 0 || (a.rank() == 1 && a.dims[0] == Dim(1)))) {
    return InvalidArgument("CumSum axis must be a scalar, got " + infer::DimsToString(a.dims));
  }
  auto axis = infer::KnownStatic(node.input(1));
  if (axis && axis->size() == 1 && x.has_rank) {
    RETURN_IF_ERROR(infer::NormalizeAxis((*axis)[0], x.rank()).status());
  }
  SetOutput(node, 0, x);
  return Status::Ok();
}

}  // namespace

void RegisterReductionOps(OpRegistry& r) {
  RegisterOp(r, "ReduceSum", 1, 2, InferReduceSum);
  for (const char* op : {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2",
                         "ReduceLogSumExp", "ReduceSumSquare", "ReduceL1"}) {
    RegisterOp(r, op, 1, 1, InferReduceWithAttr);
  }
  RegisterOp(r, "ArgMax", 1, 1, InferArgMinMax);
  RegisterOp(r, "ArgMin", 1, 1, InferArgMinMax);
  RegisterOp(r, "CumSum", 2, 2, InferCumSum);
}

}  // namespace ampc
