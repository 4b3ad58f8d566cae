// Type and shape inference (with compile-time data propagation) for ops that move or reinterpret
// shapes: Gather GatherElements Reshape Transpose Split Concat Unsqueeze Squeeze Slice Expand
// Flatten Tile Pad. The ops that make values (Shape, Constant, Range, ...) are in value_ops.cc.
#include <algorithm>

#include "ir/op_registry.h"
#include "ir/ops/infer_util.h"

namespace ampc {
namespace {

using infer::CheckShapeInput;
using infer::DimsToString;
using infer::KnownInts;
using infer::KnownStatic;
using infer::RankFromLength;
using infer::SetKnown;
using infer::SetOutput;
using infer::StaticLength;

// x with the dims on `axes` (all dims when nullopt) made unknown.
TensorType UnknownOnAxes(TensorType x, const std::optional<std::vector<int64_t>>& axes) {
  for (int64_t i = 0; i < x.rank(); ++i) {
    if (!axes || std::find(axes->begin(), axes->end(), i) != axes->end()) x.dims[i] = Dim();
  }
  return x;
}

Status InferGather(Node& node) {
  RETURN_IF_ERROR(infer::RequireTyped(node, 0));
  RETURN_IF_ERROR(infer::RequireIndexType(node, 1));
  const TensorType& x = node.input(0)->type();
  const TensorType& idx = node.input(1)->type();
  const DType dt = x.dtype;
  if (!x.has_rank) {
    SetOutput(node, 0, TensorType::UnknownShape(dt));
    return Status::Ok();
  }
  if (x.rank() == 0) return InvalidArgument("Gather needs data of rank >= 1");
  ASSIGN_OR_RETURN(int64_t axis, infer::NormalizeAxis(node.attr_int("axis", 0), x.rank()));
  const Dim& n = x.dims[axis];
  auto ind = KnownStatic(node.input(1));
  if (ind && n.is_static()) {
    for (int64_t& i : *ind) {
      if (i < -n.value() || i >= n.value()) {
        return InvalidArgument("Gather index " + std::to_string(i) +
                               " is out of range for a dim of size " + n.ToString());
      }
      if (i < 0) i += n.value();
    }
  }
  if (!idx.has_rank) {
    SetOutput(node, 0, TensorType::UnknownShape(dt));
    return Status::Ok();
  }
  std::vector<Dim> dims(x.dims.begin(), x.dims.begin() + axis);
  dims.insert(dims.end(), idx.dims.begin(), idx.dims.end());
  dims.insert(dims.end(), x.dims.begin() + axis + 1, x.dims.end());
  SetOutput(node, 0, TensorType(dt, std::move(dims)));
  auto data = KnownInts(node.input(0));
  if (data && ind && x.rank() == 1 && n.is_static() &&
      static_cast<int64_t>(data->size()) == n.value()) {
    std::vector<Dim> vals;
    for (int64_t i : *ind) vals.push_back((*data)[i]);
    SetKnown(node, 0, std::move(vals));
  }
  return Status::Ok();
}

Status InferGatherElements(Node& node) {
  RETURN_IF_ERROR(infer::RequireTyped(node, 0));
  RETURN_IF_ERROR(infer::RequireIndexType(node, 1));
  const TensorType& x = node.input(0)->type();
  const TensorType& idx = node.input(1)->type();
  if (x.has_rank) {
    RETURN_IF_ERROR(infer::NormalizeAxis(node.attr_int("axis", 0), x.rank()).status());
    if (idx.has_rank && idx.rank() != x.rank()) {
      return InvalidArgument("GatherElements indices have rank " + std::to_string(idx.rank()) +
                             " but data has rank " + std::to_string(x.rank()));
    }
  }
  TensorType out = idx;
  out.dtype = x.dtype;
  SetOutput(node, 0, std::move(out));
  return Status::Ok();
}

Status InferReshape(Node& node) {
  RETURN_IF_ERROR(infer::RequireTyped(node, 0));
  RETURN_IF_ERROR(CheckShapeInput(node, 1, "Reshape shape"));
  const TensorType& x = node.input(0)->type();
  auto shape = KnownInts(node.input(1));
  if (!shape) {
    SetOutput(node, 0, RankFromLength(node, 1, x.dtype));
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(std::vector<Dim> out,
                   infer::ReshapeDims(x, *shape, node.attr_int("allowzero", 0) != 0));
  SetOutput(node, 0, TensorType(x.dtype, std::move(out)));
  SetKnown(node, 0, KnownInts(node.input(0)));
  return Status::Ok();
}

Status InferTranspose(Node& node) {
  RETURN_IF_ERROR(infer::RequireTyped(node, 0));
  const TensorType& x = node.input(0)->type();
  std::vector<int64_t> perm = node.attr_ints("perm");
  const bool has_perm = node.attr("perm") != nullptr;
  if (has_perm && node.attr("perm")->kind() != AttrKind::kInts) {
    return InvalidArgument("attribute 'perm' must be a list of ints");
  }
  if (!has_perm) {
    if (!x.has_rank) {
      SetOutput(node, 0, x);
      return Status::Ok();
    }
    for (int64_t i = x.rank() - 1; i >= 0; --i) perm.push_back(i);
  }
  const int64_t r = static_cast<int64_t>(perm.size());
  if (x.has_rank && r != x.rank()) {
    return InvalidArgument("perm " + infer::IntsToString(perm) + " has " + std::to_string(r) +
                           " entries but the input has rank " + std::to_string(x.rank()));
  }
  std::vector<bool> seen(perm.size(), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= r) {
      return InvalidArgument("perm entry " + std::to_string(p) + " is out of range for rank " +
                             std::to_string(r));
    }
    if (seen[p])
      return InvalidArgument("perm " + infer::IntsToString(perm) + " repeats " + std::to_string(p));
    seen[p] = true;
  }
  std::vector<Dim> dims(r);
  for (int64_t i = 0; i < r; ++i) dims[i] = x.has_rank ? x.dims[perm[i]] : Dim();
  SetOutput(node, 0, TensorType(x.dtype, std::move(dims)));
  return Status::Ok();
}

Status InferSplit(Node& node) {
  RETURN_IF_ERROR(infer::RequireTyped(node, 0));
  const TensorType& x = node.input(0)->type();
  const int n = node.num_outputs();
  if (const Attribute* k = node.attr("num_outputs")) {
    if (k->kind() != AttrKind::kInt || k->i() != n) {
      return InvalidArgument("Split num_outputs must be the number of outputs (" +
                             std::to_string(n) + ")");
    }
    if (node.input(1)) return InvalidArgument("Split takes input 'split' or num_outputs, not both");
  }
  std::optional<std::vector<int64_t>> split;
  if (node.input(1)) {
    RETURN_IF_ERROR(CheckShapeInput(node, 1, "Split split"));
    split = KnownStatic(node.input(1));
    auto len = split ? std::optional<int64_t>(split->size()) : StaticLength(node.input(1));
    if (len && *len != n) {
      return InvalidArgument("Split has " + std::to_string(*len) + " sizes but " +
                             std::to_string(n) + " outputs");
    }
    for (int64_t s : split.value_or(std::vector<int64_t>{})) {
      if (s < 0) return InvalidArgument("Split has negative size " + std::to_string(s));
    }
  }
  if (!x.has_rank) {
    for (int i = 0; i < n; ++i) SetOutput(node, i, x);
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(int64_t axis, infer::NormalizeAxis(node.attr_int("axis", 0), x.rank()));
  const Dim& d = x.dims[axis];
  std::vector<Dim> sizes(n);
  if (split) {
    int64_t sum = 0;
    for (int i = 0; i < n; ++i) {
      sizes[i] = Dim((*split)[i]);
      ASSIGN_OR_RETURN(sum, infer::CheckedAdd(sum, (*split)[i]));
    }
    if (d.is_static() && sum != d.value()) {
      return InvalidArgument("Split sizes " + infer::IntsToString(*split) + " sum to " +
                             std::to_string(sum) + " but axis " + std::to_string(axis) +
                             " has size " + d.ToString());
    }
  } else if (node.attr("num_outputs")) {
    // Opset 18: ceil(d / n) per output, the last one smaller when n does not divide d.
    if (d.is_static()) {
      const int64_t chunk = (d.value() + n - 1) / n;
      for (int i = 0; i < n; ++i) {
        sizes[i] = Dim(std::clamp<int64_t>(d.value() - chunk * i, 0, chunk));
      }
      if (d.value() < n || (n > 1 && d.value() - chunk * (n - 1) <= 0)) {
        return InvalidArgument("Split cannot cut axis " + std::to_string(axis) + " of size " +
                               d.ToString() + " into " + std::to_string(n) +
                               " non-empty parts of ceil(size / num_outputs)");
      }
    } else if (n == 1) {
      sizes[0] = d;
    }
  } else if (!node.input(1)) {
    if (d.is_static()) {
      if (d.value() % n != 0) {
        return InvalidArgument("Split cannot divide axis " + std::to_string(axis) + " of size " +
                               d.ToString() + " into " + std::to_string(n) + " equal parts");
      }
      std::fill(sizes.begin(), sizes.end(), Dim(d.value() / n));
    } else if (n == 1) {
      sizes[0] = d;
    }
  }
  for (int i = 0; i < n; ++i) {
    TensorType t = x;
    t.dims[axis] = sizes[i];
    SetOutput(node, i, std::move(t));
  }
  return Status::Ok();
}

Status InferConcat(Node& node) {
  for (int i = 0; i < node.num_inputs(); ++i) {
    if (!node.input(i)) return InvalidArgument("Concat input " + std::to_string(i) + " is missing");
  }
  RETURN_IF_ERROR(infer::SameDTypeRange(node, 0, node.num_inputs()));
  const Attribute* axis_attr = node.attr("axis");
  if (!axis_attr || axis_attr->kind() != AttrKind::kInt) {
    return InvalidArgument("Concat needs an int attribute 'axis'");
  }
  const DType dt = node.input(0)->dtype();
  int ref = -1;
  bool any_unranked = false;
  for (int i = 0; i < node.num_inputs(); ++i) {
    const TensorType& t = node.input(i)->type();
    if (!t.has_rank) {
      any_unranked = true;
      continue;
    }
    if (t.rank() == 0) return InvalidArgument("Concat input " + std::to_string(i) + " is a scalar");
    if (ref < 0) {
      ref = i;
    } else if (t.rank() != node.input(ref)->type().rank()) {
      return InvalidArgument("Concat input " + std::to_string(i) + " has rank " +
                             std::to_string(t.rank()) + " but input " + std::to_string(ref) +
                             " has rank " + std::to_string(node.input(ref)->type().rank()));
    }
  }
  if (ref < 0) {
    SetOutput(node, 0, TensorType::UnknownShape(dt));
    return Status::Ok();
  }
  const int64_t r = node.input(ref)->type().rank();
  ASSIGN_OR_RETURN(int64_t axis, infer::NormalizeAxis(axis_attr->i(), r));
  std::vector<Dim> dims = node.input(ref)->type().dims;
  Dim total(0);
  for (int i = 0; i < node.num_inputs(); ++i) {
    const TensorType& t = node.input(i)->type();
    if (!t.has_rank) continue;
    for (int64_t k = 0; k < r; ++k) {
      if (k == axis) continue;
      ASSIGN_OR_RETURN(dims[k],
                       infer::MergeDims(dims[k], t.dims[k],
                                        "Concat inputs disagree on dim " + std::to_string(k)));
    }
    ASSIGN_OR_RETURN(total, infer::DimAdd(total, t.dims[axis]));
  }
  dims[axis] = any_unranked ? Dim() : total;
  SetOutput(node, 0, TensorType(dt, std::move(dims)));
  std::vector<Dim> vals;
  for (int i = 0; i < node.num_inputs(); ++i) {
    auto k = KnownInts(node.input(i));
    if (!k) return Status::Ok();
    vals.insert(vals.end(), k->begin(), k->end());
  }
  SetKnown(node, 0, std::move(vals));
  return Status::Ok();
}

Status InferUnsqueeze(Node& node) {
  RETURN_IF_ERROR(infer::RequireTyped(node, 0));
  RETURN_IF_ERROR(infer::RequireIndexType(node, 1));
  const TensorType& x = node.input(0)->type();
  auto axes = KnownStatic(node.input(1));
  if (!x.has_rank) {
    SetOutput(node, 0, x);
    return Status::Ok();
  }
  if (!axes) {
    auto len = StaticLength(node.input(1));
    SetOutput(node, 0,
              len && *len <= 1024 ? TensorType(x.dtype, std::vector<Dim>(x.rank() + *len))
                                  : TensorType::UnknownShape(x.dtype));
    return Status::Ok();
  }
  const int64_t r = x.rank() + static_cast<int64_t>(axes->size());
  ASSIGN_OR_RETURN(std::vector<int64_t> norm, infer::NormalizeAxes(*axes, r));
  std::vector<bool> ones(r, false);
  for (int64_t a : norm) ones[a] = true;
  std::vector<Dim> dims;
  size_t j = 0;
  for (int64_t i = 0; i < r; ++i) dims.push_back(ones[i] ? Dim(1) : x.dims[j++]);
  SetOutput(node, 0, TensorType(x.dtype, std::move(dims)));
  SetKnown(node, 0, KnownInts(node.input(0)));
  return Status::Ok();
}

Status InferSqueeze(Node& node) {
  RETURN_IF_ERROR(infer::RequireTyped(node, 0));
  if (node.input(1)) RETURN_IF_ERROR(infer::RequireIndexType(node, 1));
  const TensorType& x = node.input(0)->type();
  if (!x.has_rank) {
    SetOutput(node, 0, x);
    return Status::Ok();
  }
  std::vector<bool> drop(x.rank(), false);
  if (node.input(1)) {
    auto axes = KnownStatic(node.input(1));
    if (!axes) {
      auto len = StaticLength(node.input(1));
      SetOutput(node, 0,
                len && *len <= x.rank() ? TensorType(x.dtype, std::vector<Dim>(x.rank() - *len))
                                        : TensorType::UnknownShape(x.dtype));
      return Status::Ok();
    }
    ASSIGN_OR_RETURN(std::vector<int64_t> norm, infer::NormalizeAxes(*axes, x.rank()));
    for (int64_t a : norm) {
      const Dim& d = x.dims[a];
      if (d.is_static() && d.value() != 1) {
        return InvalidArgument("Squeeze cannot squeeze axis " + std::to_string(a) + " of size " +
                               d.ToString());
      }
      drop[a] = true;
    }
  } else {
    for (int64_t i = 0; i < x.rank(); ++i) {
      if (!x.dims[i].is_static()) {  // might be 1 at run time
        SetOutput(node, 0, TensorType::UnknownShape(x.dtype));
        return Status::Ok();
      }
      drop[i] = x.dims[i].value() == 1;
    }
  }
  std::vector<Dim> dims;
  for (int64_t i = 0; i < x.rank(); ++i) {
    if (!drop[i]) dims.push_back(x.dims[i]);
  }
  SetOutput(node, 0, TensorType(x.dtype, std::move(dims)));
  SetKnown(node, 0, KnownInts(node.input(0)));
  return Status::Ok();
}

Status InferSlice(Node& node) {
  RETURN_IF_ERROR(infer::RequireTyped(node, 0));
  for (int i = 1; i < node.num_inputs(); ++i) {
    if (node.input(i)) RETURN_IF_ERROR(infer::RequireIndexType(node, i));
  }
  const TensorType& x = node.input(0)->type();
  if (!x.has_rank) {
    SetOutput(node, 0, x);
    return Status::Ok();
  }
  auto starts = KnownStatic(node.input(1)), ends = KnownStatic(node.input(2));
  std::optional<std::vector<int64_t>> axes, steps;
  if (node.input(3)) {
    axes = KnownStatic(node.input(3));
  } else if (auto len =
                 starts ? std::optional<int64_t>(starts->size()) : StaticLength(node.input(1))) {
    axes.emplace();
    for (int64_t i = 0; i < *len; ++i) axes->push_back(i);
  }
  if (axes) {
    ASSIGN_OR_RETURN(*axes, infer::NormalizeAxes(*axes, x.rank()));
  }
  if (node.input(4)) {
    steps = KnownStatic(node.input(4));
  } else if (axes) {
    steps = std::vector<int64_t>(axes->size(), 1);
  }
  TensorType out = x;
  if (!starts || !ends || !axes || !steps) {
    SetOutput(node, 0, UnknownOnAxes(x, axes));
    return Status::Ok();
  }
  const size_t n = starts->size();
  if (ends->size() != n || axes->size() != n || steps->size() != n) {
    return InvalidArgument("Slice starts, ends, axes and steps have different lengths (" +
                           std::to_string(n) + ", " + std::to_string(ends->size()) + ", " +
                           std::to_string(axes->size()) + ", " + std::to_string(steps->size()) +
                           ")");
  }
  std::vector<int64_t> firsts(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const int64_t a = (*axes)[i], s = (*starts)[i], e = (*ends)[i], st = (*steps)[i];
    if (st == 0) return InvalidArgument("Slice step is 0 on axis " + std::to_string(a));
    const Dim& d = x.dims[a];
    if (d.is_static()) {
      int64_t count;
      infer::SliceRange(d.value(), s, e, st, &firsts[i], &count);
      out.dims[a] = Dim(count);
    } else if (d.is_symbolic() &&
               ((st == 1 && s == 0 && e >= kMaxDim) || (st == -1 && s == -1 && e <= -kMaxDim))) {
      out.dims[a] = d;  // the whole dim, forwards or reversed
    } else {
      out.dims[a] = Dim();
    }
  }
  SetOutput(node, 0, out);
  auto data = KnownInts(node.input(0));
  if (data && x.rank() == 1 && x.dims[0].is_static() && out.dims[0].is_static() &&
      static_cast<int64_t>(data->size()) == x.dims[0].value()) {
    const int64_t st = n ? (*steps)[0] : 1, first = n ? firsts[0] : 0;
    std::vector<Dim> vals;
    for (int64_t k = 0; k < out.dims[0].value(); ++k) vals.push_back((*data)[first + k * st]);
    SetKnown(node, 0, std::move(vals));
  }
  return Status::Ok();
}

Status InferExpand(Node& node) {
  RETURN_IF_ERROR(infer::RequireTyped(node, 0));
  RETURN_IF_ERROR(CheckShapeInput(node, 1, "Expand shape"));
  const TensorType& x = node.input(0)->type();
  auto shape = KnownInts(node.input(1));
  if (shape) {
    for (const Dim& d : *shape) {
      if (d.is_static() && (d.value() < 0 || d.value() > kMaxDim)) {
        return InvalidArgument("Expand shape " + DimsToString(*shape) + " has invalid entry " +
                               d.ToString());
      }
    }
  }
  std::optional<std::vector<Dim>> target = shape;
  if (!target) {
    auto len = StaticLength(node.input(1));
    if (len && *len <= 1024) target = std::vector<Dim>(*len);
  }
  if (!x.has_rank || !target) {
    SetOutput(node, 0, TensorType::UnknownShape(x.dtype));
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(std::vector<Dim> dims, infer::BroadcastShapes(x.dims, *target));
  SetOutput(node, 0, TensorType(x.dtype, dims));
  auto data = KnownInts(node.input(0));
  if (data && dims.size() <= 1 && (dims.empty() || dims[0].is_static())) {
    const size_t n = dims.empty() ? 1 : dims[0].value();
    if (data->size() == n) {
      SetKnown(node, 0, data);
    } else if (data->size() == 1 && n <= infer::kMaxKnownInts) {
      SetKnown(node, 0, std::vector<Dim>(n, (*data)[0]));
    }
  }
  return Status::Ok();
}

Status InferFlatten(Node& node) {
  RETURN_IF_ERROR(infer::RequireTyped(node, 0));
  const TensorType& x = node.input(0)->type();
  if (!x.has_rank) {
    SetOutput(node, 0, TensorType(x.dtype, {Dim(), Dim()}));
    return Status::Ok();
  }
  int64_t axis = node.attr_int("axis", 1);
  if (axis < -x.rank() || axis > x.rank()) {
    return InvalidArgument("axis " + std::to_string(axis) + " is out of range for rank " +
                           std::to_string(x.rank()));
  }
  if (axis < 0) axis += x.rank();
  ASSIGN_OR_RETURN(Dim a, infer::DimProduct({x.dims.begin(), x.dims.begin() + axis}));
  ASSIGN_OR_RETURN(Dim b, infer::DimProduct({x.dims.begin() + axis, x.dims.end()}));
  SetOutput(node, 0, TensorType(x.dtype, {a, b}));
  return Status::Ok();
}

Status InferTile(Node& node) {
  RETURN_IF_ERROR(infer::RequireTyped(node, 0));
  RETURN_IF_ERROR(CheckShapeInput(node, 1, "Tile repeats"));
  const TensorType& x = node.input(0)->type();
  auto reps = KnownStatic(node.input(1));
  auto len = reps ? std::optional<int64_t>(reps->size()) : StaticLength(node.input(1));
  if (x.has_rank && len && *len != x.rank()) {
    return InvalidArgument("Tile repeats has " + std::to_string(*len) +
                           " entries but the input has rank " + std::to_string(x.rank()));
  }
  if (!x.has_rank) {
    SetOutput(node, 0, RankFromLength(node, 1, x.dtype));
    return Status::Ok();
  }
  std::vector<Dim> dims(x.rank());
  if (reps) {
    for (int64_t i = 0; i < x.rank(); ++i) {
      if ((*reps)[i] < 0)
        return InvalidArgument("Tile repeats " + infer::IntsToString(*reps) +
                               " has a negative entry");
      ASSIGN_OR_RETURN(dims[i], infer::DimMul(x.dims[i], Dim((*reps)[i])));
    }
  }
  SetOutput(node, 0, TensorType(x.dtype, std::move(dims)));
  return Status::Ok();
}

Status InferPad(Node& node) {
  RETURN_IF_ERROR(infer::RequireTyped(node, 0));
  RETURN_IF_ERROR(CheckShapeInput(node, 1, "Pad pads"));
  RETURN_IF_ERROR(infer::SameDType(node, {0, 2}));
  if (node.input(3)) RETURN_IF_ERROR(infer::RequireIndexType(node, 3));
  const std::string mode = node.attr_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap") {
    return InvalidArgument("Pad mode '" + mode + "' is not one of constant, reflect, edge, wrap");
  }
  const TensorType& x = node.input(0)->type();
  if (!x.has_rank) {
    SetOutput(node, 0, x);
    return Status::Ok();
  }
  std::optional<std::vector<int64_t>> axes;
  if (node.input(3)) {
    axes = KnownStatic(node.input(3));
  } else {
    axes.emplace();
    for (int64_t i = 0; i < x.rank(); ++i) axes->push_back(i);
  }
  if (axes) {
    ASSIGN_OR_RETURN(*axes, infer::NormalizeAxes(*axes, x.rank()));
  }
  auto pads = KnownStatic(node.input(1));
  TensorType out = x;
  if (!axes || !pads) {
    SetOutput(node, 0, UnknownOnAxes(x, axes));
    return Status::Ok();
  }
  const size_t n = axes->size();
  if (pads->size() != 2 * n) {
    return InvalidArgument("Pad pads has " + std::to_string(pads->size()) + " entries, expected " +
                           std::to_string(2 * n));
  }
  for (size_t i = 0; i < n; ++i) {
    const int64_t a = (*axes)[i], pb = (*pads)[i], pe = (*pads)[i + n];
    if (pb > kMaxDim || pb < -kMaxDim || pe > kMaxDim || pe < -kMaxDim) {
      return InvalidArgument("Pad pads " + infer::IntsToString(*pads) + " are too large");
    }
    ASSIGN_OR_RETURN(Dim nd, infer::DimAdd(x.dims[a], Dim(pb + pe)));
    if (nd.is_static() && nd.value() < 0) {
      return InvalidArgument("Pad makes axis " + std::to_string(a) + " negative (" +
                             std::to_string(nd.value()) + ")");
    }
    out.dims[a] = nd;
  }
  SetOutput(node, 0, std::move(out));
  return Status::Ok();
}

}  // namespace

void RegisterShapeOps(OpRegistry& r) {
  RegisterOp(r, "Gather", 2, 2, InferGather);
  RegisterOp(r, "GatherElements", 2, 2, InferGatherElements);
  RegisterOp(r, "Reshape", 2, 2, InferReshape);
  RegisterOp(r, "Transpose", 1, 1, InferTranspose);
  RegisterOp(r, "Split", 1, 2, InferSplit, 1, 1 << 20);
  RegisterOp(r, "Concat", 1, 1 << 20, InferConcat);
  RegisterOp(r, "Unsqueeze", 2, 2, InferUnsqueeze);
  RegisterOp(r, "Squeeze", 1, 2, InferSqueeze);
  RegisterOp(r, "Slice", 3, 5, InferSlice);
  RegisterOp(r, "Expand", 2, 2, InferExpand);
  RegisterOp(r, "Flatten", 1, 1, InferFlatten);
  RegisterOp(r, "Tile", 2, 2, InferTile);
  RegisterOp(r, "Pad", 2, 4, InferPad);
}

}  // namespace ampc
