// The emitter behind EmitMlir (codegen/node_kernels.h), internal to codegen/: the shared helpers
// (operand loads and stores, f16/bf16 rounding, loops, SumOf-ordered sums) and one method per
// template. The row kernels, GatherGrad and the dispatch are in node_kernels_mlir.cc; the
// optimizer updates (single and multi-tensor) and the loss-scaling ops in
// node_kernels_update_mlir.cc.
#pragma once

#include <fmt/format.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "codegen/fused_kernel.h"
#include "codegen/mlir_text.h"

namespace ampc::node_kernels::detail {

using mlir_text::BodyWriter;
using mlir_text::MemrefType;

class Emitter {
 public:
  Emitter(const FusedKernel& k, std::string* body) : k_(k), op_(*k.node), w_(body) {}

  std::string InType(int arg) const {
    return MemrefType(k_.inputs[arg].elements, k_.inputs[arg].dtype);
  }
  std::string OutType(int j) const { return MemrefType(op_.outs[j].elements, op_.outs[j].dtype); }
  // Node input i at index `ix` (its argument must exist).
  std::string Load(int i, const std::string& ix) {
    const int a = operands()[i];
    return w_.Line(fmt::format("memref.load %in{}[{}] : {}", a, ix, InType(a)));
  }
  // Stores `v` as node output i, when the group stores that output.
  void Store(int i, const std::string& v, const std::string& ix) {
    if (!Stored(i)) return;
    if (auto it = store_into_.find(i); it != store_into_.end()) {  // InPlaceOrNot's first copy
      const int a = operands()[it->second];
      w_.Raw(fmt::format("memref.store {}, %in{}[{}] : {}", v, a, ix, InType(a)));
      return;
    }
    const int j = results()[i];
    w_.Raw(fmt::format("memref.store {}, %out{}[{}] : {}", v, j, ix, OutType(j)));
  }
  bool Has(int i) const { return i < static_cast<int>(operands().size()) && operands()[i] >= 0; }
  double Attr(const char* name) const { return op_.attrs.at(name); }
  std::string Const(const std::string& v, const char* type) {
    return w_.Line(fmt::format("arith.constant {} : {}", v, type));
  }
  std::string Un(const char* op, const std::string& a, const char* type) {
    return w_.Line(fmt::format("{} {} : {}", op, a, type));
  }
  std::string Conv(const char* op, const std::string& a, const char* from, const char* to) {
    return w_.Line(fmt::format("{} {} : {} to {}", op, a, from, to));
  }
  std::string Cmp(const char* kind, const char* pred, const std::string& a, const std::string& b,
                  const char* type) {
    return w_.Line(fmt::format("{} {}, {}, {} : {}", kind, pred, a, b, type));
  }
  // The bool at node input i as i1 (true when absent).
  std::string Flag(int i) {
    if (!Has(i)) return w_.Line("arith.constant true");
    return Cmp("arith.cmpi", "ne", Load(i, w_.Index(0)), Const("0", "i8"), "i8");
  }

  DType InDType(int i) const { return k_.inputs[operands()[i]].dtype; }
  // Node input i at `ix` as f32 (f16/bf16 widened).
  std::string LoadF32(int i, const std::string& ix) {
    const std::string v = Load(i, ix);
    const DType t = InDType(i);
    return t == DType::kFloat32 ? v : t == DType::kFloat16 ? w_.HalfToF32(v) : w_.BF16ToF32(v);
  }
  // Stores the f32 `f` as node output i, rounded to its dtype.
  void StoreF32(int i, const std::string& f, const std::string& ix) {
    if (!Stored(i)) return;
    const int j = results()[i];
    const DType t = op_.outs[j].dtype;
    Store(i,
          t == DType::kFloat32   ? f
          : t == DType::kFloat16 ? w_.F32ToHalf(f)
                                 : w_.F32ToBF16(f),
          ix);
  }
  bool Stored(int i) const { return i < static_cast<int>(results().size()) && results()[i] >= 0; }
  std::string Idx(const std::string& a, const char* op, int64_t b) {
    return w_.Bin(op, a, w_.Index(b), "index");
  }
  std::string Add(const std::string& a, const std::string& b) {
    return w_.Bin("arith.addi", a, b, "index");
  }
  // Elements of the node's main operand after `axis` (the per-op kernels' `inner`).
  int64_t InnerOf(int64_t axis) const {
    int64_t inner = 1;
    for (size_t a = axis + 1; a < op_.shape.size(); ++a) inner *= op_.shape[a];
    return inner;
  }

  // `iv` from `from` to `to` (step 1) carrying one value of `type` per entry of `init`:
  // next(j, carried_j) writes the body and gives value j's next (called in order j = 0, 1, ...);
  // returns the loop's results.
  std::vector<std::string> ForCarrying(
      const std::string& iv, int64_t from, int64_t to, const std::vector<std::string>& init,
      const char* type, const std::function<std::string(int, const std::string&)>& next) {
    const std::string res = w_.Fresh();
    const int n = static_cast<int>(init.size());
    std::vector<std::string> carried(n);
    std::string args, types, yields;
    for (int j = 0; j < n; ++j) {
      carried[j] = w_.Fresh();
      args += fmt::format("{}{} = {}", j ? ", " : "", carried[j], init[j]);
      types += fmt::format("{}{}", j ? ", " : "", type);
    }
    w_.Raw(fmt::format("{}:{} = scf.for {} = {} to {} step {} iter_args({}) -> ({}) {{", res, n, iv,
                       w_.Index(from), w_.Index(to), w_.Index(1), args, types));
    for (int j = 0; j < n; ++j) yields += (j ? ", " : "") + next(j, carried[j]);
    w_.Raw(fmt::format("scf.yield {} : {}", yields, types));
    w_.Raw("}");
    std::vector<std::string> out(n);
    for (int j = 0; j < n; ++j) out[j] = fmt::format("{}#{}", res, j);
    return out;
  }

  // runtime/cpu/sums.h's SumOf order: term(j) for j in [0, n) into 8 double partial sums (j mod
  // 8), each in increasing j, combined as ((0+1)+(2+3))+((4+5)+(6+7)).
  std::string Sum8(int64_t n, const std::function<std::string(const std::string&)>& term) {
    const std::string zero = w_.F64(0.0);
    std::vector<std::string> acc(8, zero);
    const int64_t blocks = n / 8;
    if (blocks > 0) {
      std::string base;
      acc = ForCarrying("%s8", 0, blocks, acc, "f64", [&](int j, const std::string& carried) {
        if (j == 0) base = Idx("%s8", "arith.muli", 8);
        const std::string t = term(j ? Idx(base, "arith.addi", j) : base);
        return w_.Bin("arith.addf", carried, t, "f64");
      });
    }
    for (int64_t j = 0; j < n % 8; ++j) {
      acc[j] = w_.Bin("arith.addf", acc[j], term(w_.Index(blocks * 8 + j)), "f64");
    }
    auto add = [&](const std::string& a, const std::string& b) {
      return w_.Bin("arith.addf", a, b, "f64");
    };
    return add(add(add(acc[0], acc[1]), add(acc[2], acc[3])),
               add(add(acc[4], acc[5]), add(acc[6], acc[7])));
  }

  // Row kernels and GatherGrad (node_kernels_mlir.cc).

  // Where a row kernel keeps the exps of one row: a memref of f32, indexed by the row element's
  // position (an f32 output of x's shape) or by k (a scratch row of C floats).
  struct Scratch {
    std::string memref, type;
    bool by_position = false;
  };
  static constexpr int64_t kScratchRow = 1 << 16;  // floats (256 KiB) in CrossEntropy's stack row

  // kernels_norm.cc's LayerNormImpl for row %i: mean and variance in double (Sum8), then f32.
  void LayerNorm();
  // kernels_group_rms_norm.cc's RMSNormImpl for row %i: the mean square in double (Sum8 of
  // (x - 0.0)^2), 1 / sqrt(mean + eps) in double, then f32.
  void RmsNorm();
  // kernels_grad.cc's GatherGradImpl for one [outer, inner] position (unit %i): its column of
  // dData zeroed, then dY's rows added in index order (each element's sum in the per-op order).
  void GatherGrad();
  // Node output i as the scratch, when it is stored as f32 with the input's element indexing.
  std::optional<Scratch> OutScratch(int i) const;
  // The max and the f32 sum of exp(x - max) over C elements from `base` with `stride` (the
  // per-op SoftmaxSlab's order for one [outer, inner] position); returns {max, sum}. With a
  // scratch, each exp(x - max) is computed once into it by a loop that carries no value (LLVM
  // vectorises it) and summed from there in element order; the caller may read the exps back
  // (Softmax) or overwrite them. Without one the exps are computed inside the summing loop
  // (scalar, as the loop carries the sum).
  std::pair<std::string, std::string> MaxAndSum(const std::string& base, int64_t stride, int64_t c,
                                                const std::optional<Scratch>& row);
  // The scratch at index `ix` (the element's position, or k).
  std::string LoadScratch(const Scratch& r, const std::string& ix);
  // Softmax / LogSoftmax of R contiguous rows (unit %i: rows %i * R + r, inner == 1, the f32
  // output as the scratch): each row's values computed in MaxAndSum's and Softmax's order, the
  // R rows interleaved in every loop so that their max and sum chains (one select or add per
  // element, in element order) overlap instead of running one after another.
  void SoftmaxRows(bool log, int64_t c, int64_t rows);
  // Softmax / LogSoftmax of unit %i: the C elements of one [outer, inner] position (or R
  // contiguous rows, node_kernels.cc's choice: SoftmaxRows).
  void Softmax(bool log);
  // kernels_norm.cc's LossImpl with softmax, as one unit: per (n, d) in order the log-softmax
  // over C (stored as log_prob when it is), the loss term -w[label] * logp[label], and the sums
  // of the terms and of the weights in double.
  void CrossEntropy();

  // Optimizer updates and loss scaling (node_kernels_update_mlir.cc).

  // Emits `body` twice under one scf.if: first with node output o stored through node input i's
  // memref for each (o, i) of `pairs`, taken when every such pair is the same memory (the
  // optimizer's in-place update of its parameter and moments); then as written, for buffers
  // that differ. Both compute the same values. LLVM vectorises the first without a run-time
  // overlap check between input and output, the check that exact in-place aliasing fails,
  // sending the second to its scalar loop (measured: AdamW over 200k parameters 430 -> 70 us).
  void InPlaceOrNot(const std::vector<std::pair<int, int>>& pairs,
                    const std::function<void()>& body);
  // The loop over this unit's block of the optimizer's elements: %e in [i * unit, (i+1) * unit);
  // in a multi-tensor kernel, of the current member's, i counted from its first unit and the
  // last block cut at its elements.
  void BeginBlock();
  void Adam();
  void Sgd();
  // An element with all exponent bits set (inf or NaN).
  std::string NonFinite(DType t, const std::string& x);
  // The GPU's grain: unit %i checks element %i of every input that has one, and stores false
  // if any is not finite; the executor fills the flag with true before the call.
  void AllFiniteGpu();
  // One unit: any element of any input with all exponent bits set (inf or NaN) makes it false.
  void AllFinite();
  // GradScaler's update (the per-op UpdateLossScaleKernel) on scalars: every input is read
  // before any output is written (the outputs may be the inputs' buffers).
  void UpdateLossScale();

 private:
  void EndBlock() { w_.Raw("}"); }

  // The node's operands and results: the current member's in a multi-tensor kernel.
  const std::vector<int>& operands() const { return member_ ? member_->operands : op_.operands; }
  const std::vector<int>& results() const { return member_ ? member_->results : op_.results; }

  // body() for each member of a multi-tensor optimizer (once for a kernel of one node), with
  // that member's operands and results, under a binary search of the unit %i over the members'
  // first units (constants): log2(members) compares per unit.
  void ForEachMember(const std::function<void()>& body);

  const FusedKernel& k_;
  const FusedKernel::NodeOp& op_;
  const FusedKernel::NodeOp::Member* member_ = nullptr;
  int64_t member_first_unit_ = 0;
  BodyWriter w_;
  std::map<int, int> store_into_;  // node output -> node input whose memref it is stored into
};

}  // namespace ampc::node_kernels::detail
