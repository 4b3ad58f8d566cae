// What the CUDA executor decides without a GPU (runtime/cuda/launch.h, gemm_layout.h), checked on
// every generated kernel and every GEMM step of the fixture models' --target cuda plans:
//  - a kernel launch passes exactly the parameters its PTX declares (the PTX, written by LLVM's
//    NVPTX back end, is the independent reference), with each operand's address where the
//    kernel reads it, and covers the kernel's range with its grid;
//  - a GEMM description, run through a CPU model of cuBLASLt's documented column-major semantics
//    (D = alpha op(A) op(B) + beta C + bias, leading dimensions, strided batches), computes what
//    ONNX's MatMul / Gemm definition computes, written out directly in float64 below.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "codegen/mlir_compile.h"
#include "codegen/plan.h"
#include "codegen/plan_target.h"
#include "cuda_plan_util.h"
#include "generated_kernels_util.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/thread_pool.h"
#include "runtime/cuda/executor.h"
#include "runtime/cuda/gemm_layout.h"
#include "runtime/cuda/launch.h"
#include "runtime/cuda/step_plan.h"
#include "runtime/device_info.h"
#include "runtime/executor.h"
#include "test_util.h"

namespace ampc {
namespace {

using cuda::DescribeGemm;
using cuda::GemmDesc;
using cuda::GemmOperand;
using namespace cuda_test;  // NOLINT

// The number of parameters the PTX's (only) entry declares.
int PtxParams(const std::string& ptx) {
  const size_t entry = ptx.find(".entry");
  const size_t body = ptx.find('{', entry);
  int n = 0;
  for (size_t at = ptx.find(".param", entry); at != std::string::npos && at < body;
       at = ptx.find(".param", at + 1)) {
    ++n;
  }
  return n;
}

TEST(CudaPlan, KernelLaunchesPassWhatThePtxDeclares) {
  if (!HaveMlir() || !HaveCudaToolkit()) GTEST_SKIP() << "no MLIR or CUDA toolkit";
  int launches = 0, fills = 0, multi_tensor = 0;
  for (const Plan& plan : CudaPlans()) {
    const plan::PlanProto& p = plan.proto;
    for (int i = 0; i < p.steps_size(); ++i) {
      const plan::Step& s = p.steps(i);
      if (!s.has_kernel()) continue;
      const plan::Kernel& k = p.kernels(s.kernel().kernel());
      auto operand = [&](int id) {
        return cuda::DeviceOperand{0x7f0000000000ull + 0x100000ull * static_cast<uint64_t>(id),
                                   Count(Dims(p.buffers(id))), p.buffers(id).size_bytes()};
      };
      std::vector<cuda::DeviceOperand> in, out;
      for (int id : s.inputs()) in.push_back(operand(id));
      for (int id : s.outputs()) out.push_back(operand(id));
      auto l = cuda::PlanKernelLaunch(k, in, out);
      ASSERT_TRUE(l.ok()) << DescribeStep(p, i) << ": " << l.status().message();
      std::string ptx;
      for (const auto& img : k.images()) {
        if (img.format() == plan::KernelImage::PTX) ptx = img.data();
      }
      const int declared = PtxParams(ptx);
      EXPECT_EQ(static_cast<int>(l->slots.size()), declared) << DescribeStep(p, i);
      EXPECT_EQ(*cuda::KernelParamSlots(k), declared);
      // The grid covers the range and no block is idle.
      const int range_id = s.outputs(k.launch().elements_of_output());
      const int64_t range = Count(Dims(p.buffers(range_id)));
      // CUDA's classic limit on a kernel's parameters (4 KB; larger needs CUDA 12.1 and Volta).
      EXPECT_LE(l->slots.size() * 8, 4096u) << DescribeStep(p, i);
      if (k.launch().units() > 0 && !k.launch().fill_range_output()) {
        // A multi-tensor optimizer on the GPU's grain: a unit per element of each parameter
        // (input 2 of each member's per-op fallback), end to end.
        ASSERT_GT(s.fusion_group(), 0) << DescribeStep(p, i);
        const plan::FusionGroup& fg = p.fusion_groups(s.fusion_group() - 1);
        int64_t elements = 0;
        for (const plan::Step& f : fg.fallback()) {
          EXPECT_TRUE(f.op().op() == "Adam" || f.op().op() == "SGD") << DescribeStep(p, i);
          elements += Count(Dims(p.buffers(f.inputs(2))));
        }
        EXPECT_EQ(l->units, elements) << DescribeStep(p, i);
        EXPECT_EQ(l->fill_bytes, 0);
        ++multi_tensor;
      } else if (k.launch().units() > 0) {
        // AllFinite on the GPU's grain: a unit per element of its largest input, onto its flag
        // filled with true.
        int64_t largest = 0;
        for (int id : s.inputs()) largest = std::max(largest, Count(Dims(p.buffers(id))));
        EXPECT_EQ(l->units, largest) << DescribeStep(p, i);
        EXPECT_TRUE(k.launch().fill_range_output()) << DescribeStep(p, i);
        EXPECT_EQ(l->fill_address, operand(range_id).address);
        EXPECT_EQ(l->fill_bytes, 1);
        EXPECT_EQ(l->fill_byte, 1);
        ++fills;
      } else {
        EXPECT_EQ(l->units * std::max<int64_t>(1, k.launch().row_elements()), range);
        EXPECT_EQ(l->fill_bytes, 0);
      }
      EXPECT_EQ(l->block, 256u);
      EXPECT_GE(int64_t{l->grid} * l->block, l->units);
      EXPECT_LT((int64_t{l->grid} - 1) * l->block, l->units);
      // Each operand's descriptor where the params put it.
      size_t slot = 0;
      for (const std::string& param : k.params()) {
        if (param == "begin") {
          EXPECT_EQ(l->slots[slot++], 0u);
        } else if (param == "end") {
          EXPECT_EQ(l->slots[slot++], static_cast<uint64_t>(l->units));
        } else if (param.rfind("arg:", 0) == 0) {
          const int j = std::stoi(param.substr(4));
          const int id = j < s.inputs_size() ? s.inputs(j) : s.outputs(j - s.inputs_size());
          const cuda::DeviceOperand o = operand(id);
          EXPECT_EQ(l->slots[slot], o.address);
          EXPECT_EQ(l->slots[slot + 1], o.address);
          EXPECT_EQ(l->slots[slot + 2], 0u);
          EXPECT_EQ(l->slots[slot + 3], static_cast<uint64_t>(o.elements));
          EXPECT_EQ(l->slots[slot + 4], 1u);
          slot += 5;
        } else {
          ++slot;
        }
      }
      ++launches;
    }
  }
  EXPECT_GT(launches, 100);
  EXPECT_GE(fills, 2);         // the bf16 plans' finite checks
  EXPECT_GE(multi_tensor, 6);  // every plan's optimizer (at least one kernel each)
}

TEST(CudaPlan, KernelLaunchRefusesWhatDoesNotFit) {
  plan::Kernel k;
  k.set_name("k");
  k.mutable_launch()->set_block_threads(256);
  k.mutable_launch()->set_row_elements(3);
  k.add_params("begin");
  k.add_params("end");
  k.add_params("arg:2");
  const std::vector<cuda::DeviceOperand> in = {{0x1000, 6}}, out = {{0x2000, 6}};
  EXPECT_NE(cuda::PlanKernelLaunch(k, in, out).status().message().find("2 operands"),
            std::string::npos);
  k.set_params(2, "arg:1");
  auto l = cuda::PlanKernelLaunch(k, in, out);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->units, 2);
  EXPECT_EQ(l->slots.size(), 7u);
  EXPECT_EQ(l->slots[2], 0x2000u);
  k.mutable_launch()->set_row_elements(4);
  EXPECT_NE(cuda::PlanKernelLaunch(k, in, out).status().message().find("do not divide"),
            std::string::npos);
  k.mutable_launch()->set_row_elements(1);
  k.mutable_launch()->set_block_threads(0);
  EXPECT_FALSE(cuda::PlanKernelLaunch(k, in, out).ok());
  k.mutable_launch()->set_block_threads(256);
  k.add_params("tid");
  EXPECT_NE(cuda::PlanKernelLaunch(k, in, out).status().message().find("'tid'"), std::string::npos);
  EXPECT_FALSE(cuda::KernelParamSlots(k).ok());
}

// Which image a GPU loads: the cubin of its architecture (sm_80 SASS on any 8.x, sm_90 only on
// 9.0), else a PTX no newer than the GPU, else an error naming the target to compile for.
TEST(CudaPlan, KernelImagesChosenByComputeCapability) {
  plan::Kernel k;
  k.set_name("k");
  auto add = [&](plan::KernelImage::Format f, const std::string& arch) {
    auto* i = k.add_images();
    i->set_format(f);
    i->set_arch(arch);
    i->set_data(arch + (f == plan::KernelImage::PTX ? " ptx" : " cubin"));
  };
  add(plan::KernelImage::PTX, "sm_90");
  add(plan::KernelImage::CUBIN, "sm_90");
  auto pick = [&](int major, int minor) -> std::string {
    auto i = cuda::ChooseKernelImage(k, major, minor);
    return i.ok() ? (*i)->data() : i.status().message();
  };
  EXPECT_EQ(pick(9, 0), "sm_90 cubin");
  EXPECT_EQ(pick(10, 0), "sm_90 ptx");  // Blackwell: the driver compiles the PTX
  EXPECT_NE(pick(8, 6).find("compile the plan with --target cuda:sm_80"), std::string::npos);
  EXPECT_NE(pick(7, 5).find("8.0 (Ampere) or newer"), std::string::npos);
  k.clear_images();
  add(plan::KernelImage::PTX, "sm_80");
  add(plan::KernelImage::CUBIN, "sm_80");
  EXPECT_EQ(pick(8, 0), "sm_80 cubin");
  EXPECT_EQ(pick(8, 6), "sm_80 cubin");
  EXPECT_EQ(pick(9, 0), "sm_80 ptx");
  // The targets a GPU compiles for, and --device's parsing.
  EXPECT_EQ(*CudaTargetFor(8, 9), "cuda:sm_80");
  EXPECT_EQ(*CudaTargetFor(9, 0), "cuda:sm_90");
  EXPECT_EQ(*CudaTargetFor(12, 0), "cuda:sm_90");
  EXPECT_FALSE(CudaTargetFor(7, 0).ok());
  EXPECT_EQ(*cuda::ParseCudaDevice("cuda"), 0);
  EXPECT_EQ(*cuda::ParseCudaDevice("cuda:12"), 12);
  for (const char* bad : {"cuda:", "cuda:x", "cuda:-1", "gpu", "cuda:123456789"}) {
    EXPECT_FALSE(cuda::ParseCudaDevice(bad).ok()) << bad;
  }
}

// --- GEMM ---------------------------------------------------------------------------------------

struct GemmCase {
  std::string domain, op;
  AttributeMap attrs;
  std::vector<GemmOperand> inputs;
  GemmOperand output;
};

// ONNX's definition, row-major, float64: MatMul (numpy matmul; com.ampc's transA / transB swap
// the last two axes first) and Gemm (alpha op(A) op(B) + beta C, C broadcast to [M, N]).
std::vector<double> OnnxReference(const GemmCase& c, const std::vector<std::vector<double>>& x) {
  auto attr = [&](const char* n, int64_t d) {
    auto it = c.attrs.find(n);
    return it == c.attrs.end() ? d : it->second.i();
  };
  auto fattr = [&](const char* n, float d) {
    auto it = c.attrs.find(n);
    return it == c.attrs.end() ? d : it->second.f();
  };
  const bool ta = attr("transA", 0), tb = attr("transB", 0);
  std::vector<int64_t> ad = c.inputs[0].dims, bd = c.inputs[1].dims;
  if (ad.size() == 1) ad.insert(ad.begin(), 1);
  if (bd.size() == 1) bd.push_back(1);
  const size_t ra = ad.size(), rb = bd.size(), r = std::max(ra, rb);
  const int64_t M = ta ? ad[ra - 1] : ad[ra - 2], K = ta ? ad[ra - 2] : ad[ra - 1];
  const int64_t N = tb ? bd[rb - 2] : bd[rb - 1];
  // A's element (batch index `bi` over r-2 axes, row i, col p) with broadcasting.
  auto at = [&](const std::vector<double>& v, const std::vector<int64_t>& d,
                const std::vector<int64_t>& bi, int64_t row, int64_t col) {
    int64_t off = 0;
    const size_t pad = r - d.size();
    for (size_t ax = 0; ax + 2 < d.size(); ++ax) {
      off = off * d[ax] + (d[ax] == 1 ? 0 : bi[ax + pad]);
    }
    return v[static_cast<size_t>((off * d[d.size() - 2] + row) * d.back() + col)];
  };
  std::vector<int64_t> batch(r - 2, 1);
  for (size_t ax = 0; ax + 2 < r; ++ax) {
    const int64_t x1 = ax + ra >= r ? ad[ax + ra - r] : 1, x2 = ax + rb >= r ? bd[ax + rb - r] : 1;
    batch[ax] = std::max(x1, x2);
  }
  std::vector<double> y;
  std::vector<int64_t> bi(r - 2, 0);
  for (int64_t t = 0, total = Count(batch); t < total; ++t) {
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t p = 0; p < K; ++p) {
          s += (ta ? at(x[0], ad, bi, p, i) : at(x[0], ad, bi, i, p)) *
               (tb ? at(x[1], bd, bi, j, p) : at(x[1], bd, bi, p, j));
        }
        if (c.op == "Gemm") {
          s *= fattr("alpha", 1.0f);
          if (c.inputs.size() == 3) {
            const std::vector<int64_t>& cd = c.inputs[2].dims;
            const int64_t ci = cd.size() == 2 ? (cd[0] == 1 ? 0 : i) : 0;
            const int64_t cj = cd.empty() || cd.back() == 1 ? 0 : j;
            const int64_t cols = cd.empty() ? 1 : cd.back();
            s += fattr("beta", 1.0f) * x[2][static_cast<size_t>(ci * cols + cj)];
          }
        }
        y.push_back(s);
      }
    }
    for (size_t ax = r - 2; ax-- > 0;) {
      if (++bi[ax] < batch[ax]) break;
      bi[ax] = 0;
    }
  }
  return y;
}

void CheckGemm(const GemmCase& c, const std::string& what) {
  auto d = DescribeGemm(c.domain, c.op, c.attrs, c.inputs, c.output);
  ASSERT_TRUE(d.ok()) << what << ": " << d.status().message();
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<std::vector<double>> x;
  for (const GemmOperand& o : c.inputs) {
    x.emplace_back(static_cast<size_t>(Count(o.dims)));
    for (double& v : x.back()) v = u(rng);
  }
  const std::vector<double> want = OnnxReference(c, x);
  ASSERT_EQ(static_cast<int64_t>(want.size()), Count(c.output.dims)) << what;
  const std::vector<double> got = CublasLtModel(*d, x, Count(c.output.dims));
  // Every matrix of every call and batch sits at a multiple of the alignment cuBLASLt is told
  // (operand bases at multiples of 64 bytes, as a plan's buffers).
  for (uint32_t align : {d->a_align, d->b_align, d->d_align}) {
    EXPECT_TRUE(align >= 1 && align <= 64 && (align & (align - 1)) == 0) << what << " " << align;
  }
  auto aligned = [&](uint32_t align, int64_t elements, DType t) {
    return (elements * static_cast<int64_t>(DTypeSize(t))) % align == 0;
  };
  for (const cuda::GemmCallOffsets& call : d->calls) {
    for (int64_t t = 0; t < d->batch; ++t) {
      EXPECT_TRUE(aligned(d->a_align, call.a + t * d->a.batch_stride, d->a_type)) << what;
      EXPECT_TRUE(aligned(d->b_align, call.b + t * d->b.batch_stride, d->b_type)) << what;
      EXPECT_TRUE(aligned(d->d_align, call.d + t * d->d.batch_stride, d->d_type)) << what;
    }
  }
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 1e-9 * (1 + std::abs(want[i]))) << what << " element " << i;
  }
}

TEST(CudaPlan, GemmDescriptionsOfTheFixturePlansComputeOnnxGemms) {
  if (!HaveMlir() || !HaveCudaToolkit()) GTEST_SKIP() << "no MLIR or CUDA toolkit";
  int checked = 0, folded = 0, batched = 0, bias = 0;
  for (const Plan& plan : CudaPlans()) {
    const plan::PlanProto& p = plan.proto;
    for (int i = 0; i < p.steps_size(); ++i) {
      const plan::Step& s = p.steps(i);
      if (!s.has_op() || (s.op().op() != "MatMul" && s.op().op() != "Gemm")) continue;
      GemmCase c{s.op().domain(), s.op().op(), {}, {}, {}};
      for (const plan::Attr& a : s.op().attrs()) c.attrs[a.name()] = *AttributeFromPlan(a);
      for (int id : s.inputs()) {
        if (id >= 0)
          c.inputs.push_back({*DTypeFromName(p.buffers(id).dtype()), Dims(p.buffers(id))});
      }
      c.output = {*DTypeFromName(p.buffers(s.outputs(0)).dtype()), Dims(p.buffers(s.outputs(0)))};
      CheckGemm(c, DescribeStep(p, i));
      auto d = DescribeGemm(c.domain, c.op, c.attrs, c.inputs, c.output);
      folded += d->calls.size() == 1 && d->batch == 1 && d->n > Count(c.inputs[0].dims) / d->k / 2;
      batched += d->batch > 1;
      bias += d->epilogue == cuda::GemmEpilogue::kBias;
      ++checked;
    }
  }
  EXPECT_GT(checked, 50);
  EXPECT_GT(batched, 0);  // attention's batched products
  EXPECT_GT(bias, 0);     // the MLP's and the CNN's Gemm biases
}

TEST(CudaPlan, GemmDescriptionsOfBroadcastsTransposesAndVectors) {
  const DType f = DType::kFloat32;
  auto mm = [&](std::vector<int64_t> a, std::vector<int64_t> b, std::vector<int64_t> y,
                AttributeMap attrs = {}, std::string domain = "") {
    return GemmCase{domain, "MatMul", attrs, {{f, a}, {f, b}}, {f, y}};
  };
  AttributeMap t_a{{"transA", Attribute(int64_t{1})}}, t_b{{"transB", Attribute(int64_t{1})}};
  AttributeMap t_ab{{"transA", Attribute(int64_t{1})}, {"transB", Attribute(int64_t{1})}};
  CheckGemm(mm({3, 4}, {4, 5}, {3, 5}), "2-D");
  CheckGemm(mm({2, 3, 4}, {4, 5}, {2, 3, 5}), "shared weight (folded)");
  CheckGemm(mm({4, 5}, {2, 5, 6}, {2, 4, 6}), "shared left operand");
  CheckGemm(mm({2, 3, 4}, {2, 4, 5}, {2, 3, 5}), "strided batch");
  CheckGemm(mm({2, 1, 3, 4}, {1, 3, 4, 5}, {2, 3, 3, 5}), "two-sided broadcast");
  CheckGemm(mm({4}, {4, 5}, {5}), "vector @ matrix");
  CheckGemm(mm({3, 4}, {4}, {3}), "matrix @ vector");
  CheckGemm(mm({2, 3, 4}, {4}, {2, 3}), "batch @ vector");
  CheckGemm(mm({2, 4, 3}, {2, 4, 5}, {2, 3, 5}, t_a, "com.ampc"), "transA batch");
  CheckGemm(mm({2, 3, 4}, {5, 4}, {2, 3, 5}, t_b, "com.ampc"), "transB shared");
  CheckGemm(mm({6, 4, 3}, {6, 5, 4}, {6, 3, 5}, t_ab, "com.ampc"), "both transposed");
  CheckGemm(mm({4, 3}, {2, 4, 5}, {2, 3, 5}, t_a, "com.ampc"), "transA shared");
  AttributeMap g{
      {"alpha", Attribute(0.5f)}, {"beta", Attribute(1.0f)}, {"transB", Attribute(int64_t{1})}};
  CheckGemm({"", "Gemm", g, {{f, {3, 4}}, {f, {5, 4}}, {f, {5}}}, {f, {3, 5}}}, "Gemm bias");
  CheckGemm({"", "Gemm", g, {{f, {3, 4}}, {f, {5, 4}}, {f, {1, 5}}}, {f, {3, 5}}}, "Gemm [1,N]");
  AttributeMap g2{{"beta", Attribute(0.25f)}, {"transA", Attribute(int64_t{1})}};
  CheckGemm({"", "Gemm", g2, {{f, {4, 3}}, {f, {4, 5}}, {f, {3, 5}}}, {f, {3, 5}}}, "Gemm C");
  CheckGemm({"", "Gemm", {}, {{f, {3, 4}}, {f, {4, 5}}}, {f, {3, 5}}}, "Gemm without C");
  // Per-matrix calls at 3 x 4 x 2-byte offsets: A's matrices only 8-byte aligned.
  const DType hf = DType::kFloat16;
  auto odd =
      DescribeGemm("", "MatMul", {}, {{hf, {2, 1, 3, 4}}, {hf, {1, 3, 4, 8}}}, {hf, {2, 3, 3, 8}});
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->b_align, 8u);   // the step's A: matrices at 24-byte steps
  EXPECT_EQ(odd->a_align, 64u);  // the step's B: 64-byte steps, capped by the base
  EXPECT_EQ(odd->d_align, 16u);  // 3 x 8 x 2 = 48-byte steps
  // What cuBLASLt cannot take is an error naming it.
  const DType h = DType::kFloat16, b = DType::kBFloat16;
  auto mixed = DescribeGemm("", "MatMul", {}, {{h, {2, 2}}, {b, {2, 2}}}, {f, {2, 2}});
  EXPECT_NE(mixed.status().message().find("two types"), std::string::npos);
  auto f64 = DescribeGemm("", "MatMul", {}, {{DType::kFloat64, {2, 2}}, {DType::kFloat64, {2, 2}}},
                          {DType::kFloat64, {2, 2}});
  EXPECT_NE(f64.status().message().find("cuBLASLt has no f64"), std::string::npos);
  auto col = DescribeGemm("", "Gemm", {}, {{f, {3, 4}}, {f, {4, 5}}, {f, {3, 1}}}, {f, {3, 5}});
  EXPECT_NE(col.status().message().find("neither a bias row"), std::string::npos);
  EXPECT_FALSE(DescribeGemm("", "MatMul", {}, {{f, {3, 4}}, {f, {5, 6}}}, {f, {3, 6}}).ok());
  EXPECT_TRUE(cuda::CublasLtSupportsTypes(b, f));
  EXPECT_TRUE(cuda::CublasLtSupportsTypes(h, h));
  EXPECT_FALSE(cuda::CublasLtSupportsTypes(b, h));
}

// --- steps --------------------------------------------------------------------------------------

// The fixture models' plans run wholly on the CUDA runtime, each kind of step used somewhere.
TEST(CudaPlan, StepsOfTheFixturePlansAreClassified) {
  if (!HaveMlir() || !HaveCudaToolkit()) GTEST_SKIP() << "no MLIR or CUDA toolkit";
  const std::vector<Plan>& plans = CudaPlans();  // mlp, cnn, transformer x bf16, fp32
  ASSERT_EQ(plans.size(), 6u);
  std::map<cuda::StepKind, int> seen;
  for (size_t i : {0, 1, 2, 3, 4, 5}) {
    auto kinds = cuda::ClassifySteps(plans[i].proto);
    ASSERT_TRUE(kinds.ok()) << kinds.status().message();
    for (int s = 0; s < plans[i].proto.steps_size(); ++s) {
      const plan::Step& st = plans[i].proto.steps(s);
      const cuda::StepKind k = (*kinds)[static_cast<size_t>(s)];
      ++seen[k];
      // Shapes and the index arithmetic around them are host values; nothing reading the
      // model's data is.
      if (st.has_op() && st.op().op() == "Shape") {
        EXPECT_EQ(k, cuda::StepKind::kHost);
      }
      if (k == cuda::StepKind::kHost) {
        for (int id : st.inputs()) {
          if (id < 0) continue;
          EXPECT_NE(plans[i].proto.buffers(id).kind(), plan::Buffer::STATE)
              << DescribeStep(plans[i].proto, s);
          for (const auto& io : plans[i].proto.inputs()) {
            EXPECT_TRUE(io.buffer() != id || st.op().op() == "Shape" || st.op().op() == "Size")
                << DescribeStep(plans[i].proto, s);
          }
        }
      }
    }
  }
  for (cuda::StepKind k : {cuda::StepKind::kHost, cuda::StepKind::kAlias, cuda::StepKind::kGemm,
                           cuda::StepKind::kKernel, cuda::StepKind::kStridedCopy,
                           cuda::StepKind::kGather, cuda::StepKind::kConv, cuda::StepKind::kPool,
                           cuda::StepKind::kPad, cuda::StepKind::kClip}) {
    EXPECT_GT(seen[k], 0) << cuda::StepKindName(k);
  }
  // Every buffer's device address (arena or data section base, 256-aligned by cudaMalloc, plus
  // its offset) is 64-byte aligned and inside its region: what the GEMM alignments assume.
  for (const Plan& plan : plans) {
    for (const plan::Buffer& b : plan.proto.buffers()) {
      const bool arena = b.kind() == plan::Buffer::ARENA;
      const int64_t at = arena ? b.offset() : b.data_offset();
      EXPECT_EQ(at % 64, 0) << b.name();
      EXPECT_LE(at + b.size_bytes(), arena ? plan.proto.arena_bytes() : plan.data->size())
          << b.name();
    }
  }
}

// The CUDA executor allocates the arena without the fusion groups' fallback intermediates,
// which it never runs: every buffer a step, input, output or state update names lies below
// arena_kernel_bytes, and each value only a fallback computes lies above it. A plan whose step
// reads a buffer up there is refused.
TEST(CudaPlan, TheArenaWithoutFallbackIntermediatesHoldsEveryStepsBuffer) {
  if (!HaveMlir() || !HaveCudaToolkit()) GTEST_SKIP() << "no MLIR or CUDA toolkit";
  const std::vector<Plan>& plans = CudaPlans();
  ASSERT_EQ(plans.size(), 6u);
  for (size_t i : {0, 1, 4, 5}) {
    const plan::PlanProto& p = plans[i].proto;
    auto bytes = cuda::KernelArenaBytes(p);
    ASSERT_TRUE(bytes.ok()) << bytes.status().message();
    EXPECT_EQ(*bytes, p.arena_kernel_bytes());
    EXPECT_LT(*bytes, p.arena_bytes()) << "plan " << i << " has fallback intermediates";
    std::set<int> used;
    for (const plan::Step& s : p.steps()) {
      used.insert(s.inputs().begin(), s.inputs().end());
      used.insert(s.outputs().begin(), s.outputs().end());
    }
    int above = 0;
    for (const plan::FusionGroup& fg : p.fusion_groups()) {
      for (const plan::Step& s : fg.fallback()) {
        for (int id : s.outputs()) {
          if (id < 0 || used.count(id) || p.buffers(id).kind() != plan::Buffer::ARENA) continue;
          EXPECT_GE(p.buffers(id).offset(), *bytes) << p.buffers(id).name();
          ++above;
        }
      }
    }
    EXPECT_GT(above, 0);
    plan::PlanProto bad = p;
    for (const plan::FusionGroup& fg : p.fusion_groups()) {
      for (const plan::Step& s : fg.fallback()) {
        for (int id : s.outputs()) {
          if (id >= 0 && !used.count(id) && bad.steps_size() > 0 &&
              bad.buffers(id).kind() == plan::Buffer::ARENA) {
            bad.mutable_steps(0)->set_inputs(0, id);
          }
        }
      }
    }
    auto refused = cuda::KernelArenaBytes(bad);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("lies in the fallback region"), std::string::npos)
        << refused.status().message();
  }
}

// The CUDA executor refuses what it cannot run before it looks for a GPU (an op it has no kernel
// for), and a plan it can run where no GPU is usable, saying why.
TEST(CudaPlan, TheExecutorRefusesUnsupportedStepsAndMissingGpus) {
  if (!HaveMlir() || !HaveCudaToolkit()) GTEST_SKIP() << "no MLIR or CUDA toolkit";
  const std::vector<Plan>& plans = CudaPlans();
  Plan odd = testing::ClonePlan(plans[2]);  // the CNN with an op the CUDA runtime lacks
  for (plan::Step& s : *odd.proto.mutable_steps()) {
    if (s.has_op() && s.op().op() == "Clip") s.mutable_op()->set_op("Celu");
  }
  auto cnn = CreateExecutor(std::move(odd), ExecutorOptions{"cuda", 0});
  ASSERT_FALSE(cnn.ok());
  EXPECT_NE(cnn.status().message().find("the CUDA runtime has no kernel for Celu"),
            std::string::npos)
      << cnn.status().message();
  // `ampc compile --target cuda` refuses a model with such an op (training-mode
  // BatchNormalization kept as com.ampc::BatchNormalization by --composite-ops kernels), naming
  // the node, and writes nothing.
  testing::TempDir tmp;
  auto c = testing::RunAmpc("compile " + testing::Fixture("cnn_train_opset17.onnx") + " -o " +
                            (tmp / "cnn.ampc") +
                            " --target cuda --batch-size 8 --composite-ops kernels");
  EXPECT_EQ(c.exit_code, 2) << c.err;
  EXPECT_NE(c.err.find("the CUDA runtime has no kernel for com.ampc::BatchNormalization"),
            std::string::npos)
      << c.err;
  EXPECT_NE(c.err.find("node '"), std::string::npos) << c.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "cnn.ampc"));
  if (ProbeCuda().device_count > 0) return;
  auto mlp = CreateExecutor(testing::ClonePlan(plans[0]), ExecutorOptions{"cuda:0", 0});
  ASSERT_FALSE(mlp.ok());
  EXPECT_NE(mlp.status().message().find("no usable GPU"), std::string::npos)
      << mlp.status().message();
}

// ampc-gpu (the GPU bundle's tool), on a --target cuda plan: its check harness runs with the CPU
// executor on both sides (--device cpu) and finds no difference; its bench prints a JSON line; on
// the GPU side without a GPU it exits 2 naming why. On the GPU machine tools/gpu_check.sh runs the
// same commands with the CUDA executor.
TEST(CudaPlan, AmpcGpuChecksAndBenchesAPlan) {
  if (!HaveMlir() || !HaveCudaToolkit()) GTEST_SKIP() << "no MLIR or CUDA toolkit";
  testing::TempDir tmp;
  const std::string data = std::string(AMPC_GEN_DIR) + "/train_refs/mlp_sgd/data.npz";
  auto c = testing::RunAmpc("compile " + testing::Fixture("mlp_opset17.onnx") + " -o " +
                            (tmp / "mlp.ampc") +
                            " --target cuda --batch-size 32 --optimizer adamw --precision fp16");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const std::string plan = (tmp / "mlp.ampc") + " --data " + data;
  auto check = testing::RunBinary(AMPC_GPU_BINARY, "check " + plan + " --steps 3 --device cpu");
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("forward output cross_entropy_loss"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("step 3 cross_entropy_loss"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("step 3 ampc.loss_scale"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("states after 3 steps"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("PASS"), std::string::npos) << check.out;
  EXPECT_EQ(check.out.find("FAIL"), std::string::npos) << check.out;
  auto bench = testing::RunBinary(AMPC_GPU_BINARY,
                                  "bench " + plan + " --steps 4 --warmup 1 --device cpu --label x");
  EXPECT_EQ(bench.exit_code, 0) << bench.err;
  EXPECT_NE(bench.out.find("\"samples_per_s\": "), std::string::npos) << bench.out;
  EXPECT_NE(bench.out.find("\"label\": \"x\""), std::string::npos) << bench.out;
  auto train = testing::RunBinary(AMPC_GPU_BINARY, "train " + plan + " --steps 3 --device cpu");
  EXPECT_EQ(train.exit_code, 0) << train.err;
  EXPECT_NE(train.out.find("\"steps\": 3,"), std::string::npos) << train.out;
  auto devices = testing::RunBinary(AMPC_GPU_BINARY, "devices");
  EXPECT_EQ(devices.exit_code, 0);
  EXPECT_NE(devices.out.find("cpu: "), std::string::npos);
  auto bad =
      testing::RunBinary(AMPC_GPU_BINARY, "check " + (tmp / "none.ampc") + " --data " + data);
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("none.ampc"), std::string::npos) << bad.err;
  if (ProbeCuda().device_count > 0) return;
  auto gpu = testing::RunBinary(AMPC_GPU_BINARY, "check " + plan + " --steps 1");
  EXPECT_EQ(gpu.exit_code, 2) << gpu.err;
  EXPECT_NE(gpu.err.find("no usable GPU"), std::string::npos) << gpu.err;
}

// A CPU model of the gather kernel (runtime/cuda/copy_kernels.cu computes the same index map on
// the device); the strided copy's is RunCopyModel (cuda_plan_util.h).
void RunGatherModel(const cuda::GatherDesc& g, const uint8_t* data, const uint8_t* index,
                    uint8_t* out) {
  for (int64_t o = 0; o < g.outer; ++o) {
    for (int64_t j = 0; j < g.indices; ++j) {
      int64_t v = 0;
      if (g.index_bytes == 8) {
        std::memcpy(&v, index + j * 8, 8);
      } else {
        int32_t w;
        std::memcpy(&w, index + j * 4, 4);
        v = w;
      }
      if (v < 0) v += g.axis_dim;
      const size_t row = static_cast<size_t>(g.inner * g.elem_bytes);
      uint8_t* dst = out + static_cast<size_t>((o * g.indices + j)) * row;
      if (v < 0 || v >= g.axis_dim) {
        std::memset(dst, 0, row);
      } else {
        std::memcpy(dst, data + static_cast<size_t>(o * g.axis_dim + v) * row, row);
      }
    }
  }
}

// Every Transpose, Split, Concat, Expand and Gather step of the plans, on random bytes: the
// descriptions move the bytes the CPU runtime's kernels (the oracle) move.
TEST(CudaPlan, CopiesAndGathersMoveWhatTheCpuKernelsMove) {
  if (!HaveMlir() || !HaveCudaToolkit()) GTEST_SKIP() << "no MLIR or CUDA toolkit";
  std::mt19937_64 rng(3);
  int checked = 0;
  for (const Plan& plan : CudaPlans()) {
    const plan::PlanProto& p = plan.proto;
    auto kinds = cuda::ClassifySteps(p);
    ASSERT_TRUE(kinds.ok()) << kinds.status().message();
    for (int i = 0; i < p.steps_size(); ++i) {
      const cuda::StepKind k = (*kinds)[static_cast<size_t>(i)];
      if (k != cuda::StepKind::kStridedCopy && k != cuda::StepKind::kGather) continue;
      const plan::Step& s = p.steps(i);
      // Host tensors for the step's operands: random inputs (indices in range), and the
      // oracle's outputs beside the model's.
      std::vector<std::vector<uint8_t>> bytes;
      std::vector<cpu::TensorView> views;
      auto make = [&](int id) {
        const plan::Buffer& b = p.buffers(id);
        cpu::TensorView v;
        v.dtype = *DTypeFromName(b.dtype());
        v.dims = Dims(b);
        bytes.emplace_back(static_cast<size_t>(v.NumElements() * DTypeSize(v.dtype)));
        for (uint8_t& x : bytes.back()) x = static_cast<uint8_t>(rng());
        if (b.kind() == plan::Buffer::CONSTANT) {  // Split's sizes: the plan's own values
          std::memcpy(bytes.back().data(), BufferData(plan, b), bytes.back().size());
        }
        views.push_back(v);
      };
      for (int id : s.inputs()) make(id);
      for (int id : s.outputs()) make(id);
      for (int id : s.outputs()) make(id);
      for (size_t v = 0; v < views.size(); ++v) views[v].data = bytes[v].data();
      AttributeMap attrs;
      for (const plan::Attr& a : s.op().attrs()) attrs[a.name()] = *AttributeFromPlan(a);
      if (k == cuda::StepKind::kGather) {  // indices in [-axis_dim, axis_dim)
        auto g = cuda::DescribeGather(p, s);
        ASSERT_TRUE(g.ok()) << g.status().message();
        std::uniform_int_distribution<int64_t> u(-g->axis_dim, g->axis_dim - 1);
        for (int64_t j = 0; j < g->indices; ++j) {
          const int64_t v = u(rng);
          if (g->index_bytes == 8) {
            std::memcpy(bytes[1].data() + j * 8, &v, 8);
          } else {
            const int32_t w = static_cast<int32_t>(v);
            std::memcpy(bytes[1].data() + j * 4, &w, 4);
          }
        }
      }
      if (s.op().op() == "Expand" && p.buffers(s.inputs(1)).kind() != plan::Buffer::CONSTANT) {
        // A shape a host step computes (the CNN's Shape of dY): the output's dims.
        const std::vector<int64_t> od = Dims(p.buffers(s.outputs(0)));
        ASSERT_EQ(bytes[1].size(), od.size() * 8) << DescribeStep(p, i);
        std::memcpy(bytes[1].data(), od.data(), bytes[1].size());
      }
      cpu::KernelContext ctx;
      ctx.op = s.op().op();
      ctx.attrs = &attrs;
      const size_t n_in = static_cast<size_t>(s.inputs_size()),
                   n_out = static_cast<size_t>(s.outputs_size());
      for (size_t v = 0; v < n_in; ++v) ctx.inputs.push_back(&views[v]);
      for (size_t v = 0; v < n_out; ++v) ctx.outputs.push_back(&views[n_in + v]);
      cpu::ThreadPool pool(1);
      ctx.pool = &pool;
      ASSERT_TRUE(cpu::KernelRegistry::Global().Find("", s.op().op())(ctx).ok())
          << DescribeStep(p, i);
      if (k == cuda::StepKind::kGather) {
        auto g = cuda::DescribeGather(p, s);
        RunGatherModel(*g, bytes[0].data(), bytes[1].data(), bytes[n_in + n_out].data());
      } else {
        auto copies = cuda::DescribeStridedCopies(p, s);
        ASSERT_TRUE(copies.ok()) << DescribeStep(p, i) << ": " << copies.status().message();
        for (const cuda::StridedCopy& c : *copies) {
          RunCopyModel(c, bytes[static_cast<size_t>(c.input)].data(),
                       bytes[n_in + n_out + static_cast<size_t>(c.output)].data());
        }
      }
      for (size_t o = 0; o < n_out; ++o) {
        EXPECT_EQ(bytes[n_in + o], bytes[n_in + n_out + o])
            << DescribeStep(p, i) << " output " << o;
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
}

}  // namespace
}  // namespace ampc
