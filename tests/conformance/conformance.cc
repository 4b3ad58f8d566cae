// ONNX backend conformance: runs every case of ONNX's backend test data (Debian's
// libonnx-testdata) whose ops ampc supports on the CPU runtime and compares the outputs with the
// reference outputs shipped with the data, at ONNX's default tolerances (rtol 1e-3, atol 1e-7);
// the training-mode Dropout cases, whose references come from numpy's RNG, by Dropout's
// properties instead (kDropoutPropertyCases).
//
//   ampc-conformance [--root [LABEL=]DIR]... [--known-failures FILE] [--expected-skips FILE]
//                    [--write-expected-skips FILE] [--filter SUBSTR] [-v]
//
// Each root holds suites (node, pytorch-converted, pytorch-operator, simple) of cases; a case is
// named `suite/case`, or `LABEL/suite/case` for a labelled root. Without --root: Debian's data.
// The ctest adds ONNX 1.23's cases for the ops of opsets 18-23 (tests/conformance/data/onnx-1.23,
// written by gen_onnx123_data.py) as the root labelled onnx-1.23.
//
// Each case runs in a forked child, so a crash is reported as a failure of that case instead of
// ending the run. A case skips when ampc declines it with an Unimplemented status; since a
// regression can look exactly like that, the skips are pinned by the expected-skips file
// (tests/conformance/expected_skips.txt, docs/CONFORMANCE.md). Exit status 0 iff every failing
// case is listed in the known-failures file, no listed known failure passes and, with
// --expected-skips, every skip is listed there and every listed case exists and still skips;
// 1 otherwise; 2 for a usage or file error. --write-expected-skips writes this run's skips in
// the expected-skips format (atomically, to that path only).
#include <onnx/onnx_pb.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "frontend/onnx.h"
#include "ir/file_io.h"
#include "runtime/cpu/executor.h"
#include "runtime/cpu/kernel.h"

namespace fs = std::filesystem;
using namespace ampc;

namespace {

constexpr double kRtol = 1e-3, kAtol = 1e-7;

enum class Outcome { kPass, kFail, kSkip };

struct CaseResult {
  Outcome outcome = Outcome::kFail;
  // failure reason, the unsupported thing for a skip, or for a pass checked by something other
  // than the reference values, that check
  std::string detail;
};

// ONNX's training-mode Dropout cases store outputs drawn from numpy's global RNG, which no other
// implementation can reproduce. They are checked by the properties that define Dropout instead
// (docs/CONFORMANCE.md); the zero-ratio cases are deterministic and compared by value.
const std::set<std::string> kDropoutPropertyCases = {
    "node/test_training_dropout", "node/test_training_dropout_default",
    "node/test_training_dropout_default_mask", "node/test_training_dropout_mask"};

std::string CompareOutputs(const Tensor& got, const Tensor& want, const std::string& name) {
  if (got.dtype() != want.dtype()) {
    return name + ": dtype " + std::string(DTypeName(got.dtype())) + " vs expected " +
           std::string(DTypeName(want.dtype()));
  }
  if (got.dims() != want.dims()) {
    return name + ": shape " + got.type().ToString() + " vs expected " + want.type().ToString();
  }
  auto g = got.AsDoubles(), w = want.AsDoubles();
  if (!g || !w) return name + ": cannot read values";
  int64_t bad = 0, first = -1;
  double worst = 0;
  for (size_t i = 0; i < g->size(); ++i) {
    const double a = (*g)[i], e = (*w)[i];
    bool ok;
    if (std::isnan(e))
      ok = std::isnan(a);
    else if (std::isinf(e))
      ok = a == e;
    else if (!IsFloat(want.dtype()))
      ok = a == e;
    else
      ok = std::fabs(a - e) <= kAtol + kRtol * std::fabs(e);
    if (!ok) {
      if (first < 0) first = static_cast<int64_t>(i);
      ++bad;
      if (std::isfinite(a) && std::isfinite(e)) worst = std::max(worst, std::fabs(a - e));
    }
  }
  if (!bad) return "";
  std::ostringstream os;
  os << name << ": " << bad << " of " << g->size() << " elements differ (first at " << first << ": "
     << (*g)[first] << " vs " << (*w)[first] << ", max abs diff " << worst << ")";
  return os.str();
}

// ONNX 1.12's test data stores bfloat16 references as UINT16 tensors of bit patterns, a type
// ampc does not import; read those here as bf16.
StatusOr<Tensor> ReadReference(const std::string& path) {
  auto t = ReadTensorFile(path);
  if (t.ok() || t.status().code() != StatusCode::kUnimplemented) return t;
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  onnx::TensorProto p;
  if (!p.ParseFromString(bytes) || p.data_type() != onnx::TensorProto::UINT16) return t.status();
  std::vector<int64_t> dims(p.dims().begin(), p.dims().end());
  std::vector<uint8_t> data;
  if (p.has_raw_data()) {
    data.assign(p.raw_data().begin(), p.raw_data().end());
  } else {
    for (int32_t v : p.int32_data()) {
      data.push_back(static_cast<uint8_t>(v & 0xff));
      data.push_back(static_cast<uint8_t>((v >> 8) & 0xff));
    }
  }
  Tensor out(DType::kBFloat16, dims, std::move(data));
  if (static_cast<int64_t>(out.bytes().size()) != out.NumElements() * 2) return t.status();
  return out;
}

struct PropertyCheck {
  bool ok = false;
  std::string what;  // the check that passed, or why it failed
};

// Dropout's defining properties for output y (and mask, if given) of input x at `ratio`: each
// y[i] is 0 or x[i] / (1 - ratio) (rtol 1e-6), the mask is exactly y != 0 where x != 0, and the
// number kept lies within 5 binomial standard deviations of n (1 - ratio).
PropertyCheck CheckDropoutProperties(const Tensor& x, double ratio, const Tensor& y,
                                     const Tensor* mask, const std::string& who) {
  auto xs = x.AsDoubles(), ys = y.AsDoubles();
  if (!xs || !ys || y.dims() != x.dims() || y.dtype() != x.dtype()) {
    return {false, who + ": output does not have the input's type and shape"};
  }
  std::optional<std::vector<double>> ms;
  if (mask) {
    ms = mask->AsDoubles();
    if (!ms || mask->dtype() != DType::kBool || mask->dims() != x.dims()) {
      return {false, who + ": mask is not bool of the input's shape"};
    }
  }
  const double scale = 1.0 / (1.0 - ratio);
  int64_t n = 0, kept = 0;
  for (size_t i = 0; i < xs->size(); ++i) {
    const double want = (*xs)[i] * scale, got = (*ys)[i];
    const bool is_kept = got != 0.0;
    if (is_kept && !(std::fabs(got - want) <= 1e-6 * std::fabs(want))) {
      return {false, who + ": element " + std::to_string(i) + " is " + std::to_string(got) +
                         ", neither 0 nor input / (1 - ratio) = " + std::to_string(want)};
    }
    if ((*xs)[i] == 0.0) continue;  // kept or dropped, a zero input gives 0
    ++n;
    kept += is_kept;
    if (ms && ((*ms)[i] != 0.0) != is_kept) {
      return {false, who + ": mask element " + std::to_string(i) + " disagrees with the output"};
    }
  }
  const double mean = static_cast<double>(n) * (1.0 - ratio);
  const double sigma = std::sqrt(static_cast<double>(n) * ratio * (1.0 - ratio));
  std::ostringstream os;
  os << "kept " << kept << " of " << n << ", expected " << mean << " +- 5 x " << sigma;
  if (std::fabs(static_cast<double>(kept) - mean) > 5 * sigma) {
    return {false, who + ": " + os.str()};
  }
  return {true, std::string("by Dropout's properties (y in {0, x/(1-ratio)}") +
                    (mask ? ", mask == (y != 0)" : "") + ", " + os.str() + ")"};
}

// Checks one test data set of a kDropoutPropertyCases case. The reference outputs must satisfy
// the same properties, or the check itself would be wrong.
PropertyCheck CheckDropoutCase(const std::vector<Tensor>& inputs, const std::vector<Tensor>& got,
                               const std::vector<Tensor>& want) {
  if (inputs.size() < 2 || got.empty() || got.size() != want.size() || got.size() > 2) {
    return {false, "unexpected inputs/outputs for a Dropout case"};
  }
  auto r = inputs[1].AsDoubles();
  if (!r || r->size() != 1) return {false, "ratio is not a scalar"};
  const double ratio = (*r)[0];
  PropertyCheck ref = CheckDropoutProperties(inputs[0], ratio, want[0],
                                             want.size() > 1 ? &want[1] : nullptr, "reference");
  if (!ref.ok) return ref;
  return CheckDropoutProperties(inputs[0], ratio, got[0], got.size() > 1 ? &got[1] : nullptr,
                                "output");
}

CaseResult RunCase(const fs::path& dir, const std::string& name) {
  const bool by_properties = kDropoutPropertyCases.count(name) > 0;
  std::string check;
  auto graph = ImportOnnxFile((dir / "model.onnx").string());
  if (!graph.ok()) {
    const Status& st = graph.status();
    if (st.code() == StatusCode::kUnimplemented) return {Outcome::kSkip, st.message()};
    return {Outcome::kFail, "import: " + st.message()};
  }
  std::set<std::string> missing;
  for (const Node* n : (*graph)->nodes()) {
    if (!cpu::KernelRegistry::Global().Find(n->domain(), n->op_type())) {
      missing.insert(n->domain().empty() ? n->op_type() : n->domain() + "::" + n->op_type());
    }
  }
  if (!missing.empty()) {
    std::string s;
    for (const auto& m : missing) s += (s.empty() ? "" : " ") + m;
    return {Outcome::kSkip, "no CPU kernel: " + s};
  }
  std::vector<std::string> input_names, output_names;
  for (const Value* v : (*graph)->inputs()) input_names.push_back(v->name());
  for (const Value* v : (*graph)->outputs()) output_names.push_back(v->name());
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) {
      sets.push_back(e.path());
    }
  }
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) return {Outcome::kSkip, "no test data"};
  for (const fs::path& set : sets) {
    std::vector<Tensor> inputs;
    for (size_t k = 0; k < input_names.size(); ++k) {
      auto t = ReadTensorFile((set / ("input_" + std::to_string(k) + ".pb")).string());
      if (!t.ok()) {
        if (t.status().code() == StatusCode::kUnimplemented)
          return {Outcome::kSkip, t.status().message()};
        return {Outcome::kFail, t.status().message()};
      }
      inputs.push_back(std::move(*t));
    }
    auto g = ImportOnnxFile((dir / "model.onnx").string());
    auto plan = CompileForInputs(std::move(*g), inputs, DType::kFloat32, dir.string(),
                                 cpu::CpuBackendSupport());
    if (!plan.ok()) {
      if (plan.status().code() == StatusCode::kUnimplemented)
        return {Outcome::kSkip, plan.status().message()};
      return {Outcome::kFail, "compile: " + plan.status().message()};
    }
    auto exec = cpu::CpuExecutor::Create(std::move(*plan), 1);
    if (!exec.ok()) {
      if (exec.status().code() == StatusCode::kUnimplemented)
        return {Outcome::kSkip, exec.status().message()};
      return {Outcome::kFail, exec.status().message()};
    }
    auto outputs = (*exec)->Run(inputs);
    if (!outputs.ok()) {
      if (outputs.status().code() == StatusCode::kUnimplemented)
        return {Outcome::kSkip, outputs.status().message()};
      return {Outcome::kFail, "run: " + outputs.status().message()};
    }
    std::vector<Tensor> wants;
    for (size_t k = 0; k < output_names.size(); ++k) {
      auto want = ReadReference((set / ("output_" + std::to_string(k) + ".pb")).string());
      if (!want.ok()) return {Outcome::kFail, want.status().message()};
      wants.push_back(std::move(*want));
      if (by_properties) continue;
      std::string diff = CompareOutputs((*outputs)[k], wants.back(), output_names[k]);
      if (!diff.empty()) return {Outcome::kFail, set.filename().string() + ": " + diff};
    }
    if (by_properties) {
      PropertyCheck pc = CheckDropoutCase(inputs, *outputs, wants);
      if (!pc.ok) return {Outcome::kFail, set.filename().string() + ": " + pc.what};
      check += (check.empty() ? "" : "; ") + set.filename().string() + " " + pc.what;
    }
  }
  return {Outcome::kPass, check};
}

// Runs RunCase in a child process; a crash or a hang becomes a failure.
CaseResult RunIsolated(const fs::path& dir, const std::string& name) {
  int fds[2];
  if (pipe(fds) != 0) return RunCase(dir, name);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    alarm(120);
    CaseResult r = RunCase(dir, name);
    std::string msg = std::to_string(static_cast<int>(r.outcome)) + "\n" + r.detail;
    (void)!write(fds[1], msg.data(), msg.size());
    close(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  std::string msg;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) msg.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status))
    return {Outcome::kFail, "crashed with signal " + std::to_string(WTERMSIG(status))};
  const size_t nl = msg.find('\n');
  if (nl == std::string::npos) return {Outcome::kFail, "no result from the child process"};
  return {static_cast<Outcome>(std::stoi(msg.substr(0, nl))), msg.substr(nl + 1)};
}

// The name-like word ([A-Za-z0-9_]*) that starts at `pos` of `s`.
std::string WordAt(const std::string& s, size_t pos) {
  size_t end = pos;
  while (end < s.size() && (std::isalnum(static_cast<unsigned char>(s[end])) || s[end] == '_')) {
    ++end;
  }
  return s.substr(pos, end - pos);
}

// A skip's detail -> short reasons (the missing ops or kernels, the element type, ...), for the
// skip summary and the expected-skips file. They leave out the model's path, which the case name
// already says, so that the file's reasons do not depend on where the data is installed.
std::vector<std::string> SkipReasons(const std::string& detail) {
  std::vector<std::string> out;
  const size_t u = detail.find("unknown op '");
  if (u != std::string::npos) {
    const size_t b = u + 12, e = detail.find('\'', b);
    out.push_back("op " + detail.substr(b, e - b));
    return out;
  }
  const std::string k = "no CPU kernel: ";
  const size_t p = detail.find(k);
  if (p != std::string::npos) {
    std::istringstream is(detail.substr(p + k.size()));
    std::string op;
    while (is >> op) out.push_back("kernel " + op);
    return out;
  }
  const std::string t = "unsupported element type ";
  const size_t type_pos = detail.find(t);
  if (type_pos != std::string::npos) {
    return {"unsupported dtype " + WordAt(detail, type_pos + t.size())};
  }
  const std::string o = "older than the oldest supported (";
  const size_t opset_pos = detail.find(o);
  if (opset_pos != std::string::npos) return {"opset < " + WordAt(detail, opset_pos + o.size())};
  if (detail.find("legacy broadcasting") != std::string::npos) return {"legacy broadcast axis"};
  if (detail.find("not a tensor") != std::string::npos) return {"sequence/optional types"};
  if (detail.find("data-dependent shape") != std::string::npos) return {"data-dependent shape"};
  // Anything else: the message without the model's path and the node's name.
  std::string s = detail;
  const size_t m = s.find("model.onnx: ");
  if (m != std::string::npos) s = s.substr(m + 12);
  const size_t n = s.find("): ");
  if (s.rfind("node '", 0) == 0 && n != std::string::npos) s = s.substr(n + 3);
  std::replace(s.begin(), s.end(), '\n', ' ');
  return {"other: " + s.substr(0, 80)};
}

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : sep) + p;
  return s;
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// A list of cases, one `suite/case_name` per line with an optional `# comment` (the cause of a
// known failure, the reason for an expected skip); blank and comment-only lines are ignored.
struct CaseList {
  std::map<std::string, std::string> comments;  // case name -> its comment, trimmed
  bool Has(const std::string& name) const { return comments.count(name) > 0; }
};

// Reads `path` into `list`. A malformed line or a case listed twice is an error (one line on
// stderr, false), because a list that is silently misread checks nothing.
bool ReadCaseList(const std::string& path, CaseList* list) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "ampc-conformance: cannot read %s\n", path.c_str());
    return false;
  }
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const size_t hash = line.find('#');
    std::istringstream is(line.substr(0, hash));
    std::string name, extra;
    if (!(is >> name)) continue;
    if (is >> extra || name.find('/') == std::string::npos) {
      std::fprintf(stderr, "ampc-conformance: %s:%d: expected 'suite/case_name  # comment'\n",
                   path.c_str(), n);
      return false;
    }
    const std::string comment = hash == std::string::npos ? "" : Trim(line.substr(hash + 1));
    if (!list->comments.emplace(name, comment).second) {
      std::fprintf(stderr, "ampc-conformance: %s:%d: %s is listed twice\n", path.c_str(), n,
                   name.c_str());
      return false;
    }
  }
  return true;
}

// "node" of "node/test_x", "onnx-1.23/node" of "onnx-1.23/node/test_x".
std::string SuiteOf(const std::string& name) { return name.substr(0, name.rfind('/')); }

// Writes `skips` (case -> reason) in the expected-skips format: a header, then one group per
// suite, sorted by name. It writes a temporary file next to `path` and renames it over `path`, so
// an interrupted or failed write leaves the old list intact.
bool WriteExpectedSkips(const std::string& path, const std::map<std::string, std::string>& skips) {
  std::map<std::string, int> per_suite;
  size_t width = 0;
  for (const auto& [name, reason] : skips) {
    ++per_suite[SuiteOf(name)];
    width = std::max(width, name.size());
  }
  std::ostringstream os;
  os << "# ONNX backend cases that ampc-conformance expects to skip: one `suite/case_name` per\n"
        "# line, then `# reason`, the reason the runner gives (an op with no importer or CPU\n"
        "# kernel, an element type ampc does not have, ...). The `conformance` ctest fails when a\n"
        "# case skips that is not listed here (a new skip, perhaps an op that stopped working),\n"
        "# when a listed case runs, and when a listed case is not in the test data; see\n"
        "# docs/CONFORMANCE.md.\n"
        "#\n"
        "# Generated by a full run, then kept by hand. After adding an op or a type,\n"
        "# regenerate it and review the diff:\n"
        "#   ./build/ampc-conformance --known-failures tests/conformance/known_failures.txt \\\n"
        "#       --write-expected-skips tests/conformance/expected_skips.txt\n"
        "#\n"
        "# "
     << skips.size() << " cases.\n";
  std::string suite;
  for (const auto& [name, reason] : skips) {
    const std::string s = SuiteOf(name);
    if (s != suite) {
      suite = s;
      os << "\n# " << suite << " (" << per_suite[suite] << ")\n";
    }
    os << name << std::string(width + 2 - name.size(), ' ') << "# " << reason << "\n";
  }
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  std::ofstream out(tmp, std::ios::trunc);
  out << os.str();
  out.close();
  std::error_code ec;
  if (out) fs::rename(tmp, path, ec);
  if (!out || ec) {
    fs::remove(tmp, ec);
    std::fprintf(stderr, "ampc-conformance: cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

constexpr char kUsage[] =
    "usage: ampc-conformance [--root [LABEL=]DIR]... [--known-failures FILE] [--expected-skips "
    "FILE]\n"
    "                        [--write-expected-skips FILE] [--filter SUBSTR] [-v]\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::pair<std::string, std::string>> roots;  // label (may be empty), folder
  std::string known_path, skips_path, write_path;
  std::string filter;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--root" && i + 1 < argc) {
      const std::string r = argv[++i];
      const size_t eq = r.find('=');
      roots.push_back(eq == std::string::npos ? std::make_pair(std::string(), r)
                                              : std::make_pair(r.substr(0, eq), r.substr(eq + 1)));
    } else if (a == "--known-failures" && i + 1 < argc)
      known_path = argv[++i];
    else if (a == "--expected-skips" && i + 1 < argc)
      skips_path = argv[++i];
    else if (a == "--write-expected-skips" && i + 1 < argc)
      write_path = argv[++i];
    else if (a == "--filter" && i + 1 < argc)
      filter = argv[++i];
    else if (a == "-v")
      verbose = true;
    else {
      std::fputs(kUsage, stderr);
      return 2;
    }
  }
  // A filtered run sees only some of the skips; writing them would drop all the others.
  if (!write_path.empty() && !filter.empty()) {
    std::fprintf(stderr,
                 "ampc-conformance: --write-expected-skips needs a full run, not --filter\n");
    return 2;
  }
  std::error_code ec;
  if (!write_path.empty() && !known_path.empty() && fs::equivalent(write_path, known_path, ec)) {
    std::fprintf(stderr,
                 "ampc-conformance: --write-expected-skips %s would overwrite the known "
                 "failures\n",
                 write_path.c_str());
    return 2;
  }
  CaseList known, expected;
  if (!known_path.empty() && !ReadCaseList(known_path, &known)) return 2;
  if (!skips_path.empty() && !ReadCaseList(skips_path, &expected)) return 2;
  for (const auto& [name, reason] : expected.comments) {
    if (known.Has(name)) {  // a case either skips or fails; listing both would hide a change
      std::fprintf(stderr, "ampc-conformance: %s is listed in both %s and %s\n", name.c_str(),
                   known_path.c_str(), skips_path.c_str());
      return 2;
    }
  }
  if (roots.empty()) roots.push_back({"", "/usr/share/libonnx-testdata/data"});
  // Every case in the data, filter or not, so that a listed case missing from it is always found.
  std::vector<std::pair<std::string, fs::path>> all_cases;
  std::set<std::string> all_names;
  for (const auto& [label, root] : roots) {
    if (!fs::is_directory(root)) {
      std::fprintf(stderr, "ampc-conformance: %s not found%s\n", root.c_str(),
                   label.empty() ? " (install libonnx-testdata)" : "");
      return 2;
    }
    for (const char* suite : {"node", "pytorch-converted", "pytorch-operator", "simple"}) {
      const fs::path sdir = fs::path(root) / suite;
      if (!fs::is_directory(sdir)) continue;
      std::vector<fs::path> cases;
      for (const auto& e : fs::directory_iterator(sdir)) {
        if (fs::exists(e.path() / "model.onnx")) cases.push_back(e.path());
      }
      std::sort(cases.begin(), cases.end());
      const std::string prefix = (label.empty() ? "" : label + "/") + suite + "/";
      for (const fs::path& c : cases) {
        all_cases.push_back({prefix + c.filename().string(), c});
        if (!all_names.insert(all_cases.back().first).second) {
          std::fprintf(stderr, "ampc-conformance: case %s is in two roots; label one of them\n",
                       all_cases.back().first.c_str());
          return 2;
        }
      }
    }
  }
  struct Row {
    int cases = 0, passed = 0, failed = 0, skipped = 0;
  };
  std::map<std::string, Row> rows;
  std::map<std::string, int> skip_reasons;
  std::vector<std::string> unexpected, known_failed, fixed;
  std::map<std::string, std::string> skips;  // this run's skips: case -> reason
  int skipped_as_listed = 0;
  std::vector<std::string> new_skips, now_run, not_in_data, reason_changed;
  for (const auto& [name, c] : all_cases) {
    if (!filter.empty() && name.find(filter) == std::string::npos) continue;
    Row& row = rows[SuiteOf(name)];
    ++row.cases;
    CaseResult r = RunIsolated(c, name);
    if (r.outcome == Outcome::kSkip) {
      ++row.skipped;
      const std::vector<std::string> reasons = SkipReasons(r.detail);
      for (const auto& reason : reasons) ++skip_reasons[reason];
      const std::string reason = Join(reasons, ", ");
      skips[name] = reason;
      if (!skips_path.empty()) {
        auto it = expected.comments.find(name);
        if (it == expected.comments.end()) {
          new_skips.push_back(name + ": " + r.detail);
        } else {
          ++skipped_as_listed;
          if (it->second != reason) {
            reason_changed.push_back(name + ": listed '" + it->second + "', now '" + reason + "'");
          }
        }
      }
      if (verbose) std::printf("SKIP %s: %s\n", name.c_str(), r.detail.c_str());
      continue;
    }
    if (expected.Has(name)) {
      now_run.push_back(name + ": now runs (" + (r.outcome == Outcome::kPass ? "passes" : "fails") +
                        "): remove it from " + skips_path);
    }
    if (r.outcome == Outcome::kPass) {
      ++row.passed;
      if (known.Has(name)) fixed.push_back(name);
      if (verbose) {  // a pass not checked by value says how it was checked
        std::printf("PASS %s%s%s\n", name.c_str(), r.detail.empty() ? "" : ": ", r.detail.c_str());
      }
    } else {
      ++row.failed;
      (known.Has(name) ? known_failed : unexpected).push_back(name + ": " + r.detail);
      if (verbose) std::printf("FAIL %s: %s\n", name.c_str(), r.detail.c_str());
    }
  }
  for (const auto& [name, reason] : expected.comments) {
    if (!all_names.count(name)) {
      not_in_data.push_back(name + ": not in the test data: remove it from " + skips_path);
    }
  }
  std::printf("\n%-20s %7s %7s %7s %7s %7s\n", "suite", "cases", "run", "passed", "failed",
              "skipped");
  Row total;
  for (const auto& [suite, r] : rows) {
    std::printf("%-20s %7d %7d %7d %7d %7d\n", suite.c_str(), r.cases, r.passed + r.failed,
                r.passed, r.failed, r.skipped);
    total.cases += r.cases;
    total.passed += r.passed;
    total.failed += r.failed;
    total.skipped += r.skipped;
  }
  std::printf("%-20s %7d %7d %7d %7d %7d\n", "total", total.cases, total.passed + total.failed,
              total.passed, total.failed, total.skipped);
  if (!skips_path.empty()) {
    std::printf(
        "\nexpected skips: %zu listed, %d skipped as listed, %zu new skips, %zu stale "
        "entries (%zu now run, %zu not in the data)\n",
        expected.comments.size(), skipped_as_listed, new_skips.size(),
        now_run.size() + not_in_data.size(), now_run.size(), not_in_data.size());
  } else {
    std::printf("\nexpected skips: not checked (no --expected-skips)\n");
  }
  std::printf("\nskipped, by reason (cases):\n");
  std::vector<std::pair<int, std::string>> reasons;
  for (const auto& [k, v] : skip_reasons) reasons.push_back({-v, k});
  std::sort(reasons.begin(), reasons.end());
  std::string line;
  for (const auto& [v, k] : reasons) {
    std::string item = k + " (" + std::to_string(-v) + ")";
    if (line.size() + item.size() > 96) {
      std::printf("  %s\n", line.c_str());
      line.clear();
    }
    line += (line.empty() ? "" : ", ") + item;
  }
  if (!line.empty()) std::printf("  %s\n", line.c_str());
  if (!known_failed.empty()) {
    std::printf("\nknown failures (listed in docs/CONFORMANCE.md):\n");
    for (const auto& f : known_failed) std::printf("  %s\n", f.c_str());
  }
  if (!reason_changed.empty()) {  // not an error: the case still skips, for another reason
    std::printf("\nexpected skips whose reason changed (update the reason in %s):\n",
                skips_path.c_str());
    for (const auto& f : reason_changed) std::printf("  %s\n", f.c_str());
  }
  if (!fixed.empty()) {
    std::printf("\nlisted as known failures but now passing (remove them from the list):\n");
    for (const auto& f : fixed) std::printf("  %s\n", f.c_str());
  }
  if (!unexpected.empty()) {
    std::printf("\nUNEXPECTED FAILURES:\n");
    for (const auto& f : unexpected) std::printf("  %s\n", f.c_str());
  }
  if (!new_skips.empty()) {
    std::printf(
        "\nNEW SKIPS (not in %s; an op or type that worked may have regressed; if the skip "
        "is intended, add the case there):\n",
        skips_path.c_str());
    for (const auto& f : new_skips) std::printf("  NEW SKIP %s\n", f.c_str());
  }
  if (!now_run.empty() || !not_in_data.empty()) {
    std::printf("\nSTALE EXPECTED SKIPS:\n");
    for (const auto& f : now_run) std::printf("  STALE %s\n", f.c_str());
    for (const auto& f : not_in_data) std::printf("  STALE %s\n", f.c_str());
  }
  if (!write_path.empty()) {
    if (!WriteExpectedSkips(write_path, skips)) return 2;
    std::printf("\nwrote %zu expected skips to %s\n", skips.size(), write_path.c_str());
  }
  const bool ok = unexpected.empty() && fixed.empty() && new_skips.empty() && now_run.empty() &&
                  not_in_data.empty();
  std::printf(
      "\nconformance: %s (%zu unexpected failures, %zu known failures passing, %zu new "
      "skips, %zu stale expected skips)\n",
      ok ? "OK" : "FAILED", unexpected.size(), fixed.size(), new_skips.size(),
      now_run.size() + not_in_data.size());
  return ok ? 0 : 1;
}
