#include "codegen/lower.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "codegen/fused_kernel.h"
#include "codegen/fusion.h"
#include "codegen/memory_plan.h"
#include "ir/op_registry.h"

namespace ampc {
namespace {

// The backend must run the node's op, in each floating-point type it reads or writes.
Status CheckSupported(const Node& n, const BackendSupport& s) {
  const std::string target = TargetName(s.target());
  if (!s.SupportsOp(n.domain(), n.op_type())) {
    return Unimplemented(n.Describe() + ": the " + target + " target has no kernel for " +
                         (n.domain().empty() ? "" : n.domain() + "::") + n.op_type());
  }
  for (const auto* list : {&n.inputs(), &n.outputs()}) {
    for (const Value* v : *list) {
      if (v && IsFloat(v->dtype()) && !s.SupportsFloat(n.domain(), n.op_type(), v->dtype())) {
        return Unimplemented(n.Describe() + ": the " + target + " target does not run " +
                             n.op_type() + " in " + std::string(DTypeName(v->dtype())) +
                             " (value '" + v->name() + "')");
      }
    }
  }
  return Status::Ok();
}

// Calls f(i) for i in [0, n) on up to `threads` threads (0: one per hardware thread).
template <typename F>
void ParallelForEach(size_t n, int threads, const F& f) {
  size_t t = threads > 0 ? threads : std::max(1u, std::thread::hardware_concurrency());
  t = std::min(t, n);
  if (t <= 1) {
    for (size_t i = 0; i < n; ++i) f(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (size_t k = 0; k < t; ++k) {
    pool.emplace_back([&] {
      for (size_t i; (i = next++) < n;) f(i);
    });
  }
  for (auto& th : pool) th.join();
}

}  // namespace

StatusOr<Plan> LowerToPlan(const Graph& g, const LowerOptions& opts) {
  AMPC_CHECK(opts.support != nullptr);
  plan::PlanProto p;
  PlanDataBuilder data;
  p.set_format_version(kPlanFormatVersion);
  p.set_producer("ampc 0.1.0");
  p.set_source(opts.source);
  p.set_precision(PrecisionName(opts.precision));
  TargetToPlan(opts.support->target(), p.mutable_target());
  p.set_alignment(kArenaAlignment);
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
    p.mutable_buffers(bid)->set_data_offset(
        data.Append(bytes.data(), static_cast<int64_t>(bytes.size())));
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
      if (d == kAmpcDomain)
        return op == "SGD" || op == "Adam" || op == "UpdateLossScale" || op == "BatchNormalization";
      if (d == "ai.onnx.preview.training")
        return op == "Adagrad" || op == "Momentum" || op == "Adam";
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
      for (const Use& use : u.state->uses())
        later_reader = later_reader || index.at(use.user) > index.at(p);
      if (!later_reader) in_place[u.next] = u.state;
    }
  }
  // Generated kernels: one per fusion group (identical groups share one), built before the
  // steps so that a group whose kernel cannot be built is lowered per-op instead.
  std::vector<FusionGroup> groups;
  std::unordered_map<const Node*, int> group_of;
  std::vector<int> group_kernel;             // per group: index into p.kernels, or -1 (per-op)
  std::unordered_set<size_t> fallback_only;  // ranges of values only a fallback computes
  if (opts.kernels.enabled) {
    ASSIGN_OR_RETURN(groups, CollectFusionGroups(g));
    std::vector<FusedKernel> specs;
    std::unordered_map<std::string, int> unique;  // Key -> index into specs
    std::vector<int> spec_of(groups.size(), -1);
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      for (const Node* n : groups[gi].nodes) group_of[n] = static_cast<int>(gi);
      auto k = BuildFusedKernel(groups[gi].nodes, groups[gi].inputs, groups[gi].outputs);
      // A node kernel whose template needs an output the graph drops runs per-op.
      if (!k.ok() && groups[gi].nodes.size() == 1 && IsNodeKernel(*groups[gi].nodes[0])) continue;
      if (!k.ok()) return k.status().WithContext("fusion group " + std::to_string(gi));
      if (k->NumArgs() > kMaxKernelArgs) continue;  // per-op
      if (opts.kernels.gpu_grain || opts.support->target().kind == "cuda") ApplyGpuGrain(*k);
      auto [it, fresh] = unique.emplace(k->Key(), static_cast<int>(specs.size()));
      if (fresh) specs.push_back(std::move(*k));
      spec_of[gi] = it->second;
    }
    std::vector<StatusOr<plan::Kernel>> built(specs.size(), Internal("not built"));
    ParallelForEach(specs.size(), opts.kernels.threads, [&](size_t i) {
      built[i] = BuildKernel(specs[i], opts.support->target(), opts.kernels, opts.kernel_stats);
    });
    std::vector<int> kernel_of_spec(specs.size(), -1);
    for (size_t i = 0; i < specs.size(); ++i) {
      if (!built[i].ok()) {
        if (opts.kernels.required) return built[i].status().WithContext("generating kernels");
        if (opts.warnings) {
          opts.warnings->push_back("a fusion group runs per-op: " + built[i].status().message());
        }
        continue;
      }
      kernel_of_spec[i] = p.kernels_size();
      *p.add_kernels() = std::move(*built[i]);
    }
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      group_kernel.push_back(spec_of[gi] < 0 ? -1 : kernel_of_spec[spec_of[gi]]);
    }
  }
  // One per-op step of node n, its outputs given buffers (fresh arena buffers from `step` on, or
  // states written in place).
  auto op_step = [&](const Node* n, int step, plan::Step* s) -> Status {
    RETURN_IF_ERROR(CheckSupported(*n, *opts.support));
    s->mutable_op()->set_op(n->op_type());
    s->mutable_op()->set_domain(n->domain());
    s->set_name(n->name());
    for (const Value* in : n->inputs()) {
      if (!in) {
        s->add_inputs(-1);
        continue;
      }
      const int bid = id.at(in);
      s->add_inputs(bid);
      if (range_of.count(bid))
        ranges[range_of[bid]].last = std::max(ranges[range_of[bid]].last, step);
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
    for (const auto& [k, a] : n->attrs()) AttributeToPlan(k, a, s->mutable_op()->add_attrs());
    return Status::Ok();
  };
  // The CUDA runtime may fold a group that starts with a Relu, a tanh Gelu or a tanh GeluGrad of a
  // GEMM's output into that GEMM as a cuBLASLt epilogue (runtime/cuda/step_plan.h's
  // FoldGemmEpilogues), which then writes the group's outputs when the GEMM runs. Their live
  // ranges start at the GEMM, so that the planner gives them no bytes of the GEMM's inputs or of
  // anything live in between.
  const bool cuda = opts.support->target().kind == "cuda";
  std::unordered_map<const Node*, int> gemm_step;
  auto FoldableFromGemm = [&](const FusionGroup& grp, int at) {
    const Node* first = grp.nodes.front();
    const bool tanh = first->attr_string("approximate", "none") == "tanh";
    const bool foldable =
        first->domain().empty()
            ? first->op_type() == "Relu" || (first->op_type() == "Gelu" && tanh)
            : first->domain() == kAmpcDomain && first->op_type() == "GeluGrad" && tanh;
    const Value* x = first->num_inputs() > 0 ? first->input(0) : nullptr;
    if (!foldable || !x || !x->producer()) return;
    auto it = gemm_step.find(x->producer());
    if (it == gemm_step.end()) return;
    for (const Value* out : grp.outputs) {
      auto r = range_of.find(id.at(out));
      if (r != range_of.end() && ranges[r->second].first == at)
        ranges[r->second].first = it->second;
    }
  };
  int step = 0;
  for (const Node* n : g.nodes()) {
    // A Constant with a tensor value becomes constant data instead of a step.
    const Attribute* value = n->attr("value");
    if (n->op_type() == "Constant" && n->domain().empty() && value &&
        value->kind() == AttrKind::kTensor && n->output(0)) {
      ASSIGN_OR_RETURN(int bid, add_buffer(n->output(0), plan::Buffer::CONSTANT, -1));
      const auto& bytes = value->t().bytes();
      p.mutable_buffers(bid)->set_data_offset(
          data.Append(bytes.data(), static_cast<int64_t>(bytes.size())));
      continue;
    }
    auto gi = group_of.find(n);
    if (gi != group_of.end() && group_kernel[gi->second] >= 0) {
      const FusionGroup& grp = groups[gi->second];
      if (n != grp.nodes.back()) continue;  // the group's kernel runs where its last node stood
      // The fallback: every node per-op, intermediate values in arena buffers live only here.
      plan::FusionGroup* fg = p.add_fusion_groups();
      fg->set_kernel(group_kernel[gi->second]);
      const std::unordered_set<const Value*> leaving(grp.outputs.begin(), grp.outputs.end());
      for (const Node* m : grp.nodes) {
        fg->add_nodes(m->name());
        RETURN_IF_ERROR(op_step(m, step, fg->add_fallback()));
        for (const Value* out : m->outputs()) {
          if (out && !leaving.count(out) && range_of.count(id.at(out)))
            fallback_only.insert(range_of.at(id.at(out)));
        }
      }
      if (cuda) FoldableFromGemm(grp, step);
      plan::Step* s = p.add_steps();
      s->mutable_kernel()->set_kernel(group_kernel[gi->second]);
      s->set_name(grp.nodes.size() == 1 ? n->name()
                                        : n->name() + "+" + std::to_string(grp.nodes.size() - 1));
      s->set_fusion_group(p.fusion_groups_size());
      for (const Value* in : grp.inputs) s->add_inputs(id.at(in));
      for (const Value* out : grp.outputs) s->add_outputs(id.at(out));
      ++step;
      continue;
    }
    RETURN_IF_ERROR(op_step(n, step, p.add_steps()));
    if (n->domain().empty() ? (n->op_type() == "MatMul" || n->op_type() == "Gemm")
                            : (n->domain() == kAmpcDomain && n->op_type() == "MatMul")) {
      gemm_step[n] = step;
    }
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
    // An optimizer's half copy of its parameter (its last output, attribute half_copy).
    const Node* opt = u.next->producer();
    if (opt && opt->domain() == kAmpcDomain &&
        (opt->op_type() == "SGD" || opt->op_type() == "Adam") &&
        opt->attr_int("half_copy", 0) != 0 && u.next == opt->outputs().back() && opt->input(2)) {
      p.mutable_buffers(id.at(u.state))->set_half_copy_of(id.at(opt->input(2)) + 1);
    }
  }
  // Two regions: the buffers the steps use, then the intermediates that only a fusion group's
  // per-op fallback uses (each live during its group's step alone, so one group's worth). An
  // executor that never runs a fallback (the CUDA runtime) allocates the first region only:
  // GPT-2 small's attention-softmax groups alone hold 2 x 384 MB of fallback intermediates.
  std::vector<LiveRange> main_ranges, fallback_ranges;
  for (size_t i = 0; i < ranges.size(); ++i)
    (fallback_only.count(i) ? fallback_ranges : main_ranges).push_back(ranges[i]);
  int64_t arena = 0, fallback_arena = 0, unshared = 0;
  const std::vector<int64_t> main_offsets = AssignOffsets(main_ranges, &arena);
  const std::vector<int64_t> fallback_offsets = AssignOffsets(fallback_ranges, &fallback_arena);
  size_t next_main = 0, next_fallback = 0;
  for (size_t i = 0; i < arena_ids.size(); ++i) {
    const int64_t offset = fallback_only.count(i) ? arena + fallback_offsets[next_fallback++]
                                                  : main_offsets[next_main++];
    p.mutable_buffers(arena_ids[i])->set_offset(offset);
    unshared += ranges[i].size_bytes;
  }
  p.set_arena_kernel_bytes(arena);
  p.set_arena_bytes(arena + fallback_arena);
  p.set_arena_bytes_unshared(unshared);
  Plan out;
  ASSIGN_OR_RETURN(out.data, data.Finish());
  p.set_data_bytes(out.data->size());
  out.proto = std::move(p);
  return out;
}

}  // namespace ampc
