#include "codegen/lower.h"

#include <climits>
#include <unordered_map>
#include <unordered_set>

#include "codegen/memory_plan.h"
#include "ir/file_io.h"
#include "ir/op_registry.h"

namespace ampc {
namespace {

void SetTensor(const Tensor& t, plan::TensorData* out) {
  out->set_dtype(std::string(DTypeName(t.dtype())));
  for (int64_t d : t.dims()) out->add_dims(d);
  out->set_data(std::string(t.bytes().begin(), t.bytes().end()));
}

StatusOr<Tensor> TensorFromPlan(const plan::TensorData& t) {
  auto dt = DTypeFromName(t.dtype());
  if (!dt) return InvalidArgument("unknown dtype '" + t.dtype() + "'");
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  Tensor out(*dt, dims, std::vector<uint8_t>(t.data().begin(), t.data().end()));
  if (static_cast<int64_t>(t.data().size()) != out.NumElements() * DTypeSize(*dt)) {
    return InvalidArgument("tensor data size disagrees with its shape");
  }
  return out;
}

}  // namespace

void AttributeToPlan(const std::string& name, const Attribute& a, plan::Attr* out) {
  out->set_name(name);
  switch (a.kind()) {
    case AttrKind::kInt: out->set_i(a.i()); break;
    case AttrKind::kFloat: out->set_f(a.f()); break;
    case AttrKind::kString: out->set_s(a.s()); break;
    case AttrKind::kTensor: SetTensor(a.t(), out->mutable_t()); break;
    case AttrKind::kInts:
      for (int64_t v : a.ints()) out->mutable_ints()->add_v(v);
      break;
    case AttrKind::kFloats:
      for (float v : a.floats()) out->mutable_floats()->add_v(v);
      break;
    case AttrKind::kStrings:
      for (const auto& v : a.strings()) out->mutable_strings()->add_v(v);
      break;
  }
}

StatusOr<Attribute> AttributeFromPlan(const plan::Attr& a) {
  switch (a.value_case()) {
    case plan::Attr::kI: return Attribute(static_cast<int64_t>(a.i()));
    case plan::Attr::kF: return Attribute(a.f());
    case plan::Attr::kS: return Attribute(a.s());
    case plan::Attr::kT: {
      ASSIGN_OR_RETURN(Tensor t, TensorFromPlan(a.t()));
      return Attribute(std::move(t));
    }
    case plan::Attr::kInts:
      return Attribute(std::vector<int64_t>(a.ints().v().begin(), a.ints().v().end()));
    case plan::Attr::kFloats:
      return Attribute(std::vector<float>(a.floats().v().begin(), a.floats().v().end()));
    case plan::Attr::kStrings:
      return Attribute(std::vector<std::string>(a.strings().v().begin(), a.strings().v().end()));
    case plan::Attr::VALUE_NOT_SET: break;
  }
  return InvalidArgument("attribute '" + a.name() + "' has no value");
}

StatusOr<plan::Plan> LowerToPlan(const Graph& g, const LowerOptions& opts) {
  plan::Plan p;
  p.set_format_version(kPlanFormatVersion);
  p.set_producer("ampc 0.1.0");
  p.set_source(opts.source);
  p.set_precision(opts.precision);
  std::unordered_map<const Value*, int> id;
  std::vector<LiveRange> ranges;  // for ARENA buffers, indexed like arena_ids
  std::vector<int> arena_ids;
  std::unordered_map<int, size_t> range_of;

  auto add_buffer = [&](const Value* v, plan::Buffer::Kind kind, int first) -> StatusOr<int> {
    const TensorType& t = v->type();
    auto n = t.NumElements();
    if (!n) {
      return InvalidArgument("value '" + v->name() + "' has no static shape (" + t.ToString() +
                             "); bind the inputs first");
    }
    plan::Buffer* b = p.add_buffers();
    const int bid = p.buffers_size() - 1;
    b->set_id(bid);
    b->set_name(v->name());
    b->set_dtype(std::string(DTypeName(t.dtype)));
    for (const Dim& d : t.dims) b->add_dims(d.value());
    b->set_kind(kind);
    b->set_size_bytes(*n * DTypeSize(t.dtype));
    id[v] = bid;
    if (kind == plan::Buffer::ARENA) {
      range_of[bid] = ranges.size();
      ranges.push_back({b->size_bytes(), first, first});
      arena_ids.push_back(bid);
    }
    return bid;
  };

  for (const Value* v : g.inputs()) {
    ASSIGN_OR_RETURN(int bid, add_buffer(v, plan::Buffer::ARENA, -1));
    auto* io = p.add_inputs();
    io->set_name(v->name());
    io->set_buffer(bid);
    if (v->known_ints()) {
      auto* s = p.add_specializations();
      s->set_input(v->name());
      for (const Dim& d : *v->known_ints()) s->add_values(d.value());
    }
  }
  std::unordered_set<const Value*> states;
  for (const StateUpdate& u : g.state_updates()) states.insert(u.state);
  for (const Value* v : g.initializers()) {
    if (v->initializer()->elided()) {
      return InvalidArgument("initializer '" + v->name() + "' has elided data");
    }
    const auto kind = states.count(v) ? plan::Buffer::STATE : plan::Buffer::CONSTANT;
    ASSIGN_OR_RETURN(int bid, add_buffer(v, kind, -1));
    const auto& bytes = v->initializer()->bytes();
    p.mutable_buffers(bid)->set_data(std::string(bytes.begin(), bytes.end()));
  }
  // In-place state updates: a state's new value may be written straight into the state buffer
  // when its producer reads each element before writing it (the ops below), nothing else reads
  // the new value, and no later node reads the old one. This saves the copy after each call
  // and the arena space (for a training step: parameters, moments, running statistics).
  std::unordered_map<const Value*, const Value*> in_place;  // next value -> state
  {
    std::unordered_map<const Node*, size_t> index;
    for (const Node* n : g.nodes()) index.emplace(n, index.size());
    auto aliases = [](const Node& n) {
      const std::string& d = n.domain();
      const std::string& op = n.op_type();
      if (d == kAmpcDomain) return op == "SGD" || op == "Adam" || op == "UpdateLossScale" || op == "BatchNormalization";
      if (d == "ai.onnx.preview.training") return op == "Adagrad" || op == "Momentum" || op == "Adam";
      return d.empty() && op == "Add";
    };
    std::unordered_set<const Value*> outputs(g.outputs().begin(), g.outputs().end());
    for (const StateUpdate& u : g.state_updates()) {
      const Node* p = u.next->producer();
      if (!p || !aliases(*p) || !u.next->uses().empty() || outputs.count(u.next) ||
          u.next->type() != u.state->type()) {
        continue;
      }
      bool later_reader = false;
      for (const Use& use : u.state->uses()) later_reader = later_reader || index.at(use.user) > index.at(p);
      if (!later_reader) in_place[u.next] = u.state;
    }
  }
  int step = 0;
  for (const Node* n : g.nodes()) {
    // A Constant with a tensor value becomes constant data instead of a step.
    const Attribute* value = n->attr("value");
    if (n->op_type() == "Constant" && n->domain().empty() && value &&
        value->kind() == AttrKind::kTensor && n->output(0)) {
      ASSIGN_OR_RETURN(int bid, add_buffer(n->output(0), plan::Buffer::CONSTANT, -1));
      const auto& bytes = value->t().bytes();
      p.mutable_buffers(bid)->set_data(std::string(bytes.begin(), bytes.end()));
      continue;
    }
    plan::Step* s = p.add_steps();
    s->set_op(n->op_type());
    s->set_domain(n->domain());
    s->set_name(n->name());
    for (const Value* in : n->inputs()) {
      if (!in) {
        s->add_inputs(-1);
        continue;
      }
      const int bid = id.at(in);
      s->add_inputs(bid);
      if (range_of.count(bid)) ranges[range_of[bid]].last = step;
    }
    for (const Value* out : n->outputs()) {
      if (!out) {
        s->add_outputs(-1);
        continue;
      }
      if (auto it = in_place.find(out); it != in_place.end()) {
        id[out] = id.at(it->second);
        s->add_outputs(id[out]);
        continue;
      }
      ASSIGN_OR_RETURN(int bid, add_buffer(out, plan::Buffer::ARENA, step));
      s->add_outputs(bid);
    }
    for (const auto& [k, a] : n->attrs()) AttributeToPlan(k, a, s->add_attrs());
    ++step;
  }
  for (const Value* v : g.outputs()) {
    const int bid = id.at(v);
    if (range_of.count(bid)) ranges[range_of[bid]].last = INT_MAX;
    auto* io = p.add_outputs();
    io->set_name(v->name());
    io->set_buffer(bid);
  }
  for (const StateUpdate& u : g.state_updates()) {
    const int from = id.at(u.next);
    if (range_of.count(from)) ranges[range_of[from]].last = INT_MAX;
    auto* su = p.add_state_updates();
    su->set_state(id.at(u.state));
    su->set_from(from);
  }
  int64_t arena = 0, unshared = 0;
  std::vector<int64_t> offsets = AssignOffsets(ranges, &arena);
  for (size_t i = 0; i < arena_ids.size(); ++i) {
    p.mutable_buffers(arena_ids[i])->set_offset(offsets[i]);
    unshared += ranges[i].size_bytes;
  }
  p.set_arena_bytes(arena);
  p.set_arena_bytes_unshared(unshared);
  return p;
}

Status SavePlan(const plan::Plan& p, const std::string& path) {
  std::string bytes;
  if (!p.SerializeToString(&bytes)) return Internal("the plan is too large to serialise (2 GiB)");
  return WriteFileAtomically(path, bytes);
}

StatusOr<plan::Plan> LoadPlan(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  plan::Plan p;
  if (bytes.empty() || !p.ParseFromString(bytes)) {
    return InvalidArgument(path + ": not an ampc plan (corrupt or truncated file)");
  }
  if (p.format_version() == 0) return InvalidArgument(path + ": not an ampc plan (no format version)");
  if (p.format_version() > kPlanFormatVersion) {
    return Unimplemented(path + ": plan format version " + std::to_string(p.format_version()) +
                         " is newer than this ampc supports (" + std::to_string(kPlanFormatVersion) +
                         "); recompile the model");
  }
  RETURN_IF_ERROR(VerifyPlanTypes(p).WithContext(path));
  if (p.has_training()) {
    RETURN_IF_ERROR(VerifyPlanTypes(p.training().eval()).WithContext(path + " (evaluation pass)"));
  }
  return p;
}

Status VerifyPlanTypes(const plan::Plan& p) {
  Graph g;
  const int nbuf = p.buffers_size();
  std::vector<Value*> values(nbuf, nullptr);
  auto buffer_type = [&](const plan::Buffer& b) -> StatusOr<TensorType> {
    auto dt = DTypeFromName(b.dtype());
    if (!dt) return InvalidArgument("buffer '" + b.name() + "' has unknown dtype '" + b.dtype() + "'");
    std::vector<Dim> dims;
    for (int64_t d : b.dims()) {
      if (d < 0 || d > kMaxDim) return InvalidArgument("buffer '" + b.name() + "' has a bad dimension");
      dims.emplace_back(d);
    }
    return TensorType(*dt, std::move(dims));
  };
  auto valid = [&](int id) { return id >= 0 && id < nbuf; };
  for (const auto& io : p.inputs()) {
    if (!valid(io.buffer())) return InvalidArgument("input '" + io.name() + "' names no buffer");
    const plan::Buffer& b = p.buffers(io.buffer());
    ASSIGN_OR_RETURN(TensorType t, buffer_type(b));
    ASSIGN_OR_RETURN(Value * v, g.AddInput("b" + std::to_string(io.buffer()), t));
    values[io.buffer()] = v;
    for (const auto& s : p.specializations()) {
      if (s.input() == io.name()) v->set_known_ints(std::vector<Dim>(s.values().begin(), s.values().end()));
    }
  }
  for (int i = 0; i < nbuf; ++i) {
    const plan::Buffer& b = p.buffers(i);
    if (b.kind() == plan::Buffer::ARENA) continue;
    ASSIGN_OR_RETURN(TensorType t, buffer_type(b));
    std::vector<int64_t> dims(b.dims().begin(), b.dims().end());
    Tensor data(t.dtype, dims, std::vector<uint8_t>(b.data().begin(), b.data().end()));
    if (static_cast<int64_t>(b.data().size()) != data.NumElements() * DTypeSize(t.dtype)) {
      return InvalidArgument("buffer '" + b.name() + "' has data of the wrong size");
    }
    ASSIGN_OR_RETURN(Value * v, g.AddInitializer("b" + std::to_string(i), std::move(data)));
    const Tensor* init = v->initializer();
    if (init->dims().size() <= 1 && init->NumElements() <= 64 && IsInteger(init->dtype())) {
      auto ints = init->AsInt64s();
      v->set_known_ints(std::vector<Dim>(ints->begin(), ints->end()));
    }
    values[i] = v;
  }
  for (int k = 0; k < p.steps_size(); ++k) {
    const plan::Step& s = p.steps(k);
    const std::string what = "step " + std::to_string(k) + " ('" + s.name() + "', " + s.op() + ")";
    std::vector<Value*> inputs;
    for (int id : s.inputs()) {
      if (id == -1) {
        inputs.push_back(nullptr);
        continue;
      }
      if (!valid(id) || !values[id]) return InvalidArgument(what + ": reads an undefined buffer");
      inputs.push_back(values[id]);
    }
    std::vector<std::string> outputs;
    for (int id : s.outputs()) {
      // An output is a fresh arena buffer, or a state written in place (a new version of it).
      const bool state = id != -1 && valid(id) && p.buffers(id).kind() == plan::Buffer::STATE;
      if (id != -1 && !state && (!valid(id) || values[id] || p.buffers(id).kind() != plan::Buffer::ARENA)) {
        return InvalidArgument(what + ": writes buffer " + std::to_string(id) +
                               ", which is not a fresh arena buffer");
      }
      outputs.push_back(id == -1 ? "" : state ? "b" + std::to_string(id) + "_s" + std::to_string(k)
                                              : "b" + std::to_string(id));
    }
    AttributeMap attrs;
    for (const plan::Attr& a : s.attrs()) {
      ASSIGN_OR_RETURN(Attribute attr, AttributeFromPlan(a));
      attrs[a.name()] = std::move(attr);
    }
    ASSIGN_OR_RETURN(Node * n, g.AddNode(s.op(), s.domain(), s.name(), inputs, outputs, std::move(attrs)));
    RETURN_IF_ERROR(InferNode(*n).WithContext(what));
    for (int j = 0; j < n->num_outputs(); ++j) {
      if (!n->output(j)) continue;
      const int id = s.outputs(j);
      ASSIGN_OR_RETURN(TensorType declared, buffer_type(p.buffers(id)));
      if (n->output(j)->type() != declared) {
        return InvalidArgument(what + ": buffer '" + p.buffers(id).name() + "' is " +
                               declared.ToString() + " but the op produces " +
                               n->output(j)->type().ToString());
      }
      values[id] = n->output(j);
    }
  }
  for (const plan::StateUpdate& u : p.state_updates()) {
    if (!valid(u.state()) || !valid(u.from()) || p.buffers(u.state()).kind() != plan::Buffer::STATE ||
        !values[u.from()]) {
      return InvalidArgument("a state update refers to a missing or non-state buffer");
    }
    if (values[u.state()]->type() != values[u.from()]->type()) {
      return InvalidArgument("state '" + p.buffers(u.state()).name() + "' and its update '" +
                             p.buffers(u.from()).name() + "' differ in type");
    }
  }
  return Status::Ok();
}

}  // namespace ampc
