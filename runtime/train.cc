#include "runtime/train.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ir/training_names.h"
#include "runtime/checkpoint.h"

namespace ampc {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

int OutputIndex(const plan::PlanProto& p, const std::string& name) {
  for (int i = 0; i < p.outputs_size(); ++i) {
    if (p.outputs(i).name() == name) return i;
  }
  return -1;
}

int MetricIndex(const plan::PlanProto& p, const std::string& name) {
  for (int i = 0; i < p.metrics_size(); ++i) {
    if (p.metrics(i) == name) return i;
  }
  return -1;
}

// Sum of per-sample correct predictions (argmax over the class axis equals the label).
int64_t CountCorrect(const Tensor& logits, const Tensor& labels, int64_t axis, int64_t ignore,
                     int64_t* counted) {
  const auto& d = logits.dims();
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= d[i];
  for (size_t i = axis + 1; i < d.size(); ++i) inner *= d[i];
  const int64_t c = d[axis];
  auto lab = labels.AsInt64s();
  auto val = logits.AsDoubles();
  int64_t correct = 0;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t in = 0; in < inner; ++in) {
      const int64_t label = (*lab)[o * inner + in];
      if (label == ignore) continue;
      int64_t best = 0;
      double best_v = -INFINITY;
      for (int64_t k = 0; k < c; ++k) {
        const double v = (*val)[(o * c + k) * inner + in];
        if (v > best_v) {
          best_v = v;
          best = k;
        }
      }
      correct += best == label;
      ++*counted;
    }
  }
  return correct;
}

std::string Bar(double frac, int width) {
  const int fill = static_cast<int>(frac * width);
  std::string s(width, ' ');
  for (int i = 0; i < fill && i < width; ++i) s[i] = '=';
  if (fill < width) s[fill] = '>';
  return s;
}

struct EvalResult {
  double loss = 0;
  std::optional<double> accuracy;
};

StatusOr<EvalResult> Evaluate(TrainSession& s, const Dataset& val, const plan::Training& t) {
  RETURN_IF_ERROR(CopyStates(*s.step, *s.eval));
  const plan::PlanProto& ep = s.eval->plan();
  const int loss_i = OutputIndex(ep, t.loss());
  if (loss_i < 0)
    return InvalidArgument("the evaluation plan has no loss output '" + t.loss() + "'");
  const int logits_i = t.logits().empty() ? -1 : OutputIndex(ep, t.logits());
  double loss_sum = 0;
  int64_t samples = 0, correct = 0, counted = 0;
  const int64_t full = val.size / s.batch;
  const int64_t tail = val.size % s.batch;
  if (s.eval_tail) RETURN_IF_ERROR(CopyStates(*s.step, *s.eval_tail));
  for (int64_t b = 0; b <= full; ++b) {
    const int64_t count = b < full ? s.batch : tail;
    if (count == 0 || (b == full && !s.eval_tail)) break;
    Executor& ex = b < full ? *s.eval : *s.eval_tail;
    ASSIGN_OR_RETURN(auto batch, GatherBatch(val, {}, b * s.batch, count));
    Tensor labels = t.labels().empty() ? Tensor() : batch.at(t.labels());
    ASSIGN_OR_RETURN(std::vector<Tensor> in, OrderInputs(ex.plan(), batch, 0, 0));
    ASSIGN_OR_RETURN(std::vector<Tensor> out, ex.Run(in));
    loss_sum += out[loss_i].AsDoubles()->at(0) * static_cast<double>(count);
    samples += count;
    if (logits_i >= 0 && t.class_axis() >= 0 && !t.labels().empty()) {
      const Tensor& lg = out[logits_i];
      const auto axis = static_cast<size_t>(t.class_axis());
      if (axis >= lg.dims().size() || lg.dims()[axis] <= 0 || !labels.AsInt64s() ||
          labels.NumElements() * lg.dims()[axis] != lg.NumElements()) {
        return InvalidArgument("the evaluation plan's logits " + lg.type().ToString() +
                               " do not match the labels " + labels.type().ToString());
      }
      correct += CountCorrect(lg, labels, t.class_axis(), -100, &counted);
    }
  }
  EvalResult r;
  if (samples == 0) return InvalidArgument("the validation set is smaller than one batch");
  r.loss = loss_sum / static_cast<double>(samples);
  if (counted > 0) r.accuracy = static_cast<double>(correct) / static_cast<double>(counted);
  return r;
}

// One step whose metrics have not been read yet.
struct PendingStep {
  int64_t step = 0, epoch = 0;
  double lr = 0;
};

}  // namespace

StatusOr<std::vector<Tensor>> OrderInputs(const plan::PlanProto& p,
                                          std::map<std::string, Tensor>& batch, double lr,
                                          int64_t step) {
  std::vector<Tensor> in;
  for (const auto& io : p.inputs()) {
    const auto dt = DTypeFromName(p.buffers(io.buffer()).dtype()).value_or(DType::kFloat32);
    auto it = batch.find(io.name());
    if (it != batch.end()) {
      // A plan that reads another float type than the data set holds (an evaluation pass that
      // kept an f32 input the step narrowed to bf16): converted here.
      if (it->second.dtype() != dt && IsFloat(dt) && IsFloat(it->second.dtype())) {
        ASSIGN_OR_RETURN(it->second, ToDType(it->second, dt, "input '" + io.name() + "'"));
      }
      in.push_back(std::move(it->second));
      continue;
    }
    in.push_back(IsInteger(dt) ? Tensor::Scalar(dt, static_cast<double>(step))
                               : Tensor::Scalar(dt, lr));
  }
  return in;
}

StatusOr<Plan> CurrentTrainingPlan(const TrainSession& s) {
  ASSIGN_OR_RETURN(Plan p, s.step->CurrentPlan());
  if (!s.eval) return p;
  ASSIGN_OR_RETURN(Plan e, s.eval->CurrentPlan());
  return AttachEvalPass(std::move(p), e);
}

StatusOr<TrainSummary> Train(TrainSession& s, const Dataset& train,
                             const std::optional<Dataset>& val, const TrainLoopConfig& cfg) {
  if ((cfg.steps > 0) == (cfg.epochs > 0)) {
    return InvalidArgument("give exactly one of --steps N and --epochs E (both > 0)");
  }
  if (!s.step || s.batch <= 0) return InvalidArgument("no training step to run");
  if (cfg.checkpoint_every < 0 ||
      (cfg.checkpoint_every > 0 && cfg.save_plan.empty() && cfg.checkpoint_dir.empty())) {
    return InvalidArgument(
        "--checkpoint-every N needs N > 0 and --checkpoint-dir DIR or --save-plan FILE");
  }
  const plan::PlanProto& sp = s.step->plan();
  const plan::Training& meta = sp.training();
  if (train.size < s.batch) {
    return InvalidArgument("the training set has " + std::to_string(train.size) +
                           " samples, fewer than one batch of " + std::to_string(s.batch));
  }
  if (val && !s.eval && !cfg.quiet) {
    std::fprintf(
        stderr,
        "ampc: warning: this training graph has no evaluation pass; validation is skipped\n");
  }
  LrSchedule sched = cfg.schedule;
  if (!cfg.lr_given) sched.base = meta.lr();
  const int64_t per_epoch = train.size / s.batch;
  const int64_t total = cfg.steps > 0 ? cfg.steps : per_epoch * cfg.epochs;
  if (sched.total_steps <= 0) sched.total_steps = total;
  RETURN_IF_ERROR(sched.Validate());

  const int loss_m = MetricIndex(sp, meta.loss());
  if (loss_m < 0)
    return InvalidArgument(cfg.model + ": the training plan has no loss output '" + meta.loss() +
                           "'");
  const int norm_m = MetricIndex(sp, kGradNormOutput);
  const int scale_m = MetricIndex(sp, kLossScaleState);
  const int skipped_m = MetricIndex(sp, kSkippedState);

  std::ofstream metrics;
  if (!cfg.metrics.empty()) {
    metrics.open(cfg.metrics, std::ios::trunc);
    if (!metrics) return NotFound("--metrics " + cfg.metrics + ": cannot open for writing");
  }
  auto emit = [&](const nlohmann::json& j) {
    if (metrics.is_open()) metrics << j.dump() << '\n' << std::flush;
  };
  const bool bar = cfg.progress && !cfg.quiet && isatty(2);
  TrainSummary sum;
  int64_t first_step = 0;                                    // > 0 when resuming a saved plan
  if (cfg.start_step == 0 && s.step->HasData(kStepState)) {  // a saved plan: --steps N more
    ASSIGN_OR_RETURN(Tensor step0, s.step->GetState(kStepState));
    first_step = step0.AsInt64s()->at(0);
  }
  if (skipped_m >= 0) {
    ASSIGN_OR_RETURN(Tensor sk, s.step->GetState(kSkippedState));
    sum.skipped = sk.AsInt64s()->at(0);
    sum.finite_check = true;
  }
  const int64_t interval =
      std::max<int64_t>(1, cfg.metrics_every > 0 ? cfg.metrics_every : s.step->metrics_interval());
  const auto start = Clock::now();
  auto since = start;        // start of the steps whose metrics are pending
  double train_seconds = 0;  // in steps only (no evaluation or checkpoints)
  std::vector<PendingStep> pending;
  // Reads the metrics record and writes a line per step (samples/s averaged over the interval).
  auto flush = [&]() -> Status {
    if (pending.empty()) return Status::Ok();
    ASSIGN_OR_RETURN(std::vector<MetricsRecord> records, s.step->ReadMetrics());
    const auto now = Clock::now();
    const double dt = Seconds(since, now);
    train_seconds += dt;
    since = now;
    if (records.size() != pending.size()) {
      return Internal("the executor recorded " + std::to_string(records.size()) + " metrics for " +
                      std::to_string(pending.size()) + " steps");
    }
    const double rate = static_cast<double>(s.batch * static_cast<int64_t>(pending.size())) / dt;
    for (size_t i = 0; i < records.size(); ++i) {
      const std::vector<double>& v = records[i].values;
      const PendingStep& p = pending[i];
      sum.last_loss = v[loss_m];
      nlohmann::json j{{"step", p.step},
                       {"epoch", p.epoch},
                       {"loss", v[loss_m]},
                       {"lr", p.lr},
                       {"samples_per_s", rate}};
      if (norm_m >= 0) j["grad_norm"] = v[norm_m];
      if (skipped_m >= 0) {
        const auto skipped = static_cast<int64_t>(v[skipped_m]);
        j["skipped"] = skipped > sum.skipped;
        j["skipped_total"] = skipped;
        sum.skipped = skipped;
      }
      if (scale_m >= 0) {
        j["loss_scale"] = v[scale_m];
        if (meta.loss_scale_mode() != "none") sum.loss_scale = v[scale_m];
      }
      emit(j);
    }
    pending.clear();
    return Status::Ok();
  };
  if (cfg.start_step < 0 || (cfg.start_step > 0 && cfg.start_step >= total)) {
    return InvalidArgument("the checkpoint has done " + std::to_string(cfg.start_step) +
                           " steps; --steps/--epochs ask for " + std::to_string(total) +
                           " in all, so there is nothing left to train");
  }
  int64_t step = cfg.start_step, epoch = 0;
  BatchPrefetcher batches(train, s.batch, cfg.shuffle, cfg.seed);  // the next batch meanwhile
  while (step < total) {
    epoch = step / per_epoch + 1;
    const double lr = sched.At(first_step + step);
    ASSIGN_OR_RETURN(auto batch, batches.Take(step, total));
    ASSIGN_OR_RETURN(std::vector<Tensor> inputs, OrderInputs(sp, batch, lr, first_step + step));
    if (Status st = s.step->Step(inputs); !st.ok()) {
      (void)flush();  // the lines of the steps before it
      return st.WithContext("step " + std::to_string(first_step + step + 1));
    }
    // The executor read the batch in place: its buffers serve a later batch.
    for (int i = 0; i < sp.inputs_size(); ++i) {
      if (batch.count(sp.inputs(i).name())) {
        batches.Recycle(sp.inputs(i).name(), std::move(inputs[i]).TakeBytes());
      }
    }
    ++step;
    pending.push_back({first_step + step, epoch, lr});
    const bool epoch_end = step % per_epoch == 0 || step == total;  // and after the last step
    const bool checkpoint =
        cfg.checkpoint_every > 0 && step % cfg.checkpoint_every == 0 && step < total;
    const bool show = bar && (step % 10 == 0 || step == total);
    if (step % interval == 0 || epoch_end || checkpoint || show) RETURN_IF_ERROR(flush());
    if (show) {
      const double el = Seconds(start, Clock::now());
      std::fprintf(stderr, "\r[%s] %lld/%lld loss %.4f  %.0f samples/s ",
                   Bar(double(step) / total, 30).c_str(), static_cast<long long>(step),
                   static_cast<long long>(total), sum.last_loss,
                   static_cast<double>((step - cfg.start_step) * s.batch) / el);
      std::fflush(stderr);
    }
    if (checkpoint) {
      if (!cfg.save_plan.empty()) {
        ASSIGN_OR_RETURN(Plan p, CurrentTrainingPlan(s));
        RETURN_IF_ERROR(SavePlan(p, cfg.save_plan).WithContext("--checkpoint-every"));
      }
      if (!cfg.checkpoint_dir.empty()) {
        RETURN_IF_ERROR(
            WriteCheckpoint(cfg.checkpoint_dir, first_step + step, cfg.seed, *s.step, cfg.keep));
      }
      since = Clock::now();
    }
    if (epoch_end && val && s.eval) {
      ASSIGN_OR_RETURN(EvalResult r, Evaluate(s, *val, meta));
      nlohmann::json e{{"epoch", epoch}, {"step", first_step + step}, {"val_loss", r.loss}};
      if (r.accuracy) e["val_accuracy"] = *r.accuracy;
      e["elapsed_s"] = Seconds(start, Clock::now());
      e["train_s"] = train_seconds;
      emit(e);
      sum.val_loss = r.loss;
      sum.val_accuracy = r.accuracy;
      if (!cfg.quiet) {
        if (bar) std::fprintf(stderr, "\n");
        std::printf("epoch %lld: val_loss %.4f%s\n", static_cast<long long>(epoch), r.loss,
                    r.accuracy ? fmt::format(" val_accuracy {:.4f}", *r.accuracy).c_str() : "");
        std::fflush(stdout);
      }
      since = Clock::now();
    }
  }
  RETURN_IF_ERROR(flush());
  if (bar) std::fprintf(stderr, "\n");
  sum.steps = step - cfg.start_step;
  sum.seconds = Seconds(start, Clock::now());
  sum.samples_per_s = static_cast<double>(sum.steps * s.batch) / sum.seconds;
  if (!cfg.checkpoint_dir.empty()) {
    RETURN_IF_ERROR(
        WriteCheckpoint(cfg.checkpoint_dir, first_step + step, cfg.seed, *s.step, cfg.keep));
  }
  if (!cfg.save_plan.empty()) {
    ASSIGN_OR_RETURN(Plan p, CurrentTrainingPlan(s));
    RETURN_IF_ERROR(SavePlan(p, cfg.save_plan));
  }
  return sum;
}

}  // namespace ampc
