// Builds the plan's kernel table entry for a fusion group's kernel: its MLIR (fused_kernel.h),
// compiled for the plan's target (mlir_compile.h), through an on-disk content-hash cache.
//
// The cache ($XDG_CACHE_HOME/ampc, else ~/.cache/ampc, or --cache-dir) holds one file per kernel
// and target, named by the hash of everything the images depend on (the MLIR text, the target,
// the code generator's version). An entry is used only if it parses, names the same target and
// holds exactly the same MLIR text and every image; a corrupt, truncated or foreign entry is
// ignored and rebuilt, never trusted. Entries are written atomically (temporary file + rename).
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "codegen/fused_kernel.h"
#include "codegen/plan.pb.h"
#include "codegen/plan_target.h"
#include "ir/status.h"

namespace ampc {

struct KernelOptions {
  bool enabled = false;   // fuse and generate kernels (off: every step runs a per-op kernel)
  bool required = false;  // a group whose kernel cannot be built is an error (else per-op)
  std::string cache_dir;  // "" = the default place; "none" = no cache
  std::string cuda_root;  // "" = $CUDA_HOME or /usr/local/cuda
  int threads = 0;        // compile threads (0 = one per hardware thread)
  // The GPU's grain (ApplyGpuGrain) on any target: what a CUDA plan's kernels compute, run by
  // the CPU (tests). CUDA targets always use it.
  bool gpu_grain = false;
};

struct KernelBuildStats {
  std::atomic<int> compiled{0};
  std::atomic<int> cache_hits{0};
  std::atomic<int> cache_rejected{0};  // entries present but not trusted
};

// The cache folder KernelOptions names ("" when caching is off).
std::string KernelCacheDir(const KernelOptions& o);

// The kernel of `k` for `target`: name, target, entry, images, launch rule, content hash, source.
StatusOr<plan::Kernel> BuildKernel(const FusedKernel& k, const Target& target,
                                   const KernelOptions& o, KernelBuildStats* stats = nullptr);

}  // namespace ampc
