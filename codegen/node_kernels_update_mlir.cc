// Node kernels' MLIR (node_kernels_emitter.h's Emitter): the optimizer updates SGD and Adam, one
// parameter or several end to end (multi-tensor: a binary search of the unit over the members),
// written twice under a pointer-equality test for the in-place case, and the loss-scaling ops
// AllFinite and UpdateLossScale, each in the per-op kernel's order of operations.
#include <fmt/format.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "codegen/node_kernels_emitter.h"

namespace ampc::node_kernels::detail {

void Emitter::InPlaceOrNot(const std::vector<std::pair<int, int>>& pairs,
                           const std::function<void()>& body) {
  std::string same = w_.Line("arith.constant true");
  std::map<int, int> into;
  auto pointer = [&](const char* kind, int arg, const std::string& type) {
    return w_.Line(fmt::format("memref.extract_aligned_pointer_as_index %{}{} : {} -> index", kind,
                               arg, type));
  };
  for (const auto& [o, i] : pairs) {
    if (!Stored(o) || !Has(i)) continue;
    const int j = results()[o], a = operands()[i];
    const std::string eq =
        w_.Line(fmt::format("arith.cmpi eq, {}, {} : index", pointer("out", j, OutType(j)),
                            pointer("in", a, InType(a))));
    same = w_.Bin("arith.andi", same, eq, "i1");
    into[o] = i;
  }
  if (into.empty()) {
    body();
    return;
  }
  w_.Raw(fmt::format("scf.if {} {{", same));
  store_into_ = into;
  body();
  store_into_.clear();
  w_.Raw("} else {");
  body();
  w_.Raw("}");
}

void Emitter::BeginBlock() {
  std::string i = "%i";
  if (member_) i = w_.Bin("arith.subi", i, w_.Index(member_first_unit_), "index");
  const std::string base = w_.Bin("arith.muli", i, w_.Index(op_.unit), "index");
  std::string end = w_.Bin("arith.addi", base, w_.Index(op_.unit), "index");
  if (member_ && member_->elements % op_.unit != 0) {
    end = w_.Bin("arith.minsi", end, w_.Index(member_->elements), "index");
  }
  w_.Raw(fmt::format("scf.for %e = {} to {} step {} {{", base, end, w_.Index(1)));
}

void Emitter::Adam() {
  const double beta1 = Attr("beta1"), beta2 = Attr("beta2"), wd = Attr("weight_decay");
  const bool decoupled = Attr("decoupled") != 0;
  // Per unit: the coefficients that depend on lr and step, in double as the per-op kernel.
  const std::string c0 = w_.Index(0);
  const std::string lr = Conv("arith.extf", Load(0, c0), "f32", "f64");
  const std::string t = Conv(
      "arith.sitofp", w_.Bin("arith.addi", Load(1, c0), Const("1", "i64"), "i64"), "i64", "f64");
  const std::string one = w_.F64(1.0);
  const std::string bc1 =
      w_.Bin("arith.subf", one, w_.Bin("math.powf", w_.F64(beta1), t, "f64"), "f64");
  const std::string bc2_sqrt =
      Un("math.sqrt",
         w_.Bin("arith.subf", one, w_.Bin("math.powf", w_.F64(beta2), t, "f64"), "f64"), "f64");
  const std::string neg_step = Conv(
      "arith.truncf", Un("arith.negf", w_.Bin("arith.divf", lr, bc1, "f64"), "f64"), "f64", "f32");
  const std::string bc2 = Conv("arith.truncf", bc2_sqrt, "f64", "f32");
  const std::string wdk =
      decoupled
          ? Conv("arith.truncf",
                 w_.Bin("arith.subf", one, w_.Bin("arith.mulf", lr, w_.F64(wd), "f64"), "f64"),
                 "f64", "f32")
          : w_.F32(static_cast<float>(wd));
  const std::string b1 = w_.F32(static_cast<float>(beta1));
  const std::string omb1 = w_.F32(static_cast<float>(1.0 - beta1));
  const std::string b2 = w_.F32(static_cast<float>(beta2));
  const std::string omb2 = w_.F32(static_cast<float>(1.0 - beta2));
  const std::string eps = w_.F32(static_cast<float>(Attr("epsilon")));
  const std::string apply = Flag(6);
  ForEachMember([&] {
    InPlaceOrNot({{0, 2}, {1, 4}, {2, 5}}, [&] {
      BeginBlock();
      const std::string wv = Load(2, "%e"), g = LoadF32(3, "%e"), m = Load(4, "%e"),
                        v = Load(5, "%e");
      std::string p = wv, d = g;
      if (decoupled) p = w_.Bin("arith.mulf", p, wdk, "f32");
      if (!decoupled && wd != 0)
        d = w_.Bin("arith.addf", d, w_.Bin("arith.mulf", wdk, p, "f32"), "f32");
      const std::string mi = w_.Bin("arith.addf", w_.Bin("arith.mulf", m, b1, "f32"),
                                    w_.Bin("arith.mulf", omb1, d, "f32"), "f32");
      const std::string vi =
          w_.Bin("arith.addf", w_.Bin("arith.mulf", v, b2, "f32"),
                 w_.Bin("arith.mulf", w_.Bin("arith.mulf", omb2, d, "f32"), d, "f32"), "f32");
      const std::string denom = w_.Bin(
          "arith.addf", w_.Bin("arith.divf", Un("math.sqrt", vi, "f32"), bc2, "f32"), eps, "f32");
      const std::string wn = w_.Bin(
          "arith.addf", p,
          w_.Bin("arith.mulf", neg_step, w_.Bin("arith.divf", mi, denom, "f32"), "f32"), "f32");
      const std::string w_next = w_.Select(apply, wn, wv, "f32");
      Store(0, w_next, "%e");
      Store(1, w_.Select(apply, mi, m, "f32"), "%e");
      Store(2, w_.Select(apply, vi, v, "f32"), "%e");
      StoreF32(3, w_next, "%e");  // the half copy, when the node has one
      EndBlock();
    });
  });
}

void Emitter::Sgd() {
  const float wd = static_cast<float>(Attr("weight_decay"));
  const float mom = static_cast<float>(Attr("momentum"));
  const float damp = static_cast<float>(1.0 - Attr("dampening"));
  const bool nesterov = Attr("nesterov") != 0;
  const bool has_m = Has(4);
  const std::string c0 = w_.Index(0);
  const std::string neg_lr = Un("arith.negf", Load(0, c0), "f32");
  const std::string first = Cmp("arith.cmpi", "eq", Load(1, c0), Const("0", "i64"), "i64");
  const std::string apply = Flag(5);
  const std::string wdc = w_.F32(wd), momc = w_.F32(mom), dampc = w_.F32(damp);
  ForEachMember([&] {
    InPlaceOrNot({{0, 2}, {1, 4}}, [&] {
      BeginBlock();
      const std::string wv = Load(2, "%e");
      std::string d = LoadF32(3, "%e");
      if (wd != 0.0f) d = w_.Bin("arith.addf", d, w_.Bin("arith.mulf", wdc, wv, "f32"), "f32");
      if (has_m) {
        const std::string m = Load(4, "%e");
        const std::string later = w_.Bin("arith.addf", w_.Bin("arith.mulf", m, momc, "f32"),
                                         w_.Bin("arith.mulf", dampc, d, "f32"), "f32");
        const std::string buf = w_.Select(first, d, later, "f32");
        Store(1, w_.Select(apply, buf, m, "f32"), "%e");
        d = nesterov ? w_.Bin("arith.addf", d, w_.Bin("arith.mulf", momc, buf, "f32"), "f32") : buf;
      }
      const std::string wn =
          w_.Bin("arith.addf", wv, w_.Bin("arith.mulf", neg_lr, d, "f32"), "f32");
      const std::string w_next = w_.Select(apply, wn, wv, "f32");
      Store(0, w_next, "%e");
      StoreF32(has_m ? 2 : 1, w_next, "%e");  // the half copy, when the node has one
      EndBlock();
    });
  });
}

std::string Emitter::NonFinite(DType t, const std::string& x) {
  if (t == DType::kFloat32) {
    const std::string e = w_.Bin("arith.andi", w_.F32ToBits(x), w_.I32(0x7f800000), "i32");
    return w_.CmpI("eq", e, w_.I32(0x7f800000));
  }
  const std::string mask = Const(t == DType::kFloat16 ? "31744" : "32640", "i16");
  return Cmp("arith.cmpi", "eq", w_.Bin("arith.andi", x, mask, "i16"), mask, "i16");
}

void Emitter::AllFiniteGpu() {
  std::string bad = w_.Line("arith.constant false");
  for (size_t i = 0; i < op_.operands.size(); ++i) {
    const int a = op_.operands[i];
    const std::string inside =
        Cmp("arith.cmpi", "ult", "%i", w_.Index(k_.inputs[a].elements), "index");
    const std::string hit = w_.Fresh();
    w_.Raw(fmt::format("{} = scf.if {} -> (i1) {{", hit, inside));
    w_.Raw(fmt::format("scf.yield {} : i1",
                       NonFinite(k_.inputs[a].dtype, Load(static_cast<int>(i), "%i"))));
    w_.Raw("} else {");
    w_.Raw(fmt::format("scf.yield {} : i1", w_.Line("arith.constant false")));
    w_.Raw("}");
    bad = w_.Bin("arith.ori", bad, hit, "i1");
  }
  w_.Raw(fmt::format("scf.if {} {{", bad));
  Store(0, Conv("arith.extui", w_.Line("arith.constant false"), "i1", "i8"), w_.Index(0));
  w_.Raw("}");
}

void Emitter::AllFinite() {
  if (op_.gpu) return AllFiniteGpu();
  std::string bad = w_.Line("arith.constant false");
  for (size_t i = 0; i < op_.operands.size(); ++i) {
    const int a = op_.operands[i];
    const DType t = k_.inputs[a].dtype;
    const std::string acc = w_.Fresh(), carried = w_.Fresh();
    w_.Raw(fmt::format("{} = scf.for %e = {} to {} step {} iter_args({} = {}) -> (i1) {{", acc,
                       w_.Index(0), w_.Index(k_.inputs[a].elements), w_.Index(1), carried, bad));
    const std::string x = Load(static_cast<int>(i), "%e");
    std::string hit;
    if (t == DType::kFloat32) {
      const std::string e = w_.Bin("arith.andi", w_.F32ToBits(x), w_.I32(0x7f800000), "i32");
      hit = w_.CmpI("eq", e, w_.I32(0x7f800000));
    } else {
      const std::string mask = Const(t == DType::kFloat16 ? "31744" : "32640", "i16");
      hit = Cmp("arith.cmpi", "eq", w_.Bin("arith.andi", x, mask, "i16"), mask, "i16");
    }
    w_.Raw(fmt::format("scf.yield {} : i1", w_.Bin("arith.ori", carried, hit, "i1")));
    w_.Raw("}");
    bad = acc;
  }
  const std::string ok = w_.Bin("arith.xori", bad, w_.Line("arith.constant true"), "i1");
  Store(0, Conv("arith.extui", ok, "i1", "i8"), w_.Index(0));
}

void Emitter::UpdateLossScale() {
  const std::string c0 = w_.Index(0);
  const std::string scale = Load(0, c0), tracker = Load(1, c0), skipped = Load(2, c0);
  const std::string finite = Flag(3);
  std::string new_scale = scale, new_tracker = tracker;
  if (Attr("dynamic") != 0) {
    const std::string zero = Const("0", "i64");
    const std::string t1 = w_.Bin("arith.addi", tracker, Const("1", "i64"), "i64");
    const std::string grow =
        Cmp("arith.cmpi", "sge", t1,
            Const(std::to_string(static_cast<int64_t>(Attr("growth_interval"))), "i64"), "i64");
    const std::string grown =
        w_.Bin("arith.mulf", scale, w_.F32(static_cast<float>(Attr("growth_factor"))), "f32");
    const std::string grown_finite =
        w_.CmpF("olt", Un("math.absf", grown, "f32"), w_.F32(std::bit_cast<float>(0x7f800000u)));
    const std::string if_finite =
        w_.Select(w_.Bin("arith.andi", grow, grown_finite, "i1"), grown, scale, "f32");
    const std::string backed =
        w_.Bin("arith.mulf", scale, w_.F32(static_cast<float>(Attr("backoff_factor"))), "f32");
    new_scale = w_.Select(finite, if_finite, backed, "f32");
    new_tracker = w_.Select(finite, w_.Select(grow, zero, t1, "i64"), zero, "i64");
  }
  const std::string new_skipped = w_.Bin(
      "arith.addi", skipped, w_.Select(finite, Const("0", "i64"), Const("1", "i64"), "i64"), "i64");
  Store(0, new_scale, c0);
  Store(1, new_tracker, c0);
  Store(2, new_skipped, c0);
}

void Emitter::ForEachMember(const std::function<void()>& body) {
  if (op_.members.empty()) {
    body();
    return;
  }
  std::vector<int64_t> first{0};
  for (size_t m = 0; m < op_.members.size(); ++m) first.push_back(first[m] + op_.MemberUnits(m));
  const std::function<void(size_t, size_t)> search = [&](size_t lo, size_t hi) {
    if (hi - lo == 1) {
      member_ = &op_.members[lo];
      member_first_unit_ = first[lo];
      body();
      member_ = nullptr;
      return;
    }
    const size_t mid = (lo + hi) / 2;
    w_.Raw(fmt::format("scf.if {} {{", w_.Line(fmt::format("arith.cmpi ult, %i, {} : index",
                                                           w_.Index(first[mid])))));
    search(lo, mid);
    w_.Raw("} else {");
    search(mid, hi);
    w_.Raw("}");
  };
  search(0, op_.members.size());
}

}  // namespace ampc::node_kernels::detail
