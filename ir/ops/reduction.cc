// Type and shape inference for reductions. Every Reduce* op takes axes as an optional input (the
// form of opset 18; ReduceSum's since 13); the others also take the `axes` attribute of older
// opsets, which the importer keeps as it is (never both). Empty or absent axes reduce every axis,
// unless noop_with_empty_axes. ReduceMax/ReduceMin also reduce bool tensors (opset 20). Also
// ArgMax ArgMin CumSum.
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

Status InferReduce(Node& node) {
  const bool bool_ok = node.op_type() == "ReduceMax" || node.op_type() == "ReduceMin";
  if (!(bool_ok && node.input(0) && node.input(0)->dtype() == DType::kBool)) {
    RETURN_IF_ERROR(infer::RequireNumeric(node, 0));
  }
  const Attribute* attr = node.attr("axes");
  if (attr && attr->kind() != AttrKind::kInts) {
    return InvalidArgument("attribute 'axes' must be a list of ints");
  }
  if (attr && node.input(1)) {
    return InvalidArgument("axes are given both as input 1 and as an attribute");
  }
  if (attr && node.op_type() == "ReduceSum") {
    return InvalidArgument("ReduceSum takes axes as input 1 (opset 13), not as an attribute");
  }
  if (node.input(1)) RETURN_IF_ERROR(infer::RequireInt64(node, 1));
  const TensorType& x = node.input(0)->type();
  const bool keep = node.attr_int("keepdims", 1) != 0;
  const bool noop = node.attr_int("noop_with_empty_axes", 0) != 0;
  std::optional<std::vector<int64_t>> axes;
  if (attr) {
    axes = attr->ints();
  } else if (!node.input(1) || infer::StaticLength(node.input(1)) == 0) {
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
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                         "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare", "ReduceL1"}) {
    RegisterOp(r, op, 1, 2, InferReduce);
  }
  RegisterOp(r, "ArgMax", 1, 1, InferArgMinMax);
  RegisterOp(r, "ArgMin", 1, 1, InferArgMinMax);
  RegisterOp(r, "CumSum", 2, 2, InferCumSum);
}

}  // namespace ampc
