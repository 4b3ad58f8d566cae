// The CUDA runtime's convolution, pool, Pad and Clip steps (runtime/cuda/window_steps.h), checked
// without a GPU: each description is run on the CPU through the same index maps the device
// kernels call (runtime/cuda/window_desc.h) and the CPU model of cuBLASLt's column-major
// semantics (cuda_plan_util.h), and compared with the CPU runtime's kernels, the oracle, on
// random data: every such step of the CNN fixture's --target cuda plans (bf16 and fp32), and
// synthetic steps with groups, strides, dilations, asymmetric pads, 1-D and 3-D windows,
// overlapping pool windows, NaNs, and every Pad mode. Pools, Pad and Clip must match bit for bit
// (the CPU kernels compute in float, in the same order); convolutions to the tolerance of a
// different summation order (fp32) or of one half rounding (bf16).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "codegen/mlir_compile.h"
#include "codegen/plan.h"
#include "cuda_plan_util.h"
#include "runtime/cpu/convert.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/thread_pool.h"
#include "runtime/cuda/step_plan.h"
#include "runtime/cuda/window_desc.h"
#include "runtime/cuda/window_steps.h"
#include "test_util.h"

namespace ampc {
namespace {

using namespace cuda_test;  // NOLINT

struct HostTensor {
  cpu::TensorView view;
  std::vector<uint8_t> bytes;
  float at(int64_t i) const { return cpu::Load<float>(view, i); }
  void set(int64_t i, double v) { cpu::Store<float>(view, i, static_cast<float>(v)); }
  int64_t size() const { return view.NumElements(); }
};

HostTensor Tensor(DType t, const std::vector<int64_t>& dims) {
  HostTensor h;
  h.view.dtype = t;
  h.view.dims = dims;
  h.bytes.assign(static_cast<size_t>(Count(dims) * static_cast<int64_t>(DTypeSize(t))), 0);
  h.view.data = h.bytes.data();
  return h;
}

// One step's operands: inputs (values), the CPU kernel's outputs, the model's outputs.
struct Operands {
  std::vector<HostTensor> in, cpu, model;
  std::vector<bool> present_out;
};

Operands MakeOperands(const plan::PlanProto& p, const plan::Step& s, std::mt19937_64& rng,
                      const uint8_t* (*constant)(const plan::PlanProto&, int, const void*),
                      const void* ctx) {
  Operands o;
  std::uniform_real_distribution<double> u(-2, 2);
  std::uniform_real_distribution<double> coin(0, 1);
  const bool max_pool = s.op().op().rfind("MaxPool", 0) == 0;
  for (int k = 0; k < s.inputs_size(); ++k) {
    const int id = s.inputs(k);
    if (id < 0) {
      o.in.emplace_back();
      continue;
    }
    const plan::Buffer& b = p.buffers(id);
    HostTensor t = Tensor(*DTypeFromName(b.dtype()), Dims(b));
    if (const uint8_t* c = constant(p, id, ctx)) {
      std::memcpy(t.bytes.data(), c, t.bytes.size());
    } else if (IsFloat(t.view.dtype)) {
      for (int64_t i = 0; i < t.size(); ++i) {
        // Max pools see NaNs and repeated values (ties) as well.
        const double r = coin(rng);
        t.set(i, max_pool && r < 0.03 ? std::nan("") : max_pool && r < 0.25 ? 0.5 : u(rng));
      }
    }
    o.in.push_back(std::move(t));
  }
  // AveragePoolGrad's x_shape: dX's dims.
  if (s.op().op() == "AveragePoolGrad") {
    const std::vector<int64_t> dx = Dims(p.buffers(s.outputs(0)));
    std::memcpy(o.in[1].bytes.data(), dx.data(), dx.size() * 8);
  }
  for (int id : s.outputs()) {
    o.present_out.push_back(id >= 0);
    const plan::Buffer* b = id >= 0 ? &p.buffers(id) : nullptr;
    o.cpu.push_back(b ? Tensor(*DTypeFromName(b->dtype()), Dims(*b)) : HostTensor{});
    o.model.push_back(b ? Tensor(*DTypeFromName(b->dtype()), Dims(*b)) : HostTensor{});
  }
  return o;
}

void RunCpuKernel(const plan::Step& s, Operands& o) {
  AttributeMap attrs;
  for (const plan::Attr& a : s.op().attrs()) attrs[a.name()] = *AttributeFromPlan(a);
  cpu::KernelContext ctx;
  ctx.op = s.op().op();
  ctx.attrs = &attrs;
  for (HostTensor& t : o.in)
    ctx.inputs.push_back(t.bytes.empty() && t.view.dims.empty() ? nullptr : &t.view);
  for (size_t k = 0; k < o.cpu.size(); ++k) {
    ctx.outputs.push_back(o.present_out[k] ? &o.cpu[k].view : nullptr);
  }
  cpu::ThreadPool pool(1);
  ctx.pool = &pool;
  cpu::KernelFn fn = cpu::KernelRegistry::Global().Find(s.op().domain(), s.op().op());
  ASSERT_NE(fn, nullptr) << s.op().op();
  const Status st = fn(ctx);
  ASSERT_TRUE(st.ok()) << st.message();
}

std::vector<double> Values(const HostTensor& t) {
  std::vector<double> v(static_cast<size_t>(t.size()));
  for (int64_t i = 0; i < t.size(); ++i) v[static_cast<size_t>(i)] = t.at(i);
  return v;
}

// D of one GEMM description, merged into `d` (the positions its calls write).
void ModelGemm(const cuda::ConvGemm& g, const std::vector<double>& a, const std::vector<double>& b,
               std::vector<double>* d) {
  GemmDesc desc = g.desc;
  desc.a_input = 0;
  desc.b_input = 1;
  const std::vector<double> y = CublasLtModel(desc, {a, b}, static_cast<int64_t>(d->size()));
  for (const cuda::GemmCallOffsets& c : desc.calls) {
    for (int64_t j = 0; j < desc.n; ++j) {
      for (int64_t i = 0; i < desc.m; ++i) {
        const size_t at = static_cast<size_t>(c.d + i + j * desc.d.ld);
        (*d).at(at) = y.at(at);
      }
    }
  }
}

// The CUDA executor's work on a Conv / ConvGrad step, on the CPU.
void ModelConv(const cuda::ConvStep& c, Operands& o) {
  const cuda::ConvDesc& d = c.conv;
  const std::vector<double> x = Values(o.in[c.grad ? 1 : 0]), w = Values(o.in[c.grad ? 2 : 1]);
  std::vector<double> col(static_cast<size_t>(d.col_elements()));
  for (int64_t t = 0; t < d.col_elements(); ++t) {
    const int64_t src = cuda::Im2ColSource(d, t);
    col[static_cast<size_t>(t)] = src < 0 ? 0.0 : x.at(static_cast<size_t>(src));
  }
  std::vector<double> yt(static_cast<size_t>(d.y_elements()), std::nan("")), dyt = yt, dw, dcol;
  if (c.grad) {
    const std::vector<double> dy = Values(o.in[0]);
    cuda::StridedCopy copy = c.dy_to_dyt;  // the same index map, on doubles
    EXPECT_EQ(copy.elements(), d.y_elements());
    copy.elem_bytes = sizeof(double);
    RunCopyModel(copy, reinterpret_cast<const uint8_t*>(dy.data()),
                 reinterpret_cast<uint8_t*>(dyt.data()));
    if (c.dw) dw.assign(static_cast<size_t>(o.model[1].size()), std::nan(""));
    if (c.dx) dcol.assign(col.size(), std::nan(""));
  }
  auto matrix = [&](cuda::ConvMatrix m) -> std::vector<double>* {
    switch (m) {
      case cuda::ConvMatrix::kW:
        return const_cast<std::vector<double>*>(&w);
      case cuda::ConvMatrix::kDw:
        return &dw;
      case cuda::ConvMatrix::kCol:
        return &col;
      case cuda::ConvMatrix::kYt:
        return &yt;
      case cuda::ConvMatrix::kDyt:
        return &dyt;
      case cuda::ConvMatrix::kDcol:
        return &dcol;
    }
    return nullptr;
  };
  for (const cuda::ConvGemm& g : c.gemms) ModelGemm(g, *matrix(g.a), *matrix(g.b), matrix(g.d));
  if (!c.grad) {
    const bool bias = c.bias;
    for (int64_t i = 0; i < d.y_elements(); ++i) {
      double v = static_cast<float>(yt.at(static_cast<size_t>(cuda::ConvRowMajorAt(d, i))));
      if (bias) v += o.in[2].at((i / d.P()) % d.m);
      o.model[0].set(i, v);
    }
    return;
  }
  if (c.dx) {
    for (int64_t i = 0; i < d.x_elements(); ++i) {
      o.model[0].set(i, cuda::Col2ImAt(d, i, [&](int64_t j) {
                       return static_cast<float>(dcol.at(static_cast<size_t>(j)));
                     }));
    }
  }
  if (c.dw) {
    for (int64_t i = 0; i < o.model[1].size(); ++i)
      o.model[1].set(i, dw.at(static_cast<size_t>(i)));
  }
  if (c.db) {
    for (int64_t m = 0; m < d.m; ++m) {
      double s = 0;
      for (int64_t n = 0; n < d.n; ++n) {
        for (int64_t p = 0; p < d.P(); ++p) s += o.in[0].at((n * d.m + m) * d.P() + p);
      }
      o.model[2].set(m, s);
    }
  }
}

void ModelPool(const cuda::PoolStep& ps, Operands& o) {
  const cuda::PoolDesc& d = ps.pool;
  if (!ps.grad) {
    const HostTensor& x = o.in[0];
    for (int64_t i = 0; i < o.model[0].size(); ++i) {
      o.model[0].set(i, cuda::PoolAt(d, i, [&](int64_t j) { return x.at(j); }));
    }
    return;
  }
  const HostTensor& dy = o.in[0];
  const HostTensor* x = d.kind == cuda::PoolKind::kMax ? &o.in[1] : nullptr;
  for (int64_t i = 0; i < o.model[0].size(); ++i) {
    o.model[0].set(i, cuda::PoolGradAt(
                          d, i, [&](int64_t j) { return x ? x->at(j) : 0.0f; },
                          [&](int64_t j) { return dy.at(j); }));
  }
}

void ModelPad(const cuda::PadDesc& d, Operands& o) {
  const size_t e = static_cast<size_t>(d.elem_bytes);
  ASSERT_EQ(static_cast<int64_t>(o.model[0].bytes.size()), d.out_elements() * d.elem_bytes);
  for (int64_t t = 0; t < d.out_elements(); ++t) {
    const int64_t src = cuda::PadAt(d, t);
    std::memcpy(o.model[0].bytes.data() + t * d.elem_bytes,
                src < 0 ? reinterpret_cast<const uint8_t*>(&d.value_bits)
                        : o.in[0].bytes.data() + src * d.elem_bytes,
                e);
  }
}

void ModelClip(Operands& o) {
  const float lo = o.in.size() > 1 && !o.in[1].bytes.empty()
                       ? o.in[1].at(0)
                       : -std::numeric_limits<float>::infinity();
  const float hi = o.in.size() > 2 && !o.in[2].bytes.empty()
                       ? o.in[2].at(0)
                       : std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < o.model[0].size(); ++i) {
    o.model[0].set(i, cuda::ClipValue(o.in[0].at(i), lo, hi));
  }
}

std::vector<int64_t> HostInts(const HostTensor& t) {
  std::vector<int64_t> v(static_cast<size_t>(t.size()));
  if (!v.empty()) std::memcpy(v.data(), t.bytes.data(), v.size() * 8);
  return v;
}

// Runs step i of p both ways and compares; returns its kind.
cuda::StepKind CheckStep(const plan::PlanProto& p, int i, cuda::StepKind kind, std::mt19937_64& rng,
                         const uint8_t* (*constant)(const plan::PlanProto&, int, const void*),
                         const void* ctx) {
  const plan::Step& s = p.steps(i);
  const std::string what = DescribeStep(p, i);
  Operands o = MakeOperands(p, s, rng, constant, ctx);
  RunCpuKernel(s, o);
  bool exact = true;
  switch (kind) {
    case cuda::StepKind::kConv: {
      auto c = cuda::DescribeConv(p, s);
      EXPECT_TRUE(c.ok()) << what << ": " << c.status().message();
      if (!c.ok()) return kind;
      // The scratch matrices do not overlap.
      const int64_t e = cuda::FloatTypeBytes(c->type);
      EXPECT_LE(c->conv.col_elements() * e, c->grad ? c->dyt_at : c->yt_at) << what;
      if (c->grad && c->dx) {
        EXPECT_LE(c->dyt_at + c->conv.y_elements() * e, c->dcol_at) << what;
      }
      ModelConv(*c, o);
      exact = false;
      break;
    }
    case cuda::StepKind::kPool: {
      auto ps = cuda::DescribePool(p, s);
      EXPECT_TRUE(ps.ok()) << what << ": " << ps.status().message();
      if (!ps.ok()) return kind;
      ModelPool(*ps, o);
      break;
    }
    case cuda::StepKind::kPad: {
      std::vector<int64_t> axes;
      if (s.inputs_size() > 3 && s.inputs(3) >= 0) axes = HostInts(o.in[3]);
      auto d = cuda::DescribePad(p, s, HostInts(o.in[1]), axes);
      EXPECT_TRUE(d.ok()) << what << ": " << d.status().message();
      if (!d.ok()) return kind;
      if (s.inputs_size() > 2 && s.inputs(2) >= 0) {
        std::memcpy(&d->value_bits, o.in[2].bytes.data(), static_cast<size_t>(d->elem_bytes));
      }
      ModelPad(*d, o);
      break;
    }
    case cuda::StepKind::kClip:
      ModelClip(o);
      break;
    default:
      ADD_FAILURE() << what << ": not a window step";
      return kind;
  }
  for (size_t k = 0; k < o.cpu.size(); ++k) {
    if (!o.present_out[k]) continue;
    if (exact) {
      EXPECT_EQ(o.cpu[k].bytes, o.model[k].bytes) << what << " output " << k;
      continue;
    }
    // Convolutions: the scale of the output, and the tolerance of its dtype.
    double scale = 0;
    for (int64_t j = 0; j < o.cpu[k].size(); ++j)
      scale = std::max(scale, std::fabs(double{o.cpu[k].at(j)}));
    const double tol = (o.cpu[k].view.dtype == DType::kFloat32 ? 1e-5 : 1e-2) * (scale + 1);
    int bad = 0;
    for (int64_t j = 0; j < o.cpu[k].size(); ++j) {
      if (!(std::fabs(o.cpu[k].at(j) - o.model[k].at(j)) <= tol) && bad++ < 3) {
        ADD_FAILURE() << what << " output " << k << " element " << j << ": CPU " << o.cpu[k].at(j)
                      << ", model " << o.model[k].at(j);
      }
    }
  }
  return kind;
}

const uint8_t* PlanConstant(const plan::PlanProto& p, int id, const void* plan) {
  const plan::Buffer& b = p.buffers(id);
  return b.kind() == plan::Buffer::CONSTANT ? BufferData(*static_cast<const Plan*>(plan), b)
                                            : nullptr;
}

TEST(CudaWindow, TheCnnPlansWindowStepsComputeWhatTheCpuKernelsCompute) {
  if (!HaveMlir() || !HaveCudaToolkit()) GTEST_SKIP() << "no MLIR or CUDA toolkit";
  const std::vector<Plan>& plans = CudaPlans();  // mlp, cnn, transformer x bf16, fp32
  ASSERT_EQ(plans.size(), 6u);
  std::mt19937_64 rng(11);
  for (size_t pi : {2, 3}) {
    const plan::PlanProto& p = plans[pi].proto;
    auto kinds = cuda::ClassifySteps(p);
    ASSERT_TRUE(kinds.ok()) << kinds.status().message();
    std::map<std::string, int> checked;
    for (int i = 0; i < p.steps_size(); ++i) {
      const cuda::StepKind k = (*kinds)[static_cast<size_t>(i)];
      if (k != cuda::StepKind::kConv && k != cuda::StepKind::kPool && k != cuda::StepKind::kPad &&
          k != cuda::StepKind::kClip) {
        continue;
      }
      CheckStep(p, i, k, rng, PlanConstant, &plans[pi]);
      ++checked[p.steps(i).op().op()];
    }
    // The CNN's three convolutions and their gradients, both pools and their gradients, the
    // global pool, Pad and Clip.
    for (const char* op : {"Conv", "ConvGrad", "MaxPool", "MaxPoolGrad", "AveragePool",
                           "AveragePoolGrad", "GlobalAveragePool", "Pad", "Clip"}) {
      EXPECT_GT(checked[op], 0) << op << " in plan " << pi;
    }
    EXPECT_EQ(checked["Conv"], 3);
    EXPECT_EQ(checked["ConvGrad"], 3);
    auto scratch = cuda::ScratchBytes(p, *kinds);
    ASSERT_TRUE(scratch.ok());
    EXPECT_GT(*scratch, 0);
  }
}

// --- synthetic steps ----------------------------------------------------------------------------

struct Operand {
  Operand(DType t, std::vector<int64_t> d, std::vector<int64_t> v = {})
      : dtype(t), dims(std::move(d)), ints(std::move(v)) {}
  DType dtype;
  std::vector<int64_t> dims;
  std::vector<int64_t> ints;  // a constant's values (i64)
};

plan::Attr Ints(const std::string& name, const std::vector<int64_t>& v) {
  plan::Attr a;
  a.set_name(name);
  for (int64_t x : v) a.mutable_ints()->add_v(x);
  return a;
}
plan::Attr Int(const std::string& name, int64_t v) {
  plan::Attr a;
  a.set_name(name);
  a.set_i(v);
  return a;
}
plan::Attr Str(const std::string& name, const std::string& v) {
  plan::Attr a;
  a.set_name(name);
  a.set_s(v);
  return a;
}

struct OneStep {
  plan::PlanProto proto;
  std::map<int, std::vector<uint8_t>> constants;
};

OneStep MakeStep(const std::string& domain, const std::string& op, const std::vector<Operand>& in,
                 const std::vector<Operand>& out, const std::vector<plan::Attr>& attrs) {
  OneStep o;
  plan::Step* s = o.proto.add_steps();
  s->set_name("synthetic");
  s->mutable_op()->set_op(op);
  s->mutable_op()->set_domain(domain);
  for (const plan::Attr& a : attrs) *s->mutable_op()->add_attrs() = a;
  auto add = [&](const Operand& x) {
    if (x.dtype == DType::kUndefined) return -1;
    const int id = o.proto.buffers_size();
    plan::Buffer* b = o.proto.add_buffers();
    b->set_name("b" + std::to_string(id));
    b->set_dtype(std::string(DTypeName(x.dtype)));
    for (int64_t d : x.dims) b->add_dims(d);
    b->set_size_bytes(Count(x.dims) * static_cast<int64_t>(DTypeSize(x.dtype)));
    if (!x.ints.empty()) {  // a constant: i64 values, or float ones converted to its dtype
      b->set_kind(plan::Buffer::CONSTANT);
      std::vector<uint8_t>& c = o.constants[id];
      c.resize(x.ints.size() * DTypeSize(x.dtype));
      for (size_t i = 0; i < x.ints.size(); ++i) {
        if (x.dtype == DType::kInt64) {
          std::memcpy(c.data() + 8 * i, &x.ints[i], 8);
        } else {
          cpu::Store<double>(c.data(), x.dtype, static_cast<int64_t>(i),
                             static_cast<double>(x.ints[i]));
        }
      }
    }
    return id;
  };
  for (const Operand& x : in) s->add_inputs(add(x));
  for (const Operand& x : out) s->add_outputs(add(x));
  return o;
}

const uint8_t* StepConstant(const plan::PlanProto&, int id, const void* step) {
  const auto& c = static_cast<const OneStep*>(step)->constants;
  auto it = c.find(id);
  return it == c.end() ? nullptr : it->second.data();
}

void CheckOne(const OneStep& o, cuda::StepKind expect, std::mt19937_64& rng) {
  auto kinds = cuda::ClassifySteps(o.proto);
  ASSERT_TRUE(kinds.ok()) << kinds.status().message();
  ASSERT_EQ((*kinds)[0], expect) << DescribeStep(o.proto, 0);
  CheckStep(o.proto, 0, expect, rng, StepConstant, &o);
}

TEST(CudaWindow, ConvolutionsOfEveryGeometryMatchTheCpuKernels) {
  std::mt19937_64 rng(5);
  const DType none = DType::kUndefined;
  for (DType t : {DType::kFloat32, DType::kBFloat16, DType::kFloat16}) {
    SCOPED_TRACE(DTypeName(t));
    // 2-D, two groups, strides, dilation, asymmetric pads, bias.
    const std::vector<plan::Attr> a2 = {Int("group", 2), Ints("strides", {2, 1}),
                                        Ints("pads", {1, 0, 2, 1}), Ints("dilations", {1, 2}),
                                        Ints("kernel_shape", {3, 3})};
    const Operand X{t, {2, 4, 7, 6}}, W{t, {6, 2, 3, 3}}, B{t, {6}}, Y{t, {2, 6, 4, 3}};
    CheckOne(MakeStep("", "Conv", {X, W, B}, {Y}, a2), cuda::StepKind::kConv, rng);
    CheckOne(MakeStep("com.ampc", "ConvGrad", {Y, X, W}, {X, W, B}, a2), cuda::StepKind::kConv,
             rng);
    CheckOne(MakeStep("com.ampc", "ConvGrad", {Y, X, W}, {{none, {}}, W, {none, {}}}, a2),
             cuda::StepKind::kConv, rng);
    // 1-D with stride 3, no bias; 3-D with pads.
    const std::vector<plan::Attr> a1 = {Ints("strides", {3}), Ints("pads", {1, 1})};
    const Operand X1{t, {3, 2, 9}}, W1{t, {4, 2, 2}}, Y1{t, {3, 4, 4}};
    CheckOne(MakeStep("", "Conv", {X1, W1}, {Y1}, a1), cuda::StepKind::kConv, rng);
    CheckOne(MakeStep("com.ampc", "ConvGrad", {Y1, X1, W1}, {X1, W1, {t, {4}}}, a1),
             cuda::StepKind::kConv, rng);
    const std::vector<plan::Attr> a3 = {Ints("pads", {0, 1, 0, 1, 1, 0})};
    const Operand X3{t, {1, 2, 4, 5, 3}}, W3{t, {3, 2, 2, 3, 1}}, Y3{t, {1, 3, 4, 5, 3}};
    CheckOne(MakeStep("", "Conv", {X3, W3, {t, {3}}}, {Y3}, a3), cuda::StepKind::kConv, rng);
    CheckOne(MakeStep("com.ampc", "ConvGrad", {Y3, X3, W3}, {X3, W3, {t, {3}}}, a3),
             cuda::StepKind::kConv, rng);
  }
}

TEST(CudaWindow, PoolsPadAndClipOfEveryGeometryMatchTheCpuKernelsBitForBit) {
  std::mt19937_64 rng(7);
  for (DType t : {DType::kFloat32, DType::kBFloat16, DType::kFloat16}) {
    SCOPED_TRACE(DTypeName(t));
    // Overlapping max windows with padding; a dilated one.
    const std::vector<plan::Attr> m1 = {Ints("kernel_shape", {3, 3}), Ints("pads", {1, 1, 1, 1})};
    const Operand X{t, {2, 3, 5, 6}};
    CheckOne(MakeStep("", "MaxPool", {X}, {X}, m1), cuda::StepKind::kPool, rng);
    CheckOne(MakeStep("com.ampc", "MaxPoolGrad", {X, X}, {X}, m1), cuda::StepKind::kPool, rng);
    const std::vector<plan::Attr> m2 = {Ints("kernel_shape", {2, 2}), Ints("dilations", {2, 2})};
    const Operand Xd{t, {1, 2, 6, 5}}, Yd{t, {1, 2, 4, 3}};
    CheckOne(MakeStep("", "MaxPool", {Xd}, {Yd}, m2), cuda::StepKind::kPool, rng);
    CheckOne(MakeStep("com.ampc", "MaxPoolGrad", {Yd, Xd}, {Xd}, m2), cuda::StepKind::kPool, rng);
    // Average windows over padding, counted with and without it.
    const Operand Xa{t, {2, 2, 7, 6}}, Ya{t, {2, 2, 4, 3}};
    for (int include : {0, 1}) {
      const std::vector<plan::Attr> av = {Ints("kernel_shape", {3, 3}), Ints("strides", {2, 2}),
                                          Ints("pads", {1, 1, 1, 1}),
                                          Int("count_include_pad", include)};
      CheckOne(MakeStep("", "AveragePool", {Xa}, {Ya}, av), cuda::StepKind::kPool, rng);
      CheckOne(MakeStep("com.ampc", "AveragePoolGrad", {Ya, {DType::kInt64, {4}}}, {Xa}, av),
               cuda::StepKind::kPool, rng);
    }
    CheckOne(MakeStep("", "GlobalAveragePool", {{t, {2, 3, 2, 3, 4}}}, {{t, {2, 3, 1, 1, 1}}}, {}),
             cuda::StepKind::kPool, rng);
    // Every Pad mode, with a negative (cropping) pad; the constant from an input.
    const Operand P{DType::kInt64, {6}, {0, 1, -1, 1, 2, 2}};
    for (const char* mode : {"constant", "reflect", "edge", "wrap"}) {
      SCOPED_TRACE(mode);
      CheckOne(MakeStep("", "Pad", {{t, {2, 3, 4}}, P}, {{t, {3, 6, 5}}}, {Str("mode", mode)}),
               cuda::StepKind::kPad, rng);
    }
    CheckOne(MakeStep("", "Pad", {{t, {2, 3, 4}}, P, {t, {}, {3}}}, {{t, {3, 6, 5}}}, {}),
             cuda::StepKind::kPad, rng);
    // Clip with both bounds (random, so sometimes lo > hi) and with the lower one only.
    CheckOne(MakeStep("", "Clip", {{t, {37}}, {t, {}}, {t, {}}}, {{t, {37}}}, {}),
             cuda::StepKind::kClip, rng);
    CheckOne(MakeStep("", "Clip", {{t, {37}}, {t, {}}}, {{t, {37}}}, {}), cuda::StepKind::kClip,
             rng);
  }
}

// What the CUDA runtime cannot run is refused when the plan is classified, naming the step.
TEST(CudaWindow, UnsupportedWindowStepsAreRefusedByName) {
  const DType f = DType::kFloat32;
  auto indices =
      cuda::ClassifySteps(MakeStep("", "MaxPool", {{f, {1, 1, 4, 4}}},
                                   {{f, {1, 1, 2, 2}}, {DType::kInt64, {1, 1, 2, 2}}},
                                   {Ints("kernel_shape", {2, 2}), Ints("strides", {2, 2})})
                              .proto);
  ASSERT_FALSE(indices.ok());
  EXPECT_NE(indices.status().message().find("MaxPool with Indices"), std::string::npos)
      << indices.status().message();
  auto f64 = cuda::ClassifySteps(
      MakeStep("", "Conv", {{DType::kFloat64, {1, 1, 4, 4}}, {DType::kFloat64, {1, 1, 3, 3}}},
               {{DType::kFloat64, {1, 1, 2, 2}}}, {})
          .proto);
  ASSERT_FALSE(f64.ok());
  EXPECT_NE(f64.status().message().find("f64"), std::string::npos) << f64.status().message();
  auto clip = cuda::ClassifySteps(
      MakeStep("", "Clip", {{f, {4}}, {f, {2}}}, {{f, {4}}}, {}).proto);  // a vector bound
  ASSERT_FALSE(clip.ok());
  EXPECT_NE(clip.status().message().find("Clip bound 1 is not a scalar"), std::string::npos)
      << clip.status().message();
  // Pads computed on the device (not a constant or a host step's value).
  auto pads = cuda::ClassifySteps(
      MakeStep("", "Pad", {{f, {2, 3}}, {DType::kInt64, {4}}}, {{f, {2, 3}}}, {}).proto);
  ASSERT_FALSE(pads.ok());
  EXPECT_NE(pads.status().message().find("Pad input 1"), std::string::npos)
      << pads.status().message();
}

}  // namespace
}  // namespace ampc
