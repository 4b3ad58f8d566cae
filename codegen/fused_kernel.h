// A fusion group as a kernel: the elementwise program of the group's nodes over one iteration
// space, and its MLIR form (a func.func over 1-D memrefs with one scf.parallel loop). This file
// needs no MLIR: the text it writes is compiled by codegen/mlir_compile (CPU shared object, CUDA
// PTX/cubin), and is what the kernel cache and the plan's content hash key on.
//
// Numerics are the per-op CPU kernels' (runtime/cpu/kernel.h), rounding point for rounding point:
// every f32/f16/bf16 value is computed in fp32 and rounded to its own dtype once (f16/bf16 by the
// integer round-to-nearest-even of ir/float16.h, emitted as integer arithmetic so that no CPU or
// GPU conversion instruction's NaN rule differs), then widened again where it is read. A half
// value read inside a group is widened in registers; only the group's outputs are stored. Math
// functions (exp, erf, tanh, log, pow) call the same libm functions as the per-op kernels on the
// CPU (libdevice on the GPU). Where and same-type Cast move storage bits, as the per-op kernels do.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ir/dtype.h"
#include "ir/graph.h"
#include "ir/status.h"

namespace ampc {

// The elementwise ops the generator emits, in the dtypes it emits them in (f32, f16, bf16 and
// bool values), and com.ampc ReluGrad and GeluGrad; a node it cannot emit is never fused.
// `allow_symbolic`: also with symbolic dimensions (inspection; kernels need static shapes).
bool IsFusibleElementwise(const Node& n, bool allow_symbolic = false);
// A ReduceSum / ReduceMean of an f32/f16/bf16 value over constant axes, which a group can end in.
bool IsFusibleReduction(const Node& n, bool allow_symbolic = false);

// The optimizer updates a multi-tensor kernel can take together (com.ampc SGD and Adam node
// kernels), and the text that must be equal for two of them to share one: op, attributes but the
// half copy's dtype, and the lr, step and apply inputs.
bool IsMultiTensorOptimizer(const Node& n);
std::string MultiTensorSignature(const Node& n);
// The buffers update n adds to a multi-tensor kernel of its signature (its own inputs and
// outputs), and those the kernel shares between its members (lr, step, apply flag).
std::pair<int, int> MultiTensorArgs(const Node& n);

// A node emitted as a kernel of its own, a fusion group of one (codegen/node_kernels.h): the row
// kernels LayerNormalization, RMSNormalization, Softmax, LogSoftmax and SoftmaxCrossEntropyLoss
// (f32/f16/bf16), the optimizer updates com.ampc SGD and Adam (f32 parameters), com.ampc AllFinite
// and UpdateLossScale, and the embedding gradient com.ampc GatherGrad (f32).
bool IsNodeKernel(const Node& n, bool allow_symbolic = false);

// The largest divisor of n (> 0) that is at most `most`: how many elements or columns a kernel
// unit covers when units must divide the range exactly.
inline int64_t LargestDivisorAtMost(int64_t n, int64_t most) {
  for (int64_t b = most < n ? most : n; b > 1; --b) {
    if (n % b == 0) return b;
  }
  return 1;
}

struct FusedKernel {
  struct Arg {
    DType dtype = DType::kUndefined;
    int64_t elements = 0;          // of the tensor (the memref's size)
    std::vector<int64_t> strides;  // per axis of `dims`, in elements; 0 = broadcast
  };
  struct Inst {
    std::string op;             // ONNX op type (default domain)
    std::vector<int> operands;  // value indices: inputs first, then instructions
    DType dtype = DType::kUndefined;
    float alpha = 0;    // LeakyRelu
    bool tanh = false;  // Gelu, GeluGrad: approximate="tanh"
  };
  // A group may end in one ReduceSum / ReduceMean of one of its values (or of an input), with the
  // elementwise nodes as its prologue: the kernel runs over the reduction's outputs, each summed
  // in double over its reduced elements in memory order (the per-op kernel's order), and the
  // prologue's values that leave the group are stored as they are computed.
  struct Reduction {
    std::string op;                   // ReduceSum | ReduceMean
    int value = -1;                   // the value reduced
    DType dtype = DType::kUndefined;  // of the result
    std::vector<int64_t> dims;        // the reduced value's shape, collapsed into runs of kept and
    std::vector<bool> reduced;        // reduced axes
    int64_t outputs = 0, count = 0;   // result elements; elements summed into each
    bool gpu_grain = false;           // FusedKernel::gpu_grain: one output per unit
    // [rows, columns] summed over the rows: columns per unit of the kernel's range (a divisor of
    // the columns, at most 64); summed over the columns: rows per unit (a divisor of the rows, at
    // most 8, whose sums the kernel interleaves); else 1.
    int64_t Block() const {
      if (gpu_grain || dims.size() != 2 || reduced[0] == reduced[1]) return 1;
      return reduced[0] ? LargestDivisorAtMost(dims[1], 64) : LargestDivisorAtMost(dims[0], 8);
    }
  };
  static constexpr int kReduced = -1;  // in `outputs`: the reduction's result

  // A node kernel (IsNodeKernel): `inputs` are its arguments in the group's order (strides
  // unused), `insts` and `outputs` are empty and `dims` is {elements of the range output}.
  struct NodeOp {
    std::string op;
    std::vector<int64_t> shape;           // of the node's main tensor operand
    std::map<std::string, double> attrs;  // the attributes the code depends on
    std::vector<int> operands;            // per node input: index into `inputs`, or -1
    std::vector<int> results;             // per node output: index into `outs`, or -1
    std::vector<Arg> outs;                // the output arguments
    int range_output = 0;                 // the output whose elements the range counts
    int64_t unit = 1;                     // elements of it per unit
    int64_t unit_work = 1;                // elements read per unit (the executor's grain)
    int64_t units = 0;                    // > 0: the range's units (LaunchRule.units)
    bool gpu = false;                     // the GPU's grain (ApplyGpuGrain)
    bool fill = false;                    // LaunchRule.fill_range_output with fill_byte
    uint32_t fill_byte = 0;
    struct Check {  // plan.proto's ArgCheck: input `arg`'s values in [min, max] or == except
      int arg = 0;
      int64_t min = 0, max = 0;
      bool has_except = false;
      int64_t except = 0;
    };
    std::vector<Check> checks;
    // A multi-tensor optimizer (several SGD or several Adam nodes with the same attributes, lr,
    // step and apply flag; fusion.h's optimizer groups): one entry per node, in the group's order,
    // each with its own operands and results (`operands`/`results` above are the first's). The
    // range is the members' units end to end (`units`), each member's elements in blocks of
    // `unit` (the last one short); a unit finds its member by a binary search over the blocks'
    // offsets, compiled in as constants. Empty for a kernel of one node.
    struct Member {
      std::vector<int> operands, results;
      int64_t elements = 0;
    };
    std::vector<Member> members;
    // Units of each member (ceil(elements / unit)), and of them all.
    int64_t MemberUnits(size_t m) const { return (members[m].elements + unit - 1) / unit; }
    int64_t AllMemberUnits() const {
      int64_t u = 0;
      for (size_t m = 0; m < members.size(); ++m) u += MemberUnits(m);
      return u;
    }
  };
  std::optional<NodeOp> node;

  std::vector<int64_t> dims;  // the iteration space, collapsed (row-major), rank >= 1
  int64_t elements = 0;
  std::vector<Arg> inputs;
  std::vector<Inst> insts;
  std::vector<int> outputs;  // value index stored to each output (contiguous, `elements` long)
  std::optional<Reduction> reduce;
  // The GPU's grain (ApplyGpuGrain): a unit of the range is one element (elementwise groups),
  // one reduction output, or one optimizer element, so that a CUDA kernel's threads each take
  // one and neighbouring threads touch neighbouring addresses. Off, a unit is a row or a block,
  // so that a CPU thread's inner loop vectorises.
  bool gpu_grain = false;

  DType ValueType(int v) const;
  // The kernel's range [begin, end) counts units of this many elements of its range output:
  // rows of the last axis (elementwise, rank >= 2), else elements.
  int64_t RowElements() const {
    return node                             ? node->unit
           : reduce                         ? reduce->Block()
           : dims.size() >= 2 && !gpu_grain ? dims.back()
                                            : 1;
  }
  // Arguments after the range: inputs, then outputs.
  int NumArgs() const {
    return static_cast<int>(inputs.size() + (node ? node->outs.size() : outputs.size()));
  }
  // The output whose element count the executor's range covers, in units of RowElements().
  int RangeOutput() const;
  // Elements read per unit: how the executor sizes its chunks.
  int64_t UnitWork() const;
  // Canonical text of everything the generated code depends on (ops, dtypes, shapes, strides).
  std::string Key() const;
};

// Sets the GPU's grain on `k` (FusedKernel::gpu_grain; optimizer node kernels: one element per
// unit). The arithmetic and its order per output element are unchanged.
void ApplyGpuGrain(FusedKernel& k);

// The program of `nodes` (in execution order; all with outputs of one static shape, except a
// reduction as the last node, whose input has that shape), reading
// `inputs` (values produced outside, each broadcastable to that shape) and storing `outputs`;
// or the node kernel of one node, or the multi-tensor kernel of optimizer nodes of one signature.
StatusOr<FusedKernel> BuildFusedKernel(const std::vector<const Node*>& nodes,
                                       const std::vector<const Value*>& inputs,
                                       const std::vector<const Value*>& outputs);

// `func.func @name(%begin: index, %end: index, inputs..., outputs...)` over memref<N x T> (f32,
// i16 for f16/bf16 bits, i8 for bool) computing units [begin, end) of RowElements() elements
// (a reduction: outputs) in one scf.parallel, with the C interface (`_mlir_ciface_<name>`).
std::string EmitKernelMlir(const FusedKernel& k, const std::string& name);

// A stable 64-bit hash (FNV-1a) of bytes, as 16 hex digits.
std::string HashHex(const std::string& bytes);

}  // namespace ampc
