// Slice on the CUDA runtime as one strided copy (runtime/cuda/step_plan.h's
// DescribeStridedCopies), decided without a GPU: the description run through the CPU model of the
// copy kernel against the CPU runtime's Slice kernel, on random bytes, for positive and negative
// steps, negative and clamped starts and ends, omitted axes and steps, i32 indices and an empty
// slice; and the refusal of starts computed on the device.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cuda_plan_util.h"
#include "runtime/cpu/kernel.h"
#include "runtime/cpu/thread_pool.h"
#include "runtime/cuda/step_plan.h"

namespace ampc {
namespace {

using cuda_test::Count;
using cuda_test::RunCopyModel;

struct SliceCase {
  std::vector<int64_t> x;    // the input's dims (f32 or bf16)
  std::vector<int64_t> out;  // the slice's, by ONNX's rules (the CPU kernel checks them)
  std::vector<int64_t> starts, ends;
  std::optional<std::vector<int64_t>> axes, steps;
  bool i32 = false;
  DType dtype = DType::kFloat32;
};

// A plan of one Slice step whose index inputs are constants, their bytes in `host`.
struct SlicePlan {
  plan::PlanProto p;
  std::map<int, std::vector<uint8_t>> host;
};

SlicePlan MakeSlicePlan(const SliceCase& c, const std::vector<int64_t>& out_dims) {
  SlicePlan sp;
  auto add = [&](DType t, const std::vector<int64_t>& dims, plan::Buffer::Kind kind) {
    plan::Buffer* b = sp.p.add_buffers();
    b->set_dtype(std::string(DTypeName(t)));
    for (int64_t d : dims) b->add_dims(d);
    b->set_kind(kind);
    b->set_size_bytes(Count(dims) * static_cast<int64_t>(DTypeSize(t)));
    return sp.p.buffers_size() - 1;
  };
  plan::Step* s = sp.p.add_steps();
  s->mutable_op()->set_op("Slice");
  s->set_name("slice");
  s->add_inputs(add(c.dtype, c.x, plan::Buffer::ARENA));
  const DType it = c.i32 ? DType::kInt32 : DType::kInt64;
  for (const std::optional<std::vector<int64_t>>& v :
       {std::optional(c.starts), std::optional(c.ends), c.axes, c.steps}) {
    if (!v) {
      s->add_inputs(-1);
      continue;
    }
    const int id = add(it, {static_cast<int64_t>(v->size())}, plan::Buffer::CONSTANT);
    std::vector<uint8_t>& bytes = sp.host[id];
    for (int64_t x : *v) {
      const int32_t y = static_cast<int32_t>(x);
      const uint8_t* src = c.i32 ? reinterpret_cast<const uint8_t*>(&y)
                                 : reinterpret_cast<const uint8_t*>(&x);
      bytes.insert(bytes.end(), src, src + (c.i32 ? 4 : 8));
    }
    s->add_inputs(id);
  }
  while (s->inputs_size() > 3 && s->inputs(s->inputs_size() - 1) < 0) {
    s->mutable_inputs()->RemoveLast();
  }
  s->add_outputs(add(c.dtype, out_dims, plan::Buffer::ARENA));
  return sp;
}

TEST(CudaSlice, StridedCopyMatchesTheCpuKernel) {
  const std::vector<SliceCase> cases = {
      {{4, 5, 6}, {4, 2, 6}, {1}, {3}, std::vector<int64_t>{1}, std::nullopt},
      // every other row; the last axis from -4 (2) to a clamped end
      {{4, 5, 6}, {2, 5, 4}, {0, -4}, {4, 100}, std::vector<int64_t>{0, -1},
       std::vector<int64_t>{2, 1}},
      // backwards: last axis 5, 3, 1; first axis from a clamped 3 down by 3 (3 only)
      {{4, 5, 6}, {1, 5, 3}, {-1, 4}, {-100, 0}, std::vector<int64_t>{2, 0},
       std::vector<int64_t>{-2, -3}},
      {{7, 9}, {4, 7}, {2, 1}, {6, 8}, std::nullopt, std::nullopt, true},
      {{1, 1, 16, 16}, {1, 1, 11, 11}, {0, 0}, {11, 11}, std::vector<int64_t>{2, 3}, std::nullopt,
       false, DType::kBFloat16},  // the causal mask's [:seq, :seq]
      {{3, 8}, {3, 0}, {5}, {2}, std::vector<int64_t>{1}, std::nullopt},  // empty
  };
  std::mt19937_64 rng(11);
  int checked = 0;
  for (const SliceCase& c : cases) {
    // The CPU kernel first: it gives the output's shape and values.
    const size_t es = DTypeSize(c.dtype);
    std::vector<uint8_t> x(static_cast<size_t>(Count(c.x)) * es);
    for (uint8_t& b : x) b = static_cast<uint8_t>(rng());
    SlicePlan probe = MakeSlicePlan(c, c.out);
    const plan::Step& ps = probe.p.steps(0);
    std::vector<cpu::TensorView> views(static_cast<size_t>(ps.inputs_size()) + 1);
    cpu::KernelContext ctx;
    ctx.op = "Slice";
    AttributeMap attrs;
    ctx.attrs = &attrs;
    for (int k = 0; k < ps.inputs_size(); ++k) {
      const int id = ps.inputs(k);
      if (id < 0) {
        ctx.inputs.push_back(nullptr);
        continue;
      }
      cpu::TensorView& v = views[static_cast<size_t>(k)];
      v.dtype = *DTypeFromName(probe.p.buffers(id).dtype());
      v.dims = cuda_test::Dims(probe.p.buffers(id));
      v.data = k == 0 ? x.data() : probe.host[id].data();
      ctx.inputs.push_back(&v);
    }
    std::vector<uint8_t> want(static_cast<size_t>(Count(c.out)) * es, 0xCD);
    cpu::TensorView& out = views.back();
    out.dtype = c.dtype;
    out.dims = c.out;
    out.data = want.data();
    ctx.outputs.push_back(&out);
    cpu::ThreadPool pool(1);
    ctx.pool = &pool;
    const Status st = cpu::KernelRegistry::Global().Find("", "Slice")(ctx);
    ASSERT_TRUE(st.ok()) << st.message();

    SlicePlan& sp = probe;
    auto kinds = cuda::ClassifySteps(sp.p);
    ASSERT_TRUE(kinds.ok()) << kinds.status().message();
    EXPECT_EQ((*kinds)[0], cuda::StepKind::kStridedCopy);
    auto copies = cuda::DescribeStridedCopies(sp.p, sp.p.steps(0), [&](int id) -> const uint8_t* {
      auto it = sp.host.find(id);
      return it == sp.host.end() ? nullptr : it->second.data();
    });
    ASSERT_TRUE(copies.ok()) << copies.status().message();
    EXPECT_LE(copies->size(), 1u);
    std::vector<uint8_t> got(want.size(), 0xAB);
    for (const cuda::StridedCopy& cp : *copies) RunCopyModel(cp, x.data(), got.data());
    EXPECT_EQ(got, want) << "case " << checked;
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(cases.size()));
}

TEST(CudaSlice, IndicesComputedOnTheDeviceAreRefused) {
  SliceCase c{{4, 5}, {2, 5}, {1}, {3}, std::vector<int64_t>{0}, std::nullopt};
  SlicePlan sp = MakeSlicePlan(c, c.out);
  sp.p.mutable_buffers(sp.p.steps(0).inputs(1))->set_kind(plan::Buffer::ARENA);
  // An arena buffer no host step computed: the starts would be read on the device.
  auto kinds = cuda::ClassifySteps(sp.p);
  ASSERT_FALSE(kinds.ok());
  EXPECT_NE(kinds.status().message().find("Slice input 1 is computed on the device"),
            std::string::npos)
      << kinds.status().message();
  // And the description without host values names what is missing.
  auto copies = cuda::DescribeStridedCopies(sp.p, sp.p.steps(0));
  ASSERT_FALSE(copies.ok());
  EXPECT_NE(copies.status().message().find("Slice's starts is not known before the step runs"),
            std::string::npos)
      << copies.status().message();
}

}  // namespace
}  // namespace ampc
