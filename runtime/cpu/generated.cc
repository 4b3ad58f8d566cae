#include "runtime/cpu/generated.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "codegen/plan.h"
#include "runtime/cpu/thread_pool.h"

namespace ampc::cpu {
namespace {

struct MemRef1D {
  void* allocated;
  void* aligned;
  int64_t offset;
  int64_t size;
  int64_t stride;
};

// Calls fn(begin, end, a[0], ..., a[N-1]) for the N known at compile time.
template <size_t... I>
void CallN(void* fn, int64_t begin, int64_t end, MemRef1D* const* a, std::index_sequence<I...>) {
  using F = void (*)(int64_t, int64_t, decltype((void)I, static_cast<MemRef1D*>(nullptr))...);
  reinterpret_cast<F>(fn)(begin, end, a[I]...);
}
using Caller = void (*)(void*, int64_t, int64_t, MemRef1D* const*);
template <size_t N>
void CallFixed(void* fn, int64_t b, int64_t e, MemRef1D* const* a) {
  CallN(fn, b, e, a, std::make_index_sequence<N>{});
}
template <size_t... N>
constexpr std::array<Caller, sizeof...(N)> Callers(std::index_sequence<N...>) {
  return {&CallFixed<N>...};
}
constexpr auto kCallers = Callers(std::make_index_sequence<kMaxKernelArgs + 1>{});

// Elements per parallel chunk: waking the pool costs tens of microseconds.
constexpr int64_t kGrain = 1 << 15;

}  // namespace

namespace {

#if defined(__x86_64__)
// The x86-64 micro-architecture levels and features from cpuid and xgetbv (the OS must save the
// AVX / AVX-512 registers too). Read directly: __builtin_cpu_supports knows the level names only
// in newer compilers (not clang 14, which builds the fuzzers).
struct X86Features {
  bool v2 = false, v3 = false, v4 = false, avx2 = false, fma = false, avx512f = false,
       avx512bf16 = false;
};

const X86Features& X86() {
  static const X86Features f = [] {
    X86Features x;
    unsigned a = 0, b = 0, c1 = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c1, &d)) return x;
    unsigned b7 = 0, c7 = 0, d7 = 0, a71 = 0;
    if (__get_cpuid_max(0, nullptr) >= 7) {
      __cpuid_count(7, 0, a, b7, c7, d7);
      unsigned b71 = 0, c71 = 0, d71 = 0;
      __cpuid_count(7, 1, a71, b71, c71, d71);
    }
    unsigned c81 = 0;
    if (!__get_cpuid(0x80000001, &a, &b, &c81, &d)) c81 = 0;
    auto has = [](unsigned reg, int bit) { return ((reg >> bit) & 1u) != 0; };
    uint64_t xcr0 = 0;
    if (has(c1, 27)) {  // OSXSAVE
      unsigned lo = 0, hi = 0;
      __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
      xcr0 = (static_cast<uint64_t>(hi) << 32) | lo;
    }
    const bool avx_state = (xcr0 & 0x6) == 0x6, avx512_state = (xcr0 & 0xe6) == 0xe6;
    // leaf 1 ecx: SSE3 0, SSSE3 9, FMA 12, CX16 13, SSE4.1 19, SSE4.2 20, MOVBE 22, POPCNT 23,
    // AVX 28, F16C 29; 0x80000001 ecx: LAHF 0, LZCNT 5; leaf 7 ebx: BMI1 3, AVX2 5, BMI2 8,
    // AVX512F 16, DQ 17, CD 28, BW 30, VL 31; leaf 7.1 eax: AVX512_BF16 5.
    x.v2 = has(c1, 0) && has(c1, 9) && has(c1, 13) && has(c1, 19) && has(c1, 20) && has(c1, 23) &&
           has(c81, 0);
    x.fma = avx_state && has(c1, 12) && has(c1, 28);
    x.avx2 = avx_state && has(b7, 5) && has(c1, 28);
    x.v3 = x.v2 && x.fma && x.avx2 && has(c1, 29) && has(c1, 22) && has(b7, 3) && has(b7, 8) &&
           has(c81, 5);
    x.avx512f = avx512_state && has(b7, 16);
    x.v4 = x.v3 && x.avx512f && has(b7, 17) && has(b7, 28) && has(b7, 30) && has(b7, 31);
    x.avx512bf16 = x.avx512f && has(a71, 5);
    return x;
  }();
  return f;
}
#endif

}  // namespace

bool CpuHasFeature(const std::string& f) {
#if defined(__x86_64__)
  const X86Features& x = X86();
  if (f == "x86-64") return true;
  if (f == "x86-64-v2") return x.v2;
  if (f == "x86-64-v3") return x.v3;
  if (f == "x86-64-v4") return x.v4;
  if (f == "avx2") return x.avx2;
  if (f == "fma") return x.fma;
  if (f == "avx512f") return x.avx512f;
  if (f == "avx512bf16") return x.avx512bf16;
#endif
  return false;  // a feature this runtime does not know: the image is not used
}

StatusOr<std::unique_ptr<GeneratedKernel>> GeneratedKernel::Load(const plan::Kernel& k) {
  const plan::KernelImage* image = nullptr;
  for (const auto& img : k.images()) {
    if (img.format() != plan::KernelImage::SHARED_OBJECT) continue;
    bool fits = true;
    for (const auto& f : img.cpu_features()) fits = fits && CpuHasFeature(f);
    if (fits) {
      image = &img;
      break;
    }
  }
  if (!image) return std::unique_ptr<GeneratedKernel>();
  const std::string what = "generated kernel '" + k.name() + "'";
  const int fd = memfd_create(("ampc-" + k.name()).c_str(), MFD_CLOEXEC);
  if (fd < 0) return Internal(what + ": memfd_create: " + std::strerror(errno));
  const std::string& bytes = image->data();
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = write(fd, bytes.data() + done, bytes.size() - done);
    if (w <= 0) {
      close(fd);
      return Internal(what + ": cannot write its image");
    }
    done += static_cast<size_t>(w);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  // The descriptor stays open while the library is loaded: dlopen knows libraries by path, and
  // a reused descriptor number would name an already loaded kernel.
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    close(fd);
    const char* e = dlerror();
    return InvalidArgument(what + ": its shared object does not load: " + (e ? e : "?"));
  }
  void* fn = dlsym(h, k.entry().c_str());
  if (!fn) {
    dlclose(h);
    close(fd);
    return InvalidArgument(what + ": no entry point '" + k.entry() + "'");
  }
  std::unique_ptr<GeneratedKernel> g(new GeneratedKernel());
  g->handle_ = h;
  g->fd_ = fd;
  g->fn_ = fn;
  g->name_ = k.name();
  return g;
}

GeneratedKernel::~GeneratedKernel() {
  if (handle_) dlclose(handle_);
  if (fd_ >= 0) close(fd_);
}

StatusOr<KernelCall> PlanKernelCall(const plan::Kernel& k,
                                    const std::vector<TensorView*>& outputs) {
  const int range = k.launch().elements_of_output();
  if (range < 0 || range >= static_cast<int>(outputs.size()) || !outputs[range]) {
    return InvalidArgument("kernel " + k.name() + ": the launch rule names output " +
                           std::to_string(range));
  }
  KernelCall c;
  c.units = KernelUnits(k, outputs[range]->NumElements());
  if (c.units < 0)
    return InvalidArgument("kernel " + k.name() + ": its rows do not divide its output");
  const int64_t row = std::max<int64_t>(1, k.launch().row_elements());
  c.unit_elements = std::max<int64_t>(row, k.launch().unit_work());
  if (k.launch().fill_range_output()) {
    c.fill = outputs[range];
    c.fill_byte = static_cast<uint8_t>(k.launch().fill_byte());
  }
  return c;
}

void GeneratedKernel::Call(const KernelCall& call, const std::vector<TensorView*>& buffers,
                           ThreadPool* pool) const {
  if (call.fill) {
    std::memset(call.fill->data, call.fill_byte,
                static_cast<size_t>(call.fill->NumElements()) * DTypeSize(call.fill->dtype));
  }
  Run(buffers, call.units, pool, call.unit_elements);
}

void GeneratedKernel::Run(const std::vector<TensorView*>& buffers, int64_t units, ThreadPool* pool,
                          int64_t unit_elements) const {
  std::array<MemRef1D, kMaxKernelArgs> desc;
  std::array<MemRef1D*, kMaxKernelArgs> args;
  const size_t n = buffers.size();
  for (size_t i = 0; i < n; ++i) {
    desc[i] = {buffers[i]->data, buffers[i]->data, 0, buffers[i]->NumElements(), 1};
    args[i] = &desc[i];
  }
  const Caller call = kCallers[n];
  void* fn = fn_;
  ParallelFor(pool, units, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, unit_elements)),
              [&](int64_t b, int64_t e) { call(fn, b, e, args.data()); });
}

}  // namespace ampc::cpu
