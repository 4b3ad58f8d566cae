// Compiles the MLIR text of a generated kernel (codegen/fused_kernel.h) with MLIR 19 and LLVM 19:
//  - CPU: lowered to the LLVM dialect, optimised (O3) and compiled ahead of time, once for
//    x86-64-v4 (AVX-512, 512-bit vectors) and once for x86-64-v3 (AVX2), each into an object
//    linked by the system linker (`ld -shared`) into a shared object; the runtime loads with
//    dlopen the first one this CPU runs (no MLIR or LLVM at run time);
//  - CUDA: the same function, its scf.parallel tiled (256 threads) and mapped to blocks/threads,
//    outlined into a gpu.module, lowered through NVVM to PTX for sm_80/sm_90 (libdevice for the
//    math functions) and assembled to a cubin by the toolkit's ptxas.
// Only this file's .cc includes MLIR. Built with -DAMPC_WITH_MLIR=OFF, both return Unimplemented.
#pragma once

#include <string>
#include <vector>

#include "ir/status.h"

namespace ampc {

bool HaveMlir();

struct CpuKernelImage {
  std::string shared_object;              // ELF bytes
  std::string entry;                      // symbol of the entry point
  std::vector<std::string> cpu_features;  // what the code needs ("x86-64-v4")
};
// One image per x86-64 level, the runtime's first choice first (x86-64-v4, then x86-64-v3): the
// same IEEE operations in each, so every image gives the same bits. `slp`: LLVM's SLP
// vectoriser on as well as its loop vectoriser.
StatusOr<std::vector<CpuKernelImage>> CompileCpuKernel(const std::string& mlir,
                                                       const std::string& func, bool slp);

struct CudaKernelImage {
  std::string ptx;
  std::string cubin;
  std::string entry;
  // The kernel's launch arguments in order: "begin", "end", "const:V" (an index), "in:J" /
  // "out:J" (a memref: five arguments allocated, aligned, offset, size, stride).
  std::vector<std::string> params;
  int block_threads = 256;
};
// `arch`: "sm_80" | "sm_90"; `cuda_root`: the toolkit (ptxas, nvvm/libdevice).
StatusOr<CudaKernelImage> CompileCudaKernel(const std::string& mlir, const std::string& func,
                                            const std::string& arch, const std::string& cuda_root);

}  // namespace ampc
