// FoldGemmEpilogues (step_plan.h): which generated kernel steps a GEMM's cuBLASLt epilogue
// replaces, and the descriptions the folded GEMMs get.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "runtime/cuda/step_plan.h"

namespace ampc::cuda {
namespace {

class Folder {
 public:
  Folder(const plan::PlanProto& p, const HostValueFn& host_value)
      : p_(p), host_value_(host_value), readers_(static_cast<size_t>(p.buffers_size()), 0) {
    for (const plan::Step& s : p.steps()) {
      for (int id : s.inputs()) {
        if (id >= 0) ++readers_[static_cast<size_t>(id)];
      }
    }
    for (const plan::IoBinding& o : p.outputs()) ++readers_[static_cast<size_t>(o.buffer())];
    for (const plan::StateUpdate& u : p.state_updates()) {
      ++readers_[static_cast<size_t>(u.from())];
    }
  }

  // The fold of kernel step i (its group's first node `first`) into GEMM step j, which writes
  // the kernel's input x; an unfolded GemmFold where none applies.
  GemmFold Fold(int j, int i, const plan::FusionGroup& fg) const {
    const plan::Step& gemm = p_.steps(j);
    const plan::Step& kernel = p_.steps(i);
    const plan::Step& first = fg.fallback(0);
    const int x = gemm.outputs(0);
    auto d = DescribeGemmStep(p_, gemm);
    if (!d.ok() || d->c_matrix) return {};
    // cuBLASLt's aux matrix: one call of one matrix, its leading dimension a multiple of 8.
    const bool aux_ok = d->calls.size() == 1 && d->batch == 1 && d->d.ld % 8 == 0;
    const std::string& op = first.op().op();
    if (j + 1 == i && fg.fallback_size() == 1 && first.op().domain().empty() &&
        (op == "Relu" || op == "Gelu") && first.inputs_size() == 1 && first.outputs_size() == 1 &&
        kernel.outputs_size() == 1 && kernel.outputs(0) == first.outputs(0) &&
        Like(x, first.outputs(0))) {
      return Activation(j, i, first, aux_ok);
    }
    if (first.op().domain() == "com.ampc" && op == "GeluGrad" && Tanh(first) &&
        first.inputs_size() == 2 && readers_[static_cast<size_t>(x)] == 1 &&
        first.outputs_size() == 1 && aux_ok && d->epilogue == GemmEpilogue::kDefault) {
      return Gradient(j, i, fg);
    }
    return {};
  }

 private:
  // Relu or tanh Gelu of the GEMM's output x, the step just after it.
  GemmFold Activation(int j, int i, const plan::Step& first, bool aux_ok) const {
    const int x = first.inputs(0), y = first.outputs(0);
    const bool only = readers_[static_cast<size_t>(x)] == 1;
    if (first.op().op() == "Relu") {
      if (only && Clear(j, i, {y}, -1)) return {GemmEpilogue::kRelu, y, -1, -1};
      return {};
    }
    if (!Tanh(first)) return {};
    if (only && Clear(j, i, {y}, -1)) return {GemmEpilogue::kGelu, y, -1, -1};
    if (!only && aux_ok && Clear(j, i, {y}, x)) return {GemmEpilogue::kGeluAux, y, x, -1};
    return {};
  }

  // GeluGrad(dY, X) with dY the GEMM's output: DGELU, or DGELU_BGRAD when the group's second
  // node sums dX into the bias gradient.
  GemmFold Gradient(int j, int i, const plan::FusionGroup& fg) const {
    const plan::Step& kernel = p_.steps(i);
    const plan::Step& first = fg.fallback(0);
    const int dy = first.inputs(0), aux = first.inputs(1), dx = first.outputs(0);
    if (aux < 0 || dx < 0 || !Like(dy, aux) || !Like(dy, dx) || !Has(kernel.outputs(), dx)) {
      return {};
    }
    if (fg.fallback_size() == 1 && kernel.outputs_size() == 1 && Clear(j, i, {dx}, aux)) {
      return {GemmEpilogue::kDGelu, dx, aux, -1};
    }
    if (fg.fallback_size() != 2 || kernel.outputs_size() != 2 || !ColumnSums(fg.fallback(1), dx)) {
      return {};
    }
    const int bias = fg.fallback(1).outputs(0);
    if (!Has(kernel.outputs(), bias) || !Clear(j, i, {dx, bias}, aux)) return {};
    return {GemmEpilogue::kDGeluBgrad, dx, aux, bias};
  }

  bool Overlap(int a, int b) const {
    const plan::Buffer& x = p_.buffers(a);
    const plan::Buffer& y = p_.buffers(b);
    return x.kind() == plan::Buffer::ARENA && y.kind() == plan::Buffer::ARENA &&
           x.offset() < y.offset() + y.size_bytes() && y.offset() < x.offset() + x.size_bytes();
  }

  bool Like(int a, int b) const {
    const plan::Buffer& x = p_.buffers(a);
    const plan::Buffer& y = p_.buffers(b);
    return x.dtype() == y.dtype() &&
           std::equal(x.dims().begin(), x.dims().end(), y.dims().begin(), y.dims().end());
  }

  static bool Tanh(const plan::Step& s) {
    const plan::Attr* a = FindAttr(s, "approximate");
    return a && a->value_case() == plan::Attr::kS && a->s() == "tanh";
  }

  static bool Has(const google::protobuf::RepeatedField<int32_t>& ids, int id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  }

  // A ReduceSum of `x` over every axis but the last, to that axis's length (axes read on the
  // host: a constant of the plan).
  bool ColumnSums(const plan::Step& r, int x) const {
    if (r.op().op() != "ReduceSum" || !r.op().domain().empty() || r.inputs_size() < 2 ||
        r.inputs(0) != x || r.outputs_size() != 1 || !host_value_) {
      return false;
    }
    const auto& dims = p_.buffers(x).dims();
    auto axes = HostInts(p_, r.inputs(1), host_value_, "axes");
    if (!axes.ok() || dims.size() < 2) return false;
    std::set<int64_t> want, got;
    for (int a = 0; a + 1 < dims.size(); ++a) want.insert(a);
    for (int64_t a : *axes) got.insert(a < 0 ? a + dims.size() : a);
    const plan::Buffer& out = p_.buffers(r.outputs(0));
    int64_t n = 1;
    for (int64_t v : out.dims()) n *= v;
    return got == want && n == dims[dims.size() - 1] && out.dtype() == p_.buffers(x).dtype();
  }

  // GEMM step j now writes `written` when it runs, before kernel step i would have: none may
  // share bytes with a GEMM input (the planner may reuse them: they die at the GEMM), the aux
  // matrix, or a buffer a step in between reads or writes; nothing in between writes the aux.
  bool Clear(int j, int i, const std::vector<int>& written, int aux) const {
    auto touches = [&](const google::protobuf::RepeatedField<int32_t>& ids, int w) {
      for (int id : ids) {
        if (id >= 0 && Overlap(id, w)) return true;
      }
      return false;
    };
    for (int w : written) {
      if (touches(p_.steps(j).inputs(), w) || (aux >= 0 && Overlap(aux, w))) return false;
      for (int t = j + 1; t < i; ++t) {
        if (touches(p_.steps(t).inputs(), w) || touches(p_.steps(t).outputs(), w)) return false;
      }
    }
    for (int t = j + 1; t < i && aux >= 0; ++t) {
      if (touches(p_.steps(t).outputs(), aux)) return false;
    }
    return true;
  }

  const plan::PlanProto& p_;
  const HostValueFn& host_value_;
  std::vector<int> readers_;  // per buffer: steps, plan outputs and state updates reading it
};

}  // namespace

std::vector<GemmFold> FoldGemmEpilogues(const plan::PlanProto& p, std::vector<StepKind>* kinds,
                                        const HostValueFn& host_value) {
  const Folder folder(p, host_value);
  std::vector<GemmFold> folds(static_cast<size_t>(p.steps_size()));
  std::vector<int> producer(static_cast<size_t>(p.buffers_size()), -1);  // last writer so far
  for (int i = 0; i < p.steps_size(); ++i) {
    const plan::Step& kernel = p.steps(i);
    const int group = kernel.fusion_group();
    const bool candidate = (*kinds)[static_cast<size_t>(i)] == StepKind::kKernel && group > 0 &&
                           group <= p.fusion_groups_size() &&
                           p.fusion_groups(group - 1).fallback_size() > 0 &&
                           p.fusion_groups(group - 1).fallback(0).inputs_size() > 0;
    const int x = candidate ? p.fusion_groups(group - 1).fallback(0).inputs(0) : -1;
    const int j = x >= 0 ? producer[static_cast<size_t>(x)] : -1;
    for (int id : kernel.outputs()) {
      if (id >= 0) producer[static_cast<size_t>(id)] = i;
    }
    if (j < 0 || (*kinds)[static_cast<size_t>(j)] != StepKind::kGemm ||
        folds[static_cast<size_t>(j)].folded() || p.steps(j).outputs_size() != 1 ||
        p.steps(j).outputs(0) != x) {
      continue;
    }
    const GemmFold f = folder.Fold(j, i, p.fusion_groups(group - 1));
    if (!f.folded()) continue;
    folds[static_cast<size_t>(j)] = f;
    (*kinds)[static_cast<size_t>(i)] = StepKind::kFolded;
  }
  return folds;
}

GemmDesc Folded(GemmDesc d, const GemmFold& f) {
  switch (f.activation) {
    case GemmEpilogue::kRelu:
      d.epilogue = WithRelu(d.epilogue);
      break;
    case GemmEpilogue::kGelu:
    case GemmEpilogue::kGeluAux:
      d.epilogue = WithGelu(d.epilogue, f.activation == GemmEpilogue::kGeluAux);
      break;
    case GemmEpilogue::kDGelu:
    case GemmEpilogue::kDGeluBgrad:
      d.epilogue = f.activation;
      d.c_type = d.d_type;  // the bias gradient's type (Fold checks it is dX's)
      break;
    default:
      break;
  }
  return d;
}

}  // namespace ampc::cuda
