// com.ampc backward ops used by gradient rules (frontend/training/gradients*.cc), for backward
// passes that standard ONNX ops express only slowly (a scatter-add, col2im) or not at all:
//
//   ConvGrad(dY, X, W) -> dX, dW[, dB]          forward Conv attributes copied
//   MaxPoolGrad(dY, X) -> dX                     forward MaxPool attributes copied; the
//                                                gradient goes to the first maximum of a window
//   AveragePoolGrad(dY, x_shape) -> dX           forward AveragePool attributes copied
//   BatchNormalizationGrad(dY, X, scale) -> dX, dScale, dBias
//                                                training-mode batch statistics, `epsilon`
//   GatherGrad(dY, indices, data_shape) -> dData scatter-add of dY into zeros, Gather's `axis`
//   ReluGrad(dY, X) -> dX      dY where X > 0, else 0 (one pass instead of Greater + Where)
//   ReluGrad(dY, X) -> dX  dY where X > 0, else 0 (one pass instead of Greater + Where)
//   Dropout(data, ratio, step) -> output[, mask] training-mode Dropout whose mask is drawn from
//                                                (`seed`, step, element index) by a counter-based
//                                                RNG: reproducible per step, new each step
//
// Shape inputs are 1-D i64 tensors; the output shape comes from their known values.
#include <string>

#include "ir/op_registry.h"
#include "ir/ops/infer_util.h"

namespace ampc {
namespace {

using infer::DimsToString;
using infer::SetOutput;

std::string S(int64_t v) { return std::to_string(v); }

// Fails unless `t` has unknown rank or rank `want`.
Status RequireRank(const TensorType& t, int64_t want, const char* what) {
  if (t.has_rank && t.rank() != want) {
    return InvalidArgument(std::string(what) + " must have rank " + S(want) + ", got " +
                           DimsToString(t.dims));
  }
  return Status::Ok();
}

// The type described by shape input i (dims from its known values) with dtype dt.
StatusOr<TensorType> TypeFromShapeInput(const Node& node, int i, DType dt, const char* what) {
  RETURN_IF_ERROR(infer::CheckShapeInput(node, i, what));
  auto known = infer::KnownInts(node.input(i));
  if (!known) return infer::RankFromLength(node, i, dt);
  for (const Dim& d : *known) {
    if (d.is_static() && (d.value() < 0 || d.value() > kMaxDim)) {
      return InvalidArgument(std::string(what) + " has invalid entry " + d.ToString());
    }
  }
  return TensorType(dt, *known);
}

// dY has X's rank and agrees on N and C (pools) or on N (Conv).
Status CheckGradOfWindowOp(const TensorType& dy, const TensorType& x, bool same_channels) {
  if (!dy.has_rank || !x.has_rank) return Status::Ok();
  if (dy.rank() != x.rank() || x.rank() < 3) {
    return InvalidArgument("dY " + DimsToString(dy.dims) + " and X " + DimsToString(x.dims) +
                           " must have the same rank >= 3");
  }
  RETURN_IF_ERROR(
      infer::MergeDims(dy.dims[0], x.dims[0], "batch sizes of dY and X differ").status());
  if (same_channels) {
    RETURN_IF_ERROR(
        infer::MergeDims(dy.dims[1], x.dims[1], "channels of dY and X differ").status());
  }
  return Status::Ok();
}

Status InferConvGrad(Node& node) {
  for (int i = 0; i < 3; ++i) RETURN_IF_ERROR(infer::RequireFloat(node, i));
  RETURN_IF_ERROR(infer::SameDType(node, {0, 1, 2}));
  const TensorType& dy = node.input(0)->type();
  const TensorType& x = node.input(1)->type();
  const TensorType& w = node.input(2)->type();
  RETURN_IF_ERROR(CheckGradOfWindowOp(dy, x, false));
  if (w.has_rank && x.has_rank && w.rank() != x.rank()) {
    return InvalidArgument("W " + DimsToString(w.dims) + " and X " + DimsToString(x.dims) +
                           " must have the same rank");
  }
  const int64_t group = node.attr_int("group", 1);
  if (group < 1) return InvalidArgument("group must be >= 1, got " + S(group));
  if (w.has_rank && w.rank() >= 3) {
    if (dy.has_rank && dy.rank() == w.rank()) {
      RETURN_IF_ERROR(
          infer::MergeDims(dy.dims[1], w.dims[0], "dY channels differ from W's").status());
    }
    if (x.has_rank && x.dims[1].is_static() && w.dims[1].is_static() &&
        x.dims[1].value() != w.dims[1].value() * group) {
      return InvalidArgument("X has " + x.dims[1].ToString() + " channels but W expects " +
                             w.dims[1].ToString() + " x group " + S(group));
    }
  }
  SetOutput(node, 0, x);
  SetOutput(node, 1, w);
  Dim m = w.has_rank && w.rank() >= 1 ? w.dims[0] : Dim();
  SetOutput(node, 2, TensorType(w.dtype, {m}));
  return Status::Ok();
}

Status InferMaxPoolGrad(Node& node) {
  RETURN_IF_ERROR(infer::RequireFloat(node, 0));
  RETURN_IF_ERROR(infer::SameDType(node, {0, 1}));
  RETURN_IF_ERROR(CheckGradOfWindowOp(node.input(0)->type(), node.input(1)->type(), true));
  if (node.attr_ints("kernel_shape").empty()) {
    return InvalidArgument("MaxPoolGrad needs the attribute 'kernel_shape'");
  }
  SetOutput(node, 0, node.input(1)->type());
  return Status::Ok();
}

Status InferAveragePoolGrad(Node& node) {
  RETURN_IF_ERROR(infer::RequireFloat(node, 0));
  if (node.attr_ints("kernel_shape").empty()) {
    return InvalidArgument("AveragePoolGrad needs the attribute 'kernel_shape'");
  }
  ASSIGN_OR_RETURN(TensorType x,
                   TypeFromShapeInput(node, 1, node.input(0)->dtype(), "AveragePoolGrad x_shape"));
  RETURN_IF_ERROR(CheckGradOfWindowOp(node.input(0)->type(), x, true));
  SetOutput(node, 0, std::move(x));
  return Status::Ok();
}

Status InferBatchNormGrad(Node& node) {
  for (int i = 0; i < 3; ++i) RETURN_IF_ERROR(infer::RequireFloat(node, i));
  RETURN_IF_ERROR(infer::SameDType(node, {0, 1}));
  const TensorType& dy = node.input(0)->type();
  const TensorType& x = node.input(1)->type();
  const TensorType& scale = node.input(2)->type();
  if (x.has_rank && x.rank() < 2) {
    return InvalidArgument("X must have rank >= 2, got " + DimsToString(x.dims));
  }
  if (dy.has_rank && x.has_rank) {
    if (dy.rank() != x.rank()) {
      return InvalidArgument("dY " + DimsToString(dy.dims) + " and X " + DimsToString(x.dims) +
                             " differ in rank");
    }
    for (int64_t i = 0; i < x.rank(); ++i) {
      RETURN_IF_ERROR(infer::MergeDims(dy.dims[i], x.dims[i], "dY and X shapes differ").status());
    }
  }
  RETURN_IF_ERROR(RequireRank(scale, 1, "scale"));
  Dim c = x.has_rank ? x.dims[1] : Dim();
  if (scale.has_rank) {
    ASSIGN_OR_RETURN(c, infer::MergeDims(c, scale.dims[0], "scale size differs from channels"));
  }
  SetOutput(node, 0, x);
  SetOutput(node, 1, TensorType(scale.dtype, {c}));
  SetOutput(node, 2, TensorType(scale.dtype, {c}));
  return Status::Ok();
}

// ReluGrad, GeluGrad, MishGrad: dX = dY * f'(X), all three of X's type and shape.
Status InferActivationGrad(Node& node) {
  RETURN_IF_ERROR(infer::RequireFloat(node, 0));
  RETURN_IF_ERROR(infer::SameDType(node, {0, 1}));
  const TensorType& dy = node.input(0)->type();
  const TensorType& x = node.input(1)->type();
  if (dy.has_rank && x.has_rank) {
    if (dy.rank() != x.rank()) return InvalidArgument(node.op_type() + ": dY and X differ in rank");
    for (int64_t i = 0; i < dy.rank(); ++i) {
      RETURN_IF_ERROR(
          infer::MergeDims(dy.dims[i], x.dims[i], node.op_type() + " dY and X").status());
    }
  }
  SetOutput(node, 0, x.has_rank ? x : dy);
  return Status::Ok();
}

Status InferGatherGrad(Node& node) {
  RETURN_IF_ERROR(infer::RequireFloat(node, 0));
  RETURN_IF_ERROR(infer::RequireIndexType(node, 1));
  ASSIGN_OR_RETURN(TensorType data,
                   TypeFromShapeInput(node, 2, node.input(0)->dtype(), "GatherGrad data_shape"));
  const TensorType& dy = node.input(0)->type();
  const TensorType& idx = node.input(1)->type();
  if (data.has_rank) {
    if (data.rank() == 0) return InvalidArgument("GatherGrad needs data of rank >= 1");
    ASSIGN_OR_RETURN(int64_t axis, infer::NormalizeAxis(node.attr_int("axis", 0), data.rank()));
    if (dy.has_rank && idx.has_rank && dy.rank() != data.rank() - 1 + idx.rank()) {
      return InvalidArgument("dY " + DimsToString(dy.dims) + " does not have the rank of a Gather" +
                             " output for data " + DimsToString(data.dims) + ", indices " +
                             DimsToString(idx.dims) + " and axis " + S(axis));
    }
  }
  SetOutput(node, 0, std::move(data));
  return Status::Ok();
}

Status InferAmpcDropout(Node& node) {
  for (int i = 0; i < 3; ++i) {
    if (!node.input(i)) return InvalidArgument("input " + S(i) + " (data, ratio, step) is missing");
  }
  RETURN_IF_ERROR(infer::RequireFloat(node, 0));
  RETURN_IF_ERROR(infer::RequireFloat(node, 1));
  RETURN_IF_ERROR(infer::RequireInt64(node, 2));
  RETURN_IF_ERROR(infer::RequireScalar(node, 1, "Dropout ratio"));
  RETURN_IF_ERROR(infer::RequireScalar(node, 2, "Dropout step"));
  infer::SetDropoutOutputs(node);
  return Status::Ok();
}

}  // namespace

void RegisterGradOps(OpRegistry& r) {
  RegisterOp(r, "ConvGrad", 3, 3, InferConvGrad, 1, 3, kAmpcDomain);
  r.FindMutable(kAmpcDomain, "ConvGrad")->optional_first_output = true;  // dX
  RegisterOp(r, "MaxPoolGrad", 2, 2, InferMaxPoolGrad, 1, 1, kAmpcDomain);
  RegisterOp(r, "AveragePoolGrad", 2, 2, InferAveragePoolGrad, 1, 1, kAmpcDomain);
  RegisterOp(r, "BatchNormalizationGrad", 3, 3, InferBatchNormGrad, 3, 3, kAmpcDomain);
  RegisterOp(r, "GatherGrad", 3, 3, InferGatherGrad, 1, 1, kAmpcDomain);
  RegisterOp(r, "ReluGrad", 2, 2, InferActivationGrad, 1, 1, kAmpcDomain);
  RegisterOp(r, "GeluGrad", 2, 2, InferActivationGrad, 1, 1, kAmpcDomain);  // {approximate}
  RegisterOp(r, "MishGrad", 2, 2, InferActivationGrad, 1, 1, kAmpcDomain);
  RegisterOp(r, "Dropout", 3, 3, InferAmpcDropout, 1, 2, kAmpcDomain);
}

}  // namespace ampc
