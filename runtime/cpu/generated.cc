#include "runtime/cpu/generated.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
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

bool CpuHasFeature(const std::string& f) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (f == "x86-64") return true;
  if (f == "x86-64-v2") return __builtin_cpu_supports("x86-64-v2");
  if (f == "x86-64-v3") return __builtin_cpu_supports("x86-64-v3");
  if (f == "x86-64-v4") return __builtin_cpu_supports("x86-64-v4");
  if (f == "avx2") return __builtin_cpu_supports("avx2");
  if (f == "fma") return __builtin_cpu_supports("fma");
  if (f == "avx512f") return __builtin_cpu_supports("avx512f");
  if (f == "avx512bf16") return __builtin_cpu_supports("avx512bf16");
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
