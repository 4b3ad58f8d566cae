// The com.ampc optimizer and loss-scaling CPU kernels (runtime/cpu/kernels_optimizer.cc).
// Where the expected values come from:
// - SGD and Adam/AdamW: torch.optim of Debian's PyTorch 1.13 (foreach=False), run by
//   tools/optimizer_reference.py (the ctest fixture generate_optimizer_references writes
//   AMPC_GEN_DIR/optimizer_refs/optimizer_refs.json); never from ampc itself. The hyper-parameters
//   are rounded to f32 there, as ampc's attributes and lr input are.
// - UpdateLossScale: torch.cuda.amp.GradScaler's documented update rule (its kernel
//   _amp_update_scale_ is CUDA-only on PyTorch 1.13 CPU), re-implemented below in float64 with
//   the scale stored as f32 (GradScaler's scale is an f32 tensor): on a step with inf/NaN the
//   scale is multiplied by backoff_factor and the tracker reset; otherwise the tracker counts up
//   and on reaching growth_interval the scale is multiplied by growth_factor and the tracker
//   reset. PyTorch's kernel (AmpKernels.cu) also keeps the old scale when the grown one is inf.
// - AllFinite: std::isfinite on the value as decoded by the compiler (_Float16 for f16; bf16 is
//   by definition the top half of an f32).
// - `apply` = false: the op's contract (ir/ops/optimizer_ops.cc): outputs bit-identical to inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "ir/attribute.h"
#include "tests/unit/kernel_test_util.h"

namespace ampc {
namespace {

using nlohmann::json;
using testing::OwnedTensor;
using testing::RunKernelInDomain;

const json& Refs() {
  static const json* refs = [] {
    const std::string path = std::string(AMPC_GEN_DIR) + "/optimizer_refs/optimizer_refs.json";
    std::ifstream in(path);
    if (!in) return new json();
    return new json(json::parse(in));
  }();
  return *refs;
}

// An array written by tools/optimizer_reference.py: dtype, shape and little-endian hex bytes.
OwnedTensor Decode(const json& a) {
  const DType dt = a["dtype"] == "f64" ? DType::kFloat64 : DType::kFloat32;
  OwnedTensor t(dt, a["shape"].get<std::vector<int64_t>>());
  const std::string hex = a["hex"];
  EXPECT_EQ(hex.size(), static_cast<size_t>(2 * t.view().NumElements() * DTypeSize(dt)));
  auto* p = static_cast<uint8_t*>(t.view().data);
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    p[i / 2] = static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return t;
}

OwnedTensor Lr(double v) { return OwnedTensor::From(DType::kFloat32, {}, {v}); }
OwnedTensor Step(int64_t v) { return OwnedTensor::From(DType::kInt64, {}, {double(v)}); }
OwnedTensor Flag(bool v) { return OwnedTensor::From(DType::kBool, {}, {v ? 1.0 : 0.0}); }
OwnedTensor Like(const OwnedTensor& t) { return OwnedTensor(t.view().dtype, t.view().dims); }
OwnedTensor Filled(const OwnedTensor& like, double v) {
  return OwnedTensor::From(like.view().dtype, like.view().dims,
                           std::vector<double>(like.view().NumElements(), v));
}

std::string Bytes(const OwnedTensor& t) {
  const auto* p = static_cast<const char*>(t.view().data);
  return std::string(p, t.view().NumElements() * DTypeSize(t.view().dtype));
}

// fp32: abs 1e-6 + rel 1e-5 (torch's CPU kernels may fuse a*b+c, ampc's may not: a few ulps per
// step). f64: the same argument at double's epsilon, with room for 5 steps of amplification.
void ExpectClose(const OwnedTensor& got, const json& want_json, const std::string& what) {
  const OwnedTensor want = Decode(want_json);
  ASSERT_EQ(got.view().dtype, want.view().dtype) << what;
  ASSERT_EQ(got.view().dims, want.view().dims) << what;
  const bool f64 = want.view().dtype == DType::kFloat64;
  const double abs_tol = f64 ? 1e-13 : 1e-6, rel_tol = f64 ? 1e-11 : 1e-5;
  const auto g = got.values(), w = want.values();
  int bad = 0;
  for (size_t i = 0; i < w.size() && bad < 5; ++i) {
    if (!(std::fabs(g[i] - w[i]) <= abs_tol + rel_tol * std::fabs(w[i]))) {
      ADD_FAILURE() << what << " element " << i << ": ampc " << g[i] << ", torch " << w[i];
      ++bad;
    }
  }
}

AttributeMap SgdAttrs(const json& c) {
  AttributeMap a;
  if (c["momentum"].get<double>() != 0) a["momentum"] = Attribute(c["momentum"].get<float>());
  if (c["dampening"].get<double>() != 0) a["dampening"] = Attribute(c["dampening"].get<float>());
  if (c["nesterov"].get<bool>()) a["nesterov"] = Attribute(int64_t{1});
  if (c["weight_decay"].get<double>() != 0) {
    a["weight_decay"] = Attribute(c["weight_decay"].get<float>());
  }
  return a;
}

AttributeMap AdamAttrs(const json& c) {
  return {{"beta1", Attribute(c["beta1"].get<float>())},
          {"beta2", Attribute(c["beta2"].get<float>())},
          {"epsilon", Attribute(c["epsilon"].get<float>())},
          {"weight_decay", Attribute(c["weight_decay"].get<float>())},
          {"decoupled", Attribute(int64_t{c["decoupled"].get<bool>() ? 1 : 0})}};
}

// Runs every case of `kind` with the kernel's own outputs fed back as the next step's inputs, as
// a training loop does, and compares each step with torch.
void CheckTrajectories(const std::string& kind, cpu::ThreadPool* pool) {
  const json& refs = Refs();
  ASSERT_TRUE(refs.contains(kind))
      << AMPC_GEN_DIR << "/optimizer_refs/optimizer_refs.json is missing: run ctest -R "
      << "generate_optimizer_references (tools/optimizer_reference.py)";
  int checked = 0;
  for (const json& c : refs[kind]) {
    SCOPED_TRACE(kind + " case " + c["name"].get<std::string>());
    const bool adam = kind == "adam";
    const bool has_m = adam || c["momentum"].get<double>() != 0;
    const AttributeMap attrs = adam ? AdamAttrs(c) : SgdAttrs(c);
    OwnedTensor w = Decode(c["w0"]);
    // Without a stored buffer the first step must ignore M: give it NaNs to prove it.
    OwnedTensor m = c.contains("m0") ? Decode(c["m0"]) : Filled(w, NAN);
    OwnedTensor v = adam ? Decode(c["v0"]) : OwnedTensor();
    const bool big = w.view().NumElements() > (1 << 15);
    if ((pool != nullptr) != big) continue;  // the large cases are the ones worth splitting
    int64_t step = c["start_step"];
    for (const json& s : c["steps"]) {
      SCOPED_TRACE("step " + std::to_string(step));
      const OwnedTensor lr = Lr(s["lr"].get<double>()), st = Step(step), g = Decode(s["g"]);
      OwnedTensor w2 = Like(w), m2 = Like(w), v2 = Like(w);
      Status status;
      if (adam) {
        status = RunKernelInDomain("com.ampc", "Adam", attrs, {&lr, &st, &w, &g, &m, &v},
                                   {&w2, &m2, &v2}, pool);
      } else if (has_m) {
        status =
            RunKernelInDomain("com.ampc", "SGD", attrs, {&lr, &st, &w, &g, &m}, {&w2, &m2}, pool);
      } else {
        status = RunKernelInDomain("com.ampc", "SGD", attrs, {&lr, &st, &w, &g}, {&w2}, pool);
      }
      ASSERT_TRUE(status.ok()) << status.message();
      ExpectClose(w2, s["w"], "parameter");
      if (has_m) ExpectClose(m2, s["m"], adam ? "exp_avg" : "momentum buffer");
      if (adam) ExpectClose(v2, s["v"], "exp_avg_sq");
      w = w2;
      m = m2;
      v = v2;
      ++step;
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(OptimizerKernelSgd, MatchesTorchSgdStepByStep) { CheckTrajectories("sgd", nullptr); }
TEST(OptimizerKernelAdam, MatchesTorchAdamAndAdamWStepByStep) {
  CheckTrajectories("adam", nullptr);
}
TEST(OptimizerKernelSgd, MatchesTorchWhenSplitAcrossThreads) {
  cpu::ThreadPool pool(2);
  CheckTrajectories("sgd", &pool);
}
TEST(OptimizerKernelAdam, MatchesTorchWhenSplitAcrossThreads) {
  cpu::ThreadPool pool(2);
  CheckTrajectories("adam", &pool);
}

// Awkward bit patterns that an arithmetic "copy" (w + 0 * g, ...) would not preserve.
OwnedTensor Odd(DType dt, double scale) {
  return OwnedTensor::From(dt, {2, 4},
                           {-0.0, NAN, 1e-310 * scale, -INFINITY, 3.0 * scale, 1e-40, -7.5, 0.1});
}

TEST(OptimizerKernelSgd, ApplyFalseLeavesEveryOutputBitIdentical) {
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    for (bool momentum : {false, true}) {
      SCOPED_TRACE(std::string(dt == DType::kFloat64 ? "f64" : "f32") +
                   (momentum ? " momentum" : " plain"));
      AttributeMap attrs = {{"weight_decay", Attribute(0.1f)}};
      if (momentum) attrs["momentum"] = Attribute(0.9f), attrs["nesterov"] = Attribute(int64_t{1});
      const OwnedTensor lr = Lr(0.5), st = Step(3), no = Flag(false);
      const OwnedTensor w = Odd(dt, 1), g = Filled(w, INFINITY), m = Odd(dt, -2);
      OwnedTensor w2 = Filled(w, 42), m2 = Filled(w, 42);
      Status s = momentum ? RunKernelInDomain("com.ampc", "SGD", attrs, {&lr, &st, &w, &g, &m, &no},
                                              {&w2, &m2})
                          : RunKernelInDomain("com.ampc", "SGD", attrs,
                                              {&lr, &st, &w, &g, nullptr, &no}, {&w2});
      ASSERT_TRUE(s.ok()) << s.message();
      EXPECT_EQ(Bytes(w2), Bytes(w));
      if (momentum) {
        EXPECT_EQ(Bytes(m2), Bytes(m));
      }
    }
  }
}

TEST(OptimizerKernelAdam, ApplyFalseLeavesEveryOutputBitIdentical) {
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    for (int64_t decoupled : {0, 1}) {
      const AttributeMap attrs = {{"weight_decay", Attribute(0.01f)},
                                  {"decoupled", Attribute(decoupled)}};
      const OwnedTensor lr = Lr(1e-3), st = Step(0), no = Flag(false);
      const OwnedTensor w = Odd(dt, 1), g = Filled(w, NAN), m = Odd(dt, 3), v = Odd(dt, -1);
      OwnedTensor w2 = Filled(w, 42), m2 = Filled(w, 42), v2 = Filled(w, 42);
      Status s = RunKernelInDomain("com.ampc", "Adam", attrs, {&lr, &st, &w, &g, &m, &v, &no},
                                   {&w2, &m2, &v2});
      ASSERT_TRUE(s.ok()) << s.message();
      EXPECT_EQ(Bytes(w2), Bytes(w));
      EXPECT_EQ(Bytes(m2), Bytes(m));
      EXPECT_EQ(Bytes(v2), Bytes(v));
    }
  }
}

// apply = true is the same as no apply input, bit for bit.
TEST(OptimizerKernelAdam, ApplyTrueIsAnOrdinaryStep) {
  const AttributeMap attrs = {{"weight_decay", Attribute(0.01f)}};
  const OwnedTensor lr = Lr(1e-2), st = Step(2), yes = Flag(true);
  const OwnedTensor w = OwnedTensor::From(DType::kFloat32, {3}, {0.5, -1, 2});
  const OwnedTensor g = OwnedTensor::From(DType::kFloat32, {3}, {0.1, 0.2, -0.3});
  const OwnedTensor m = Filled(w, 0.01), v = Filled(w, 0.04);
  OwnedTensor a[3] = {Like(w), Like(w), Like(w)}, b[3] = {Like(w), Like(w), Like(w)};
  ASSERT_TRUE(RunKernelInDomain("com.ampc", "Adam", attrs, {&lr, &st, &w, &g, &m, &v, &yes},
                                {&a[0], &a[1], &a[2]})
                  .ok());
  ASSERT_TRUE(RunKernelInDomain("com.ampc", "Adam", attrs, {&lr, &st, &w, &g, &m, &v},
                                {&b[0], &b[1], &b[2]})
                  .ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Bytes(a[i]), Bytes(b[i])) << "output " << i;
  EXPECT_NE(Bytes(a[0]), Bytes(w));
}

// The kernels document that outputs may alias their inputs (in-place state updates).
TEST(OptimizerKernelSgd, InPlaceUpdateEqualsOutOfPlace) {
  const AttributeMap attrs = {{"momentum", Attribute(0.9f)},
                              {"dampening", Attribute(0.1f)},
                              {"weight_decay", Attribute(0.01f)}};
  const OwnedTensor lr = Lr(0.1), st = Step(5);
  const OwnedTensor w = OwnedTensor::From(DType::kFloat32, {4}, {1, -2, 3, 0.25});
  const OwnedTensor g = OwnedTensor::From(DType::kFloat32, {4}, {0.5, 0.25, -1, 2});
  const OwnedTensor m = OwnedTensor::From(DType::kFloat32, {4}, {0.1, -0.1, 0.3, 0});
  OwnedTensor w2 = Like(w), m2 = Like(w);
  ASSERT_TRUE(RunKernelInDomain("com.ampc", "SGD", attrs, {&lr, &st, &w, &g, &m}, {&w2, &m2}).ok());
  OwnedTensor wi = w, mi = m;
  cpu::KernelContext ctx;
  ctx.op = "SGD";
  ctx.attrs = &attrs;
  ctx.inputs = {&lr.view(), &st.view(), &wi.view(), &g.view(), &mi.view()};
  ctx.outputs = {&wi.view(), &mi.view()};
  ASSERT_TRUE(cpu::KernelRegistry::Global().Find("com.ampc", "SGD")(ctx).ok());
  EXPECT_EQ(Bytes(wi), Bytes(w2));
  EXPECT_EQ(Bytes(mi), Bytes(m2));
}

TEST(OptimizerKernelSgd, RejectsBadScalarsAndMismatchedShapes) {
  const OwnedTensor w = OwnedTensor::From(DType::kFloat32, {2}, {1, 2}), g = w;
  const OwnedTensor g3 = OwnedTensor::From(DType::kFloat32, {3}, {1, 2, 3});
  const OwnedTensor lr = Lr(0.1), st = Step(0), neg = Step(-1);
  const OwnedTensor lr64 = OwnedTensor::From(DType::kFloat64, {}, {0.1});
  const OwnedTensor w16 = OwnedTensor::From(DType::kFloat16, {2}, {1, 2});
  OwnedTensor out = Like(w), out16 = Like(w16);
  EXPECT_FALSE(RunKernelInDomain("com.ampc", "SGD", {}, {&lr, &neg, &w, &g}, {&out}).ok());
  EXPECT_FALSE(RunKernelInDomain("com.ampc", "SGD", {}, {&lr64, &st, &w, &g}, {&out}).ok());
  EXPECT_FALSE(RunKernelInDomain("com.ampc", "SGD", {}, {&lr, &st, &w, &g3}, {&out}).ok());
  // Master weights are never half precision.
  EXPECT_FALSE(RunKernelInDomain("com.ampc", "SGD", {}, {&lr, &st, &w16, &w16}, {&out16}).ok());
}

// ---- AllFinite ---------------------------------------------------------------------------

bool RunAllFinite(std::vector<const OwnedTensor*> inputs) {
  OwnedTensor out(DType::kBool, {});
  Status s = RunKernelInDomain("com.ampc", "AllFinite", {}, std::move(inputs), {&out});
  EXPECT_TRUE(s.ok()) << s.message();
  return static_cast<const uint8_t*>(out.view().data)[0] != 0;
}

template <typename T>
OwnedTensor WithAt(DType dt, int64_t n, int64_t pos, T special) {
  OwnedTensor t = OwnedTensor::From(dt, {n}, std::vector<double>(n, 1.5));
  t.view().as<T>()[pos] = special;
  return t;
}

template <typename T>
void CheckSpecials(DType dt) {
  using L = std::numeric_limits<T>;
  T snan = L::signaling_NaN(), payload;
  uint64_t bits = 0;
  std::memcpy(&bits, &snan, sizeof(T));
  bits |= 5;  // a NaN with a payload
  std::memcpy(&payload, &bits, sizeof(T));
  const std::vector<T> specials = {T(0),          -T(0),          L::denorm_min(), -L::denorm_min(),
                                   L::min(),      L::max(),       L::lowest(),     L::epsilon(),
                                   L::infinity(), -L::infinity(), L::quiet_NaN(),  -L::quiet_NaN(),
                                   snan,          payload};
  const OwnedTensor h = OwnedTensor::From(DType::kFloat16, {5}, {1, 2, 3, 4, 65504});
  const OwnedTensor b = OwnedTensor::From(DType::kBFloat16, {3}, {-1, 3e38, 1e-40});
  for (T x : specials) {
    const bool want = std::isfinite(x);
    for (int64_t n : {1, 37, 1031}) {
      for (int64_t pos : {int64_t{0}, n / 2, n - 1}) {
        SCOPED_TRACE("value " + std::to_string(double(x)) + ", n " + std::to_string(n) + ", at " +
                     std::to_string(pos));
        const OwnedTensor t = WithAt<T>(dt, n, pos, x);
        EXPECT_EQ(RunAllFinite({&t}), want);
        EXPECT_EQ(RunAllFinite({&h, &b, &t}), want);  // last of several mixed-dtype inputs
        EXPECT_EQ(RunAllFinite({&t, &h, &b}), want);  // first
      }
    }
  }
}

TEST(OptimizerKernelAllFinite, F32SpecialValuesAnywhere) { CheckSpecials<float>(DType::kFloat32); }
TEST(OptimizerKernelAllFinite, F64SpecialValuesAnywhere) { CheckSpecials<double>(DType::kFloat64); }

// The reference decoding of a 16-bit pattern, independent of ampc's conversions.
double DecodeHalfBits(DType dt, uint16_t bits) {
  if (dt == DType::kBFloat16) {
    const uint32_t f = uint32_t{bits} << 16;
    float x;
    std::memcpy(&x, &f, 4);
    return x;
  }
#if defined(__FLT16_MAX__)
  _Float16 h;
  std::memcpy(&h, &bits, 2);
  return static_cast<double>(h);
#else  // IEEE 754 binary16: 1 sign, 5 exponent, 10 fraction bits.
  const int e = (bits >> 10) & 31, f = bits & 1023;
  const double mag = e == 31  ? (f ? NAN : INFINITY)
                     : e == 0 ? std::ldexp(f, -24)
                              : std::ldexp(1024 + f, e - 25);
  return bits & 0x8000 ? -mag : mag;
#endif
}

// All 65,536 patterns of each 16-bit format, alone and between finite f32 and f64 inputs.
TEST(OptimizerKernelAllFinite, EveryF16AndBf16BitPattern) {
  const OwnedTensor f = OwnedTensor::From(DType::kFloat32, {4}, {1, -2, 3e38, 0});
  const OwnedTensor d = OwnedTensor::From(DType::kFloat64, {2}, {1e300, -5});
  for (DType dt : {DType::kFloat16, DType::kBFloat16}) {
    int non_finite = 0;
    for (uint32_t bits = 0; bits < 65536; ++bits) {
      OwnedTensor t = OwnedTensor::From(dt, {3}, {0.5, 0.25, 2});
      t.view().as<uint16_t>()[bits % 3] = static_cast<uint16_t>(bits);
      const bool want = std::isfinite(DecodeHalfBits(dt, static_cast<uint16_t>(bits)));
      non_finite += !want;
      ASSERT_EQ(RunAllFinite({&t}), want) << "bits 0x" << std::hex << bits;
      ASSERT_EQ(RunAllFinite({&f, &t, &d}), want) << "bits 0x" << std::hex << bits;
    }
    EXPECT_EQ(non_finite, dt == DType::kFloat16 ? 2048 : 256);  // exponent all ones
  }
}

TEST(OptimizerKernelAllFinite, EmptyAndFiniteInputsAreFiniteOthersRejected) {
  const OwnedTensor empty(DType::kFloat32, {0, 3});
  const OwnedTensor ints = OwnedTensor::From(DType::kInt64, {2}, {1, 2});
  EXPECT_TRUE(RunAllFinite({&empty}));
  OwnedTensor out(DType::kBool, {});
  EXPECT_FALSE(RunKernelInDomain("com.ampc", "AllFinite", {}, {&empty, &ints}, {&out}).ok());
}

// ---- UpdateLossScale ----------------------------------------------------------------------

struct ScalerState {
  double scale;
  int64_t tracker, skipped;
};

// GradScaler.update's rule in float64 (see the top of the file), the result stored in float32 as
// GradScaler's scale tensor is; `dynamic` = false keeps the scale (ampc's static loss scale).
// skipped counts the steps that had inf/NaN.
ScalerState ReferenceUpdate(ScalerState s, bool finite, double growth, double backoff,
                            int64_t interval, bool dynamic) {
  if (!finite) ++s.skipped;
  if (!dynamic) return s;
  if (!finite) {
    s.scale = static_cast<float>(s.scale * backoff);
    s.tracker = 0;
  } else if (++s.tracker == interval) {
    const float grown = static_cast<float>(s.scale * growth);
    if (std::isfinite(grown)) s.scale = grown;  // never grow to inf
    s.tracker = 0;
  }
  return s;
}

ScalerState RunUpdate(const ScalerState& s, bool finite, const AttributeMap& attrs) {
  const OwnedTensor scale = OwnedTensor::From(DType::kFloat32, {}, {s.scale});
  const OwnedTensor tracker = Step(s.tracker), skipped = Step(s.skipped), f = Flag(finite);
  OwnedTensor o0(DType::kFloat32, {}), o1(DType::kInt64, {}), o2(DType::kInt64, {});
  Status st = RunKernelInDomain("com.ampc", "UpdateLossScale", attrs,
                                {&scale, &tracker, &skipped, &f}, {&o0, &o1, &o2});
  EXPECT_TRUE(st.ok()) << st.message();
  return {o0.values()[0], o1.view().as<int64_t>()[0], o2.view().as<int64_t>()[0]};
}

TEST(OptimizerKernelLossScale, FollowsGradScalerRuleOverSeededSequences) {
  struct Config {
    float growth, backoff;
    int64_t interval;
    bool dynamic, set_attrs;  // set_attrs false: the defaults 2.0, 0.5, 2000, dynamic
    double init;
    int steps;
  };
  const std::vector<Config> configs = {
      {2.0f, 0.5f, 2000, true, false, 65536.0, 4500}, {2.0f, 0.5f, 3, true, true, 1024.0, 300},
      {1.5f, 0.25f, 1, true, true, 3.0, 200},         {4.0f, 0.75f, 5, true, true, 1.0, 300},
      {2.0f, 0.5f, 2, false, true, 128.0, 100},       {1.0f, 1.0f, 4, true, true, 8.0, 50}};
  for (const Config& c : configs) {
    SCOPED_TRACE("growth " + std::to_string(c.growth) + " backoff " + std::to_string(c.backoff) +
                 " interval " + std::to_string(c.interval) + (c.dynamic ? "" : " static"));
    AttributeMap attrs;
    if (c.set_attrs) {
      attrs = {{"growth_factor", Attribute(c.growth)},
               {"backoff_factor", Attribute(c.backoff)},
               {"growth_interval", Attribute(c.interval)},
               {"dynamic", Attribute(int64_t{c.dynamic ? 1 : 0})}};
    }
    std::mt19937 rng(static_cast<uint32_t>(c.interval * 7919 + c.steps));
    // Mostly finite steps (so growth happens), with runs of overflow now and then.
    std::bernoulli_distribution overflow(c.interval >= 2000 ? 0.0002 : 0.15);
    ScalerState want{c.init, 0, 0}, got = want;
    int grew = 0, backed_off = 0;
    for (int i = 0; i < c.steps; ++i) {
      const bool finite = !overflow(rng);
      const ScalerState next =
          ReferenceUpdate(want, finite, c.growth, c.backoff, c.interval, c.dynamic);
      grew += next.scale > want.scale;
      backed_off += next.scale < want.scale;
      want = next;
      got = RunUpdate(got, finite, attrs);
      ASSERT_EQ(got.scale, want.scale) << "step " << i;
      if (c.dynamic) {
        ASSERT_EQ(got.tracker, want.tracker) << "step " << i;
      }
      ASSERT_EQ(got.skipped, want.skipped) << "step " << i;
    }
    if (c.dynamic) {
      EXPECT_EQ(grew > 0, c.growth > 1);
      EXPECT_EQ(backed_off > 0, c.backoff < 1);
    }
  }
}

TEST(OptimizerKernelLossScale, NonFiniteStepBacksOffAndResetsTracker) {
  const AttributeMap attrs = {{"growth_interval", Attribute(int64_t{10})}};
  const ScalerState s = RunUpdate({1024, 7, 3}, /*finite=*/false, attrs);
  EXPECT_EQ(s.scale, 512);
  EXPECT_EQ(s.tracker, 0);
  EXPECT_EQ(s.skipped, 4);
  const ScalerState t = RunUpdate({1024, 9, 3}, /*finite=*/true, attrs);
  EXPECT_EQ(t.scale, 2048);
  EXPECT_EQ(t.tracker, 0);
  EXPECT_EQ(t.skipped, 3);
}

// PyTorch's _amp_update_scale_ kernel: "Do not grow the scale past fp32 bounds to inf" (a grown
// scale that is not finite is dropped; the tracker still resets). Without that check the scale
// reaches inf, after which every step overflows and inf * backoff stays inf.
TEST(OptimizerKernelLossScale, NeverGrowsTheScaleToInfinity) {
  const AttributeMap attrs = {{"growth_interval", Attribute(int64_t{1})}};
  const float big = std::ldexp(1.0f, 127);
  const ScalerState s = RunUpdate({big, 0, 0}, /*finite=*/true, attrs);
  EXPECT_EQ(s.scale, big);
  EXPECT_EQ(s.tracker, 0);
}

}  // namespace
}  // namespace ampc
