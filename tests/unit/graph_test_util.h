// Helpers shared by the tests that work on graphs written as textual IR (docs/TEXT_IR.md): parse,
// look values and nodes up, count ops, run a pass and the verifier, read a tensor's raw bits; the
// fp16 training step that autocast's passes are tested on.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "frontend/training/training_graph.h"
#include "ir/graph.h"
#include "ir/op_registry.h"
#include "ir/tensor.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "passes/loss_scaling.h"
#include "passes/pass.h"

namespace ampc::testing {

// The graph `text` describes; a parse error fails the test and gives an empty graph.
inline std::unique_ptr<Graph> Parse(const std::string& text) {
  auto g = ParseGraph(text);
  EXPECT_TRUE(g.ok()) << g.status().message();
  return g.ok() ? std::move(*g) : std::make_unique<Graph>();
}

// Parse, then InferGraph; an inference error fails the test too.
inline std::unique_ptr<Graph> ParseAndInfer(const std::string& text) {
  auto g = ParseGraph(text);
  EXPECT_TRUE(g.ok()) << g.status().message();
  if (!g.ok()) return std::make_unique<Graph>();
  const Status s = InferGraph(**g);
  EXPECT_TRUE(s.ok()) << s.message();
  return std::move(*g);
}

// The value named `name`; none fails the test (and gives nullptr).
inline const Value* Get(const Graph& g, const std::string& name) {
  const Value* v = g.FindValue(name);
  EXPECT_NE(v, nullptr) << name;
  return v;
}

// The node named `name`, or nullptr (tests check that nodes are gone with it).
inline const Node* NodeNamed(const Graph& g, const std::string& name) {
  for (const Node* n : g.nodes()) {
    if (n->name() == name) return n;
  }
  return nullptr;
}

// The nodes of op type `op`, in graph order.
inline std::vector<const Node*> NodesOfType(const Graph& g, const std::string& op) {
  std::vector<const Node*> out;
  for (const Node* n : g.nodes()) {
    if (n->op_type() == op) out.push_back(n);
  }
  return out;
}

inline int CountNodes(const Graph& g, const std::string& op) {
  return static_cast<int>(NodesOfType(g, op).size());
}

// Runs `pass` on g and, when it succeeds, the verifier: a graph the pass leaves invalid is an
// error here too.
inline StatusOr<bool> RunVerified(Pass& pass, Graph& g) {
  auto r = pass.Run(g);
  if (r.ok()) {
    const Status v = Verify(g);
    if (!v.ok()) return v;
  }
  return r;
}

// A 16-bit (f16, bf16) tensor's elements as their bit patterns.
inline std::vector<uint16_t> Bits16(const Tensor& t) {
  std::vector<uint16_t> out(t.bytes().size() / 2);
  if (!out.empty()) std::memcpy(out.data(), t.bytes().data(), t.bytes().size());
  return out;
}

// A 32-bit (f32) tensor's elements as their bit patterns.
inline std::vector<uint32_t> Bits32(const Tensor& t) {
  std::vector<uint32_t> out(t.bytes().size() / 4);
  if (!out.empty()) std::memcpy(out.data(), t.bytes().data(), t.bytes().size());
  return out;
}

// The training step of y = Relu(x W^T + b) (x: [2, 3]; MSE, SGD, global-norm clipping at `clip`
// when > 0) with fp16 loss scaling, as the compiler hands it to autocast.
inline std::unique_ptr<Graph> Fp16TrainingStep(double clip = 0.0) {
  auto g = Parse(R"(graph "lin" opsets {"": 17} {
  input %x: f32[2,3]
  init %w: f32[2,3] = [0.5, -0.25, 0.125, 0.75, 0.375, -0.625]
  init %b: f32[2] = [0.125, -0.25]
  %y: f32[2,2] = Gemm(%x, %w, %b) {transB=1} name="fc"
  %z: f32[2,2] = Relu(%y) name="relu"
  output %z
}
)");
  TrainOptions o;
  o.loss.kind = "mse";
  o.optimizer.clip_grad_norm = clip;
  EXPECT_TRUE(BuildTrainingGraph(*g, o).ok());
  EXPECT_TRUE(LossScalingPass({}, DType::kFloat16).Run(*g).ok());
  return g;
}

}  // namespace ampc::testing
