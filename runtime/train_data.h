// Data for the training loop (runtime/train.h): data sets mapped onto the inputs of a training
// step by name, batches, deterministic shuffling, learning-rate schedules.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codegen/plan.h"
#include "ir/graph.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace ampc {

// A data split: one array per step input, all with the same leading (sample) dimension.
struct Dataset {
  std::map<std::string, Tensor> arrays;
  int64_t size = 0;
};

// Maps the arrays of an .npz file to the inputs the step reads (`needed`, inputs of `inputs`),
// checking that every input has an array with the model's element type and a common sample count.
StatusOr<Dataset> DatasetFromNpz(const std::string& path, const Graph& inputs,
                                 const std::vector<std::string>& needed);

// The same for arrays already read (an .npz file whose arrays were looked at before the training
// graph was built); `path` is for messages.
StatusOr<Dataset> DatasetFromArrays(const std::string& path, std::map<std::string, Tensor> arrays,
                                    const Graph& inputs, const std::vector<std::string>& needed);

// FashionMNIST (Debian's dataset-fashion-mnist) shaped for the model's single image input
// ([N,784], [N,28,28] or [N,1,28,28], pixels in [0,1]) and the labels input (class indices).
StatusOr<Dataset> DatasetFromFashionMnist(const std::string& dir, const std::string& split,
                                          const Graph& inputs, const std::string& image_input,
                                          const std::string& labels);

// `spec` = FILE.npz or "fashion-mnist" (split "train" or "test"), for the data inputs and labels
// `meta` names; `inputs` holds the step's inputs with their (possibly symbolic) types.
StatusOr<Dataset> LoadTrainingData(const std::string& spec, const std::string& split,
                                   const Graph& inputs, const plan::Training& meta);

// Data converted to the element type the model reads: any float type to any float type, any
// integer type to any integer type (numpy writes float64 and int64 by default); `what` names the
// data in the error. Half types are reached through f32, as a model whose f32 input the step
// casts (passes/narrow_inputs) would: f64 -> f32 -> bf16 rounds twice, like the Cast it replaces.
StatusOr<Tensor> ToDType(const Tensor& t, DType want, const std::string& what);

// A graph whose inputs have a plan's input types (to map data onto a compiled plan).
StatusOr<std::unique_ptr<Graph>> InputGraphOfPlan(const plan::PlanProto& p);

// Rows [first, first + count) of the permutation `order` (or in file order when empty).
// `spare`, when given, holds the byte buffers of an earlier batch by array name
// (Tensor::TakeBytes) to fill instead of allocating: the training loop hands them back after each
// step, so no step allocates (or page-faults in) a fresh batch.
StatusOr<std::map<std::string, Tensor>> GatherBatch(
    const Dataset& d, const std::vector<int64_t>& order, int64_t first, int64_t count,
    std::map<std::string, std::vector<uint8_t>>* spare = nullptr);

// Deterministic on every platform (the standard library's shuffle and distributions are not).
std::vector<int64_t> ShuffledOrder(int64_t n, uint64_t seed);

// The training loop's batches, each gathered on a background thread while the step before it
// runs. Step k (from 0) takes batch k % (size / batch) of epoch k / (size / batch) + 1, whose
// order is ShuffledOrder(size, seed + epoch - 1) (file order without shuffling): the same batches
// as gathering each in turn. Two sets of batch buffers alternate (Recycle), so steps allocate
// nothing.
class BatchPrefetcher {
 public:
  BatchPrefetcher(const Dataset& d, int64_t batch, bool shuffle, uint64_t seed);
  ~BatchPrefetcher();  // waits for a gather in flight
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // Step `step`'s batch (waiting for the background gather when it is that one, else gathering
  // it now); then starts gathering step `step + 1`'s when `step + 1 < end`.
  StatusOr<std::map<std::string, Tensor>> Take(int64_t step, int64_t end);
  // Hands back a used batch's buffers (Tensor::TakeBytes) by array name for a later gather.
  void Recycle(const std::string& name, std::vector<uint8_t> bytes);

 private:
  StatusOr<std::map<std::string, Tensor>> Gather(int64_t step,
                                                 std::map<std::string, std::vector<uint8_t>> spare);
  void Worker();

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct LrSchedule {
  std::string kind = "constant";  // constant | cosine | step | linear
  double base = 0.01;
  int64_t warmup_steps = 0;  // linear warm-up from base/warmup to base (all kinds)
  int64_t total_steps = 0;   // cosine / linear: decay ends here
  int64_t step_size = 1;     // step: multiply by gamma every step_size steps
  double gamma = 0.1;
  double min_lr = 0.0;  // cosine / linear: the final rate
  Status Validate() const;
  double At(int64_t step) const;  // step counts from 0
};

}  // namespace ampc
