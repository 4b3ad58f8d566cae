#include "runtime/cuda/launch.h"

#include <algorithm>
#include <string>

#include "codegen/plan.h"
#include "runtime/device_info.h"

namespace ampc::cuda {

namespace {

// "arg:J" -> J, "const:V" -> V; false when `p` is not `prefix` followed by an integer.
bool ParseSuffix(const std::string& p, const std::string& prefix, int64_t* v) {
  if (p.rfind(prefix, 0) != 0 || p.size() == prefix.size()) return false;
  try {
    size_t used = 0;
    *v = std::stoll(p.substr(prefix.size()), &used);
    return used == p.size() - prefix.size();
  } catch (...) {
    return false;
  }
}

}  // namespace

StatusOr<const plan::KernelImage*> ChooseKernelImage(const plan::Kernel& k, int major, int minor) {
  const plan::KernelImage* cubin = nullptr;
  const plan::KernelImage* ptx = nullptr;
  for (const plan::KernelImage& img : k.images()) {
    const std::string& a = img.arch();
    int64_t v = 0;
    if (!ParseSuffix(a, "sm_", &v) || v < 10) continue;
    const int img_major = static_cast<int>(v / 10), img_minor = static_cast<int>(v % 10);
    const bool not_newer = img_major < major || (img_major == major && img_minor <= minor);
    if (img.format() == plan::KernelImage::CUBIN && img_major == major && not_newer &&
        (img_major != 9 || img_minor == minor)) {
      cubin = &img;
    }
    if (img.format() == plan::KernelImage::PTX && not_newer) ptx = &img;
  }
  if (cubin) return cubin;
  if (ptx) return ptx;
  auto target = CudaTargetFor(major, minor);
  return InvalidArgument("kernel " + k.name() + " has no image for this sm_" +
                         std::to_string(major) + std::to_string(minor) + " GPU" +
                         (target.ok() ? "; compile the plan with --target " + *target
                                      : ": " + target.status().message()));
}

StatusOr<int> KernelParamSlots(const plan::Kernel& k) {
  int n = 0;
  for (const std::string& p : k.params()) {
    int64_t v = 0;
    if (p == "begin" || p == "end" || ParseSuffix(p, "const:", &v)) {
      n += 1;
    } else if (ParseSuffix(p, "arg:", &v)) {
      n += 5;
    } else {
      return InvalidArgument("kernel " + k.name() + ": unknown launch parameter '" + p + "'");
    }
  }
  return n;
}

StatusOr<KernelLaunch> PlanKernelLaunch(const plan::Kernel& k,
                                        const std::vector<DeviceOperand>& inputs,
                                        const std::vector<DeviceOperand>& outputs) {
  const std::string what = "kernel " + k.name();
  const plan::LaunchRule& rule = k.launch();
  if (rule.block_threads() <= 0 || rule.block_threads() > 1024) {
    return InvalidArgument(what + ": " + std::to_string(rule.block_threads()) +
                           " threads per block (a CUDA block holds 1 to 1024)");
  }
  if (rule.elements_per_thread() > 1) {
    return InvalidArgument(what + ": " + std::to_string(rule.elements_per_thread()) +
                           " elements per thread (generated kernels compute one unit each)");
  }
  const int range = rule.elements_of_output();
  if (range < 0 || range >= static_cast<int>(outputs.size())) {
    return InvalidArgument(what + ": the launch rule names output " + std::to_string(range) +
                           " of " + std::to_string(outputs.size()));
  }
  const int64_t row = std::max<int64_t>(1, rule.row_elements());
  const int64_t elements = outputs[range].elements;
  KernelLaunch l;
  l.units = KernelUnits(k, elements);
  if (l.units < 0) {
    return InvalidArgument(what + ": rows of " + std::to_string(row) +
                           " elements do not divide its output of " + std::to_string(elements));
  }
  if (rule.fill_range_output()) {
    l.fill_address = outputs[range].address;
    l.fill_bytes = outputs[range].bytes;
    l.fill_byte = static_cast<uint8_t>(rule.fill_byte());
  }
  l.block = static_cast<uint32_t>(rule.block_threads());
  const int64_t grid = (l.units + l.block - 1) / l.block;
  if (grid > kMaxGridX) {
    return InvalidArgument(what + ": " + std::to_string(l.units) + " units need " +
                           std::to_string(grid) + " blocks, over CUDA's limit");
  }
  l.grid = static_cast<uint32_t>(grid);
  const int64_t n_operands = static_cast<int64_t>(inputs.size() + outputs.size());
  for (const std::string& p : k.params()) {
    int64_t v = 0;
    if (p == "begin") {
      l.slots.push_back(0);
    } else if (p == "end") {
      l.slots.push_back(static_cast<uint64_t>(l.units));
    } else if (ParseSuffix(p, "const:", &v)) {
      l.slots.push_back(static_cast<uint64_t>(v));
    } else if (ParseSuffix(p, "arg:", &v)) {
      if (v < 0 || v >= n_operands) {
        return InvalidArgument(what + ": parameter '" + p + "' but the step has " +
                               std::to_string(n_operands) + " operands");
      }
      const size_t j = static_cast<size_t>(v);
      const DeviceOperand& o = j < inputs.size() ? inputs[j] : outputs[j - inputs.size()];
      for (uint64_t f :
           {o.address, o.address, uint64_t{0}, static_cast<uint64_t>(o.elements), uint64_t{1}}) {
        l.slots.push_back(f);
      }
    } else {
      return InvalidArgument(what + ": unknown launch parameter '" + p + "'");
    }
  }
  return l;
}

}  // namespace ampc::cuda
