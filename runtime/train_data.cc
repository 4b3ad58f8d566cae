#include "runtime/train_data.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "runtime/cpu/convert.h"
#include "runtime/cpu/kernel.h"
#include "runtime/data/datasets.h"

namespace ampc {
namespace {

// Checks a per-sample shape against the model input's type (which has the batch dim first).
Status CheckSampleDims(const std::vector<int64_t>& dims, const TensorType& want,
                       const std::string& what) {
  if (!want.has_rank) return Status::Ok();
  bool ok = static_cast<int64_t>(dims.size()) == want.rank() && !dims.empty();
  for (size_t i = 1; ok && i < dims.size(); ++i) {
    ok = !want.dims[i].is_static() || want.dims[i].value() == dims[i];
  }
  if (!ok) {
    return InvalidArgument(what + " has shape " + cpu::DimsToString(dims) +
                           " but the model input is " + want.ToString());
  }
  return Status::Ok();
}

const Value* InputNamed(const Graph& g, const std::string& name) {
  const Value* v = g.FindValue(name);
  return v && v->kind() == ValueKind::kInput ? v : nullptr;
}

Status AddArray(Dataset& d, const std::string& name, Tensor t, const TensorType& want,
                const std::string& what) {
  ASSIGN_OR_RETURN(t, ToDType(t, want.dtype, what));
  RETURN_IF_ERROR(CheckSampleDims(t.dims(), want, what));
  const int64_t n = t.dims()[0];
  if (!d.arrays.empty() && n != d.size) {
    return InvalidArgument(what + " has " + std::to_string(n) + " samples, the other arrays " +
                           std::to_string(d.size));
  }
  d.size = n;
  d.arrays[name] = std::move(t);
  return Status::Ok();
}

}  // namespace

StatusOr<Tensor> ToDType(const Tensor& t, DType want, const std::string& what) {
  if (t.dtype() == want) return t;
  if (IsHalf(want) && IsFloat(t.dtype()) && t.dtype() != DType::kFloat32) {
    ASSIGN_OR_RETURN(Tensor f32, ToDType(t, DType::kFloat32, what));
    return ToDType(f32, want, what);
  }
  const bool both_float = IsFloat(t.dtype()) && IsFloat(want);
  const bool both_int = IsInteger(t.dtype()) && IsInteger(want);
  if (!both_float && !both_int) {
    return InvalidArgument(what + " holds " + std::string(DTypeName(t.dtype())) +
                           " but the model reads " + std::string(DTypeName(want)));
  }
  Tensor out = Tensor::Zeros(want, t.dims());
  const int64_t n = t.NumElements();
  auto* dst = const_cast<uint8_t*>(out.bytes().data());
  if (both_float) {
    for (int64_t i = 0; i < n; ++i)
      cpu::Store<double>(dst, want, i, cpu::Load<double>(t.bytes().data(), t.dtype(), i));
  } else {
    auto v = t.AsInt64s();
    for (int64_t i = 0; i < n; ++i) cpu::Store<double>(dst, want, i, static_cast<double>((*v)[i]));
  }
  return out;
}

StatusOr<Dataset> DatasetFromNpz(const std::string& path, const Graph& g,
                                 const std::vector<std::string>& needed) {
  ASSIGN_OR_RETURN(auto arrays, ReadNpz(path));
  return DatasetFromArrays(path, std::move(arrays), g, needed);
}

StatusOr<Dataset> DatasetFromArrays(const std::string& path, std::map<std::string, Tensor> arrays,
                                    const Graph& g, const std::vector<std::string>& needed) {
  Dataset d;
  std::string keys;
  for (const auto& [k, v] : arrays) keys += (keys.empty() ? "" : ", ") + k;
  for (const std::string& name : needed) {
    const Value* v = InputNamed(g, name);
    if (!v) return Internal("training graph has no input '" + name + "'");
    auto it = arrays.find(name);
    if (it == arrays.end()) {
      return NotFound(path + ": no array named '" + name + "' for the model input " +
                      v->type().ToString() + " (arrays: " + keys + ")");
    }
    if (it->second.dims().empty())
      return InvalidArgument(path + ": array '" + name + "' is a scalar");
    RETURN_IF_ERROR(
        AddArray(d, name, std::move(it->second), v->type(), path + ": array '" + name + "'"));
  }
  if (d.size == 0) return InvalidArgument(path + ": the data set has no samples");
  return d;
}

StatusOr<Dataset> DatasetFromFashionMnist(const std::string& dir, const std::string& split,
                                          const Graph& g, const std::string& image_input,
                                          const std::string& labels) {
  const Value* img = InputNamed(g, image_input);
  if (!img) return Internal("training graph has no input '" + image_input + "'");
  const TensorType& t = img->type();
  if (!t.has_rank || !IsFloat(t.dtype)) {
    return InvalidArgument("fashion-mnist feeds float images but model input '" + image_input +
                           "' is " + t.ToString());
  }
  ASSIGN_OR_RETURN(LabeledImages li, ReadFashionMnist(dir, split));
  const int64_t n = li.images.dims()[0];
  std::vector<int64_t> dims;
  if (t.rank() == 2) {
    dims = {n, 784};
  } else if (t.rank() == 3) {
    dims = {n, 28, 28};
  } else if (t.rank() == 4) {
    dims = {n, 1, 28, 28};
  } else {
    return InvalidArgument("fashion-mnist images are 28x28 but model input '" + image_input +
                           "' is " + t.ToString() +
                           " (expected [N,784], [N,28,28] or [N,1,28,28])");
  }
  Tensor images(DType::kFloat32, dims, li.images.bytes());
  Dataset d;
  RETURN_IF_ERROR(
      AddArray(d, image_input, std::move(images), t, "fashion-mnist " + split + " images"));
  if (!labels.empty()) {
    const Value* lv = InputNamed(g, labels);
    if (!lv) return Internal("training graph has no labels input '" + labels + "'");
    RETURN_IF_ERROR(
        AddArray(d, labels, li.labels, lv->type(), "fashion-mnist " + split + " labels"));
  }
  return d;
}

StatusOr<Dataset> LoadTrainingData(const std::string& spec, const std::string& split,
                                   const Graph& inputs, const plan::Training& meta) {
  std::vector<std::string> needed(meta.data_inputs().begin(), meta.data_inputs().end());
  if (!meta.labels().empty()) needed.push_back(meta.labels());
  if (spec == "fashion-mnist") {
    if (meta.data_inputs_size() != 1) {
      return InvalidArgument("fashion-mnist feeds one image input; the model has " +
                             std::to_string(meta.data_inputs_size()));
    }
    // AMPC_FASHION_MNIST_DIR: another copy of the data set (the bad-input tests point it at
    // broken IDX files).
    const char* dir = std::getenv("AMPC_FASHION_MNIST_DIR");
    return DatasetFromFashionMnist(dir && *dir ? dir : kFashionMnistDir, split, inputs,
                                   meta.data_inputs(0), meta.labels());
  }
  if (spec.size() < 4 || spec.substr(spec.size() - 4) != ".npz") {
    return InvalidArgument("--data " + spec + ": expected FILE.npz or fashion-mnist");
  }
  return DatasetFromNpz(spec, inputs, needed);
}

StatusOr<std::unique_ptr<Graph>> InputGraphOfPlan(const plan::PlanProto& p) {
  auto g = std::make_unique<Graph>();
  for (const auto& io : p.inputs()) {
    const plan::Buffer& b = p.buffers(io.buffer());
    auto dt = DTypeFromName(b.dtype());
    if (!dt) return InvalidArgument("plan input '" + io.name() + "' has an unknown dtype");
    std::vector<Dim> dims(b.dims().begin(), b.dims().end());
    RETURN_IF_ERROR(g->AddInput(io.name(), TensorType(*dt, dims)).status());
  }
  return g;
}

StatusOr<std::map<std::string, Tensor>> GatherBatch(
    const Dataset& d, const std::vector<int64_t>& order, int64_t first, int64_t count,
    std::map<std::string, std::vector<uint8_t>>* spare) {
  if (first < 0 || count <= 0 || first + count > d.size) {
    return InvalidArgument("batch [" + std::to_string(first) + ", " +
                           std::to_string(first + count) + ") is outside the data set of " +
                           std::to_string(d.size));
  }
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : d.arrays) {
    const int64_t row = t.NumElements() / d.size * DTypeSize(t.dtype());
    std::vector<int64_t> dims = t.dims();
    dims[0] = count;
    std::vector<uint8_t> bytes;
    if (spare) bytes = std::move((*spare)[name]);  // the last batch's buffer of this array
    bytes.resize(row * count);
    const uint8_t* src = t.bytes().data();
    if (order.empty()) {
      std::memcpy(bytes.data(), src + first * row, row * count);
    } else {
      for (int64_t i = 0; i < count; ++i) {
        std::memcpy(bytes.data() + i * row, src + order[first + i] * row, row);
      }
    }
    out.emplace(name, Tensor(t.dtype(), std::move(dims), std::move(bytes)));
  }
  return out;
}

struct BatchPrefetcher::Impl {
  const Dataset& data;
  int64_t batch = 0, per_epoch = 1;
  bool shuffle = false;
  uint64_t seed = 0;
  // Epoch -> its order (the current epoch's and the next's). Only Gather reads or writes it, and
  // the protocol below never runs two gathers at once.
  std::map<int64_t, std::vector<int64_t>> orders;
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::vector<uint8_t>> spare;  // recycled buffers (under mu)
  int64_t job = -1;                                   // the step being gathered in the background
  int64_t ready_step = -1;                            // the step `ready` holds
  std::optional<StatusOr<std::map<std::string, Tensor>>> ready;
  bool stop = false;
  std::thread worker;

  Impl(const Dataset& d) : data(d) {}
};

BatchPrefetcher::BatchPrefetcher(const Dataset& d, int64_t batch, bool shuffle, uint64_t seed)
    : impl_(std::make_unique<Impl>(d)) {
  impl_->batch = batch;
  impl_->per_epoch = std::max<int64_t>(1, batch > 0 ? d.size / batch : 1);
  impl_->shuffle = shuffle;
  impl_->seed = seed;
}

BatchPrefetcher::~BatchPrefetcher() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (impl_->worker.joinable()) impl_->worker.join();
}

StatusOr<std::map<std::string, Tensor>> BatchPrefetcher::Gather(
    int64_t step, std::map<std::string, std::vector<uint8_t>> spare) {
  Impl& m = *impl_;
  const int64_t epoch = step / m.per_epoch;
  static const std::vector<int64_t> kFileOrder;
  const std::vector<int64_t>* order = &kFileOrder;
  if (m.shuffle) {
    while (!m.orders.empty() && m.orders.begin()->first < epoch) m.orders.erase(m.orders.begin());
    auto it = m.orders.find(epoch);
    if (it == m.orders.end()) {
      it =
          m.orders.emplace(epoch, ShuffledOrder(m.data.size, m.seed + static_cast<uint64_t>(epoch)))
              .first;
    }
    order = &it->second;
  }
  return GatherBatch(m.data, *order, (step % m.per_epoch) * m.batch, m.batch, &spare);
}

void BatchPrefetcher::Worker() {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> lk(m.mu);
  for (;;) {
    m.cv.wait(lk, [&] { return m.stop || m.job >= 0; });
    if (m.stop) return;
    const int64_t step = m.job;
    auto spare = std::move(m.spare);
    m.spare.clear();
    lk.unlock();
    auto r = Gather(step, std::move(spare));
    lk.lock();
    m.ready = std::move(r);
    m.ready_step = step;
    m.job = -1;
    m.cv.notify_all();
  }
}

StatusOr<std::map<std::string, Tensor>> BatchPrefetcher::Take(int64_t step, int64_t end) {
  Impl& m = *impl_;
  std::optional<StatusOr<std::map<std::string, Tensor>>> out;
  std::map<std::string, std::vector<uint8_t>> spare;
  {
    std::unique_lock<std::mutex> lk(m.mu);
    m.cv.wait(lk, [&] { return m.job < 0; });  // a gather in flight finishes first
    if (m.ready && m.ready_step == step) out = std::move(*m.ready);
    m.ready.reset();
    if (!out) {
      spare = std::move(m.spare);
      m.spare.clear();
    }
  }
  if (!out) out = Gather(step, std::move(spare));
  if (step + 1 < end) {
    {
      std::lock_guard<std::mutex> lk(m.mu);
      m.job = step + 1;
    }
    if (!m.worker.joinable()) m.worker = std::thread([this] { Worker(); });
    m.cv.notify_all();
  }
  return std::move(*out);
}

void BatchPrefetcher::Recycle(const std::string& name, std::vector<uint8_t> bytes) {
  std::lock_guard<std::mutex> lk(impl_->mu);
  impl_->spare[name] = std::move(bytes);
}

std::vector<int64_t> ShuffledOrder(int64_t n, uint64_t seed) {
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);  // the engine's output sequence is fixed by the standard
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

Status LrSchedule::Validate() const {
  if (kind != "constant" && kind != "cosine" && kind != "step" && kind != "linear") {
    return InvalidArgument("--lr-schedule '" + kind +
                           "' is not one of constant, cosine, step, linear");
  }
  if (!(base >= 0) || !std::isfinite(base))
    return InvalidArgument("--lr must be a finite rate >= 0");
  if (warmup_steps < 0) return InvalidArgument("--warmup-steps must be >= 0");
  if (kind == "step" && step_size <= 0) return InvalidArgument("--lr-step-size must be > 0");
  if (!(min_lr >= 0) || min_lr > base) return InvalidArgument("--min-lr must be in [0, --lr]");
  return Status::Ok();
}

double LrSchedule::At(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps) {
    return base * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  }
  const int64_t t = step - warmup_steps;
  const int64_t span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double frac = std::min(1.0, static_cast<double>(t) / static_cast<double>(span));
  if (kind == "cosine") return min_lr + (base - min_lr) * 0.5 * (1.0 + std::cos(M_PI * frac));
  if (kind == "linear") return base + (min_lr - base) * frac;
  if (kind == "step") return base * std::pow(gamma, static_cast<double>(t / step_size));
  return base;
}

}  // namespace ampc
