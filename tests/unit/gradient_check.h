// The finite-difference gradient check shared by the autodiff tests: a case builds forward ops
// on f64 parameters, the loss is ReduceSum(out * W) with fixed random W (so the upstream
// gradient is not trivial), and every element of every parameter's autodiff gradient is
// compared with a float64 central difference, both sides compiled and run on the CPU executor.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "frontend/training/autodiff.h"
#include "ir/graph.h"
#include "ir/op_registry.h"
#include "ir/verifier.h"
#include "runtime/cpu/executor.h"

namespace ampc::testing::gradcheck {

inline Tensor F64(const std::vector<double>& v, std::vector<int64_t> dims) {
  std::vector<uint8_t> b(v.size() * sizeof(double));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return Tensor(DType::kFloat64, std::move(dims), std::move(b));
}

inline int64_t Count(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

inline std::vector<double> Random(int64_t n, double lo, double hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = u(rng);
  return v;
}

// Builds forward nodes with fresh names, inferring each one.
struct Builder {
  Graph& g;
  int next = 0;
  Value* Op(const std::string& op, std::vector<Value*> inputs, AttributeMap attrs = {},
            int outputs = 1) {
    const std::string name = "fwd" + std::to_string(next++) + "_" + op;
    std::vector<std::string> outs;
    for (int i = 0; i < outputs; ++i) outs.push_back(name + "_o" + std::to_string(i));
    auto n = g.AddNode(op, "", name, inputs, outs, std::move(attrs));
    EXPECT_TRUE(n.ok()) << n.status().message();
    Status st = InferNode(**n);
    EXPECT_TRUE(st.ok()) << st.message();
    return (*n)->output(0);
  }
  Value* Ints(const std::vector<int64_t>& v) {
    return *g.AddInitializer(g.UniqueName("ints"),
                             Tensor::FromInt64s(v, {static_cast<int64_t>(v.size())}));
  }
  Value* Scalar(double v) { return *g.AddInitializer(g.UniqueName("c"), F64({v}, {})); }
  Value* Const(const std::vector<double>& v, std::vector<int64_t> dims) {
    return *g.AddInitializer(g.UniqueName("c"), F64(v, std::move(dims)));
  }
};

using BuildFn = std::function<Value*(Builder&, const std::vector<Value*>&)>;

struct GradCase {
  std::string name;
  std::vector<std::vector<int64_t>> shapes;  // f64 parameters
  BuildFn build;
  double lo = -1.0, hi = 1.0;  // parameter value range
  // Optional graph inputs (possibly with symbolic dims) and the data they are run with.
  std::vector<std::pair<std::string, TensorType>> inputs = {};
  std::vector<Tensor> input_data = {};
  // Optional rewrite of the forward graph before the loss is attached (e.g. a decomposition pass);
  // both the autodiff gradients and the finite differences are taken of the rewritten graph.
  std::function<void(Graph&)> rewrite = {};
};

struct Model {
  std::unique_ptr<Graph> graph;
  std::vector<Value*> params;
  Value* loss = nullptr;
};

// params -> build -> loss = ReduceSum(out * W).
inline Model BuildModel(const GradCase& c, const std::vector<std::vector<double>>& values) {
  Model m;
  m.graph = std::make_unique<Graph>();
  Graph& g = *m.graph;
  g.opsets()[""] = 17;
  for (size_t i = 0; i < c.shapes.size(); ++i) {
    m.params.push_back(*g.AddInitializer("p" + std::to_string(i), F64(values[i], c.shapes[i])));
  }
  for (const auto& [name, type] : c.inputs) EXPECT_TRUE(g.AddInput(name, type).ok());
  Builder b{g};
  Value* out = c.build(b, m.params);
  if (c.rewrite) {
    g.SetOutputs({out});
    c.rewrite(g);
    out = g.outputs().at(0);
  }
  std::vector<int64_t> dims;  // symbolic dims of the output broadcast W
  for (const Dim& d : out->type().dims) dims.push_back(d.is_static() ? d.value() : 1);
  Value* w = b.Const(Random(Count(dims), -1.0, 1.0, 1234), dims);
  Value* prod = b.Op("Mul", {out, w});
  m.loss = b.Op("ReduceSum", {prod}, {{"keepdims", Attribute(int64_t{0})}});
  return m;
}

inline std::vector<Tensor> RunGraph(std::unique_ptr<Graph> g,
                                    const std::vector<Tensor>& inputs = {}) {
  auto plan = CompileForInputs(std::move(g), inputs, DType::kFloat32, "autodiff_test",
                               cpu::CpuBackendSupport());
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  if (!plan.ok()) return {};
  auto exec = cpu::CpuExecutor::Create(std::move(*plan), 1);
  EXPECT_TRUE(exec.ok()) << exec.status().message();
  if (!exec.ok()) return {};
  auto out = (*exec)->Run(inputs);
  EXPECT_TRUE(out.ok()) << out.status().message();
  return out.ok() ? *out : std::vector<Tensor>{};
}

inline double Loss(const GradCase& c, const std::vector<std::vector<double>>& values) {
  Model m = BuildModel(c, values);
  m.graph->SetOutputs({m.loss});
  std::vector<Tensor> out = RunGraph(std::move(m.graph), c.input_data);
  if (out.size() != 1) return NAN;
  return (*out[0].AsDoubles())[0];
}

inline void CheckGradients(const GradCase& c) {
  std::vector<std::vector<double>> values;
  for (size_t i = 0; i < c.shapes.size(); ++i) {
    values.push_back(Random(Count(c.shapes[i]), c.lo, c.hi, 77 + static_cast<uint32_t>(i)));
  }
  Model m = BuildModel(c, values);
  const size_t forward_nodes = m.graph->nodes().size();
  auto r = BuildBackward(*m.graph, m.loss, m.params);
  ASSERT_TRUE(r.ok()) << r.status().message();
  // Every backward node names its forward node.
  std::set<std::string> forward_names;
  for (size_t i = 0; i < forward_nodes; ++i) forward_names.insert(m.graph->nodes()[i]->name());
  for (size_t i = forward_nodes; i < m.graph->nodes().size(); ++i) {
    const Node* n = m.graph->nodes()[i];
    auto it = n->annotations().find("grad_of");
    ASSERT_NE(it, n->annotations().end()) << n->Describe();
    EXPECT_TRUE(forward_names.count(it->second)) << n->Describe() << " grad_of=" << it->second;
  }
  std::vector<Value*> outs;
  for (Value* p : m.params) {
    ASSERT_TRUE(r->grads.count(p)) << "no gradient for " << p->name();
    outs.push_back(r->grads.at(p));
  }
  m.graph->SetOutputs(outs);
  Status verified = Verify(*m.graph);
  ASSERT_TRUE(verified.ok()) << verified.message();
  std::vector<Tensor> grads = RunGraph(std::move(m.graph), c.input_data);
  ASSERT_EQ(grads.size(), c.shapes.size());
  const double h = 1e-6;
  for (size_t p = 0; p < c.shapes.size(); ++p) {
    EXPECT_EQ(grads[p].dims(), c.shapes[p]) << "param " << p;
    std::vector<double> g = *grads[p].AsDoubles();
    ASSERT_EQ(g.size(), values[p].size());
    for (size_t i = 0; i < g.size(); ++i) {
      auto plus = values, minus = values;
      plus[p][i] += h;
      minus[p][i] -= h;
      const double fd = (Loss(c, plus) - Loss(c, minus)) / (2 * h);
      EXPECT_LE(std::fabs(g[i] - fd), 1e-6 + 1e-5 * std::fabs(fd))
          << c.name << ": param " << p << " element " << i << " autodiff " << g[i] << " fd " << fd;
    }
  }
}

// A case's loss with its rewrite equals the loss without it, on random parameter values (f64:
// to rounding): a decomposition computes what the op's own kernel computes.
inline void ExpectRewriteKeepsLoss(GradCase c, uint32_t seed) {
  std::vector<std::vector<double>> values;
  for (size_t i = 0; i < c.shapes.size(); ++i) {
    values.push_back(Random(Count(c.shapes[i]), c.lo, c.hi, seed + static_cast<uint32_t>(i)));
  }
  const double rewritten = Loss(c, values);
  c.rewrite = nullptr;
  const double original = Loss(c, values);
  EXPECT_TRUE(std::isfinite(original)) << c.name;
  EXPECT_NEAR(rewritten, original, 1e-12 * std::max(1.0, std::fabs(original))) << c.name;
}

inline AttributeMap A(std::initializer_list<std::pair<const std::string, Attribute>> l) {
  return l;
}

inline BuildFn Binary(const std::string& op) {
  return [op](Builder& b, const std::vector<Value*>& p) { return b.Op(op, {p[0], p[1]}); };
}
inline BuildFn Unary(const std::string& op, AttributeMap attrs = {}) {
  return [op, attrs](Builder& b, const std::vector<Value*>& p) { return b.Op(op, {p[0]}, attrs); };
}

}  // namespace ampc::testing::gradcheck
