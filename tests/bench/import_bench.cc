// Benchmark (not a test): time to import + verify a generated ONNX graph of N nodes.
// Usage: ampc-bench-import [N ...]   (default: 10000 100000)
// The graph is a residual chain over f32[batch,64] with symbolic batch: Add(x, bias_i) ->
// Relu -> Mul(., scale_i) -> Add(., x) ..., so every node needs broadcasting shape inference.
#include <onnx/onnx_pb.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "frontend/onnx.h"
#include "ir/verifier.h"

namespace {

std::string MakeModel(int64_t n_nodes) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* os = m.add_opset_import();
  os->set_domain("");
  os->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("chain");
  auto add_vi = [](onnx::ValueInfoProto* vi, const std::string& name) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    tt->mutable_shape()->add_dim()->set_dim_param("batch");
    tt->mutable_shape()->add_dim()->set_dim_value(64);
  };
  add_vi(g->add_input(), "x");
  std::string cur = "x";
  const char* ops[] = {"Add", "Relu", "Mul", "Add"};
  for (int64_t i = 0; i < n_nodes; ++i) {
    const std::string op = ops[i % 4];
    const std::string out = "v" + std::to_string(i);
    auto* node = g->add_node();
    node->set_op_type(op);
    node->set_name("n" + std::to_string(i));
    node->add_input(cur);
    if (i % 4 == 0 || i % 4 == 2) {
      const std::string c = "c" + std::to_string(i);
      auto* t = g->add_initializer();
      t->set_name(c);
      t->set_data_type(onnx::TensorProto::FLOAT);
      t->add_dims(64);
      t->set_raw_data(std::string(64 * 4, '\0'));
      node->add_input(c);
    } else if (i % 4 == 3) {
      node->add_input("x");
    }
    node->add_output(out);
    cur = out;
  }
  add_vi(g->add_output(), cur);
  std::string bytes;
  m.SerializeToString(&bytes);
  return bytes;
}

double Seconds(std::chrono::steady_clock::time_point a) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::stoll(argv[i]));
  if (sizes.empty()) sizes = {10000, 100000};
  std::printf("%10s %12s %16s %16s %14s %12s\n", "nodes", "model MB", "import+verify s",
              "(no checker) s", "verify only s", "us/node");
  for (int64_t n : sizes) {
    const std::string bytes = MakeModel(n);
    double best = 1e9, best_nochk = 1e9, best_verify = 1e9;
    for (int rep = 0; rep < 3; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      auto g = ampc::ImportOnnxBytes(bytes, "", "bench");
      best = std::min(best, Seconds(t0));
      if (!g.ok()) {
        std::fprintf(stderr, "import failed: %s\n", g.status().message().c_str());
        return 1;
      }
      t0 = std::chrono::steady_clock::now();
      ampc::ImportOptions no_checker;
      no_checker.run_onnx_checker = false;
      auto g2 = ampc::ImportOnnxBytes(bytes, "", "bench", no_checker);
      best_nochk = std::min(best_nochk, Seconds(t0));
      t0 = std::chrono::steady_clock::now();
      if (!ampc::Verify(**g).ok()) return 1;
      best_verify = std::min(best_verify, Seconds(t0));
    }
    std::printf("%10lld %12.1f %16.3f %16.3f %14.3f %12.2f\n", static_cast<long long>(n),
                bytes.size() / 1e6, best, best_nochk, best_verify, best * 1e6 / n);
  }
  return 0;
}
