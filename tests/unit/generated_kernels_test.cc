// Generated kernels (codegen/fusion, fused_kernel, mlir_compile, kernel_compiler; runtime/cpu/
// generated). The reference is the per-op CPU kernels: every fusion group of every fixture model
// is run both ways on the same random inputs (random bit patterns included, so NaN payloads,
// infinities and subnormals are covered) and the outputs must be the same bits; shapes the
// fixtures do not reach are generated_kernels_edge_test.cc's, training with both
// generated_training_test.cc's. The CUDA images are checked by the toolkit's ptxas
// and by reading each cubin's ELF symbol table.
#include <elf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "codegen/fused_kernel.h"
#include "codegen/mlir_compile.h"
#include "compile_util.h"
#include "frontend/onnx.h"
#include "generated_kernels_util.h"
#include "ir/text.h"
#include "runtime/cpu/executor.h"
#include "runtime/cpu/generated.h"
#include "runtime/cpu/thread_pool.h"
#include "test_util.h"

namespace ampc {
namespace {

using cpu::TensorView;
using testing::TempDir;

using gen_test::CacheDir;
using gen_test::Compile;
using gen_test::Fill;
using gen_test::FillChecked;
using gen_test::ModelCase;
using gen_test::Models;
using gen_test::SameElement;

// Buffers of one run, allocated on first use.
// Constants (a reduction's axes) and states start as the plan's data.
struct Memory {
  explicit Memory(const Plan& plan) : plan(plan), p(plan.proto) {}
  TensorView* View(int id) {
    auto it = views.find(id);
    if (it != views.end()) return &it->second;
    const plan::Buffer& b = p.buffers(id);
    auto& bytes = storage[id];
    bytes.assign(b.size_bytes() + 64, 0);
    if (b.kind() != plan::Buffer::ARENA) {
      std::memcpy(bytes.data(), BufferData(plan, b), b.size_bytes());
    }
    TensorView& v = views[id];
    v.dtype = *DTypeFromName(b.dtype());
    v.dims.assign(b.dims().begin(), b.dims().end());
    v.data = bytes.data();
    return &v;
  }
  const Plan& plan;
  const plan::PlanProto& p;
  std::map<int, std::vector<uint8_t>> storage;
  std::map<int, TensorView> views;
};

// The images of `k` this CPU runs (one x86-64 level each), each as a kernel of its own, so that
// every level the machine has is compared, not only the one the runtime would load.
std::vector<plan::Kernel> RunnableImages(const plan::Kernel& k) {
  std::vector<plan::Kernel> out;
  for (const plan::KernelImage& img : k.images()) {
    bool fits = true;
    for (const auto& f : img.cpu_features()) fits = fits && cpu::CpuHasFeature(f);
    if (!fits) continue;
    plan::Kernel one = k;
    one.clear_images();
    *one.add_images() = img;
    out.push_back(std::move(one));
  }
  return out;
}

// Runs every kernel step of `p` generated (once per image this CPU runs) and per-op on the same
// inputs; returns the number of steps compared. Differences are reported as test failures.
int CompareKernelSteps(const Plan& plan, const std::string& what, uint64_t seed) {
  const plan::PlanProto& p = plan.proto;
  cpu::ThreadPool pool(2);
  int compared = 0;
  for (int i = 0; i < p.steps_size(); ++i) {
    const plan::Step& s = p.steps(i);
    if (!s.has_kernel()) continue;
    const std::vector<plan::Kernel> images = RunnableImages(p.kernels(s.kernel().kernel()));
    EXPECT_FALSE(images.empty()) << what << " " << DescribeStep(p, i);
    for (const plan::Kernel& k : images) {
      auto gk = cpu::GeneratedKernel::Load(k);
      EXPECT_TRUE(gk.ok()) << gk.status().message();
      if (!gk.ok() || !*gk) return compared;
      Memory gen(plan), ref(plan);
      std::mt19937_64 rng(seed + i);
      std::vector<TensorView*> args;
      for (int j = 0; j < s.inputs_size(); ++j) {
        const int id = s.inputs(j);
        TensorView* a = gen.View(id);
        // Integer constants (a GatherGrad's data_shape) keep the plan's values; the rest is random.
        const plan::Buffer& b = p.buffers(id);
        if (b.kind() != plan::Buffer::CONSTANT || (b.dtype() != "i64" && b.dtype() != "i32")) {
          Fill(*a, rng);
        }
        FillChecked(*a, k, j, rng);
        std::memcpy(ref.View(id)->data, a->data, p.buffers(id).size_bytes());
        args.push_back(a);
      }
      for (int id : s.outputs()) args.push_back(gen.View(id));
      auto call = cpu::PlanKernelCall(
          k, std::vector<TensorView*>(args.begin() + s.inputs_size(), args.end()));
      EXPECT_TRUE(call.ok()) << call.status().message();
      if (!call.ok()) return compared;
      (*gk)->Call(*call, args, &pool);
      for (const plan::Step& f : p.fusion_groups(s.fusion_group() - 1).fallback()) {
        cpu::KernelFn fn = cpu::KernelRegistry::Global().Find(f.op().domain(), f.op().op());
        EXPECT_NE(fn, nullptr) << f.op().op();
        if (!fn) return compared;
        AttributeMap attrs;
        for (const plan::Attr& a : f.op().attrs()) attrs[a.name()] = *AttributeFromPlan(a);
        cpu::KernelContext ctx;
        ctx.op = f.op().op();
        ctx.node_name = f.name();
        ctx.attrs = &attrs;
        for (int id : f.inputs()) ctx.inputs.push_back(id < 0 ? nullptr : ref.View(id));
        for (int id : f.outputs()) ctx.outputs.push_back(id < 0 ? nullptr : ref.View(id));
        Status st = fn(ctx);
        EXPECT_TRUE(st.ok()) << st.message();
      }
      for (int id : s.outputs()) {
        const TensorView& a = *gen.View(id);
        const TensorView& b = *ref.View(id);
        int64_t first = -1;
        for (int64_t j = 0; j < a.NumElements() && first < 0; ++j) {
          if (!SameElement(a, b, j)) first = j;
        }
        EXPECT_EQ(first, -1) << what << " " << DescribeStep(p, i) << " output '"
                             << p.buffers(id).name() << "' (" << k.images(0).cpu_features(0)
                             << " image) differs from the per-op kernels at element " << first
                             << "\n"
                             << k.source();
      }
    }
    ++compared;
  }
  return compared;
}

class GeneratedKernelsTest : public ::testing::TestWithParam<std::tuple<int, std::string>> {};

TEST_P(GeneratedKernelsTest, BitIdenticalToPerOpKernels) {
  if (!HaveMlir()) GTEST_SKIP() << "built without MLIR";
  if (!cpu::CpuHasFeature("x86-64-v3")) GTEST_SKIP() << "this CPU lacks x86-64-v3";
  const ModelCase m = Models()[std::get<0>(GetParam())];
  if (!std::filesystem::exists(m.path)) GTEST_SKIP() << m.path << " not generated";
  const std::string precision = std::get<1>(GetParam());
  auto c = Compile(m, *ParsePrecision(precision));
  ASSERT_TRUE(c.ok()) << c.status().message();
  const int steps = CompareKernelSteps(c->train, m.name + " " + precision + " step", 1);
  const int eval = CompareKernelSteps(c->eval, m.name + " " + precision + " eval", 2);
  EXPECT_GT(steps, 0);
  EXPECT_GT(eval, 0);
  EXPECT_EQ(steps, c->train.proto.fusion_groups_size());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GeneratedKernelsTest,
                         ::testing::Combine(::testing::Range(0, 5),
                                            ::testing::Values("fp32", "fp16", "bf16")),
                         [](const auto& info) {
                           return Models()[std::get<0>(info.param)].name + "_" +
                                  std::get<1>(info.param);
                         });

// The CUDA target's grain (one element, reduction output or optimizer element per unit, what a
// GPU thread takes) emitted for the CPU: the same bits as the per-op kernels, so the CUDA plans'
// kernels compute what the CPU's do, element for element.
class GeneratedKernelsGpuGrainTest : public ::testing::TestWithParam<std::tuple<int, std::string>> {
};

TEST_P(GeneratedKernelsGpuGrainTest, BitIdenticalToPerOpKernels) {
  if (!HaveMlir()) GTEST_SKIP() << "built without MLIR";
  if (!cpu::CpuHasFeature("x86-64-v3")) GTEST_SKIP() << "this CPU lacks x86-64-v3";
  const ModelCase m = Models()[std::get<0>(GetParam())];
  const std::string precision = std::get<1>(GetParam());
  auto c = Compile(m, *ParsePrecision(precision), nullptr, /*gpu_grain=*/true);
  ASSERT_TRUE(c.ok()) << c.status().message();
  const int steps = CompareKernelSteps(c->train, m.name + " " + precision + " gpu-grain step", 1);
  EXPECT_EQ(steps, c->train.proto.fusion_groups_size());
  EXPECT_GT(CompareKernelSteps(c->eval, m.name + " " + precision + " gpu-grain eval", 2), 0);
  // Every optimizer kernel updates one element per unit.
  for (int i = 0; i < c->train.proto.steps_size(); ++i) {
    const plan::Step& s = c->train.proto.steps(i);
    if (!s.has_kernel()) continue;
    const plan::Kernel& k = c->train.proto.kernels(s.kernel().kernel());
    if (s.name().rfind("adamw_", 0) != 0) continue;
    EXPECT_EQ(k.launch().row_elements(), 1) << DescribeStep(c->train.proto, i);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GeneratedKernelsGpuGrainTest,
                         ::testing::Combine(::testing::Range(0, 3),
                                            ::testing::Values("fp32", "fp16", "bf16")),
                         [](const auto& info) {
                           return Models()[std::get<0>(info.param)].name + "_" +
                                  std::get<1>(info.param);
                         });

// Done-when of [codegen]: on the MLP and transformer steps, in every precision, only GEMMs,
// convolutions, data movement (indexing included) and shape arithmetic stay per-op; everything else
// (elementwise chains, reductions, row ops, losses, optimizer updates, loss scaling) runs in
// generated kernels.
TEST(GeneratedKernels, OnlyGemmConvAndDataMovementStayPerOp) {
  if (!HaveMlir()) GTEST_SKIP() << "built without MLIR";
  const std::set<std::string> library = {"Gemm", "MatMul", "Conv", "ConvTranspose", "ConvGrad"};
  const std::set<std::string> movement = {
      "Reshape", "Unsqueeze", "Squeeze", "Flatten",  "Transpose",      "Concat",
      "Split",   "Slice",     "Expand",  "Identity", "Shape",          "Range",
      "Gather",  "Trilu",     "Pad",     "Tile",     "ConstantOfShape"};
  for (int mi : {0, 2}) {
    const ModelCase m = Models()[mi];
    for (const char* precision : {"fp32", "bf16", "fp16"}) {
      auto c = Compile(m, *ParsePrecision(precision));
      ASSERT_TRUE(c.ok()) << c.status().message();
      const auto& p = c->train.proto;
      std::map<std::string, int> per_op;
      int kernels = 0;
      for (const plan::Step& s : p.steps()) {
        if (s.has_kernel()) {
          ++kernels;
          continue;
        }
        const std::string& op = s.op().op();
        ++per_op[op];
        // GEMMs of either domain (com.ampc::MatMul reads an operand transposed).
        if (library.count(op) || (s.op().domain().empty() && movement.count(op))) continue;
        // Shape arithmetic: integer scalars and short index vectors that shapes are made of.
        bool shape_math = s.op().domain().empty() && s.outputs_size() == 1;
        for (int id : s.outputs()) {
          const plan::Buffer& b = p.buffers(id);
          int64_t n = 1;
          for (int64_t d : b.dims()) n *= d;
          shape_math = shape_math && b.dtype() == "i64" && n <= 8;
        }
        EXPECT_TRUE(shape_math) << m.name << " " << precision << ": " << op << " '" << s.name()
                                << "' runs per-op";
      }
      std::string rest;
      for (const auto& [op, n] : per_op) rest += " " + op + "x" + std::to_string(n);
      std::printf("%s %s: %d kernel steps (%d groups); per-op:%s\n", m.name.c_str(), precision,
                  kernels, p.fusion_groups_size(), rest.c_str());
      EXPECT_GT(kernels, 0);
    }
  }
}

// The CPU features generated images require, read from cpuid and xgetbv, agree with GCC's
// __builtin_cpu_supports (the reference; clang 14, which builds the fuzzers, lacks the level
// names).
TEST(GeneratedKernels, CpuFeaturesAgreeWithCompilerBuiltins) {
#if defined(__x86_64__) && !defined(__clang__)
  __builtin_cpu_init();
  EXPECT_EQ(cpu::CpuHasFeature("x86-64-v2"), __builtin_cpu_supports("x86-64-v2") != 0);
  EXPECT_EQ(cpu::CpuHasFeature("x86-64-v3"), __builtin_cpu_supports("x86-64-v3") != 0);
  EXPECT_EQ(cpu::CpuHasFeature("x86-64-v4"), __builtin_cpu_supports("x86-64-v4") != 0);
  EXPECT_EQ(cpu::CpuHasFeature("avx2"), __builtin_cpu_supports("avx2") != 0);
  EXPECT_EQ(cpu::CpuHasFeature("fma"), __builtin_cpu_supports("fma") != 0);
  EXPECT_EQ(cpu::CpuHasFeature("avx512f"), __builtin_cpu_supports("avx512f") != 0);
  EXPECT_EQ(cpu::CpuHasFeature("avx512bf16"), __builtin_cpu_supports("avx512bf16") != 0);
  EXPECT_TRUE(cpu::CpuHasFeature("x86-64"));
  EXPECT_FALSE(cpu::CpuHasFeature("no-such-feature"));
#else
  GTEST_SKIP() << "needs GCC's __builtin_cpu_supports level names on x86-64";
#endif
}

// The kernel cache: a second build of the same kernel is a hit; a corrupt or foreign entry is
// rejected and rebuilt.
TEST(GeneratedKernels, CacheHitsAndRejectsBadEntries) {
  if (!HaveMlir()) GTEST_SKIP() << "built without MLIR";
  auto g = ParseGraph(R"(graph "g" opsets {"": 17} {
  input %x: f32[8,4]
  input %b: f32[4]
  %y: f32[8,4] = Add(%x, %b)
  %z: f32[8,4] = Exp(%y)
  output %z
})");
  ASSERT_TRUE(g.ok()) << g.status().message();
  std::vector<const Node*> nodes((*g)->nodes().begin(), (*g)->nodes().end());
  auto k = BuildFusedKernel(nodes, {(*g)->inputs()[0], (*g)->inputs()[1]}, {(*g)->outputs()[0]});
  ASSERT_TRUE(k.ok()) << k.status().message();
  TempDir tmp;
  KernelOptions o;
  o.cache_dir = tmp.path();
  const Target cpu{"cpu", ""};
  KernelBuildStats s1;
  auto a = BuildKernel(*k, cpu, o, &s1);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(s1.compiled.load(), 1);
  KernelBuildStats s2;
  auto b = BuildKernel(*k, cpu, o, &s2);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(s2.cache_hits.load(), 1);
  EXPECT_EQ(b->SerializeAsString(), a->SerializeAsString());
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(tmp.path())) {
    files.push_back(e.path().string());
  }
  ASSERT_EQ(files.size(), 1u);
  // Truncated, then a foreign kernel's (valid) entry under this name: both rebuilt.
  const std::string good = testing::ReadBytes(files[0]);
  testing::WriteBytes(files[0], good.substr(0, good.size() / 2));
  KernelBuildStats s3;
  ASSERT_TRUE(BuildKernel(*k, cpu, o, &s3).ok());
  EXPECT_EQ(s3.cache_rejected.load(), 1);
  EXPECT_EQ(s3.compiled.load(), 1);
  plan::Kernel foreign = *a;
  foreign.set_source(foreign.source() + "// another kernel\n");
  testing::WriteBytes(files[0], "AMPCKERNEL1\n" + foreign.SerializeAsString());
  KernelBuildStats s4;
  auto d = BuildKernel(*k, cpu, o, &s4);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(s4.cache_rejected.load(), 1);
  EXPECT_EQ(d->source(), a->source());
}

// Section headers of an ELF64 image -> the names in its symbol table.
std::set<std::string> ElfSymbols(const std::string& elf) {
  std::set<std::string> out;
  if (elf.size() < sizeof(Elf64_Ehdr) || elf.compare(0, 4, ELFMAG) != 0) return out;
  Elf64_Ehdr eh;
  std::memcpy(&eh, elf.data(), sizeof eh);
  auto section = [&](int i) {
    Elf64_Shdr sh{};
    const size_t off = eh.e_shoff + static_cast<size_t>(i) * eh.e_shentsize;
    if (off + sizeof sh <= elf.size()) std::memcpy(&sh, elf.data() + off, sizeof sh);
    return sh;
  };
  for (int i = 0; i < eh.e_shnum; ++i) {
    const Elf64_Shdr sym = section(i);
    if (sym.sh_type != SHT_SYMTAB) continue;
    const Elf64_Shdr str = section(static_cast<int>(sym.sh_link));
    for (size_t o = sym.sh_offset; o + sizeof(Elf64_Sym) <= sym.sh_offset + sym.sh_size &&
                                   o + sizeof(Elf64_Sym) <= elf.size();
         o += sizeof(Elf64_Sym)) {
      Elf64_Sym s;
      std::memcpy(&s, elf.data() + o, sizeof s);
      const size_t at = str.sh_offset + s.st_name;
      if (at < elf.size()) out.insert(std::string(elf.c_str() + at));
    }
  }
  return out;
}

// Every PTX of a --target cuda plan assembles with the toolkit's ptxas for its architecture, and
// every cubin's symbol table holds its kernel's entry. No GPU needed.
TEST(GeneratedKernels, CudaImagesAssembleForSm80AndSm90) {
  if (!HaveMlir()) GTEST_SKIP() << "built without MLIR";
  const char* home = std::getenv("CUDA_HOME");
  const std::string cuda = home && *home ? home : "/usr/local/cuda";
  if (!std::filesystem::exists(cuda + "/bin/ptxas")) GTEST_SKIP() << "no CUDA toolkit";
  TempDir tmp;
  for (const char* arch : {"sm_80", "sm_90"}) {
    for (int mi : {0, 2}) {
      const ModelCase m = Models()[mi];
      const BackendSupport support = cpu::CpuBackendSupportAs(Target{"cuda", arch});
      CompileOptions o;
      o.precision = DType::kBFloat16;
      o.train.optimizer.kind = "adamw";
      o.train.untie_shared = m.untie;
      if (m.name == "transformer") o.train.loss.class_axis = 2;
      o.kernels.enabled = o.kernels.required = true;
      o.kernels.cache_dir = CacheDir();
      o.support = &support;
      auto g = ImportOnnxFile(m.path);
      ASSERT_TRUE(g.ok());
      auto info = BuildTrainingStep(**g, o);
      ASSERT_TRUE(info.ok()) << info.status().message();
      const std::string path = m.path;
      auto plan = LowerTrainingStep(
          std::move(*g), *info, [path] { return ImportOnnxFile(path); }, o,
          m.dims.begin()->second[0], m.dims);
      ASSERT_TRUE(plan.ok()) << plan.status().message();
      ASSERT_GT(plan->proto.kernels_size(), 0);
      for (const plan::Kernel& k : plan->proto.kernels()) {
        std::string ptx, cubin;
        for (const auto& img : k.images()) {
          EXPECT_EQ(img.arch(), arch);
          if (img.format() == plan::KernelImage::PTX) ptx = img.data();
          if (img.format() == plan::KernelImage::CUBIN) cubin = img.data();
        }
        ASSERT_FALSE(ptx.empty()) << k.name();
        testing::WriteBytes(tmp / "k.ptx", ptx);
        const std::string cmd = cuda + "/bin/ptxas -arch=" + arch + " " + (tmp / "k.ptx") + " -o " +
                                (tmp / "k.cubin") + " >" + (tmp / "log") + " 2>&1";
        EXPECT_EQ(std::system(cmd.c_str()), 0)
            << k.name() << ": " << testing::ReadBytes(tmp / "log");
        EXPECT_TRUE(ElfSymbols(cubin).count(k.entry())) << k.name() << ": no " << k.entry();
        EXPECT_TRUE(ElfSymbols(testing::ReadBytes(tmp / "k.cubin")).count(k.entry()));
        EXPECT_GT(k.params_size(), 2) << k.name();
        // The kernel is compiled for the block the executor launches (ptxas's .maxntid): a
        // 1-D block of launch().block_threads() threads (it was once 1 thread per block).
        EXPECT_NE(ptx.find(".maxntid " + std::to_string(k.launch().block_threads()) + ", 1, 1"),
                  std::string::npos)
            << k.name();
      }
    }
  }
}

}  // namespace
}  // namespace ampc

namespace ampc {
namespace {

// `ampc compile -o` for both targets: the plan lists its kernels, a CUDA plan is refused by the
// CPU runtime naming its target, and bad flags are one-line errors.
TEST(GeneratedKernelsCli, CompileWritesPlansForEachTarget) {
  if (!HaveMlir()) GTEST_SKIP() << "built without MLIR";
  testing::TempDir tmp;
  const std::string mlp = testing::Fixture("mlp_opset17.onnx");
  const std::string cache = " --cache-dir " + CacheDir();
  auto r =
      testing::RunAmpc("compile " + mlp + " -o " + (tmp / "cpu.ampc") + " --batch-size 16" + cache);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("in generated kernels"), std::string::npos) << r.out;
  auto text = testing::RunAmpc("inspect " + (tmp / "cpu.ampc"));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("SHARED_OBJECT:x86-64"), std::string::npos);
  EXPECT_NE(text.out.find("needs x86-64-v3"), std::string::npos);
  if (std::filesystem::exists("/usr/local/cuda/bin/ptxas")) {
    r = testing::RunAmpc("compile " + mlp + " -o " + (tmp / "gpu.ampc") +
                         " --target cuda:sm_80 --batch-size 16" + cache);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    text = testing::RunAmpc("inspect " + (tmp / "gpu.ampc"));
    EXPECT_NE(text.out.find("CUBIN:sm_80"), std::string::npos);
    EXPECT_NE(text.out.find("launch: 256 threads per block; arguments begin, end"),
              std::string::npos);
    // The CPU runtime refuses the GPU's plan, naming its target.
    auto t = testing::RunAmpc("train " + (tmp / "gpu.ampc") +
                              " --data fashion-mnist --steps 1 --device cpu");
    EXPECT_NE(t.exit_code, 0);
    EXPECT_NE(t.err.find("cuda:sm_80"), std::string::npos) << t.err;
  }
  auto bad = testing::RunAmpc("compile " + mlp + " -o " + (tmp / "x.ampc") + " --target tpu");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("tpu"), std::string::npos) << bad.err;
  bad = testing::RunAmpc("compile " + mlp + " --target cuda");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("give -o"), std::string::npos) << bad.err;
  bad = testing::RunAmpc("compile " + mlp + " -o " + (tmp / "cpu.ampc"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("exists"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace ampc
