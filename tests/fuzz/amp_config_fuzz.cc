// `--amp-config FILE.json`: read as the compiler does (compiler::ResolveAmp): the file, the list
// edits applied to the default lists, and the fp32_nodes regular expression compiled
// (ir/user_regex.h) and matched against itself.
#include "ir/user_regex.h"
#include "passes/autocast.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ampc::fuzz::UseFuzzLimits();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ampc::fuzz::WriteScratch(
      "amp.json", std::string_view(reinterpret_cast<const char*>(data), size));
  ampc::AmpListEdits edits;
  std::string fp32_nodes;
  if (!ampc::ReadAmpConfig(path, &edits, &fp32_nodes).ok()) return 0;
  (void)ampc::ApplyListEdits(ampc::DefaultAmpLists(), edits);
  if (fp32_nodes.empty()) return 0;
  auto re = ampc::UserRegex::Compile(fp32_nodes, "fp32_nodes");
  if (re.ok()) (void)re.value().Search(fp32_nodes);
  return 0;
}
