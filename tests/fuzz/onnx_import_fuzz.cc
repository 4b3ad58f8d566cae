// ONNX importer: bytes -> ModelProto -> verified Graph, ONNX's checker included, with external
// data resolved against a model folder that holds the fixtures' data files and a symlink that
// points out of it. Two mutators: libFuzzer's byte-level one and, for half of the mutations, a
// structure-aware one that parses the ModelProto and changes one thing a hostile or broken
// exporter could get wrong (a dim, an element type, an attribute, an op name or version, an edge,
// an initializer's data or external location), so that most inputs get past the protobuf parser.
#include <onnx/onnx_pb.h>

#include <cstring>
#include <random>
#include <vector>

#include "frontend/onnx.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

namespace fs = std::filesystem;
using ampc::fuzz::ScratchDir;

// The model folder: copies of the committed external-data files (so the fixture seeds resolve),
// and `escape.bin`, a symlink to a file outside the folder that the importer must refuse.
const std::string& ModelDir() {
  static const std::string dir = [] {
    const std::string d = ScratchDir() + "/model";
    fs::create_directories(d);
    std::error_code ec;
    const fs::path fixtures(AMPC_FIXTURES_DIR);
    for (const auto& e : fs::recursive_directory_iterator(fixtures, ec)) {
      if (!e.is_regular_file() || e.path().extension() == ".onnx") continue;
      if (e.file_size() > (1 << 20)) continue;
      fs::copy_file(e.path(), d + "/" + e.path().filename().string(),
                    fs::copy_options::skip_existing, ec);
    }
    ampc::fuzz::WriteScratch("outside.bin", std::string(64, 'x'));
    fs::create_symlink(ScratchDir() + "/outside.bin", d + "/escape.bin", ec);
    return d;
  }();
  return dir;
}

const int64_t kDims[] = {0,
                         1,
                         2,
                         3,
                         -1,
                         -7,
                         64,
                         1 << 20,
                         int64_t{1} << 31,
                         int64_t{1} << 40,
                         (int64_t{1} << 40) + 1,
                         int64_t{1} << 62,
                         INT64_MAX,
                         INT64_MIN};
const char* const kOps[] = {"Add",   "MatMul", "Gemm",   "Reshape", "Conv",     "Concat",
                            "Slice", "Gather", "Expand", "Tile",    "Constant", "ConstantOfShape",
                            "Range", "Split",  "Loop",   "If",      "Scan",     "Gradient",
                            "Pad",   "Resize", "Einsum", "TopK",    "Softmax",  "NoSuchOp"};
const char* const kLocations[] = {"../outside.bin", "/etc/passwd", "escape.bin", "w.bin",   "",
                                  "sub/../w.bin",   ".",           "model",      "w.bin\0x"};

int64_t SomeDim(std::mt19937_64& rng) {
  return rng() % 2 ? kDims[rng() % std::size(kDims)] : static_cast<int64_t>(rng() % 300);
}

void MutateDims(onnx::GraphProto& g, std::mt19937_64& rng) {
  if (g.initializer_size() && rng() % 2) {
    auto& t = *g.mutable_initializer(rng() % g.initializer_size());
    if (t.dims_size() && rng() % 3)
      t.set_dims(rng() % t.dims_size(), SomeDim(rng));
    else if (rng() % 2)
      t.add_dims(SomeDim(rng));
    else
      t.clear_dims();
    return;
  }
  auto* vis = rng() % 2 ? g.mutable_input() : g.mutable_value_info();
  if (vis->empty()) vis = g.mutable_output();
  if (vis->empty()) return;
  auto* shape = (*vis)[rng() % vis->size()].mutable_type()->mutable_tensor_type()->mutable_shape();
  if (shape->dim_size() && rng() % 3) {
    auto* d = shape->mutable_dim(rng() % shape->dim_size());
    if (rng() % 4)
      d->set_dim_value(SomeDim(rng));
    else
      d->set_dim_param(rng() % 2 ? "batch" : "");
  } else {
    shape->add_dim()->set_dim_value(SomeDim(rng));
  }
}

void MutateType(onnx::GraphProto& g, std::mt19937_64& rng) {
  const int type = static_cast<int>(rng() % 26) - (rng() % 8 == 0 ? 30 : 0);
  if (g.initializer_size() && rng() % 2) {
    g.mutable_initializer(rng() % g.initializer_size())->set_data_type(type);
  } else if (g.input_size()) {
    g.mutable_input(rng() % g.input_size())
        ->mutable_type()
        ->mutable_tensor_type()
        ->set_elem_type(type);
  }
}

void MutateAttribute(onnx::NodeProto& n, std::mt19937_64& rng, int depth);

// A graph attribute nested `depth` deep (If/Loop bodies; ampc imports none, but must refuse them
// without recursing without end).
void AddSubgraph(onnx::NodeProto& n, std::mt19937_64& rng, int depth) {
  auto* a = n.add_attribute();
  a->set_name(rng() % 2 ? "then_branch" : "body");
  a->set_type(onnx::AttributeProto::GRAPH);
  onnx::GraphProto* g = a->mutable_g();
  for (int i = 0; i < depth; ++i) {
    g->set_name("sub" + std::to_string(i));
    auto* inner = g->add_node();
    inner->set_op_type("If");
    auto* ia = inner->add_attribute();
    ia->set_name("then_branch");
    ia->set_type(onnx::AttributeProto::GRAPH);
    g = ia->mutable_g();
  }
}

void MutateAttribute(onnx::NodeProto& n, std::mt19937_64& rng, int depth) {
  if (!n.attribute_size() || rng() % 5 == 0) {
    if (rng() % 3 == 0) return AddSubgraph(n, rng, 1 + static_cast<int>(rng() % 40));
    auto* a = n.add_attribute();
    const char* names[] = {"axis", "perm", "to", "value", "pads", "kernel_shape", "alpha", "mode"};
    a->set_name(names[rng() % std::size(names)]);
    a->set_type(static_cast<onnx::AttributeProto::AttributeType>(rng() % 15));
    a->set_i(SomeDim(rng));
    return;
  }
  auto& a = *n.mutable_attribute(rng() % n.attribute_size());
  switch (rng() % 7) {
    case 0:
      a.set_i(SomeDim(rng));
      break;
    case 1:
      a.add_ints(SomeDim(rng));
      break;
    case 2:
      if (a.ints_size()) a.set_ints(rng() % a.ints_size(), SomeDim(rng));
      break;
    case 3:
      a.set_type(static_cast<onnx::AttributeProto::AttributeType>(rng() % 15));
      break;
    case 4:
      a.set_f(rng() % 2 ? 1e30f : -0.0f);
      break;
    case 5:
      a.set_s(std::string(rng() % 64, 'a'));
      break;
    default:
      if (a.has_t()) a.mutable_t()->add_dims(SomeDim(rng));
      break;
  }
}

void MutateNode(onnx::GraphProto& g, std::mt19937_64& rng) {
  if (!g.node_size()) return;
  auto& n = *g.mutable_node(rng() % g.node_size());
  switch (rng() % 8) {
    case 0:
      n.set_op_type(kOps[rng() % std::size(kOps)]);
      break;
    case 1:
      n.set_domain(rng() % 2 ? "com.microsoft" : "ai.onnx.preview.training");
      break;
    case 2: {  // an edge: an input rewired to another value, or dropped, or made up
      if (!n.input_size()) break;
      const auto& other = g.node(rng() % g.node_size());
      std::string v = other.output_size() ? other.output(0) : "";
      if (rng() % 4 == 0) v = rng() % 2 ? "" : "undefined_value";
      n.set_input(rng() % n.input_size(), v);
      break;
    }
    case 3:
      if (n.output_size())
        n.set_output(rng() % n.output_size(), g.node(0).input_size() ? g.node(0).input(0) : "");
      break;
    case 4:
      if (rng() % 2)
        n.add_input(g.input_size() ? g.input(0).name() : "x");
      else if (n.input_size())
        n.mutable_input()->RemoveLast();
      break;
    case 5:
      *g.add_node() = n;  // a duplicate: two producers of the same value
      break;
    case 6:
      g.mutable_node()->SwapElements(rng() % g.node_size(), rng() % g.node_size());
      break;
    default:
      MutateAttribute(n, rng, 0);
      break;
  }
}

void MutateData(onnx::GraphProto& g, std::mt19937_64& rng) {
  if (!g.initializer_size()) return;
  auto& t = *g.mutable_initializer(rng() % g.initializer_size());
  switch (rng() % 4) {
    case 0:
      if (t.has_raw_data()) t.mutable_raw_data()->resize(rng() % (t.raw_data().size() + 9));
      break;
    case 1: {
      t.set_data_location(onnx::TensorProto::EXTERNAL);
      t.clear_external_data();
      auto* loc = t.add_external_data();
      loc->set_key("location");
      loc->set_value(kLocations[rng() % std::size(kLocations)]);
      break;
    }
    case 2: {
      auto* kv = t.add_external_data();
      kv->set_key(rng() % 2 ? "offset" : "length");
      kv->set_value(std::to_string(SomeDim(rng)));
      break;
    }
    default:
      t.add_float_data(1.0f);
      break;
  }
}

void MutateModel(onnx::ModelProto& m, std::mt19937_64& rng) {
  onnx::GraphProto& g = *m.mutable_graph();
  switch (rng() % 7) {
    case 0:
      return MutateDims(g, rng);
    case 1:
      return MutateType(g, rng);
    case 2:
    case 3:
      return MutateNode(g, rng);
    case 4:
      return MutateData(g, rng);
    case 5:
      if (m.opset_import_size()) m.mutable_opset_import(0)->set_version(rng() % 30);
      return;
    default:
      if (rng() % 2)
        m.set_ir_version(rng() % 12);
      else if (g.node_size())
        MutateAttribute(*g.mutable_node(rng() % g.node_size()), rng, 0);
      return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ampc::fuzz::UseFuzzLimits();
  ModelDir();
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  std::mt19937_64 rng(seed);
  onnx::ModelProto m;
  if (rng() % 2 == 0 || !m.ParseFromArray(data, static_cast<int>(size)) || !m.has_graph())
    return LLVMFuzzerMutate(data, size, max_size);
  MutateModel(m, rng);
  std::string out;
  if (!m.SerializeToString(&out) || out.size() > max_size)
    return LLVMFuzzerMutate(data, size, max_size);
  std::memcpy(data, out.data(), out.size());
  return out.size();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto g = ampc::ImportOnnxBytes(std::string_view(reinterpret_cast<const char*>(data), size),
                                 ModelDir(), "fuzz.onnx");
  (void)g;
  return 0;
}
