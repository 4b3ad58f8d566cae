// The Plan file (codegen/plan.h): the documented layout, a data section that is mapped rather
// than read (a plan over protobuf's 2 GiB message limit loads), older and newer formats refused
// with the right message, and the evaluation pass sharing the step's parameters.
#include "codegen/plan.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

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

}  // namespace
}  // namespace ampc
