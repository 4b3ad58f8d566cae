#include "codegen/mlir_compile.h"

#ifndef AMPC_HAVE_MLIR

namespace ampc {
bool HaveMlir() { return false; }
StatusOr<std::vector<CpuKernelImage>> CompileCpuKernel(const std::string&, const std::string&,
                                                       bool) {
  return Unimplemented(
      "this ampc was built without MLIR (-DAMPC_WITH_MLIR=OFF): no generated "
      "kernels; the per-op kernels run instead");
}
StatusOr<CudaKernelImage> CompileCudaKernel(const std::string&, const std::string&,
                                            const std::string&, const std::string&) {
  return Unimplemented("this ampc was built without MLIR (-DAMPC_WITH_MLIR=OFF): no CUDA kernels");
}
}  // namespace ampc

#else

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/GPU/Transforms/Utils.h"
#include "mlir/Dialect/Index/IR/IndexDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Dialect/UB/IR/UBOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "mlir/Transforms/Passes.h"

extern char** environ;

namespace ampc {
namespace {

constexpr const char* kCpuTriple = "x86_64-unknown-linux-gnu";
// The x86-64 levels a CPU kernel is compiled for, the runtime's first choice first: x86-64-v4
// (AVX-512 F/BW/CD/DQ/VL) with 512-bit vectors (LLVM's v4 tuning prefers 256 bits; on the Zen 4
// machines measured here zmm made the fixture MLP's GELU kernel 2x and its step 5-10% faster),
// then x86-64-v3 (AVX2, FMA, F16C, BMI2: every x86 seen since 2015).
struct CpuLevel {
  const char* cpu;
  const char* features;
};
constexpr CpuLevel kCpuLevels[] = {{"x86-64-v4", "-prefer-256-bit"}, {"x86-64-v3", ""}};
constexpr int kBlockThreads = 256;

void InitOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    LLVMInitializeNVPTXTargetInfo();
    LLVMInitializeNVPTXTarget();
    LLVMInitializeNVPTXTargetMC();
    LLVMInitializeNVPTXAsmPrinter();
    mlir::registerConversionPasses();
    mlir::registerGPUPasses();
    mlir::registerSCFPasses();
    mlir::memref::registerMemRefPasses();
    mlir::registerTransformsPasses();
  });
}

// A context with the dialects the kernels and their lowerings use (nothing else is registered:
// InitAllDialects would cost a minute of compile time per file).
std::unique_ptr<mlir::MLIRContext> MakeContext() {
  InitOnce();
  mlir::DialectRegistry r;
  r.insert<mlir::func::FuncDialect, mlir::arith::ArithDialect, mlir::math::MathDialect,
           mlir::memref::MemRefDialect, mlir::scf::SCFDialect, mlir::cf::ControlFlowDialect,
           mlir::gpu::GPUDialect, mlir::NVVM::NVVMDialect, mlir::LLVM::LLVMDialect,
           mlir::affine::AffineDialect, mlir::index::IndexDialect, mlir::ub::UBDialect>();
  mlir::registerBuiltinDialectTranslation(r);
  mlir::registerLLVMDialectTranslation(r);
  mlir::registerNVVMDialectTranslation(r);
  mlir::registerGPUDialectTranslation(r);
  mlir::NVVM::registerNVVMTargetInterfaceExternalModels(r);
  auto ctx = std::make_unique<mlir::MLIRContext>(r, mlir::MLIRContext::Threading::DISABLED);
  ctx->loadAllAvailableDialects();
  return ctx;
}

// Diagnostics collected into a string for the error message.
struct Diagnostics {
  explicit Diagnostics(mlir::MLIRContext& ctx)
      : handler(&ctx, [this](mlir::Diagnostic& d) {
          if (!text.empty()) text += "; ";
          std::string where;
          llvm::raw_string_ostream os(where);
          d.getLocation().print(os);
          text += os.str() + ": " + d.str();
          if (auto flc = mlir::dyn_cast<mlir::FileLineColLoc>(d.getLocation()); flc && !line) {
            line = flc.getLine();
          }
          return mlir::success();
        }) {}
  std::string text;
  unsigned line = 0;  // of the first diagnostic, when it has one
  mlir::ScopedDiagnosticHandler handler;
};

StatusOr<mlir::OwningOpRef<mlir::ModuleOp> > Parse(mlir::MLIRContext& ctx, const std::string& text,
                                                   Diagnostics& diag) {
  auto m = mlir::parseSourceString<mlir::ModuleOp>(text, &ctx);
  if (!m) {
    std::string at;
    if (diag.line > 0) {  // the line itself: a generator bug is found by reading it
      size_t b = 0;
      for (unsigned l = 1; l < diag.line && b != std::string::npos; ++l) {
        b = text.find('\n', b);
        if (b != std::string::npos) ++b;
      }
      if (b != std::string::npos) at = " in '" + text.substr(b, text.find('\n', b) - b) + "'";
    }
    return Internal("generated kernel does not parse: " + diag.text + at);
  }
  return m;
}

Status RunPipeline(mlir::ModuleOp m, const std::string& pipeline, Diagnostics& diag) {
  std::string err;
  llvm::raw_string_ostream es(err);
  mlir::FailureOr<mlir::OpPassManager> parsed = mlir::parsePassPipeline(pipeline, es);
  if (mlir::failed(parsed)) return Internal("bad pass pipeline '" + pipeline + "': " + es.str());
  mlir::PassManager pm(m->getName());
  static_cast<mlir::OpPassManager&>(pm) = *parsed;
  if (mlir::failed(pm.run(m))) return Internal("kernel lowering failed: " + diag.text);
  return Status::Ok();
}

// Runs `argv` and waits; the output goes to `log`.
Status Run(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    return Unimplemented("cannot run '" + argv[0] + "' (" + std::strerror(rc) +
                         "): generated CPU kernels need the system linker (Debian: binutils)");
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream f(log);
    std::stringstream ss;
    ss << f.rdbuf();
    return Internal("'" + argv[0] + "' failed: " + ss.str());
  }
  return Status::Ok();
}

StatusOr<std::string> ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Internal("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A private temporary folder, removed with this object.
struct TempDir {
  TempDir() {
    const char* t = std::getenv("TMPDIR");
    std::string tmpl = std::string(t && *t ? t : "/tmp") + "/ampc-kernel-XXXXXX";
    if (mkdtemp(tmpl.data())) path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

}  // namespace

bool HaveMlir() { return true; }

StatusOr<std::vector<CpuKernelImage>> CompileCpuKernel(const std::string& text,
                                                       const std::string& func, bool slp) {
  auto ctx = MakeContext();
  Diagnostics diag(*ctx);
  ASSIGN_OR_RETURN(auto module, Parse(*ctx, text, diag));
  RETURN_IF_ERROR(RunPipeline(*module,
                              "builtin.module(canonicalize,cse,convert-math-to-libm,"
                              "convert-scf-to-cf,expand-strided-metadata,lower-affine,"
                              "finalize-memref-to-llvm,convert-math-to-llvm,convert-arith-to-llvm,"
                              "convert-index-to-llvm,convert-func-to-llvm,convert-cf-to-llvm,"
                              "reconcile-unrealized-casts)",
                              diag));
  std::string err;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(kCpuTriple, err);
  if (!target) return Internal("LLVM has no x86-64 target: " + err);
  TempDir dir;
  if (dir.path.empty()) return Internal("cannot create a temporary folder for kernel linking");
  std::vector<CpuKernelImage> images;
  for (const CpuLevel& level : kCpuLevels) {
    llvm::LLVMContext llctx;
    std::unique_ptr<llvm::Module> ll = mlir::translateModuleToLLVMIR(*module, llctx, "kernel");
    if (!ll) return Internal("kernel translation to LLVM IR failed: " + diag.text);
    llvm::TargetOptions to;  // no FP contraction: the per-op kernels round every multiply and add
    to.AllowFPOpFusion = llvm::FPOpFusion::Strict;
    std::unique_ptr<llvm::TargetMachine> tm(
        target->createTargetMachine(kCpuTriple, level.cpu, level.features, to, llvm::Reloc::PIC_,
                                    std::nullopt, llvm::CodeGenOptLevel::Aggressive));
    if (!tm) return Internal(std::string("LLVM has no target machine for ") + level.cpu);
    ll->setDataLayout(tm->createDataLayout());
    ll->setTargetTriple(kCpuTriple);
    {
      llvm::LoopAnalysisManager lam;
      llvm::FunctionAnalysisManager fam;
      llvm::CGSCCAnalysisManager cgam;
      llvm::ModuleAnalysisManager mam;
      // SLP vectorisation (off in PipelineTuningOptions' defaults; clang and opt turn it on at
      // -O2/-O3) packs independent isomorphic operations, never reassociating: the same bits.
      // The caller says which kernels it pays for (kernel_compiler.cc's SlpPays).
      llvm::PipelineTuningOptions pto;
      pto.SLPVectorization = slp;
      llvm::PassBuilder pb(tm.get(), pto);
      pb.registerModuleAnalyses(mam);
      pb.registerCGSCCAnalyses(cgam);
      pb.registerFunctionAnalyses(fam);
      pb.registerLoopAnalyses(lam);
      pb.crossRegisterProxies(lam, fam, cgam, mam);
      pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3).run(*ll, mam);
    }
    const std::string stem = dir.path + "/" + level.cpu;
    const std::string obj = stem + ".o", so = stem + ".so";
    {
      std::error_code ec;
      llvm::raw_fd_ostream os(obj, ec);
      if (ec) return Internal("cannot write " + obj + ": " + ec.message());
      llvm::legacy::PassManager pm;
      if (tm->addPassesToEmitFile(pm, os, nullptr, llvm::CodeGenFileType::ObjectFile)) {
        return Internal("LLVM cannot emit an x86-64 object");
      }
      pm.run(*ll);
    }
    RETURN_IF_ERROR(Run({"ld", "-shared", "--hash-style=gnu", "-z", "noexecstack", "-o", so, obj},
                        stem + ".ld.log"));
    CpuKernelImage out;
    ASSIGN_OR_RETURN(out.shared_object, ReadAll(so));
    out.entry = "_mlir_ciface_" + func;
    out.cpu_features = {level.cpu};
    images.push_back(std::move(out));
  }
  return images;
}

StatusOr<CudaKernelImage> CompileCudaKernel(const std::string& text, const std::string& func,
                                            const std::string& arch, const std::string& cuda_root) {
  if (arch != "sm_80" && arch != "sm_90") {
    return InvalidArgument("CUDA arch '" + arch + "' is not one ampc generates (sm_80, sm_90)");
  }
  const std::string libdevice = cuda_root + "/nvvm/libdevice/libdevice.10.bc";
  if (!std::filesystem::exists(libdevice)) {
    return InvalidArgument("the CUDA toolkit at '" + cuda_root + "' has no " + libdevice +
                           " (set CUDA_HOME or --cuda-root)");
  }
  auto ctx = MakeContext();
  Diagnostics diag(*ctx);
  ASSIGN_OR_RETURN(auto module, Parse(*ctx, text, diag));
  // The mapping step: the only difference from the CPU lowering. The tile loop maps to blocks
  // and the loop within a tile to the block's threads. No canonicalize may run between tiling
  // and mapping: it merges the two perfectly nested scf.parallel loops into one 2-D loop, which
  // gpu-map-parallel-loops then maps to a 2-D grid of one-thread blocks.
  RETURN_IF_ERROR(
      RunPipeline(*module,
                  "builtin.module(func.func(scf-parallel-loop-tiling{parallel-loop-tile-sizes=" +
                      std::to_string(kBlockThreads) +
                      " no-min-max-bounds=true},gpu-map-parallel-loops,"
                      "convert-parallel-loops-to-gpu),lower-affine,canonicalize)",
                  diag));
  // Constants (canonicalize hoisted them out of the launch) go back in, so that the kernel's
  // arguments are the range and the buffers only.
  // The executor launches ceil(units / kBlockThreads) blocks of kBlockThreads threads (one unit
  // per thread, runtime/cuda/launch.h): the launch must have exactly that shape.
  auto constant = [](mlir::Value v) -> int64_t {
    auto c = v.getDefiningOp<mlir::arith::ConstantIndexOp>();
    return c ? c.value() : -1;
  };
  bool sunk = true, shaped = true;
  module->walk([&](mlir::gpu::LaunchOp launch) {
    shaped = shaped && constant(launch.getBlockSizeX()) == kBlockThreads &&
             constant(launch.getBlockSizeY()) == 1 && constant(launch.getBlockSizeZ()) == 1 &&
             constant(launch.getGridSizeY()) == 1 && constant(launch.getGridSizeZ()) == 1;
    sunk = sunk &&
           mlir::succeeded(mlir::sinkOperationsIntoLaunchOp(
               launch, [](mlir::Operation* op) { return mlir::isa<mlir::arith::ConstantOp>(op); }));
  });
  if (!sunk) return Internal("generated CUDA kernel " + func + ": cannot sink constants");
  if (!shaped) {
    return Internal("generated CUDA kernel " + func + ": the launch is not a 1-D grid of " +
                    std::to_string(kBlockThreads) + "-thread blocks");
  }
  RETURN_IF_ERROR(RunPipeline(*module, "builtin.module(gpu-kernel-outlining)", diag));
  CudaKernelImage out;
  out.block_threads = kBlockThreads;
  // The launch's arguments, from the host function's gpu.launch_func.
  std::string kernel_name;
  bool bad = false;
  int launches = 0;
  module->walk([&](mlir::gpu::LaunchFuncOp launch) {
    ++launches;
    kernel_name = launch.getKernelName().str();
    for (mlir::Value v : launch.getKernelOperands()) {
      if (auto arg = mlir::dyn_cast<mlir::BlockArgument>(v)) {
        const unsigned i = arg.getArgNumber();
        if (i == 0) {
          out.params.push_back("begin");
        } else if (i == 1) {
          out.params.push_back("end");
        } else {
          out.params.push_back("arg:" + std::to_string(i - 2));
        }
      } else if (auto c = v.getDefiningOp<mlir::arith::ConstantIndexOp>()) {
        out.params.push_back("const:" + std::to_string(c.value()));
      } else {
        bad = true;
        if (mlir::Operation* d = v.getDefiningOp()) {
          std::string t;
          llvm::raw_string_ostream os(t);
          d->print(os);
          diag.text += "launch argument from " + os.str();
        }
      }
    }
  });
  if (launches != 1) {
    return Internal("generated CUDA kernel " + func + ": " + std::to_string(launches) +
                    " launches, expected one");
  }
  if (bad || kernel_name.empty()) {
    return Internal("generated CUDA kernel " + func +
                    ": unexpected launch arguments: " + diag.text);
  }
  out.entry = kernel_name;
  const std::string lower =
      "builtin.module(gpu.module(convert-scf-to-cf,convert-gpu-to-nvvm{index-bitwidth=64},"
      "convert-math-to-llvm,convert-arith-to-llvm,convert-index-to-llvm,canonicalize,cse,"
      "reconcile-unrealized-casts),nvvm-attach-target{chip=" +
      arch + " features=+ptx80 O=3 l=" + libdevice + "})";
  RETURN_IF_ERROR(RunPipeline(*module, lower, diag));
  for (const char* format : {"isa", "bin"}) {
    mlir::OwningOpRef<mlir::ModuleOp> copy = module->clone();
    RETURN_IF_ERROR(RunPipeline(*copy,
                                std::string("builtin.module(gpu-module-to-binary{format=") +
                                    format + " toolkit=" + cuda_root + "})",
                                diag));
    std::string bytes;
    copy->walk([&](mlir::gpu::BinaryOp b) {
      for (mlir::Attribute a : b.getObjects()) {
        if (auto o = mlir::dyn_cast<mlir::gpu::ObjectAttr>(a)) bytes = o.getObject().str();
      }
    });
    if (bytes.empty()) return Internal("generated CUDA kernel " + func + ": no " + format);
    if (std::string(format) == "isa") {
      while (!bytes.empty() && bytes.back() == '\0') bytes.pop_back();  // a trailing NUL
      out.ptx = std::move(bytes);
    } else {
      out.cubin = std::move(bytes);
    }
  }
  return out;
}

}  // namespace ampc

#endif  // AMPC_HAVE_MLIR
