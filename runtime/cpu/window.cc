#include "runtime/cpu/window.h"

namespace ampc::cpu::window {
namespace {

std::string S(int64_t v) { return std::to_string(v); }

}  // namespace

StatusOr<std::vector<int64_t>> IntsAttr(const KernelContext& ctx, const char* name, int64_t n,
                                        int64_t dflt, int64_t min_value) {
  std::vector<int64_t> v = ctx.attr_ints(name);
  if (v.empty()) return std::vector<int64_t>(static_cast<size_t>(n), dflt);
  if (static_cast<int64_t>(v.size()) != n) {
    return InvalidArgument(std::string(name) + " has " + S(v.size()) + " values, expected " + S(n));
  }
  for (int64_t x : v) {
    if (x < min_value) return InvalidArgument(std::string(name) + " has invalid entry " + S(x));
  }
  return v;
}

StatusOr<Geometry> ReadGeometry(const KernelContext& ctx, const std::vector<int64_t>& in,
                                const std::vector<int64_t>& out, const std::vector<int64_t>& kernel,
                                bool transposed) {
  const int64_t n = static_cast<int64_t>(in.size());
  if (n < 1 || n > 3) {
    return Unimplemented(ctx.op + " with " + S(n) + " spatial dims (only 1 to 3 are supported)");
  }
  if (static_cast<int64_t>(out.size()) != n || static_cast<int64_t>(kernel.size()) != n) {
    return InvalidArgument(ctx.op + ": output or kernel rank does not match the input");
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> strides, IntsAttr(ctx, "strides", n, 1, 1));
  ASSIGN_OR_RETURN(std::vector<int64_t> dil, IntsAttr(ctx, "dilations", n, 1, 1));
  ASSIGN_OR_RETURN(std::vector<int64_t> pads, IntsAttr(ctx, "pads", 2 * n, 0, 0));
  std::vector<int64_t> opad(static_cast<size_t>(n), 0);
  if (transposed) {
    ASSIGN_OR_RETURN(opad, IntsAttr(ctx, "output_padding", n, 0, 0));
  }
  const std::string auto_pad = ctx.attr_string("auto_pad", "NOTSET");
  const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
  const bool derive = same || (transposed && !ctx.attr_ints("output_shape").empty());
  Geometry g;
  g.rank = n;
  const int64_t o = 3 - n;
  for (int64_t i = 0; i < n; ++i) {
    if (in[i] < 0 || out[i] < 0 || kernel[i] < 1) {
      return InvalidArgument(ctx.op + ": invalid spatial dims");
    }
    g.in[o + i] = in[i];
    g.out[o + i] = out[i];
    g.k[o + i] = kernel[i];
    g.stride[o + i] = strides[i];
    g.dil[o + i] = dil[i];
    const int64_t ek = (kernel[i] - 1) * dil[i] + 1;
    if (derive) {
      int64_t total = transposed ? strides[i] * (in[i] - 1) + opad[i] + ek - out[i]
                                 : (out[i] - 1) * strides[i] + ek - in[i];
      total = std::max<int64_t>(total, 0);
      const bool upper = transposed ? auto_pad == "SAME_UPPER" : auto_pad != "SAME_LOWER";
      g.pad_begin[o + i] = upper ? total / 2 : total - total / 2;
      g.pad_end[o + i] = total - g.pad_begin[o + i];
    } else if (auto_pad != "VALID") {
      g.pad_begin[o + i] = pads[i];
      g.pad_end[o + i] = pads[i + n];
    }
  }
  return g;
}

std::vector<int64_t> Spatial(const std::vector<int64_t>& dims) {
  return std::vector<int64_t>(dims.begin() + 2, dims.end());
}

Status RequireFloatTypes(const KernelContext& ctx, std::initializer_list<const TensorView*> ts) {
  const DType t = (*ts.begin())->dtype;
  for (const TensorView* v : ts) {
    if (!v) continue;
    if (!IsFloat(v->dtype)) {
      return Unimplemented(ctx.op + " on " + std::string(DTypeName(v->dtype)) + " tensors");
    }
    if (v->dtype != t) return InvalidArgument(ctx.op + ": inputs have different dtypes");
  }
  return Status::Ok();
}

Windows MakeWindows(const Geometry& g) {
  Windows w;
  for (int i = 0; i < 3; ++i) {
    for (int64_t o = 0; o < g.out[i]; ++o) {
      const int64_t base = o * g.stride[i] - g.pad_begin[i];
      int64_t lo, hi, plo, phi;
      ValidRange(g.k[i], g.dil[i], base, g.in[i], &lo, &hi);
      ValidRange(g.k[i], g.dil[i], base + g.pad_begin[i], g.in[i] + g.pad_begin[i] + g.pad_end[i],
                 &plo, &phi);
      w.base[i].push_back(base);
      w.lo[i].push_back(lo);
      w.hi[i].push_back(hi);
      w.padded_count[i].push_back(phi - plo);
    }
  }
  return w;
}

}  // namespace ampc::cpu::window
