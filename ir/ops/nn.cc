// Type and shape inference for neural-network ops: MatMul Gemm Conv ConvTranspose pooling
// BatchNormalization LayerNormalization Softmax LogSoftmax Einsum and the two loss ops.
// Output sizes follow the formulas of the ONNX operator spec (opset 17).
#include <algorithm>
#include <map>

#include "ir/limits.h"
#include "ir/op_registry.h"
#include "ir/ops/infer_util.h"

namespace ampc {
namespace {

using infer::DimsToString;
using infer::InType;
using infer::MergeDims;
using infer::SetOutput;

std::string S(int64_t v) { return std::to_string(v); }

Status InferMatMul(Node& node) {
  RETURN_IF_ERROR(infer::RequireNumeric(node, 0));
  RETURN_IF_ERROR(infer::RequireNumeric(node, 1));
  RETURN_IF_ERROR(infer::SameDType(node, {0, 1}));
  const TensorType& a = node.input(0)->type();
  const TensorType& b = node.input(1)->type();
  if ((a.has_rank && a.rank() == 0) || (b.has_rank && b.rank() == 0)) {
    return InvalidArgument("MatMul does not accept scalar inputs");
  }
  // com.ampc::MatMul: transA / transB swap the last two axes of A / B first (the gradients'
  // products, which would otherwise materialise a Transpose).
  const bool ta = node.attr_int("transA", 0) != 0, tb = node.attr_int("transB", 0) != 0;
  if ((ta && a.has_rank && a.rank() < 2) || (tb && b.has_rank && b.rank() < 2)) {
    return InvalidArgument("MatMul: transA / transB need an input of rank >= 2");
  }
  if (!a.has_rank || !b.has_rank) {
    SetOutput(node, 0, TensorType::UnknownShape(a.dtype));
    return Status::Ok();
  }
  std::vector<Dim> ad = a.dims, bd = b.dims;
  const bool pa = ad.size() == 1, pb = bd.size() == 1;
  if (pa) ad.insert(ad.begin(), Dim(1));
  if (pb) bd.push_back(Dim(1));
  if (ta) std::swap(ad[ad.size() - 1], ad[ad.size() - 2]);
  if (tb) std::swap(bd[bd.size() - 1], bd[bd.size() - 2]);
  RETURN_IF_ERROR(MergeDims(ad.back(), bd[bd.size() - 2], "inner dimensions differ").status());
  ASSIGN_OR_RETURN(std::vector<Dim> dims,
                   infer::BroadcastShapes({ad.begin(), ad.end() - 2}, {bd.begin(), bd.end() - 2}));
  if (!pa) dims.push_back(ad[ad.size() - 2]);
  if (!pb) dims.push_back(bd.back());
  SetOutput(node, 0, TensorType(a.dtype, std::move(dims)));
  return Status::Ok();
}

// Dims of a rank-2 input, or two unknown dims when its rank is unknown.
StatusOr<std::vector<Dim>> Matrix(const Node& node, int i, const char* name) {
  const TensorType& t = node.input(i)->type();
  if (!t.has_rank) return std::vector<Dim>(2);
  if (t.rank() != 2) {
    return InvalidArgument(std::string("Gemm input ") + name + " must be 2-D, got " +
                           DimsToString(t.dims));
  }
  return t.dims;
}

Status InferGemm(Node& node) {
  for (int i = 0; i < 3; ++i) RETURN_IF_ERROR(infer::RequireNumeric(node, i));
  RETURN_IF_ERROR(infer::SameDType(node, {0, 1, 2}));
  ASSIGN_OR_RETURN(std::vector<Dim> a, Matrix(node, 0, "A"));
  ASSIGN_OR_RETURN(std::vector<Dim> b, Matrix(node, 1, "B"));
  const bool ta = node.attr_int("transA", 0) != 0, tb = node.attr_int("transB", 0) != 0;
  const Dim m = a[ta ? 1 : 0], n = b[tb ? 0 : 1];
  RETURN_IF_ERROR(MergeDims(a[ta ? 0 : 1], b[tb ? 1 : 0], "inner dimensions differ").status());
  std::vector<Dim> out = {m, n};
  if (const TensorType* c = InType(node, 2); c && c->has_rank) {
    RETURN_IF_ERROR(infer::CheckUnidirectional(out, c->dims, "Gemm C"));
  }
  SetOutput(node, 0, TensorType(node.input(0)->dtype(), std::move(out)));
  return Status::Ok();
}

// Window geometry shared by Conv and the pools.
struct Window {
  int64_t n = 0;  // spatial rank
  std::vector<Dim> kernel;
  std::vector<int64_t> strides, dilations, pads;
  std::string auto_pad;
  bool ceil_mode = false;
};

StatusOr<Window> ReadWindow(const Node& node, int64_t n, std::vector<Dim> kernel_from_w,
                            bool kernel_required) {
  Window w;
  w.n = n;
  if (node.attr("kernel_shape")) {
    ASSIGN_OR_RETURN(std::vector<int64_t> k, infer::IntsAttrOfLength(node, "kernel_shape", n, 1));
    for (size_t i = 0; i < k.size(); ++i) {
      if (k[i] < 1 || k[i] > kMaxDim)
        return InvalidArgument("kernel_shape has invalid entry " + S(k[i]));
      if (!kernel_from_w.empty() && kernel_from_w[i].is_static() &&
          kernel_from_w[i].value() != k[i]) {
        return InvalidArgument("kernel_shape " + infer::IntsToString(k) +
                               " does not match the weight's spatial dims " +
                               DimsToString(kernel_from_w));
      }
      w.kernel.push_back(Dim(k[i]));
    }
  } else if (kernel_required) {
    return InvalidArgument(node.op_type() + " needs the attribute 'kernel_shape'");
  } else {
    w.kernel = kernel_from_w.empty() ? std::vector<Dim>(n) : kernel_from_w;
    for (const Dim& k : w.kernel) {
      if (k.is_static() && k.value() < 1) {
        return InvalidArgument("weight has an empty kernel " + DimsToString(w.kernel));
      }
    }
  }
  ASSIGN_OR_RETURN(w.strides, infer::IntsAttrOfLength(node, "strides", n, 1));
  ASSIGN_OR_RETURN(w.dilations, infer::IntsAttrOfLength(node, "dilations", n, 1));
  ASSIGN_OR_RETURN(w.pads, infer::IntsAttrOfLength(node, "pads", 2 * n, 0));
  for (int64_t v : w.strides) {
    if (v < 1 || v > kMaxDim) return InvalidArgument("strides has invalid entry " + S(v));
  }
  for (int64_t v : w.dilations) {
    if (v < 1 || v > kMaxDim) return InvalidArgument("dilations has invalid entry " + S(v));
  }
  for (int64_t v : w.pads) {
    if (v < 0 || v > kMaxDim) return InvalidArgument("pads has invalid entry " + S(v));
  }
  w.auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (w.auto_pad != "NOTSET" && w.auto_pad != "SAME_UPPER" && w.auto_pad != "SAME_LOWER" &&
      w.auto_pad != "VALID") {
    return InvalidArgument("auto_pad '" + w.auto_pad + "' is not NOTSET, SAME_UPPER, " +
                           "SAME_LOWER or VALID");
  }
  w.ceil_mode = node.attr_int("ceil_mode", 0) != 0;
  return w;
}

// Output size of spatial dim i for a sliding window over `in`.
StatusOr<Dim> WindowOut(const Window& w, int64_t i, const Dim& in) {
  const int64_t s = w.strides[i];
  if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") {
    if (in.is_static()) return Dim((in.value() + s - 1) / s);
    return s == 1 ? in : Dim();
  }
  const Dim& k = w.kernel[i];
  if (!k.is_static()) return Dim();
  ASSIGN_OR_RETURN(int64_t ek, infer::CheckedMul(k.value() - 1, w.dilations[i]));
  ek += 1;
  const bool valid = w.auto_pad == "VALID";
  const int64_t pb = valid ? 0 : w.pads[i], pe = valid ? 0 : w.pads[i + w.n];
  if (!in.is_static()) return s == 1 && pb + pe == ek - 1 ? in : Dim();
  ASSIGN_OR_RETURN(int64_t padded, infer::CheckedAdd(in.value(), pb + pe));
  if (padded < ek) {
    return InvalidArgument("spatial dim " + S(i) + ": window of size " + S(ek) +
                           " is larger than the padded input of size " + S(padded));
  }
  int64_t out = w.ceil_mode ? (padded - ek + s - 1) / s + 1 : (padded - ek) / s + 1;
  // As in PyTorch and onnxruntime, the last window must start inside the input or left pad.
  if (w.ceil_mode && (out - 1) * s >= in.value() + pb) --out;
  return Dim(out);
}

Status RequireRankAtLeast3(const TensorType& t, const Node& node, const char* what) {
  if (t.has_rank && t.rank() < 3) {
    return InvalidArgument(node.op_type() + " " + what +
                           " must have rank >= 3 (N, C, spatial...), got " + DimsToString(t.dims));
  }
  return Status::Ok();
}

Status InferConv(Node& node) {
  RETURN_IF_ERROR(infer::RequireFloat(node, 0));
  RETURN_IF_ERROR(infer::SameDType(node, {0, 1, 2}));
  const TensorType& x = node.input(0)->type();
  const TensorType& wt = node.input(1)->type();
  RETURN_IF_ERROR(RequireRankAtLeast3(x, node, "input X"));
  RETURN_IF_ERROR(RequireRankAtLeast3(wt, node, "weight W"));
  if (x.has_rank && wt.has_rank && x.rank() != wt.rank()) {
    return InvalidArgument("X has rank " + S(x.rank()) + " but W has rank " + S(wt.rank()));
  }
  if (!x.has_rank && !wt.has_rank) {
    SetOutput(node, 0, TensorType::UnknownShape(x.dtype));
    return Status::Ok();
  }
  const std::vector<Dim> xd = x.has_rank ? x.dims : std::vector<Dim>(wt.rank());
  const std::vector<Dim> wd = wt.has_rank ? wt.dims : std::vector<Dim>(x.rank());
  const int64_t n = static_cast<int64_t>(xd.size()) - 2;
  const int64_t group = node.attr_int("group", 1);
  if (group < 1) return InvalidArgument("group must be >= 1, got " + S(group));
  std::vector<Dim> kw(wd.begin() + 2, wd.end());
  const bool transpose = node.op_type() == "ConvTranspose";
  Dim out_channels = wd[0];
  if (!transpose) {
    int64_t expected = 0;  // W's input channels x group, refused when it overflows
    if (xd[1].is_static() && wd[1].is_static() &&
        (!MulSize(wd[1].value(), group, &expected) || xd[1].value() != expected)) {
      return InvalidArgument("channel mismatch: input has " + xd[1].ToString() +
                             " channels but the weight expects " + wd[1].ToString() + " x group " +
                             S(group));
    }
    if (wd[0].is_static() && wd[0].value() % group != 0) {
      return InvalidArgument("weight has " + wd[0].ToString() +
                             " output channels, not divisible by group " + S(group));
    }
  } else {
    RETURN_IF_ERROR(MergeDims(xd[1], wd[0], "channel mismatch between input and weight").status());
    if (xd[1].is_static() && xd[1].value() % group != 0) {
      return InvalidArgument("input has " + xd[1].ToString() +
                             " channels, not divisible by group " + S(group));
    }
    ASSIGN_OR_RETURN(out_channels, infer::DimMul(wd[1], Dim(group)));
  }
  if (const TensorType* b = InType(node, 2); b && b->has_rank) {
    if (b->rank() != 1) return InvalidArgument("bias must be 1-D, got " + DimsToString(b->dims));
    RETURN_IF_ERROR(
        MergeDims(b->dims[0], out_channels, "bias size differs from output channels").status());
  }
  ASSIGN_OR_RETURN(Window w, ReadWindow(node, n, kw, false));
  std::vector<Dim> out = {xd[0], out_channels};
  if (!transpose) {
    for (int64_t i = 0; i < n; ++i) {
      ASSIGN_OR_RETURN(Dim d, WindowOut(w, i, xd[2 + i]));
      out.push_back(d);
    }
    SetOutput(node, 0, TensorType(x.dtype, std::move(out)));
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> opad,
                   infer::IntsAttrOfLength(node, "output_padding", n, 0));
  for (int64_t v : opad) {
    if (v < 0 || v > kMaxDim) return InvalidArgument("output_padding has invalid entry " + S(v));
  }
  std::vector<int64_t> oshape = node.attr_ints("output_shape");
  if (!oshape.empty()) {
    if (static_cast<int64_t>(oshape.size()) == n + 2)
      oshape.erase(oshape.begin(), oshape.begin() + 2);
    if (static_cast<int64_t>(oshape.size()) != n) {
      return InvalidArgument("output_shape has " + S(oshape.size()) + " values, expected " + S(n));
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!oshape.empty()) {
      if (oshape[i] < 0 || oshape[i] > kMaxDim) return InvalidArgument("invalid output_shape");
      out.push_back(Dim(oshape[i]));
      continue;
    }
    const Dim& in = xd[2 + i];
    const int64_t s = w.strides[i];
    if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") {
      ASSIGN_OR_RETURN(Dim d, infer::DimMul(in, Dim(s)));
      out.push_back(d);
      continue;
    }
    if (!in.is_static() || !w.kernel[i].is_static()) {
      out.push_back(Dim());
      continue;
    }
    const bool valid = w.auto_pad == "VALID";
    const int64_t pads = valid ? 0 : w.pads[i] + w.pads[i + n];
    ASSIGN_OR_RETURN(int64_t a, infer::CheckedMul(s, std::max<int64_t>(in.value() - 1, 0)));
    ASSIGN_OR_RETURN(int64_t ek, infer::CheckedMul(w.kernel[i].value() - 1, w.dilations[i]));
    const int64_t v = a + opad[i] + ek + 1 - pads;
    if (v < 0) return InvalidArgument("ConvTranspose output dim " + S(i) + " is negative");
    out.push_back(Dim(v));
  }
  SetOutput(node, 0, TensorType(x.dtype, std::move(out)));
  return Status::Ok();
}

Status InferPool(Node& node) {
  const bool is_max = node.op_type() == "MaxPool";
  if (is_max) {
    RETURN_IF_ERROR(infer::RequireNumeric(node, 0));
  } else {
    RETURN_IF_ERROR(infer::RequireFloat(node, 0));
  }
  const TensorType& x = node.input(0)->type();
  RETURN_IF_ERROR(RequireRankAtLeast3(x, node, "input X"));
  std::vector<int64_t> ks = node.attr_ints("kernel_shape");
  if (ks.empty()) return InvalidArgument(node.op_type() + " needs the attribute 'kernel_shape'");
  const int64_t n = static_cast<int64_t>(ks.size());
  if (x.has_rank && x.rank() != n + 2) {
    return InvalidArgument("kernel_shape has " + S(n) + " values but the input has rank " +
                           S(x.rank()));
  }
  ASSIGN_OR_RETURN(Window w, ReadWindow(node, n, {}, true));
  TensorType out = TensorType::UnknownShape(x.dtype);
  if (x.has_rank) {
    out = TensorType(x.dtype, {x.dims[0], x.dims[1]});
    for (int64_t i = 0; i < n; ++i) {
      ASSIGN_OR_RETURN(Dim d, WindowOut(w, i, x.dims[2 + i]));
      out.dims.push_back(d);
    }
  }
  SetOutput(node, 0, out);
  out.dtype = DType::kInt64;
  SetOutput(node, 1, std::move(out));
  return Status::Ok();
}

Status InferGlobalPool(Node& node) {
  RETURN_IF_ERROR(infer::RequireFloat(node, 0));
  const TensorType& x = node.input(0)->type();
  RETURN_IF_ERROR(RequireRankAtLeast3(x, node, "input X"));
  TensorType out = x;
  for (int64_t i = 2; i < out.rank(); ++i) out.dims[i] = Dim(1);
  SetOutput(node, 0, std::move(out));
  return Status::Ok();
}

Status InferBatchNorm(Node& node) {
  for (int i = 0; i < 5; ++i) RETURN_IF_ERROR(infer::RequireFloat(node, i));
  RETURN_IF_ERROR(infer::SameDType(node, {1, 2}));
  RETURN_IF_ERROR(infer::SameDType(node, {3, 4}));
  const TensorType& x = node.input(0)->type();
  if (x.has_rank && x.rank() < 2) {
    return InvalidArgument("BatchNormalization input must have rank >= 2, got " +
                           DimsToString(x.dims));
  }
  Dim c = x.has_rank ? x.dims[1] : Dim();
  static const char* const kNames[] = {"", "scale", "B", "input_mean", "input_var"};
  for (int i = 1; i < 5; ++i) {
    const TensorType& t = node.input(i)->type();
    if (!t.has_rank) continue;
    if (t.rank() != 1) {
      return InvalidArgument(std::string(kNames[i]) + " must be 1-D, got " + DimsToString(t.dims));
    }
    ASSIGN_OR_RETURN(c, MergeDims(c, t.dims[0],
                                  std::string(kNames[i]) + " size differs from the channel count"));
  }
  SetOutput(node, 0, x);
  SetOutput(node, 1, TensorType(node.input(3)->dtype(), {c}));
  SetOutput(node, 2, TensorType(node.input(4)->dtype(), {c}));
  return Status::Ok();
}

Status InferLayerNorm(Node& node) {
  RETURN_IF_ERROR(infer::RequireFloat(node, 0));
  RETURN_IF_ERROR(infer::SameDType(node, {0, 1, 2}));
  auto stash = infer::DTypeFromOnnx(node.attr_int("stash_type", 1));
  if (!stash.ok() || !IsFloat(*stash)) {
    return InvalidArgument("stash_type " + S(node.attr_int("stash_type", 1)) +
                           " is not a float type");
  }
  const TensorType& x = node.input(0)->type();
  SetOutput(node, 0, x);
  if (!x.has_rank) {
    SetOutput(node, 1, TensorType::UnknownShape(*stash));
    SetOutput(node, 2, TensorType::UnknownShape(*stash));
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(int64_t axis, infer::NormalizeAxis(node.attr_int("axis", -1), x.rank()));
  const std::vector<Dim> normalized(x.dims.begin() + axis, x.dims.end());
  for (int i = 1; i < 3; ++i) {
    const TensorType* t = InType(node, i);
    if (t && t->has_rank) {
      RETURN_IF_ERROR(infer::CheckUnidirectional(normalized, t->dims, i == 1 ? "Scale" : "B"));
    }
  }
  std::vector<Dim> stat(x.dims.begin(), x.dims.begin() + axis);
  stat.resize(x.dims.size(), Dim(1));
  SetOutput(node, 1, TensorType(*stash, stat));
  SetOutput(node, 2, TensorType(*stash, stat));
  return Status::Ok();
}

Status InferSoftmax(Node& node) {
  RETURN_IF_ERROR(infer::RequireFloat(node, 0));
  const TensorType& x = node.input(0)->type();
  if (x.has_rank) {
    RETURN_IF_ERROR(infer::NormalizeAxis(node.attr_int("axis", -1), x.rank()).status());
  }
  SetOutput(node, 0, x);
  return Status::Ok();
}

Status InferEinsum(Node& node) {
  for (int i = 0; i < node.num_inputs(); ++i) {
    if (!node.input(i)) return InvalidArgument("Einsum input " + S(i) + " is missing");
  }
  for (int i = 0; i < node.num_inputs(); ++i) RETURN_IF_ERROR(infer::RequireNumeric(node, i));
  RETURN_IF_ERROR(infer::SameDTypeRange(node, 0, node.num_inputs()));
  ASSIGN_OR_RETURN(infer::EinsumEquation eq,
                   infer::ParseEinsum(node.attr_string("equation", ""), node.num_inputs()));
  const std::vector<std::string>& terms = eq.terms;
  std::map<char, Dim> sizes;
  for (size_t t = 0; t < terms.size(); ++t) {
    const TensorType& ty = node.input(static_cast<int>(t))->type();
    if (ty.has_rank && ty.rank() != static_cast<int64_t>(terms[t].size())) {
      return InvalidArgument("Einsum operand '" + terms[t] + "' does not match input " + S(t) +
                             " of rank " + S(ty.rank()));
    }
    for (size_t k = 0; k < terms[t].size(); ++k) {
      const char c = terms[t][k];
      const Dim d = ty.has_rank ? ty.dims[k] : Dim();
      auto it = sizes.find(c);
      if (it == sizes.end()) {
        sizes[c] = d;
      } else {
        ASSIGN_OR_RETURN(
            it->second,
            MergeDims(it->second, d, std::string("Einsum label '") + c + "' sizes differ"));
      }
    }
  }
  std::vector<Dim> out;
  for (char c : eq.output) out.push_back(sizes[c]);
  SetOutput(node, 0, TensorType(node.input(0)->dtype(), std::move(out)));
  return Status::Ok();
}

// SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss: input [N,C,d...], target [N,d...].
Status InferLoss(Node& node) {
  RETURN_IF_ERROR(infer::RequireFloat(node, 0));
  RETURN_IF_ERROR(infer::RequireIndexType(node, 1));
  RETURN_IF_ERROR(infer::SameDType(node, {0, 2}));
  const std::string reduction = node.attr_string("reduction", "mean");
  if (reduction != "none" && reduction != "mean" && reduction != "sum") {
    return InvalidArgument("reduction '" + reduction + "' is not none, mean or sum");
  }
  const TensorType& x = node.input(0)->type();
  const TensorType& y = node.input(1)->type();
  if (x.has_rank && x.rank() < 2) {
    return InvalidArgument("input must have rank >= 2 (N, C, ...), got " + DimsToString(x.dims));
  }
  std::optional<std::vector<Dim>> target;  // [N, d...]
  if (x.has_rank) {
    target = std::vector<Dim>{x.dims[0]};
    target->insert(target->end(), x.dims.begin() + 2, x.dims.end());
  }
  if (y.has_rank) {
    if (target && y.rank() != static_cast<int64_t>(target->size())) {
      return InvalidArgument("target has rank " + S(y.rank()) + " but the input " +
                             DimsToString(x.dims) + " needs rank " + S(target->size()));
    }
    if (!target) {
      target = y.dims;
    } else {
      for (size_t i = 0; i < target->size(); ++i) {
        ASSIGN_OR_RETURN((*target)[i],
                         MergeDims((*target)[i], y.dims[i],
                                   "target shape " + DimsToString(y.dims) +
                                       " does not match input " + DimsToString(x.dims)));
      }
    }
  }
  if (const TensorType* w = InType(node, 2); w && w->has_rank) {
    if (w->rank() != 1) return InvalidArgument("weight must be 1-D, got " + DimsToString(w->dims));
    if (x.has_rank) {
      RETURN_IF_ERROR(
          MergeDims(x.dims[1], w->dims[0], "weight size differs from classes").status());
    }
  }
  if (reduction != "none") {
    SetOutput(node, 0, TensorType(x.dtype, {}));
  } else if (target) {
    SetOutput(node, 0, TensorType(x.dtype, *target));
  } else {
    SetOutput(node, 0, TensorType::UnknownShape(x.dtype));
  }
  SetOutput(node, 1, x);  // log_prob (SoftmaxCrossEntropyLoss only)
  return Status::Ok();
}

}  // namespace

void RegisterNNOps(OpRegistry& r) {
  RegisterOp(r, "MatMul", 2, 2, InferMatMul);
  // MatMul(opA(A), opB(B)), op swapping the last two axes where transA / transB is 1: what the
  // MatMul gradient emits (frontend/training/gradients.cc).
  RegisterOp(r, "MatMul", 2, 2, InferMatMul, 1, 1, kAmpcDomain);
  RegisterOp(r, "Gemm", 2, 3, InferGemm);
  RegisterOp(r, "Conv", 2, 3, InferConv);
  RegisterOp(r, "ConvTranspose", 2, 3, InferConv);
  RegisterOp(r, "MaxPool", 1, 1, InferPool, 1, 2);
  RegisterOp(r, "AveragePool", 1, 1, InferPool);
  RegisterOp(r, "GlobalAveragePool", 1, 1, InferGlobalPool);
  RegisterOp(r, "GlobalMaxPool", 1, 1, InferGlobalPool);
  RegisterOp(r, "BatchNormalization", 5, 5, InferBatchNorm, 1, 3);
  RegisterOp(r, "LayerNormalization", 2, 3, InferLayerNorm, 1, 3);
  RegisterOp(r, "Softmax", 1, 1, InferSoftmax);
  RegisterOp(r, "LogSoftmax", 1, 1, InferSoftmax);
  RegisterOp(r, "Einsum", 1, 1 << 20, InferEinsum);
  RegisterOp(r, "SoftmaxCrossEntropyLoss", 2, 3, InferLoss, 1, 2);
  RegisterOp(r, "NegativeLogLikelihoodLoss", 2, 3, InferLoss);
}

}  // namespace ampc
