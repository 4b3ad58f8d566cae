// How the CUDA executor runs Conv, com.ampc::ConvGrad, the pools and their gradients, Pad and
// Clip (window_desc.h, window_kernels.cu): pure functions of a plan's step, tested without a GPU
// in tests/unit/cuda_window_test.cc by running the descriptions through window_desc.h's index
// maps and a CPU model of cuBLASLt against the CPU runtime's kernels.
#pragma once

#include <cstdint>
#include <vector>

#include "codegen/plan.pb.h"
#include "ir/dtype.h"
#include "ir/status.h"
#include "runtime/cuda/copy_desc.h"
#include "runtime/cuda/gemm_layout.h"
#include "runtime/cuda/window_desc.h"

namespace ampc::cuda {

// The matrices of a convolution's GEMMs: the step's W (input 1 of Conv, 2 of ConvGrad) and dW
// (output 1 of ConvGrad), and the scratch matrices of window_desc.h's ConvDesc.
enum class ConvMatrix { kW, kDw, kCol, kYt, kDyt, kDcol };

struct ConvGemm {
  GemmDesc desc;  // one call; a_input / b_input are unused (the matrices below)
  ConvMatrix a, b, d;
};

// Conv: im2col into col; per group yt = col W^T (f32); Y = yt + bias in Y's layout and dtype.
// ConvGrad (dY, X, W -> dX, dW, dB, each output optional): dY copied to dyt (dy_to_dyt); per
// group dW = (dyt^T col) and dcol = dyt W (f32), then dX by col2im; dB from dY directly.
struct ConvStep {
  ConvDesc conv;
  bool grad = false;
  FloatType type = FloatType::kF32;  // every operand's (the CPU kernels require one dtype)
  bool bias = false;                 // Conv: input 2 present
  bool dx = false, dw = false, db = false;
  std::vector<ConvGemm> gemms;
  StridedCopy dy_to_dyt;
  // Scratch byte offsets (each 256-aligned) and the total.
  int64_t col_at = 0, yt_at = 0, dyt_at = 0, dcol_at = 0, scratch_bytes = 0;
};

StatusOr<ConvStep> DescribeConv(const plan::PlanProto& p, const plan::Step& s);

// MaxPool (without Indices), AveragePool, GlobalAveragePool, com.ampc::MaxPoolGrad (dY, X) and
// com.ampc::AveragePoolGrad (dY, x_shape).
struct PoolStep {
  PoolDesc pool;
  bool grad = false;
  FloatType type = FloatType::kF32;
};

StatusOr<PoolStep> DescribePool(const plan::PlanProto& p, const plan::Step& s);

// Pad with its pads (and axes, when given) read on the host, and the constant value's bytes.
StatusOr<PadDesc> DescribePad(const plan::PlanProto& p, const plan::Step& s,
                              const std::vector<int64_t>& pads, const std::vector<int64_t>& axes);

StatusOr<FloatType> FloatTypeOf(DType t);

}  // namespace ampc::cuda
