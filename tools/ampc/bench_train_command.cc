// `ampc bench MODEL --data fashion-mnist|FILE.npz [training flags] [--json] [--plot FILE]`: the
// same model, initial weights and batch order (the same --seed) trained in fp32, in fp16 with
// dynamic loss scaling and in bf16. Each precision runs as its own `ampc train` child process of
// this binary, so its peak resident memory (wait4's ru_maxrss) is its own and one run cannot warm
// the allocator for the next; the runs report through --metrics JSON lines, which are the numbers
// compared here. The curves are drawn by gnuplot from a generated script.
#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "ir/file_io.h"
#include "tools/ampc/commands.h"

extern char** environ;

namespace ampc::cli {
namespace {

namespace fs = std::filesystem;

struct Run {
  std::string precision;                           // fp32 | fp16 | bf16
  std::vector<std::pair<int64_t, double>> losses;  // (step, training loss)
  struct Epoch {
    int64_t epoch;
    double val_loss;
    std::optional<double> val_accuracy;
  };
  std::vector<Epoch> epochs;
  double samples_per_s = 0;
  int64_t peak_rss_bytes = 0;
  std::optional<int64_t> skipped;  // steps skipped by the finite check (fp16, bf16)
  std::optional<double> loss_scale;
};

struct Child {
  int exit_code = -1;  // -1: killed by a signal
  int signal = 0;
  int64_t peak_rss_bytes = 0;
};

// A private temporary folder, removed with its contents at the end.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "ampc_bench_XXXXXX").string();
    if (mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  bool ok() const { return !path_.empty(); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs argv[0] with stdin from /dev/null and stdout/stderr into files, and waits for it.
StatusOr<Child> Spawn(const std::vector<std::string>& argv, const std::string& out,
                      const std::string& err) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Internal("cannot start " + argv[0] + ": " + std::strerror(rc));
  int status = 0;
  rusage ru{};
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) return Internal(std::string("wait4: ") + std::strerror(errno));
  }
  Child c;
  // Linux reports ru_maxrss in KiB. (It also counts this process's size at the exec, a few MiB,
  // which is below any training run's peak.)
  c.peak_rss_bytes = static_cast<int64_t>(ru.ru_maxrss) * 1024;
  if (WIFEXITED(status)) c.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) c.signal = WTERMSIG(status);
  return c;
}

// The child's own one-line error (its last "ampc: error: " line), for our message.
std::string ChildError(const std::string& err_path) {
  std::ifstream in(err_path);
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.rfind("ampc: error: ", 0) == 0) last = line.substr(13);
  }
  return last;
}

StatusOr<Run> ReadMetrics(const std::string& path, const std::string& precision) {
  std::ifstream in(path);
  if (!in) return Internal("the " + precision + " run wrote no metrics (" + path + ")");
  Run r;
  r.precision = precision;
  double inverse_rates = 0;  // sum over steps of 1 / samples_per_s = seconds per sample
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      return Internal("the " + precision + " run's metrics line is not JSON: " + e.what());
    }
    if (j.contains("val_loss")) {
      Run::Epoch e{j.value("epoch", int64_t{0}), j["val_loss"].get<double>(), std::nullopt};
      if (j.contains("val_accuracy")) e.val_accuracy = j["val_accuracy"].get<double>();
      r.epochs.push_back(e);
    } else if (j.contains("loss")) {
      r.losses.emplace_back(j["step"].get<int64_t>(), j["loss"].get<double>());
      const double rate = j.value("samples_per_s", 0.0);
      if (rate > 0) inverse_rates += 1.0 / rate;
      if (j.contains("skipped_total")) r.skipped = j["skipped_total"].get<int64_t>();
      if (j.contains("loss_scale")) r.loss_scale = j["loss_scale"].get<double>();
    }
  }
  if (r.losses.empty()) return Internal("the " + precision + " run recorded no steps");
  // Every step of a batch-size-B run takes B / rate seconds, so N steps of B samples took
  // sum(B / rate): the throughput over all steps is N / sum(1 / rate), evaluation excluded.
  if (inverse_rates > 0) r.samples_per_s = static_cast<double>(r.losses.size()) / inverse_rates;
  return r;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::optional<std::string> FindOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t at = 0; at <= dirs.size();) {
    const size_t colon = std::min(dirs.find(':', at), dirs.size());
    const std::string candidate = dirs.substr(at, colon - at) + "/" + program;
    if (colon > at && access(candidate.c_str(), X_OK) == 0) return candidate;
    at = colon + 1;
  }
  return std::nullopt;
}

Status CheckPlotPath(const BenchTrainArgs& a) {
  if (a.plot.empty()) return Status::Ok();
  if (!EndsWith(a.plot, ".svg") && !EndsWith(a.plot, ".png")) {
    return InvalidArgument("--plot " + a.plot + ": expected a file name ending in .svg or .png");
  }
  if (SameFile(a.model, a.plot)) return InvalidArgument("--plot " + a.plot + " is the model");
  std::error_code ec;
  if (fs::exists(a.plot, ec) && !a.force) {
    return InvalidArgument("--plot " + a.plot + " exists; pass --force to overwrite it");
  }
  const fs::path parent = fs::path(a.plot).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    return NotFound("--plot " + a.plot + ": folder " + parent.string() + " does not exist");
  }
  if (!FindOnPath("gnuplot")) {
    return NotFound(
        "--plot needs gnuplot, which is not installed (Debian package gnuplot-nox; "
        "tools/setup.sh installs it)");
  }
  return Status::Ok();
}

// Text safe inside a gnuplot single-quoted string.
std::string GnuplotText(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c != '\'' && c != '\\' && c != '\n') out += c;
  }
  return out;
}

Status Plot(const BenchTrainArgs& a, const std::vector<Run>& runs, const ScratchDir& dir) {
  static const char* kColors[] = {"#404040", "#d95f02", "#1b9e77"};
  const bool svg = EndsWith(a.plot, ".svg");
  const int64_t steps = static_cast<int64_t>(runs[0].losses.size());
  const int64_t window = std::clamp<int64_t>(steps / 20, 1, 50);
  bool accuracy = false;
  int64_t epochs = 0;
  for (const Run& r : runs) {
    std::string losses;
    double sum = 0;
    for (size_t i = 0; i < r.losses.size(); ++i) {
      // A trailing moving average: single-batch losses are too noisy to compare three curves.
      sum += r.losses[i].second;
      if (i >= static_cast<size_t>(window)) sum -= r.losses[i - window].second;
      const double n = static_cast<double>(std::min<size_t>(i + 1, window));
      losses += fmt::format("{} {:.6g}\n", r.losses[i].first, sum / n);
    }
    RETURN_IF_ERROR(WriteFileAtomically(dir / (r.precision + "_loss.dat"), losses));
    std::string acc;
    for (const Run::Epoch& e : r.epochs) {
      if (!e.val_accuracy) continue;
      acc += fmt::format("{} {:.6g}\n", e.epoch, 100.0 * *e.val_accuracy);
      accuracy = true;
      epochs = std::max(epochs, e.epoch);
    }
    RETURN_IF_ERROR(WriteFileAtomically(dir / (r.precision + "_acc.dat"), acc));
  }
  const std::string image = dir / (svg ? "plot.svg" : "plot.png");
  // noenhanced: file names such as mlp_opset17 are text, not subscripts.
  std::string s = svg ? "set terminal svg size 1100,420 dynamic noenhanced font 'sans,12' "
                        "background rgb 'white'\n"
                      : "set terminal pngcairo noenhanced size 1100,420 font 'sans,10'\n";
  s += fmt::format("set output '{}'\n", image);
  s += fmt::format("set multiplot layout 1,{} title 'ampc bench: {} on {}'\n", accuracy ? 2 : 1,
                   GnuplotText(fs::path(a.model).filename().string()), GnuplotText(a.data));
  s += "set grid\nset key top right\n";
  s += fmt::format("set title 'training loss (moving average of {} steps)'\n", window);
  s += "set xlabel 'step'\nset ylabel 'loss'\n";
  auto series = [&](const std::string& suffix, const std::string& style) {
    std::string p = "plot ";
    for (size_t i = 0; i < runs.size(); ++i) {
      // Dash types tell curves apart where they lie on top of each other.
      p += fmt::format("{}'{}' using 1:2 with {} lw 2 dt {} lc rgb '{}' title '{}'", i ? ", " : "",
                       dir / (runs[i].precision + suffix), style, i % 3 + 1, kColors[i % 3],
                       runs[i].precision);
    }
    return p + "\n";
  };
  s += series("_loss.dat", "lines");
  if (accuracy) {
    s += "set title 'validation accuracy after each epoch'\n";
    s += "set xlabel 'epoch'\nset ylabel 'accuracy (%)'\nset key bottom right\n";
    s += fmt::format("set xrange [0.5:{}.5]\nset xtics 1\nset offsets 0, 0, graph 0.1, graph 0.1\n",
                     epochs);
    s += series("_acc.dat", "linespoints pt 7 ps 1.2");
  }
  s += "unset multiplot\nset output\n";
  const std::string script = dir / "plot.gp";
  RETURN_IF_ERROR(WriteFileAtomically(script, s));
  ASSIGN_OR_RETURN(
      Child c, Spawn({*FindOnPath("gnuplot"), script}, dir / "gnuplot.out", dir / "gnuplot.err"));
  if (c.exit_code != 0) {
    std::ifstream in(dir / "gnuplot.err");
    std::string first;
    std::getline(in, first);
    return Internal("gnuplot failed (exit " + std::to_string(c.exit_code) + "): " + first);
  }
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(image));
  return WriteFileAtomically(a.plot, bytes);
}

std::string Thousands(double v) {
  std::string s = fmt::format("{:.0f}", v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::string Table(const BenchTrainArgs& a, const std::vector<Run>& runs) {
  const Run& base = runs[0];
  std::string s =
      fmt::format("{} on {}: {} steps per precision, same initial weights and batches\n", a.model,
                  a.data, base.losses.size());
  s += fmt::format("{:<15} {:>10} {:>8} {:>11} {:>8} {:>9} {:>8} {:>10} {:>8}\n", "precision",
                   "samples/s", "vs fp32", "peak RSS", "vs fp32", "val loss", "val acc",
                   "acc delta", "skipped");
  for (const Run& r : runs) {
    const Run::Epoch* last = r.epochs.empty() ? nullptr : &r.epochs.back();
    const Run::Epoch* base_last = base.epochs.empty() ? nullptr : &base.epochs.back();
    const bool acc = last && last->val_accuracy;
    const std::string name = r.precision == "fp16"   ? "fp16 (dyn. LS)"
                             : r.precision == "bf16" ? "bf16"
                                                     : "fp32";
    s += fmt::format(
        "{:<15} {:>10} {:>7.2f}x {:>7.0f} MiB {:>7.2f}x {:>9} {:>8} {:>10} {:>8}\n", name,
        Thousands(r.samples_per_s), r.samples_per_s / base.samples_per_s,
        r.peak_rss_bytes / 1048576.0,
        static_cast<double>(r.peak_rss_bytes) / static_cast<double>(base.peak_rss_bytes),
        last ? fmt::format("{:.4f}", last->val_loss) : "-",
        acc ? fmt::format("{:.2f}%", 100.0 * *last->val_accuracy) : "-",
        acc && base_last && base_last->val_accuracy
            ? fmt::format("{:+.2f} pp", 100.0 * (*last->val_accuracy - *base_last->val_accuracy))
            : "-",
        r.skipped ? std::to_string(*r.skipped) : "-");
  }
  return s;
}

nlohmann::json Json(const BenchTrainArgs& a, const std::vector<Run>& runs) {
  const Run& base = runs[0];
  nlohmann::json j{{"model", a.model},
                   {"data", a.data},
                   {"steps", base.losses.size()},
                   {"train_flags", a.train_flags}};
  for (const Run& r : runs) {
    nlohmann::json x{{"precision", r.precision},
                     {"loss_scaling", r.precision == "fp16" ? "dynamic" : "none"},
                     {"samples_per_s", r.samples_per_s},
                     {"speed_vs_fp32", r.samples_per_s / base.samples_per_s},
                     {"peak_rss_bytes", r.peak_rss_bytes},
                     {"memory_vs_fp32", static_cast<double>(r.peak_rss_bytes) /
                                            static_cast<double>(base.peak_rss_bytes)},
                     {"final_train_loss", r.losses.back().second}};
    if (!r.epochs.empty()) {
      x["val_loss"] = r.epochs.back().val_loss;
      if (r.epochs.back().val_accuracy) {
        x["val_accuracy"] = *r.epochs.back().val_accuracy;
        if (!base.epochs.empty() && base.epochs.back().val_accuracy) {
          x["accuracy_delta_vs_fp32"] =
              *r.epochs.back().val_accuracy - *base.epochs.back().val_accuracy;
        }
      }
    }
    x["skipped_steps"] = r.skipped ? nlohmann::json(*r.skipped) : nlohmann::json(nullptr);
    if (r.loss_scale && r.precision == "fp16") x["final_loss_scale"] = *r.loss_scale;
    j["runs"].push_back(std::move(x));
  }
  return j;
}

}  // namespace

Status RunBenchTraining(const BenchTrainArgs& a) {
  RETURN_IF_ERROR(CheckPlotPath(a));
  std::error_code ec;
  if (!fs::exists(a.model, ec)) return NotFound(a.model + ": no such file");
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return Internal("cannot find the ampc binary (/proc/self/exe): " + ec.message());
  ScratchDir dir;
  if (!dir.ok()) return Internal("cannot create a temporary folder for the runs");
  std::vector<Run> runs;
  for (const std::string p : {"fp32", "fp16", "bf16"}) {
    std::vector<std::string> argv = {
        self.string(), "train", a.model,   "--data",    a.data,
        "--precision", p,       "--quiet", "--metrics", dir / (p + ".jsonl")};
    // Dynamic loss scaling is what fp16 training needs (and ampc's default); bf16 needs none.
    if (p == "fp16") argv.insert(argv.end(), {"--loss-scale", "dynamic"});
    argv.insert(argv.end(), a.train_flags.begin(), a.train_flags.end());
    std::fprintf(stderr, "bench: training %s ...", p.c_str());
    std::fflush(stderr);
    const auto t0 = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(Child c, Spawn(argv, dir / (p + ".out"), dir / (p + ".err")));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, " %.1f s\n", s);
    if (c.exit_code != 0) {
      const std::string why = ChildError(dir / (p + ".err"));
      const std::string msg = "the " + p + " training run failed: " +
                              (!why.empty()    ? why
                               : c.signal != 0 ? "killed by signal " + std::to_string(c.signal)
                                               : "exit code " + std::to_string(c.exit_code));
      // The child's bad-input errors (a flag, the model, the data) are the user's; others ours.
      return c.exit_code == 2 ? InvalidArgument(msg) : Internal(msg);
    }
    ASSIGN_OR_RETURN(Run r, ReadMetrics(dir / (p + ".jsonl"), p));
    r.peak_rss_bytes = c.peak_rss_bytes;
    runs.push_back(std::move(r));
  }
  if (a.json) {
    std::printf("%s\n", Json(a, runs).dump(2).c_str());
  } else {
    std::fputs(Table(a, runs).c_str(), stdout);
  }
  if (!a.plot.empty()) {
    RETURN_IF_ERROR(Plot(a, runs, dir));
    if (!a.json) std::printf("plot: %s\n", a.plot.c_str());
  }
  return Status::Ok();
}

}  // namespace ampc::cli
