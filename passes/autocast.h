// The autocast pass: gives every floating-point node of a training (or inference) graph a
// precision — half (f16 or bf16) or fp32 — and inserts the Casts that makes true.
//
// Painting follows TensorFlow's auto-mixed-precision order over the forward nodes, with lists
// that default to PyTorch's CUDA autocast policy mapped to ONNX ops:
//   1. allow-list ops are half;
//   2. deny-list ops (and ops in no list) are fp32, and deny spreads forward through infer and
//      clear ops ("deny: after N");
//   3. infer/clear ops on a path between two half ops become half ("between half ops");
//   4. clear ops connected to half ops through clear ops become half ("clear: follows N");
//   5. infer ops whose producing inputs are all half become half ("infer: inputs half");
//   6. the rest is fp32.
// Backward nodes (annotated grad_of=N) take N's precision ("grad_of N") unless the allow or deny
// list names their own op, or it is a clear op, which follows its inputs (a bias gradient
// reduced in fp32 stays fp32 on its way to the optimizer); loss, clipping, loss-scaling and optimizer nodes (annotated role=...)
// are always fp32, so parameters, their gradients and optimizer state stay fp32 masters.
// Nodes matching --fp32-nodes are pinned ("user: --fp32-nodes"), and so are their backward nodes.
//
// Casts: a value is cast at most once per target type and shared by all its consumers (a weight
// is cast once per step); integer and bool values are never cast; Cast(Cast(x)) is folded only
// when the first cast is exact (f16 -> f32 -> f16 is the identity, f32 -> f16 -> f32 is not).
// Every node gets annotations precision=<f16|bf16|f32|-> and reason=<why>.
#pragma once

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

// PyTorch's CUDA autocast policy in ONNX op names.
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
};

struct AutocastStats {
  int64_t half_nodes = 0, fp32_nodes = 0, casts_inserted = 0, casts_folded = 0;
  // Bytes of the floating values forward nodes produce (what backward keeps alive), symbolic
  // dimensions taken from AutocastOptions::dims (1 when not given): before painting (all fp32)
  // and after (casts included).
  int64_t activation_bytes_fp32 = 0, activation_bytes_mixed = 0;
};

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
