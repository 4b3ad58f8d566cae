// ONNX TensorProto files (`ampc eval --inputs DIR` with input_K.pb, the layout of ONNX's backend
// test data), external data included: the file is written into a folder holding the fixtures'
// data files and a symlink out of it, as onnx_import_fuzz.cc's model folder does.
#include <filesystem>

#include "frontend/onnx.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

const std::string& TensorDir() {
  static const std::string dir = [] {
    namespace fs = std::filesystem;
    const std::string d = ampc::fuzz::ScratchDir() + "/inputs";
    fs::create_directories(d);
    std::error_code ec;
    fs::copy_file(AMPC_FIXTURES_DIR "/extdata/w.bin", d + "/w.bin", fs::copy_options::skip_existing,
                  ec);
    ampc::fuzz::WriteScratch("outside.bin", std::string(64, 'x'));
    fs::create_symlink(ampc::fuzz::ScratchDir() + "/outside.bin", d + "/escape.bin", ec);
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ampc::fuzz::UseFuzzLimits();
  TensorDir();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = TensorDir() + "/input_0.pb";
  ampc::fuzz::WriteScratch("inputs/input_0.pb",
                           std::string_view(reinterpret_cast<const char*>(data), size));
  std::string name;
  (void)ampc::ReadTensorFile(path, &name);
  return 0;
}
