// IDX files (FashionMNIST), plain or gzip'd, as `--data fashion-mnist` reads them; also as a
// whole FashionMNIST folder whose four files all hold the input.
#include "runtime/data/datasets.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ampc::fuzz::UseFuzzLimits();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)ampc::ReadIdx(ampc::fuzz::WriteScratch("data.idx", bytes));
  for (const char* f : {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"})
    ampc::fuzz::WriteScratch(f, bytes);
  (void)ampc::ReadFashionMnist(ampc::fuzz::ScratchDir(), "test");
  return 0;
}
