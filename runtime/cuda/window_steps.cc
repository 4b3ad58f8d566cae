#include "runtime/cuda/window_steps.h"

#include <string>

#include "codegen/plan.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/window.h"

namespace ampc::cuda {

namespace {

std::vector<int64_t> Dims(const plan::PlanProto& p, int id) {
  const auto& d = p.buffers(id).dims();
  return {d.begin(), d.end()};
}

std::string S(int64_t v) { return std::to_string(v); }

int64_t Align256(int64_t bytes) { return (bytes + 255) / 256 * 256; }

// The step's inputs and outputs (nullptr: omitted) as views without data, and its attributes,
// so that the CPU runtime's window::ReadGeometry reads strides, pads and auto_pad as the CPU
// kernels do.
struct StepViews {
  AttributeMap attrs;
  std::vector<cpu::TensorView> in, out;
  cpu::KernelContext ctx;
  const cpu::TensorView* input(int i) const {
    return i < static_cast<int>(in.size()) && in[static_cast<size_t>(i)].dtype != DType::kUndefined
               ? &in[static_cast<size_t>(i)]
               : nullptr;
  }
  const cpu::TensorView* output(int i) const {
    return i < static_cast<int>(out.size()) &&
                   out[static_cast<size_t>(i)].dtype != DType::kUndefined
               ? &out[static_cast<size_t>(i)]
               : nullptr;
  }
};

StatusOr<std::unique_ptr<StepViews>> ViewsOf(const plan::PlanProto& p, const plan::Step& s) {
  auto v = std::make_unique<StepViews>();
  for (const plan::Attr& a : s.op().attrs()) {
    ASSIGN_OR_RETURN(v->attrs[a.name()], AttributeFromPlan(a));
  }
  auto view = [&](int id) {
    cpu::TensorView t;
    if (id >= 0) {
      t.dtype = DTypeFromName(p.buffers(id).dtype()).value_or(DType::kUndefined);
      t.dims = Dims(p, id);
    }
    return t;
  };
  for (int id : s.inputs()) v->in.push_back(view(id));
  for (int id : s.outputs()) v->out.push_back(view(id));
  v->ctx.op = s.op().op();
  v->ctx.attrs = &v->attrs;
  return v;
}

WindowGeom ToWindowGeom(const cpu::window::Geometry& g) {
  WindowGeom w;
  for (int i = 0; i < 3; ++i) {
    w.in[i] = g.in[i];
    w.out[i] = g.out[i];
    w.k[i] = g.k[i];
    w.stride[i] = g.stride[i];
    w.dil[i] = g.dil[i];
    w.pad_begin[i] = g.pad_begin[i];
    w.pad_end[i] = g.pad_end[i];
  }
  return w;
}

// Every present view of one float type the kernels handle.
StatusOr<FloatType> CommonType(const std::string& op,
                               std::initializer_list<const cpu::TensorView*> views) {
  DType t = DType::kUndefined;
  for (const cpu::TensorView* v : views) {
    if (!v) continue;
    if (t != DType::kUndefined && v->dtype != t) {
      return Unimplemented(op + " on tensors of different dtypes");
    }
    t = v->dtype;
  }
  return FloatTypeOf(t);
}

// One GEMM call D = op(A) op(B), column-major as cuBLASLt reads it, with alignments from the
// matrices' base alignments and element offsets.
ConvGemm MakeGemm(ConvMatrix a, ConvMatrix b, ConvMatrix d, int64_t m, int64_t n, int64_t k,
                  bool trans_a, int64_t lda, bool trans_b, int64_t ldb, int64_t ldd, DType ab,
                  DType dt, const GemmCallOffsets& at, int64_t a_base, int64_t b_base,
                  int64_t d_base) {
  ConvGemm g;
  g.a = a;
  g.b = b;
  g.d = d;
  GemmDesc& x = g.desc;
  x.m = m;
  x.n = n;
  x.k = k;
  x.trans_a = trans_a;
  x.trans_b = trans_b;
  x.a = {trans_a ? k : m, trans_a ? m : k, lda, 0};
  x.b = {trans_b ? n : k, trans_b ? k : n, ldb, 0};
  x.d = {m, n, ldd, 0};
  x.a_type = x.b_type = ab;
  x.d_type = dt;
  x.calls = {at};
  const int64_t eab = static_cast<int64_t>(DTypeSize(ab)), ed = static_cast<int64_t>(DTypeSize(dt));
  x.a_align = GemmAlignment(a_base, {at.a * eab, lda * eab});
  x.b_align = GemmAlignment(b_base, {at.b * eab, ldb * eab});
  x.d_align = GemmAlignment(d_base, {at.d * ed, ldd * ed});
  return g;
}

constexpr int64_t kPlanAlignment = 64;  // a plan's buffers
constexpr int64_t kScratchAlignment = 256;

}  // namespace

StatusOr<FloatType> FloatTypeOf(DType t) {
  switch (t) {
    case DType::kFloat32:
      return FloatType::kF32;
    case DType::kFloat16:
      return FloatType::kF16;
    case DType::kBFloat16:
      return FloatType::kBF16;
    default:
      return Unimplemented("the CUDA runtime's window kernels on " + std::string(DTypeName(t)) +
                           " tensors (f32, f16 and bf16 only)");
  }
}

StatusOr<ConvStep> DescribeConv(const plan::PlanProto& p, const plan::Step& s) {
  ConvStep c;
  c.grad = s.op().op() == "ConvGrad";
  ASSIGN_OR_RETURN(auto v, ViewsOf(p, s));
  const cpu::TensorView* X = v->input(c.grad ? 1 : 0);
  const cpu::TensorView* W = v->input(c.grad ? 2 : 1);
  const cpu::TensorView* Y = c.grad ? v->input(0) : v->output(0);  // Y or dY
  const std::string op = s.op().op();
  if (!X || !W || !Y) return InvalidArgument(op + ": missing X, W or " + (c.grad ? "dY" : "Y"));
  if (X->rank() < 3 || W->rank() != X->rank() || Y->rank() != X->rank()) {
    return InvalidArgument(op + ": X, W and Y ranks differ or are below 3");
  }
  const int64_t group = v->ctx.attr_int("group", 1);
  const int64_t N = X->dims[0], C = X->dims[1], M = W->dims[0];
  if (group < 1 || C % group != 0 || M % group != 0 || W->dims[1] * group != C || Y->dims[0] != N ||
      Y->dims[1] != M) {
    return InvalidArgument(op + ": X " + cpu::DimsToString(X->dims) + ", W " +
                           cpu::DimsToString(W->dims) + " and group " + S(group) + " disagree");
  }
  ASSIGN_OR_RETURN(
      const cpu::window::Geometry g,
      cpu::window::ReadGeometry(v->ctx, cpu::window::Spatial(X->dims),
                                cpu::window::Spatial(Y->dims), cpu::window::Spatial(W->dims)));
  c.conv.g = ToWindowGeom(g);
  c.conv.n = N;
  c.conv.c = C;
  c.conv.m = M;
  c.conv.groups = group;
  if (c.grad) {
    c.dx = v->output(0) != nullptr;
    c.dw = v->output(1) != nullptr;
    c.db = v->output(2) != nullptr;
    ASSIGN_OR_RETURN(c.type, CommonType(op, {Y, X, W, v->output(0), v->output(1), v->output(2)}));
  } else {
    c.bias = v->input(2) != nullptr;
    ASSIGN_OR_RETURN(c.type, CommonType(op, {X, W, v->input(2), Y}));
  }
  const ConvDesc& d = c.conv;
  const DType t = X->dtype;
  const int64_t e = static_cast<int64_t>(DTypeSize(t));
  const int64_t NP = d.n * d.P(), K = d.K(), mg = d.mg();
  // Scratch: col, then yt (Conv) or dyt (ConvGrad), then dcol (ConvGrad with dX).
  c.col_at = 0;
  int64_t end = Align256(d.col_elements() * e);
  if (!c.grad) {
    c.yt_at = end;
    end += Align256(d.y_elements() * 4);
  } else {
    c.dyt_at = end;
    end += Align256(d.y_elements() * e);
    if (c.dx) {
      c.dcol_at = end;
      end += Align256(d.col_elements() * 4);
    }
  }
  c.scratch_bytes = end;
  for (int64_t gi = 0; gi < d.groups; ++gi) {
    const int64_t w_off = gi * mg * K, col_off = gi * NP * K, y_off = gi * NP * mg;
    if (!c.grad) {
      // yt[g] (row-major [NP, mg]) = col[g] [NP, K] W[g]^T: column-major D [mg x NP] =
      // op(A = W[g], column-major [K x mg], transposed) B (col[g], column-major [K x NP]).
      c.gemms.push_back(MakeGemm(ConvMatrix::kW, ConvMatrix::kCol, ConvMatrix::kYt, mg, NP, K, true,
                                 K, false, K, mg, t, DType::kFloat32, {w_off, col_off, y_off},
                                 kPlanAlignment, kScratchAlignment, kScratchAlignment));
      continue;
    }
    if (c.dw) {
      // dW[g] (row-major [mg, K]) = dyt[g]^T col[g]: column-major D [K x mg] = A (col[g],
      // [K x NP]) op(B = dyt[g], column-major [mg x NP], transposed).
      c.gemms.push_back(MakeGemm(ConvMatrix::kCol, ConvMatrix::kDyt, ConvMatrix::kDw, K, mg, NP,
                                 false, K, true, mg, K, t, t, {col_off, y_off, w_off},
                                 kScratchAlignment, kScratchAlignment, kPlanAlignment));
    }
    if (c.dx) {
      // dcol[g] (row-major [NP, K]) = dyt[g] W[g]: column-major D [K x NP] = A (W[g], [K x mg])
      // B (dyt[g], [mg x NP]).
      c.gemms.push_back(MakeGemm(ConvMatrix::kW, ConvMatrix::kDyt, ConvMatrix::kDcol, K, NP, mg,
                                 false, K, false, mg, K, t, DType::kFloat32,
                                 {w_off, y_off, col_off}, kPlanAlignment, kScratchAlignment,
                                 kScratchAlignment));
    }
  }
  if (c.grad) {
    // dyt[g][n][p][m'] = dY[n][g * mg + m'][p]: index space (g, n, p, m').
    StridedCopy& t2 = c.dy_to_dyt;
    t2.elem_bytes = static_cast<int>(e);
    t2.rank = 4;
    const int64_t P = d.P();
    t2.dims = {d.groups, d.n, P, mg};
    t2.in_strides = {mg * P, d.m * P, 1, P};
    t2.out_strides = {NP * mg, P * mg, mg, 1};
  }
  return c;
}

StatusOr<PoolStep> DescribePool(const plan::PlanProto& p, const plan::Step& s) {
  PoolStep r;
  const std::string op = s.op().op();
  ASSIGN_OR_RETURN(auto v, ViewsOf(p, s));
  r.grad = op == "MaxPoolGrad" || op == "AveragePoolGrad";
  const cpu::TensorView* in = r.grad ? v->output(0) : v->input(0);   // X or dX
  const cpu::TensorView* out = r.grad ? v->input(0) : v->output(0);  // Y or dY
  if (!in || !out) return InvalidArgument(op + ": missing input or output");
  if (in->rank() < 3 || out->rank() != in->rank() || in->dims[0] != out->dims[0] ||
      in->dims[1] != out->dims[1]) {
    return InvalidArgument(op + ": " + cpu::DimsToString(in->dims) + " and " +
                           cpu::DimsToString(out->dims) + " are not (N, C, spatial...) alike");
  }
  if (op == "MaxPool" && v->output(1)) {
    return Unimplemented("MaxPool with Indices on the CUDA runtime");
  }
  const cpu::TensorView* x = op == "MaxPoolGrad" ? v->input(1) : nullptr;
  if (op == "MaxPoolGrad" && (!x || x->dims != in->dims)) {
    return InvalidArgument("MaxPoolGrad: X must be shaped like dX");
  }
  ASSIGN_OR_RETURN(r.type, CommonType(op, {in, out, x}));
  r.pool.planes = in->dims[0] * in->dims[1];
  const std::vector<int64_t> sin = cpu::window::Spatial(in->dims),
                             sout = cpu::window::Spatial(out->dims);
  if (op == "GlobalAveragePool") {
    r.pool.kind = PoolKind::kGlobalAverage;
    for (int64_t o : sout) {
      if (o != 1) return InvalidArgument("GlobalAveragePool: an output spatial dim is not 1");
    }
    if (sin.size() > 3) return Unimplemented("GlobalAveragePool over more than 3 spatial dims");
    const size_t o = 3 - sin.size();
    for (size_t i = 0; i < sin.size(); ++i) r.pool.g.in[o + i] = r.pool.g.k[o + i] = sin[i];
    return r;
  }
  const std::vector<int64_t> kernel = v->ctx.attr_ints("kernel_shape");
  if (kernel.size() != sin.size()) {
    return InvalidArgument(op + ": kernel_shape must have " + S(sin.size()) + " values");
  }
  ASSIGN_OR_RETURN(const cpu::window::Geometry g,
                   cpu::window::ReadGeometry(v->ctx, sin, sout, kernel));
  r.pool.g = ToWindowGeom(g);
  r.pool.kind = op.rfind("MaxPool", 0) == 0 ? PoolKind::kMax : PoolKind::kAverage;
  r.pool.include_pad = v->ctx.attr_int("count_include_pad", 0) != 0;
  return r;
}

StatusOr<PadDesc> DescribePad(const plan::PlanProto& p, const plan::Step& s,
                              const std::vector<int64_t>& pads, const std::vector<int64_t>& axes) {
  if (s.inputs_size() < 1 || s.inputs(0) < 0 || s.outputs_size() < 1 || s.outputs(0) < 0) {
    return InvalidArgument("Pad: no input or output");
  }
  ASSIGN_OR_RETURN(auto v, ViewsOf(p, s));
  const cpu::TensorView& x = v->in[0];
  const cpu::TensorView& y = v->out[0];
  const int64_t r = x.rank();
  if (r > kMaxPadRank || r < 1) return Unimplemented("Pad of a rank-" + S(r) + " tensor");
  const std::string mode = v->ctx.attr_string("mode", "constant");
  PadDesc d;
  const std::optional<PadMode> parsed = PadModeFromName(mode);
  if (!parsed) return InvalidArgument("Pad mode '" + mode + "'");
  d.mode = *parsed;
  std::vector<int64_t> ax = axes;
  if (ax.empty()) {
    for (int64_t a = 0; a < r; ++a) ax.push_back(a);
  }
  if (pads.size() != 2 * ax.size()) {
    return InvalidArgument("Pad: " + S(pads.size()) + " pads for " + S(ax.size()) + " axes");
  }
  d.rank = static_cast<int>(r);
  d.elem_bytes = static_cast<int>(DTypeSize(x.dtype));
  for (int64_t a = 0; a < r; ++a) {
    d.in_dims[a] = x.dims[static_cast<size_t>(a)];
    d.out_dims[a] = y.dims[static_cast<size_t>(a)];
  }
  for (size_t i = 0; i < ax.size(); ++i) {
    const int64_t a = ax[i] < 0 ? ax[i] + r : ax[i];
    if (a < 0 || a >= r) return InvalidArgument("Pad: axis " + S(ax[i]));
    d.begin[a] = pads[i];
    if (d.in_dims[a] + pads[i] + pads[i + ax.size()] != d.out_dims[a]) {
      return InvalidArgument("Pad: the output's axis " + S(a) + " is not the padded input's");
    }
    if (d.mode != PadMode::kConstant && d.in_dims[a] == 0 && d.out_dims[a] > 0) {
      return InvalidArgument("Pad: " + mode + " padding of an empty axis");
    }
  }
  if (d.elem_bytes != 1 && d.elem_bytes != 2 && d.elem_bytes != 4 && d.elem_bytes != 8) {
    return Unimplemented("Pad of " + S(d.elem_bytes) + "-byte elements");
  }
  return d;
}

}  // namespace ampc::cuda
