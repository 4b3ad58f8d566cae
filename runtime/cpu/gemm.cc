#include "runtime/cpu/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <string>
#include <type_traits>
#include <vector>

#include "ir/float16.h"
#include "runtime/cpu/convert.h"
#include "runtime/cpu/dnnl_gemm.h"
#include "runtime/cpu/thread_pool.h"

namespace ampc::cpu {
namespace {

constexpr int64_t kConvertGrain = 1 << 14;  // elements per parallel conversion chunk
constexpr int64_t kParallelWork = 1 << 18;  // m*n*k below which a product stays on one thread

template <typename T>
void ScaleC(int64_t m, int64_t n, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    if (beta == T(0)) {
      std::fill(row, row + n, T(0));
    } else {
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
}

int I(int64_t v) { return static_cast<int>(v); }

// Widens `rows` rows of `cols` 16-bit floats (row r at src + r * ld) into dst, packed.
template <bool kBF16>
void WidenRows(const uint16_t* src, int64_t ld, int64_t rows, int64_t cols, float* dst,
               ThreadPool* pool) {
  const int64_t grain = std::max<int64_t>(1, kConvertGrain / std::max<int64_t>(1, cols));
  ParallelFor(pool, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      if (kBF16) {
        BFloat16ToFloatN(src + r * ld, dst + r * cols, cols);
      } else {
        HalfToFloatN(src + r * ld, dst + r * cols, cols);
      }
    }
  });
}

// Rounds an [m,n] packed fp32 matrix once into 16-bit floats (row i at dst + i * ld).
template <bool kBF16>
void NarrowRows(const float* src, int64_t rows, int64_t cols, uint16_t* dst, int64_t ld,
                ThreadPool* pool) {
  const int64_t grain = std::max<int64_t>(1, kConvertGrain / std::max<int64_t>(1, cols));
  ParallelFor(pool, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      if (kBF16) {
        FloatToBFloat16N(src + r * cols, dst + r * ld, cols);
      } else {
        FloatToHalfN(src + r * cols, dst + r * ld, cols);
      }
    }
  });
}

int64_t Offset(const int64_t* offsets, int64_t stride, int64_t i) {
  return offsets ? offsets[i] : i * stride;
}

// OpenBLAS runs single-threaded; the runtime's pool splits the work instead. Letting OpenBLAS
// thread itself was measured worse on the 2-core machines: after each call its worker threads
// keep spinning for a while and halve the speed of the pool-parallel kernels that follow
// (MaxPool after a Conv: 0.85 -> 1.57 ms), and concurrent calls from pool threads serialise.
void UseSingleThreadedBlas() {
  static const bool once = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)once;
}

// f32 products below this m*n*k stay with OpenBLAS even where oneDNN runs f32 (UseForF32): its
// per-call cost outweighs its faster kernels there (the MLP's 256x256x10 input gradient: 7 us in
// OpenBLAS, 40-150 us in oneDNN, measured in the training step).
constexpr int64_t kDnnlF32Work = int64_t{1} << 22;
// bf16 products below this many multiply-adds (attention's per-head products) keep the widening
// path: one pool-parallel conversion of the whole batch and an sgemm per product cost less than a
// oneDNN call per product.
constexpr int64_t kDnnlBf16Work = int64_t{1} << 18;

// One product split across the pool by rows of C, or by columns when there are few rows; each
// block runs `block` (a single-threaded GEMM with GemmT's signature) on one thread.
template <typename T, typename S, typename Block>
void SplitGemmWith(const Block& block, bool ta, bool tb, int64_t m, int64_t n, int64_t k, S alpha,
                   const T* a, int64_t lda, const T* b, int64_t ldb, S beta, T* c, int64_t ldc,
                   ThreadPool* pool) {
  const int64_t parts = pool ? pool->size() : 1;
  constexpr int64_t kAlign = 16;  // keep the BLAS micro-kernels' panels whole
  const bool rows = m >= parts * kAlign && (m >= n || n < parts * kAlign);
  const bool cols = !rows && n >= parts * kAlign;
  if (parts <= 1 || m * n * k < kParallelWork || (!rows && !cols)) {
    block(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const int64_t total = rows ? m : n;
  const int64_t chunk = ((total + parts - 1) / parts + kAlign - 1) / kAlign * kAlign;
  ParallelFor(pool, parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t lo = std::min(total, p * chunk), hi = std::min(total, lo + chunk);
      if (lo >= hi) continue;
      if (rows) {
        block(ta, tb, hi - lo, n, k, alpha, ta ? a + lo : a + lo * lda, lda, b, ldb, beta,
              c + lo * ldc, ldc);
      } else {
        block(ta, tb, m, hi - lo, k, alpha, a, lda, tb ? b + lo * ldb : b + lo, ldb, beta, c + lo,
              ldc);
      }
    }
  });
}

struct BlasBlock {
  template <typename T>
  void operator()(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                  int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) const {
    GemmT(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
};

template <typename T>
void SplitGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc, ThreadPool* pool) {
  SplitGemmWith(BlasBlock(), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, pool);
}

// Products of a batch: whole products per thread when there are enough of them, else each
// product split across the pool. T: the stored element type; S: the scalars' type.
template <typename T, typename S, typename Block>
void BatchedGemmWith(const Block& block, const GemmDesc& d, int64_t lda, int64_t ldb, int64_t ldc,
                     const T* a, const T* b, T* c, ThreadPool* pool) {
  const S alpha = static_cast<S>(d.alpha), beta = static_cast<S>(d.beta);
  const int64_t parts = pool ? pool->size() : 1;
  auto one = [&](int64_t i, ThreadPool* split) {
    SplitGemmWith(block, d.trans_a, d.trans_b, d.m, d.n, d.k, alpha,
                  a + Offset(d.offsets_a, d.stride_a, i), lda,
                  b + Offset(d.offsets_b, d.stride_b, i), ldb, beta,
                  c + Offset(d.offsets_c, d.stride_c, i), ldc, split);
  };
  if (parts > 1 && d.batch >= parts && d.m * d.n * d.k * d.batch >= kParallelWork) {
    ParallelFor(pool, d.batch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t i = b0; i < b1; ++i) one(i, nullptr);  // whole products per thread
    });
  } else {
    for (int64_t i = 0; i < d.batch; ++i) one(i, pool);
  }
}

template <typename T>
void BatchedGemm(const GemmDesc& d, int64_t lda, int64_t ldb, int64_t ldc, const T* a, const T* b,
                 T* c, ThreadPool* pool) {
  BatchedGemmWith<T, T>(BlasBlock(), d, lda, ldb, ldc, a, b, c, pool);
}

template <bool kBF16>
void HalfGemm(const GemmDesc& d, int64_t lda, int64_t ldb, int64_t ldc, const uint16_t* a,
              const uint16_t* b, uint16_t* c, ThreadPool* pool) {
  const int64_t a_rows = d.trans_a ? d.k : d.m, a_cols = d.trans_a ? d.m : d.k;
  const int64_t b_rows = d.trans_b ? d.n : d.k, b_cols = d.trans_b ? d.k : d.n;
  std::vector<float> fa(static_cast<size_t>(a_rows * a_cols));
  std::vector<float> fb(static_cast<size_t>(b_rows * b_cols));
  std::vector<float> fc(static_cast<size_t>(d.m * d.n));
  int64_t last_a = -1, last_b = -1;  // offset of the panel now widened in fa / fb
  for (int64_t i = 0; i < d.batch; ++i) {
    const int64_t oa = Offset(d.offsets_a, d.stride_a, i);
    const int64_t ob = Offset(d.offsets_b, d.stride_b, i);
    const int64_t oc = Offset(d.offsets_c, d.stride_c, i);
    if (oa != last_a) WidenRows<kBF16>(a + oa, lda, a_rows, a_cols, fa.data(), pool);
    if (ob != last_b) WidenRows<kBF16>(b + ob, ldb, b_rows, b_cols, fb.data(), pool);
    last_a = oa;
    last_b = ob;
    if (d.beta != 0.0) WidenRows<kBF16>(c + oc, ldc, d.m, d.n, fc.data(), pool);
    SplitGemm(d.trans_a, d.trans_b, d.m, d.n, d.k, static_cast<float>(d.alpha), fa.data(), a_cols,
              fb.data(), b_cols, static_cast<float>(d.beta), fc.data(), d.n, pool);
    NarrowRows<kBF16>(fc.data(), d.m, d.n, c + oc, ldc, pool);
  }
}

// A bf16 block on one thread: oneDNN reads the bf16 operands directly (native bf16 dot
// products); should oneDNN refuse the shape, the block takes the widening path on this thread.
struct Bf16Block {
  void operator()(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t* a,
                  int64_t lda, const uint16_t* b, int64_t ldb, float beta, uint16_t* c,
                  int64_t ldc) const {
    if (dnnl_gemm::Gemm(DType::kBFloat16, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) {
      return;
    }
    GemmDesc one;
    one.dtype = DType::kBFloat16;
    one.trans_a = ta, one.trans_b = tb, one.m = m, one.n = n, one.k = k;
    one.alpha = alpha, one.beta = beta;
    HalfGemm<true>(one, lda, ldb, ldc, a, b, c, nullptr);
  }
};

}  // namespace

bool GemmDimsFit(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
  for (int64_t v : {m, n, k, lda, ldb, ldc}) {
    if (v < 0 || v > INT_MAX) return false;
  }
  return true;
}

// The BLAS call for one element type, row-major, with leading dimensions made valid.
template <typename T>
void BlasGemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
              int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) {
    ScaleC(m, n, beta, c, ldc);
    return;
  }
  lda = std::max<int64_t>({lda, trans_a ? m : k, 1});
  ldb = std::max<int64_t>({ldb, trans_b ? k : n, 1});
  ldc = std::max<int64_t>({ldc, n, 1});
  if constexpr (std::is_same_v<T, float>) {
    if (m * n * k >= kDnnlF32Work && dnnl_gemm::UseForF32() &&
        dnnl_gemm::Gemm(DType::kFloat32, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
                        ldc)) {
      return;
    }
  }
  UseSingleThreadedBlas();
  const auto ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, ta, tb, I(m), I(n), I(k), alpha, a, I(lda), b, I(ldb), beta, c,
                I(ldc));
  } else {
    cblas_dgemm(CblasRowMajor, ta, tb, I(m), I(n), I(k), alpha, a, I(lda), b, I(ldb), beta, c,
                I(ldc));
  }
}

void Sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  BlasGemm<float>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void Dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
           const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
           int64_t ldc) {
  BlasGemm<double>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void ParallelGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                  ThreadPool* pool) {
  SplitGemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, pool);
}
void ParallelGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                  int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc,
                  ThreadPool* pool) {
  SplitGemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, pool);
}

Status Gemm(const GemmDesc& d, const void* a, const void* b, void* c, ThreadPool* pool) {
  const int64_t lda = d.lda > 0 ? d.lda : (d.trans_a ? d.m : d.k);
  const int64_t ldb = d.ldb > 0 ? d.ldb : (d.trans_b ? d.k : d.n);
  const int64_t ldc = d.ldc > 0 ? d.ldc : d.n;
  if (!GemmDimsFit(d.m, d.n, d.k, lda, ldb, ldc) || d.batch < 0) {
    return Unimplemented("GEMM of [" + std::to_string(d.m) + "x" + std::to_string(d.k) + "] x [" +
                         std::to_string(d.k) + "x" + std::to_string(d.n) +
                         "] exceeds the 32-bit dims of the BLAS library");
  }
  if (d.m == 0 || d.n == 0) return Status::Ok();
  switch (d.dtype) {
    case DType::kFloat32:
      BatchedGemm(d, lda, ldb, ldc, static_cast<const float*>(a), static_cast<const float*>(b),
                  static_cast<float*>(c), pool);
      return Status::Ok();
    case DType::kFloat64:
      BatchedGemm(d, lda, ldb, ldc, static_cast<const double*>(a), static_cast<const double*>(b),
                  static_cast<double*>(c), pool);
      return Status::Ok();
    case DType::kFloat16:
      HalfGemm<false>(d, lda, ldb, ldc, static_cast<const uint16_t*>(a),
                      static_cast<const uint16_t*>(b), static_cast<uint16_t*>(c), pool);
      return Status::Ok();
    case DType::kBFloat16:
      if (d.k > 0 && d.alpha != 0.0 && d.m * d.n * d.k >= kDnnlBf16Work &&
          dnnl_gemm::NativeBf16()) {
        BatchedGemmWith<uint16_t, float>(
            Bf16Block(), d, lda, ldb, ldc, static_cast<const uint16_t*>(a),
            static_cast<const uint16_t*>(b), static_cast<uint16_t*>(c), pool);
        return Status::Ok();
      }
      HalfGemm<true>(d, lda, ldb, ldc, static_cast<const uint16_t*>(a),
                     static_cast<const uint16_t*>(b), static_cast<uint16_t*>(c), pool);
      return Status::Ok();
    default:
      return Unimplemented("GEMM on " + std::string(DTypeName(d.dtype)) + " is not supported");
  }
}

namespace {

constexpr int64_t kWidenGrain = 1 << 15;

template <typename T>
void WidenAllImpl(const TensorView& v, T* dst, ThreadPool* pool) {
  ParallelFor(pool, v.NumElements(), kWidenGrain, [&](int64_t b, int64_t e) {
    if constexpr (std::is_same_v<T, float>) {
      LoadFloats(v, b, e - b, dst + b);
    } else {
      for (int64_t i = b; i < e; ++i) dst[i] = Load<T>(v, i);
    }
  });
}

template <typename T>
void NarrowAllImpl(const T* src, TensorView& v, ThreadPool* pool) {
  ParallelFor(pool, v.NumElements(), kWidenGrain, [&](int64_t b, int64_t e) {
    if constexpr (std::is_same_v<T, float>) {
      StoreFloats(src + b, e - b, v, b);
    } else {
      for (int64_t i = b; i < e; ++i) Store<T>(v, i, src[i]);
    }
  });
}

}  // namespace

void WidenAll(const TensorView& v, float* dst, ThreadPool* pool) { WidenAllImpl(v, dst, pool); }
void WidenAll(const TensorView& v, double* dst, ThreadPool* pool) { WidenAllImpl(v, dst, pool); }
void NarrowAll(const float* src, TensorView& v, ThreadPool* pool) { NarrowAllImpl(src, v, pool); }
void NarrowAll(const double* src, TensorView& v, ThreadPool* pool) { NarrowAllImpl(src, v, pool); }

}  // namespace ampc::cpu
