// Textual IR (docs/TEXT_IR.md), as ampc-opt reads it: parse, verify, print the result back.
#include "ir/text.h"
#include "ir/verifier.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ampc::fuzz::UseFuzzLimits();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto g = ampc::ParseGraph(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!g.ok()) return 0;
  if (ampc::Verify(**g).ok()) (void)ampc::PrintGraph(**g);
  return 0;
}
