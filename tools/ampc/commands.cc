#include "tools/ampc/commands.h"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "frontend/onnx.h"
#include "ir/file_io.h"
#include "ir/text.h"
#include "runtime/device_info.h"

namespace ampc::cli {
namespace {

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
  for (const Value* v : g.inputs()) s += fmt::format("  {:<24} {}\n", v->name(), v->type().ToString());
  s += "outputs:\n";
  for (const Value* v : g.outputs()) s += fmt::format("  {:<24} {}\n", v->name(), v->type().ToString());
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
    case AttrKind::kInt: return a.i();
    case AttrKind::kFloat: return a.f();
    case AttrKind::kString: return a.s();
    case AttrKind::kInts: return a.ints();
    case AttrKind::kFloats: return a.floats();
    case AttrKind::kStrings: return a.strings();
    case AttrKind::kTensor: return {{"tensor", a.t().type().ToString()}};
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
    j["initializers"].push_back({{"name", v->name()}, {"type", v->type().ToString()},
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
  std::string s = "digraph " + DotQuote(g.name()) + " {\n  rankdir=TB;\n  node [fontname=\"monospace\"];\n";
  std::map<const Node*, int> id;
  for (const Node* n : g.nodes()) id[n] = static_cast<int>(id.size());
  for (const Value* v : g.inputs()) {
    s += "  " + DotQuote("in:" + v->name()) + " [shape=ellipse, label=" +
         DotQuote(v->name() + "\n" + v->type().ToString()) + "];\n";
  }
  for (const Node* n : g.nodes()) {
    std::string label = OpName(*n) + "\n" + n->name();
    for (const auto& [k, v] : n->annotations()) label += "\n" + k + "=" + v;
    s += fmt::format("  n{} [shape=box, label={}];\n", id[n], DotQuote(label));
    for (const Value* in : n->inputs()) {
      if (!in || in->kind() == ValueKind::kInitializer) continue;
      const std::string from = in->kind() == ValueKind::kInput
                                   ? DotQuote("in:" + in->name())
                                   : fmt::format("n{}", id[in->producer()]);
      s += fmt::format("  {} -> n{} [label={}];\n", from, id[n], DotQuote(in->type().ToString()));
    }
  }
  for (const Value* v : g.outputs()) {
    s += "  " + DotQuote("out:" + v->name()) + " [shape=ellipse, label=" +
         DotQuote(v->name() + "\n" + v->type().ToString()) + "];\n";
    if (v->producer()) s += fmt::format("  n{} -> {};\n", id[v->producer()], DotQuote("out:" + v->name()));
  }
  return s + "}\n";
}

bool SamePath(const std::string& a, const std::string& b) {
  std::error_code ec;
  return std::filesystem::exists(b, ec) && std::filesystem::equivalent(a, b, ec);
}

}  // namespace

Status RunCompile(const CompileArgs& args) {
  ASSIGN_OR_RETURN(std::unique_ptr<Graph> g, ImportOnnxFile(args.model));
  std::fputs(Summary(*g, args.model).c_str(), stdout);
  return Status::Ok();
}

Status RunInspect(const InspectArgs& args) {
  if (!args.output.empty() && SamePath(args.model, args.output)) {
    return InvalidArgument(args.output + ": refusing to overwrite the input model with -o");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Graph> g, ImportOnnxFile(args.model));
  std::string out;
  if (args.format == "text") {
    PrintOptions po;
    if (args.full_weights) po.max_inline_elements = INT64_MAX;
    out = PrintGraph(*g, po);
  } else if (args.format == "json") {
    out = GraphJson(*g);
  } else if (args.format == "dot") {
    out = GraphDot(*g);
  } else {
    return InvalidArgument("--format " + args.format + ": expected text, json or dot");
  }
  if (args.output.empty()) {
    std::fwrite(out.data(), 1, out.size(), stdout);
    return Status::Ok();
  }
  return WriteFileAtomically(args.output, out);
}

Status RunDevices() {
  std::fputs(DescribeDevices().c_str(), stdout);
  return Status::Ok();
}

}  // namespace ampc::cli
