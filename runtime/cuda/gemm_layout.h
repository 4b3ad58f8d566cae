// How the CUDA executor runs a plan's MatMul, com.ampc::MatMul and Gemm steps with cuBLASLt: a pure
// function of the step's operand shapes, dtypes and attributes, tested without a GPU by running
// the description through a CPU model of cuBLASLt's column-major semantics
// (tests/unit/cuda_plan_test.cc).
//
// Plans store row-major tensors; cuBLASLt reads column-major matrices. A row-major [R, C] matrix
// is the column-major [C, R] matrix with the same bytes, so Y = op(A) op(B) (row-major, [M, N])
// is computed as Y^T = op(B)^T op(A)^T: cuBLASLt's A is the step's B, its B is the step's A, and
// its m, n are the step's N, M. Batches (MatMul's leading axes, broadcast as numpy does) become
// one strided-batched call where strides describe them, a batch folded into the rows where the
// weight is shared (x[b, s, k] @ w[k, n] is one [b*s, k] x [k, n] GEMM), and otherwise one call
// per output matrix. Gemm's C becomes the bias epilogue when it is a row vector added with
// beta = 1, and cuBLASLt's C matrix when it has Y's shape.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/attribute.h"
#include "ir/dtype.h"
#include "ir/status.h"

namespace ampc::cuda {

// A stored matrix as cuBLASLt sees it (column-major), in elements.
struct MatrixLayout {
  int64_t rows = 0, cols = 0, ld = 0;
  int64_t batch_stride = 0;  // between the matrices of one strided-batched call
};

// Element offsets of one call's matrices from their operands' base addresses.
struct GemmCallOffsets {
  int64_t a = 0, b = 0, d = 0;
};

// The epilogues step_plan.h's FoldGemmEpilogues gives a GEMM, after the product (and the bias):
//   kRelu / kReluBias: max(., 0);
//   kGelu / kGeluBias: GELU's tanh form (cuBLASLt's only GELU);
//   kGeluAux / kGeluAuxBias: the same, and the pre-activation into an aux matrix laid out as D;
//   kDGelu / kDGeluBgrad: the product times GELU'(aux), aux the forward's pre-activation laid out
//   as D (and the result's sums over D's columns, the bias gradient, to the bias pointer).
enum class GemmEpilogue {
  kDefault,
  kBias,
  kRelu,
  kReluBias,
  kGelu,
  kGeluBias,
  kGeluAux,
  kGeluAuxBias,
  kDGelu,
  kDGeluBgrad
};
// Reads step input 2 as the bias.
inline bool HasBias(GemmEpilogue e) {
  return e == GemmEpilogue::kBias || e == GemmEpilogue::kReluBias || e == GemmEpilogue::kGeluBias ||
         e == GemmEpilogue::kGeluAuxBias;
}
inline bool HasRelu(GemmEpilogue e) {
  return e == GemmEpilogue::kRelu || e == GemmEpilogue::kReluBias;
}
inline bool HasGelu(GemmEpilogue e) {
  return e == GemmEpilogue::kGelu || e == GemmEpilogue::kGeluBias || e == GemmEpilogue::kGeluAux ||
         e == GemmEpilogue::kGeluAuxBias;
}
inline bool HasDGelu(GemmEpilogue e) {
  return e == GemmEpilogue::kDGelu || e == GemmEpilogue::kDGeluBgrad;
}
// Writes (GELU_AUX) or reads (DGELU) the aux matrix.
inline bool HasAux(GemmEpilogue e) {
  return e == GemmEpilogue::kGeluAux || e == GemmEpilogue::kGeluAuxBias || HasDGelu(e);
}
inline GemmEpilogue WithRelu(GemmEpilogue e) {
  return HasBias(e) ? GemmEpilogue::kReluBias : GemmEpilogue::kRelu;
}
inline GemmEpilogue WithGelu(GemmEpilogue e, bool aux) {
  if (HasBias(e)) return aux ? GemmEpilogue::kGeluAuxBias : GemmEpilogue::kGeluBias;
  return aux ? GemmEpilogue::kGeluAux : GemmEpilogue::kGelu;
}

struct GemmDesc {
  // cuBLASLt's A and B are the step's inputs a_input and b_input (1 and 0: swapped).
  int a_input = 1, b_input = 0;
  bool trans_a = false, trans_b = false;  // cuBLASLt's CUBLAS_OP_T on its A / B
  int64_t m = 0, n = 0, k = 0;
  MatrixLayout a, b, d;  // C, when used, has D's layout
  DType a_type = DType::kFloat32, b_type = DType::kFloat32, d_type = DType::kFloat32;
  float alpha = 1, beta = 0;
  bool c_matrix = false;  // step input 2 is cuBLASLt's C (Y's shape), scaled by beta
  GemmEpilogue epilogue = GemmEpilogue::kDefault;  // kBias: step input 2 is the bias (m values)
  DType c_type = DType::kFloat32;                  // of the C matrix or the bias
  int64_t batch = 1;                               // matrices per call
  std::vector<GemmCallOffsets> calls;              // one entry per cuBLASLt call
  // The alignment in bytes (a power of two, at most 256) that every matrix of A, B and D (and C)
  // has in every call and batch, given the operands' base alignment: cuBLASLt's heuristic
  // assumes 256 unless told (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*_BYTES), and an algorithm
  // picked for 256 may not run on less.
  uint32_t a_align = 256, b_align = 256, d_align = 256;
};

struct GemmOperand {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> dims;
};

// `op`: "MatMul" (domain "" or "com.ampc") or "Gemm". `inputs`: the step's inputs (an omitted
// optional input has no dims and is passed as {} with present = false by giving `inputs` only
// the present ones); `output`: the step's output. Errors name the unsupported case.
// `base_alignment`: what every operand's address is a multiple of (a plan's buffers: 64).
StatusOr<GemmDesc> DescribeGemm(const std::string& domain, const std::string& op,
                                const AttributeMap& attrs, const std::vector<GemmOperand>& inputs,
                                const GemmOperand& output, int64_t base_alignment = 64);

// The largest power of two (at most 256) dividing `base` and every byte offset in `offsets`: a
// GemmDesc's a_align / b_align / d_align.
uint32_t GemmAlignment(int64_t base, const std::vector<int64_t>& offsets);

// Whether cuBLASLt computes this combination of types with fp32 accumulation
// (CUBLAS_COMPUTE_32F): A and B both f32, f16 or bf16; D f32 or A's type.
bool CublasLtSupportsTypes(DType ab, DType d);

}  // namespace ampc::cuda
