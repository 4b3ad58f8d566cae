// Generated kernels on shapes and dtypes the fixture models do not reach: one node kernel, or
// one fusion group built from a parsed graph, against the per-op CPU kernels of its nodes run in
// order on the same random inputs (random bit patterns included); the outputs must be the same
// bits (NaN payloads excepted where arithmetic produced them). The fixtures' groups are
// generated_kernels_test.cc's.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "codegen/fused_kernel.h"
#include "codegen/fusion.h"
#include "codegen/kernel_compiler.h"
#include "codegen/mlir_compile.h"
#include "generated_kernels_util.h"
#include "ir/text.h"
#include "runtime/cpu/generated.h"
#include "runtime/cpu/thread_pool.h"

namespace ampc {
namespace {

using cpu::TensorView;
using gen_test::CacheDir;
using gen_test::Fill;
using gen_test::FillChecked;
using gen_test::SameElement;

// A group's generated kernel (built directly from parsed nodes) against the nodes' per-op kernels
// run in order, on random inputs: the shapes the fixtures do not reach.
void CompareGroupKernel(const std::vector<const Node*>& nodes, const std::vector<const Value*>& ins,
                        const std::vector<const Value*>& outs, uint64_t seed,
                        bool gpu_grain = false) {
  auto k = BuildFusedKernel(nodes, ins, outs);
  ASSERT_TRUE(k.ok()) << k.status().message();
  if (gpu_grain) ApplyGpuGrain(*k);
  KernelOptions o;
  o.cache_dir = CacheDir();
  auto pk = BuildKernel(*k, Target{"cpu", ""}, o, nullptr);
  ASSERT_TRUE(pk.ok()) << pk.status().message();
  auto gk = cpu::GeneratedKernel::Load(*pk);
  ASSERT_TRUE(gk.ok() && *gk) << "kernel does not load";
  std::mt19937_64 rng(seed);
  std::map<const Value*, std::vector<uint8_t>> gen_bytes, ref_bytes;
  std::map<const Value*, TensorView> gen_views, ref_views;
  auto view = [&](const Value* v, bool gen) -> TensorView* {
    auto& views = gen ? gen_views : ref_views;
    if (!views.count(v)) {
      auto& bytes = (gen ? gen_bytes : ref_bytes)[v];
      bytes.assign(*v->type().NumElements() * DTypeSize(v->dtype()) + 64, 0);
      TensorView& t = views[v];
      t.dtype = v->dtype();
      for (const Dim& d : v->type().dims) t.dims.push_back(d.value());
      t.data = bytes.data();
      if (const Tensor* init = v->initializer()) {  // a reduction's axes, a GatherGrad's shape
        std::memcpy(t.data, init->bytes().data(), init->bytes().size());
      }
    }
    return &views[v];
  };
  std::vector<TensorView*> args;
  for (size_t j = 0; j < ins.size(); ++j) {
    TensorView* a = view(ins[j], true);
    if (const Tensor* init = ins[j]->initializer()) {  // a GatherGrad's data_shape
      std::memcpy(a->data, init->bytes().data(), init->bytes().size());
    } else {
      Fill(*a, rng);
    }
    FillChecked(*a, *pk, static_cast<int>(j), rng);
    std::memcpy(view(ins[j], false)->data, a->data, gen_bytes[ins[j]].size());
    args.push_back(a);
  }
  for (const Value* v : outs) args.push_back(view(v, true));
  cpu::ThreadPool pool(2);
  auto call = cpu::PlanKernelCall(
      *pk, std::vector<TensorView*>(args.begin() + static_cast<long>(ins.size()), args.end()));
  ASSERT_TRUE(call.ok()) << call.status().message();
  (*gk)->Call(*call, args, &pool);
  for (const Node* n : nodes) {
    cpu::KernelFn fn = cpu::KernelRegistry::Global().Find(n->domain(), n->op_type());
    ASSERT_NE(fn, nullptr);
    cpu::KernelContext ctx;
    ctx.op = n->op_type();
    ctx.node_name = n->name();
    ctx.attrs = &n->attrs();
    for (const Value* v : n->inputs()) ctx.inputs.push_back(v ? view(v, false) : nullptr);
    for (const Value* v : n->outputs()) ctx.outputs.push_back(v ? view(v, false) : nullptr);
    const Status st = fn(ctx);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  for (const Value* v : outs) {
    const TensorView& a = *view(v, true);
    const TensorView& b = *view(v, false);
    int64_t first = -1;
    for (int64_t j = 0; j < a.NumElements() && first < 0; ++j) {
      if (!SameElement(a, b, j)) first = j;
    }
    EXPECT_EQ(first, -1) << nodes.back()->op_type() << " output '" << v->name()
                         << "' differs at element " << first << "\n"
                         << pk->source();
  }
}

// One node's generated kernel (every output stored) against its per-op kernel.
void CompareNodeKernel(const std::string& text, uint64_t seed) {
  auto g = ParseGraph(text);
  ASSERT_TRUE(g.ok()) << g.status().message();
  const Node* n = (*g)->nodes().front();
  ASSERT_TRUE(IsNodeKernel(*n)) << n->Describe();
  std::vector<const Value*> ins, outs;
  for (const Value* v : n->inputs()) {
    if (v && std::find(ins.begin(), ins.end(), v) == ins.end()) ins.push_back(v);
  }
  for (const Value* v : n->outputs()) {
    if (v) outs.push_back(v);
  }
  CompareGroupKernel({n}, ins, outs, seed);
}

// The graph `text` fused: one group of `nodes` nodes ending in `last`, compared as above.
void CompareOneGroup(const std::string& text, size_t nodes, const std::string& last,
                     uint64_t seed) {
  auto g = ParseGraph(text);
  ASSERT_TRUE(g.ok()) << g.status().message();
  FuseElementwise(**g);
  auto groups = CollectFusionGroups(**g);
  ASSERT_TRUE(groups.ok()) << groups.status().message();
  ASSERT_EQ(groups->size(), 1u);
  const FusionGroup& fg = groups->front();
  EXPECT_EQ(fg.nodes.size(), nodes);
  ASSERT_EQ(fg.nodes.back()->op_type(), last);
  CompareGroupKernel(fg.nodes, fg.inputs, fg.outputs, seed);
}

// Fusion groups ending in a reduction, on shapes the fixtures do not reach: row sums and means
// (over the last axis, or the last two collapsed) whose row count is a multiple of the
// interleaved block, not one (7, 13 rows) or a single row, with broadcast operands; and column
// sums. Each graph fuses into one group; every value the group computes is stored.
TEST(GeneratedKernels, FusedReductionsMatchPerOpOnEdgeShapes) {
  if (!HaveMlir()) GTEST_SKIP() << "built without MLIR";
  if (!cpu::CpuHasFeature("x86-64-v3")) GTEST_SKIP() << "this CPU lacks x86-64-v3";
  const std::vector<std::string> shapes = {"16,37", "7,5", "13,64", "1,9", "4,6,33"};
  uint64_t seed = 40;
  for (const std::string& sh : shapes) {
    const std::string last = sh.substr(sh.rfind(',') + 1);
    const int rank = static_cast<int>(std::count(sh.begin(), sh.end(), ',')) + 1;
    for (const char* red : {"ReduceMean", "ReduceSum"}) {
      for (int axes : {0, 1, 2}) {  // 0: last axis, 1: last two, 2: first (columns)
        if (axes == 1 && rank < 3) continue;
        std::string ax = axes == 0   ? std::to_string(rank - 1)
                         : axes == 1 ? std::to_string(rank - 2) + ", " + std::to_string(rank - 1)
                                     : "0";
        std::string out_shape;
        {
          std::vector<std::string> d;
          size_t p = 0;
          std::string t = sh + ",";
          while ((p = t.find(',')) != std::string::npos) {
            d.push_back(t.substr(0, p));
            t = t.substr(p + 1);
          }
          for (int i = 0; i < rank; ++i) {
            const bool r = axes == 0 ? i == rank - 1 : axes == 1 ? i >= rank - 2 : i == 0;
            out_shape += (i ? "," : "") + (r ? std::string("1") : d[i]);
          }
        }
        const std::string text = fmt::format(R"(graph "g" opsets {{"": 18}} {{
  input %x: f32[{0}]
  input %s: f32[{1}]
  %d: f32[{0}] = Sub(%x, %s) name="sub"
  %q: f32[{0}] = Mul(%d, %d) name="sq"
  init %axes: i64[{2}] = [{3}]
  %m: f32[{4}] = {5}(%q, %axes) {{keepdims=1}} name="red"
  output %d
  output %m
}})",
                                             sh, last, axes == 1 ? 2 : 1, ax, out_shape, red);
        SCOPED_TRACE(text);
        CompareOneGroup(text, 3, red, ++seed);
      }
    }
  }
}

// com.ampc ReluGrad fused behind a Mul, in each float type: dY's bits where X > 0, +0 elsewhere
// (NaN X included), against the per-op ReluGrad on random bits; a ReluGrad of the default domain
// (no such ONNX op) is not fused.
TEST(GeneratedKernels, ReluGradFusesAndMatchesPerOp) {
  if (!HaveMlir()) GTEST_SKIP() << "built without MLIR";
  if (!cpu::CpuHasFeature("x86-64-v3")) GTEST_SKIP() << "this CPU lacks x86-64-v3";
  uint64_t seed = 70;
  for (const char* t : {"f32", "f16", "bf16"}) {
    const std::string text = fmt::format(R"(graph "g" opsets {{"": 18, "com.ampc": 1}} {{
  input %dy: {0}[3,5,67]
  input %x: {0}[3,5,67]
  input %s: {0}[67]
  %g: {0}[3,5,67] = Mul(%dy, %s) name="scale"
  %dx: {0}[3,5,67] = com.ampc::ReluGrad(%g, %x) name="relu_grad"
  output %dx
}})",
                                         t);
    SCOPED_TRACE(text);
    CompareOneGroup(text, 2, "ReluGrad", ++seed);
  }
  auto g = ParseGraph(R"(graph "g" opsets {"": 18} {
  input %dy: f32[4]
  input %x: f32[4]
  %dx: f32[4] = ReluGrad(%dy, %x)
  output %dx
})");
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_FALSE(IsFusibleElementwise(*(*g)->nodes().front()));
}

// Gelu (opset 20, both approximations) and com.ampc GeluGrad fused in one group, in each float
// type, against the per-op Gelu and GeluGrad kernels on random values and bit patterns (inf and
// NaN included): Gelu's output and dX must be the same bits.
TEST(GeneratedKernels, GeluAndGeluGradFuseAndMatchPerOp) {
  if (!HaveMlir()) GTEST_SKIP() << "built without MLIR";
  if (!cpu::CpuHasFeature("x86-64-v3")) GTEST_SKIP() << "this CPU lacks x86-64-v3";
  uint64_t seed = 170;
  for (const char* mode : {"none", "tanh"}) {
    for (const char* t : {"f32", "f16", "bf16"}) {
      const std::string text = fmt::format(R"(graph "g" opsets {{"": 20, "com.ampc": 1}} {{
  input %x: {0}[3,5,67]
  input %dy: {0}[3,5,67]
  %y: {0}[3,5,67] = Gelu(%x) {{approximate="{1}"}} name="gelu"
  %g: {0}[3,5,67] = Mul(%y, %dy) name="scale"
  %dx: {0}[3,5,67] = com.ampc::GeluGrad(%g, %x) {{approximate="{1}"}} name="gelu_grad"
  output %y
  output %dx
}})",
                                           t, mode);
      SCOPED_TRACE(text);
      CompareOneGroup(text, 3, "GeluGrad", ++seed);
    }
  }
  auto g = ParseGraph(R"(graph "g" opsets {"": 20} {
  input %x: f32[4]
  %y: f32[4] = Gelu(%x) {approximate="sigmoid"}
  output %y
})");
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_FALSE(IsFusibleElementwise(*(*g)->nodes().front()));  // the per-op kernel reports it
}

// Row kernels on shapes and dtypes the fixtures do not reach: softmax over a middle axis (inner >
// 1), f32 rows interleaved 8, 4 and 2 per unit, f16/bf16 inputs, layer norm over two axes with Mean
// and InvStdDev stored and a row length that leaves a tail after the 8 partial sums, RMS norm
// (opset 23), cross entropy with weights, ignore_index, i32 labels, spatial dimensions and each
// reduction, and GatherGrad over a middle axis with repeated and negative i32 indices.
TEST(GeneratedKernels, RowKernelsMatchPerOpOnEdgeShapes) {
  if (!HaveMlir()) GTEST_SKIP() << "built without MLIR";
  if (!cpu::CpuHasFeature("x86-64-v3")) GTEST_SKIP() << "this CPU lacks x86-64-v3";
  const char* graphs[] = {
      R"(graph "g" opsets {"": 17} {
  input %x: f32[2,5,3]
  %y: f32[2,5,3] = Softmax(%x) {axis=1}
  output %y
})",
      R"(graph "g" opsets {"": 17} {
  input %x: f16[4,6]
  %y: f16[4,6] = LogSoftmax(%x) {axis=0}
  output %y
})",
      R"(graph "g" opsets {"": 17} {
  input %x: bf16[3,17]
  %y: bf16[3,17] = Softmax(%x) {axis=-1}
  output %y
})",
      // f32 rows of the last axis, 8, 4 and 2 interleaved per unit (node_kernels.cc).
      R"(graph "g" opsets {"": 17} {
  input %x: f32[2,8,19]
  %y: f32[2,8,19] = Softmax(%x) {axis=-1}
  output %y
})",
      R"(graph "g" opsets {"": 17} {
  input %x: f32[12,33]
  %y: f32[12,33] = LogSoftmax(%x) {axis=1}
  output %y
})",
      R"(graph "g" opsets {"": 17} {
  input %x: f32[6,5]
  %y: f32[6,5] = Softmax(%x) {axis=1}
  output %y
})",
      R"(graph "g" opsets {"": 17} {
  input %x: f32[3,2,13]
  input %s: f32[2,13]
  input %b: f32[2,13]
  %y: f32[3,2,13], %m: f32[3,1,1], %r: f32[3,1,1] = LayerNormalization(%x, %s, %b) {axis=1, epsilon=0.001}
  output %y
  output %m
  output %r
})",
      R"(graph "g" opsets {"": 17} {
  input %x: f16[5,7]
  input %s: f16[7]
  %y: f16[5,7] = LayerNormalization(%x, %s) {axis=-1}
  output %y
})",
      R"(graph "g" opsets {"": 23} {
  input %x: f32[3,2,13]
  input %s: f32[2,13]
  %y: f32[3,2,13] = RMSNormalization(%x, %s) {axis=1, epsilon=0.001}
  output %y
})",
      R"(graph "g" opsets {"": 23} {
  input %x: bf16[4,16]
  input %s: bf16[16]
  %y: bf16[4,16] = RMSNormalization(%x, %s)
  output %y
})",
      R"(graph "g" opsets {"": 17} {
  input %x: f32[4,5,3]
  input %l: i32[4,3]
  input %w: f32[5]
  %loss: f32[], %lp: f32[4,5,3] = SoftmaxCrossEntropyLoss(%x, %l, %w) {ignore_index=2, reduction="sum"}
  output %loss
  output %lp
})",
      R"(graph "g" opsets {"": 17, "com.ampc": 1} {
  input %dy: f32[2,4,3]
  input %i: i32[4]
  init %s: i64[3] = [2, 5, 3]
  %d: f32[2,5,3] = com.ampc::GatherGrad(%dy, %i, %s) {axis=1}
  output %d
})",
      R"(graph "g" opsets {"": 17} {
  input %x: bf16[6,4]
  input %l: i64[6]
  %loss: bf16[6] = SoftmaxCrossEntropyLoss(%x, %l) {reduction="none"}
  output %loss
})",
      R"(graph "g" opsets {"": 17} {
  input %x: f16[8,10]
  input %l: i64[8]
  %loss: f16[] = SoftmaxCrossEntropyLoss(%x, %l) {ignore_index=-100}
  output %loss
})",
      // Optimizer updates reading a half gradient (passes/fold_casts folds its widening Cast).
      R"(graph "g" opsets {"": 17, "com.ampc": 1} {
  input %lr: f32[]
  input %t: i64[]
  input %w: f32[3,70]
  input %g: bf16[3,70]
  input %m: f32[3,70]
  input %v: f32[3,70]
  %w2: f32[3,70], %m2: f32[3,70], %v2: f32[3,70] = com.ampc::Adam(%lr, %t, %w, %g, %m, %v) {beta1=0.9, beta2=0.999, epsilon=1e-08, weight_decay=0.01, decoupled=1}
  output %w2
  output %m2
  output %v2
})",
      R"(graph "g" opsets {"": 17, "com.ampc": 1} {
  input %lr: f32[]
  input %t: i64[]
  input %w: f32[130]
  input %g: f16[130]
  input %m: f32[130]
  %w2: f32[130], %m2: f32[130] = com.ampc::SGD(%lr, %t, %w, %g, %m) {momentum=0.9, weight_decay=0.0001}
  output %w2
  output %m2
})",
  };
  uint64_t seed = 7;
  for (const char* text : graphs) {
    SCOPED_TRACE(text);
    CompareNodeKernel(text, ++seed);
  }
}

// The groups FuseElementwise forms with multi_tensor_args, as (op, node count) in order.
std::vector<std::pair<std::string, size_t>> GroupShapes(Graph& g, int args) {
  FuseElementwise(g, FusionOptions{.multi_tensor_args = args});
  auto groups = CollectFusionGroups(g);
  EXPECT_TRUE(groups.ok()) << groups.status().message();
  std::vector<std::pair<std::string, size_t>> out;
  if (groups.ok()) {
    for (const FusionGroup& fg : *groups) out.push_back({fg.nodes[0]->op_type(), fg.nodes.size()});
  }
  return out;
}

// Multi-tensor optimizers: Adam updates of 5000 (a short last block of 4096), 4096, 7 and 3x70
// elements, one with a bf16 gradient, one writing a bf16 half copy, all with the apply flag,
// share one kernel, which must store the bits the per-op kernels store, on the CPU's grain and
// the GPU's (one element per unit, run here on the CPU); likewise SGD with Nesterov momentum.
TEST(GeneratedKernels, MultiTensorOptimizersMatchPerOp) {
  if (!HaveMlir()) GTEST_SKIP() << "built without MLIR";
  if (!cpu::CpuHasFeature("x86-64-v3")) GTEST_SKIP() << "this CPU lacks x86-64-v3";
  const char* adam = R"(graph "g" opsets {"": 17, "com.ampc": 1} {
  input %lr: f32[]
  input %t: i64[]
  input %ok: bool[]
  input %w0: f32[5000]
  input %g0: f32[5000]
  input %m0: f32[5000]
  input %v0: f32[5000]
  input %w1: f32[64,64]
  input %g1: f32[64,64]
  input %m1: f32[64,64]
  input %v1: f32[64,64]
  input %w2: f32[7]
  input %g2: f32[7]
  input %m2: f32[7]
  input %v2: f32[7]
  input %w3: f32[3,70]
  input %g3: bf16[3,70]
  input %m3: f32[3,70]
  input %v3: f32[3,70]
  %a0: f32[5000], %b0: f32[5000], %c0: f32[5000] = com.ampc::Adam(%lr, %t, %w0, %g0, %m0, %v0, %ok) {beta1=0.9, beta2=0.999, epsilon=1e-08, weight_decay=0.01, decoupled=1}
  %a1: f32[64,64], %b1: f32[64,64], %c1: f32[64,64], %h1: bf16[64,64] = com.ampc::Adam(%lr, %t, %w1, %g1, %m1, %v1, %ok) {beta1=0.9, beta2=0.999, epsilon=1e-08, weight_decay=0.01, decoupled=1, half_copy=16}
  %a2: f32[7], %b2: f32[7], %c2: f32[7] = com.ampc::Adam(%lr, %t, %w2, %g2, %m2, %v2, %ok) {beta1=0.9, beta2=0.999, epsilon=1e-08, weight_decay=0.01, decoupled=1}
  %a3: f32[3,70], %b3: f32[3,70], %c3: f32[3,70] = com.ampc::Adam(%lr, %t, %w3, %g3, %m3, %v3, %ok) {beta1=0.9, beta2=0.999, epsilon=1e-08, weight_decay=0.01, decoupled=1}
  output %a0
  output %b0
  output %c0
  output %a1
  output %b1
  output %c1
  output %h1
  output %a2
  output %b2
  output %c2
  output %a3
  output %b3
  output %c3
})";
  const char* sgd = R"(graph "g" opsets {"": 17, "com.ampc": 1} {
  input %lr: f32[]
  input %t: i64[]
  input %w0: f32[4100]
  input %g0: f16[4100]
  input %m0: f32[4100]
  input %w1: f32[9]
  input %g1: f32[9]
  input %m1: f32[9]
  %a0: f32[4100], %b0: f32[4100] = com.ampc::SGD(%lr, %t, %w0, %g0, %m0) {momentum=0.9, nesterov=1, weight_decay=0.0001}
  %a1: f32[9], %b1: f32[9] = com.ampc::SGD(%lr, %t, %w1, %g1, %m1) {momentum=0.9, nesterov=1, weight_decay=0.0001}
  output %a0
  output %b0
  output %a1
  output %b1
})";
  uint64_t seed = 90;
  for (const char* text : {adam, sgd}) {
    for (bool gpu : {false, true}) {
      SCOPED_TRACE(std::string(text) + (gpu ? " (GPU grain)" : ""));
      auto g = ParseGraph(text);
      ASSERT_TRUE(g.ok()) << g.status().message();
      const auto shapes = GroupShapes(**g, 64);
      ASSERT_EQ(shapes.size(), 1u);
      EXPECT_EQ(shapes[0].second, (*g)->nodes().size());
      auto groups = CollectFusionGroups(**g);
      ASSERT_TRUE(groups.ok());
      const FusionGroup& fg = groups->front();
      CompareGroupKernel(fg.nodes, fg.inputs, fg.outputs, ++seed, gpu);
    }
  }
}

// Which updates share a kernel: only those of one signature (attributes, lr, step and apply
// flag), only up to the buffer limit, and never across a reader of a member's output (the group
// runs where its last member stood).
TEST(GeneratedKernels, MultiTensorOptimizerGroups) {
  auto adam = [](int i, const char* attrs) {
    return fmt::format(
        "  %a{0}: f32[8], %b{0}: f32[8], %c{0}: f32[8] = com.ampc::Adam(%lr, %t, %w{0}, %g{0}, "
        "%m{0}, %v{0}) {{{1}}}\n  output %a{0}\n  output %b{0}\n  output %c{0}\n",
        i, attrs);
  };
  auto graph = [](int n, const std::string& body, const std::string& extra_inputs = "") {
    std::string s =
        "graph \"g\" opsets {\"\": 17, \"com.ampc\": 1} {\n  input %lr: f32[]\n"
        "  input %t: i64[]\n" +
        extra_inputs;
    for (int i = 0; i < n; ++i) {
      for (const char* p : {"w", "g", "m", "v"}) s += fmt::format("  input %{}{}: f32[8]\n", p, i);
    }
    return s + body + "}";
  };
  const char* a = "beta1=0.9, beta2=0.999, epsilon=1e-08, weight_decay=0.01, decoupled=1";
  const char* b = "beta1=0.8, beta2=0.999, epsilon=1e-08, weight_decay=0.01, decoupled=1";
  using Shapes = std::vector<std::pair<std::string, size_t>>;
  {  // Off: a kernel each.
    auto g = ParseGraph(graph(3, adam(0, a) + adam(1, a) + adam(2, a)));
    ASSERT_TRUE(g.ok()) << g.status().message();
    EXPECT_EQ(GroupShapes(**g, 0), (Shapes{{"Adam", 1}, {"Adam", 1}, {"Adam", 1}}));
  }
  {  // Two signatures interleaved: a group each.
    auto g = ParseGraph(graph(4, adam(0, a) + adam(1, b) + adam(2, a) + adam(3, b)));
    ASSERT_TRUE(g.ok()) << g.status().message();
    EXPECT_EQ(GroupShapes(**g, 64), (Shapes{{"Adam", 2}, {"Adam", 2}}));
  }
  {  // 2 shared + 7 per update: 16 buffers take two updates, 23 three.
    auto g = ParseGraph(graph(5, adam(0, a) + adam(1, a) + adam(2, a) + adam(3, a) + adam(4, a)));
    ASSERT_TRUE(g.ok()) << g.status().message();
    EXPECT_EQ(GroupShapes(**g, 16), (Shapes{{"Adam", 2}, {"Adam", 2}, {"Adam", 1}}));
    EXPECT_EQ(GroupShapes(**g, 23), (Shapes{{"Adam", 3}, {"Adam", 2}}));
  }
  {  // A reader of update 0's output between updates 0 and 1 closes the first group.
    auto g =
        ParseGraph(graph(2, adam(0, a) + "  %r: f32[8] = Neg(%a0)\n  output %r\n" + adam(1, a)));
    ASSERT_TRUE(g.ok()) << g.status().message();
    EXPECT_EQ(GroupShapes(**g, 64), (Shapes{{"Adam", 1}, {"Neg", 1}, {"Adam", 1}}));
  }
  {  // A different lr: no sharing.
    auto g = ParseGraph(graph(2, adam(0, a) + adam(1, a), "  input %lr2: f32[]\n"));
    ASSERT_TRUE(g.ok()) << g.status().message();
    Node* second = (*g)->nodes()[1];
    second->SetInput(0, (*g)->FindValue("lr2"));
    EXPECT_EQ(GroupShapes(**g, 64), (Shapes{{"Adam", 1}, {"Adam", 1}}));
  }
}

}  // namespace
}  // namespace ampc
