#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "ir/limits.h"
#include "runtime/data/datasets.h"

namespace ampc {
namespace {

// Whole file, transparently gunzipped (zlib's gzread passes uncompressed files through).
StatusOr<std::string> ReadMaybeGzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return NotFound(path + ": cannot open");
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) {
    out.append(buf, n);
    // IDX files hold at most 2^32 bytes; a gzip bomb stops at the input limit before that.
    const int64_t limit = std::min<int64_t>(int64_t{1} << 32, GetInputLimits().max_tensor_bytes);
    if (static_cast<int64_t>(out.size()) > limit) {
      gzclose(f);
      return InvalidArgument(path + ": more than " + std::to_string(limit) +
                             " bytes of data (--max-tensor-bytes raises the limit)");
    }
  }
  int err = 0;
  const char* msg = gzerror(f, &err);
  const std::string reason = msg ? msg : "";
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) {
    return InvalidArgument(path + ": corrupt compressed data (" + reason + ")");
  }
  return out;
}

}  // namespace

StatusOr<Tensor> ReadIdx(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadMaybeGzip(path));
  auto bad = [&](const std::string& m) {
    return InvalidArgument(path + ": not an IDX file: " + m);
  };
  if (bytes.size() < 4) return bad("shorter than its header");
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  if (p[0] != 0 || p[1] != 0) return bad("bad magic number");
  if (p[2] != 0x08)
    return Unimplemented(path + ": IDX element type " + fmt::format("{:#04x}", p[2]) +
                         " (only unsigned bytes, 0x08)");
  const int rank = p[3];
  if (rank < 1 || rank > 4) return bad("rank " + std::to_string(rank));
  if (bytes.size() < 4 + 4 * static_cast<size_t>(rank)) return bad("truncated header");
  std::vector<int64_t> dims;
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) {
    const uint8_t* d = p + 4 + 4 * i;
    const int64_t v = (int64_t{d[0]} << 24) | (d[1] << 16) | (d[2] << 8) | d[3];
    dims.push_back(v);
    if (!MulSize(n, v, &n) || n > (int64_t{1} << 32)) return bad("absurd size");
  }
  const size_t start = 4 + 4 * static_cast<size_t>(rank);
  if (bytes.size() - start != static_cast<size_t>(n)) {
    return bad("header says " + std::to_string(n) + " bytes of data, the file holds " +
               std::to_string(bytes.size() - start));
  }
  return Tensor(DType::kUInt8, std::move(dims),
                std::vector<uint8_t>(bytes.begin() + start, bytes.end()));
}

StatusOr<LabeledImages> ReadFashionMnist(const std::string& dir, const std::string& split) {
  if (split != "train" && split != "test") return InvalidArgument("unknown split '" + split + "'");
  const std::string stem = dir + "/" + (split == "train" ? "train" : "t10k");
  ASSIGN_OR_RETURN(Tensor images, ReadIdx(stem + "-images-idx3-ubyte.gz"));
  ASSIGN_OR_RETURN(Tensor labels, ReadIdx(stem + "-labels-idx1-ubyte.gz"));
  if (images.dims().size() != 3 || images.dims()[1] != 28 || images.dims()[2] != 28) {
    return InvalidArgument(stem + "-images-idx3-ubyte.gz: expected N x 28 x 28 images");
  }
  if (labels.dims().size() != 1 || labels.dims()[0] != images.dims()[0]) {
    return InvalidArgument(stem + "-labels-idx1-ubyte.gz: label count differs from image count");
  }
  LabeledImages out;
  const int64_t n = images.NumElements();
  std::vector<float> pixels(n);
  for (int64_t i = 0; i < n; ++i) pixels[i] = images.bytes()[i] / 255.0f;
  out.images = Tensor::FromFloats(pixels, images.dims());
  std::vector<int64_t> classes(labels.bytes().begin(), labels.bytes().end());
  for (int64_t c : classes) {
    if (c > 9)
      return InvalidArgument(stem + "-labels-idx1-ubyte.gz: label " + std::to_string(c) +
                             " is not a class 0-9");
  }
  out.labels = Tensor::FromInt64s(classes, labels.dims());
  return out;
}

}  // namespace ampc
