#include "runtime/cpu/dnnl_gemm.h"

#ifdef AMPC_HAVE_DNNL

#include <omp.h>

#include <cstdlib>
#include <dnnl.hpp>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "runtime/cpu/dnnl_thread.h"
#include "runtime/cpu/generated.h"

namespace ampc::cpu::dnnl_gemm {
namespace {

using Key =
    std::tuple<int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float>;

struct Prim {
  dnnl::matmul mm;
  dnnl::memory a, b, c;
  dnnl::memory scratch;  // the primitive's own scratchpad: no allocation, no sharing per call
};

// Per thread: the engine, the stream and the primitives of the shapes this thread has run.
struct ThreadState {
  dnnl::engine engine = ThisThreadDnnl().engine;
  dnnl::stream stream = ThisThreadDnnl().stream;
  std::map<Key, std::unique_ptr<Prim>> prims;
};

ThreadState& State() {
  thread_local ThreadState s;
  return s;
}

std::unique_ptr<Prim> Create(ThreadState& s, DType dtype, bool ta, bool tb, int64_t m, int64_t n,
                             int64_t k, float alpha, int64_t lda, int64_t ldb, float beta,
                             int64_t ldc) {
  using dt = dnnl::memory::data_type;
  const dt t = dtype == DType::kBFloat16 ? dt::bf16 : dt::f32;
  const dnnl::memory::desc ma({m, k}, t,
                              ta ? dnnl::memory::dims{1, lda} : dnnl::memory::dims{lda, 1});
  const dnnl::memory::desc mb({k, n}, t,
                              tb ? dnnl::memory::dims{1, ldb} : dnnl::memory::dims{ldb, 1});
  const dnnl::memory::desc mc({m, n}, t, dnnl::memory::dims{ldc, 1});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  auto p = std::make_unique<Prim>();
  try {
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ma, mb, mc), attr, s.engine);
    // A reference (naive) implementation would be slower than the fallback: refuse it.
    const std::string impl = pd.impl_info_str();
    if (impl.find("ref") != std::string::npos) return nullptr;
    p->mm = dnnl::matmul(pd);
    p->a = dnnl::memory(ma, s.engine, DNNL_MEMORY_NONE);
    p->b = dnnl::memory(mb, s.engine, DNNL_MEMORY_NONE);
    p->c = dnnl::memory(mc, s.engine, DNNL_MEMORY_NONE);
    p->scratch = dnnl::memory(pd.scratchpad_desc(), s.engine);
  } catch (const dnnl::error&) {
    return nullptr;
  }
  return p;
}

}  // namespace

}  // namespace ampc::cpu::dnnl_gemm

namespace ampc::cpu {

DnnlThread& ThisThreadDnnl() {
  thread_local DnnlThread t = [] {
    omp_set_num_threads(1);  // this thread's OpenMP ICV: oneDNN runs here, on one thread
    DnnlThread d;
    d.engine = dnnl::engine(dnnl::engine::kind::cpu, 0);
    d.stream = dnnl::stream(d.engine);
    return d;
  }();
  return t;
}

}  // namespace ampc::cpu

namespace ampc::cpu::dnnl_gemm {

// AMPC_GEMM=openblas in the environment: no oneDNN at all; =onednn: also for f32 on CPUs
// without AVX-512 (for measurements).
const char* Override() {
  static const std::string e = [] {
    const char* v = std::getenv("AMPC_GEMM");
    return std::string(v ? v : "");
  }();
  return e.c_str();
}

bool Available() { return std::string(Override()) != "openblas"; }

bool NativeBf16() {
  static const bool native = Available() && CpuHasFeature("avx512bf16");
  return native;
}

bool UseForF32() {
  static const bool use =
      Available() && (std::string(Override()) == "onednn" || CpuHasFeature("avx512f"));
  return use;
}

bool Gemm(DType dtype, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
          const void* a, int64_t lda, const void* b, int64_t ldb, float beta, void* c,
          int64_t ldc) {
  if (dtype != DType::kFloat32 && dtype != DType::kBFloat16) return false;
  ThreadState& s = State();
  const Key key{static_cast<int>(dtype), ta, tb, m, n, k, lda, ldb, ldc, alpha, beta};
  auto it = s.prims.find(key);
  if (it == s.prims.end()) {
    it = s.prims.emplace(key, Create(s, dtype, ta, tb, m, n, k, alpha, lda, ldb, beta, ldc)).first;
  }
  Prim* p = it->second.get();
  if (!p) return false;  // oneDNN has no fast kernel for it: remembered, never retried
  try {
    p->a.set_data_handle(const_cast<void*>(a));
    p->b.set_data_handle(const_cast<void*>(b));
    p->c.set_data_handle(c);
    p->mm.execute(s.stream, {{DNNL_ARG_SRC, p->a},
                             {DNNL_ARG_WEIGHTS, p->b},
                             {DNNL_ARG_DST, p->c},
                             {DNNL_ARG_SCRATCHPAD, p->scratch}});
  } catch (const dnnl::error&) {
    return false;
  }
  return true;
}

}  // namespace ampc::cpu::dnnl_gemm

#else  // !AMPC_HAVE_DNNL

namespace ampc::cpu::dnnl_gemm {
bool Available() { return false; }
bool NativeBf16() { return false; }
bool UseForF32() { return false; }
bool Gemm(DType, bool, bool, int64_t, int64_t, int64_t, float, const void*, int64_t, const void*,
          int64_t, float, void*, int64_t) {
  return false;
}
}  // namespace ampc::cpu::dnnl_gemm

#endif
