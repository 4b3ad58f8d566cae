// Built only with the CUDA toolkit (the file is empty otherwise).
#ifdef AMPC_HAVE_CUDA
#include "runtime/cuda/gemm_call.h"

#include <iterator>
#include <string>
#include <utility>

#include "runtime/cuda/cuda_api.h"

namespace ampc::cuda {

GemmCall::~GemmCall() {
  if (op_) LtApi().MatmulDescDestroy(op_);
  for (cublasLtMatrixLayout_t l : {a_, b_, c_, d_}) {
    if (l) LtApi().MatrixLayoutDestroy(l);
  }
}

namespace {

// cuBLASLt's epilogue for each GemmEpilogue, in the enum's order.
constexpr cublasLtEpilogue_t kEpilogues[] = {
    CUBLASLT_EPILOGUE_DEFAULT,    CUBLASLT_EPILOGUE_BIAS,          CUBLASLT_EPILOGUE_RELU,
    CUBLASLT_EPILOGUE_RELU_BIAS,  CUBLASLT_EPILOGUE_GELU,          CUBLASLT_EPILOGUE_GELU_BIAS,
    CUBLASLT_EPILOGUE_GELU_AUX,   CUBLASLT_EPILOGUE_GELU_AUX_BIAS, CUBLASLT_EPILOGUE_DGELU,
    CUBLASLT_EPILOGUE_DGELU_BGRAD};
static_assert(std::size(kEpilogues) == static_cast<size_t>(GemmEpilogue::kDGeluBgrad) + 1);

}  // namespace

Status GemmCall::Bind(cublasLtHandle_t lt, const GemmDesc& desc, const void* A, const void* B,
                      const void* C, void* D, size_t workspace_bytes, const void* aux) {
  desc_ = desc;
  const GemmDesc& d = desc_;
  ASSIGN_OR_RETURN(const cudaDataType_t at, CudaType(d.a_type));
  ASSIGN_OR_RETURN(const cudaDataType_t bt, CudaType(d.b_type));
  ASSIGN_OR_RETURN(const cudaDataType_t dt, CudaType(d.d_type));
  AMPC_CUBLASLT(LtApi().MatmulDescCreate(&op_, CUBLAS_COMPUTE_32F, CUDA_R_32F), "descriptor");
  const cublasOperation_t ta = d.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = d.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  AMPC_CUBLASLT(LtApi().MatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta),
                "transa");
  AMPC_CUBLASLT(LtApi().MatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb),
                "transb");
  A_ = static_cast<const uint8_t*>(A);
  B_ = static_cast<const uint8_t*>(B);
  D_ = static_cast<uint8_t*>(D);
  C_ = d.c_matrix ? static_cast<const uint8_t*>(C) : D_;
  if (d.epilogue != GemmEpilogue::kDefault) {
    const cublasLtEpilogue_t epi = kEpilogues[static_cast<size_t>(d.epilogue)];
    AMPC_CUBLASLT(
        LtApi().MatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi),
        "epilogue");
  }
  if (HasBias(d.epilogue) || d.epilogue == GemmEpilogue::kDGeluBgrad) {
    ASSIGN_OR_RETURN(const cudaDataType_t ct, CudaType(d.c_type));
    AMPC_CUBLASLT(
        LtApi().MatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &C, sizeof C),
        "bias");
    AMPC_CUBLASLT(
        LtApi().MatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &ct, sizeof ct),
        "bias type");
  }
  if (HasAux(d.epilogue)) {
    if (!aux || d.calls.size() != 1 || d.batch != 1 || d.d.ld % 8 != 0) {
      return InvalidArgument(
          "a GELU_AUX / DGELU epilogue needs one call of one matrix whose "
          "leading dimension is a multiple of 8, and its aux matrix");
    }
    const int64_t ld = d.d.ld;
    AMPC_CUBLASLT(LtApi().MatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER,
                                                 &aux, sizeof aux),
                  "aux matrix");
    AMPC_CUBLASLT(
        LtApi().MatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld, sizeof ld),
        "aux leading dimension");
  }
  auto layout = [&](cublasLtMatrixLayout_t* l, cudaDataType_t t, const MatrixLayout& m) -> Status {
    AMPC_CUBLASLT(LtApi().MatrixLayoutCreate(l, t, static_cast<uint64_t>(m.rows),
                                             static_cast<uint64_t>(m.cols), m.ld),
                  "layout");
    if (d.batch > 1) {
      const int32_t count = static_cast<int32_t>(d.batch);
      const int64_t stride = m.batch_stride;
      AMPC_CUBLASLT(LtApi().MatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                                     sizeof count),
                    "batch");
      AMPC_CUBLASLT(LtApi().MatrixLayoutSetAttribute(
                        *l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride),
                    "stride");
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(layout(&a_, at, d.a));
  RETURN_IF_ERROR(layout(&b_, bt, d.b));
  RETURN_IF_ERROR(layout(&c_, dt, d.d));
  RETURN_IF_ERROR(layout(&d_, dt, d.d));
  cublasLtMatmulPreference_t pref = nullptr;
  AMPC_CUBLASLT(LtApi().MatmulPreferenceCreate(&pref), "preference");
  const uint64_t ws = workspace_bytes;
  LtApi().MatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                       sizeof ws);
  // The matrices' real alignment (the heuristic assumes 256 bytes otherwise); C is D's.
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, d.a_align},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, d.b_align},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, d.d_align},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, d.d_align}};
  for (const auto& [attr, bytes] : aligns) {
    LtApi().MatmulPreferenceSetAttribute(pref, attr, &bytes, sizeof bytes);
  }
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t h =
      LtApi().MatmulAlgoGetHeuristic(lt, op_, a_, b_, c_, d_, pref, 1, &result, &found);
  LtApi().MatmulPreferenceDestroy(pref);
  AMPC_CUBLASLT(h, "algorithm heuristic");
  if (found == 0) return Unimplemented("cuBLASLt has no algorithm for this GEMM");
  algo_ = result.algo;
  a_elem_ = static_cast<int64_t>(DTypeSize(d.a_type));
  b_elem_ = static_cast<int64_t>(DTypeSize(d.b_type));
  d_elem_ = static_cast<int64_t>(DTypeSize(d.d_type));
  return Status::Ok();
}

Status GemmCall::Enqueue(cublasLtHandle_t lt, void* workspace, size_t workspace_bytes,
                         cudaStream_t stream) const {
  const float alpha = desc_.alpha, beta = desc_.beta;
  for (const GemmCallOffsets& c : desc_.calls) {
    uint8_t* D = D_ + c.d * d_elem_;
    const uint8_t* C = desc_.c_matrix ? C_ + c.d * d_elem_ : D;
    AMPC_CUBLASLT(LtApi().Matmul(lt, op_, &alpha, A_ + c.a * a_elem_, a_, B_ + c.b * b_elem_, b_,
                                 &beta, C, c_, D, d_, &algo_, workspace, workspace_bytes, stream),
                  "matmul");
  }
  return Status::Ok();
}

}  // namespace ampc::cuda
#endif  // AMPC_HAVE_CUDA
