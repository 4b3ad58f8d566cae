// How the CUDA executor runs each step of a plan, decided without a GPU (pure functions of the
// plan, tested in tests/unit/cuda_plan_test.cc):
//  - kHost: a value the step computes from constants and shapes only (Shape, Size, the index
//    arithmetic torch's exporter writes around Reshape, Range, ConstantOfShape, a causal mask).
//    The executor computes it once on the host with the CPU kernel and copies it into its arena
//    buffer at the step's place in every call (the arena slot is shared by liveness).
//  - kAlias: a step whose output holds its first input's bytes (Reshape, Flatten, Squeeze,
//    Unsqueeze, Identity): one device-to-device copy.
//  - kGemm: MatMul, com.ampc::MatMul, Gemm through cuBLASLt (gemm_layout.h).
//  - kKernel: a generated kernel of the plan's table (launch.h).
//  - kStridedCopy: Transpose, Split, Concat, Expand, Slice as strided copies (StridedCopy below).
//  - kGather: Gather (an embedding lookup) by its index tensor.
//  - kConv: Conv and com.ampc::ConvGrad through im2col and cuBLASLt (window_steps.h).
//  - kPool: MaxPool (without Indices), AveragePool, GlobalAveragePool, com.ampc::MaxPoolGrad and
//    com.ampc::AveragePoolGrad.
//  - kPad: Pad whose pads, constant value and axes are host values.
//  - kClip: Clip with scalar bounds of the input's float type.
//  - kFolded: a generated kernel whose work the GEMM before it does (FoldGemmEpilogues): nothing.
// Anything else is an error naming the step, raised when the executor is created.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "codegen/plan.pb.h"
#include "ir/status.h"
#include "runtime/cuda/copy_desc.h"
#include "runtime/cuda/gemm_layout.h"

namespace ampc::cuda {

enum class StepKind {
  kHost,
  kAlias,
  kGemm,
  kKernel,
  kStridedCopy,
  kGather,
  kConv,
  kPool,
  kPad,
  kClip,
  kFolded
};

const char* StepKindName(StepKind k);

// A step's attribute by name, or null.
const plan::Attr* FindAttr(const plan::Step& s, const std::string& name);

// One kind per step of `p`, or the first step the CUDA runtime cannot run.
StatusOr<std::vector<StepKind>> ClassifySteps(const plan::PlanProto& p);

// A GEMM step's cuBLASLt description (gemm_layout.h) from its buffers and attributes.
StatusOr<GemmDesc> DescribeGemmStep(const plan::PlanProto& p, const plan::Step& s);

// The bytes of buffer `id` on the host (a constant's data, a kHost step's value), or null.
using HostValueFn = std::function<const uint8_t*(int id)>;

// What a GEMM step takes over from a generated kernel that reads its output (FoldGemmEpilogues).
struct GemmFold {
  GemmEpilogue activation = GemmEpilogue::kDefault;  // kRelu, kGelu, kGeluAux, kDGelu(Bgrad)
  int writes = -1;     // the buffer the GEMM writes instead of its own output
  int aux = -1;        // GELU_AUX: where the pre-activation goes; DGELU: where it is read
  int bias_grad = -1;  // kDGeluBgrad: the bias gradient's buffer
  bool folded() const { return writes >= 0; }
};

// cuBLASLt epilogues (runtime/cuda/gemm_fold.cc) that replace a generated kernel step reading a
// kGemm step's output (no C matrix); the kernel step becomes kFolded. Its fusion group must be
// exactly:
//  - one Relu of the GEMM's output X, the step just after it, which nothing else reads (no
//    other step, plan output or state update: the backward's ReluGrad reads the Relu's output):
//    RELU(_BIAS), the GEMM writing Y = relu(X) (rounded once, as the kernel rounds relu of the
//    rounded product: relu commutes with rounding);
//  - one Gelu of X, just after it, with approximate="tanh" (cuBLASLt's GELU is the tanh form; the
//    erf form stays a kernel): GELU(_BIAS) writing Y when nothing else reads X, else
//    GELU_AUX(_BIAS) writing Y and X as the aux matrix (the backward's GeluGrad reads X);
//  - one com.ampc::GeluGrad(dY, X) of tanh form with dY the GEMM's output, read by nothing else
//    (steps may run in between, as dW's GEMM runs between dA's and GeluGrad):
//    DGELU, the GEMM writing dX = product * GELU'(X) with X as the aux matrix; with a ReduceSum
//    of dX over every axis but the last as the group's second node (the bias gradient that
//    autodiff emits right after it), DGELU_BGRAD writing that sum too. The axes are read through
//    `host_value` (without it, no BGRAD fold).
// GELU's folds change the rounding (cuBLASLt applies GELU to the fp32 accumulator, the kernel to
// the rounded product) and need one call of one matrix with a leading dimension a multiple of 8
// (cuBLASLt's aux matrix). No written buffer may share arena bytes with a GEMM input (the planner
// may reuse their bytes, as they die at the GEMM), the aux matrix, or a buffer a step in between
// reads or writes (codegen/lower.cc starts such outputs' live ranges at the GEMM for CUDA
// targets, so that the planner keeps them apart). Returns one GemmFold
// per step (folded() only at GEMM steps).
std::vector<GemmFold> FoldGemmEpilogues(const plan::PlanProto& p, std::vector<StepKind>* kinds,
                                        const HostValueFn& host_value = nullptr);

// A GEMM step's description with its fold's epilogue (combined with the step's own bias).
GemmDesc Folded(GemmDesc d, const GemmFold& f);

// The arena bytes the CUDA executor allocates: the plan's arena_kernel_bytes (without the
// intermediates of fusion groups' per-op fallbacks, which the CUDA runtime never runs), once
// every arena buffer the steps, inputs, outputs, state updates and metrics name is checked to lie
// inside it; the whole arena when the plan does not record it.
StatusOr<int64_t> KernelArenaBytes(const plan::PlanProto& p);

// The ints of host value `id` (i64 or i32), for a step's index operands read on the host;
// errors name `what` (Unimplemented where the value is not on the host).
StatusOr<std::vector<int64_t>> HostInts(const plan::PlanProto& p, int id,
                                        const HostValueFn& host_value, const std::string& what);

// The copies a Transpose / Split / Concat / Expand / Slice step is (Split: one per output;
// Concat: one per input), from the buffers' shapes and the step's attributes; a Slice's starts,
// ends, axes and steps are read through `host_value` (ClassifySteps checks they are host values).
StatusOr<std::vector<StridedCopy>> DescribeStridedCopies(const plan::PlanProto& p,
                                                         const plan::Step& s,
                                                         const HostValueFn& host_value = nullptr);

// The scratch bytes the plan's kConv steps need at most (they run one at a time).
StatusOr<int64_t> ScratchBytes(const plan::PlanProto& p, const std::vector<StepKind>& kinds);

StatusOr<GatherDesc> DescribeGather(const plan::PlanProto& p, const plan::Step& s);

}  // namespace ampc::cuda
