// Generated kernels on the CPU: a plan's SHARED_OBJECT images (codegen/mlir_compile.h) loaded
// with dlopen from an anonymous memory file, and called through their C interface:
//
//   void entry(int64_t begin, int64_t end, MemRef1D* buffer_0, ..., MemRef1D* buffer_{n-1})
//
// where the buffers are the step's inputs then outputs, each a 1-D memref descriptor {allocated,
// aligned, offset, size, stride}, and [begin, end) the elements to compute (the executor splits
// the range over its threads). An image is used only if this CPU has every feature it names.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codegen/plan.pb.h"
#include "ir/status.h"
#include "runtime/cpu/kernel.h"

namespace ampc::cpu {

// Whether this CPU has a feature named in KernelImage.cpu_features ("x86-64-v3", "avx2", ...).
bool CpuHasFeature(const std::string& feature);

// How one step calls a generated kernel: the units of its range, the thread grain, and the output
// the launch rule fills first (LaunchRule.fill_range_output), from the kernel's table entry and
// the step's outputs.
struct KernelCall {
  int64_t units = 0;
  int64_t unit_elements = 1;
  TensorView* fill = nullptr;
  uint8_t fill_byte = 0;
};
StatusOr<KernelCall> PlanKernelCall(const plan::Kernel& k, const std::vector<TensorView*>& outputs);

class GeneratedKernel {
 public:
  // nullptr (and no error) when no image of `k` runs on this CPU.
  static StatusOr<std::unique_ptr<GeneratedKernel>> Load(const plan::Kernel& k);
  ~GeneratedKernel();

  // Computes units [0, units) of `buffers` (inputs then outputs), split over `pool`; a unit is
  // `unit_elements` elements of work (a row, or a reduction output's count): the thread grain.
  void Run(const std::vector<TensorView*>& buffers, int64_t units, ThreadPool* pool,
           int64_t unit_elements = 1) const;
  // Run as `call` says: the fill first, then its units.
  void Call(const KernelCall& call, const std::vector<TensorView*>& buffers,
            ThreadPool* pool) const;
  const std::string& name() const { return name_; }

 private:
  GeneratedKernel() = default;
  void* handle_ = nullptr;
  int fd_ = -1;
  void* fn_ = nullptr;
  std::string name_;
};

}  // namespace ampc::cpu
