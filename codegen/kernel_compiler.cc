#include "codegen/kernel_compiler.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "codegen/mlir_compile.h"
#include "ir/file_io.h"

namespace ampc {
namespace {

// Bump when the generated code changes for the same Key(): the emitters' text (it is not part
// of the key), the pipelines, LLVM options.
constexpr const char* kGeneratorVersion = "ampc-codegen-16";
constexpr const char* kCacheMagic = "AMPCKERNEL1\n";

std::string CudaRoot(const KernelOptions& o) {
  if (!o.cuda_root.empty()) return o.cuda_root;
  const char* h = std::getenv("CUDA_HOME");
  return h && *h ? h : "/usr/local/cuda";
}

bool Trusted(const plan::Kernel& k, const std::string& source, const Target& target) {
  if (k.source() != source || k.entry().empty() || k.images_size() == 0) return false;
  if (k.target().kind() != target.kind || k.target().arch() != target.arch) return false;
  for (const auto& img : k.images()) {
    if (img.data().empty()) return false;
  }
  if (target.kind == "cpu") {  // every image a shared object for some x86-64 level
    for (const auto& img : k.images()) {
      if (img.format() != plan::KernelImage::SHARED_OBJECT || img.cpu_features_size() == 0 ||
          img.data().compare(0, 4,
                             "\x7f"
                             "ELF") != 0) {
        return false;
      }
    }
    return true;
  }
  bool ptx = false, cubin = false;
  for (const auto& img : k.images()) {
    ptx = ptx || img.format() == plan::KernelImage::PTX;
    cubin = cubin || (img.format() == plan::KernelImage::CUBIN && img.data().compare(0, 4,
                                                                                     "\x7f"
                                                                                     "ELF") == 0);
  }
  return ptx && cubin && k.params_size() > 0;
}

// The kernels LLVM's SLP vectoriser is run on (mlir_compile.h): the norms, whose 8 partial sums
// in double read contiguous elements (the MLP's LayerNorm: 52 -> 24 us per step, one thread).
// Not the fused groups, whose row reductions' 8 rows are a row apart (packed, they became
// gathers: 20 -> 55 us), nor Softmax's interleaved rows (gathers too).
bool SlpPays(const FusedKernel& k) {
  return k.node && (k.node->op == "LayerNormalization" || k.node->op == "RMSNormalization");
}

}  // namespace

std::string KernelCacheDir(const KernelOptions& o) {
  if (o.cache_dir == "none") return "";
  if (!o.cache_dir.empty()) return o.cache_dir;
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/ampc";
  const char* home = std::getenv("HOME");
  if (home && *home) return std::string(home) + "/.cache/ampc";
  return "";
}

StatusOr<plan::Kernel> BuildKernel(const FusedKernel& k, const Target& target,
                                   const KernelOptions& o, KernelBuildStats* stats) {
  const std::string key = k.Key();
  const std::string tname = TargetName(target);
  const std::string hash = HashHex(std::string(kGeneratorVersion) + "\n" + tname + "\n" + key);
  const std::string name = "fused_" + hash;
  const std::string source = EmitKernelMlir(k, name);
  const std::string dir = KernelCacheDir(o);
  std::string file;
  if (!dir.empty()) {
    std::string t = tname;
    for (char& c : t) c = c == ':' ? '_' : c;
    file = dir + "/" + hash + "-" + t + ".kernel";
    std::ifstream f(file, std::ios::binary);
    if (f) {
      std::stringstream ss;
      ss << f.rdbuf();
      const std::string bytes = ss.str();
      plan::Kernel cached;
      const size_t m = std::strlen(kCacheMagic);
      if (bytes.compare(0, m, kCacheMagic) == 0 &&
          cached.ParseFromArray(bytes.data() + m, static_cast<int>(bytes.size() - m)) &&
          Trusted(cached, source, target)) {
        if (stats) ++stats->cache_hits;
        return cached;
      }
      if (stats) ++stats->cache_rejected;
    }
  }
  plan::Kernel out;
  out.set_name(name);
  TargetToPlan(target, out.mutable_target());
  out.set_content_hash(hash);
  out.set_source(source);
  out.mutable_launch()->set_elements_per_thread(1);
  // The range the executor splits: units of RowElements() elements of one output.
  out.mutable_launch()->set_elements_of_output(k.RangeOutput());
  out.mutable_launch()->set_row_elements(k.RowElements());
  out.mutable_launch()->set_unit_work(k.UnitWork());
  if (k.node && k.node->units > 0) out.mutable_launch()->set_units(k.node->units);
  if (k.node && k.node->fill) {
    out.mutable_launch()->set_fill_range_output(true);
    out.mutable_launch()->set_fill_byte(k.node->fill_byte);
  }
  if (k.node) {
    for (const auto& c : k.node->checks) {
      plan::ArgCheck* a = out.add_arg_checks();
      a->set_arg(c.arg);
      a->set_min(c.min);
      a->set_max(c.max);
      a->set_has_except(c.has_except);
      a->set_except(c.except);
    }
  }
  if (target.kind == "cpu") {
    ASSIGN_OR_RETURN(std::vector<CpuKernelImage> images,
                     CompileCpuKernel(source, name, SlpPays(k)));
    for (CpuKernelImage& img : images) {  // the runtime loads the first one its CPU runs
      out.set_entry(img.entry);
      auto* i = out.add_images();
      i->set_format(plan::KernelImage::SHARED_OBJECT);
      i->set_arch("x86-64");
      for (const auto& f : img.cpu_features) i->add_cpu_features(f);
      i->set_data(std::move(img.shared_object));
    }
    out.mutable_launch()->set_block_threads(1);
  } else if (target.kind == "cuda") {
    ASSIGN_OR_RETURN(CudaKernelImage img,
                     CompileCudaKernel(source, name, target.arch, CudaRoot(o)));
    out.set_entry(img.entry);
    auto* ptx = out.add_images();
    ptx->set_format(plan::KernelImage::PTX);
    ptx->set_arch(target.arch);
    ptx->set_data(std::move(img.ptx));
    auto* cubin = out.add_images();
    cubin->set_format(plan::KernelImage::CUBIN);
    cubin->set_arch(target.arch);
    cubin->set_data(std::move(img.cubin));
    for (auto& p : img.params) out.add_params(std::move(p));
    out.mutable_launch()->set_block_threads(img.block_threads);
  } else {
    return InvalidArgument("no kernel generator for target '" + tname + "'");
  }
  if (stats) ++stats->compiled;
  if (!file.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::string bytes = kCacheMagic;
    bytes += out.SerializeAsString();
    (void)WriteFileAtomically(file, bytes);  // a cache that cannot be written only costs time
  }
  return out;
}

}  // namespace ampc
