// .npy and .npz (`ampc eval --inputs DIR`, `ampc train --data FILE.npz`): the same bytes are read
// as a .npy file and as a zip archive of them.
#include "runtime/data/datasets.h"
#include "runtime/npy.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ampc::fuzz::UseFuzzLimits();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  (void)ampc::ParseNpy(bytes, "fuzz.npy");
  (void)ampc::ReadNpz(ampc::fuzz::WriteScratch("data.npz", bytes));
  return 0;
}
