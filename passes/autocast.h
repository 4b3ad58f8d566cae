// Autocast: mixed precision as three passes over a training (or inference) graph, run in order
// by AutocastPass (passes/autocast.cc):
//   1. paint-precision (passes/paint_precision.h): every node gets a precision, half (f16 or bf16)
//      or fp32, and the reason, as annotations; nothing else changes;
//   2. insert-casts (passes/insert_casts.h): a Cast wherever a node reads a value of another
//      floating type than its paint, one per (value, type), shared by every consumer;
//   3. fold-casts (passes/fold_casts.h): Cast(Cast(x)) whose first cast is exact is folded, and
//      casts left without users are removed.
// The lists (allow / deny / infer / clear, TensorFlow's vocabulary) default to PyTorch's CUDA
// autocast policy, read from the op registry's autocast slots (ir/ops/autocast_classes.cc), and
// are edited by flags or --amp-config. The target backend is consulted through
// AutocastOptions::supports: an op it cannot run in the half type stays fp32.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>

#include "ir/graph.h"
#include "ir/status.h"
#include "passes/pass.h"

namespace ampc {

struct AmpLists {
  std::set<std::string> allow, deny, infer, clear;  // op types (any domain)
};

// The default lists: every registered op's autocast class (PyTorch's CUDA autocast policy).
AmpLists DefaultAmpLists();

// Edits to the default lists: add[list] and remove[list] hold op names; an op moved into a list
// leaves the others. Unknown op names and unknown list names are errors.
struct AmpListEdits {
  std::map<std::string, std::set<std::string>> add, remove;  // "allow" | "deny" | "infer" | "clear"
};
StatusOr<AmpLists> ApplyListEdits(AmpLists lists, const AmpListEdits& edits);
// Reads {"allow": [...], "deny": [...], "infer": [...], "clear": [...],
//        "remove": {"allow": [...], ...}, "fp32_nodes": "REGEX"} (every key optional).
Status ReadAmpConfig(const std::string& path, AmpListEdits* edits, std::string* fp32_nodes);

struct AutocastOptions {
  DType half = DType::kBFloat16;  // f16 or bf16
  AmpLists lists = DefaultAmpLists();
  std::string fp32_nodes;  // regex over node names
  // Values of symbolic dimensions for the activation-bytes estimate (others count as 1).
  std::map<std::string, int64_t> dims;
  // Whether the target backend runs node's op in dtype (BackendSupport, injected by the
  // compiler); empty: every op in every type.
  std::function<bool(const Node& node, DType dtype)> supports;
  // Why half precision would not pay for an allow-listed node on the target (a GEMM or
  // convolution too small or too thin for the half kernels to beat fp32), or "" when it would.
  // A reason keeps the node fp32 and acts like the deny list. Empty function: always pays.
  std::function<std::string(const Node& node)> half_cost;
};

struct AutocastStats {
  int64_t half_nodes = 0, fp32_nodes = 0, casts_inserted = 0, casts_folded = 0;
  // Bytes of the floating values forward nodes produce (what backward keeps alive), symbolic
  // dimensions taken from AutocastOptions::dims (1 when not given): before painting (all fp32)
  // and after (casts included).
  int64_t activation_bytes_fp32 = 0, activation_bytes_mixed = 0;
};

// paint-precision, insert-casts and fold-casts, with statistics for inspection.
class AutocastPass : public Pass {
 public:
  explicit AutocastPass(AutocastOptions o) : opts_(std::move(o)) {}
  std::string name() const override { return "autocast"; }
  StatusOr<bool> Run(Graph& g) override;
  const AutocastStats& stats() const { return stats_; }

 private:
  AutocastOptions opts_;
  AutocastStats stats_;
};

}  // namespace ampc
