// The Plan file (codegen/plan.h): the documented layout, a data section that is mapped rather
// than read (a plan over protobuf's 2 GiB message limit loads), older and newer formats refused
// with the right message, and the evaluation pass sharing the step's parameters.
#include "codegen/plan.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "ir/float16.h"
#include "runtime/cpu/executor.h"
#include "tests/unit/test_util.h"

namespace ampc {
namespace {

using testing::TempDir;

// Resident memory of this process in bytes (/proc/self/statm: size, resident, ... in pages).
int64_t ResidentBytes() {
  std::ifstream in("/proc/self/statm");
  int64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

void AddBuffer(plan::PlanProto* p, const std::string& name, plan::Buffer::Kind kind,
               std::vector<int64_t> dims, int64_t offset) {
  plan::Buffer* b = p->add_buffers();
  b->set_id(p->buffers_size() - 1);
  b->set_name(name);
  b->set_dtype("f32");
  int64_t n = 1;
  for (int64_t d : dims) {
    b->add_dims(d);
    n *= d;
  }
  b->set_kind(kind);
  b->set_size_bytes(4 * n);
  (kind == plan::Buffer::ARENA ? b->set_offset(offset) : b->set_data_offset(offset));
}

// x (input) -> Identity -> y, plus a constant `big` of `big_elements` floats that no step reads.
plan::PlanProto SmallPlan(int64_t big_elements, int64_t* data_bytes) {
  plan::PlanProto p;
  p.set_format_version(kPlanFormatVersion);
  p.set_producer("plan_test");
  p.set_precision("fp32");
  p.mutable_target()->set_kind("cpu");
  p.set_alignment(64);
  AddBuffer(&p, "x", plan::Buffer::ARENA, {4}, 0);
  AddBuffer(&p, "y", plan::Buffer::ARENA, {4}, 64);
  AddBuffer(&p, "w", plan::Buffer::STATE, {4}, 0);
  AddBuffer(&p, "big", plan::Buffer::CONSTANT, {big_elements}, 64);
  p.set_arena_bytes(128);
  plan::Step* s = p.add_steps();
  s->set_name("id");
  s->mutable_op()->set_op("Identity");
  s->add_inputs(0);
  s->add_outputs(1);
  auto* in = p.add_inputs();
  in->set_name("x");
  in->set_buffer(0);
  auto* out = p.add_outputs();
  out->set_name("y");
  out->set_buffer(1);
  *data_bytes = 64 + 4 * big_elements;
  p.set_data_bytes(*data_bytes);
  return p;
}

// Writes the layout codegen/plan.h documents, with the data section left as a hole.
void WriteSparsePlan(const std::string& path, const plan::PlanProto& p, int64_t data_bytes) {
  std::string message;
  ASSERT_TRUE(p.SerializeToString(&message));
  const int64_t data_offset = kDataSectionAlignment;
  ASSERT_LT(64 + static_cast<int64_t>(message.size()), data_offset);
  uint8_t h[64] = {};
  std::memcpy(h, "AMPCPLAN", 8);
  auto put = [&](int at, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) h[at + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  put(8, kPlanFormatVersion, 4);
  put(12, 64, 4);
  put(16, 64, 8);
  put(24, message.size(), 8);
  put(32, static_cast<uint64_t>(data_offset), 8);
  put(40, static_cast<uint64_t>(data_bytes), 8);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, h, 64), 64);
  ASSERT_EQ(::write(fd, message.data(), message.size()), static_cast<ssize_t>(message.size()));
  ASSERT_EQ(::ftruncate(fd, data_offset + data_bytes), 0);  // a hole: no blocks, reads as zeros
  ::close(fd);
}

TEST(PlanFile, DataSectionOverTwoGibLoadsByMappingNotReading) {
  TempDir tmp;
  int64_t data_bytes = 0;
  const int64_t big = (int64_t{5} << 30) / 8;  // 2.5 GiB of f32
  const plan::PlanProto p = SmallPlan(big, &data_bytes);
  ASSERT_GT(data_bytes, int64_t{2} << 30);
  const std::string path = tmp / "big.ampc";
  WriteSparsePlan(path, p, data_bytes);
  const int64_t before = ResidentBytes();
  auto loaded = LoadPlan(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_TRUE(loaded->data->mapped());
  EXPECT_EQ(loaded->data->size(), data_bytes);
  // An executor binds the buffers into the mapping, runs, and updates a state, all without
  // paging in the 2.5 GiB constant.
  auto ex = cpu::CpuExecutor::Create(std::move(*loaded), 1);
  ASSERT_TRUE(ex.ok()) << ex.status().message();
  auto out = (*ex)->Run({Tensor::FromFloats({1, 2, 3, 4}, {4})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*(*out)[0].AsDoubles(), (std::vector<double>{1, 2, 3, 4}));
  ASSERT_TRUE((*ex)->SetState("w", Tensor::FromFloats({5, 6, 7, 8}, {4})).ok());
  EXPECT_EQ(*(*ex)->GetState("w")->AsDoubles(), (std::vector<double>{5, 6, 7, 8}));
  EXPECT_LT(ResidentBytes() - before, int64_t{256} << 20);
  // The mapping is private: the state written above never reaches the file.
  auto again = LoadPlan(path);
  ASSERT_TRUE(again.ok());
  float w0 = -1;
  std::memcpy(&w0, again->data->data() + again->proto.buffers(2).data_offset(), 4);
  EXPECT_EQ(w0, 0.0f);
}

TEST(PlanFile, SaveLoadRoundTripKeepsMessageAndData) {
  TempDir tmp;
  int64_t data_bytes = 0;
  const plan::PlanProto proto = SmallPlan(16, &data_bytes);
  auto data = PlanData::Allocate(data_bytes);
  ASSERT_TRUE(data.ok());
  for (int64_t i = 0; i < data_bytes; ++i) (*data)->data()[i] = static_cast<uint8_t>(i * 7);
  Plan p{proto, *data};
  ASSERT_TRUE(SavePlan(p, tmp / "p.ampc").ok());
  auto back = LoadPlan(tmp / "p.ampc");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->proto.SerializeAsString(), proto.SerializeAsString());
  ASSERT_EQ(back->data->size(), data_bytes);
  EXPECT_EQ(std::memcmp(back->data->data(), (*data)->data(), data_bytes), 0);
}

TEST(PlanFile, OlderAndNewerFormatsAreClearErrors) {
  TempDir tmp;
  int64_t data_bytes = 0;
  plan::PlanProto proto = SmallPlan(16, &data_bytes);
  // Format 2 was the bare message with the weights inline.
  proto.set_format_version(2);
  testing::WriteBytes(tmp / "old.ampc", proto.SerializeAsString());
  auto old = LoadPlan(tmp / "old.ampc");
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.status().message().find("plan format 2 was written by an older ampc; recompile"),
            std::string::npos)
      << old.status().message();
  // A header from the future.
  proto.set_format_version(kPlanFormatVersion);
  auto data = PlanData::Allocate(data_bytes);
  ASSERT_TRUE(SavePlan(Plan{proto, *data}, tmp / "new.ampc").ok());
  std::string bytes = testing::ReadBytes(tmp / "new.ampc");
  bytes[8] = static_cast<char>(kPlanFormatVersion + 1);
  testing::WriteBytes(tmp / "new.ampc", bytes);
  auto newer = LoadPlan(tmp / "new.ampc");
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(newer.status().message().find("is newer than this ampc reads"), std::string::npos);
  // Truncated inside the data section.
  testing::WriteBytes(tmp / "cut.ampc", bytes.substr(0, bytes.size() - 10));
  bytes[8] = static_cast<char>(kPlanFormatVersion);
  testing::WriteBytes(tmp / "cut.ampc", bytes.substr(0, bytes.size() - 10));
  auto cut = LoadPlan(tmp / "cut.ampc");
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find("truncated or corrupt"), std::string::npos)
      << cut.status().message();
}

TEST(PlanFile, VerifyRejectsDataOutsideTheSectionAndMisalignment) {
  int64_t data_bytes = 0;
  plan::PlanProto proto = SmallPlan(16, &data_bytes);
  auto data = PlanData::Allocate(data_bytes);
  ASSERT_TRUE(VerifyPlan(Plan{proto, *data}).ok());
  plan::PlanProto bad = proto;
  bad.mutable_buffers(3)->set_data_offset(data_bytes);  // past the end
  auto st = VerifyPlan(Plan{bad, *data});
  EXPECT_NE(st.message().find("'big'): its data lies outside"), std::string::npos) << st.message();
  bad = proto;
  bad.mutable_buffers(3)->set_data_offset(4);  // inside, but not 64-aligned
  st = VerifyPlan(Plan{bad, *data});
  EXPECT_NE(st.message().find("misaligned"), std::string::npos) << st.message();
  bad = proto;
  bad.mutable_steps(0)->mutable_kernel()->set_kernel(0);  // a kernel the table does not have
  st = VerifyPlan(Plan{bad, *data});
  EXPECT_NE(st.message().find("names kernel 0 of 0"), std::string::npos) << st.message();
  bad = proto;
  bad.add_metrics("nope");
  st = VerifyPlan(Plan{bad, *data});
  EXPECT_NE(st.message().find("metric 'nope' is neither an output nor a state"), std::string::npos);
}

TEST(PlanFile, EvalPassSharesTheStepsParameters) {
  int64_t data_bytes = 0;
  plan::PlanProto step = SmallPlan(16, &data_bytes);
  plan::PlanProto eval = SmallPlan(8, &data_bytes);
  eval.mutable_buffers(2)->set_kind(plan::Buffer::CONSTANT);  // w: a state in the step
  eval.mutable_buffers(3)->set_name("other");                 // not in the step
  auto sd = PlanData::Allocate(64 + 4 * 16), ed = PlanData::Allocate(64 + 4 * 8);
  for (int i = 0; i < 4; ++i) {
    const float v = 10.0f + i;
    std::memcpy((*ed)->data() + 64 + 4 * i, &v, 4);  // eval's `other`
  }
  auto both = AttachEvalPass(Plan{step, *sd}, Plan{eval, *ed});
  ASSERT_TRUE(both.ok()) << both.status().message();
  const plan::PlanProto& e = both->proto.training().eval();
  EXPECT_EQ(e.buffers(2).data_offset(), both->proto.buffers(2).data_offset());  // shared
  EXPECT_GE(e.buffers(3).data_offset(), 64 + 4 * 16);  // appended after the step's data
  float v = 0;
  std::memcpy(&v, both->data->data() + e.buffers(3).data_offset(), 4);
  EXPECT_EQ(v, 10.0f);
  EXPECT_TRUE(VerifyPlan(*both).ok());
  EXPECT_TRUE(VerifyPlan(both->EvalPass()).ok());
}

// --- synthetic data (SynthesizeData, ampc compile --synthetic-weights) -----------------------

struct SyntheticFixture {
  Plan plan;
  std::vector<float> big;      // 4096 f32 weights: a uniform fill
  std::vector<uint16_t> half;  // 2048 bf16 weights: a uniform fill
  std::vector<float> w;        // 4 f32 values: too small, stored
  std::vector<int64_t> ints;   // 8 i64 values: not float, stored
};

// A plan with a stored state, a large f32 and a large bf16 weight, zero moments, a constant
// LayerNorm-like scale of 1.0 and an integer constant (values from a fixed formula).
SyntheticFixture MakeSynthetic() {
  SyntheticFixture f;
  int64_t ignored = 0;
  plan::PlanProto p = SmallPlan(4096, &ignored);
  auto add = [&](const std::string& name, const std::string& dtype, int64_t n, int es) {
    AddBuffer(&p, name, plan::Buffer::STATE, {n}, 0);
    plan::Buffer* b = p.mutable_buffers(p.buffers_size() - 1);
    b->set_dtype(dtype);
    b->set_size_bytes(n * es);
  };
  add("moment", "f32", 2048, 4);
  add("scale", "f32", 300, 4);
  add("half", "bf16", 2048, 2);
  add("ints", "i64", 8, 8);
  for (int i = 0; i < 4096; ++i) f.big.push_back(std::sin(0.37f * i) * 0.05f + 0.01f);
  for (int i = 0; i < 2048; ++i) f.half.push_back(FloatToBFloat16Bits(std::cos(0.11f * i) * 2.0f));
  f.w = {0.5f, -1.5f, 2.25f, 3.0f};
  for (int i = 0; i < 8; ++i) f.ints.push_back(i * i - 3);
  const std::vector<float> moment(2048, 0.0f), scale(300, 1.0f);
  PlanDataBuilder d;
  const void* bytes[] = {f.w.data(),   f.big.data(),  moment.data(),
                         scale.data(), f.half.data(), f.ints.data()};
  for (int i = 2; i < p.buffers_size(); ++i) {
    p.mutable_buffers(i)->set_data_offset(d.Append(bytes[i - 2], p.buffers(i).size_bytes()));
  }
  f.plan.data = *d.Finish();
  p.set_data_bytes(f.plan.data->size());
  f.plan.proto = p;
  return f;
}

template <typename T>
std::vector<T> Values(const Plan& p, const std::string& name) {
  for (const plan::Buffer& b : p.proto.buffers()) {
    if (b.name() != name) continue;
    std::vector<T> v(static_cast<size_t>(b.size_bytes()) / sizeof(T));
    std::memcpy(v.data(), BufferData(p, b), static_cast<size_t>(b.size_bytes()));
    return v;
  }
  ADD_FAILURE() << "no buffer " << name;
  return {};
}

// Uniform values over [lo, hi]: inside it, reaching near both ends, with the mean and variance
// of the uniform distribution (mean (lo+hi)/2 within 5 standard errors, variance (hi-lo)^2/12
// within 10%), and not the original values.
void ExpectUniform(const std::vector<double>& v, const std::vector<double>& original) {
  const auto [lo_it, hi_it] = std::minmax_element(original.begin(), original.end());
  const double lo = *lo_it, hi = *hi_it, n = static_cast<double>(v.size());
  double sum = 0, sq = 0, vmin = INFINITY, vmax = -INFINITY;
  for (double x : v) {
    sum += x;
    vmin = std::min(vmin, x);
    vmax = std::max(vmax, x);
  }
  const double mean = sum / n;
  for (double x : v) sq += (x - mean) * (x - mean);
  const double var = sq / n, uvar = (hi - lo) * (hi - lo) / 12;
  EXPECT_GE(vmin, lo);
  EXPECT_LE(vmax, hi);
  EXPECT_LT(vmin - lo, 0.01 * (hi - lo));
  EXPECT_LT(hi - vmax, 0.01 * (hi - lo));
  EXPECT_NEAR(mean, (lo + hi) / 2, 5 * std::sqrt(uvar / n));
  EXPECT_NEAR(var, uvar, 0.1 * uvar);
  EXPECT_NE(v, original);
}

TEST(SyntheticData, ZerosAndRepeatsStayExactAndWeightsBecomeSeededUniformValues) {
  SyntheticFixture f = MakeSynthetic();
  SyntheticDataOptions o;
  o.seed = 7;
  ASSERT_TRUE(SynthesizeData(f.plan, o).ok());
  const plan::PlanProto& p = f.plan.proto;
  // Stored: w and the integers (and their alignment); made: big, moment, scale, half.
  ASSERT_EQ(p.data_fills_size(), 4);
  EXPECT_EQ(p.stored_data_bytes(), 64 + 8 * 8);
  EXPECT_EQ(p.data_bytes(), f.plan.data->size());
  EXPECT_TRUE(VerifyPlan(f.plan).ok());
  EXPECT_EQ(Values<float>(f.plan, "w"), f.w);
  EXPECT_EQ(Values<int64_t>(f.plan, "ints"), f.ints);
  EXPECT_EQ(Values<float>(f.plan, "moment"), std::vector<float>(2048, 0.0f));
  EXPECT_EQ(Values<float>(f.plan, "scale"), std::vector<float>(300, 1.0f));
  const auto big = Values<float>(f.plan, "big");
  ExpectUniform(std::vector<double>(big.begin(), big.end()),
                std::vector<double>(f.big.begin(), f.big.end()));
  std::vector<double> half, half0;
  for (uint16_t h : Values<uint16_t>(f.plan, "half")) half.push_back(BFloat16BitsToFloat(h));
  for (uint16_t h : f.half) half0.push_back(BFloat16BitsToFloat(h));
  ExpectUniform(half, half0);

  // The same seed makes the same values; another seed others.
  SyntheticFixture g = MakeSynthetic();
  ASSERT_TRUE(SynthesizeData(g.plan, o).ok());
  EXPECT_EQ(Values<float>(g.plan, "big"), big);
  SyntheticFixture h = MakeSynthetic();
  o.seed = 8;
  ASSERT_TRUE(SynthesizeData(h.plan, o).ok());
  EXPECT_NE(Values<float>(h.plan, "big"), big);
  // Twice is an error, not a silent second replacement.
  EXPECT_FALSE(SynthesizeData(g.plan, o).ok());
}

TEST(SyntheticData, TheFileStoresOnlyTheRestAndLoadsTheSameBytes) {
  TempDir tmp;
  SyntheticFixture f = MakeSynthetic();
  ASSERT_TRUE(SynthesizeData(f.plan, {}).ok());
  const std::string path = tmp / "s.ampc";
  ASSERT_TRUE(SavePlan(f.plan, path, PlanDataOnDisk::kAsDescribed).ok());
  EXPECT_EQ(std::filesystem::file_size(path),
            static_cast<uintmax_t>(kDataSectionAlignment + f.plan.proto.stored_data_bytes()));
  auto back = LoadPlan(path);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_FALSE(back->data->mapped());
  ASSERT_EQ(back->data->size(), f.plan.data->size());
  EXPECT_EQ(std::memcmp(back->data->data(), f.plan.data->data(),
                        static_cast<size_t>(f.plan.data->size())),
            0);
  // A trained plan saved as usual keeps its trained values: the fills are dropped.
  const float trained = 42.0f;
  std::memcpy(BufferData(*back, back->proto.buffers(3)), &trained, 4);  // big[0]
  ASSERT_TRUE(SavePlan(*back, tmp / "t.ampc").ok());
  auto again = LoadPlan(tmp / "t.ampc");
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE(again->proto.data_fills().empty());
  EXPECT_EQ(Values<float>(*again, "big")[0], 42.0f);
}

TEST(SyntheticData, CorruptFillsAreClearErrors) {
  TempDir tmp;
  SyntheticFixture f = MakeSynthetic();
  ASSERT_TRUE(SynthesizeData(f.plan, {}).ok());
  auto expect_error = [&](const char* what, const std::function<void(plan::PlanProto&)>& edit) {
    Plan bad{f.plan.proto, f.plan.data};
    edit(bad.proto);
    const std::string path = tmp / "bad.ampc";
    ASSERT_TRUE(SavePlan(bad, path, PlanDataOnDisk::kAsDescribed).ok());
    auto loaded = LoadPlan(path);
    ASSERT_FALSE(loaded.ok()) << what;
    EXPECT_NE(loaded.status().message().find(what), std::string::npos) << loaded.status().message();
  };
  expect_error("is not whole f32 elements",
               [](plan::PlanProto& p) { p.mutable_data_fills(0)->set_offset(0); });
  expect_error("is not whole f32 elements",
               [](plan::PlanProto& p) { p.mutable_data_fills(0)->set_bytes(p.data_bytes()); });
  expect_error("overlap", [](plan::PlanProto& p) {
    p.mutable_data_fills(1)->set_offset(p.data_fills(0).offset());
  });
  expect_error("unknown kind", [](plan::PlanProto& p) {
    p.mutable_data_fills(0)->set_kind(static_cast<plan::DataFill::Kind>(9));
  });
  expect_error("needs a float dtype", [](plan::PlanProto& p) {
    for (auto& fill : *p.mutable_data_fills()) {
      if (fill.kind() == plan::DataFill::UNIFORM) fill.set_low(NAN);
    }
  });
  expect_error("wider than", [](plan::PlanProto& p) {
    for (auto& fill : *p.mutable_data_fills()) {
      if (fill.kind() == plan::DataFill::REPEAT) fill.set_bits(uint64_t{1} << 40);
    }
  });
  expect_error("unknown dtype",
               [](plan::PlanProto& p) { p.mutable_data_fills(0)->set_dtype("q7"); });
  plan::PlanProto bad = f.plan.proto;
  bad.set_stored_data_bytes(bad.data_bytes() + 64);
  const Status st = VerifyPlan(Plan{bad, f.plan.data});
  EXPECT_NE(st.message().find("stored_data_bytes"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace ampc
