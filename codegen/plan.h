// A Plan in memory and on disk. The message (codegen/plan.proto) describes buffers and steps; the
// weights and states live in a separate data section (PlanData), because a protobuf message is
// capped at 2 GiB and because a large model's weights should be mapped, not copied.
//
// `.ampc` file layout (little-endian):
//   [0, 64)           header: "AMPCPLAN", u32 format, u32 header bytes, u64 message offset,
//                     u64 message bytes, u64 data offset, u64 data bytes, 16 reserved zero bytes
//   [64, ...)         the PlanProto message
//   [data offset, +)  the data section, starting at a multiple of kDataSectionAlignment so it
//                     can be mapped; each CONSTANT/STATE buffer at its data_offset
// LoadPlan maps the data section privately (copy-on-write): a 1B-parameter plan loads without
// reading its weights, and training writes states into its own pages, never into the file.
//
// This file and plan_target.h are all of codegen/ the runtime may include.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codegen/plan.pb.h"
#include "ir/attribute.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace ampc {

// 3: target, alignment, data section outside the message, kernel table, fusion groups, Step as
// {op, kernel}, metrics. 2 (inline data) is refused with a "recompile" message.
inline constexpr uint32_t kPlanFormatVersion = 3;
// The most buffers (inputs + outputs) a generated kernel takes; larger groups run per-op.
inline constexpr int kMaxKernelArgs = 64;
inline constexpr int64_t kPlanAlignment = 64;              // arena and data offsets
inline constexpr int64_t kDataSectionAlignment = 1 << 16;  // file offset: any page size

// The bytes of a plan's weights and states: owned (compiler output) or a private mapping of a
// plan file. Writable either way; executors bind CONSTANT and STATE buffers into it.
class PlanData {
 public:
  // Zero-filled, 64-byte aligned.
  static StatusOr<std::shared_ptr<PlanData>> Allocate(int64_t bytes);
  // Maps [offset, offset + bytes) of `path` copy-on-write. The file must be at least that long.
  static StatusOr<std::shared_ptr<PlanData>> MapFile(const std::string& path, int64_t offset,
                                                     int64_t bytes);
  PlanData(const PlanData&) = delete;
  PlanData& operator=(const PlanData&) = delete;
  ~PlanData();

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  int64_t size() const { return size_; }
  bool mapped() const { return mapped_; }

 private:
  PlanData() = default;
  uint8_t* data_ = nullptr;
  int64_t size_ = 0;
  bool mapped_ = false;
};

// A plan: the message and its data section. A training plan's evaluation pass (training.eval)
// indexes the same data section.
struct Plan {
  plan::PlanProto proto;
  std::shared_ptr<PlanData> data;

  // The evaluation pass of a training plan, sharing this plan's data.
  Plan EvalPass() const { return Plan{proto.training().eval(), data}; }
};

// The bytes of a CONSTANT or STATE buffer (VerifyPlan has checked the bounds).
inline uint8_t* BufferData(const Plan& p, const plan::Buffer& b) {
  return p.data->data() + b.data_offset();
}

// Lays out a data section: each Append lands at the next kPlanAlignment boundary.
class PlanDataBuilder {
 public:
  int64_t Append(const void* bytes, int64_t n);  // returns the offset
  int64_t size() const { return size_; }
  StatusOr<std::shared_ptr<PlanData>> Finish() const;

 private:
  struct Piece {
    const void* bytes;
    int64_t offset, n;
  };
  std::vector<Piece> pieces_;
  int64_t size_ = 0;
};

// `step` with `eval` attached as its evaluation pass (training.eval), in one data section: eval's
// data is appended, except that an evaluation constant with the name, dtype and shape of a step's
// state or constant shares its bytes (parameters and running statistics: one copy in the file,
// and the evaluation pass of a saved plan reads the trained values).
StatusOr<Plan> AttachEvalPass(Plan step, const Plan& eval);

// Synthetic data (`ampc compile --synthetic-weights`): a benchmark of a model too large to carry
// (GPT-2 small's weights and Adam moments are 2 GB) needs a plan file without its data. The
// CONSTANT and STATE tensors that are all zeros (optimizer moments), all one value (LayerNorm
// scales) or, with replace_weights, float tensors of at least min_elements elements become
// plan.proto DataFills at the end of the data section, which the loader makes again: zeros and
// repeats exactly, the weights as seeded uniform values over each tensor's own [min, max] (a
// model to time, not the trained one). `p.data` is rewritten to what the loader will make.
struct SyntheticDataOptions {
  bool replace_weights = true;
  int64_t min_elements = 1024;
  uint64_t seed = 0;
};
Status SynthesizeData(Plan& p, const SyntheticDataOptions& options);
// The plan's DataFills: known kinds and dtypes, whole elements inside [stored_data_bytes,
// data_bytes), none overlapping (LoadPlan runs it before making them, VerifyPlan again).
Status VerifyDataFills(const plan::PlanProto& p);
// Writes p.data_fills into `data` (sized p.data_bytes()); VerifyPlan has checked the fills.
void MaterializeFills(const plan::PlanProto& p, PlanData& data);
// The value of element `index` of a UNIFORM fill, before rounding to the fill's dtype.
double UniformFillValue(const plan::DataFill& f, int64_t index);

// What SavePlan writes of the data section.
enum class PlanDataOnDisk {
  kWhole,        // every byte, as the data is now (trained states); the plan's fills are dropped
  kAsDescribed,  // only stored_data_bytes: the fills still describe the rest (the compiler)
};
// Writes `p` as an .ampc file, atomically and durably (ir/file_io.h).
Status SavePlan(const Plan& p, const std::string& path,
                PlanDataOnDisk data = PlanDataOnDisk::kWhole);
// Reads an .ampc file: checks the header, the format version (an older or newer format is a clear
// error), maps the data section and runs VerifyPlan on the plan and its evaluation pass.
StatusOr<Plan> LoadPlan(const std::string& path);

// Everything a corrupt or hand-edited plan could get wrong, checked once before any executor
// binds it: buffer shapes and sizes, arena and data-section bounds and alignment, step operands,
// steps writing constants, state updates, kernel indices; and the types: the graph the plan
// describes is rebuilt and re-inferred, so every buffer a step writes has exactly the dtype and
// shape its op produces and a kernel cannot write outside its buffer. Reads only small integer
// constants of the data section (the shape values inference needs).
Status VerifyPlan(const Plan& p);

// The units a call of generated kernel `k` computes, its range output holding
// `range_output_elements`: LaunchRule.units when set, else the range output's elements over
// row_elements; -1 when the rows do not divide it.
int64_t KernelUnits(const plan::Kernel& k, int64_t range_output_elements);

// Attribute conversions shared by lowering and the executors.
void AttributeToPlan(const std::string& name, const Attribute& a, plan::Attr* out);
StatusOr<Attribute> AttributeFromPlan(const plan::Attr& a);

// "step 3 node 'fc1' (MatMul)" or "step 3 node 'group_2' (kernel fused_2)", for messages.
std::string DescribeStep(const plan::PlanProto& p, int index);

}  // namespace ampc
