#include "tools/ampc/commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "codegen/mlir_compile.h"
#include "compiler/compiler.h"
#include "frontend/onnx.h"
#include "ir/file_io.h"
#include "ir/text.h"
#include "runtime/cpu/kernel.h"
#include "runtime/device_info.h"
#include "runtime/executor.h"
#include "runtime/npy.h"
#include "runtime/train_data.h"

namespace ampc::cli {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string Thousands(int64_t v) {
  std::string s = std::to_string(v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::string OpName(const Node& n) {
  return n.domain().empty() ? n.op_type() : n.domain() + "::" + n.op_type();
}

std::string Summary(const Graph& g, const std::string& path) {
  std::string s = fmt::format("model: {} (graph '{}', ai.onnx opset {})\n", path, g.name(),
                              g.opsets().count("") ? g.opsets().at("") : 0);
  s += "inputs:\n";
  for (const Value* v : g.inputs())
    s += fmt::format("  {:<24} {}\n", v->name(), v->type().ToString());
  s += "outputs:\n";
  for (const Value* v : g.outputs())
    s += fmt::format("  {:<24} {}\n", v->name(), v->type().ToString());
  int64_t params = 0, param_bytes = 0, tensors = 0, other_bytes = 0;
  for (const Value* v : g.initializers()) {
    const Tensor* t = v->initializer();
    if (IsFloat(t->dtype())) {
      params += t->NumElements();
      param_bytes += t->NumElements() * DTypeSize(t->dtype());
      ++tensors;
    } else {
      other_bytes += t->NumElements() * DTypeSize(t->dtype());
    }
  }
  s += fmt::format("parameters: {} in {} tensors, {} bytes", Thousands(params), tensors,
                   Thousands(param_bytes));
  if (other_bytes) s += fmt::format(" (+ {} bytes of integer constants)", Thousands(other_bytes));
  s += "\n";
  std::map<std::string, int> counts;
  for (const Node* n : g.nodes()) ++counts[OpName(*n)];
  s += fmt::format("nodes: {} ({} op types)\n", Thousands(g.num_nodes()), counts.size());
  for (const auto& [op, c] : counts) s += fmt::format("  {:<24} {}\n", op, c);
  return s;
}

nlohmann::json AttrJson(const Attribute& a) {
  switch (a.kind()) {
    case AttrKind::kInt:
      return a.i();
    case AttrKind::kFloat:
      return a.f();
    case AttrKind::kString:
      return a.s();
    case AttrKind::kInts:
      return a.ints();
    case AttrKind::kFloats:
      return a.floats();
    case AttrKind::kStrings:
      return a.strings();
    case AttrKind::kTensor:
      return {{"tensor", a.t().type().ToString()}};
  }
  return nullptr;
}

std::string GraphJson(const Graph& g) {
  using nlohmann::json;
  auto value = [](const Value* v) {
    return v ? json{{"name", v->name()}, {"type", v->type().ToString()}} : json(nullptr);
  };
  json j;
  j["name"] = g.name();
  j["opsets"] = g.opsets();
  for (const Value* v : g.inputs()) j["inputs"].push_back(value(v));
  for (const Value* v : g.initializers()) {
    j["initializers"].push_back({{"name", v->name()},
                                 {"type", v->type().ToString()},
                                 {"bytes", v->initializer()->bytes().size()}});
  }
  for (const Node* n : g.nodes()) {
    json jn{{"name", n->name()}, {"op", n->op_type()}, {"domain", n->domain()}};
    jn["inputs"] = json::array();
    jn["outputs"] = json::array();
    for (const Value* v : n->inputs()) jn["inputs"].push_back(v ? json(v->name()) : json(nullptr));
    for (const Value* v : n->outputs()) jn["outputs"].push_back(value(v));
    jn["attributes"] = json::object();
    for (const auto& [k, a] : n->attrs()) jn["attributes"][k] = AttrJson(a);
    jn["annotations"] = n->annotations();
    j["nodes"].push_back(std::move(jn));
  }
  for (const Value* v : g.outputs()) j["outputs"].push_back(value(v));
  return j.dump(2) + "\n";
}

std::string DotQuote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string GraphDot(const Graph& g) {
  std::string s =
      "digraph " + DotQuote(g.name()) + " {\n  rankdir=TB;\n  node [fontname=\"monospace\"];\n";
  std::map<const Node*, int> id;
  for (const Node* n : g.nodes()) id[n] = static_cast<int>(id.size());
  for (const Value* v : g.inputs()) {
    s += "  " + DotQuote("in:" + v->name()) +
         " [shape=ellipse, label=" + DotQuote(v->name() + "\n" + v->type().ToString()) + "];\n";
  }
  for (const Node* n : g.nodes()) {
    std::string label = OpName(*n) + "\n" + n->name();
    for (const auto& [k, v] : n->annotations()) label += "\n" + k + "=" + v;
    auto p = n->annotations().find("precision");
    std::string fill;  // half: green, fp32 after painting: orange, casts: grey
    if (p != n->annotations().end()) {
      fill = p->second == "f16" || p->second == "bf16" ? "#c8e6c9"
             : p->second == "f32"                      ? "#ffe0b2"
                                                       : "#eeeeee";
      if (n->op_type() == "Cast") fill = "#cfd8dc";
    }
    s += fmt::format("  n{} [shape=box, label={}{}];\n", id[n], DotQuote(label),
                     fill.empty() ? "" : ", style=filled, fillcolor=\"" + fill + "\"");
    for (const Value* in : n->inputs()) {
      if (!in || in->kind() == ValueKind::kInitializer) continue;
      const std::string from = in->kind() == ValueKind::kInput
                                   ? DotQuote("in:" + in->name())
                                   : fmt::format("n{}", id[in->producer()]);
      s += fmt::format("  {} -> n{} [label={}];\n", from, id[n], DotQuote(in->type().ToString()));
    }
  }
  for (const Value* v : g.outputs()) {
    s += "  " + DotQuote("out:" + v->name()) +
         " [shape=ellipse, label=" + DotQuote(v->name() + "\n" + v->type().ToString()) + "];\n";
    if (v->producer())
      s += fmt::format("  n{} -> {};\n", id[v->producer()], DotQuote("out:" + v->name()));
  }
  return s + "}\n";
}

}  // namespace

Status RunCompile(const CompileArgs& args) {
  if (!args.output.empty()) return RunCompileToPlan(args);
  ASSIGN_OR_RETURN(std::unique_ptr<Graph> g, ImportOnnxFile(args.model));
  std::fputs(Summary(*g, args.model).c_str(), stdout);
  return Status::Ok();
}

namespace {

// A compiled plan as text: header, inputs/outputs, kernels, then one line per step.
std::string PlanText(const plan::PlanProto& p) {
  auto buf = [&](int id) -> std::string {
    if (id < 0) return "_";
    const plan::Buffer& b = p.buffers(id);
    std::string dims;
    for (int i = 0; i < b.dims_size(); ++i) dims += (i ? "," : "") + std::to_string(b.dims(i));
    const char* kind = b.kind() == plan::Buffer::CONSTANT ? "const"
                       : b.kind() == plan::Buffer::STATE  ? "state"
                                                          : "arena";
    std::string where = b.kind() == plan::Buffer::ARENA ? fmt::format("@{}", b.offset()) : "";
    return fmt::format("b{}:{}[{}]{}{}", id, b.dtype(), dims,
                       kind[0] == 'a' ? "" : std::string(" ") + kind, where);
  };
  const std::string target =
      p.target().arch().empty() ? p.target().kind() : p.target().kind() + ":" + p.target().arch();
  std::string s = fmt::format("plan (format {}, {}, target {}, precision {}) from {}\n",
                              p.format_version(), p.producer(), target, p.precision(), p.source());
  s += fmt::format(
      "arena {} bytes ({} without fallback intermediates, {} without reuse), data {} bytes, {} "
      "buffers, {} steps, {} kernels\n",
      Thousands(p.arena_bytes()),
      Thousands(p.arena_kernel_bytes() > 0 ? p.arena_kernel_bytes() : p.arena_bytes()),
      Thousands(p.arena_bytes_unshared()), Thousands(p.data_bytes()), p.buffers_size(),
      p.steps_size(), p.kernels_size());
  if (!p.data_fills().empty()) {
    int uniform = 0;
    for (const auto& f : p.data_fills()) uniform += f.kind() == plan::DataFill::UNIFORM ? 1 : 0;
    s += fmt::format(
        "synthetic data: the file stores {} bytes; {} tensors are made at load ({} zero or "
        "constant, {} seeded uniform weights: a model to time, not a trained one)\n",
        Thousands(p.stored_data_bytes()), p.data_fills_size(), p.data_fills_size() - uniform,
        uniform);
  }
  for (const auto& io : p.inputs())
    s += fmt::format("input  {} = {}\n", io.name(), buf(io.buffer()));
  for (const auto& sp : p.specializations()) {
    std::string v;
    for (int i = 0; i < sp.values_size(); ++i) v += (i ? "," : "") + std::to_string(sp.values(i));
    s += fmt::format("specialised {} = [{}]\n", sp.input(), v);
  }
  for (int k = 0; k < p.kernels_size(); ++k) {
    const plan::Kernel& kn = p.kernels(k);
    std::string images;
    for (const auto& im : kn.images()) {
      std::string needs;
      for (const auto& f : im.cpu_features()) needs += (needs.empty() ? " needs " : ",") + f;
      images += fmt::format("{}{}:{}({} bytes{})", images.empty() ? "" : ", ",
                            plan::KernelImage::Format_Name(im.format()), im.arch(),
                            im.data().size(), needs);
    }
    // The nodes it computes: those of the fusion groups that call it.
    std::string nodes;
    int groups = 0;
    for (const auto& fg : p.fusion_groups()) {
      if (fg.kernel() != k) continue;
      if (groups++ == 0) {
        for (const auto& f : fg.fallback()) nodes += (nodes.empty() ? "" : " ") + f.op().op();
      }
    }
    s += fmt::format("kernel k{} {} entry {} [{}] computes {}{}\n", k, kn.name(), kn.entry(),
                     images, nodes.empty() ? "?" : nodes,
                     groups > 1 ? fmt::format(" (called by {} groups)", groups) : "");
    if (kn.params_size()) {
      std::string params;
      for (const auto& a : kn.params()) params += (params.empty() ? "" : ", ") + a;
      s += fmt::format("  launch: {} threads per block; arguments {}\n",
                       kn.launch().block_threads(), params);
    }
  }
  for (int k = 0; k < p.steps_size(); ++k) {
    const plan::Step& st = p.steps(k);
    std::string outs, ins;
    for (int i = 0; i < st.outputs_size(); ++i) outs += (i ? ", " : "") + buf(st.outputs(i));
    for (int i = 0; i < st.inputs_size(); ++i)
      ins += (i ? ", " : "") +
             std::string(st.inputs(i) < 0 ? "_" : "b" + std::to_string(st.inputs(i)));
    const std::string callee =
        st.has_kernel() ? fmt::format("kernel k{}", st.kernel().kernel())
                        : (st.op().domain().empty() ? "" : st.op().domain() + "::") + st.op().op();
    s += fmt::format("#{} {} = {}({}) name=\"{}\"\n", k, outs, callee, ins, st.name());
  }
  for (const auto& io : p.outputs())
    s += fmt::format("output {} = {}\n", io.name(), buf(io.buffer()));
  for (const auto& m : p.metrics()) s += fmt::format("metric {}\n", m);
  return s;
}

}  // namespace

StatusOr<std::map<std::string, int64_t>> ParseDimFlags(const std::vector<std::string>& flags) {
  std::map<std::string, int64_t> out;
  for (const std::string& d : flags) {
    const size_t eq = d.find('=');
    char* end = nullptr;
    const long long v = eq == std::string::npos ? 0 : std::strtoll(d.c_str() + eq + 1, &end, 10);
    if (eq == std::string::npos || eq == 0 || !end || *end != '\0' || v <= 0) {
      return InvalidArgument("--dim " + d + ": expected NAME=POSITIVE_INTEGER");
    }
    out[d.substr(0, eq)] = v;
  }
  return out;
}

Status ResolveKernelMode(const std::string& mode, KernelOptions* k) {
  if (mode == "per-op") {
    k->enabled = false;
  } else if (mode == "generated") {
    if (!HaveMlir()) {
      return InvalidArgument(
          "--kernels generated: this ampc was built without MLIR "
          "(-DAMPC_WITH_MLIR=OFF); use --kernels per-op");
    }
    k->enabled = k->required = true;
  } else if (mode == "gpu-grain") {  // generated, with the CUDA target's grain (for tests)
    if (!HaveMlir())
      return InvalidArgument("--kernels gpu-grain: this ampc was built without MLIR");
    k->enabled = k->required = k->gpu_grain = true;
  } else if (mode == "auto") {
    k->enabled = HaveMlir();
    k->required = false;
    if (!k->enabled) {
      std::fprintf(stderr,
                   "ampc: note: built without MLIR: every step runs a per-op kernel (no fusion)\n");
    }
  } else {
    return InvalidArgument("--kernels " + mode + ": expected auto, generated, gpu-grain or per-op");
  }
  return Status::Ok();
}

Status RunInspect(const InspectArgs& args) {
  if (!args.output.empty() && SameFile(args.model, args.output)) {
    return InvalidArgument(args.output + ": refusing to overwrite the input model with -o");
  }
  std::string out;
  if (EndsWith(args.model, ".ampc")) {
    if (args.format != "text")
      return InvalidArgument("--format " + args.format + ": plans print as text only");
    ASSIGN_OR_RETURN(Plan p, LoadPlan(args.model));
    out = PlanText(p.proto);
    if (args.output.empty()) {
      std::fwrite(out.data(), 1, out.size(), stdout);
      return Status::Ok();
    }
    return WriteFileAtomically(args.output, out);
  }
  if (args.format != "text" && args.format != "json" && args.format != "dot" &&
      args.format != "onnx") {
    return InvalidArgument("--format " + args.format + ": expected text, json, dot or onnx");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Graph> g, ImportOnnxFile(args.model));
  std::string summary;
  nlohmann::json jsummary;
  if (args.training) {
    CompileOptions opts = args.options;
    RETURN_IF_ERROR(ResolveAmp(args.amp, &opts));
    AutocastOptions& amp = opts.amp;
    const BackendSupport cpu_support = cpu::CpuBackendSupport();
    opts.support = &cpu_support;
    std::string dims_text;
    ASSIGN_OR_RETURN(amp.dims, ParseDimFlags(args.dims));
    for (const std::string& d : args.dims) dims_text += (dims_text.empty() ? "" : ", ") + d;
    RETURN_IF_ERROR(ParseLossScale(args.loss_scale, &opts.loss_scale));
    AutocastStats st;
    ASSIGN_OR_RETURN(TrainingGraphInfo info, BuildTrainingStep(*g, opts, args.after, &st));
    std::map<std::string, int64_t> per;
    for (const Node* n : g->nodes()) {
      auto it = n->annotations().find("precision");
      ++per[it == n->annotations().end() ? "f32" : it->second];
    }
    const bool painted =
        opts.precision != DType::kFloat32 && (args.after.empty() || args.after == "autocast");
    summary = fmt::format("precision {}; loss scaling {}; {} parameters trained, {} frozen\n",
                          args.amp.precision,
                          info.loss_scale_mode.empty() ? "none" : info.loss_scale_mode,
                          info.params.size(), info.frozen.size());
    for (const std::string& f : info.frozen) {
      auto why = info.frozen_reasons.find(f);
      summary += fmt::format("frozen {}: {}\n", f,
                             why == info.frozen_reasons.end() ? "not trained" : why->second);
    }
    std::string counts;
    for (const auto& [p, c] : per)
      counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", c, p == "-" ? "integer" : p);
    summary += "nodes: " + counts + "\n";
    jsummary["precision"] = args.amp.precision;
    jsummary["loss_scaling"] = info.loss_scale_mode;
    jsummary["nodes_by_precision"] = per;
    jsummary["params"] = info.params;
    jsummary["frozen"] = info.frozen_reasons;
    if (painted) {
      const double saved =
          st.activation_bytes_fp32 > 0
              ? 100.0 * (1.0 - double(st.activation_bytes_mixed) / double(st.activation_bytes_fp32))
              : 0.0;
      summary +=
          fmt::format("casts inserted: {} ({} folded away)\n", st.casts_inserted, st.casts_folded);
      summary += fmt::format(
          "activation bytes of forward values ({}): fp32 {}, mixed {} ({}{:.1f}%)\n",
          dims_text.empty() ? "symbolic dims = 1; set them with --dim NAME=N" : dims_text,
          Thousands(st.activation_bytes_fp32), Thousands(st.activation_bytes_mixed),
          saved >= 0 ? "-" : "+", std::abs(saved));
      jsummary["casts_inserted"] = st.casts_inserted;
      jsummary["casts_folded"] = st.casts_folded;
      jsummary["activation_bytes_fp32"] = st.activation_bytes_fp32;
      jsummary["activation_bytes_mixed"] = st.activation_bytes_mixed;
    }
    for (const std::string& w : info.warnings)
      std::fprintf(stderr, "ampc: warning: %s\n", w.c_str());
  }
  if (args.format == "text") {
    PrintOptions po;
    if (args.full_weights) po.max_inline_elements = INT64_MAX;
    out = PrintGraph(*g, po);
    if (!summary.empty()) {
      std::string commented;
      for (size_t at = 0; at < summary.size();) {
        const size_t nl = summary.find('\n', at);
        commented += "// " + summary.substr(at, nl - at) + "\n";
        at = nl + 1;
      }
      out += commented;
    }
  } else if (args.format == "json") {
    out = GraphJson(*g);
    if (args.training) {
      auto j = nlohmann::json::parse(out);
      j["summary"] = jsummary;
      out = j.dump(2) + "\n";
    }
  } else if (args.format == "dot") {
    out = GraphDot(*g);
  } else {
    if (args.output.empty()) return InvalidArgument("--format onnx needs -o FILE");
    ASSIGN_OR_RETURN(out, ExportOnnxBytes(*g));
  }
  if (args.output.empty()) {
    std::fwrite(out.data(), 1, out.size(), stdout);
    return Status::Ok();
  }
  return WriteFileAtomically(args.output, out);
}

namespace {

// Input K comes from DIR/input_K.pb (ONNX backend-test layout) or DIR/NAME.npy.
StatusOr<std::vector<Tensor>> ReadInputs(const std::string& dir,
                                         const std::vector<std::string>& names) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound(dir + ": no such folder (--inputs)");
  std::vector<Tensor> out;
  for (size_t k = 0; k < names.size(); ++k) {
    const std::string pb = dir + "/input_" + std::to_string(k) + ".pb";
    const std::string npy = dir + "/" + names[k] + ".npy";
    if (fs::exists(pb, ec)) {
      ASSIGN_OR_RETURN(Tensor t, ReadTensorFile(pb));
      out.push_back(std::move(t));
    } else if (fs::exists(npy, ec)) {
      ASSIGN_OR_RETURN(Tensor t, ReadNpy(npy));
      out.push_back(std::move(t));
    } else {
      return NotFound("no data for input '" + names[k] + "' (looked for " + pb + " and " + npy +
                      ")");
    }
  }
  return out;
}

}  // namespace

namespace {

struct Loaded {
  Plan plan;
  std::vector<std::string> input_names, output_names;
  std::vector<Tensor> inputs;
};

// A compiled .ampc plan, or an .onnx model compiled for the inputs found in `inputs_dir`.
StatusOr<Loaded> LoadForInputs(const std::string& model, const std::string& inputs_dir,
                               const std::string& precision_name) {
  ASSIGN_OR_RETURN(DType precision, ParsePrecision(precision_name));
  Loaded l;
  if (EndsWith(model, ".ampc")) {
    ASSIGN_OR_RETURN(l.plan, LoadPlan(model));
    for (const auto& io : l.plan.proto.inputs()) l.input_names.push_back(io.name());
    for (const auto& io : l.plan.proto.outputs()) l.output_names.push_back(io.name());
    ASSIGN_OR_RETURN(l.inputs, ReadInputs(inputs_dir, l.input_names));
    for (int i = 0; i < l.plan.proto.inputs_size(); ++i) {  // f32 files for a narrowed bf16 input
      auto want = DTypeFromName(l.plan.proto.buffers(l.plan.proto.inputs(i).buffer()).dtype());
      Tensor& t = l.inputs[i];
      if (want && *want != t.dtype() && IsFloat(*want) && IsFloat(t.dtype())) {
        ASSIGN_OR_RETURN(t, ToDType(t, *want, inputs_dir + ": input '" + l.input_names[i] + "'"));
      }
    }
    return l;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Graph> g, ImportOnnxFile(model));
  for (const Value* v : g->inputs()) l.input_names.push_back(v->name());
  for (const Value* v : g->outputs()) l.output_names.push_back(v->name());
  ASSIGN_OR_RETURN(l.inputs, ReadInputs(inputs_dir, l.input_names));
  auto compiled =
      CompileForInputs(std::move(g), l.inputs, precision, model, cpu::CpuBackendSupport());
  if (!compiled.ok()) return compiled.status().WithContext(model);
  l.plan = std::move(*compiled);
  return l;
}

}  // namespace

Status RunEval(const EvalArgs& args) {
  namespace fs = std::filesystem;
  ASSIGN_OR_RETURN(Loaded loaded, LoadForInputs(args.model, args.inputs, args.precision));
  Plan& plan = loaded.plan;
  const auto& output_names = loaded.output_names;
  const auto& inputs = loaded.inputs;
  // Outputs never silently replace a user's files.
  std::error_code ec;
  for (size_t k = 0; k < output_names.size() && !args.force; ++k) {
    const std::string path = args.out + "/output_" + std::to_string(k) + ".pb";
    if (fs::exists(path, ec)) {
      return InvalidArgument(path + ": already exists; pass --force to overwrite");
    }
  }
  if (!args.save_plan.empty()) {
    if (SameFile(args.model, args.save_plan)) {
      return InvalidArgument(args.save_plan + ": refusing to overwrite the input model");
    }
    RETURN_IF_ERROR(SavePlan(plan, args.save_plan));
  }
  const int64_t arena = plan.proto.arena_bytes(), unshared = plan.proto.arena_bytes_unshared();
  ASSIGN_OR_RETURN(auto exec,
                   CreateExecutor(std::move(plan), ExecutorOptions{"cpu", args.threads}));
  ASSIGN_OR_RETURN(std::vector<Tensor> outputs, exec->Run(inputs));
  fs::create_directories(args.out, ec);
  if (ec) return InvalidArgument(args.out + ": cannot create the output folder: " + ec.message());
  for (size_t k = 0; k < outputs.size(); ++k) {
    const std::string path = args.out + "/output_" + std::to_string(k) + ".pb";
    RETURN_IF_ERROR(WriteTensorFile(outputs[k], output_names[k], path));
    std::printf("%s: %s -> %s\n", output_names[k].c_str(), outputs[k].type().ToString().c_str(),
                path.c_str());
  }
  std::printf("precision %s, %d steps, arena %s bytes (%s without reuse)\n", args.precision.c_str(),
              exec->plan().steps_size(), Thousands(arena).c_str(), Thousands(unshared).c_str());
  return Status::Ok();
}

Status RunBench(const BenchArgs& args) {
  ASSIGN_OR_RETURN(Loaded loaded, LoadForInputs(args.model, args.inputs, args.precision));
  const int64_t batch =
      loaded.inputs.empty() || loaded.inputs[0].dims().empty() ? 1 : loaded.inputs[0].dims()[0];
  ASSIGN_OR_RETURN(auto exec,
                   CreateExecutor(std::move(loaded.plan), ExecutorOptions{"cpu", args.threads}));
  for (int i = 0; i < args.warmup; ++i) RETURN_IF_ERROR(exec->Run(loaded.inputs).status());
  std::vector<double> ms;
  for (int i = 0; i < args.iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    RETURN_IF_ERROR(exec->Run(loaded.inputs).status());
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  double mean = 0;
  for (double m : ms) mean += m / ms.size();
  if (args.json) {
    nlohmann::json j{{"model", args.model},
                     {"precision", args.precision},
                     {"batch", batch},
                     {"iters", args.iters},
                     {"median_ms", median},
                     {"mean_ms", mean},
                     {"samples_per_s", batch * 1000.0 / median},
                     {"arena_bytes", exec->plan().arena_bytes()}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s %s batch %lld: median %.3f ms, mean %.3f ms over %d calls, %.0f samples/s\n",
                args.model.c_str(), args.precision.c_str(), static_cast<long long>(batch), median,
                mean, args.iters, batch * 1000.0 / median);
  }
  return Status::Ok();
}

Status ParseLossScale(const std::string& s, LossScaleOptions* o) {
  if (s.empty()) return Status::Ok();
  if (s == "dynamic" || s == "none") {
    o->mode = s;
    return Status::Ok();
  }
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0' || !(v > 0) || !std::isfinite(v)) {
    return InvalidArgument("--loss-scale " + s + ": expected dynamic, none or a positive number");
  }
  o->mode = "static";
  o->init = v;
  return Status::Ok();
}

Status RunDevices() {
  std::fputs(DescribeDevices().c_str(), stdout);
  return Status::Ok();
}

}  // namespace ampc::cli
