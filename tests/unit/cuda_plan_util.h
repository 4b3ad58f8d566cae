// Shared by the CUDA plan tests (cuda_plan_test.cc, cuda_window_test.cc): the fixture models'
// --target cuda plans and a CPU model of cuBLASLt's documented column-major semantics.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "codegen/mlir_compile.h"
#include "codegen/plan.h"
#include "generated_kernels_util.h"
#include "runtime/cpu/executor.h"
#include "runtime/cuda/copy_desc.h"
#include "runtime/cuda/gemm_layout.h"

namespace ampc::cuda_test {

using cuda::GemmDesc;

inline bool HaveCudaToolkit() {
  const char* home = std::getenv("CUDA_HOME");
  const std::string root = home && *home ? home : "/usr/local/cuda";
  return std::filesystem::exists(root + "/bin/ptxas");
}

// The fixture models' training plans for cuda:sm_90 (bf16 and fp32), compiled once.
inline const std::vector<Plan>& CudaPlans() {
  static const std::vector<Plan> plans = [] {
    std::vector<Plan> out;
    const BackendSupport support = cpu::CpuBackendSupportAs(Target{"cuda", "sm_90"});
    for (int mi : {0, 1, 2}) {
      for (DType p : {DType::kBFloat16, DType::kFloat32}) {
        auto c = gen_test::Compile(gen_test::Models()[mi], p, &support);
        EXPECT_TRUE(c.ok()) << c.status().message();
        if (c.ok()) out.push_back(std::move(c->train));
      }
    }
    return out;
  }();
  return plans;
}

inline std::vector<int64_t> Dims(const plan::Buffer& b) {
  return {b.dims().begin(), b.dims().end()};
}

inline int64_t Count(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}

// GELU's tanh form (cuBLASLt's GELU epilogue) and its derivative, in double.
inline double GeluTanh(double v) {
  const double c = std::sqrt(2.0 / M_PI);
  return 0.5 * v * (1.0 + std::tanh(c * (v + 0.044715 * v * v * v)));
}
inline double GeluTanhDerivative(double v) {
  const double c = std::sqrt(2.0 / M_PI);
  const double t = std::tanh(c * (v + 0.044715 * v * v * v));
  return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * v * v);
}

// cuBLASLt's semantics (column-major, per call and batch) on the description. `aux`: the
// epilogue's aux matrix, laid out as D (GELU_AUX writes the pre-activation there, DGELU reads
// it); `bias_grad`: DGELU_BGRAD's sums of D over its columns (m values).
inline std::vector<double> CublasLtModel(const GemmDesc& d,
                                         const std::vector<std::vector<double>>& x,
                                         int64_t out_elements, std::vector<double>* aux = nullptr,
                                         std::vector<double>* bias_grad = nullptr) {
  if (bias_grad) bias_grad->assign(static_cast<size_t>(d.m), 0.0);
  EXPECT_EQ(d.trans_a ? d.a.rows : d.a.cols, d.k);
  EXPECT_EQ(d.trans_a ? d.a.cols : d.a.rows, d.m);
  EXPECT_EQ(d.trans_b ? d.b.cols : d.b.rows, d.k);
  EXPECT_EQ(d.trans_b ? d.b.rows : d.b.cols, d.n);
  EXPECT_EQ(d.d.rows, d.m);
  EXPECT_EQ(d.d.cols, d.n);
  EXPECT_GE(d.a.ld, d.a.rows);
  EXPECT_GE(d.b.ld, d.b.rows);
  EXPECT_GE(d.d.ld, d.d.rows);
  std::vector<double> y(static_cast<size_t>(out_elements), -12345.0);
  const std::vector<double>& A = x[static_cast<size_t>(d.a_input)];
  const std::vector<double>& B = x[static_cast<size_t>(d.b_input)];
  for (const cuda::GemmCallOffsets& call : d.calls) {
    for (int64_t t = 0; t < d.batch; ++t) {
      const int64_t a0 = call.a + t * d.a.batch_stride, b0 = call.b + t * d.b.batch_stride;
      const int64_t d0 = call.d + t * d.d.batch_stride;
      for (int64_t j = 0; j < d.n; ++j) {
        for (int64_t i = 0; i < d.m; ++i) {
          double s = 0;
          for (int64_t p = 0; p < d.k; ++p) {
            const double av =
                A.at(static_cast<size_t>(a0 + (d.trans_a ? p + i * d.a.ld : i + p * d.a.ld)));
            const double bv =
                B.at(static_cast<size_t>(b0 + (d.trans_b ? j + p * d.b.ld : p + j * d.b.ld)));
            s += av * bv;
          }
          const size_t at = static_cast<size_t>(d0 + i + j * d.d.ld);
          double v = d.alpha * s;
          if (d.c_matrix) v += d.beta * x[2].at(at);
          if (cuda::HasBias(d.epilogue)) v += x[2].at(static_cast<size_t>(i));
          if (cuda::HasRelu(d.epilogue)) v = v > 0 ? v : 0;
          if (cuda::HasAux(d.epilogue)) {
            EXPECT_TRUE(aux) << "the epilogue needs its aux matrix";
          }
          if (cuda::HasGelu(d.epilogue)) {
            if (aux && cuda::HasAux(d.epilogue)) aux->at(at) = v;
            v = GeluTanh(v);
          }
          if (cuda::HasDGelu(d.epilogue) && aux) v *= GeluTanhDerivative(aux->at(at));
          if (d.epilogue == cuda::GemmEpilogue::kDGeluBgrad && bias_grad) {
            bias_grad->at(static_cast<size_t>(i)) += v;
          }
          y.at(at) = v;
        }
      }
    }
  }
  return y;
}

// A CPU model of the strided-copy kernel (runtime/cuda/copy_kernels.cu computes the same index
// map on the device), on elem_bytes-byte elements.
inline void RunCopyModel(const cuda::StridedCopy& c, const uint8_t* in, uint8_t* out) {
  std::vector<int64_t> idx(static_cast<size_t>(c.rank), 0);
  for (int64_t t = 0, n = c.elements(); t < n; ++t) {
    int64_t src = c.in_offset, dst = c.out_offset;
    for (int d = 0; d < c.rank; ++d) {
      src += idx[static_cast<size_t>(d)] * c.in_strides[static_cast<size_t>(d)];
      dst += idx[static_cast<size_t>(d)] * c.out_strides[static_cast<size_t>(d)];
    }
    std::memcpy(out + dst * c.elem_bytes, in + src * c.elem_bytes,
                static_cast<size_t>(c.elem_bytes));
    for (int d = c.rank; d-- > 0;) {
      if (++idx[static_cast<size_t>(d)] < c.dims[static_cast<size_t>(d)]) break;
      idx[static_cast<size_t>(d)] = 0;
    }
  }
}

}  // namespace ampc::cuda_test
