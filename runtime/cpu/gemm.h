// The one GEMM entry point of the CPU runtime: every matmul-like kernel (MatMul, Gemm, Conv,
// ConvTranspose, Einsum) multiplies through here.
//
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C[M,N]      (row-major, op = optional ^T)
//
// f32 calls OpenBLAS sgemm and f64 dgemm directly. f16/bf16 are storage types: A and B panels
// are widened to fp32 (exactly), multiplied by sgemm into an fp32 accumulator that starts as
// beta * C (C's half values widened exactly), and each element is rounded ONCE into the half
// output (cuBLASLt CUBLAS_COMPUTE_32F behaviour). Threads come from the runtime's ThreadPool.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "ir/status.h"
#include "runtime/cpu/kernel.h"

namespace ampc::cpu {

class ThreadPool;

// A (batched) GEMM. Product i of a batch reads A at element offset i * stride_a (or
// offsets_a[i] when given), B and C likewise; a stride of 0 shares the operand across the batch.
// Leading dims are row-major and refer to the stored matrices: A is stored [K,M] when trans_a,
// else [M,K]; B is stored [N,K] when trans_b, else [K,N]; C is [M,N].
struct GemmDesc {
  DType dtype = DType::kFloat32;  // of A, B and C: f32, f64, f16 or bf16
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;  // 0: packed (the stored matrix's column count)
  double alpha = 1.0, beta = 0.0;     // beta == 0: C is overwritten, never read
  int64_t batch = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  const int64_t* offsets_a = nullptr;  // optional, `batch` entries each
  const int64_t* offsets_b = nullptr;
  const int64_t* offsets_c = nullptr;
};

// Runs the products on `pool` (may be null): whole products per thread when the batch is at
// least the pool's size, else each product split by rows or columns; half <-> fp32 conversions
// are parallel too. Must not be called from inside a ParallelFor. Unsupported dtypes and dims
// beyond BLAS's 32-bit int range return Unimplemented.
Status Gemm(const GemmDesc& d, const void* a, const void* b, void* c, ThreadPool* pool = nullptr);

// Plain row-major BLAS calls on the calling thread only (no batching; k == 0 and empty outputs
// handled). Safe to call concurrently, e.g. from inside a ParallelFor. OpenBLAS is set to one
// thread: the runtime's pool does the splitting (see gemm.cc for why).
void Sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void Dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
           const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
           int64_t ldc);

// Overloads for templated kernels that compute in float or double.
inline void GemmT(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void GemmT(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                  int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  Dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// One product split across `pool` by rows (or columns) of C; small products stay on the
// calling thread. Must not be called from inside a ParallelFor (the pool is not reentrant).
void ParallelGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                  ThreadPool* pool);
void ParallelGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                  int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc,
                  ThreadPool* pool);

// True when every dim of a GEMM fits BLAS's int.
bool GemmDimsFit(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc);

// --- compute-type views for the NN kernels ------------------------------------------------------
// Kernels compute in T = float (f32, f16, bf16 tensors) or T = double (f64). These give them a
// tensor's elements as T: the tensor's own memory when its dtype already is T, else a widened
// copy (exact); outputs of another dtype are computed into scratch and rounded once by Finish().

// Converts all elements of v to T (parallel over chunks when `pool` is given).
void WidenAll(const TensorView& v, float* dst, ThreadPool* pool);
void WidenAll(const TensorView& v, double* dst, ThreadPool* pool);
// Rounds src once into all elements of v.
void NarrowAll(const float* src, TensorView& v, ThreadPool* pool);
void NarrowAll(const double* src, TensorView& v, ThreadPool* pool);

template <typename T>
constexpr DType kDTypeOf = std::is_same_v<T, double> ? DType::kFloat64 : DType::kFloat32;

template <typename T>
class ComputeIn {
 public:
  ComputeIn(const TensorView& v, ThreadPool* pool) {
    if (v.dtype == kDTypeOf<T>) {
      p_ = v.as<const T>();
    } else {
      copy_.resize(static_cast<size_t>(v.NumElements()));
      WidenAll(v, copy_.data(), pool);
      p_ = copy_.data();
    }
  }
  const T* get() const { return p_; }

 private:
  std::vector<T> copy_;
  const T* p_ = nullptr;
};

template <typename T>
class ComputeOut {
 public:
  explicit ComputeOut(TensorView& v) : v_(v) {
    if (v.dtype == kDTypeOf<T>) {
      p_ = v.as<T>();
    } else {
      copy_.resize(static_cast<size_t>(v.NumElements()));
      p_ = copy_.data();
    }
  }
  T* get() const { return p_; }
  bool is_scratch() const { return !copy_.empty(); }
  void Finish(ThreadPool* pool) {
    if (!copy_.empty()) NarrowAll(copy_.data(), v_, pool);
  }

 private:
  TensorView& v_;
  std::vector<T> copy_;
  T* p_ = nullptr;
};

}  // namespace ampc::cpu
